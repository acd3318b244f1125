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

// Issue 16: the command line a person types --------------------------------

/// `assessor listing.json`: the profile as a word, like `rg PATTERN FILE`.
#[tokio::test]
async fn a_profile_word_is_the_profile() {
    let dir = tempdir();
    let profile = write_json(
        dir.path(),
        "listing.json",
        &simple_profile("pw1", "A flat."),
    );
    let envs = fixed_env(dir.path(), &profile).remove("PROFILE_PATH");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["listing.json"]).await;
    assert_eq!(assert_ok(&out, "accept", "fixed")["id"], "pw1");
    // The word beats PROFILE_PATH, as a flag does.
    let envs = envs.set("PROFILE_PATH", "missing.json");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["listing.json"]).await;
    assert_eq!(assert_ok(&out, "accept", "fixed")["id"], "pw1");
    // After a mode word, the next word is the profile.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["assess", "listing.json"]).await;
    assert_eq!(assert_ok(&out, "accept", "fixed")["id"], "pw1");
}

#[tokio::test]
async fn a_profile_word_runs_a_batch_of_a_directory() {
    let dir = tempdir();
    let listings = dir.path().join("listings");
    std::fs::create_dir(&listings).unwrap();
    write_json(&listings, "a.json", &simple_profile("a", "A flat."));
    std::fs::write(listings.join("b.md"), "# Cottage\n\nThree bedrooms.").unwrap();
    std::fs::write(listings.join("c.txt"), "A terrace with a garden.").unwrap();
    let envs = Envs::new()
        .set("LLM_BACKEND", "fixed")
        .set("RESULT_DIR", "out");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["listings"]).await;
    out.assert_no_panic().assert_code(0);
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}\n{}", out.ctx());
    assert!(names.contains(&"a.json".to_string()), "{names:?}");
    // `batch` as a word, then the directory, works the same.
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &envs,
        &["batch", "listings", "--force"],
    )
    .await;
    out.assert_no_panic().assert_code(0);
    // --text is for one profile: a batch reads text files by their names.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["--text", "listings"]).await;
    out.assert_no_panic().assert_code(2);
    assert!(out.stderr.contains("PROFILE_TEXT"), "{}", out.ctx());
}

#[tokio::test]
async fn a_mistyped_mode_is_named() {
    let dir = tempdir();
    let envs = Envs::new().set("LLM_BACKEND", "fixed");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["evl"]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("\"evl\" is neither a mode"),
        "{}",
        out.ctx()
    );
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["a.json", "b.json"]).await;
    out.assert_no_panic().assert_code(2);
    assert!(out.stderr.contains("two profiles given"), "{}", out.ctx());
}

#[tokio::test]
async fn booleans_take_flag_equals_and_env_forms() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("b1", "A flat."));
    let envs = fixed_env(dir.path(), &profile);
    for args in [
        &["--response-cache=false"][..],
        &["--response-cache"][..],
        &["--caption-allow-http=true", "--caption-required=no"][..],
        &["--command-pass-api-key", "--force=0"][..],
    ] {
        let out = run_assessor(ASSESSOR, dir.path(), &envs, args).await;
        assert_ok(&out, "accept", "fixed");
    }
    for (var, value) in [
        ("LLM_RESPONSE_CACHE", "no"),
        ("CAPTION_ALLOW_PRIVATE", "1"),
        ("COMMAND_PASS_API_KEY", "yes"),
        ("PROFILE_TEXT", "false"),
    ] {
        let out = run_assessor(ASSESSOR, dir.path(), &envs.clone().set(var, value), &[]).await;
        assert_ok(&out, "accept", "fixed");
    }
    // A bad value typed as a flag names the flag, not the variable.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["--response-cache=maybe"]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("--response-cache=\"maybe\" is invalid")
            && !out.stderr.contains("LLM_RESPONSE_CACHE"),
        "{}",
        out.ctx()
    );
    // From the environment, the variable.
    let bad_env = envs.clone().set("LLM_RESPONSE_CACHE", "maybe");
    let out = run_assessor(ASSESSOR, dir.path(), &bad_env, &[]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("LLM_RESPONSE_CACHE=\"maybe\""),
        "{}",
        out.ctx()
    );
    // `--flag false` says how to write it.
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["--response-cache", "false"]).await;
    out.assert_no_panic().assert_code(2);
    assert!(
        out.stderr.contains("--response-cache=false"),
        "{}",
        out.ctx()
    );
}

#[tokio::test]
async fn plain_text_and_markdown_listings_are_the_profiles_text() {
    let dir = tempdir();
    let envs = Envs::new()
        .set("LLM_BACKEND", "fixed")
        .set("RESULT_PATH", "result.json");
    for (name, text) in [
        ("listing.md", "# Two-bed flat\n\nA balcony, Bristol.\n"),
        ("listing.txt", "Two-bed flat with a garden.\n"),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let out = run_assessor(ASSESSOR, dir.path(), &envs, &[name]).await;
        let r = assert_ok(&out, "accept", "fixed");
        assert_eq!(r["profile"], json!({ "text": text }), "{}", out.ctx());
        assert!(r["id"].as_str().unwrap().starts_with("sha256-"), "{r}");
    }
    // Text on stdin with --text.
    let out = run_assessor_with_stdin(
        ASSESSOR,
        dir.path(),
        &envs,
        &["--text", "-"],
        Some(b"A cottage, three bedrooms.".to_vec()),
    )
    .await;
    let r = assert_ok(&out, "accept", "fixed");
    assert_eq!(r["profile"]["text"], "A cottage, three bedrooms.");
    // Blank text: the empty-text error, exit 3.
    std::fs::write(dir.path().join("blank.txt"), "  \n").unwrap();
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["blank.txt"]).await;
    out.assert_no_panic().assert_code(3);
    let r = out.assert_error_result("profile_invalid");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field \"text\" must not be empty"),
        "{r}"
    );
    // A .json that is not JSON is still a JSON error.
    std::fs::write(dir.path().join("listing.json"), "Two-bed flat").unwrap();
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &["listing.json"]).await;
    out.assert_no_panic().assert_code(3);
    let r = out.assert_error_result("profile_invalid");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not valid JSON"),
        "{r}"
    );
}

#[tokio::test]
async fn short_help_is_short_and_long_help_has_headings_examples_and_exit_codes() {
    let dir = tempdir();
    let short = run_assessor::<&str, &str>(ASSESSOR, dir.path(), &[], &["-h"]).await;
    short.assert_no_panic().assert_code(0);
    let lines = short.stdout.lines().count();
    assert!(lines < 60, "-h is {lines} lines\n{}", short.stdout);
    let long = run_assessor::<&str, &str>(ASSESSOR, dir.path(), &[], &["--help"]).await;
    long.assert_no_panic().assert_code(0);
    for needle in [
        "Input and output:",
        "Batch:",
        "Eval and shortlist:",
        "Rules and brief:",
        "Judge:",
        "Llama judge:",
        "Captions:",
        "Logging:",
        "Examples:",
        "assessor eval --labels",
        "Exit codes:",
    ] {
        assert!(long.stdout.contains(needle), "--help lacks {needle:?}");
    }
    let table = long.stdout.split("Exit codes:").nth(1).unwrap();
    for code in ["0", "2", "3", "4", "5", "6", "7", "130/143"] {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit code {code} missing from --help\n{table}"
        );
    }
}
