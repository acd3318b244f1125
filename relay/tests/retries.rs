//! Retrying deliveries: what is retried (408, 429, 5xx, connection errors,
//! timeouts), what is not (other 4xx, 3xx), Retry-After, and the deadline.

use std::time::{Duration, Instant};

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// One accepted result in a fresh directory; returns (dir, RESULT_PATH env).
fn one_result(url: &str) -> (tempfile::TempDir, Envs) {
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let envs = result_env(&path, url);
    (dir, envs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_503s_then_200_is_delivered_with_one_webhook_id() {
    let server = Notifier::start(vec![
        Reply::status(503),
        Reply::status(503),
        Reply::status(503),
        Reply::ok(),
    ])
    .await;
    let (dir, envs) = one_result(&server.url("/hook"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);

    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{}\n{}", server.describe(), out.ctx());
    let id = requests[0].webhook_id();
    for r in &requests {
        assert_webhook_headers(r);
        assert_eq!(
            r.webhook_id(),
            id,
            "webhook-id changed between attempts\n{}",
            server.describe()
        );
        assert_eq!(
            r.body, requests[0].body,
            "the body changed between attempts"
        );
    }
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(records.len(), 1, "one delivery record: {records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retriable_status_is_retried() {
    let server = Notifier::start(vec![
        Reply::status(408),
        Reply::status(429),
        Reply::status(500),
        Reply::status(502),
        Reply::status(504),
        Reply::ok(),
    ])
    .await;
    let (_dir, envs) = one_result(&server.url("/"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 6, "{}", server.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_is_honoured() {
    let server = Notifier::start(vec![
        Reply::status(429).header("retry-after", "1"),
        Reply::ok(),
    ])
    .await;
    let (_dir, envs) = one_result(&server.url("/"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_millis(900),
        "retried after {gap:?}, before Retry-After: 1"
    );
    assert!(
        gap < Duration::from_secs(5),
        "retried after {gap:?}, far later than Retry-After: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_http_date_is_honoured() {
    // Two seconds after the reply, truncated to whole seconds: more than one
    // second away when the relay reads it.
    let server = Notifier::start(vec![
        Reply::status(503).header_date_in("retry-after", Duration::from_secs(2)),
        Reply::ok(),
    ])
    .await;
    let (_dir, envs) = one_result(&server.url("/"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_millis(850),
        "retried after {gap:?}, before the Retry-After date"
    );
    assert!(gap < Duration::from_secs(6), "retried after {gap:?}");
}

/// A Retry-After beyond the delivery deadline is not waited out for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_beyond_the_deadline_fails_promptly() {
    let server = Notifier::start(vec![Reply::status(503).header("retry-after", "120")]).await;
    let (_dir, envs) = one_result(&server.url("/"));
    let envs = envs.set("RELAY_DELIVERY_DEADLINE", "1s");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    assert!(out.elapsed < Duration::from_secs(5), "{}", out.ctx());
    assert_eq!(server.count(), 1, "{}", server.describe());
}

async fn not_retried(reply: Reply) -> (Notifier, Output) {
    let server = Notifier::start(vec![reply.clone()]).await;
    let (dir, envs) = one_result(&server.url("/hook"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    // The relay has exited: a (wrong) retry would have been sent already.
    assert_eq!(
        server.count(),
        1,
        "status {} must not be retried or followed\n{}\n{}",
        reply.status,
        server.describe(),
        out.ctx()
    );
    assert!(
        outbox_records(&dir.path().join(".relay")).is_empty(),
        "a failed delivery must not be recorded as delivered"
    );
    (server, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried_and_exits_1() {
    not_retried(Reply::status(400).body("{\"error\":\"bad payload\"}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_is_not_retried_and_exits_1() {
    not_retried(Reply::status(410)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_is_not_followed_and_exits_1() {
    // The Location points back at the same server: following it would show
    // up as a second request (to /moved).
    let server = Notifier::start(vec![]).await;
    let location = server.url("/moved");
    server.push([Reply::status(302).header("location", &location)]);
    let (_dir, envs) = one_result(&server.url("/hook"));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "the redirect was followed\n{}",
        server.describe()
    );
    assert_eq!(requests[0].path, "/hook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_is_not_retried_and_exits_1() {
    not_retried(Reply::status(401)).await;
}

/// A server that accepts and never answers: each attempt times out after
/// RELAY_REQUEST_TIMEOUT, retries stop at RELAY_DELIVERY_DEADLINE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_times_out_and_the_deadline_ends_it_with_exit_1() {
    let hole = BlackHole::start().await;
    let (_dir, envs) = one_result(&hole.url("/hook"));
    let envs = envs
        .set("RELAY_REQUEST_TIMEOUT", "300ms")
        .set("RELAY_DELIVERY_DEADLINE", "2s");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    let attempts = hole.connections();
    assert!(
        attempts >= 3,
        "expected several attempts, got {attempts}\n{}",
        out.ctx()
    );
    // The last wait may be skipped once it would pass the deadline: at
    // least 5 attempts of 300 ms (1.5 s) run; allow for that.
    assert!(
        out.elapsed >= Duration::from_millis(1000),
        "gave up before the deadline\n{}",
        out.ctx()
    );
    assert!(
        out.elapsed < Duration::from_secs(6),
        "did not stop at the deadline\n{}",
        out.ctx()
    );
}

/// 503 for ever: retried until the deadline, then exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_503s_end_at_the_deadline_with_exit_1() {
    let server = Notifier::start(vec![]).await;
    server.set_default(Reply::status(503));
    let (_dir, envs) = one_result(&server.url("/"));
    let envs = envs.set("RELAY_DELIVERY_DEADLINE", "1s");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    assert!(
        server.count() >= 3,
        "expected several attempts\n{}",
        server.describe()
    );
    assert!(out.elapsed < Duration::from_secs(5), "{}", out.ctx());
}

/// Connection refused until the notifier comes up about a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_until_the_server_comes_up() {
    let port = unbound_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (dir, envs) = one_result(&url);
    let mut relay = spawn_relay(RELAY, &envs);
    let started = Instant::now();
    // Not synchronisation: the outage the relay has to ride out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !relay.has_exited(),
        "the relay gave up during a 1 s outage\n{}",
        relay.ctx()
    );
    let server = Notifier::start_on(port, vec![]).await;
    relay
        .expect_requests(&server, 1, Duration::from_secs(10))
        .await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
    assert!(started.elapsed() >= Duration::from_secs(1));
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(records.len(), 1, "{records:?}");
    if let Some(attempts) = records[0].1["attempts"].as_u64() {
        assert!(
            attempts >= 2,
            "the record says it took {attempts} attempt(s): {records:?}"
        );
    }
}
