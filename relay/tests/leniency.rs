//! Lenient where the contract promises it, strict where the schema is: an
//! unknown `decided_by` and a numeric `id` are delivered at once, and a
//! complete document that breaks the contract (a score of 86) is invalid at
//! once, not after RELAY_SETTLE_TIMEOUT.

use std::time::Duration;

use sha2::{Digest, Sha256};
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Far above "promptly": a wait for the settle timeout would show.
const SETTLE: &str = "10s";
const PROMPTLY: Duration = Duration::from_secs(5);

fn documented_webhook_id(id: &str) -> String {
    let digest = Sha256::digest(format!("shortlist-result:{id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

async fn run_one(bytes: &[u8]) -> (Notifier, Output) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = write_atomic_bytes(dir.path(), "result.json", bytes);
    let envs = result_env(&path, &server.url("/")).set("RELAY_SETTLE_TIMEOUT", SETTLE);
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    (server, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_decided_by_is_delivered_promptly() {
    let (server, out) = run_one(br#"{"verdict":"accept","decided_by":"heuristic"}"#).await;
    out.assert_code(0);
    assert!(out.elapsed < PROMPTLY, "{:?}\n{}", out.elapsed, out.ctx());
    assert_eq!(server.count(), 1, "{}", server.describe());
    assert_eq!(
        server.requests()[0].json()["assessment"]["verdict"],
        "accept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numeric_id_is_delivered_with_its_id() {
    let (server, out) = run_one(br#"{"verdict":"accept","id":4711,"score":0.9}"#).await;
    out.assert_code(0);
    assert!(out.elapsed < PROMPTLY, "{:?}\n{}", out.elapsed, out.ctx());
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let r = &requests[0];
    assert_eq!(r.json()["assessment"]["id"], "4711", "{}", r.describe());
    // The same id as `"id": "4711"`: a receiver sees one listing.
    assert_eq!(r.webhook_id(), documented_webhook_id("4711"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_above_one_is_invalid_promptly() {
    let (server, out) = run_one(br#"{"verdict":"accept","score":86}"#).await;
    out.assert_code(4);
    assert!(
        out.elapsed < PROMPTLY,
        "waited {:?} for a complete document that breaks the contract\n{}",
        out.elapsed,
        out.ctx()
    );
    assert!(out.mentions("result.json"), "{}", out.ctx());
    assert!(
        out.mentions("score 86 is outside [0, 1]"),
        "the log must name the field\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0, "{}", server.describe());
}

/// RELAY_MIN_SCORE is not fooled either: an out-of-range score is not
/// "above the threshold", it is invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_score_is_invalid_even_without_min_score() {
    let (server, out) = run_one(br#"{"verdict":"accept","score":-1}"#).await;
    out.assert_code(4);
    assert!(out.elapsed < PROMPTLY, "{:?}\n{}", out.elapsed, out.ctx());
    assert_eq!(server.count(), 0, "{}", server.describe());
}

/// An unknown verdict: serde's message does not name the field, the log
/// does (`"field":"verdict"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_verdict_is_invalid_and_the_log_names_the_field() {
    let (server, out) = run_one(br#"{"verdict":"maybe"}"#).await;
    out.assert_code(4);
    assert!(
        out.mentions(r#""field":"verdict""#),
        "the log must name the field\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0, "{}", server.describe());
}
