//! Where the built binaries are, for suites that are not the binary's own
//! package (the pod tests). A crate's own integration tests pass
//! `env!("CARGO_BIN_EXE_<name>")` instead: Cargo builds exactly that one.

use std::path::PathBuf;

/// The built `assessor`: `ASSESSOR_BIN`, else the workspace's `target/`.
pub fn assessor() -> PathBuf {
    binary("ASSESSOR_BIN", "assessor")
}

/// The built `relay`: `RELAY_BIN`, else the workspace's `target/`.
pub fn relay() -> PathBuf {
    binary("RELAY_BIN", "relay")
}

/// The built `runner`: `RUNNER_BIN`, else the workspace's `target/`.
pub fn runner() -> PathBuf {
    binary("RUNNER_BIN", "runner")
}

/// The binary named `name`: the path in `env_var` when set (CI, a release
/// build, a custom image's binary), else `debug/` then `release/` under
/// `CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn binary(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    for profile in ["debug", "release"] {
        let candidate = target.join(profile).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "{name} binary not found: set {env_var} or run `cargo build --workspace --bins` first (looked in {})",
        target.display()
    );
}
