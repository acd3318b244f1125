//! The `command` backend: a program gets the prompt as JSON on stdin and
//! prints a verdict.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = write_bytes(dir, name, format!("#!/bin/sh\n{body}\n").as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn command_env(dir: &Path, profile: &Path, command: &str) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "command")
        .set("ASSESSOR_COMMAND", command)
        .set("COMMAND_TIMEOUT", "10s")
}

/// Quotes a path for shell-words.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[tokio::test]
async fn command_decides() {
    let dir = tempdir();
    let value = simple_profile("cmd1", "Two bedroom flat with a garden.");
    let profile = write_json(dir.path(), "p.json", &value);
    let script = write_script(
        dir.path(),
        "judge.sh",
        r#"here=$(dirname "$0")
cat > "$here/stdin.json"
for a in "$@"; do printf '%s\n' "$a"; done > "$here/args.txt"
echo '{"verdict":"reject","reasons":["by script"]}'"#,
    );
    let command = format!("{} --mode 'two words'", quoted(&script));
    let envs = command_env(dir.path(), &profile, &command)
        .set("ASSESSOR_CRITERIA", "Bristol, two bedrooms");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let r = assert_ok(&out, "reject", "command");
    assert_eq!(r["reasons"], json!(["by script"]));
    assert_eq!(r["backend"]["kind"], "command");
    assert_eq!(r["id"], "cmd1");

    let args = std::fs::read_to_string(dir.path().join("args.txt")).unwrap();
    assert_eq!(
        args, "--mode\ntwo words\n",
        "ASSESSOR_COMMAND is shell-words split"
    );

    let stdin: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stdin.json")).unwrap())
            .expect("the command gets JSON on stdin");
    assert_eq!(stdin["profile"], value, "stdin.profile");
    assert_eq!(stdin["criteria"], "Bristol, two bedrooms", "stdin.criteria");
    assert!(
        stdin["system"].as_str().is_some_and(|s| !s.is_empty()),
        "stdin.system: {stdin}"
    );
    let user = stdin["user"].as_str().unwrap_or_default();
    assert!(
        user.contains(&datamark("Two bedroom flat with a garden.")),
        "stdin.user holds the datamarked listing: {user}"
    );
}

#[tokio::test]
async fn command_accept_with_score() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cmd2", "A flat."));
    let script = write_script(
        dir.path(),
        "judge.sh",
        r#"cat >/dev/null
echo '{"verdict":"accept","score":0.75,"reasons":["fine"]}'"#,
    );
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &command_env(dir.path(), &profile, &quoted(&script)),
        &[],
    )
    .await;
    let r = assert_ok(&out, "accept", "command");
    assert_eq!(r["score"].as_f64(), Some(0.75));
}

#[tokio::test]
async fn command_failure_is_command_failed() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cmd3", "A flat."));
    let script = write_script(
        dir.path(),
        "judge.sh",
        "cat >/dev/null\necho 'model not loaded' >&2\nexit 1",
    );
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &command_env(dir.path(), &profile, &quoted(&script)),
        &[],
    )
    .await;
    out.assert_no_panic().assert_code(4);
    out.assert_error_result("command_failed");
}

#[tokio::test]
async fn missing_command_program_is_command_failed() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cmd4", "A flat."));
    let missing = dir.path().join("no-such-program");
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &command_env(dir.path(), &profile, &quoted(&missing)),
        &[],
    )
    .await;
    out.assert_no_panic().assert_code(4);
    out.assert_error_result("command_failed");
}

#[tokio::test]
async fn slow_command_times_out() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cmd5", "A flat."));
    let script = write_script(
        dir.path(),
        "judge.sh",
        "cat >/dev/null\nsleep 5\necho '{\"verdict\":\"accept\"}'",
    );
    let envs = command_env(dir.path(), &profile, &quoted(&script)).set("COMMAND_TIMEOUT", "500ms");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(4);
    out.assert_error_result("timeout");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "COMMAND_TIMEOUT=500ms ignored: {:?}",
        out.elapsed
    );
}

#[tokio::test]
async fn command_garbage_output_is_an_error() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("cmd6", "A flat."));
    let script = write_script(
        dir.path(),
        "judge.sh",
        "cat >/dev/null\necho 'sure, looks fine'",
    );
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &command_env(dir.path(), &profile, &quoted(&script)),
        &[],
    )
    .await;
    out.assert_no_panic().assert_code(4);
    let r = out.result();
    assert_eq!(r["status"], "error", "{}", out.ctx());
    let kind = r["error"]["kind"].as_str().unwrap_or_default();
    assert!(
        ["command_failed", "reply_invalid"].contains(&kind),
        "kind {kind:?}\n{}",
        out.ctx()
    );
    assert_schema_valid(r);
}
