//! Shared harness for the assessor's integration tests.
//!
//! * [`FakeOpenAi`]: a real HTTP server on `127.0.0.1:0` speaking the OpenAI
//!   chat-completions wire format from a script, recording every request.
//! * [`run_assessor`]: runs the real built binary with a cleared environment
//!   (only `PATH`, `LOG_FORMAT=json` and what the test passes), asynchronously
//!   so the fake server keeps serving on the same runtime, under a guard
//!   timeout so a hung binary fails the test instead of hanging CI.
//! * [`assert_schema_valid`]: validates a result against `schema/result.v1.json`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// The guard for one run of the binary: far above anything a test needs.
pub const RUN_GUARD: Duration = Duration::from_secs(60);

/// The API key most tests use; never expected in any output.
pub const TEST_KEY: &str = "sk-test-key-0123";

/// The default reply content of the fake server when its script is empty.
pub const DEFAULT_CONTENT: &str = r#"{"verdict":"accept","score":0.9,"reasons":["default"]}"#;

// ---------------------------------------------------------------------------
// Fake OpenAI server
// ---------------------------------------------------------------------------

/// One scripted HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A raw body with a status and content type.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// The full wire shape of a chat completion whose message content is `content`.
pub fn completion_body(content: Value, finish_reason: &str) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
    .to_string()
}

/// A 200 completion with `finish_reason: "stop"`.
pub fn completion(content: &str) -> Reply {
    completion_with_finish(content, "stop")
}

/// A 200 completion with the given finish reason (`"length"` for truncation).
pub fn completion_with_finish(content: &str, finish_reason: &str) -> Reply {
    Reply::raw(
        200,
        "application/json",
        &completion_body(Value::String(content.to_string()), finish_reason),
    )
}

/// An error answer: `body` is sent as is (an OpenAI error JSON, or text).
pub fn error_reply(status: u16, body: &str) -> Reply {
    let content_type = if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/plain"
    };
    Reply::raw(status, content_type, body)
}

/// An OpenAI-shaped error body.
pub fn openai_error(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}}).to_string()
}

/// A reply that never comes (within any test's lifetime).
pub fn hang() -> Reply {
    completion(DEFAULT_CONTENT).delayed(Duration::from_secs(3600))
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parsed JSON body; panics (with the raw body) if it was not JSON.
    pub fn body_json(&self) -> &Value {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("request body is not JSON: {:.2000}", self.body))
    }

    pub fn messages(&self) -> &Vec<Value> {
        self.body_json()["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("request has no messages array: {:.2000}", self.body))
    }

    /// Content of the first message with `role`, as text.
    pub fn message(&self, role: &str) -> String {
        self.messages()
            .iter()
            .find(|m| m["role"] == role)
            .map(|m| message_text(&m["content"]))
            .unwrap_or_else(|| panic!("no {role} message in {:.2000}", self.body))
    }

    pub fn response_format(&self) -> Option<&Value> {
        self.body_json().get("response_format")
    }
}

/// The text of a message's content: a string, or the text parts of an array.
pub fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A real HTTP server speaking the chat-completions wire format from a script.
pub struct FakeOpenAi {
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    /// Starts the server on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start(script: Vec<Reply>) -> FakeOpenAi {
        let inner = Arc::new(Inner {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake server");
        });
        FakeOpenAi { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Replies not yet consumed.
    pub fn remaining(&self) -> usize {
        self.inner.script.lock().unwrap().len()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        json: serde_json::from_slice(&body).ok(),
        body: raw,
        at,
    };
    let reply = {
        // Record and pop under one lock so order is arrival order.
        let mut requests = inner.requests.lock().unwrap();
        requests.push(recorded);
        inner
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| completion(DEFAULT_CONTENT))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).expect("valid status in script"));
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(reply.body)).unwrap()
}

/// A loopback port nothing listens on (connection refused).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// What one run of the binary produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The parsed `RESULT_PATH` file, when RESULT_PATH names a file and it exists.
    pub result: Option<Value>,
    /// The `RESULT_PATH` file when RESULT_PATH names one.
    pub result_path: Option<PathBuf>,
    pub elapsed: Duration,
}

impl Output {
    /// Context for assertion messages.
    pub fn ctx(&self) -> String {
        format!(
            "exit code {}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}\n--- result ---\n{}",
            self.code,
            self.stdout.len(),
            clip(&self.stdout, 4000),
            self.stderr.len(),
            clip(&self.stderr, 6000),
            self.result
                .as_ref()
                .map(|r| clip(&r.to_string(), 4000))
                .unwrap_or_else(|| "(none)".into())
        )
    }

    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code\n{}", self.ctx());
        self
    }

    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the binary panicked\n{}",
            self.ctx()
        );
        assert!(self.code >= 0, "killed by a signal\n{}", self.ctx());
        self
    }

    /// The result file's JSON; panics if there is none.
    pub fn result(&self) -> &Value {
        self.result
            .as_ref()
            .unwrap_or_else(|| panic!("no result file was written\n{}", self.ctx()))
    }

    /// stdout parsed as exactly one JSON document.
    pub fn stdout_json(&self) -> Value {
        single_json_document(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON document: {e}\n{}",
                self.ctx()
            )
        })
    }

    /// True if stderr mentions `needle` as is or JSON-escaped (JSON logs
    /// escape quotes).
    pub fn stderr_mentions(&self, needle: &str) -> bool {
        mentions(&self.stderr, needle)
    }

    /// Asserts an error result: status error, verdict null, error.kind == kind.
    pub fn assert_error_result(&self, kind: &str) -> &Value {
        let r = self.result();
        assert_eq!(r["status"], "error", "status\n{}", self.ctx());
        assert!(
            r["verdict"].is_null(),
            "verdict must be null\n{}",
            self.ctx()
        );
        assert_eq!(r["error"]["kind"], kind, "error.kind\n{}", self.ctx());
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "error.message must be a non-empty string\n{}",
            self.ctx()
        );
        assert_schema_valid(r);
        r
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

/// Parses `text` as exactly one JSON document (whitespace around allowed).
pub fn single_json_document(text: &str) -> Result<Value, String> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let first = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("not JSON: {e}")),
        None => return Err("empty".into()),
    };
    match stream.next() {
        None => Ok(first),
        Some(Ok(_)) => Err("more than one JSON document".into()),
        Some(Err(e)) => Err(format!("trailing garbage after the JSON document: {e}")),
    }
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

/// Runs the built `assessor` in `dir` with a cleared environment plus `PATH`,
/// `LOG_FORMAT=json` and `envs`.
pub async fn run_assessor<K: AsRef<str>, V: AsRef<str>>(
    dir: &Path,
    envs: &[(K, V)],
    args: &[&str],
) -> Output {
    run_assessor_with_stdin(dir, envs, args, None).await
}

/// Like [`run_assessor`], feeding `stdin` (closed stdin when `None`).
pub async fn run_assessor_with_stdin<K: AsRef<str>, V: AsRef<str>>(
    dir: &Path,
    envs: &[(K, V)],
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_assessor"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .current_dir(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut result_path = None;
    for (k, v) in envs {
        cmd.env(k.as_ref(), v.as_ref());
        if k.as_ref() == "RESULT_PATH" && v.as_ref() != "-" && !v.as_ref().is_empty() {
            result_path = Some(dir.join(v.as_ref()));
        }
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the assessor binary");

    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // The binary may exit without reading it all: ignore EPIPE.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
    }

    let stdout_buf = Arc::new(Mutex::new(Vec::new()));
    let stderr_buf = Arc::new(Mutex::new(Vec::new()));
    let out_task = tokio::spawn(drain(child.stdout.take().unwrap(), stdout_buf.clone()));
    let err_task = tokio::spawn(drain(child.stderr.take().unwrap(), stderr_buf.clone()));

    let status = match tokio::time::timeout(RUN_GUARD, child.wait()).await {
        Ok(status) => status.expect("wait for the assessor"),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "the assessor did not exit within {RUN_GUARD:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                clip(&String::from_utf8_lossy(&stdout_buf.lock().unwrap()), 4000),
                clip(&String::from_utf8_lossy(&stderr_buf.lock().unwrap()), 6000)
            );
        }
    };
    let elapsed = start.elapsed();
    // A grandchild (a command backend's `sleep`) may keep the pipes open after
    // the binary exits: give the readers a moment, then take what they have.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let _ = out_task.await;
        let _ = err_task.await;
    })
    .await;
    let stdout = String::from_utf8_lossy(&stdout_buf.lock().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr_buf.lock().unwrap()).into_owned();

    let result = result_path.as_ref().and_then(|p| match std::fs::read(p) {
        Ok(bytes) => Some(serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|e| {
            panic!(
                "{} exists but is not JSON ({e}): {}\n--- stderr ---\n{}",
                p.display(),
                clip(&String::from_utf8_lossy(&bytes), 2000),
                clip(&stderr, 4000)
            )
        })),
        Err(_) => None,
    });

    Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        result,
        result_path,
        elapsed,
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

// ---------------------------------------------------------------------------
// Environments
// ---------------------------------------------------------------------------

/// An ordered set of environment variables; `set` replaces.
#[derive(Debug, Clone, Default)]
pub struct Envs(pub Vec<(String, String)>);

impl Envs {
    pub fn new() -> Self {
        Envs(Vec::new())
    }

    pub fn set(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.as_ref().to_string()));
        self
    }

    pub fn remove(mut self, key: &str) -> Self {
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

impl std::ops::Deref for Envs {
    type Target = [(String, String)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The environment of an OpenAI-backend run against `server`: the default
/// backend (LLM_BACKEND unset), a fast retry base, result in `dir/result.json`.
pub fn llm_env(server: &FakeOpenAi, dir: &Path, profile: &Path) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "openai")
        .set("LLM_BASE_URL", server.base_url())
        .set("LLM_MODEL", "test-model")
        .set("LLM_API_KEY", TEST_KEY)
        .set("LLM_RETRY_BASE_DELAY", "50ms")
        .set("LLM_TIMEOUT", "10s")
}

/// The environment of a `fixed`-backend run.
pub fn fixed_env(dir: &Path, profile: &Path) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "fixed")
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `value` as `dir/name` and returns the path.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    write_bytes(
        dir,
        name,
        serde_json::to_string_pretty(value).unwrap().as_bytes(),
    )
}

pub fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A simple valid profile with an id.
pub fn simple_profile(id: &str, text: &str) -> Value {
    json!({
        "text": text,
        "metadata": {
            "id": id,
            "price": "£300,000",
            "location": "Redland, Bristol",
            "summary": "2 bedroom flat for sale"
        }
    })
}

/// `examples/samples`: the 12 labelled samples.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/samples"
    ))
}

/// (name, path, value) of every sample, sorted by name.
pub fn samples() -> Vec<(String, PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(samples_dir()).expect("examples/samples") {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "json") && name.starts_with('s') {
            let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.push((name, path, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        12,
        "expected 12 sample profiles in {}",
        samples_dir().display()
    );
    out
}

pub fn labels() -> Value {
    serde_json::from_slice(&std::fs::read(samples_dir().join("labels.json")).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Result checks
// ---------------------------------------------------------------------------

/// Validates `result` against `schema/result.v1.json`; panics listing the errors.
pub fn assert_schema_valid(result: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/result.v1.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("result schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result does not match schema/result.v1.json:\n  {}\nresult: {}",
        errors.join("\n  "),
        clip(&result.to_string(), 4000)
    );
}

/// Checks the fields every complete result of our assessor has.
pub fn assert_complete_result(r: &Value) {
    assert_schema_valid(r);
    assert_eq!(r["schema"], "shortlist.result/v1", "schema field: {r}");
    assert!(r["id"].as_str().is_some_and(|s| !s.is_empty()), "id: {r}");
    assert!(r["status"] == "ok" || r["status"] == "error", "status: {r}");
    assert_eq!(r["assessor"]["name"], "assessor", "assessor.name: {r}");
    assert!(
        r["assessor"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "assessor.version: {r}"
    );
    let at = r["assessed_at"].as_str().unwrap_or_default();
    let rfc3339 =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .unwrap();
    assert!(rfc3339.is_match(at), "assessed_at is not RFC 3339: {at:?}");
    assert!(r["timings_ms"]["total"].is_u64(), "timings_ms.total: {r}");
    assert!(r["backend"]["kind"].is_string(), "backend.kind: {r}");
    // Our assessor writes every field, `null` where there is no value.
    for key in [
        "verdict",
        "score",
        "decided_by",
        "reasons",
        "usage",
        "attempts",
        "error",
        "profile",
    ] {
        assert!(r.get(key).is_some(), "result lacks field {key:?}: {r}");
    }
}

/// Asserts an ok result with the given verdict and decider.
pub fn assert_ok(out: &Output, verdict: &str, decided_by: &str) -> Value {
    out.assert_no_panic();
    out.assert_code(0);
    let r = out.result().clone();
    assert_complete_result(&r);
    assert_eq!(r["status"], "ok", "status\n{}", out.ctx());
    assert_eq!(r["verdict"], verdict, "verdict\n{}", out.ctx());
    assert_eq!(r["decided_by"], decided_by, "decided_by\n{}", out.ctx());
    assert!(r["error"].is_null(), "error must be null\n{}", out.ctx());
    r
}

// ---------------------------------------------------------------------------
// Prompt inspection
// ---------------------------------------------------------------------------

/// The listing block of a user message: (nonce, inner text). Panics if the
/// message has no well-formed block.
pub fn listing_block(user: &str) -> (String, String) {
    let open = regex::Regex::new(r"<<<LISTING-([0-9a-f]{16})>>>").unwrap();
    // The real opening marker is the first one; its nonce names the end.
    let caps = open.captures(user).unwrap_or_else(|| {
        panic!("no <<<LISTING-{{16 hex}}>>> marker in the user message:\n{user}")
    });
    let nonce = caps[1].to_string();
    let start = caps.get(0).unwrap().end();
    let end_marker = format!("<<<END-LISTING-{nonce}>>>");
    let end = user[start..]
        .find(&end_marker)
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("no {end_marker} in the user message:\n{user}"));
    (nonce, user[start..end].to_string())
}

/// The listing text as the assessor must datamark it: whitespace runs → `ˆ`.
pub fn datamark(text: &str) -> String {
    let ws = regex::Regex::new(r"\s+").unwrap();
    ws.replace_all(text, "\u{02C6}").into_owned()
}

/// `time` as an HTTP-date (IMF-fixdate), for `Retry-After` headers.
#[allow(unused_imports)]
pub use httpdate::fmt_http_date;
