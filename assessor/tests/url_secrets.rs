//! A key in a base URL's query (`LLM_BASE_URL=http://host/v1?api-key=…`,
//! as some gateways take it) against the real binary and the kit's fake
//! server: the request goes to `/v1/chat/completions?api-key=…` (the path
//! joined before the query, not after it), and the key appears in no
//! output: not on stdout, not on stderr, not in the result file, whether
//! the server answers, fails or cannot be reached. Displayed URLs show the
//! query's keys with their values hidden (`?api-key=***`).

use std::path::Path;

use serde_json::json;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

const SECRET: &str = "sk-QUERY-SECRET-4242";

/// Asserts `secret` appears nowhere the operator or a result reader sees.
fn assert_secret_absent(out: &AssessorOutput, secret: &str) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into {what}\n{}",
            out.ctx()
        );
    }
    if let Some(bytes) = out.result_path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{secret:?} leaked into the result\n{}",
            out.ctx()
        );
    }
}

fn profile(dir: &Path) -> std::path::PathBuf {
    write_json(
        dir,
        "profile.json",
        &simple_profile("q1", "a flat with a garden"),
    )
}

#[tokio::test]
async fn the_query_stays_after_the_path_and_the_key_in_it_is_never_shown() {
    let dir = tempdir();
    let server = FakeOpenAi::start(Vec::new()).await;
    let envs = llm_env(&server, dir.path(), &profile(dir.path())).set(
        "LLM_BASE_URL",
        format!("{}?api-key={SECRET}", server.base_url()),
    );
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "llm");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", out.ctx());
    assert_eq!(requests[0].path, "/v1/chat/completions", "{}", out.ctx());
    assert_eq!(
        requests[0].query.as_deref(),
        Some(format!("api-key={SECRET}").as_str()),
        "the base URL's query goes with every request"
    );
    assert_secret_absent(&out, SECRET);
}

#[tokio::test]
async fn a_failing_server_is_named_with_the_query_value_hidden() {
    let dir = tempdir();
    let server = FakeOpenAi::answering(|_| {
        error_reply(
            500,
            &openai_error("the model is overloaded", "server_error"),
        )
    })
    .await;
    let envs = llm_env(&server, dir.path(), &profile(dir.path()))
        .set(
            "LLM_BASE_URL",
            format!("{}?api-key={SECRET}&region=eu", server.base_url()),
        )
        .set("LLM_MAX_ATTEMPTS", "2");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(4);
    let r = out.assert_error_result("backend_unavailable");
    let message = r["error"]["message"].as_str().unwrap();
    let shown = format!(
        "{}/chat/completions?api-key=***&region=***",
        server.base_url()
    );
    assert!(
        message.contains(&shown),
        "error.message must name {shown}\n{}",
        out.ctx()
    );
    assert!(out.stderr_mentions(&shown), "{}", out.ctx());
    for request in server.requests() {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.query.as_deref(),
            Some(format!("api-key={SECRET}&region=eu").as_str())
        );
    }
    assert_secret_absent(&out, SECRET);
}

#[tokio::test]
async fn an_unreachable_server_does_not_leak_the_key_either() {
    let dir = tempdir();
    let port = unbound_port();
    let envs = Envs::new()
        .set("PROFILE_PATH", profile(dir.path()).to_str().unwrap())
        .set("RESULT_PATH", "result.json")
        .set("LLM_BACKEND", "openai")
        .set("LLM_MODEL", "test-model")
        .set(
            "LLM_BASE_URL",
            format!("http://127.0.0.1:{port}/v1?api-key={SECRET}"),
        )
        .set("LLM_MAX_ATTEMPTS", "1");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(4);
    let r = out.assert_error_result("backend_unavailable");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}/v1/chat/completions?api-key=***")),
        "{}",
        out.ctx()
    );
    assert_secret_absent(&out, SECRET);
}

#[tokio::test]
async fn an_invalid_base_url_is_refused_without_showing_its_query() {
    let dir = tempdir();
    let envs = Envs::new()
        .set("PROFILE_PATH", profile(dir.path()).to_str().unwrap())
        .set("RESULT_PATH", "result.json")
        .set("LLM_BACKEND", "openai")
        .set("LLM_MODEL", "test-model")
        .set("LLM_BASE_URL", format!("ftp://gateway/v1?api-key={SECRET}"));
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("ftp://gateway/v1?api-key=***"),
        "{}",
        out.ctx()
    );
    assert_secret_absent(&out, SECRET);
}

/// The smallest bytes the captions stage takes for a PNG (it sniffs the
/// signature and the header chunk's name).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

#[tokio::test]
async fn the_vision_server_s_query_is_kept_and_hidden_too() {
    const VISION_SECRET: &str = "vision-QUERY-SECRET-77";
    let dir = tempdir();
    write_bytes(dir.path(), "front.png", PNG);
    let mut listing = simple_profile("q2", "a flat with a garden");
    listing["images"] = json!(["front.png"]);
    let profile = write_json(dir.path(), "profile.json", &listing);
    let judge = FakeOpenAi::start(Vec::new()).await;
    let vision =
        FakeOpenAi::answering(|_| error_reply(400, &openai_error("bad image", "invalid_request")))
            .await;
    let envs = llm_env(&judge, dir.path(), &profile)
        .set("CAPTION_BACKEND", "openai")
        .set(
            "CAPTION_BASE_URL",
            format!("{}?key={VISION_SECRET}", vision.base_url()),
        )
        .set("CAPTION_MODEL", "vision-test");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "llm");
    let requests = vision.requests();
    assert!(!requests.is_empty(), "{}", out.ctx());
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].query.as_deref(),
        Some(format!("key={VISION_SECRET}").as_str())
    );
    let record = &r["captions"][0];
    let shown = format!("{}/chat/completions?key=***", vision.base_url());
    assert!(
        record["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&shown)),
        "the caption error must name {shown}: {record}\n{}",
        out.ctx()
    );
    assert_secret_absent(&out, VISION_SECRET);
}
