//! The command backend's program gets none of the assessor's keys unless
//! asked (`COMMAND_PASS_API_KEY=true`, which passes the judge's key, from
//! wherever it was read, as `LLM_API_KEY`). The real binary, a script that
//! dumps its environment.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

const LLM_KEY: &str = "sk-llm-secret-1111";
const OPENAI_KEY: &str = "sk-openai-secret-2222";
const CAPTION_KEY: &str = "sk-caption-secret-3333";
const FILE_KEY: &str = "sk-file-secret-4444";

/// Runs a judge that writes its environment to `env.txt`; returns it.
async fn child_env(dir: &Path, edit: impl FnOnce(Envs) -> Envs) -> String {
    let profile = write_json(dir, "p.json", &simple_profile("env1", "A flat."));
    let script = write_bytes(
        dir,
        "judge.sh",
        b"#!/bin/sh\ncat >/dev/null\nenv > \"$(dirname \"$0\")/env.txt\"\necho '{\"verdict\":\"accept\"}'\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let envs = Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "command")
        .set("ASSESSOR_COMMAND", format!("'{}'", script.display()))
        .set("OPENAI_API_KEY", OPENAI_KEY)
        .set("CAPTION_API_KEY", CAPTION_KEY)
        .set("SOME_SETTING", "kept");
    let out = run_assessor(ASSESSOR, dir, &edit(envs), &[]).await;
    assert_ok(&out, "accept", "command");
    std::fs::read_to_string(dir.join("env.txt")).unwrap()
}

#[tokio::test]
async fn the_program_sees_no_key_by_default() {
    let dir = tempdir();
    let env = child_env(dir.path(), |e| e.set("LLM_API_KEY", LLM_KEY)).await;
    for key in [LLM_KEY, OPENAI_KEY, CAPTION_KEY] {
        assert!(!env.contains(key), "the program saw {key}:\n{env}");
    }
    assert!(env.contains("SOME_SETTING=kept"), "{env}");
}

#[tokio::test]
async fn command_pass_api_key_passes_the_judge_key_only() {
    let dir = tempdir();
    let key_file = write_bytes(dir.path(), "key", format!("{FILE_KEY}\n").as_bytes());
    let env = child_env(dir.path(), |e| {
        e.set("LLM_API_KEY_FILE", key_file.to_str().unwrap())
            .set("COMMAND_PASS_API_KEY", "true")
    })
    .await;
    assert!(
        env.lines().any(|l| l == format!("LLM_API_KEY={FILE_KEY}")),
        "{env}"
    );
    for key in [OPENAI_KEY, CAPTION_KEY] {
        assert!(!env.contains(key), "the program saw {key}:\n{env}");
    }
}
