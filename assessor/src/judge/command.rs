//! The `command` judge: an external program judges. It receives one JSON
//! document on stdin — `{"profile", "system", "user", "criteria", "captions"}`, the same
//! framed prompt a model would get — and prints a verdict on stdout:
//! `{"verdict": "accept"|"reject", "score"?: 0..1, "reasons"?: [..]}`.
//! A non-zero exit, unparsable output or the time limit are error results.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use shortlist_contract::{BackendInfo, DecidedBy, Verdict};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats};
use crate::verdict::excerpt;

/// The command judge's settings (`ASSESSOR_COMMAND`, `COMMAND_TIMEOUT`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) timeout: Duration,
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

        let mut child = Command::new(&self.settings.program)
            .args(&self.settings.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("cannot start: {e}")))?;
        let Some(mut stdin) = child.stdin.take() else {
            return Err(failed("its stdin is not a pipe".into()));
        };
        // Write concurrently with reading, so a program that answers before
        // reading all of a large profile cannot deadlock us.
        let writer = tokio::spawn(async move {
            // A program may ignore its input and exit: a broken pipe is fine.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
        let output =
            match tokio::time::timeout(self.settings.timeout, child.wait_with_output()).await {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => return Err(failed(format!("cannot wait for it: {e}"))),
                Err(_) => {
                    return Err(JudgeError::Timeout {
                        what: format!("command {:?} (COMMAND_TIMEOUT)", self.display()),
                        after: self.settings.timeout,
                    });
                }
            };
        writer.abort();
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
            reasons: reply.reasons,
            decided_by: DecidedBy::Command,
        })
    }
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
