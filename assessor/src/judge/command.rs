//! The `command` judge: an external program judges. It receives one JSON
//! document on stdin — `{"profile", "system", "user", "criteria", "captions"}`, the same
//! framed prompt a model would get — and prints a verdict on stdout:
//! `{"verdict": "accept"|"reject", "score"?: 0..1, "reasons"?: [..]}`.
//! A non-zero exit, unparsable output or the time limit are error results.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use shortlist_contract::{BackendInfo, DecidedBy, ScoreSource, Verdict};
use shortlist_shared::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::{Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats};
use crate::process_group::{GRACE, ProcessGroup, kill_strays};
use crate::verdict::excerpt;

/// The secrets the assessor reads from its environment; the program's
/// environment is the assessor's without them.
const SECRET_VARIABLES: &[&str] = &["LLM_API_KEY", "OPENAI_API_KEY", "CAPTION_API_KEY"];

/// The command judge's settings (`ASSESSOR_COMMAND`, `COMMAND_TIMEOUT`,
/// `COMMAND_PASS_API_KEY`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) timeout: Duration,
    /// The judge's API key, passed to the program as `LLM_API_KEY` only
    /// when `COMMAND_PASS_API_KEY=true`.
    pub(crate) api_key: Option<Secret>,
}

pub(crate) struct CommandJudge {
    settings: Settings,
}

/// What the program must print.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandReply {
    verdict: Verdict,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    reasons: Vec<String>,
}

impl CommandJudge {
    pub(crate) fn new(settings: Settings) -> Self {
        CommandJudge { settings }
    }

    /// The command line as a shell would spell it, for messages.
    fn display(&self) -> String {
        shell_words::join(std::iter::once(&self.settings.program).chain(&self.settings.args))
    }

    async fn run(&self, request: &JudgeRequest<'_>) -> Result<Decision, JudgeError> {
        let failed = |detail: String| JudgeError::CommandFailed {
            command: self.display(),
            detail,
        };
        let input = serde_json::to_vec(&json!({
            "profile": request.profile_value,
            "system": request.prompt.system,
            "user": request.prompt.user,
            "criteria": request.criteria,
            "captions": request.captions,
        }))
        .map_err(|e| failed(format!("cannot encode its input: {e}")))?;

        let mut command = Command::new(&self.settings.program);
        command
            .args(&self.settings.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The program gets none of the assessor's keys unless asked
        // (COMMAND_PASS_API_KEY): it may be a script that logs its env.
        for variable in SECRET_VARIABLES {
            command.env_remove(variable);
        }
        if let Some(key) = &self.settings.api_key {
            command.env("LLM_API_KEY", key.expose());
        }
        let mut group =
            ProcessGroup::spawn(&mut command).map_err(|e| failed(format!("cannot start: {e}")))?;
        let gathered =
            tokio::time::timeout(self.settings.timeout, gather(group.child(), input)).await;
        let output = match gathered {
            Ok(Ok(output)) => {
                group.finish();
                output
            }
            Ok(Err(e)) => {
                group.end(GRACE).await;
                return Err(failed(e));
            }
            Err(_) => {
                // The whole group: a grandchild under `sh -c` goes too.
                group.end(GRACE).await;
                return Err(JudgeError::Timeout {
                    what: format!("command {:?} (COMMAND_TIMEOUT)", self.display()),
                    after: self.settings.timeout,
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: String = {
                let chars: Vec<char> = stderr.trim().chars().collect();
                chars[chars.len().saturating_sub(500)..].iter().collect()
            };
            return Err(failed(format!(
                "exited with {}; stderr: {tail:?}",
                output.status
            )));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let reply: CommandReply = serde_json::from_str(stdout.trim()).map_err(|e| JudgeError::ReplyInvalid {
            detail: format!(
                "command {:?} printed no valid verdict JSON ({e}); expected {{\"verdict\": \"accept\"|\"reject\", \"score\"?: 0..1, \"reasons\"?: [..]}}, got {}",
                self.display(),
                excerpt(stdout.trim())
            ),
        })?;
        if let Some(score) = reply.score {
            if !(0.0..=1.0).contains(&score) {
                return Err(JudgeError::ReplyInvalid {
                    detail: format!(
                        "command {:?} printed score {score}, expected 0..1",
                        self.display()
                    ),
                });
            }
        }
        Ok(Decision {
            verdict: reply.verdict,
            score: reply.score,
            score_source: reply.score.map(|_| ScoreSource::Stated),
            reasons: reply.reasons,
            decided_by: DecidedBy::Command,
        })
    }
}

/// The program's output, once it exited and closed its pipes.
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Feeds `input` to the child and reads its output until it exits and its
/// pipes close, all at once, so a program that answers before reading all
/// of a large profile cannot deadlock us. Once it exited, what it left
/// running in its group is killed, so a helper holding its stdout cannot
/// keep the answer from us.
async fn gather(
    (child, pgid): (&mut Child, libc::pid_t),
    input: Vec<u8>,
) -> Result<Output, String> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A program may ignore its input and exit: a broken pipe is fine.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    };
    let exit = async {
        let status = child.wait().await;
        kill_strays(pgid);
        status
    };
    let ((), status, stdout, stderr) =
        tokio::join!(write, exit, read_all(stdout), read_all(stderr));
    Ok(Output {
        status: status.map_err(|e| format!("cannot wait for it: {e}"))?,
        stdout: stdout.map_err(|e| format!("cannot read its stdout: {e}"))?,
        stderr: stderr.map_err(|e| format!("cannot read its stderr: {e}"))?,
    })
}

/// Everything a pipe gives until it closes.
async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes).await?;
    }
    Ok(bytes)
}

impl Judge for CommandJudge {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "command".into(),
            model: Some(self.settings.program.clone()),
        }
    }

    fn timing_key(&self) -> &'static str {
        "command"
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let outcome = self.run(request).await;
            (
                outcome,
                JudgeStats {
                    attempts: 1,
                    ..JudgeStats::default()
                },
            )
        })
    }
}
