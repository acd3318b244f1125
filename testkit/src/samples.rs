//! The labelled sample listings in `examples/samples` (`s01.json` …
//! `s12.json` and `labels.json`), found from the workspace root so that any
//! suite reads the same files from a clean clone.

use std::path::PathBuf;

use serde_json::Value;

/// How many samples there are.
pub const SAMPLE_COUNT: usize = 12;

/// `examples/samples` of the workspace.
pub fn samples_dir() -> PathBuf {
    crate::workspace_root().join("examples/samples")
}

/// The example rule set (`examples/rules.json`, with its facts), as text.
pub fn example_rules() -> String {
    let path = crate::workspace_root().join("examples/rules.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The path of a sample profile, e.g. `sample_path("s01")`.
pub fn sample_path(name: &str) -> PathBuf {
    samples_dir().join(format!("{name}.json"))
}

/// A sample profile, e.g. `sample("s01")`.
pub fn sample(name: &str) -> Value {
    read_json(sample_path(name))
}

/// (name, path, value) of every sample, sorted by name.
pub fn samples() -> Vec<(String, PathBuf, Value)> {
    let mut out = Vec::new();
    let dir = samples_dir();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "json") && name.starts_with('s') {
            let value = read_json(path.clone());
            out.push((name, path, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        SAMPLE_COUNT,
        "expected {SAMPLE_COUNT} sample profiles in {}",
        dir.display()
    );
    out
}

/// `labels.json`: sample name → `"accept"` or `"reject"`.
pub fn labels() -> Value {
    read_json(samples_dir().join("labels.json"))
}

fn read_json(path: PathBuf) -> Value {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
