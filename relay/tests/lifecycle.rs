//! Restarts and signals: `kill -9` mid-retry then a restart on the same
//! volume (the outbox makes it exactly once, the webhook-id is stable), two
//! targets tracked separately, and SIGTERM draining in sidecar mode.

use std::time::{Duration, Instant};

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

fn ok_count(server: &Notifier) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| (200..300).contains(&r.replied))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_retrying_then_restart_delivers_once_with_the_same_webhook_id() {
    let dir = tempdir();
    let state = dir.path().join(".relay");
    let server = Notifier::start(vec![]).await;
    server.set_default(Reply::status(503));
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let envs = result_env(&path, &server.url("/hook"));

    // First relay: keeps getting 503s and retrying; killed mid-way.
    let mut first = spawn_relay(RELAY, &envs);
    first.expect_requests(&server, 2, GUARD).await;
    let killed = first.kill9().await;
    assert_eq!(
        killed.code,
        -1,
        "the first relay should have been killed\n{}",
        killed.ctx()
    );
    assert!(
        outbox_records(&state).is_empty(),
        "nothing was delivered yet: {:?}",
        outbox_records(&state)
    );
    let before = server.count();

    // Second relay, same volume, the notifier has recovered.
    server.set_default(Reply::ok());
    let mut second = spawn_relay(RELAY, &envs);
    second.expect_requests(&server, before + 1, GUARD).await;
    let out = second.wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    let id = requests[0].webhook_id();
    for r in &requests {
        assert_eq!(
            r.webhook_id(),
            id,
            "the webhook-id changed across attempts or restarts\n{}",
            server.describe()
        );
    }
    assert_eq!(
        ok_count(&server),
        1,
        "the receiver acknowledged more than one delivery\n{}",
        server.describe()
    );
    let records = outbox_records(&state);
    assert_eq!(records.len(), 1, "{records:?}");
    if let Some(recorded) = records[0].1["webhook_id"].as_str() {
        assert_eq!(
            recorded, id,
            "the record names another webhook-id: {records:?}"
        );
    }

    // Third relay: the outbox says delivered; nothing is sent, exit 0 promptly.
    let count = server.count();
    let third = spawn_relay(RELAY, &envs).wait(GUARD).await;
    third.assert_code(0);
    assert_eq!(
        server.count(),
        count,
        "a delivered result was sent again\n{}",
        server.describe()
    );
    assert!(third.elapsed < Duration::from_secs(5), "{}", third.ctx());
}

/// Two targets: each gets the result once; a restart resends only to the
/// one that had not confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_targets_are_tracked_separately_across_a_restart() {
    let dir = tempdir();
    let state = dir.path().join(".relay");
    let good = Notifier::start(vec![]).await;
    let flaky = Notifier::start(vec![]).await;
    flaky.set_default(Reply::status(503));
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let targets = format!("{},{}", good.url("/good"), flaky.url("/flaky"));
    let envs = result_env(&path, &targets);

    let mut first = spawn_relay(RELAY, &envs);
    first.expect_requests(&good, 1, GUARD).await;
    first.expect_requests(&flaky, 2, GUARD).await;
    assert!(
        wait_until(Duration::from_secs(10), || outbox_records(&state).len()
            == 1)
        .await,
        "the confirmed delivery was never recorded: {:?}\n{}",
        outbox_records(&state),
        first.ctx()
    );
    let killed = first.kill9().await;
    assert_eq!(killed.code, -1, "{}", killed.ctx());
    assert_eq!(good.count(), 1, "{}", good.describe());

    flaky.set_default(Reply::ok());
    let flaky_before = flaky.count();
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(
        good.count(),
        1,
        "the target that had confirmed got it again\n{}",
        good.describe()
    );
    assert!(flaky.count() > flaky_before, "{}", flaky.describe());
    assert_eq!(ok_count(&flaky), 1, "{}", flaky.describe());
    assert_eq!(
        outbox_records(&state).len(),
        2,
        "{:?}",
        outbox_records(&state)
    );
    assert_eq!(
        good.requests()[0].webhook_id(),
        flaky.requests().last().unwrap().webhook_id(),
        "one result, one idempotency key"
    );

    let third = spawn_relay(RELAY, &envs).wait(GUARD).await;
    third.assert_code(0);
    assert_eq!(good.count(), 1);
    assert_eq!(ok_count(&flaky), 1);
}

/// RELAY_STATE_DIR moves the outbox; a restart with it still dedupes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_state_dir_holds_the_outbox() {
    let dir = tempdir();
    let state = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let envs =
        result_env(&path, &server.url("/")).set("RELAY_STATE_DIR", state.path().to_str().unwrap());
    spawn_relay(RELAY, &envs).wait(GUARD).await.assert_code(0);
    assert_eq!(
        outbox_records(state.path()).len(),
        1,
        "{:?}",
        outbox_records(state.path())
    );
    spawn_relay(RELAY, &envs).wait(GUARD).await.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
}

// --- signals -------------------------------------------------------------------

/// Sidecar mode: SIGTERM while a delivery is in flight; the relay waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_delivery_and_exits_0() {
    let dir = tempdir();
    let server = Notifier::start(vec![Reply::ok().delayed(Duration::from_secs(1))]).await;
    let envs = dir_env(dir.path(), &server.url("/"), 0);
    let mut relay = spawn_relay(RELAY, &envs);
    write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    relay.expect_requests(&server, 1, GUARD).await;
    let signalled = Instant::now();
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    let after = signalled.elapsed();
    out.assert_code(0);
    assert!(
        after >= Duration::from_millis(600),
        "exited {after:?} after SIGTERM, before the delivery finished\n{}",
        out.ctx()
    );
    assert!(after < Duration::from_secs(5), "{}", out.ctx());
    assert_eq!(
        outbox_records(&dir.path().join(".relay")).len(),
        1,
        "the drained delivery must be recorded"
    );
}

/// SIGTERM while a delivery waits to retry (Retry-After: 1): the drain lets
/// the retry happen, and the delivery completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_delivery_that_is_waiting_to_retry() {
    let dir = tempdir();
    let server = Notifier::start(vec![
        Reply::status(503).header("retry-after", "1"),
        Reply::ok(),
    ])
    .await;
    let envs = dir_env(dir.path(), &server.url("/"), 0);
    let mut relay = spawn_relay(RELAY, &envs);
    write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    relay.expect_requests(&server, 1, GUARD).await;
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 2, "{}", server.describe());
    assert_eq!(outbox_records(&dir.path().join(".relay")).len(), 1);
}

/// A drain that runs out of RELAY_DRAIN_TIMEOUT: exit 1, promptly, nothing recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_short_drain_timeout_abandons_the_delivery_and_exits_1() {
    let dir = tempdir();
    let server = Notifier::start(vec![Reply::ok().delayed(Duration::from_secs(5))]).await;
    let envs = dir_env(dir.path(), &server.url("/"), 0).set("RELAY_DRAIN_TIMEOUT", "200ms");
    let mut relay = spawn_relay(RELAY, &envs);
    write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    relay.expect_requests(&server, 1, GUARD).await;
    let signalled = Instant::now();
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    let after = signalled.elapsed();
    out.assert_code(1);
    assert!(
        after < Duration::from_secs(2),
        "exited {after:?} after SIGTERM\n{}",
        out.ctx()
    );
    assert!(
        outbox_records(&dir.path().join(".relay")).is_empty(),
        "an abandoned delivery must not be recorded"
    );
}

/// Sidecar mode keeps running after delivering, and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_mode_keeps_watching_until_sigterm_then_exits_0() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    write_atomic(
        dir.path(),
        "a.json",
        &accept(&full_profile("a", "Listing a.")),
    );
    let mut relay = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 0));
    relay.expect_requests(&server, 1, GUARD).await;
    assert!(
        !wait_until(Duration::from_millis(300), || relay.has_exited()).await,
        "RELAY_EXPECT=0 must keep running\n{}",
        relay.ctx()
    );
    write_atomic(
        dir.path(),
        "b.json",
        &accept(&full_profile("b", "Listing b.")),
    );
    relay
        .expect_requests(&server, 2, Duration::from_secs(10))
        .await;
    let signalled = Instant::now();
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{}",
        out.ctx()
    );
    assert_eq!(server.count(), 2, "{}", server.describe());
}

/// Nothing to do at all: SIGTERM (and SIGINT) end it with 0, promptly.
async fn idle_signal(sigint: bool) {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let mut relay = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 0));
    // The signal handlers are installed before the first log line (the
    // watch starting); a signal before that would kill it outright.
    assert!(
        relay
            .wait_for_stderr(Duration::from_secs(10), |s| s.contains('\n'))
            .await,
        "the relay logged nothing at start-up\n{}",
        relay.ctx()
    );
    let signalled = Instant::now();
    if sigint {
        relay.sigint();
    } else {
        relay.sigterm();
    }
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_nothing_to_do_exits_0_promptly() {
    idle_signal(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_nothing_to_do_exits_0_promptly() {
    idle_signal(true).await;
}

/// Classic mode (RELAY_EXPECT=1): a SIGTERM before the result arrived is not
/// success; exit 3, as for a wait that timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_expected_result_exits_3() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let mut relay = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 1));
    assert!(
        relay
            .wait_for_stderr(Duration::from_secs(10), |s| s.contains('\n'))
            .await,
        "the relay logged nothing at start-up\n{}",
        relay.ctx()
    );
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    out.assert_code(3);
    assert_eq!(server.count(), 0);
}
