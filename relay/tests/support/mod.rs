//! Shared harness for the relay's integration tests.
//!
//! * [`Notifier`]: a real HTTP server (axum on `127.0.0.1`) answering any
//!   path and method from a script of [`Reply`]s (then a default reply),
//!   recording every request with its arrival time. [`reserve_port`] +
//!   [`Notifier::start_on`] bring a server up late, on a port the relay
//!   already targets (connection refused until then).
//! * [`BlackHole`]: accepts TCP connections and never answers.
//! * [`spawn_relay`]: the real built binary with a cleared environment (only
//!   `PATH`, `LOG_FORMAT=json` and what the test passes), stdout and stderr
//!   captured, every wait guarded by a timeout so a hung relay fails the test
//!   instead of hanging CI.
//! * Result writers: atomic (temp + rename), non-atomic in two halves, and
//!   assessor-shaped results built from the sample profiles.
//!
//! Synchronisation is by polling with short sleeps up to a deadline, never by
//! a fixed sleep.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncReadExt;

/// The guard on any single wait for the relay: far above what a test needs.
pub const GUARD: Duration = Duration::from_secs(30);

/// How often waits poll.
const POLL: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------
// Notifier test server
// ---------------------------------------------------------------------------

/// One scripted HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Headers whose value is an HTTP-date this far after the moment of replying.
    pub date_headers: Vec<(String, Duration)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// An answer with `status` and a short text body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            date_headers: Vec::new(),
            body: format!("test server says {status}"),
            delay: Duration::ZERO,
        }
    }

    /// `200 OK`.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A header holding the HTTP-date `offset` after the reply is sent
    /// (e.g. `Retry-After: <date>`), computed when replying.
    pub fn header_date_in(mut self, name: &str, offset: Duration) -> Reply {
        self.date_headers.push((name.to_string(), offset));
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }

    /// Answers only after `delay` (the request is recorded on arrival).
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request arrived (before any scripted delay).
    pub at: Instant,
    /// The status the server answered (or will answer, after a delay).
    pub replied: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header, or a panic naming it and showing the request.
    pub fn must_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("request has no {name:?} header:\n{}", self.describe()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing it) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}):\n{}", self.describe()))
    }

    /// The Standard Webhooks `webhook-id`.
    pub fn webhook_id(&self) -> String {
        self.must_header("webhook-id").to_string()
    }

    pub fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("  {n}: {v}"))
            .collect();
        format!(
            "{} {}{} (answered {})\n{}\n\n{}",
            self.method,
            self.path,
            self.query
                .as_ref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default(),
            self.replied,
            headers.join("\n"),
            clip(&self.text(), 3000)
        )
    }
}

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<Recorded>>,
}

/// A notifier: any path, any method; scripted replies in order, then the default.
pub struct Notifier {
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifier {
    /// Starts on `127.0.0.1:0`, on the current tokio runtime.
    pub async fn start(script: Vec<Reply>) -> Notifier {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Notifier::serve(listener, script)
    }

    /// Starts on a port reserved earlier with [`reserve_port`].
    pub async fn start_on(port: u16, script: Vec<Reply>) -> Notifier {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => return Notifier::serve(listener, script),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("binding 127.0.0.1:{port} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind the reserved port 127.0.0.1:{port}: {e}"),
            }
        }
    }

    fn serve(listener: tokio::net::TcpListener, script: Vec<Reply>) -> Notifier {
        let inner = Arc::new(Inner {
            script: Mutex::new(script.into()),
            default: Mutex::new(Reply::ok()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test notifier");
        });
        Notifier { addr, inner, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `host:port`, for the `ntfy+http://…` style targets.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// The reply once the script is used up (200 unless changed).
    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = reply;
    }

    /// Waits until at least `n` requests arrived; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.count() >= n).await
    }

    /// Every request's description, for assertion messages.
    pub fn describe(&self) -> String {
        let requests = self.requests();
        let mut out = format!("{} request(s)", requests.len());
        for (i, r) in requests.iter().enumerate().take(10) {
            out.push_str(&format!(
                "\n--- request {i} ---\n{}",
                clip(&r.describe(), 2000)
            ));
        }
        out
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
        replied: 0,
    };
    let reply = {
        // Record and pop under one lock so that replies follow arrival order.
        let mut requests = inner.requests.lock().unwrap();
        let next = inner.script.lock().unwrap().pop_front();
        let reply = next.unwrap_or_else(|| inner.default.lock().unwrap().clone());
        let mut recorded = recorded;
        recorded.replied = reply.status;
        requests.push(recorded);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).expect("valid status in script"));
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for (name, offset) in &reply.date_headers {
        builder = builder.header(name.as_str(), fmt_http_date(SystemTime::now() + *offset));
    }
    builder.body(Body::from(reply.body)).unwrap()
}

/// A free loopback port: bound, read and released. Nothing listens on it
/// until a test starts a [`Notifier`] there (connection refused until then).
pub fn reserve_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Black hole
// ---------------------------------------------------------------------------

/// Accepts connections and never answers (nor closes them while it lives).
pub struct BlackHole {
    addr: std::net::SocketAddr,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let log = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                log.lock().unwrap().push(Instant::now());
                held.push(stream);
            }
        });
        BlackHole {
            addr,
            accepted,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted so far (one per attempt: a timed-out connection is not reused).
    pub fn connections(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

// ---------------------------------------------------------------------------
// Running the relay
// ---------------------------------------------------------------------------

/// An ordered set of environment variables; `set` replaces.
#[derive(Debug, Clone, Default)]
pub struct Envs(pub Vec<(String, String)>);

impl Envs {
    pub fn new() -> Envs {
        Envs(Vec::new())
    }

    pub fn set(mut self, key: &str, value: impl AsRef<str>) -> Envs {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.as_ref().to_string()));
        self
    }

    pub fn remove(mut self, key: &str) -> Envs {
        self.0.retain(|(k, _)| k != key);
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Settings every test wants: fast retries, and a wait timeout that ends a
/// relay that never sees its results well before the test guard.
pub fn fast() -> Envs {
    Envs::new()
        .set("RELAY_RETRY_BASE_DELAY", "50ms")
        .set("RELAY_WAIT_TIMEOUT", "20s")
        .set("RELAY_REQUEST_TIMEOUT", "5s")
}

/// One expected result at `path`, delivered to `notifier`.
pub fn result_env(path: &Path, notifier: &str) -> Envs {
    fast()
        .set("RESULT_PATH", path.to_str().unwrap())
        .set("NOTIFIER_URL", notifier)
}

/// `expect` results in `dir`, delivered to `notifier`.
pub fn dir_env(dir: &Path, notifier: &str, expect: u64) -> Envs {
    fast()
        .set("WATCH_DIR", dir.to_str().unwrap())
        .set("NOTIFIER_URL", notifier)
        .set("RELAY_EXPECT", expect.to_string())
}

/// What a finished relay left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Since the spawn.
    pub elapsed: Duration,
}

impl Output {
    /// Context for assertion messages.
    pub fn ctx(&self) -> String {
        format!(
            "exit code {} after {:?}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}",
            self.code,
            self.elapsed,
            self.stdout.len(),
            clip(&self.stdout, 4000),
            self.stderr.len(),
            clip_tail(&self.stderr, 8000),
        )
    }

    /// Asserts the exit code, and that nothing panicked.
    pub fn assert_code(&self, expected: i32) -> &Output {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the relay panicked\n{}",
            self.ctx()
        );
        assert_eq!(self.code, expected, "unexpected exit code\n{}", self.ctx());
        self
    }

    /// stdout or stderr contains `needle`, raw or JSON-escaped.
    pub fn mentions(&self, needle: &str) -> bool {
        mentions(&self.stdout, needle) || mentions(&self.stderr, needle)
    }

    /// Non-empty stdout lines.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// A running relay. Dropping it kills the process.
pub struct RelayProcess {
    child: tokio::process::Child,
    pid: u32,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// Spawns the real `relay` with a cleared environment plus `PATH`,
/// `LOG_FORMAT=json` and `envs`.
pub fn spawn_relay(envs: &Envs) -> RelayProcess {
    spawn_relay_with_args(envs, &[])
}

pub fn spawn_relay_with_args(envs: &Envs, args: &[&str]) -> RelayProcess {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_relay"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .current_dir(std::env::temp_dir())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &envs.0 {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn the relay binary");
    let pid = child.id().expect("a running child has a pid");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        tokio::spawn(drain(child.stdout.take().unwrap(), stdout.clone())),
        tokio::spawn(drain(child.stderr.take().unwrap(), stderr.clone())),
    ];
    RelayProcess {
        child,
        pid,
        stdout,
        stderr,
        readers,
        started,
    }
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(mut reader: R, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
        }
    }
}

impl RelayProcess {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The output so far, for assertion messages while it runs.
    pub fn ctx(&self) -> String {
        format!(
            "relay pid {} running for {:?}\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
            self.pid,
            self.started.elapsed(),
            clip(&self.stdout_now(), 4000),
            clip_tail(&self.stderr_now(), 8000)
        )
    }

    /// Whether the process has exited (without reaping its output).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the exit; a relay still running after `timeout` is killed
    /// and the test fails with its output.
    pub async fn wait(mut self, timeout: Duration) -> Output {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for the relay"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("the relay did not exit within {timeout:?}\n{}", self.ctx());
            }
        };
        self.finish(status).await
    }

    async fn finish(mut self, status: std::process::ExitStatus) -> Output {
        let elapsed = self.started.elapsed();
        let readers = std::mem::take(&mut self.readers);
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            for r in readers {
                let _ = r.await;
            }
        })
        .await;
        Output {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
            elapsed,
        }
    }

    /// `kill -9`, then reaps it.
    pub async fn kill9(self) -> Output {
        self.signal("KILL");
        self.wait(GUARD).await
    }

    /// Sends SIGTERM (the kubelet stopping a sidecar).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn sigint(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    /// Waits until stderr satisfies `pred`; false on timeout or if the relay exits first.
    pub async fn wait_for_stderr(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stderr_now()) {
                return true;
            }
            if Instant::now() >= deadline || self.has_exited() {
                // One last look: the readers may have caught up.
                tokio::time::sleep(POLL).await;
                return pred(&self.stderr_now());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `server` has at least `n` requests; panics with both
    /// sides' story on timeout or when the relay exits first.
    pub async fn expect_requests(
        &mut self,
        server: &Notifier,
        n: usize,
        timeout: Duration,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            if server.count() >= n {
                return server.requests();
            }
            let exited = self.has_exited();
            if exited || Instant::now() >= deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if server.count() >= n {
                    return server.requests();
                }
                panic!(
                    "expected {n} request(s) within {timeout:?}, got {}{}\n{}\n{}",
                    server.count(),
                    if exited { " (the relay exited)" } else { "" },
                    server.describe(),
                    self.ctx()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Polls `cond` every few milliseconds until it holds (true) or `timeout` passes (false).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------
// Results and profiles
// ---------------------------------------------------------------------------

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `examples/samples`: the labelled samples.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/samples"))
}

/// The path of a sample profile, e.g. `sample_path("s01")`.
pub fn sample_path(name: &str) -> PathBuf {
    samples_dir().join(format!("{name}.json"))
}

/// A sample profile, e.g. `sample("s01")`.
pub fn sample(name: &str) -> Value {
    let path = sample_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A profile with an id and the given text.
pub fn profile(id: &str, text: &str) -> Value {
    json!({
        "text": text,
        "images": [format!("https://images.example/{id}/front.jpg")],
        "metadata": {
            "id": id,
            "url": format!("https://listings.example/{id}"),
            "price": "£300,000",
            "location": "Redland, Bristol",
            "summary": "2 bedroom flat for sale"
        }
    })
}

/// A complete result as our assessor writes it (docs/contract.md).
pub fn assessor_result(id: &str, profile: &Value, verdict: &str, score: Option<f64>) -> Value {
    json!({
        "schema": "shortlist.result/v1",
        "id": id,
        "status": "ok",
        "verdict": verdict,
        "score": score,
        "reasons": [format!("reason one for {id}"), "two bedrooms, within budget"],
        "decided_by": "llm",
        "profile": profile,
        "backend": {"kind": "openai", "model": "llama3.2"},
        "usage": {"prompt_tokens": 412, "completion_tokens": 38},
        "timings_ms": {"total": 912, "rules": 0, "llm": 911},
        "attempts": 1,
        "error": null,
        "assessor": {"name": "assessor", "version": "0.1.0"},
        "assessed_at": "2026-11-22T10:00:00.123Z"
    })
}

/// An accepted result (score 0.86) for `profile`, whose `metadata.id` is the id.
pub fn accept(profile: &Value) -> Value {
    assessor_result(&profile_id(profile), profile, "accept", Some(0.86))
}

/// A rejected result.
pub fn reject(profile: &Value) -> Value {
    assessor_result(&profile_id(profile), profile, "reject", Some(0.12))
}

/// An error result, as the assessor writes when the backend failed.
pub fn error_result(profile: &Value) -> Value {
    let mut r = assessor_result(&profile_id(profile), profile, "accept", None);
    r["status"] = json!("error");
    r["verdict"] = Value::Null;
    r["decided_by"] = Value::Null;
    r["reasons"] = json!([]);
    r["error"] = json!({"kind": "backend_unavailable", "message": "http://llm:8080/v1: connection refused on every attempt"});
    r
}

pub fn profile_id(profile: &Value) -> String {
    profile["metadata"]["id"]
        .as_str()
        .expect("profile has metadata.id")
        .to_string()
}

pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap();
    bytes.push(b'\n');
    bytes
}

/// Writes `dir/name` atomically: a hidden `.name.x.tmp` beside it, then a rename.
pub fn write_atomic(dir: &Path, name: &str, value: &Value) -> PathBuf {
    write_atomic_bytes(dir, name, &to_bytes(value))
}

pub fn write_atomic_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let temp = dir.join(format!(".{name}.x.tmp"));
    let path = dir.join(name);
    {
        let mut file = std::fs::File::create(&temp).unwrap();
        file.write_all(bytes).unwrap();
        file.sync_all().unwrap();
    }
    std::fs::rename(&temp, &path).unwrap();
    path
}

/// Writes `path` in place, non-atomically: the first half, a pause with the
/// file open and incomplete, then the rest (a shell's `echo > file` writer
/// that is slow).
pub async fn write_in_halves(path: &Path, bytes: &[u8], pause: Duration) {
    let half = bytes.len() / 2;
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&bytes[..half]).unwrap();
    file.flush().unwrap();
    tokio::time::sleep(pause).await;
    file.write_all(&bytes[half..]).unwrap();
    file.flush().unwrap();
}

/// The delivery records in `state_dir` (`*.delivered`), by file name.
pub fn outbox_records(state_dir: &Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return out;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".delivered") {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Asserts the generic webhook body: the profile's `text`, `metadata` and
/// `images` at the top level, and an `assessment` object.
pub fn assert_webhook_body(body: &Value, result: &Value) {
    let profile = &result["profile"];
    assert_eq!(body["text"], profile["text"], "body.text\n{body:#}");
    assert_eq!(
        body["metadata"], profile["metadata"],
        "body.metadata\n{body:#}"
    );
    assert_eq!(body["images"], profile["images"], "body.images\n{body:#}");
    let a = &body["assessment"];
    assert!(a.is_object(), "body.assessment must be an object\n{body:#}");
    for key in [
        "verdict",
        "score",
        "reasons",
        "id",
        "assessed_at",
        "backend",
    ] {
        assert!(
            a.get(key).is_some(),
            "body.assessment lacks {key:?}\n{body:#}"
        );
        assert_eq!(a[key], result[key], "body.assessment.{key}\n{body:#}");
    }
}

/// Asserts the Standard Webhooks headers are there and sane.
pub fn assert_webhook_headers(r: &Recorded) {
    let id = r.webhook_id();
    assert!(!id.trim().is_empty(), "empty webhook-id\n{}", r.describe());
    let ts: i64 = r
        .must_header("webhook-timestamp")
        .parse()
        .unwrap_or_else(|_| panic!("webhook-timestamp is not unix seconds\n{}", r.describe()));
    let now = unix_now();
    assert!(
        (ts - now).abs() <= 120,
        "webhook-timestamp {ts} is far from now ({now})\n{}",
        r.describe()
    );
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `whsec_` + base64 of 32 random bytes, and the raw key.
pub fn random_secret() -> (String, Vec<u8>) {
    let mut key = vec![0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("read /dev/urandom");
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    (secret, key)
}

/// Verifies a Standard Webhooks `webhook-signature` header (space-separated
/// `v1,<base64>` entries; one must match) with `key`.
pub fn signature_valid(key: &[u8], r: &Recorded) -> bool {
    let (Some(id), Some(ts), Some(header)) = (
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        r.header("webhook-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|entry| entry.strip_prefix("v1,").is_some_and(|sig| sig == expected))
}

/// Whether `value` holds the string `s` anywhere (any depth).
pub fn json_has_string(value: &Value, s: &str) -> bool {
    match value {
        Value::String(v) => v == s,
        Value::Array(items) => items.iter().any(|v| json_has_string(v, s)),
        Value::Object(map) => map.values().any(|v| json_has_string(v, s)),
        _ => false,
    }
}

/// `haystack` contains `needle` raw or JSON-string-escaped.
pub fn mentions(haystack: &str, needle: &str) -> bool {
    if haystack.contains(needle) {
        return true;
    }
    let escaped = serde_json::to_string(needle).unwrap();
    haystack.contains(&escaped[1..escaped.len() - 1])
}

pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// The last `max` bytes (logs: the end is where the story is).
pub fn clip_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("({} bytes before) …{}", start, &s[start..])
}

/// `time` as an HTTP-date (IMF-fixdate), for `Retry-After` headers.
#[allow(unused_imports)]
pub use httpdate::fmt_http_date;
