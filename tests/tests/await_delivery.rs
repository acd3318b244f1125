//! The delivery chain through the file contract: the assessor, given
//! `ASSESSOR_AWAIT_DELIVERY`, writes an accepted result and waits for the
//! relay's receipt; without one in time it exits 6, so the Job retries the
//! pod instead of losing the verdict. Real binaries, a real notifier.

use std::path::Path;

use serde_json::Value;
use testkit::*;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The assessor (fixed backend, `verdict`) and the relay on one results
/// directory, as the pod runs them.
fn pair_envs(dir: &Path, verdict: &str, wait: &str) -> (Envs, Envs) {
    let profile = sample_path("s01");
    let result = dir.join("result.json");
    let assessor = Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", result.to_str().unwrap())
        .set("LLM_BACKEND", "fixed")
        .set("FIXED_VERDICT", verdict)
        .set("ASSESSOR_AWAIT_DELIVERY", wait)
        .set("LOG_FORMAT", "json");
    let relay = relay::fast()
        .set("RESULT_PATH", result.to_str().unwrap())
        .set("PROFILE_PATH", profile.to_str().unwrap())
        // A native sidecar: runs until SIGTERM.
        .set("RELAY_EXPECT", "0")
        .set("RELAY_DRAIN_TIMEOUT", "2s");
    (assessor, relay)
}

fn spawn_assessor(envs: &Envs) -> Process {
    let cmd = command(
        binary::assessor(),
        &std::env::temp_dir(),
        envs.iter().map(|(k, v)| (k, v)),
    );
    Process::spawn(cmd, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_result_waits_for_its_receipt_and_succeeds() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let (assessor, relay) = pair_envs(dir.path(), "accept", "30s");
    let relay = spawn_relay(
        binary::relay(),
        &relay.set("NOTIFIER_URL", server.url("/hook")),
    );
    let out = spawn_assessor(&assessor).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
    let receipt = receipt_of(&dir.path().join("result.json")).expect("a receipt");
    assert_eq!(receipt["outcome"], "delivered");
    assert_eq!(
        receipt["webhook_id"],
        server.requests()[0].webhook_id().as_str()
    );
    assert!(
        out.stderr.contains("delivery confirmed"),
        "the assessor does not say it waited\n{}",
        out.ctx()
    );
    relay.sigterm();
    relay.wait(GUARD).await.assert_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_down_past_the_wait_makes_the_assessor_exit_6() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    server.set_default(Reply::status(503));
    let (assessor, relay) = pair_envs(dir.path(), "accept", "2s");
    let relay = spawn_relay(
        binary::relay(),
        &relay
            .set("NOTIFIER_URL", server.url("/hook"))
            .set("RELAY_DELIVERY_DEADLINE", "30s"),
    );
    let out = spawn_assessor(&assessor).wait(GUARD).await;
    out.assert_code(6);
    assert!(
        out.stderr.contains("delivery not confirmed")
            && out.stderr.contains("ASSESSOR_AWAIT_DELIVERY"),
        "{}",
        out.ctx()
    );
    // The verdict itself is written; only its delivery is unconfirmed.
    assert_eq!(
        read_json(&dir.path().join("result.json"))["verdict"],
        "accept"
    );
    assert!(!dir.path().join("result.json.receipt").exists());
    assert!(server.count() >= 1, "{}", server.describe());
    relay.sigterm();
    // Delivery abandoned at the drain: the relay says so with exit 1.
    relay.wait(GUARD).await.assert_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_does_not_wait() {
    let dir = tempdir();
    // No relay at all: a rejection is never delivered, so never awaited.
    let (assessor, _) = pair_envs(dir.path(), "reject", "1h");
    let out = spawn_assessor(&assessor).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(
        read_json(&dir.path().join("result.json"))["verdict"],
        "reject"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_needs_a_result_file() {
    let dir = tempdir();
    let (assessor, _) = pair_envs(dir.path(), "accept", "10s");
    let out = spawn_assessor(&assessor.remove("RESULT_PATH"))
        .wait(GUARD)
        .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("RESULT_PATH") && out.stderr.contains("ASSESSOR_AWAIT_DELIVERY"),
        "{}",
        out.ctx()
    );
}

/// A receipt left by an earlier run at the same path does not end the wait
/// of a new result: the assessor removes it before writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_receipt_does_not_confirm_a_new_result() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("result.json.receipt"),
        br#"{"receipt_version":1,"result":"result.json","id":"s01","webhook_id":"msg_old","outcome":"delivered","deliveries":[],"written_at":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let (assessor, _) = pair_envs(dir.path(), "accept", "1s");
    let out = spawn_assessor(&assessor).wait(GUARD).await;
    out.assert_code(6);
    assert!(!dir.path().join("result.json.receipt").exists());
}

/// A batch (directory input, RESULT_DIR watched by the relay) waits, after
/// its last profile, for the receipts of every accepted result it wrote.
async fn batch_against(server: &Notifier, wait: &str) -> (tempfile::TempDir, Output, Process) {
    let input = tempdir();
    for name in ["s01", "s03", "s04"] {
        std::fs::copy(sample_path(name), input.path().join(format!("{name}.json"))).unwrap();
    }
    let results = tempdir();
    let relay = spawn_relay(
        binary::relay(),
        &relay::fast()
            .set("WATCH_DIR", results.path().to_str().unwrap())
            .set("RELAY_EXPECT", "0")
            .set("RELAY_DRAIN_TIMEOUT", "1s")
            .set("NOTIFIER_URL", server.url("/hook")),
    );
    let assessor = Envs::new()
        .set("PROFILE_PATH", input.path().to_str().unwrap())
        .set("RESULT_DIR", results.path().to_str().unwrap())
        .set("LLM_BACKEND", "fixed")
        .set("FIXED_VERDICT", "accept")
        .set("ASSESSOR_AWAIT_DELIVERY", wait)
        .set("LOG_FORMAT", "json");
    let out = spawn_assessor(&assessor).wait(GUARD).await;
    (results, out, relay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waits_for_the_receipt_of_every_accepted_result() {
    let server = Notifier::start(vec![]).await;
    let (results, out, relay) = batch_against(&server, "30s").await;
    out.assert_code(0);
    assert_eq!(server.count(), 3, "{}", server.describe());
    for name in ["s01", "s03", "s04"] {
        let receipt = receipt_of(&results.path().join(format!("{name}.json")))
            .unwrap_or_else(|| panic!("no receipt for {name}\n{}", out.ctx()));
        assert_eq!(receipt["outcome"], "delivered");
    }
    relay.sigterm();
    relay.wait(GUARD).await.assert_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_unconfirmed_deliveries_exits_6() {
    let server = Notifier::start(vec![]).await;
    server.set_default(Reply::status(503));
    let (results, out, relay) = batch_against(&server, "2s").await;
    out.assert_code(6);
    assert!(
        out.stderr.contains("delivery not confirmed") && out.stderr.contains("2 more missing"),
        "{}",
        out.ctx()
    );
    // Every result is written all the same.
    for name in ["s01", "s03", "s04"] {
        assert_eq!(
            read_json(&results.path().join(format!("{name}.json")))["verdict"],
            "accept"
        );
    }
    relay.sigterm();
    relay.wait(GUARD).await;
}
