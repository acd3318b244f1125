//! Seeing results and delivering each exactly once: present before start,
//! renamed in later, written non-atomically, and a batch of many, each by
//! inotify and by polling (`RELAY_POLL_INTERVAL`).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// inotify (the default) or polling.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Inotify,
    Poll,
}

impl Mode {
    /// In polling mode the relay says so (RELAY_POLL_INTERVAL must not be ignored).
    fn check_log(self, out: &Output) {
        if let Mode::Poll = self {
            assert!(
                out.stderr.to_lowercase().contains("poll"),
                "RELAY_POLL_INTERVAL is set but the log never mentions polling\n{}",
                out.ctx()
            );
        }
    }

    fn apply(self, envs: Envs) -> Envs {
        match self {
            Mode::Inotify => envs.remove("RELAY_POLL_INTERVAL"),
            Mode::Poll => envs.set("RELAY_POLL_INTERVAL", "50ms"),
        }
    }
}

/// A result present before the relay starts is delivered; the body has the
/// profile at the top level and the assessment beside it.
async fn present_before_start(mode: Mode) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let result = accept(&sample("s01"));
    let path = write_atomic(dir.path(), "result.json", &result);

    let relay = spawn_relay(
        RELAY,
        &mode.apply(result_env(&path, &server.url("/hooks/shortlist"))),
    );
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    mode.check_log(&out);

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}\n{}", server.describe(), out.ctx());
    let r = &requests[0];
    assert_eq!(r.method, "POST", "{}", r.describe());
    assert_eq!(r.path, "/hooks/shortlist", "{}", r.describe());
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "content-type\n{}",
        r.describe()
    );
    assert_webhook_headers(r);
    assert_webhook_body(r.json(), &result);
    assert_eq!(r.json()["assessment"]["verdict"], "accept");
}

/// A result renamed into the directory after start is found by the watch.
/// The first result proves the initial scan is over, so the second can only
/// be seen through the watch (inotify events, or a later poll).
async fn renamed_in_after_start(mode: Mode) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let first = accept(&full_profile("first", "The first listing."));
    write_atomic(dir.path(), "first.json", &first);

    let mut relay = spawn_relay(RELAY, &mode.apply(dir_env(dir.path(), &server.url("/"), 2)));
    relay.expect_requests(&server, 1, GUARD).await;

    let second = accept(&full_profile(
        "second",
        "The second listing, renamed in later.",
    ));
    write_atomic(dir.path(), "second.json", &second);
    relay
        .expect_requests(&server, 2, Duration::from_secs(10))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    mode.check_log(&out);

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    assert_webhook_body(requests[1].json(), &second);
}

/// `RESULT_PATH` mode: the one expected file appears (renamed in) after start.
async fn result_path_renamed_in(mode: Mode) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    let mut relay = spawn_relay(RELAY, &mode.apply(result_env(&path, &server.url("/"))));
    // The state directory is created at start-up, before the watch begins;
    // whether the file lands before or after the first scan, it must be seen.
    assert!(
        wait_until(Duration::from_secs(10), || dir
            .path()
            .join(".relay")
            .is_dir())
        .await,
        "the relay never created its state dir\n{}",
        relay.ctx()
    );
    let result = accept(&sample("s01"));
    write_atomic(dir.path(), "result.json", &result);
    relay
        .expect_requests(&server, 1, Duration::from_secs(10))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    mode.check_log(&out);
    assert_eq!(server.count(), 1, "{}", server.describe());
    assert_webhook_body(server.requests()[0].json(), &result);
}

/// A writer that does not rename: half the file, a pause, the rest. The
/// relay must deliver once, the whole result, never the half.
async fn non_atomic_write_in_halves(mode: Mode) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    // A long text so that the split falls inside it.
    let text = format!(
        "Victorian terrace. {}The end.",
        "Lots of original features. ".repeat(80)
    );
    let result = accept(&full_profile("halves", &text));
    let bytes = to_bytes(&result);

    let mut relay = spawn_relay(RELAY, &mode.apply(result_env(&path, &server.url("/"))));
    assert!(
        wait_until(Duration::from_secs(10), || dir
            .path()
            .join(".relay")
            .is_dir())
        .await,
        "the relay never created its state dir\n{}",
        relay.ctx()
    );
    write_in_halves(&path, &bytes, Duration::from_millis(300)).await;
    relay
        .expect_requests(&server, 1, Duration::from_secs(10))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    mode.check_log(&out);

    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "delivered more than once\n{}",
        server.describe()
    );
    let body = requests[0].json();
    assert_eq!(
        body["text"].as_str(),
        Some(text.as_str()),
        "the body does not carry the whole text"
    );
    assert_webhook_body(body, &result);
}

/// `n` results written while the relay runs: each delivered exactly once.
async fn batch(mode: Mode, n: usize) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let mut relay = spawn_relay(
        RELAY,
        &mode.apply(dir_env(dir.path(), &server.url("/batch"), n as u64)),
    );
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("batch-{i:03}");
        let result = accept(&full_profile(&id, &format!("Listing number {i}.")));
        write_atomic(dir.path(), &format!("{id}.json"), &result);
        ids.push(id);
    }
    relay
        .expect_requests(&server, n, Duration::from_secs(20))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    mode.check_log(&out);

    let requests = server.requests();
    assert_eq!(
        requests.len(),
        n,
        "each result must be delivered once\n{}",
        out.ctx()
    );
    let mut by_webhook_id: HashMap<String, usize> = HashMap::new();
    let mut by_result_id: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        *by_webhook_id.entry(r.webhook_id()).or_default() += 1;
        let body = r.json();
        let id = body["assessment"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *by_result_id.entry(id).or_default() += 1;
    }
    let dupes: Vec<_> = by_webhook_id.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dupes.is_empty(), "duplicate webhook-ids: {dupes:?}");
    assert_eq!(by_webhook_id.len(), n, "distinct webhook-ids");
    for id in &ids {
        assert_eq!(
            by_result_id.get(id),
            Some(&1),
            "result {id} delivered {:?} times",
            by_result_id.get(id)
        );
    }
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(
        records.len(),
        n,
        "one delivery record per result: {:?}",
        records.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
}

// --- inotify -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_result_present_before_start_is_delivered() {
    present_before_start(Mode::Inotify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_result_renamed_in_after_start_is_delivered() {
    renamed_in_after_start(Mode::Inotify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_result_path_renamed_in_after_start_is_delivered() {
    result_path_renamed_in(Mode::Inotify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_non_atomic_write_is_delivered_once_and_whole() {
    non_atomic_write_in_halves(Mode::Inotify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_200_results_are_each_delivered_exactly_once() {
    batch(Mode::Inotify, 200).await;
}

// --- polling -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_result_present_before_start_is_delivered() {
    present_before_start(Mode::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_result_renamed_in_after_start_is_delivered() {
    renamed_in_after_start(Mode::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_result_path_renamed_in_after_start_is_delivered() {
    result_path_renamed_in(Mode::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_non_atomic_write_is_delivered_once_and_whole() {
    non_atomic_write_in_halves(Mode::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_50_results_are_each_delivered_exactly_once() {
    batch(Mode::Poll, 50).await;
}

/// A result rewritten after it was handled is not delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_rewritten_after_delivery_is_not_sent_again() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    write_atomic(
        dir.path(),
        "a.json",
        &accept(&full_profile("a", "Listing a.")),
    );
    // Two expected: the relay keeps watching after the first delivery.
    let mut relay = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 2));
    relay.expect_requests(&server, 1, GUARD).await;
    let mut changed: Value = accept(&full_profile("a", "Listing a, rewritten."));
    changed["score"] = serde_json::json!(0.99);
    write_atomic(dir.path(), "a.json", &changed);
    write_atomic(
        dir.path(),
        "b.json",
        &accept(&full_profile("b", "Listing b.")),
    );
    relay
        .expect_requests(&server, 2, Duration::from_secs(10))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    assert_eq!(
        requests[1].json()["assessment"]["id"],
        "b",
        "{}",
        server.describe()
    );
}
