//! The captions stage (docs/captions.md) against real HTTP servers: a fake
//! OpenAI-compatible vision server, a fake judge, and image servers on
//! 127.0.0.1 that record every hit. Covers the request shape, the prompt
//! block, the address guard (SSRF), every bad-input kind, `CAPTION_REQUIRED`,
//! the cache, the rules short-circuit and the API key's reach.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use testkit::assessor::Output;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TEXT: &str = "Two bedroom flat in Redland, Bristol, with a private garden.";
const JUDGE_ACCEPT: &str = r#"{"verdict":"accept","score":0.8,"reasons":["fits"]}"#;
const CAPTION_A: &str = "A bright   kitchen with oak units\nand a window over the sink";
const CAPTION_B: &str = "A small garden with a lawn and\ta wooden fence";
const CAPTION_C: &str = "A double bedroom with a bay window";
const CAPTION_D: &str = "A tiled bathroom with a walk-in shower";

// ---------------------------------------------------------------------------
// Image bytes
// ---------------------------------------------------------------------------

/// A valid 1x1 RGBA PNG (67 bytes, CRCs checked).
const PNG_1X1: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// A minimal JFIF header and end-of-image marker.
const JPEG_MIN: [u8; 22] = [
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
];

/// A distinct PNG: the 1x1 PNG with `tail` after IEND (still a PNG to a sniffer).
fn png(tail: &str) -> Vec<u8> {
    let mut v = PNG_1X1.to_vec();
    v.extend_from_slice(tail.as_bytes());
    v
}

/// A distinct JPEG: the minimal JPEG with `tail` after EOI.
fn jpeg(tail: &str) -> Vec<u8> {
    let mut v = JPEG_MIN.to_vec();
    v.extend_from_slice(tail.as_bytes());
    v
}

/// A valid 1x1 24-bit BMP: an image, but not one of the sent formats.
fn bmp() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"BM");
    v.extend_from_slice(&58u32.to_le_bytes()); // file size
    v.extend_from_slice(&0u32.to_le_bytes()); // reserved
    v.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    v.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER size
    v.extend_from_slice(&1i32.to_le_bytes()); // width
    v.extend_from_slice(&1i32.to_le_bytes()); // height
    v.extend_from_slice(&1u16.to_le_bytes()); // planes
    v.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    v.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    v.extend_from_slice(&4u32.to_le_bytes()); // image size
    v.extend_from_slice(&2835i32.to_le_bytes());
    v.extend_from_slice(&2835i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&[0x00, 0x00, 0xFF, 0x00]); // one red pixel + padding
    assert_eq!(v.len(), 58);
    v
}

/// `n` bytes starting with the PNG signature and header (looks like a PNG).
fn big_png(n: usize) -> Vec<u8> {
    let mut v = PNG_1X1[..33].to_vec();
    v.resize(n, 0x42);
    v
}

// ---------------------------------------------------------------------------
// Base64 (no base64 dev-dependency: a small standard-alphabet codec)
// ---------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 (padding optional at the end only).
fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return Err("too much padding".into());
    }
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 byte {c:#04x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn base64_helpers_round_trip() {
    for n in 0..10 {
        let bytes: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37)).collect();
        assert_eq!(b64_decode(&b64_encode(&bytes)).unwrap(), bytes);
    }
    assert_eq!(b64_encode(b"Man"), "TWFu");
    assert_eq!(b64_encode(b"Ma"), "TWE=");
    assert!(b64_decode("!!!notbase64").is_err());
}

// ---------------------------------------------------------------------------
// Image server: axum on 127.0.0.1:0, hits recorded per path
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Serve {
    /// 200 with these bytes and this content type.
    Bytes(String, Vec<u8>),
    /// 302 to this Location.
    Redirect(String),
    /// Sleeps this long before answering 200 with a PNG.
    Slow(Duration),
}

#[derive(Default)]
struct ImageState {
    routes: Mutex<HashMap<String, Serve>>,
    hits: Mutex<Vec<String>>,
}

struct ImageServer {
    addr: SocketAddr,
    state: Arc<ImageState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn image_handler(State(state): State<Arc<ImageState>>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    state.hits.lock().unwrap().push(path.clone());
    let route = state.routes.lock().unwrap().get(&path).cloned();
    match route {
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .unwrap(),
        Some(Serve::Bytes(content_type, bytes)) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", content_type)
            .body(Body::from(bytes))
            .unwrap(),
        Some(Serve::Redirect(location)) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location)
            .body(Body::empty())
            .unwrap(),
        Some(Serve::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "image/png")
                .body(Body::from(png("slow")))
                .unwrap()
        }
    }
}

impl ImageServer {
    async fn start() -> ImageServer {
        let state = Arc::new(ImageState::default());
        let app = Router::new()
            .fallback(image_handler)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("image server");
        });
        ImageServer { addr, state, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn serve(&self, path: &str, how: Serve) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), how);
    }

    fn bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) {
        self.serve(path, Serve::Bytes(content_type.to_string(), bytes));
    }

    /// `http://127.0.0.1:PORT{path}`
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://localhost:PORT{path}`
    fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port())
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    fn all_hits(&self) -> Vec<String> {
        self.state.hits.lock().unwrap().clone()
    }

    fn clear_hits(&self) {
        self.state.hits.lock().unwrap().clear();
    }
}

/// A raw TCP "HTTP server" for what axum will not do on purpose: a body with
/// no declared length, or headers then a stalled body. Every connection gets
/// `head`, then `body`, then (after `stall`) a close.
struct RawServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    async fn start(head: &str, body: Vec<u8>, stall: Duration) -> RawServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let head = head.as_bytes().to_vec();
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let head = head.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    // Read the request head.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 65536 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = sock.write_all(&head).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.flush().await;
                    if !stall.is_zero() {
                        tokio::time::sleep(stall).await;
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        RawServer { addr, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// Profiles, environments, result checks
// ---------------------------------------------------------------------------

fn profile_with_images(id: &str, text: &str, images: &[String]) -> Value {
    let mut p = simple_profile(id, text);
    p["images"] = json!(images);
    p
}

/// A listing directory `dir/listing` (with `photos/`) distinct from the
/// working directory `dir`, so relative image paths must be resolved against
/// the profile file, not the cwd.
fn listing_dir(dir: &Path) -> std::path::PathBuf {
    let listing = dir.join("listing");
    std::fs::create_dir_all(listing.join("photos")).unwrap();
    listing
}

/// Turns the captions stage on against `vision`.
fn with_captions(envs: Envs, vision: &FakeOpenAi) -> Envs {
    envs.set("CAPTION_BACKEND", "openai")
        .set("CAPTION_BASE_URL", vision.base_url())
        .set("CAPTION_MODEL", "vision-test")
        .set("CAPTION_TIMEOUT", "10s")
}

/// Lets the stage fetch from the test's plain-http loopback servers.
fn open_fetch(envs: Envs) -> Envs {
    envs.set("CAPTION_ALLOW_HTTP", "true")
        .set("CAPTION_ALLOW_PRIVATE", "true")
}

/// `result.captions` as is (an array).
fn raw_records(out: &Output) -> Vec<Value> {
    out.result()["captions"]
        .as_array()
        .unwrap_or_else(|| panic!("result.captions is not an array\n{}", out.ctx()))
        .clone()
}

/// `result.captions`, checked to be one record per image, in image order.
fn caption_records(out: &Output, images: &[String]) -> Vec<Value> {
    let r = out.result();
    let recs = raw_records(out);
    assert_eq!(
        recs.len(),
        images.len(),
        "one caption record per image\n{}",
        out.ctx()
    );
    for (i, (rec, image)) in recs.iter().zip(images).enumerate() {
        if !image.starts_with("data:") {
            assert_eq!(
                rec["image"].as_str(),
                Some(image.as_str()),
                "record {i} names its image as written (image order)\n{}",
                out.ctx()
            );
        }
        assert!(
            rec["ms"].is_u64(),
            "record {i}: ms must be a number\n{}",
            out.ctx()
        );
        assert!(
            rec["cached"].is_boolean(),
            "record {i}: cached must be a boolean\n{}",
            out.ctx()
        );
    }
    assert!(
        r["timings_ms"]["captions"].is_u64(),
        "timings_ms.captions\n{}",
        out.ctx()
    );
    recs
}

fn assert_captioned(rec: &Value, out: &Output) -> String {
    assert!(
        rec["error"].is_null(),
        "record must have no error: {rec}\n{}",
        out.ctx()
    );
    rec["caption"]
        .as_str()
        .filter(|c| !c.trim().is_empty())
        .map(norm)
        .unwrap_or_else(|| panic!("record must have a caption: {rec}\n{}", out.ctx()))
}

/// A caption as the record may hold it: the model's text with whitespace
/// runs collapsed and trimmed (the spec does not promise byte-for-byte).
fn norm(caption: &str) -> String {
    caption.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_failed(rec: &Value, kind: &str, out: &Output) {
    assert_eq!(
        rec["error"]["kind"],
        kind,
        "error kind of {rec}\n{}",
        out.ctx()
    );
    assert!(
        rec["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "error.message must be a non-empty string: {rec}\n{}",
        out.ctx()
    );
    assert!(
        rec["caption"].is_null(),
        "a failed record has caption null: {rec}\n{}",
        out.ctx()
    );
    assert_eq!(
        rec["cached"], false,
        "a failed record is never cached: {rec}"
    );
}

/// The image a vision request carries: (mime of the data URI, decoded bytes).
/// Checks the shape: one user message whose content is an array holding one
/// `image_url` part with a base64 `data:` URI and a non-empty text part.
fn vision_image(req: &Recorded) -> (String, Vec<u8>) {
    assert_eq!(req.method, "POST", "vision request method");
    assert_eq!(
        req.path, "/v1/chat/completions",
        "vision requests go to {{base}}/chat/completions"
    );
    let users: Vec<&Value> = req
        .messages()
        .iter()
        .filter(|m| m["role"] == "user")
        .collect();
    assert_eq!(
        users.len(),
        1,
        "one user message in the vision request: {:.2000}",
        req.text()
    );
    let parts = users[0]["content"].as_array().unwrap_or_else(|| {
        panic!(
            "user content must be an array of parts: {:.2000}",
            req.text()
        )
    });
    assert!(
        parts.iter().any(
            |p| p["type"] == "text" && p["text"].as_str().is_some_and(|t| !t.trim().is_empty())
        ),
        "the user message needs a text part: {:.2000}",
        req.text()
    );
    let images: Vec<&Value> = parts.iter().filter(|p| p["type"] == "image_url").collect();
    assert_eq!(images.len(), 1, "one image_url part: {:.2000}", req.text());
    let url = images[0]["image_url"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("image_url.url must be a string: {:.2000}", req.text()));
    let rest = url
        .strip_prefix("data:")
        .unwrap_or_else(|| panic!("image_url.url must be a data: URI: {:.200}", url));
    let (mime, b64) = rest
        .split_once(";base64,")
        .unwrap_or_else(|| panic!("data URI must be ;base64,: {:.200}", url));
    let bytes =
        b64_decode(b64).unwrap_or_else(|e| panic!("bad base64 in data URI ({e}): {url:.200}"));
    (mime.to_string(), bytes)
}

/// Requests that carry an image (caption requests), in arrival order.
fn caption_requests(server: &FakeOpenAi) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.text().contains("image_url"))
        .collect()
}

/// The caption each image got from `vision`, given its script in order: the
/// i-th request received the i-th scripted caption. Keyed by image bytes.
fn captions_by_bytes(vision: &FakeOpenAi, script: &[&str]) -> Vec<(Vec<u8>, String)> {
    caption_requests(vision)
        .iter()
        .enumerate()
        .map(|(i, req)| (vision_image(req).1, script[i].to_string()))
        .collect()
}

fn caption_for(pairs: &[(Vec<u8>, String)], bytes: &[u8]) -> Option<String> {
    pairs
        .iter()
        .find(|(b, _)| b.as_slice() == bytes)
        .map(|(_, c)| norm(c))
}

fn assert_secret_absent(out: &Output, secret: &str) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into {what}\n{}",
            out.ctx()
        );
    }
    let written = out.result_path.as_ref().and_then(|p| std::fs::read(p).ok());
    if let Some(bytes) = written {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{secret:?} leaked into the result\n{}",
            out.ctx()
        );
    }
}

// 1 -------------------------------------------------------------------------

#[tokio::test]
async fn happy_path_captions_reach_the_judge() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    let remote = png("remote-kitchen-1");
    let local = png("local-garden-2");
    write_bytes(&listing.join("photos"), "a.png", &local);
    let images = ImageServer::start().await;
    images.bytes("/kitchen.png", "image/png", remote.clone());
    let sources = vec![images.url("/kitchen.png"), "photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-happy", TEXT, &sources),
    );

    let judge = FakeOpenAi::start(vec![completion(JUDGE_ACCEPT)]).await;
    let script = [CAPTION_A, CAPTION_B];
    let vision = FakeOpenAi::start(script.iter().map(|c| completion(c)).collect()).await;
    let envs = open_fetch(with_captions(
        llm_env(&judge, dir.path(), &profile),
        &vision,
    ));
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "llm");

    // The vision server: two requests, the right model, the exact bytes.
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 2, "two caption requests\n{}", out.ctx());
    let mut seen = Vec::new();
    for req in &vreqs {
        let body = req.json();
        assert_eq!(body["model"], "vision-test", "caption model: {body}");
        assert!(
            body["max_tokens"] == 200 || body["max_completion_tokens"] == 200,
            "CAPTION_MAX_TOKENS defaults to 200: {body}"
        );
        let (mime, bytes) = vision_image(req);
        assert_eq!(mime, "image/png", "sniffed type in the data URI");
        seen.push(bytes);
    }
    assert!(
        seen.contains(&remote),
        "the served bytes were sent exactly\n{}",
        out.ctx()
    );
    assert!(
        seen.contains(&local),
        "the local file's bytes were sent exactly\n{}",
        out.ctx()
    );
    assert_eq!(images.hits("/kitchen.png"), 1, "fetched once");

    // The judge: after the captions, both captions inside the listing block.
    let jreqs = judge.requests();
    assert_eq!(jreqs.len(), 1, "one judge request\n{}", out.ctx());
    assert!(
        vreqs.iter().all(|v| v.at <= jreqs[0].at),
        "captions run before the judge"
    );
    let user = jreqs[0].message("user");
    let (_, block) = listing_block(&user);
    for caption in script {
        assert!(
            block.contains(&datamark(caption)),
            "the judge's listing block must hold the datamarked caption {:?}:\n{block}",
            datamark(caption)
        );
    }
    assert!(
        block.contains(&datamark(TEXT)),
        "the listing text is still in the block:\n{block}"
    );
    assert!(
        !user.replace(&block, "").contains("oak units"),
        "a caption outside the listing block:\n{user}"
    );

    // The result.
    let pairs = captions_by_bytes(&vision, &script);
    let recs = caption_records(&out, &sources);
    for (rec, bytes) in recs.iter().zip([&remote, &local]) {
        let caption = assert_captioned(rec, &out);
        assert_eq!(
            Some(caption),
            caption_for(&pairs, bytes),
            "each record holds the caption its own image got\n{}",
            out.ctx()
        );
        assert_eq!(rec["cached"], false, "{rec}");
        assert!(rec["error"].is_null(), "{rec}");
    }
    assert_eq!(
        r["usage"],
        json!({"prompt_tokens": 126, "completion_tokens": 21}),
        "caption tokens are added to usage (2 captions + 1 verdict)\n{}",
        out.ctx()
    );
    assert_schema_valid(&r);
}

/// Relative paths of a profile read from stdin resolve against the cwd.
#[tokio::test]
async fn stdin_profile_resolves_paths_against_the_working_directory() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("photos")).unwrap();
    let local = png("stdin-local");
    write_bytes(&dir.path().join("photos"), "s.png", &local);
    let sources = vec!["photos/s.png".to_string()];
    let value = profile_with_images("cap-stdin", TEXT, &sources);
    let vision = FakeOpenAi::start(vec![completion(CAPTION_C)]).await;
    let envs = with_captions(fixed_env(dir.path(), Path::new("-")), &vision);
    let out = run_assessor_with_stdin(
        ASSESSOR,
        dir.path(),
        &envs,
        &[],
        Some(serde_json::to_vec(&value).unwrap()),
    )
    .await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &sources);
    assert_eq!(assert_captioned(&recs[0], &out), norm(CAPTION_C));
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 1, "{}", out.ctx());
    assert_eq!(vision_image(&vreqs[0]).1, local);
}

// 2 -------------------------------------------------------------------------

#[tokio::test]
async fn address_guard_refuses_private_addresses_by_default() {
    let dir = tempdir();
    let a = ImageServer::start().await;
    let b = ImageServer::start().await;
    a.bytes("/a.png", "image/png", png("guard-a"));
    a.bytes("/b.png", "image/png", png("guard-b"));
    a.bytes("/ok.png", "image/png", png("guard-ok"));
    a.bytes("/zero.png", "image/png", png("guard-zero"));
    a.bytes("/mapped.png", "image/png", png("guard-mapped"));
    a.bytes("/dec.png", "image/png", png("guard-dec"));
    let secret_url = b.url("/secret.png");
    a.serve("/redirect", Serve::Redirect(secret_url.clone()));
    b.bytes("/secret.png", "image/png", png("guard-secret"));
    let port = a.port();

    // Run 1: every private form refused, nothing reached.
    let refused = vec![
        a.url("/a.png"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        a.localhost_url("/b.png"),
        format!("http://0.0.0.0:{port}/zero.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped.png"),
        format!("http://2130706433:{port}/dec.png"),
        format!("http://[::1]:{port}/v6.png"),
    ];
    let profile = write_json(
        dir.path(),
        "refused.json",
        &profile_with_images("cap-ssrf-1", TEXT, &refused),
    );
    let vision = FakeOpenAi::start(vec![]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_ALLOW_HTTP", "true")
        .set("CAPTION_FETCH_TIMEOUT", "1s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "fixed");
    let recs = raw_records(&out);
    let wrong: Vec<String> = refused
        .iter()
        .zip(&recs)
        .filter(|(_, rec)| rec["error"]["kind"] != "image_refused")
        .map(|(src, rec)| format!("{src}: expected image_refused, got {}", rec["error"]))
        .collect();
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), out.ctx());
    for rec in caption_records(&out, &refused) {
        assert_failed(&rec, "image_refused", &out);
    }
    assert_eq!(
        a.all_hits(),
        Vec::<String>::new(),
        "a refused address is never connected to\n{}",
        out.ctx()
    );
    assert_eq!(vision.requests().len(), 0, "nothing to caption");
    assert_schema_valid(&r);

    // Run 2: localhost is an exception, but the redirect's hop to 127.0.0.1
    // is checked again and refused.
    let via_redirect = vec![a.localhost_url("/redirect"), a.localhost_url("/ok.png")];
    let profile = write_json(
        dir.path(),
        "redirect.json",
        &profile_with_images("cap-ssrf-2", TEXT, &via_redirect),
    );
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_ALLOW_HTTP", "true")
        .set("CAPTION_ALLOW_HOSTS", "localhost")
        .set("CAPTION_FETCH_TIMEOUT", "1s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &via_redirect);
    assert_failed(&recs[0], "image_refused", &out);
    assert_eq!(
        assert_captioned(&recs[1], &out),
        norm(CAPTION_A),
        "an allowed host is fetched"
    );
    assert_eq!(a.hits("/redirect"), 1, "the allowed first hop is fetched");
    assert_eq!(a.hits("/ok.png"), 1);
    assert_eq!(
        b.all_hits(),
        Vec::<String>::new(),
        "the redirect target must not be reached\n{}",
        out.ctx()
    );
    assert_eq!(vision.requests().len(), 1);
    a.clear_hits();

    // Run 3: a CIDR exception.
    let cidr = vec![
        a.url("/a.png"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    let profile = write_json(
        dir.path(),
        "cidr.json",
        &profile_with_images("cap-ssrf-3", TEXT, &cidr),
    );
    let vision = FakeOpenAi::start(vec![completion(CAPTION_B)]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_ALLOW_HTTP", "true")
        .set("CAPTION_ALLOW_HOSTS", "127.0.0.0/8")
        .set("CAPTION_FETCH_TIMEOUT", "1s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &cidr);
    assert_eq!(assert_captioned(&recs[0], &out), norm(CAPTION_B));
    assert_failed(&recs[1], "image_refused", &out);
    assert_eq!(a.hits("/a.png"), 1);
    a.clear_hits();

    // Run 4: CAPTION_ALLOW_PRIVATE=true turns the guard off.
    let private = vec![
        a.url("/a.png"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        a.localhost_url("/b.png"),
        a.localhost_url("/redirect"),
    ];
    let profile = write_json(
        dir.path(),
        "private.json",
        &profile_with_images("cap-ssrf-4", TEXT, &private),
    );
    let vision = FakeOpenAi::start(vec![
        completion(CAPTION_A),
        completion(CAPTION_B),
        completion(CAPTION_C),
    ])
    .await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_ALLOW_HTTP", "true")
        .set("CAPTION_ALLOW_PRIVATE", "true")
        .set("CAPTION_FETCH_TIMEOUT", "1s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &private);
    for i in [0, 2, 3] {
        assert_captioned(&recs[i], &out);
    }
    let kind = recs[1]["error"]["kind"].as_str().unwrap_or_default();
    // No metadata server here: the connection fails or times out. (On a cloud
    // VM a real one may answer with text: not_an_image.)
    assert!(
        ["image_fetch_failed", "image_timeout", "not_an_image"].contains(&kind),
        "169.254.169.254 is no longer refused with the guard off, got {kind:?}\n{}",
        out.ctx()
    );
    assert!(a.hits("/a.png") > 0, "127.0.0.1 fetched");
    assert!(a.hits("/b.png") > 0, "localhost fetched");
    assert!(a.hits("/redirect") > 0, "redirect followed");
    assert!(b.hits("/secret.png") > 0, "redirect target fetched");
    assert_eq!(vision.requests().len(), 3, "{}", out.ctx());
}

// 3 -------------------------------------------------------------------------

#[tokio::test]
async fn bad_images_are_recorded_and_the_assessment_completes() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    let outside = write_bytes(dir.path(), "outside.png", &png("outside"));
    std::os::unix::fs::symlink(&outside, listing.join("photos").join("link.png")).unwrap();

    let images = ImageServer::start().await;
    let ok_jpeg = jpeg("ok-jpeg");
    images.bytes("/ok.jpg", "application/octet-stream", ok_jpeg.clone());
    images.bytes("/big.png", "image/png", big_png(4096));
    images.bytes(
        "/text.jpg",
        "image/jpeg",
        b"<html><body>definitely not a jpeg</body></html>".to_vec(),
    );
    images.serve("/slow.png", Serve::Slow(Duration::from_secs(5)));
    images.bytes("/user.png", "image/png", png("userinfo"));
    images.bytes("/image.bmp", "image/png", bmp());
    for (from, to) in [
        ("/r1", "/r2"),
        ("/r2", "/r3"),
        ("/r3", "/r4"),
        ("/r4", "/final.png"),
    ] {
        images.serve(from, Serve::Redirect(images.url(to)));
    }
    images.bytes("/final.png", "image/png", png("final"));
    let user_png = png("userinfo");

    // No declared length, body past the limit, then close.
    let no_length = RawServer::start(
        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n",
        big_png(4096),
        Duration::ZERO,
    )
    .await;
    // Headers at once, then the body stalls.
    let stalled = RawServer::start(
        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 900\r\n\r\n",
        big_png(100),
        Duration::from_secs(5),
    )
    .await;

    let jpeg_in_png_uri = format!("data:image/png;base64,{}", b64_encode(&jpeg("data-jpeg")));
    let user_url = format!(
        "http://photo-user:pw-USERINFO-77@127.0.0.1:{}/user.png",
        images.port()
    );
    let sources = vec![
        images.url("/ok.jpg"),                            // 0 captioned, sniffed JPEG
        images.url("/big.png"),                           // 1 image_too_large
        no_length.url("/no_length.png"),                  // 2 image_too_large
        images.url("/text.jpg"),                          // 3 not_an_image
        images.url("/slow.png"),                          // 4 image_timeout
        stalled.url("/stalled.png"),                      // 5 image_timeout
        "photos/missing.png".to_string(),                 // 6 image_not_found
        "data:image/png;base64,!!!notbase64".to_string(), // 7 data_uri_invalid
        "file:///etc/passwd".to_string(),                 // 8 image_source_invalid
        "../outside.png".to_string(),                     // 9 image_refused
        "photos/link.png".to_string(),                    // 10 image_refused
        outside.to_str().unwrap().to_string(),            // 11 image_refused
        jpeg_in_png_uri.clone(),                          // 12 captioned, sniffed JPEG
        user_url.clone(),                                 // 13 captioned
        images.url("/nope.png"),                          // 14 image_fetch_failed
        images.url("/image.bmp"),                         // 15 image_type_unsupported
        images.url("/r1"),                                // 16 too_many_redirects
        "ftp://127.0.0.1/x.png".to_string(),              // 17 image_source_invalid
    ];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-bad", TEXT, &sources),
    );
    let script = [CAPTION_A, CAPTION_B, CAPTION_C];
    let vision = FakeOpenAi::start(script.iter().map(|c| completion(c)).collect()).await;
    let envs = open_fetch(with_captions(fixed_env(dir.path(), &profile), &vision))
        .set("CAPTION_MAX_IMAGES", "32")
        .set("CAPTION_MAX_IMAGE_BYTES", "1KiB")
        .set("CAPTION_FETCH_TIMEOUT", "1s")
        .set("CAPTION_MAX_REDIRECTS", "3");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "fixed");
    assert_schema_valid(&r);

    let recs = raw_records(&out);
    assert_eq!(recs.len(), sources.len(), "{}", out.ctx());
    let expected = [
        (1, "image_too_large"),
        (2, "image_too_large"),
        (3, "not_an_image"),
        (4, "image_timeout"),
        (5, "image_timeout"),
        (6, "image_not_found"),
        (7, "data_uri_invalid"),
        (8, "image_source_invalid"),
        (9, "image_refused"),
        (10, "image_refused"),
        (11, "image_refused"),
        (14, "image_fetch_failed"),
        (15, "image_type_unsupported"),
        (16, "too_many_redirects"),
        (17, "image_source_invalid"),
    ];
    let mut wrong = Vec::new();
    for (i, kind) in expected {
        if recs[i]["error"]["kind"] != kind {
            wrong.push(format!(
                "images[{i}] {:.80}: expected {kind}, got {}",
                sources[i], recs[i]["error"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), out.ctx());
    for (i, kind) in expected {
        assert_failed(&recs[i], kind, &out);
    }
    // Every record names its source as written (record 13 without its
    // credentials), in image order.
    let mut written = sources.clone();
    written[13] = images.url("/user.png");
    caption_records(&out, &written);

    let pairs = captions_by_bytes(&vision, &script);
    for (i, bytes) in [(0, &ok_jpeg), (13, &user_png)] {
        assert_eq!(
            Some(assert_captioned(&recs[i], &out)),
            caption_for(&pairs, bytes),
            "images[{i}]\n{}",
            out.ctx()
        );
    }
    assert!(
        recs[12]["image"]
            .as_str()
            .is_some_and(|s| s.starts_with("data:image/png;base64,")),
        "a data URI is named by its (shortened) source: {}",
        recs[12]
    );
    assert!(
        caption_for(&pairs, &jpeg("data-jpeg")).is_some(),
        "the data URI's bytes were captioned\n{}",
        out.ctx()
    );
    assert_eq!(
        recs[13]["image"].as_str(),
        Some(images.url("/user.png").as_str()),
        "user:password@ is removed from the recorded source"
    );
    // (`profile` echoes the input as read; the caption records must not.)
    assert!(
        !r["captions"].to_string().contains("USERINFO-77"),
        "the URL's password must not reach the caption records: {}",
        r["captions"]
    );

    // Only the three good images went to the model, as sniffed JPEG/PNG.
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 3, "{}", out.ctx());
    for req in &vreqs {
        let (mime, bytes) = vision_image(req);
        let want = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else {
            "image/png"
        };
        assert_eq!(mime, want, "the data URI carries the sniffed type");
        assert!(
            [ok_jpeg.clone(), jpeg("data-jpeg"), user_png.clone()].contains(&bytes),
            "unexpected bytes sent to the model: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert_eq!(images.hits("/final.png"), 0, "redirects past the limit");
    assert!(no_length.hits() > 0 && stalled.hits() > 0);
}

#[tokio::test]
async fn images_beyond_the_limit_are_never_fetched() {
    let dir = tempdir();
    let images = ImageServer::start().await;
    let bytes: Vec<Vec<u8>> = (1..=3).map(|i| png(&format!("limit-{i}"))).collect();
    for (i, b) in bytes.iter().enumerate() {
        images.bytes(&format!("/{}.png", i + 1), "image/png", b.clone());
    }
    let sources: Vec<String> = (1..=3).map(|i| images.url(&format!("/{i}.png"))).collect();
    let profile = write_json(
        dir.path(),
        "p.json",
        &profile_with_images("cap-limit", TEXT, &sources),
    );
    let script = [CAPTION_A, CAPTION_B];
    let vision = FakeOpenAi::start(script.iter().map(|c| completion(c)).collect()).await;
    let envs = open_fetch(with_captions(fixed_env(dir.path(), &profile), &vision))
        .set("CAPTION_MAX_IMAGES", "2");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &sources);
    let pairs = captions_by_bytes(&vision, &script);
    for (i, (rec, b)) in recs.iter().zip(&bytes).take(2).enumerate() {
        assert_eq!(
            Some(assert_captioned(rec, &out)),
            caption_for(&pairs, b),
            "images[{i}]"
        );
    }
    assert_failed(&recs[2], "too_many_images", &out);
    assert_eq!(images.hits("/3.png"), 0, "the third image is never fetched");
    assert_eq!(vision.requests().len(), 2);
}

#[tokio::test]
async fn plain_http_needs_caption_allow_http() {
    let dir = tempdir();
    let images = ImageServer::start().await;
    images.bytes("/a.png", "image/png", png("http-a"));
    let sources = vec![
        images.url("/a.png"),
        // https is a valid source: the plain-http server fails the TLS
        // handshake, so the fetch fails (not "invalid source").
        format!("https://127.0.0.1:{}/a.png", images.port()),
    ];
    let profile = write_json(
        dir.path(),
        "p.json",
        &profile_with_images("cap-http", TEXT, &sources),
    );
    let vision = FakeOpenAi::start(vec![]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_ALLOW_PRIVATE", "true")
        .set("CAPTION_FETCH_TIMEOUT", "2s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &sources);
    assert_failed(&recs[0], "image_source_invalid", &out);
    assert_failed(&recs[1], "image_fetch_failed", &out);
    assert_eq!(images.hits("/a.png"), 0, "http:// is not fetched");
    assert_eq!(vision.requests().len(), 0);
}

// 4 -------------------------------------------------------------------------

/// Runs a CAPTION_REQUIRED=true assessment of `photos/ok.png` (captionable)
/// plus the `failing` (source, expected kind) images and checks: exit code,
/// status error, kind `captions_failed`, the judge never asked.
async fn run_required(failing: &[(&str, &str)], expected_code: i32) {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "ok.png", &png("required-ok"));
    let mut sources = vec!["photos/ok.png".to_string()];
    sources.extend(failing.iter().map(|(src, _)| src.to_string()));
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-required", TEXT, &sources),
    );
    let judge = FakeOpenAi::start(vec![completion(JUDGE_ACCEPT)]).await;
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;
    let envs = open_fetch(with_captions(
        llm_env(&judge, dir.path(), &profile),
        &vision,
    ))
    .set("CAPTION_REQUIRED", "true")
    .set("CAPTION_FETCH_TIMEOUT", "2s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let kinds: Vec<&str> = failing.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        out.code,
        expected_code,
        "CAPTION_REQUIRED with failures {kinds:?}: exit {expected_code} expected\n{}",
        out.ctx()
    );
    out.assert_no_panic();
    let r = out.assert_error_result("captions_failed");
    assert_eq!(
        judge.requests().len(),
        0,
        "the judge must not be asked\n{}",
        out.ctx()
    );
    if let Some(recs) = r.get("captions").and_then(Value::as_array) {
        assert_eq!(recs.len(), sources.len(), "{}", out.ctx());
        for (rec, (_, kind)) in recs[1..].iter().zip(failing) {
            assert_failed(rec, kind, &out);
        }
    }
}

#[tokio::test]
async fn caption_required_transient_failure_exits_4_before_the_judge() {
    let images = ImageServer::start().await;
    let gone = images.url("/gone.png"); // 404: image_fetch_failed
    run_required(&[(&gone, "image_fetch_failed")], 4).await;
}

#[tokio::test]
async fn caption_required_profile_failure_exits_3_before_the_judge() {
    run_required(&[("photos/gone.png", "image_not_found")], 3).await;
}

#[tokio::test]
async fn caption_required_any_transient_failure_makes_it_4() {
    let images = ImageServer::start().await;
    let gone = images.url("/gone.png");
    run_required(
        &[
            ("photos/gone.png", "image_not_found"),
            (&gone, "image_fetch_failed"),
        ],
        4,
    )
    .await;
}

// 5 -------------------------------------------------------------------------

fn cache_entries(cache: &Path) -> Vec<String> {
    let re = regex::Regex::new(r"^[0-9a-f]{64}\.json$").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(cache.join("captions"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in &names {
        assert!(
            re.is_match(n),
            "CACHE_DIR/captions holds only <sha256>.json entries, found {n:?}"
        );
    }
    names
}

#[tokio::test]
async fn captions_are_cached_by_bytes_model_and_prompt() {
    let dir = tempdir();
    let cache = tempdir();
    let listing = listing_dir(dir.path());
    let remote = png("cache-remote");
    let local = png("cache-local");
    write_bytes(&listing.join("photos"), "a.png", &local);
    let images = ImageServer::start().await;
    images.bytes("/r.png", "image/png", remote.clone());
    let sources = vec![images.url("/r.png"), "photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-cache", TEXT, &sources),
    );
    let judge = FakeOpenAi::start(vec![]).await;
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A), completion(CAPTION_B)]).await;
    // The judge must be asked each run to see the cached captions, so the
    // response cache (which would answer run 2 itself) is off here.
    let envs = open_fetch(with_captions(
        llm_env(&judge, dir.path(), &profile),
        &vision,
    ))
    .set("CACHE_DIR", cache.path().to_str().unwrap())
    .set("LLM_RESPONSE_CACHE", "false");

    // Run 1: asks, stores two entries.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    let recs = caption_records(&out, &sources);
    let pairs = captions_by_bytes(&vision, &[CAPTION_A, CAPTION_B]);
    let first: Vec<String> = recs.iter().map(|r| assert_captioned(r, &out)).collect();
    assert_eq!(Some(first[0].clone()), caption_for(&pairs, &remote));
    assert_eq!(Some(first[1].clone()), caption_for(&pairs, &local));
    assert!(recs.iter().all(|r| r["cached"] == false), "{}", out.ctx());
    assert_eq!(vision.requests().len(), 2);
    let entries = cache_entries(cache.path());
    assert_eq!(entries.len(), 2, "two cache entries: {entries:?}");

    // Run 2: no vision request, cached: true, the judge still sees the captions.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "llm");
    assert_eq!(
        vision.requests().len(),
        2,
        "a cached caption makes no request\n{}",
        out.ctx()
    );
    let recs = caption_records(&out, &sources);
    for (rec, want) in recs.iter().zip(&first) {
        assert_eq!(&assert_captioned(rec, &out), want, "same caption");
        assert_eq!(rec["cached"], true, "{rec}\n{}", out.ctx());
    }
    assert_eq!(images.hits("/r.png"), 2, "the image is still loaded");
    let jreqs = judge.requests();
    assert_eq!(jreqs.len(), 2);
    let (_, block) = listing_block(&jreqs[1].message("user"));
    for c in &first {
        assert!(
            block.contains(&datamark(c)),
            "cached caption {c:?} in the judge's block:\n{block}"
        );
    }
    assert_eq!(
        r["usage"],
        json!({"prompt_tokens": 42, "completion_tokens": 7}),
        "no caption tokens for cached captions\n{}",
        out.ctx()
    );
    assert_schema_valid(&r);

    // Run 3: another prompt is another key: asked again.
    vision.push([completion(CAPTION_C), completion(CAPTION_D)]);
    let prompt = "Describe the photo for a buyer. PROMPT-MARKER-42";
    let envs3 = envs.clone().set("CAPTION_PROMPT", prompt);
    let out = run_assessor(ASSESSOR, dir.path(), &envs3, &[]).await;
    assert_ok(&out, "accept", "llm");
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 4, "a new prompt asks again\n{}", out.ctx());
    for req in &vreqs[2..] {
        assert!(
            req.messages()
                .iter()
                .any(|m| message_text(&m["content"]).contains(prompt)),
            "CAPTION_PROMPT is sent with the image: {:.2000}",
            req.text()
        );
    }
    let recs = caption_records(&out, &sources);
    for rec in &recs {
        let c = assert_captioned(rec, &out);
        assert!(
            c == norm(CAPTION_C) || c == norm(CAPTION_D),
            "new caption: {rec}"
        );
        assert_eq!(rec["cached"], false, "{rec}");
    }
    assert_eq!(cache_entries(cache.path()).len(), 4);

    // Run 4: another model is another key too.
    vision.push([completion(CAPTION_A), completion(CAPTION_B)]);
    let envs4 = envs.clone().set("CAPTION_MODEL", "vision-test-2");
    let out = run_assessor(ASSESSOR, dir.path(), &envs4, &[]).await;
    assert_ok(&out, "accept", "llm");
    assert_eq!(
        vision.requests().len(),
        6,
        "a new model asks again\n{}",
        out.ctx()
    );
    assert_eq!(cache_entries(cache.path()).len(), 6);

    // Run 5: an unreadable entry is ignored and replaced.
    for name in cache_entries(cache.path()) {
        std::fs::write(cache.path().join("captions").join(&name), b"{not json").unwrap();
    }
    vision.push([completion(CAPTION_A), completion(CAPTION_B)]);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    assert_eq!(
        vision.requests().len(),
        8,
        "corrupt entries are asked again\n{}",
        out.ctx()
    );
    for rec in caption_records(&out, &sources) {
        assert_captioned(&rec, &out);
        assert_eq!(rec["cached"], false, "{rec}");
    }
    // Run 6: and the replacements are used.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    assert_eq!(vision.requests().len(), 8, "{}", out.ctx());
    for rec in caption_records(&out, &sources) {
        assert_eq!(rec["cached"], true, "{rec}\n{}", out.ctx());
    }
}

#[tokio::test]
async fn failed_captions_are_recorded_and_never_cached() {
    let dir = tempdir();
    let cache = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("fail-a"));
    write_bytes(&listing.join("photos"), "b.png", &png("fail-b"));
    let sources = vec!["photos/a.png".to_string(), "photos/b.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-fail", TEXT, &sources),
    );
    // One server error, one empty caption: both are caption_failed.
    let vision = FakeOpenAi::start(vec![
        error_reply(
            400,
            &openai_error("model cannot see", "invalid_request_error"),
        ),
        completion(""),
    ])
    .await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("LLM_MAX_ATTEMPTS", "1")
        .set("CACHE_DIR", cache.path().to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    for rec in caption_records(&out, &sources) {
        assert_failed(&rec, "caption_failed", &out);
    }
    assert_eq!(vision.requests().len(), 2, "{}", out.ctx());
    assert_eq!(
        cache_entries(cache.path()).len(),
        0,
        "failures are not cached"
    );

    vision.push([completion(CAPTION_A), completion(CAPTION_B)]);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    assert_eq!(vision.requests().len(), 4, "asked again\n{}", out.ctx());
    for rec in caption_records(&out, &sources) {
        assert_captioned(&rec, &out);
        assert_eq!(rec["cached"], false, "{rec}");
    }
}

#[tokio::test]
async fn a_slow_vision_server_is_caption_timeout() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("slow-vision"));
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-vt", TEXT, &sources),
    );
    let vision = FakeOpenAi::start(vec![hang(), hang(), hang(), hang()]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_TIMEOUT", "1s")
        .set("LLM_MAX_ATTEMPTS", "1");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let recs = caption_records(&out, &sources);
    assert_failed(&recs[0], "caption_timeout", &out);
    assert!(
        out.elapsed < Duration::from_secs(20),
        "the timeout held: {:?}",
        out.elapsed
    );
}

// 6 -------------------------------------------------------------------------

#[tokio::test]
async fn a_rules_rejection_skips_captions() {
    let dir = tempdir();
    let images = ImageServer::start().await;
    images.bytes("/a.png", "image/png", png("rules-a"));
    let sources = vec![images.url("/a.png")];
    let profile = write_json(
        dir.path(),
        "p.json",
        &profile_with_images(
            "cap-rules",
            "Two bedroom flat for sale by auction in Redland.",
            &sources,
        ),
    );
    let judge = FakeOpenAi::start(vec![]).await;
    let vision = FakeOpenAi::start(vec![]).await;
    let envs = open_fetch(with_captions(
        llm_env(&judge, dir.path(), &profile),
        &vision,
    ))
    .set("ASSESSOR_RULES", r#"{"forbid":["auction"]}"#);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "reject", "rules");
    assert_eq!(vision.requests().len(), 0, "no caption request");
    assert_eq!(
        images.all_hits(),
        Vec::<String>::new(),
        "no image fetched\n{}",
        out.ctx()
    );
    assert_eq!(judge.requests().len(), 0, "no judge request");
}

// 7 -------------------------------------------------------------------------

const CAPTION_SECRET: &str = "sk-caption-secret-1";

#[tokio::test]
async fn caption_api_key_goes_to_the_vision_server_only() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("key-a"));
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-key", TEXT, &sources),
    );
    let judge = FakeOpenAi::start(vec![]).await;
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;
    let envs = with_captions(llm_env(&judge, dir.path(), &profile), &vision)
        .set("CAPTION_API_KEY", CAPTION_SECRET)
        .set("RUST_LOG", "trace");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 1, "{}", out.ctx());
    for req in &vreqs {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {CAPTION_SECRET}").as_str()),
            "the vision server sees CAPTION_API_KEY"
        );
    }
    for req in judge.requests() {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {TEST_KEY}").as_str()),
            "the judge keeps its own key"
        );
    }
    assert_secret_absent(&out, CAPTION_SECRET);
    assert_secret_absent(&out, "caption-secret");
}

#[tokio::test]
async fn caption_api_key_file_is_read() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("keyfile-a"));
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-keyfile", TEXT, &sources),
    );
    let key_file = write_bytes(
        dir.path(),
        "caption-key",
        format!("{CAPTION_SECRET}\n").as_bytes(),
    );
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision)
        .set("CAPTION_API_KEY_FILE", key_file.to_str().unwrap())
        .set("RUST_LOG", "trace");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 1, "{}", out.ctx());
    assert_eq!(
        vreqs[0].header("authorization"),
        Some(format!("Bearer {CAPTION_SECRET}").as_str())
    );
    assert_secret_absent(&out, "caption-secret");
}

#[tokio::test]
async fn the_judge_key_is_not_sent_to_another_vision_server() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("nokey-a"));
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-nokey", TEXT, &sources),
    );
    let judge = FakeOpenAi::start(vec![]).await;
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;
    let envs = with_captions(llm_env(&judge, dir.path(), &profile), &vision);
    assert_ne!(envs.get("CAPTION_BASE_URL"), envs.get("LLM_BASE_URL"));
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 1, "{}", out.ctx());
    for req in &vreqs {
        assert_eq!(
            req.header("authorization"),
            None,
            "LLM_API_KEY must not reach another server"
        );
        assert!(
            !req.headers.iter().any(|(_, v)| v.contains(TEST_KEY)),
            "LLM_API_KEY in some header: {:?}",
            req.headers
        );
    }
    let recs = caption_records(&out, &sources);
    assert_eq!(assert_captioned(&recs[0], &out), norm(CAPTION_A));
}

/// With no CAPTION_BASE_URL the judge's server is the vision server: the
/// judge's key and model are used for captions too.
#[tokio::test]
async fn the_judge_server_key_and_model_are_the_defaults() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    let local = png("shared-a");
    write_bytes(&listing.join("photos"), "a.png", &local);
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-shared", TEXT, &sources),
    );
    // The caption request comes first (captions run before the judge).
    let server = FakeOpenAi::start(vec![completion(CAPTION_A), completion(JUDGE_ACCEPT)]).await;
    let envs = llm_env(&server, dir.path(), &profile).set("CAPTION_BACKEND", "openai");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{}", out.ctx());
    let (mime, bytes) = vision_image(&reqs[0]);
    assert_eq!((mime.as_str(), bytes), ("image/png", local));
    assert_eq!(reqs[0].json()["model"], "test-model", "LLM_MODEL");
    for req in &reqs {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {TEST_KEY}").as_str())
        );
    }
    let (_, block) = listing_block(&reqs[1].message("user"));
    assert!(block.contains(&datamark(CAPTION_A)), "{block}");
}

// Settings ------------------------------------------------------------------

#[tokio::test]
async fn the_stage_is_off_by_default_and_empty_without_images() {
    let dir = tempdir();
    let images = ImageServer::start().await;
    images.bytes("/a.png", "image/png", png("off-a"));
    let sources = vec![images.url("/a.png")];
    let profile = write_json(
        dir.path(),
        "p.json",
        &profile_with_images("cap-off", TEXT, &sources),
    );
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &open_fetch(fixed_env(dir.path(), &profile)),
        &[],
    )
    .await;
    let r = assert_ok(&out, "accept", "fixed");
    assert!(
        r.get("captions").is_none(),
        "captions is absent when the stage is off\n{}",
        out.ctx()
    );
    assert_eq!(images.all_hits(), Vec::<String>::new());

    let vision = FakeOpenAi::start(vec![]).await;
    for (name, value) in [
        ("none.json", simple_profile("cap-none", TEXT)),
        ("empty.json", profile_with_images("cap-empty", TEXT, &[])),
    ] {
        let profile = write_json(dir.path(), name, &value);
        let envs = with_captions(fixed_env(dir.path(), &profile), &vision);
        let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
        let r = assert_ok(&out, "accept", "fixed");
        assert_eq!(r["captions"], json!([]), "{name}\n{}", out.ctx());
    }
    assert_eq!(vision.requests().len(), 0);
}

#[tokio::test]
async fn caption_settings_are_checked_at_start_up() {
    let dir = tempdir();
    let listing = listing_dir(dir.path());
    write_bytes(&listing.join("photos"), "a.png", &png("settings-a"));
    let sources = vec!["photos/a.png".to_string()];
    let profile = write_json(
        &listing,
        "profile.json",
        &profile_with_images("cap-settings", TEXT, &sources),
    );
    let vision = FakeOpenAi::start(vec![completion(CAPTION_A)]).await;

    // No CAPTION_MODEL and no openai judge to borrow it from: a usage error.
    let envs = with_captions(fixed_env(dir.path(), &profile), &vision).remove("CAPTION_MODEL");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(out.result.is_none(), "no result on a usage error");

    for bad in [("CAPTION_CONCURRENCY", "0"), ("CAPTION_CONCURRENCY", "65")] {
        let envs = with_captions(fixed_env(dir.path(), &profile), &vision).set(bad.0, bad.1);
        let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
        out.assert_no_panic().assert_code(2);
        assert!(out.result.is_none(), "{bad:?}: no result on a usage error");
    }
    assert_eq!(vision.requests().len(), 0);

    // The flag works like the variable.
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &envs,
        &["--caption-model", "vision-flag"],
    )
    .await;
    assert_ok(&out, "accept", "fixed");
    let vreqs = vision.requests();
    assert_eq!(vreqs.len(), 1, "{}", out.ctx());
    assert_eq!(vreqs[0].json()["model"], "vision-flag");
}
