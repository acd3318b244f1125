//! Permanent refusals of the configuration, against the real binary and
//! the kit's fake OpenAI server: 401/403 (the API key) and 404 (the model
//! or the base URL) from the judge or the vision server exit 2 (a Job's
//! `FailJob`) with an error kind that says which, after one request: no
//! retry, in the assessor or by the Job. A base URL without `/v1` that
//! answers 404 gets a hint.

use std::path::Path;

use serde_json::json;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// A valid 1x1 RGBA PNG.
const PNG_1X1: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// One run against `server` with four attempts allowed.
async fn run(server: &FakeOpenAi, dir: &Path, edit: impl FnOnce(Envs) -> Envs) -> AssessorOutput {
    let profile = write_json(dir, "p.json", &simple_profile("ref1", "A flat."));
    let envs = edit(llm_env(server, dir, &profile).set("LLM_MAX_ATTEMPTS", "4"));
    run_assessor(ASSESSOR, dir, &envs, &[]).await
}

#[tokio::test]
async fn a_refused_key_exits_2_after_one_request() {
    for status in [401, 403] {
        let dir = tempdir();
        let server = FakeOpenAi::answering(move |_| {
            error_reply(
                status,
                &openai_error("Incorrect API key provided.", "invalid_request_error"),
            )
        })
        .await;
        let out = run(&server, dir.path(), |e| e).await;
        out.assert_no_panic().assert_code(2);
        let r = out.assert_error_result("backend_unauthorized");
        assert_eq!(server.count(), 1, "HTTP {status}: retried\n{}", out.ctx());
        assert_eq!(r["attempts"], 1);
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("LLM_API_KEY") && message.contains(&format!("HTTP {status}")),
            "{message}"
        );
        assert!(!out.stderr_mentions(TEST_KEY) && !out.stdout.contains(TEST_KEY));
    }
}

#[tokio::test]
async fn an_unknown_model_exits_2_without_a_hint() {
    let dir = tempdir();
    let server = FakeOpenAi::answering(|_| {
        error_reply(
            404,
            &openai_error(
                "The model `test-model` does not exist",
                "invalid_request_error",
            ),
        )
    })
    .await;
    let out = run(&server, dir.path(), |e| e).await;
    out.assert_no_panic().assert_code(2);
    let r = out.assert_error_result("backend_not_found");
    assert_eq!(server.count(), 1, "{}", out.ctx());
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("LLM_MODEL") && message.contains("does not exist"),
        "{message}"
    );
    assert!(!message.contains("did you mean"), "{message}");
}

#[tokio::test]
async fn a_base_url_without_v1_answering_404_gets_a_hint() {
    let dir = tempdir();
    // Like Ollama: only /v1/chat/completions exists.
    let server = FakeOpenAi::answering(|request| {
        if request.path == "/v1/chat/completions" {
            verdict("accept", 0.9, "fine")
        } else {
            error_reply(404, "404 page not found")
        }
    })
    .await;
    let base = server.base_url();
    let without_v1 = base.strip_suffix("/v1").unwrap().to_string();
    let out = run(&server, dir.path(), |e| e.set("LLM_BASE_URL", &without_v1)).await;
    out.assert_no_panic().assert_code(2);
    let r = out.assert_error_result("backend_not_found");
    assert_eq!(server.count(), 1, "{}", out.ctx());
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("did you mean LLM_BASE_URL={base}?")),
        "{message}"
    );
}

#[tokio::test]
async fn a_vision_server_refusing_the_key_exits_2_and_the_judge_is_not_asked() {
    let dir = tempdir();
    write_bytes(dir.path(), "a.png", &PNG_1X1);
    write_bytes(dir.path(), "b.png", &PNG_1X1);
    let profile = write_json(
        dir.path(),
        "p.json",
        &json!({"text": "A flat.", "images": ["a.png", "b.png"], "metadata": {"id": "cap1"}}),
    );
    let vision = FakeOpenAi::answering(|_| {
        error_reply(401, &openai_error("invalid key", "invalid_request_error"))
    })
    .await;
    let judge = FakeOpenAi::start(vec![]).await;
    let envs = llm_env(&judge, dir.path(), &profile)
        .set("CAPTION_BACKEND", "openai")
        .set("CAPTION_BASE_URL", vision.base_url())
        .set("CAPTION_MODEL", "vision-test")
        .set("CAPTION_API_KEY", "sk-vision-key")
        .set("LLM_MAX_ATTEMPTS", "4");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    let r = out.assert_error_result("backend_unauthorized");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CAPTION_API_KEY"),
        "{}",
        out.ctx()
    );
    assert_eq!(
        vision.count(),
        2,
        "one request per image, no retries\n{}",
        out.ctx()
    );
    assert_eq!(judge.count(), 0, "the judge was asked\n{}", out.ctx());
    for caption in r["captions"].as_array().unwrap() {
        assert_eq!(
            caption["error"]["kind"], "backend_unauthorized",
            "{caption}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_at_the_first_refusal_and_exits_2() {
    const TOTAL: usize = 40;
    let dir = tempdir();
    let lines: Vec<String> = (0..TOTAL)
        .map(|i| simple_profile(&format!("r{i:02}"), "A flat.").to_string())
        .collect();
    let input = write_bytes(dir.path(), "in.jsonl", lines.join("\n").as_bytes());
    let results = dir.path().join("results");
    let server = FakeOpenAi::answering(|_| {
        error_reply(401, &openai_error("invalid key", "invalid_request_error"))
    })
    .await;
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("LLM_BACKEND", "openai")
        .set("LLM_BASE_URL", server.base_url())
        .set("LLM_MODEL", "test-model")
        .set("LLM_API_KEY", TEST_KEY)
        .set("ASSESSOR_JOBS", "2");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        server.count() < TOTAL / 2,
        "{} requests: the batch went on after a refused key\n{}",
        server.count(),
        out.ctx()
    );
    assert!(
        out.stderr
            .contains("stopped: the server refused the configuration (backend_unauthorized)"),
        "{}",
        out.ctx()
    );
}
