//! `webhook-id`s of results without an id: the documented minimal result
//! `{"verdict":"accept"}` is byte-identical in every pod, yet two pods must
//! never share a `webhook-id` (a deduplicating receiver would drop the
//! second listing), while a relay restarted in the same pod keeps the one
//! it used. Results with an id keep the documented deterministic one.

use std::path::Path;

use sha2::{Digest, Sha256};
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
const MINIMAL: &[u8] = br#"{"verdict":"accept"}"#;

/// `msg_` + the first 16 bytes of SHA-256 of `shortlist-result:<id>`, as
/// docs/contract.md documents it.
fn documented_webhook_id(id: &str) -> String {
    let digest = Sha256::digest(format!("shortlist-result:{id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// Runs one relay (one pod) on `bytes` as `result.json` in `dir`, to a
/// notifier answering 200; returns the `webhook-id` it sent.
async fn webhook_id_of_one_pod(dir: &Path, bytes: &[u8]) -> String {
    let server = Notifier::start(vec![]).await;
    let path = write_atomic_bytes(dir, "result.json", bytes);
    let out = spawn_relay(RELAY, &result_env(&path, &server.url("/")))
        .wait(GUARD)
        .await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}\n{}", server.describe(), out.ctx());
    requests[0].webhook_id().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_with_byte_identical_minimal_results_get_different_webhook_ids() {
    let (a, b) = (tempdir(), tempdir());
    let (id_a, id_b) = tokio::join!(
        webhook_id_of_one_pod(a.path(), MINIMAL),
        webhook_id_of_one_pod(b.path(), MINIMAL)
    );
    assert!(id_a.starts_with("msg_"), "{id_a}");
    assert_ne!(id_a, id_b, "two pods' minimal results share a webhook-id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_relay_redelivers_with_the_webhook_id_it_used() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    server.set_default(Reply::status(503));
    let path = write_atomic_bytes(dir.path(), "result.json", MINIMAL);
    let envs = result_env(&path, &server.url("/"));

    // The first relay is killed while the notifier is down: nothing recorded.
    let mut first = spawn_relay(RELAY, &envs);
    first.expect_requests(&server, 2, GUARD).await;
    first.kill9().await;
    let tried = server.count();

    // Restarted in the same pod (same state dir): delivered, same id.
    server.set_default(Reply::ok());
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert!(
        requests.len() > tried,
        "{}\n{}",
        server.describe(),
        out.ctx()
    );
    let first_id = requests[0].webhook_id();
    for r in &requests {
        assert_eq!(r.webhook_id(), first_id, "{}", server.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_with_an_id_keep_their_deterministic_webhook_id() {
    let (a, b) = (tempdir(), tempdir());
    let with_id = br#"{"verdict":"accept","id":"s01"}"#;
    let (id_a, id_b) = tokio::join!(
        webhook_id_of_one_pod(a.path(), with_id),
        webhook_id_of_one_pod(b.path(), with_id)
    );
    assert_eq!(id_a, documented_webhook_id("s01"));
    assert_eq!(id_a, "msg_1968acf444672254d1b5c77b8baf7cce");
    assert_eq!(
        id_b, id_a,
        "an id'd result's webhook-id must not depend on the pod"
    );
}
