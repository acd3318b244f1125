//! Half-written files: RELAY_SETTLE_TIMEOUT counts from the last change, so
//! a writer that keeps writing is never cut off, and a writer that paused
//! longer than it (reported invalid) still gets its result delivered, once.

use std::io::Write;
use std::time::Duration;

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

fn result_bytes() -> Vec<u8> {
    to_bytes(&accept(&sample("s01")))
}

/// Writes `bytes` in place in `chunks` pieces, `pause` apart.
async fn write_slowly(path: &std::path::Path, bytes: &[u8], chunks: usize, pause: Duration) {
    let mut file = std::fs::File::create(path).unwrap();
    for (i, chunk) in bytes.chunks(bytes.len().div_ceil(chunks)).enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
    }
}

/// 4 pieces 700 ms apart: 2.1 s of writing with a 1 s settle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_keeps_writing_is_not_cut_off() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    let envs = result_env(&path, &server.url("/")).set("RELAY_SETTLE_TIMEOUT", "1s");
    let relay = spawn_relay(RELAY, &envs);
    write_slowly(&path, &result_bytes(), 4, Duration::from_millis(700)).await;
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert!(!out.mentions("invalid result"), "{}", out.ctx());
    assert_eq!(server.count(), 1, "{}", server.describe());
}

/// A pause of 2.5 s mid-file with a 1 s settle timeout: reported invalid,
/// then delivered once complete, and the exit code is that of a good run
/// (the file is counted once, as what it finally is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_pauses_past_the_settle_timeout_is_still_delivered_once() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let envs = dir_env(dir.path(), &server.url("/"), 0).set("RELAY_SETTLE_TIMEOUT", "1s");
    let mut relay = spawn_relay(RELAY, &envs);
    let path = dir.path().join("slow.json");
    let bytes = result_bytes();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(first).unwrap();
    file.flush().unwrap();
    assert!(
        relay
            .wait_for_stderr(GUARD, |log| log.contains("invalid result"))
            .await,
        "the paused file was never reported invalid\n{}",
        relay.ctx()
    );
    file.write_all(rest).unwrap();
    file.flush().unwrap();
    relay.expect_requests(&server, 1, GUARD).await;
    relay.sigterm();
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert!(
        !out.mentions("change is ignored"),
        "the completed file was ignored\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 1, "{}", server.describe());
    assert_eq!(
        server.requests()[0].json()["assessment"]["verdict"],
        "accept"
    );
}
