//! Running the `assessor` binary once and judging what it left: exit code,
//! output and the `RESULT_PATH` file. The binary path comes from the test
//! (`env!("CARGO_BIN_EXE_assessor")` in the assessor's own suites,
//! [`crate::binary::assessor`] elsewhere).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::env::Envs;
use crate::openai::FakeOpenAi;
use crate::process::{Process, command};
use crate::results::{assert_complete_result, assert_schema_valid};
use crate::text::{clip, mentions, single_json_document};

/// The guard for one run of the binary: far above anything a test needs.
pub const RUN_GUARD: Duration = Duration::from_secs(60);

/// The API key most tests use; never expected in any output.
pub const TEST_KEY: &str = "sk-test-key-0123";

/// What one run of the assessor produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The parsed `RESULT_PATH` file, when RESULT_PATH names a file and it exists.
    pub result: Option<Value>,
    /// The `RESULT_PATH` file when RESULT_PATH names one.
    pub result_path: Option<PathBuf>,
    pub elapsed: Duration,
}

impl Output {
    /// Context for assertion messages.
    pub fn ctx(&self) -> String {
        format!(
            "exit code {}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}\n--- result ---\n{}",
            self.code,
            self.stdout.len(),
            clip(&self.stdout, 4000),
            self.stderr.len(),
            clip(&self.stderr, 6000),
            self.result
                .as_ref()
                .map(|r| clip(&r.to_string(), 4000))
                .unwrap_or_else(|| "(none)".into())
        )
    }

    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code\n{}", self.ctx());
        self
    }

    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the binary panicked\n{}",
            self.ctx()
        );
        assert!(self.code >= 0, "killed by a signal\n{}", self.ctx());
        self
    }

    /// The result file's JSON; panics if there is none.
    pub fn result(&self) -> &Value {
        self.result
            .as_ref()
            .unwrap_or_else(|| panic!("no result file was written\n{}", self.ctx()))
    }

    /// stdout parsed as exactly one JSON document.
    pub fn stdout_json(&self) -> Value {
        single_json_document(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON document: {e}\n{}",
                self.ctx()
            )
        })
    }

    /// True if stderr mentions `needle` as is or JSON-escaped.
    pub fn stderr_mentions(&self, needle: &str) -> bool {
        mentions(&self.stderr, needle)
    }

    /// Asserts an error result: status error, verdict null, error.kind == kind.
    pub fn assert_error_result(&self, kind: &str) -> &Value {
        let r = self.result();
        assert_eq!(r["status"], "error", "status\n{}", self.ctx());
        assert!(
            r["verdict"].is_null(),
            "verdict must be null\n{}",
            self.ctx()
        );
        assert_eq!(r["error"]["kind"], kind, "error.kind\n{}", self.ctx());
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "error.message must be a non-empty string\n{}",
            self.ctx()
        );
        assert_schema_valid(r);
        r
    }
}

/// Runs the assessor `bin` in `dir` with a cleared environment plus `PATH`,
/// `LOG_FORMAT=json` and `envs`, stdin closed.
pub async fn run_assessor<K: AsRef<str>, V: AsRef<str>>(
    bin: impl AsRef<OsStr>,
    dir: &Path,
    envs: &[(K, V)],
    args: &[&str],
) -> Output {
    run_assessor_with_stdin(bin, dir, envs, args, None).await
}

/// Like [`run_assessor`], feeding `stdin` (closed stdin when `None`).
pub async fn run_assessor_with_stdin<K: AsRef<str>, V: AsRef<str>>(
    bin: impl AsRef<OsStr>,
    dir: &Path,
    envs: &[(K, V)],
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Output {
    let result_path = envs.iter().find_map(|(k, v)| {
        let v = v.as_ref();
        (k.as_ref() == "RESULT_PATH" && v != "-" && !v.is_empty()).then(|| dir.join(v))
    });
    let mut cmd = command(bin, dir, envs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    cmd.args(args);
    let out = Process::spawn(cmd, stdin).wait(RUN_GUARD).await;

    let result = result_path.as_ref().and_then(|p| match std::fs::read(p) {
        Ok(bytes) => Some(serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|e| {
            panic!(
                "{} exists but is not JSON ({e}): {}\n--- stderr ---\n{}",
                p.display(),
                clip(&String::from_utf8_lossy(&bytes), 2000),
                clip(&out.stderr, 4000)
            )
        })),
        Err(_) => None,
    });

    Output {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        result,
        result_path,
        elapsed: out.elapsed,
    }
}

/// The environment of an OpenAI-backend run against `server`: a fast retry
/// base, result in `dir/result.json`.
pub fn llm_env(server: &FakeOpenAi, dir: &Path, profile: &Path) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "openai")
        .set("LLM_BASE_URL", server.base_url())
        .set("LLM_MODEL", "test-model")
        .set("LLM_API_KEY", TEST_KEY)
        .set("LLM_RETRY_BASE_DELAY", "50ms")
        .set("LLM_TIMEOUT", "10s")
}

/// The environment of a `fixed`-backend run.
pub fn fixed_env(dir: &Path, profile: &Path) -> Envs {
    Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap())
        .set("LLM_BACKEND", "fixed")
}

/// Asserts an ok result with the given verdict and decider.
pub fn assert_ok(out: &Output, verdict: &str, decided_by: &str) -> Value {
    out.assert_no_panic();
    out.assert_code(0);
    let r = out.result().clone();
    assert_complete_result(&r);
    assert_eq!(r["status"], "ok", "status\n{}", out.ctx());
    assert_eq!(r["verdict"], verdict, "verdict\n{}", out.ctx());
    assert_eq!(r["decided_by"], decided_by, "decided_by\n{}", out.ctx());
    assert!(r["error"].is_null(), "error must be null\n{}", out.ctx());
    r
}
