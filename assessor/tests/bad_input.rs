//! Bad profiles (exit 3, an error result naming the file and field) and bad
//! settings (exit 2, no result), never a panic.

use std::path::Path;

use serde_json::json;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// Runs the fixed backend on `profile` and checks an exit-3 error result
/// whose message names the profile path and contains `expected`.
async fn assert_profile_error(dir: &Path, profile: &Path, kind: &str, expected: &str) {
    let out = run_assessor(ASSESSOR, dir, &fixed_env(dir, profile), &[]).await;
    out.assert_no_panic().assert_code(3);
    let r = out.assert_error_result(kind);
    let msg = r["error"]["message"].as_str().unwrap();
    let path = profile.to_str().unwrap();
    assert!(msg.contains(path), "error.message must name {path}: {msg}");
    assert!(
        msg.to_lowercase().contains(&expected.to_lowercase()),
        "error.message must contain {expected:?}: {msg}"
    );
    assert!(
        out.stderr_mentions(expected)
            || out.stderr.to_lowercase().contains(&expected.to_lowercase()),
        "stderr must report {expected:?}\n{}",
        out.ctx()
    );
    assert_eq!(r["schema"], "shortlist.result/v1");
    assert_eq!(r["assessor"]["name"], "assessor");
}

async fn bad_profile_bytes(bytes: &[u8], expected: &str) {
    let dir = tempdir();
    let profile = write_bytes(dir.path(), "profile.json", bytes);
    assert_profile_error(dir.path(), &profile, "profile_invalid", expected).await;
}

#[tokio::test]
async fn not_json() {
    bad_profile_bytes(b"{\"text\": ", "not valid JSON").await;
}

#[tokio::test]
async fn empty_file() {
    bad_profile_bytes(b"", "empty").await;
}

#[tokio::test]
async fn whitespace_only_file() {
    bad_profile_bytes(b"  \n\t\n", "empty").await;
}

#[tokio::test]
async fn json_array() {
    bad_profile_bytes(b"[]", "found array").await;
}

#[tokio::test]
async fn text_is_a_number() {
    bad_profile_bytes(br#"{"text": 5}"#, "field \"text\" must be a string").await;
}

#[tokio::test]
async fn text_missing() {
    bad_profile_bytes(b"{}", "field \"text\" is required").await;
}

#[tokio::test]
async fn text_empty() {
    bad_profile_bytes(br#"{"text":""}"#, "field \"text\" must not be empty").await;
}

#[tokio::test]
async fn images_not_an_array() {
    bad_profile_bytes(
        br#"{"text":"a flat","images":"front.jpg"}"#,
        "field \"images\" must be an array",
    )
    .await;
}

#[tokio::test]
async fn image_not_a_string() {
    bad_profile_bytes(br#"{"text":"a flat","images":[1]}"#, "field \"images[0]\"").await;
}

#[tokio::test]
async fn binary_garbage() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let dir = tempdir();
    let profile = write_bytes(dir.path(), "profile.json", &garbage);
    assert_profile_error(dir.path(), &profile, "profile_invalid", "").await;
}

#[tokio::test]
async fn directory_as_profile() {
    let dir = tempdir();
    let sub = dir.path().join("profile.d");
    std::fs::create_dir(&sub).unwrap();
    // A directory is a batch; without RESULT_DIR that is a start-up error.
    let out = run_assessor(ASSESSOR, dir.path(), &fixed_env(dir.path(), &sub), &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr_mentions("RESULT_DIR is required in batch mode"),
        "{}",
        out.ctx()
    );
    // Asked for one profile explicitly, a directory is an unreadable profile.
    let env = fixed_env(dir.path(), &sub).set("ASSESSOR_MODE", "assess");
    let out = run_assessor(ASSESSOR, dir.path(), &env, &[]).await;
    out.assert_no_panic().assert_code(3);
    let r = out.assert_error_result("profile_unreadable");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a directory"),
        "{r}"
    );
}

#[tokio::test]
async fn missing_profile() {
    let dir = tempdir();
    let missing = dir.path().join("nope.json");
    assert_profile_error(dir.path(), &missing, "profile_unreadable", "no such file").await;
}

#[tokio::test]
async fn five_mib_text_is_assessed() {
    let dir = tempdir();
    let word = "spacious ";
    let text: String = word.repeat(5 * 1024 * 1024 / word.len() + 1);
    let value = json!({"text": text.trim_end(), "metadata": {"id": "big"}});
    let profile = write_json(dir.path(), "big.json", &value);
    assert!(std::fs::metadata(&profile).unwrap().len() >= 5 * 1024 * 1024);
    let out = run_assessor(ASSESSOR, dir.path(), &fixed_env(dir.path(), &profile), &[]).await;
    let r = assert_ok(&out, "accept", "fixed");
    assert_eq!(r["id"], "big");
    assert_eq!(
        r["profile"]["text"].as_str().map(str::len),
        Some(text.trim_end().len())
    );
}

// Settings --------------------------------------------------------------------

/// Runs with a valid profile and `envs` added; expects exit 2, no result
/// file, and stderr naming one of `names`. Also checks no HTTP was made.
async fn assert_config_error(envs: impl FnOnce(Envs, &FakeOpenAi, &Path) -> Envs, names: &[&str]) {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("c1", "A flat."));
    let server = FakeOpenAi::start(vec![]).await;
    let envs = envs(llm_env(&server, dir.path(), &profile), &server, dir.path());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.result.is_none(),
        "no result may be written on a usage error\n{}",
        out.ctx()
    );
    assert!(
        out.stdout.trim().is_empty(),
        "nothing on stdout on a usage error\n{}",
        out.ctx()
    );
    assert!(
        names.iter().any(|n| out.stderr_mentions(n)),
        "stderr must name one of {names:?}\n{}",
        out.ctx()
    );
    assert_eq!(server.requests().len(), 0, "no HTTP on a usage error");
}

#[tokio::test]
async fn bare_number_timeout() {
    assert_config_error(|e, _, _| e.set("LLM_TIMEOUT", "30"), &["LLM_TIMEOUT"]).await;
}

#[tokio::test]
async fn bare_number_deadline() {
    assert_config_error(|e, _, _| e.set("LLM_DEADLINE", "300"), &["LLM_DEADLINE"]).await;
}

#[tokio::test]
async fn unknown_backend() {
    assert_config_error(
        |e, _, _| e.set("LLM_BACKEND", "bogus"),
        &["LLM_BACKEND", "--llm-backend"],
    )
    .await;
}

#[tokio::test]
async fn missing_model() {
    assert_config_error(|e, _, _| e.remove("LLM_MODEL"), &["LLM_MODEL"]).await;
}

#[tokio::test]
async fn missing_profile_path() {
    assert_config_error(|e, _, _| e.remove("PROFILE_PATH"), &["PROFILE_PATH"]).await;
}

#[tokio::test]
async fn bad_rules_json() {
    assert_config_error(
        |e, _, _| e.set("ASSESSOR_RULES", r#"{"price":{"max":"#),
        &["ASSESSOR_RULES", "--assessor-rules"],
    )
    .await;
}

#[tokio::test]
async fn config_file_with_unknown_key() {
    assert_config_error(
        |e, _, dir| {
            let config = write_json(dir, "config.json", &json!({"LLM_MODLE": "typo"}));
            e.set("CONFIG_PATH", config.to_str().unwrap())
        },
        &["LLM_MODLE"],
    )
    .await;
}

#[tokio::test]
async fn config_file_missing() {
    assert_config_error(
        |e, _, dir| e.set("CONFIG_PATH", dir.join("absent.json").to_str().unwrap()),
        &["absent.json"],
    )
    .await;
}

#[tokio::test]
async fn config_file_not_json() {
    assert_config_error(
        |e, _, dir| {
            let config = write_bytes(dir, "config.json", b"LLM_MODEL=x\n");
            e.set("CONFIG_PATH", config.to_str().unwrap())
        },
        &["config.json"],
    )
    .await;
}

#[tokio::test]
async fn zero_max_attempts() {
    assert_config_error(
        |e, _, _| e.set("LLM_MAX_ATTEMPTS", "0"),
        &["LLM_MAX_ATTEMPTS", "--llm-max-attempts"],
    )
    .await;
}

#[tokio::test]
async fn invalid_positive_regex() {
    assert_config_error(
        |e, _, _| e.set("LLM_POSITIVE_RESPONSE_REGEX", "(unclosed"),
        &[
            "LLM_POSITIVE_RESPONSE_REGEX",
            "--llm-positive-response-regex",
        ],
    )
    .await;
}

#[tokio::test]
async fn command_backend_without_command() {
    assert_config_error(
        |e, _, _| e.set("LLM_BACKEND", "command"),
        &["ASSESSOR_COMMAND"],
    )
    .await;
}

#[tokio::test]
async fn unknown_flag() {
    let dir = tempdir();
    let out = run_assessor::<&str, &str>(ASSESSOR, dir.path(), &[], &["--no-such-flag"]).await;
    out.assert_no_panic().assert_code(2);
}
