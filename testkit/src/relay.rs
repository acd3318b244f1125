//! Running the `relay` binary and reading what it left: its environments,
//! its outbox records, and the webhook bodies and headers it sends. The
//! binary path comes from the test (`env!("CARGO_BIN_EXE_relay")` in the
//! relay's own suites, [`crate::binary::relay`] elsewhere).

use std::ffi::OsStr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::env::Envs;
use crate::http::Recorded;
use crate::process::{Process, command};

/// Spawns the relay `bin` with a cleared environment plus `PATH`,
/// `LOG_FORMAT=json` and `envs`.
pub fn spawn_relay(bin: impl AsRef<OsStr>, envs: &Envs) -> Process {
    spawn_relay_with_args(bin, envs, &[])
}

pub fn spawn_relay_with_args(bin: impl AsRef<OsStr>, envs: &Envs, args: &[&str]) -> Process {
    let mut cmd = command(bin, &std::env::temp_dir(), envs.iter().map(|(k, v)| (k, v)));
    cmd.args(args);
    Process::spawn(cmd, None)
}

/// Settings every test wants: fast retries, and a wait timeout that ends a
/// relay that never sees its results well before the test guard.
pub fn fast() -> Envs {
    Envs::new()
        .set("RELAY_RETRY_BASE_DELAY", "50ms")
        .set("RELAY_WAIT_TIMEOUT", "20s")
        .set("RELAY_REQUEST_TIMEOUT", "5s")
}

/// One expected result at `path`, delivered to `notifier`.
pub fn result_env(path: &Path, notifier: &str) -> Envs {
    fast()
        .set("RESULT_PATH", path.to_str().unwrap())
        .set("NOTIFIER_URL", notifier)
}

/// `expect` results in `dir`, delivered to `notifier`.
pub fn dir_env(dir: &Path, notifier: &str, expect: u64) -> Envs {
    fast()
        .set("WATCH_DIR", dir.to_str().unwrap())
        .set("NOTIFIER_URL", notifier)
        .set("RELAY_EXPECT", expect.to_string())
}

/// The delivery records in `state_dir` (`*.delivered`), by file name.
pub fn outbox_records(state_dir: &Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return out;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".delivered") {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Asserts the generic webhook body: the profile's `text`, `metadata` and
/// `images` at the top level, and an `assessment` object.
pub fn assert_webhook_body(body: &Value, result: &Value) {
    let profile = &result["profile"];
    assert_eq!(body["text"], profile["text"], "body.text\n{body:#}");
    assert_eq!(
        body["metadata"], profile["metadata"],
        "body.metadata\n{body:#}"
    );
    assert_eq!(body["images"], profile["images"], "body.images\n{body:#}");
    let a = &body["assessment"];
    assert!(a.is_object(), "body.assessment must be an object\n{body:#}");
    for key in [
        "verdict",
        "score",
        "reasons",
        "id",
        "assessed_at",
        "backend",
    ] {
        assert!(
            a.get(key).is_some(),
            "body.assessment lacks {key:?}\n{body:#}"
        );
        assert_eq!(a[key], result[key], "body.assessment.{key}\n{body:#}");
    }
}

/// Asserts the Standard Webhooks headers are there and sane.
pub fn assert_webhook_headers(r: &Recorded) {
    let id = r.webhook_id();
    assert!(!id.trim().is_empty(), "empty webhook-id\n{}", r.describe());
    let ts: i64 = r
        .must_header("webhook-timestamp")
        .parse()
        .unwrap_or_else(|_| panic!("webhook-timestamp is not unix seconds\n{}", r.describe()));
    let now = unix_now();
    assert!(
        (ts - now).abs() <= 120,
        "webhook-timestamp {ts} is far from now ({now})\n{}",
        r.describe()
    );
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}
