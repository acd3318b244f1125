//! Delivery receipts (`<result>.receipt`): written once every target
//! confirmed an accepted result, or when the policy keeps an accepted result
//! back; never for rejections, errors or failed deliveries; and written on
//! restart for a result the outbox shows delivered, without sending again.

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_follows_delivery_to_every_target() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let lines = dir.path().join("deliveries.jsonl");
    let result = accept(&sample("s01"));
    let path = write_atomic(dir.path(), "result.json", &result);
    let targets = format!(
        "{},file://{}",
        server.url("/hooks/shortlist"),
        lines.display()
    );
    let out = spawn_relay(RELAY, &result_env(&path, &targets))
        .wait(GUARD)
        .await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let receipt = receipt_of(&path).unwrap_or_else(|| panic!("no receipt\n{}", out.ctx()));
    assert_eq!(receipt["receipt_version"], 1);
    assert_eq!(receipt["result"], "result.json");
    assert_eq!(receipt["outcome"], "delivered");
    assert_eq!(receipt["id"], result["id"]);
    assert_eq!(receipt["webhook_id"], requests[0].webhook_id().as_str());
    let deliveries = receipt["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{receipt:#}");
    assert!(deliveries.iter().any(|d| d["status"] == 200), "{receipt:#}");
    assert!(
        deliveries
            .iter()
            .any(|d| d["target"].as_str().unwrap().starts_with("file://")),
        "{receipt:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_receipt_while_one_target_is_missing() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    // 410: gone for good, not retried.
    server.set_default(Reply::status(410));
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let lines = dir.path().join("deliveries.jsonl");
    let targets = format!("file://{},{}", lines.display(), server.url("/gone"));
    let out = spawn_relay(RELAY, &result_env(&path, &targets))
        .wait(GUARD)
        .await;
    out.assert_code(1);
    assert!(
        lines.exists(),
        "the file target was not written\n{}",
        out.ctx()
    );
    assert_eq!(receipt_of(&path), None, "{}", out.ctx());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_result_below_min_score_gets_a_not_forwarded_receipt() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let mut result = accept(&sample("s01"));
    result["score"] = serde_json::json!(0.4);
    let path = write_atomic(dir.path(), "result.json", &result);
    let out = spawn_relay(
        RELAY,
        &result_env(&path, &server.url("/")).set("RELAY_MIN_SCORE", "0.5"),
    )
    .wait(GUARD)
    .await;
    out.assert_code(0);
    assert_eq!(server.count(), 0);
    let receipt = receipt_of(&path).unwrap_or_else(|| panic!("no receipt\n{}", out.ctx()));
    assert_eq!(receipt["outcome"], "not_forwarded");
    let reason = receipt["reason"].as_str().unwrap();
    assert!(reason.contains("RELAY_MIN_SCORE"), "{reason}");
    assert_eq!(receipt["deliveries"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_and_errors_get_no_receipt() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let rejected = write_atomic(dir.path(), "rejected.json", &reject(&sample("s02")));
    let failed = write_atomic(dir.path(), "failed.json", &error_result(&sample("s03")));
    let out = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 2))
        .wait(GUARD)
        .await;
    out.assert_code(5);
    assert_eq!(receipt_of(&rejected), None);
    assert_eq!(receipt_of(&failed), None);
}

/// A relay killed after the last record but before the receipt: the
/// restarted one finds every target in the outbox, sends nothing, and
/// writes the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_writes_the_missing_receipt_without_sending_again() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let result = accept(&sample("s01"));
    let path = write_atomic(dir.path(), "result.json", &result);
    let envs = result_env(&path, &server.url("/hook"));
    spawn_relay(RELAY, &envs).wait(GUARD).await.assert_code(0);
    assert_eq!(server.count(), 1);
    let first = receipt_of(&path).expect("a receipt after the first run");
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".receipt");
    std::fs::remove_file(path.with_file_name(name)).unwrap();

    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 1, "sent again\n{}", server.describe());
    let again =
        receipt_of(&path).unwrap_or_else(|| panic!("no receipt after restart\n{}", out.ctx()));
    assert_eq!(again["webhook_id"], first["webhook_id"]);
    assert_eq!(again["deliveries"], first["deliveries"]);
}
