//! `schema/notification.v1.json` describes what the real relay sends: the
//! body a plain https webhook receives, the line a `file://` target gets
//! and the line `stdout:` prints, for a full assessor result, a minimal
//! custom one with PROFILE_PATH, and one with an odd profile. Each is also
//! read back into the contract's typed `Notification`, which renders the
//! very same bytes: the type covers the wire.

use std::sync::LazyLock;

use serde_json::{Value, json};
use shortlist_contract::Notification;
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

static SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let path = workspace_root().join("schema/notification.v1.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_slice(&bytes).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the notification schema compiles")
});

fn assert_valid(what: &str, bytes: &[u8]) -> Value {
    let body: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON: {e}\n{}",
            String::from_utf8_lossy(bytes)
        )
    });
    let errors: Vec<String> = SCHEMA
        .iter_errors(&body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match schema/notification.v1.json:\n  {}\n{body:#}",
        errors.join("\n  ")
    );
    let typed: Notification = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{what} does not read as a Notification: {e}\n{body:#}"));
    assert_eq!(
        String::from_utf8_lossy(&typed.to_json_bytes()),
        String::from_utf8_lossy(bytes).trim_end(),
        "{what}: the typed Notification renders other bytes"
    );
    body
}

/// Delivers `result` (with `extra` settings) to a webhook, a file and
/// stdout at once, and checks all three against the schema.
async fn delivered(name: &str, result: &[u8], extra: Envs) -> Value {
    let dir = tempdir();
    let out_dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let lines = out_dir.path().join("out.jsonl");
    let path = write_atomic_bytes(dir.path(), "result.json", result);
    let notifier = format!("{},file://{},stdout:", server.url("/hook"), lines.display());
    let mut envs = result_env(&path, &notifier);
    for (k, v) in extra.0 {
        envs = envs.set(&k, v);
    }
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{name}: {}", server.describe());
    let body = assert_valid(&format!("{name}: the webhook body"), &requests[0].body);

    let file = std::fs::read(&lines).unwrap();
    let line = assert_valid(&format!("{name}: the file:// line"), &file);
    assert_eq!(line["webhook_id"], requests[0].webhook_id());
    assert!(line["delivered_at"].is_string(), "{line:#}");
    let stdout = out
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains("\"webhook_id\""))
        .unwrap_or_else(|| panic!("{name}: no stdout: line\n{}", out.ctx()))
        .to_string();
    assert_valid(&format!("{name}: the stdout: line"), stdout.as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_assessor_result_is_sent_as_the_schema_says() {
    let result = accept(&sample("s01"));
    let body = delivered("full", &to_bytes(&result), Envs::new()).await;
    assert_webhook_body(&body, &result);
    // The id is the `webhook-id` header's business; the lines add it.
    assert!(body.get("webhook_id").is_none(), "{body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_custom_result_with_profile_path_is_sent_as_the_schema_says() {
    let dir = tempdir();
    let profile = write_json(
        dir.path(),
        "profile.json",
        &json!({"text": "A flat", "metadata": {"id": "p1", "price": 300000}, "source": "x"}),
    );
    let body = delivered(
        "minimal",
        br#"{"verdict":"accept","decided_by":"heuristic","id":7}"#,
        Envs::new().set("PROFILE_PATH", profile.to_str().unwrap()),
    )
    .await;
    assert_eq!(body["source"], "x");
    assert_eq!(body["assessment"]["id"], "7");
    assert_eq!(body["assessment"]["score"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_profile_is_sent_as_the_schema_says() {
    let result = json!({
        "verdict": "accept",
        "score": 1,
        "reasons": [],
        "profile": {"text": 5, "metadata": [], "images": "a.jpg", "assessment": "mine", "webhook_id": "mine"}
    });
    let body = delivered("odd", &to_bytes(&result), Envs::new()).await;
    assert_eq!(body["text"], "");
    assert_eq!(body["metadata"], json!({}));
    assert_eq!(body["images"], json!([]));
    // A profile field named like the delivery's own is passed through to
    // the webhook body, replaced in the lines (as before the schema).
    assert_eq!(body["webhook_id"], "mine");
}
