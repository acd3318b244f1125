//! A burst of results renamed into the watched directory at once (an
//! Indexed Job, a batch writing into the volume): every one is delivered,
//! each once, in bounded time, and SIGTERM in the middle of it is honoured
//! within RELAY_DRAIN_TIMEOUT + 1 s. The 20,000-result version with figures
//! is `bench/relay-burst.sh`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Large enough to overflow a 1,024-deep hint queue and the kernel's
/// default inotify queue with the relay's own reads, small enough for CI.
const BURST: usize = 3_000;

/// Writes `n` accepted results into `staging` (same filesystem as the
/// watched directory), ready to be renamed in.
fn stage(staging: &Path, n: usize) -> Vec<String> {
    let profile = sample("s01");
    (0..n)
        .map(|i| {
            let name = format!("r{i:05}.json");
            let result = assessor_result(&format!("burst-{i}"), &profile, "accept", Some(0.9));
            write_json(staging, &name, &result);
            name
        })
        .collect()
}

/// Renames every staged result into `dir` as fast as the kernel allows.
async fn rename_all(staging: PathBuf, dir: PathBuf, names: Vec<String>) {
    tokio::task::spawn_blocking(move || {
        for name in names {
            std::fs::rename(staging.join(&name), dir.join(&name)).unwrap();
        }
    })
    .await
    .unwrap();
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

/// The relay's environment: watch `dir`, append to `out`.
fn burst_env(dir: &Path, out: &Path, expect: usize) -> Envs {
    fast()
        .set("WATCH_DIR", dir.to_str().unwrap())
        .set("NOTIFIER_URL", format!("file://{}", out.display()))
        .set("RELAY_EXPECT", expect.to_string())
        .set("RELAY_WAIT_TIMEOUT", "60s")
}

async fn started(relay: &mut Process) {
    assert!(
        relay
            .wait_for_stderr(Duration::from_secs(10), |s| s
                .contains("watching with inotify"))
            .await,
        "the relay did not start watching\n{}",
        relay.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_renamed_into_the_directory_is_delivered_completely_each_once() {
    let root = tempdir();
    let dir = root.path().join("results");
    let staging = root.path().join("staging");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    let out = root.path().join("out.jsonl");
    let names = stage(&staging, BURST);

    let mut relay = spawn_relay(RELAY, &burst_env(&dir, &out, BURST));
    started(&mut relay).await;
    let begun = Instant::now();
    rename_all(staging, dir.clone(), names).await;
    let done = relay.wait(Duration::from_secs(60)).await;
    let took = begun.elapsed();
    done.assert_code(0);

    let delivered = lines(&out);
    let ids: HashSet<String> = delivered.iter().map(|line| line.to_string()).collect();
    assert_eq!(
        delivered.len(),
        BURST,
        "every result once, in {took:?}\n{}",
        done.ctx()
    );
    assert_eq!(ids.len(), BURST, "a line was delivered twice");
    assert_eq!(outbox_records(&dir.join(".relay")).len(), BURST);
    assert!(
        took < Duration::from_secs(45),
        "a burst of {BURST} took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_is_honoured_within_the_drain_timeout() {
    const DRAIN: Duration = Duration::from_secs(2);
    let root = tempdir();
    let dir = root.path().join("results");
    let staging = root.path().join("staging");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    let out = root.path().join("out.jsonl");
    let names = stage(&staging, BURST);

    // Sidecar mode: no RELAY_EXPECT, ended by SIGTERM.
    let envs = burst_env(&dir, &out, 0).set("RELAY_DRAIN_TIMEOUT", "2s");
    let mut relay = spawn_relay(RELAY, &envs);
    started(&mut relay).await;
    rename_all(staging, dir.clone(), names).await;
    // Mid-burst: some delivered, not all.
    assert!(
        wait_until(Duration::from_secs(30), || count_lines(&out) >= 50).await,
        "no progress\n{}",
        relay.ctx()
    );
    relay.sigterm();
    let signalled = Instant::now();
    let done = relay.wait(Duration::from_secs(30)).await;
    let latency = signalled.elapsed();
    assert!(
        done.code >= 0,
        "the relay did not exit by itself\n{}",
        done.ctx()
    );
    assert!(
        latency <= DRAIN + Duration::from_secs(1),
        "SIGTERM took {latency:?} to act on (drain timeout {DRAIN:?})\n{}",
        done.ctx()
    );
    assert!(
        done.mentions("shutdown requested"),
        "the shutdown was not logged\n{}",
        done.ctx()
    );
}
