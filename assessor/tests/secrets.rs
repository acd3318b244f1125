//! The API key reaches the server as a Bearer token and nowhere else: not
//! stdout, not stderr (even at RUST_LOG=trace), not the result.

use serde_json::json;
use testkit::assessor::Output;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

const SECRET: &str = "sk-test-SECRET-123";
/// A distinctive part of the key: a partial leak counts too.
const SECRET_PART: &str = "SECRET-123";

fn assert_no_leak(out: &Output) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains(SECRET_PART),
            "the API key leaked into {what}\n{}",
            out.ctx()
        );
    }
    if let Some(path) = &out.result_path {
        if let Ok(bytes) = std::fs::read(path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET_PART),
                "the API key leaked into the result\n{}",
                out.ctx()
            );
        }
    }
}

async fn run_with_key(
    script: Vec<Reply>,
    key_env: impl FnOnce(Envs, &std::path::Path) -> Envs,
) -> (FakeOpenAi, Output) {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("sec", "A flat."));
    let server = FakeOpenAi::start(script).await;
    let envs = llm_env(&server, dir.path(), &profile)
        .remove("LLM_API_KEY")
        .set("RUST_LOG", "trace");
    let envs = key_env(envs, dir.path());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    (server, out)
}

fn assert_bearer(server: &FakeOpenAi) {
    let reqs = server.requests();
    assert!(!reqs.is_empty(), "no request reached the server");
    for req in reqs {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str()),
            "the server must see the key"
        );
    }
}

#[tokio::test]
async fn key_from_env_is_sent_and_never_printed() {
    let (server, out) = run_with_key(vec![], |e, _| e.set("LLM_API_KEY", SECRET)).await;
    assert_ok(&out, "accept", "llm");
    assert_bearer(&server);
    assert_no_leak(&out);
}

#[tokio::test]
async fn key_from_file_is_sent_and_never_printed() {
    let (server, out) = run_with_key(vec![], |e, dir| {
        let file = write_bytes(dir, "api-key", format!("{SECRET}\n").as_bytes());
        e.set("LLM_API_KEY_FILE", file.to_str().unwrap())
    })
    .await;
    assert_ok(&out, "accept", "llm");
    assert_bearer(&server);
    assert_no_leak(&out);
}

#[tokio::test]
async fn openai_api_key_is_the_fallback() {
    let (server, out) = run_with_key(vec![], |e, _| e.set("OPENAI_API_KEY", SECRET)).await;
    assert_ok(&out, "accept", "llm");
    assert_bearer(&server);
    assert_no_leak(&out);
}

#[tokio::test]
async fn llm_api_key_wins_over_openai_api_key() {
    let (server, out) = run_with_key(vec![], |e, _| {
        e.set("LLM_API_KEY", SECRET)
            .set("OPENAI_API_KEY", "sk-other-key")
    })
    .await;
    assert_ok(&out, "accept", "llm");
    assert_bearer(&server);
}

#[tokio::test]
async fn key_not_leaked_on_401() {
    let (server, out) = run_with_key(
        vec![error_reply(
            401,
            &json!({"error": {
                "message": "Incorrect API key provided: sk-test-****-123. You can find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
            .to_string(),
        )],
        |e, _| e.set("LLM_API_KEY", SECRET),
    )
    .await;
    // Issue 13: a refused key is a configuration error (exit 2).
    out.assert_no_panic().assert_code(2);
    out.assert_error_result("backend_unauthorized");
    assert_bearer(&server);
    assert_no_leak(&out);
}

#[tokio::test]
async fn key_not_leaked_on_retries_and_timeouts() {
    let (server, out) = run_with_key(
        vec![
            error_reply(500, "upstream error"),
            hang(),
            error_reply(429, "slow down"),
        ],
        |e, _| {
            e.set("LLM_API_KEY", SECRET)
                .set("LLM_TIMEOUT", "300ms")
                .set("LLM_MAX_ATTEMPTS", "3")
        },
    )
    .await;
    out.assert_no_panic().assert_code(4);
    assert_bearer(&server);
    assert_no_leak(&out);
}

#[tokio::test]
async fn key_not_leaked_by_help() {
    let dir = tempdir();
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &[("LLM_API_KEY", SECRET), ("OPENAI_API_KEY", SECRET)],
        &["--help"],
    )
    .await;
    out.assert_no_panic().assert_code(0);
    assert_no_leak(&out);
}

#[tokio::test]
async fn key_not_leaked_by_a_config_error() {
    let dir = tempdir();
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &[
            ("PROFILE_PATH", "p.json"),
            ("LLM_API_KEY", SECRET),
            ("LLM_TIMEOUT", "30"),
            ("RUST_LOG", "trace"),
        ],
        &[],
    )
    .await;
    out.assert_no_panic().assert_code(2);
    assert_no_leak(&out);
}
