//! Settings, output destinations, the fixed backend and the config file.

use serde_json::{Value, json};
use testkit::assessor::Output;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// Every setting the spec names; `--help` must list each.
const ALL_VARS: &[&str] = &[
    "PROFILE_PATH",
    "RESULT_PATH",
    "CONFIG_PATH",
    "CACHE_DIR",
    "LLM_BACKEND",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
    "LLM_API_KEY_FILE",
    "OPENAI_API_KEY",
    "ASSESSOR_CRITERIA",
    "ASSESSOR_RULES",
    "LLM_SYSTEM_PROMPT",
    "LLM_POSITIVE_RESPONSE_REGEX",
    "LLM_TIMEOUT",
    "LLM_MAX_ATTEMPTS",
    "LLM_DEADLINE",
    "LLM_RETRY_BASE_DELAY",
    "FIXED_VERDICT",
    "ASSESSOR_COMMAND",
    "COMMAND_TIMEOUT",
    "LOG_FORMAT",
];

#[tokio::test]
async fn help_lists_every_env_var() {
    let dir = tempdir();
    let out = run_assessor::<&str, &str>(ASSESSOR, dir.path(), &[], &["--help"]).await;
    out.assert_no_panic().assert_code(0);
    let missing: Vec<&&str> = ALL_VARS
        .iter()
        .filter(|v| !out.stdout.contains(**v))
        .collect();
    assert!(
        missing.is_empty(),
        "--help does not mention {missing:?}\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn fixed_backend_accepts_by_default() {
    let dir = tempdir();
    let value = simple_profile("fx1", "A flat.");
    let profile = write_json(dir.path(), "p.json", &value);
    let out = run_assessor(ASSESSOR, dir.path(), &fixed_env(dir.path(), &profile), &[]).await;
    let r = assert_ok(&out, "accept", "fixed");
    assert_eq!(r["id"], "fx1");
    assert_eq!(r["backend"]["kind"], "fixed");
    assert_eq!(r["profile"], value);
    assert_eq!(r["attempts"], 0, "no backend request was made: {r}");
    assert!(r["usage"].is_null(), "no usage without an LLM: {r}");
}

#[tokio::test]
async fn fixed_backend_rejects_when_told() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("fx2", "A flat."));
    let envs = fixed_env(dir.path(), &profile).set("FIXED_VERDICT", "reject");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "reject", "fixed");
}

// 11 ------------------------------------------------------------------------

fn assert_stderr_is_json_lines(out: &Output) {
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Result<Value, _> = serde_json::from_str(line);
        assert!(
            v.is_ok_and(|v| v.is_object()),
            "LOG_FORMAT=json but a stderr line is not a JSON object: {line:?}\n{}",
            out.ctx()
        );
    }
}

async fn result_on_stdout(result_path: Option<&str>) {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("so1", "A flat."));
    let mut envs = fixed_env(dir.path(), &profile)
        .remove("RESULT_PATH")
        .set("RUST_LOG", "debug");
    if let Some(p) = result_path {
        envs = envs.set("RESULT_PATH", p);
    }
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(0);
    let r = out.stdout_json();
    assert_complete_result(&r);
    assert_eq!(r["id"], "so1");
    assert_eq!(r["verdict"], "accept");
    assert!(
        !out.stderr.trim().is_empty(),
        "RUST_LOG=debug: logs expected on stderr\n{}",
        out.ctx()
    );
    assert_stderr_is_json_lines(&out);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        ["p.json"],
        "no file written when the result goes to stdout"
    );
}

#[tokio::test]
async fn result_path_dash_prints_to_stdout() {
    result_on_stdout(Some("-")).await;
}

#[tokio::test]
async fn result_path_unset_prints_to_stdout() {
    result_on_stdout(None).await;
}

#[tokio::test]
async fn result_file_keeps_stdout_clean_of_logs() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("rf1", "A flat."));
    let envs = fixed_env(dir.path(), &profile).set("RUST_LOG", "debug");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "fixed");
    assert_stderr_is_json_lines(&out);
    // Only the result, nothing else, may ever go to stdout.
    assert!(
        out.stdout.trim().is_empty() || single_json_document(&out.stdout).is_ok(),
        "stdout must hold no logs\n{}",
        out.ctx()
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "temp files left behind: {names:?}"
    );
}

#[tokio::test]
async fn profile_from_stdin() {
    let dir = tempdir();
    let value = json!({"text": "Two bedroom flat read from stdin."});
    let envs = Envs::new()
        .set("PROFILE_PATH", "-")
        .set("RESULT_PATH", "result.json")
        .set("LLM_BACKEND", "fixed");
    let out = run_assessor_with_stdin(
        ASSESSOR,
        dir.path(),
        &envs,
        &[],
        Some(serde_json::to_vec(&value).unwrap()),
    )
    .await;
    let r = assert_ok(&out, "accept", "fixed");
    assert_eq!(r["profile"], value);
    assert_eq!(
        r["id"].as_str().unwrap(),
        shortlist_contract::profile::stable_id(&value),
        "hash id without metadata.id"
    );
    let id = regex::Regex::new(r"^sha256-[0-9a-f]{16}$").unwrap();
    assert!(
        id.is_match(r["id"].as_str().unwrap()),
        "id form: {}",
        r["id"]
    );
}

#[tokio::test]
async fn invalid_profile_on_stdin_names_stdin() {
    let dir = tempdir();
    let envs = Envs::new()
        .set("PROFILE_PATH", "-")
        .set("RESULT_PATH", "result.json")
        .set("LLM_BACKEND", "fixed");
    let out = run_assessor_with_stdin(
        ASSESSOR,
        dir.path(),
        &envs,
        &[],
        Some(b"{\"images\":[]}".to_vec()),
    )
    .await;
    out.assert_no_panic().assert_code(3);
    let r = out.assert_error_result("profile_invalid");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("<stdin>"), "message names the source: {msg}");
    assert!(
        msg.contains("field \"text\" is required"),
        "message names the field: {msg}"
    );
}

// 14 ------------------------------------------------------------------------

#[tokio::test]
async fn unwritable_result_exits_5_and_prints_the_result() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("nw1", "A flat."));
    let target = dir.path().join("no-such-dir").join("x.json");
    let envs = fixed_env(dir.path(), &profile).set("RESULT_PATH", target.to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(5);
    let r = out.stdout_json();
    assert_eq!(
        r["verdict"], "accept",
        "the result as a last resort on stdout"
    );
    assert_eq!(r["id"], "nw1");
    assert_schema_valid(&r);
    assert!(
        out.stderr_mentions(target.to_str().unwrap()),
        "stderr names the result path\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn unwritable_result_at_root_exits_5() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("nw2", "A flat."));
    let envs = fixed_env(dir.path(), &profile).set("RESULT_PATH", "/nonexistent-dir/x.json");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(5);
    assert_eq!(out.stdout_json()["id"], "nw2");
}

// 16 ------------------------------------------------------------------------

#[tokio::test]
async fn config_file_provides_settings() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cf1", "A flat."));
    let server = FakeOpenAi::start(vec![]).await;
    let config = write_json(
        dir.path(),
        "config.json",
        &json!({"LLM_BACKEND": "openai", "LLM_MODEL": "file-model", "LLM_BASE_URL": server.base_url(), "LLM_RETRY_BASE_DELAY": "50ms"}),
    );
    let envs = Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", "result.json")
        .set("CONFIG_PATH", config.to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "llm");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{}", out.ctx());
    assert_eq!(reqs[0].json()["model"], "file-model");
    assert_eq!(r["backend"]["model"], "file-model");

    // The environment overrides the file.
    let envs = envs.set("LLM_MODEL", "env-model");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "accept", "llm");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{}", out.ctx());
    assert_eq!(
        reqs[1].json()["model"],
        "env-model",
        "env overrides CONFIG_PATH"
    );
    assert_eq!(r["backend"]["model"], "env-model");
}

#[tokio::test]
async fn config_file_rules_as_an_object() {
    let dir = tempdir();
    let profile = write_json(
        dir.path(),
        "p.json",
        &json!({"text": "Mansion.", "metadata": {"id": "cf2", "price": "£2,950,000", "location": "Bristol"}}),
    );
    let server = FakeOpenAi::start(vec![]).await;
    let config = write_json(
        dir.path(),
        "config.json",
        &json!({"LLM_BACKEND": "openai", "LLM_MODEL": "m", "LLM_BASE_URL": server.base_url(),
                "ASSESSOR_RULES": {"price": {"max": 425000}}}),
    );
    let envs = Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", "result.json")
        .set("CONFIG_PATH", config.to_str().unwrap());
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "reject", "rules");
    assert!(
        r["reasons"].to_string().contains("rule price.max"),
        "reasons name the rule: {r}"
    );
    assert_eq!(server.requests().len(), 0, "rules decide without HTTP");
}

/// The log format follows stderr, where the logs go: with stdout piped
/// (`assessor … | jq`) a person at a terminal still gets plain lines, and a
/// pod (no terminal at all) gets JSON. `script` gives the run a real
/// terminal; stdout goes through a pipe into a file.
#[test]
fn logs_are_plain_when_stderr_is_a_terminal_even_with_stdout_piped() {
    let dir = tempdir();
    let stdout_file = dir.path().join("stdout.json");
    let profile = samples_dir().join("s01.json");
    let line = format!(
        "PROFILE_PATH='{}' RESULT_PATH=- LLM_BACKEND=fixed RUST_LOG=info '{ASSESSOR}' | cat > '{}'",
        profile.display(),
        stdout_file.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("LOG_FORMAT")
        .output()
        .expect("script (util-linux) runs the assessor on a terminal");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}");
    assert!(
        terminal.contains("INFO") && !terminal.contains("\"level\""),
        "plain log lines on the terminal:\n{terminal}"
    );
    let result: Value = serde_json::from_slice(&std::fs::read(&stdout_file).unwrap())
        .expect("the result, alone, on the piped stdout");
    assert_eq!(result["verdict"], "accept");
}
