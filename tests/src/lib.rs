//! Pod-level tests of the assessor and relay pair live in `tests/`. This
//! library holds what they share:
//! - [`binary`]: the built binaries (`ASSESSOR_BIN` / `RELAY_BIN` when set:
//!   CI, a release build, a custom image's binary; else `target/`);
//! - [`manifests`]: the rendered Kubernetes manifests of `deploy/`;
//! - [`kubelet`]: a kubelet in miniature that runs a Job's pod from them;
//! - [`servers`]: the real HTTP peers a pod talks to (a notifier that
//!   verifies Standard Webhooks signatures, an OpenAI-compatible judge).

use std::path::PathBuf;

pub mod kubelet;
pub mod manifests;
pub mod servers;

/// The binary named `name`, from `env_var` or the workspace's `target/`.
pub fn binary(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
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
