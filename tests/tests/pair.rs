//! Pod-level checks of the pair as a kubelet would run them: the assessor
//! writes into a shared directory (the pod's `emptyDir`) that the relay
//! watches. The relay's delivery lands with its own issue; for now these
//! tests pin down what the relay will rely on.

use std::process::Command;

use serde_json::Value;
use testkit::{assert_schema_valid, labels, sample_path, tempdir};

/// Every sample profile, assessed into one shared directory with the brief's
/// rules and the fixed backend: one complete, schema-valid result per
/// profile, no temp files left behind, and rules never reject a profile
/// labelled accept.
#[test]
fn assessor_fills_a_shared_results_directory_atomically() {
    let assessor = testkit::binary::assessor();
    let results = tempdir();
    let labels = labels();
    let labels = labels.as_object().unwrap();
    assert!(!labels.is_empty());
    let rules = r#"{"price":{"max":425000},"location":["bristol"],"forbid":["shared ownership","retirement","\\bauction\\b","total renovation"]}"#;

    for (stem, label) in labels {
        let target = results.path().join(format!("{stem}.json"));
        let status = Command::new(&assessor)
            .env_clear()
            .env("PROFILE_PATH", sample_path(stem))
            .env("RESULT_PATH", &target)
            .env("LLM_BACKEND", "fixed")
            .env("ASSESSOR_RULES", rules)
            .env("LOG_FORMAT", "json")
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{stem}");
        let result: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
        assert_schema_valid(&result);
        assert_eq!(result["id"], stem.as_str());
        if result["decided_by"] == "rules" {
            assert_eq!(result["verdict"], "reject");
            assert_eq!(
                label, "reject",
                "{stem}: rules rejected a profile labelled accept"
            );
        }
    }

    let mut names: Vec<String> = std::fs::read_dir(results.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = {
        let mut v: Vec<String> = labels.keys().map(|k| format!("{k}.json")).collect();
        v.sort();
        v
    };
    assert_eq!(names, expected, "only complete results, no temp files");
}

#[test]
fn relay_binary_starts_and_reports_its_version() {
    let relay = testkit::binary::relay();
    let output = Command::new(relay).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("relay "));
}
