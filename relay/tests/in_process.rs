//! The whole relay loop in-process, mini-redis style: `relay::run(settings,
//! shutdown)` in the test's own runtime, with a temp dir, a `file:` notifier
//! (no HTTP server) and paused tokio time, so settle, wait and drain
//! deadlines are checked to the millisecond without wall-clock sleeps.
//!
//! Paused time auto-advances whenever the runtime is idle, so the relay
//! watches by polling here (`--poll-interval`): inotify events come from
//! another thread and would race the virtual clock. Settings are read from
//! arguments; like the binary, they also read the environment, so these
//! tests assume no relay variable (NOTIFIER_URL_FILE, WEBHOOK_SECRET, ...)
//! is set where they run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use relay::{Exit, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const POLL: &str = "100ms";

/// Settings for watching `dir` and delivering to `notifier`, plus `extra`
/// flags (polling every [`POLL`] unless they say otherwise).
fn settings(dir: &Path, notifier: &str, extra: &[&str]) -> Settings {
    let mut args = vec![
        "relay".to_string(),
        "--watch-dir".into(),
        dir.display().to_string(),
        "--notifier".into(),
        notifier.into(),
    ];
    if !extra.contains(&"--poll-interval") {
        args.extend(["--poll-interval".into(), POLL.into()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(error) => panic!("settings: {error}"),
    }
}

/// A results dir and the `file:` target's path beside it (outside the
/// watched directory).
struct Fixture {
    _root: tempfile::TempDir,
    results: PathBuf,
    out: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let results = root.path().join("results");
        std::fs::create_dir(&results).unwrap();
        let out = root.path().join("delivered.jsonl");
        Fixture {
            results,
            out,
            _root: root,
        }
    }

    fn notifier(&self) -> String {
        format!("file://{}", self.out.display())
    }

    fn settings(&self, extra: &[&str]) -> Settings {
        settings(&self.results, &self.notifier(), extra)
    }

    /// Writes a result atomically (temp name, then rename), as the assessor does.
    fn write(&self, name: &str, value: &Value) {
        let temp = self.results.join(format!(".{name}.tmp"));
        std::fs::write(&temp, serde_json::to_vec(value).unwrap()).unwrap();
        std::fs::rename(&temp, self.results.join(name)).unwrap();
    }

    /// Writes bytes in place (a non-atomic custom assessor).
    fn write_in_place(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.results.join(name), bytes).unwrap();
    }

    /// The lines the `file:` target received.
    fn delivered(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.out) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", self.out.display()),
        }
    }

    /// The outbox's delivery records.
    fn records(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.results.join(".relay"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".delivered"))
            .collect();
        names.sort();
        names
    }
}

fn result(id: &str, verdict: Option<&str>) -> Value {
    json!({
        "id": id,
        "status": "ok",
        "verdict": verdict,
        "score": 0.8,
        "reasons": ["a reason"],
        "profile": {"text": format!("profile {id}"), "metadata": {"id": id}, "images": []},
    })
}

fn delivered_ids(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|line| line["assessment"]["id"].as_str().unwrap())
        .collect()
}

/// Runs the relay until it ends by itself.
async fn run(settings: Settings) -> Exit {
    run_until(settings, std::future::pending()).await
}

async fn run_until(settings: Settings, shutdown: impl Future<Output = ()>) -> Exit {
    match relay::run(settings, shutdown).await {
        Ok(exit) => exit,
        Err(error) => panic!("relay::run: {error}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_accepted_result_is_delivered_once_and_a_rejected_one_not() {
    let f = Fixture::new();
    f.write("a.json", &result("a", Some("accept")));
    f.write("b.json", &result("b", Some("reject")));
    f.write("c.json", &result("c", None));

    assert_eq!(run(f.settings(&["--expect", "3"])).await, Exit::Done);

    let lines = f.delivered();
    assert_eq!(delivered_ids(&lines), ["a"]);
    assert_eq!(lines[0]["text"], "profile a");
    assert_eq!(lines[0]["assessment"]["verdict"], "accept");
    assert!(
        lines[0]["webhook_id"].as_str().unwrap().starts_with("msg_"),
        "{}",
        lines[0]
    );
    let records = f.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].starts_with("a.json."), "{records:?}");
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_the_same_outbox_does_not_deliver_again() {
    let f = Fixture::new();
    f.write("a.json", &result("a", Some("accept")));
    assert_eq!(run(f.settings(&[])).await, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["a"]);

    assert_eq!(run(f.settings(&[])).await, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["a"]);

    // A new result in the same directory still goes out, once.
    f.write("b.json", &result("b", Some("accept")));
    assert_eq!(run(f.settings(&["--expect", "2"])).await, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["a", "b"]);
    assert_eq!(f.records().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_result_arriving_later_is_picked_up_by_the_next_poll() {
    let f = Fixture::new();
    let start = Instant::now();
    let (exit, ()) = tokio::join!(run(f.settings(&[])), async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        f.write("late.json", &result("late", Some("accept")));
    });
    assert_eq!(exit, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["late"]);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited <= Duration::from_millis(30_200),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_result_written_in_place_is_delivered_once_complete() {
    let f = Fixture::new();
    let text = serde_json::to_vec(&result("slow", Some("accept"))).unwrap();
    let (first, second) = text.split_at(text.len() / 2);
    f.write_in_place("slow.json", first);
    let start = Instant::now();
    let (exit, ()) = tokio::join!(run(f.settings(&[])), async {
        // Within the 10s settle timeout.
        tokio::time::sleep(Duration::from_secs(9)).await;
        f.write_in_place("slow.json", &[first, second].concat());
    });
    assert_eq!(exit, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["slow"]);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(9), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_result_that_never_parses_is_invalid_at_the_settle_timeout() {
    let f = Fixture::new();
    f.write_in_place("broken.json", br#"{"verdict": "acc"#);
    let start = Instant::now();
    let exit = run(f.settings(&["--settle-timeout", "4s"])).await;
    assert_eq!(exit, Exit::InvalidResult);
    // Decided by the settle timer, not by the next poll after it.
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert!(f.delivered().is_empty());
}

#[tokio::test(start_paused = true)]
async fn no_result_within_the_wait_timeout_exits_3() {
    let f = Fixture::new();
    let start = Instant::now();
    let exit = run(f.settings(&["--wait-timeout", "2m", "--poll-interval", "1s"])).await;
    assert_eq!(exit, Exit::WaitTimedOut);
    assert_eq!(start.elapsed(), Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn an_assessor_error_exits_5_and_delivers_nothing() {
    let f = Fixture::new();
    f.write(
        "e.json",
        &json!({
            "id": "e",
            "status": "error",
            "verdict": null,
            "error": {"kind": "timeout", "message": "the judge did not answer"}
        }),
    );
    assert_eq!(run(f.settings(&[])).await, Exit::AssessorError);
    assert!(f.delivered().is_empty());
}

#[tokio::test(start_paused = true)]
async fn below_min_score_is_not_delivered() {
    let f = Fixture::new();
    let mut low = result("low", Some("accept"));
    low["score"] = json!(0.4);
    f.write("low.json", &low);
    f.write("high.json", &result("high", Some("accept")));
    let exit = run(f.settings(&["--expect", "2", "--min-score", "0.5"])).await;
    assert_eq!(exit, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["high"]);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_before_every_expected_result_exits_3_after_delivering() {
    let f = Fixture::new();
    f.write("a.json", &result("a", Some("accept")));
    let shutdown = tokio::time::sleep(Duration::from_secs(5));
    let exit = run_until(f.settings(&["--expect", "2"]), shutdown).await;
    assert_eq!(exit, Exit::WaitTimedOut);
    assert_eq!(delivered_ids(&f.delivered()), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn the_last_rescan_at_shutdown_still_handles_a_result() {
    let f = Fixture::new();
    let start = Instant::now();
    // A poll period far longer than the run: only the rescan at shutdown
    // (after the start-up scan) can see the file.
    let settings = f.settings(&["--poll-interval", "1h"]);
    let shutdown = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        f.write("a.json", &result("a", Some("accept")));
    };
    assert_eq!(run_until(settings, shutdown).await, Exit::Done);
    assert_eq!(delivered_ids(&f.delivered()), ["a"]);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

/// An HTTP/1.1 endpoint on a port-0 listener that reads each request and
/// answers `200` after `delay` of (virtual) time, or never with `None`. It
/// counts the requests it has read.
async fn endpoint(delay: Option<Duration>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, seen)
}

/// Reads one request's head and its `content-length` body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            return Some(());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_a_delivery_in_flight() {
    let f = Fixture::new();
    let (url, seen) = endpoint(Some(Duration::from_secs(8))).await;
    f.write("a.json", &result("a", Some("accept")));
    let start = Instant::now();
    // RELAY_EXPECT=0: a native sidecar, running until SIGTERM.
    let settings = settings(&f.results, &url, &["--expect", "0"]);
    let exit = run_until(settings, tokio::time::sleep(Duration::from_secs(2))).await;
    assert_eq!(exit, Exit::Done);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(f.records().len(), 1);
    // The answer came 8s in, within the 20s drain.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(9),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_drain_timeout_abandons_what_is_left_unrecorded() {
    let f = Fixture::new();
    let (url, seen) = endpoint(None).await;
    f.write("a.json", &result("a", Some("accept")));
    let start = Instant::now();
    let settings = settings(
        &f.results,
        &url,
        &[
            "--expect",
            "0",
            "--drain-timeout",
            "5s",
            "--request-timeout",
            "1m",
        ],
    );
    let exit = run_until(settings, tokio::time::sleep(Duration::from_secs(2))).await;
    assert_eq!(exit, Exit::DeliveryFailed);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(f.records().is_empty(), "{:?}", f.records());
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}
