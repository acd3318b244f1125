//! Hostile values must not crash the relay: absurd durations are start-up
//! errors (exit 2) naming the variable, a `Retry-After` of u64::MAX seconds
//! is capped at the delivery deadline, a result with a 245-character name
//! is recorded (so a restart does not deliver it again), and two
//! credentials for one notifier are refused.

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_durations_are_start_up_errors_naming_the_variable() {
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    for variable in [
        "RELAY_WAIT_TIMEOUT",
        "RELAY_SETTLE_TIMEOUT",
        "RELAY_DRAIN_TIMEOUT",
        "RELAY_DELIVERY_DEADLINE",
        "RELAY_REQUEST_TIMEOUT",
    ] {
        for value in ["400000000000y", "500y"] {
            let envs = result_env(&path, "stdout:").set(variable, value);
            let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
            out.assert_code(2);
            assert!(
                out.mentions(variable),
                "{variable}={value}: the error does not name the variable\n{}",
                out.ctx()
            );
            assert!(
                !out.mentions("panicked"),
                "{variable}={value}\n{}",
                out.ctx()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_gives_up_at_the_deadline_without_aborting() {
    let dir = tempdir();
    let server = Notifier::start(vec![Reply::status(503), Reply::status(503)]).await;
    server.set_default(Reply::status(503).header("Retry-After", "18446744073709551615"));
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let envs = result_env(&path, &server.url("/hook"))
        .set("RELAY_DELIVERY_DEADLINE", "3s")
        .set("RELAY_RETRY_BASE_DELAY", "500ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
    assert!(!out.mentions("panicked"), "{}", out.ctx());
    assert!(
        out.mentions("delivery failed"),
        "the failure is not logged\n{}",
        out.ctx()
    );
    assert!(
        out.mentions("status"),
        "the retry log does not say why\n{}",
        out.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_245_character_result_name_is_delivered_once_across_restarts() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let name = format!("{}.json", "n".repeat(240));
    assert_eq!(name.len(), 245);
    let path = write_atomic(dir.path(), &name, &accept(&sample("s01")));
    let envs = result_env(&path, &server.url("/hook"));
    let first = spawn_relay(RELAY, &envs).wait(GUARD).await;
    first.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
    assert!(
        !first.mentions("could not be written"),
        "the record was not written\n{}",
        first.ctx()
    );
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].0.len() <= 255, "{}", records[0].0);

    let second = spawn_relay(RELAY, &envs).wait(GUARD).await;
    second.assert_code(0);
    assert_eq!(
        server.count(),
        1,
        "a restart delivered again\n{}\n{}",
        server.describe(),
        second.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_and_a_token_together_are_refused_and_the_auth_used_is_logged() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let url = format!("http://alice:hunter2secret@{}/hook", server.authority());

    let both = result_env(&path, &url).set("NOTIFIER_TOKEN", "tok-abcdef123456");
    let out = spawn_relay(RELAY, &both).wait(GUARD).await;
    out.assert_code(2);
    assert!(
        out.mentions("NOTIFIER_TOKEN") && out.mentions("NOTIFIER_URL"),
        "the error does not name both\n{}",
        out.ctx()
    );
    assert!(
        !out.mentions("hunter2secret") && !out.mentions("tok-abcdef123456"),
        "a secret was printed\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0);

    let basic = result_env(&path, &url);
    let out = spawn_relay(RELAY, &basic).wait(GUARD).await;
    out.assert_code(0);
    assert!(
        out.mentions("basic"),
        "the auth used is not logged\n{}",
        out.ctx()
    );
    assert!(!out.mentions("hunter2secret"), "{}", out.ctx());

    let bearer = result_env(&path, &server.url("/hook")).set("NOTIFIER_TOKEN", "tok-abcdef123456");
    let out = spawn_relay(RELAY, &bearer).wait(GUARD).await;
    out.assert_code(0);
    assert!(
        out.mentions("bearer"),
        "the auth used is not logged\n{}",
        out.ctx()
    );
    assert!(!out.mentions("tok-abcdef123456"), "{}", out.ctx());
}
