//! Result files (`shortlist.result/v1`) on the test side: checking what the
//! assessor wrote against `schema/result.v1.json` and docs/contract.md, and
//! making assessor-shaped results for the relay to read.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::profiles::profile_id;
use crate::text::clip;

/// `schema/result.v1.json`, compiled once (batches check thousands).
static RESULT_SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let path = crate::workspace_root().join("schema/result.v1.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_slice(&bytes).expect("the result schema is JSON");
    jsonschema::validator_for(&schema).expect("result schema compiles")
});

static RFC3339: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
        .expect("the RFC 3339 pattern compiles")
});

/// Validates `result` against `schema/result.v1.json`; panics listing the errors.
pub fn assert_schema_valid(result: &Value) {
    let errors: Vec<String> = RESULT_SCHEMA
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result does not match schema/result.v1.json:\n  {}\nresult: {}",
        errors.join("\n  "),
        clip(&result.to_string(), 4000)
    );
}

/// Checks the fields every complete result of our assessor has.
pub fn assert_complete_result(r: &Value) {
    assert_schema_valid(r);
    assert_eq!(r["schema"], "shortlist.result/v1", "schema field: {r}");
    assert!(r["id"].as_str().is_some_and(|s| !s.is_empty()), "id: {r}");
    assert!(r["status"] == "ok" || r["status"] == "error", "status: {r}");
    assert_eq!(r["assessor"]["name"], "assessor", "assessor.name: {r}");
    assert!(
        r["assessor"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "assessor.version: {r}"
    );
    let at = r["assessed_at"].as_str().unwrap_or_default();
    assert!(RFC3339.is_match(at), "assessed_at is not RFC 3339: {at:?}");
    assert!(r["timings_ms"]["total"].is_u64(), "timings_ms.total: {r}");
    assert!(r["backend"]["kind"].is_string(), "backend.kind: {r}");
    // Our assessor writes every field, `null` where there is no value.
    for key in [
        "verdict",
        "score",
        "decided_by",
        "reasons",
        "usage",
        "attempts",
        "error",
        "profile",
    ] {
        assert!(r.get(key).is_some(), "result lacks field {key:?}: {r}");
    }
}

/// A complete result as our assessor writes it (docs/contract.md).
pub fn assessor_result(id: &str, profile: &Value, verdict: &str, score: Option<f64>) -> Value {
    json!({
        "schema": "shortlist.result/v1",
        "id": id,
        "status": "ok",
        "verdict": verdict,
        "score": score,
        "reasons": [format!("reason one for {id}"), "two bedrooms, within budget"],
        "decided_by": "llm",
        "profile": profile,
        "backend": {"kind": "openai", "model": "llama3.2"},
        "usage": {"prompt_tokens": 412, "completion_tokens": 38},
        "timings_ms": {"total": 912, "rules": 0, "llm": 911},
        "attempts": 1,
        "error": null,
        "assessor": {"name": "assessor", "version": "0.1.0"},
        "assessed_at": "2026-11-22T10:00:00.123Z"
    })
}

/// An accepted result (score 0.86) for `profile`, whose `metadata.id` is the id.
pub fn accept(profile: &Value) -> Value {
    assessor_result(&profile_id(profile), profile, "accept", Some(0.86))
}

/// A rejected result.
pub fn reject(profile: &Value) -> Value {
    assessor_result(&profile_id(profile), profile, "reject", Some(0.12))
}

/// An error result, as the assessor writes when the backend failed.
pub fn error_result(profile: &Value) -> Value {
    let mut r = assessor_result(&profile_id(profile), profile, "accept", None);
    r["status"] = json!("error");
    r["verdict"] = Value::Null;
    r["decided_by"] = Value::Null;
    r["reasons"] = json!([]);
    r["error"] = json!({"kind": "backend_unavailable", "message": "http://llm:8080/v1: connection refused on every attempt"});
    r
}
