//! `relay check FILE...`: what the running relay would do with each result
//! file, for custom-assessor authors, without sending anything.
//!
//! Every step is the relay's own: the file is read and validated by
//! [`read_result`] (size cap, the "incomplete" versus "breaks the
//! contract" distinction), decided by [`decide`] with RELAY_MIN_SCORE, its
//! profile comes from [`ProfileFallback`] (PROFILE_PATH), its ids from
//! [`identity`], and the `--payload` body from the webhook target's own
//! `Target::render`. So a file that checks `forward` here is forwarded
//! by the relay with that `webhook-id` and that body.
//!
//! What check does differently is only where the relay would wait or stay
//! silent: a file that is not complete JSON is reported invalid at once
//! (the relay waits RELAY_SETTLE_TIMEOUT for more writes first), and a
//! name that is not a regular file (a FIFO, a device, a directory) or does
//! not exist is reported invalid (the relay ignores it). Such files are
//! never opened, so none of them can block or fill memory.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use shortlist_contract::{AssessmentResult, Status, Verdict};
use shortlist_shared::logging::LogFormat;

use crate::decide::{Decision, Policy, Skip, decide};
use crate::exit::Exit;
use crate::identity;
use crate::notifier::{Auth, Delivery, Rendered, parse_targets};
use crate::profile::ProfileFallback;
use crate::settle::{ReadError, read_result};
use crate::watch::{self, Watch};

/// What `relay check` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    pub(crate) files: Vec<PathBuf>,
    /// One JSON object per line instead of text.
    pub(crate) json: bool,
    /// Also print the webhook body of each forwarded result.
    pub(crate) payload: bool,
    /// RELAY_MIN_SCORE, as the running relay applies it.
    pub(crate) policy: Policy,
    /// PROFILE_PATH, the profile of results that carry none.
    pub(crate) profile_path: Option<PathBuf>,
    /// LOG_FORMAT, for warnings on stderr.
    pub(crate) log_format: Option<LogFormat>,
}

impl CheckOptions {
    /// LOG_FORMAT, for the binary's logging set-up (None: plain, since a
    /// person reads what check prints).
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(LogFormat::Plain)
    }
}

/// What the relay would do with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    /// Deliver it to every target.
    Forward,
    /// A valid result that is not delivered (rejected, below
    /// RELAY_MIN_SCORE, or an assessor error).
    Skip,
    /// Not a result: the relay reports it and exits 4.
    Invalid,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Skip => "skip",
            Action::Invalid => "invalid",
        }
    }
}

/// Where a result's id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum IdSource {
    /// Its own `id`.
    Result,
    /// The profile's `metadata.id`, else a hash of the profile.
    Profile,
    /// Neither: the relay derives one from the file name and a salt of
    /// its pod, so it differs between pods and cannot be shown here.
    PerPod,
}

/// One line of the report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
struct Report {
    file: String,
    action: Action,
    /// Why, in words; for an invalid file, the reason the relay logs.
    reason: String,
    /// For an invalid file: the top-level field that breaks the contract,
    /// when one does (`verdict` when it is missing).
    field: Option<String>,
    verdict: Option<Verdict>,
    score: Option<f64>,
    status: Option<Status>,
    id: Option<String>,
    id_source: Option<IdSource>,
    /// Forwarded results only: the Standard Webhooks `webhook-id`.
    webhook_id: Option<String>,
    /// When the relay would not even read this name where it lies (a
    /// name WATCH_DIR skips, or an atomic writer's temp name).
    note: Option<String>,
    /// `--payload`, forwarded results only: the body a plain https webhook
    /// receives (file:// and stdout: lines add `webhook_id` and `delivered_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
}

impl Report {
    fn invalid(file: &Path, reason: String, field: Option<String>) -> Report {
        Report {
            file: file.display().to_string(),
            action: Action::Invalid,
            reason,
            field,
            verdict: None,
            score: None,
            status: None,
            id: None,
            id_source: None,
            webhook_id: None,
            note: None,
            payload: None,
        }
    }

    /// The text form: `action  file  reason; id ...`, then the payload on
    /// its own line when there is one.
    fn text(&self) -> String {
        let mut line = format!(
            "{:<7}  {}  {}",
            self.action.as_str(),
            self.file,
            self.reason
        );
        if let Some(field) = &self.field {
            line.push_str(&format!(" (field {field:?})"));
        }
        match (self.id_source, &self.id) {
            (Some(IdSource::PerPod), _) if self.action == Action::Forward => line.push_str(
                "; no id: the relay derives one per pod from the file name (write an \"id\", or set PROFILE_PATH, for a stable webhook-id)",
            ),
            (Some(source), Some(id)) => {
                let from = match source {
                    IdSource::Result => "the result's",
                    _ => "from the profile",
                };
                line.push_str(&format!("; id {id:?} ({from})"));
            }
            _ => {}
        }
        if let Some(webhook_id) = &self.webhook_id {
            line.push_str(&format!(", webhook-id {webhook_id}"));
        }
        if let Some(note) = &self.note {
            line.push_str(&format!("; note: {note}"));
        }
        if let Some(payload) = &self.payload {
            line.push('\n');
            line.push_str(&payload.to_string());
        }
        line
    }
}

/// Checks every file in order, writes one report line each to `out`, and
/// returns the exit code: [`Exit::InvalidResult`] when any file is invalid,
/// else [`Exit::Done`]. Fails only when `out` cannot be written.
pub fn check(options: &CheckOptions, out: &mut impl Write) -> std::io::Result<Exit> {
    let mut checker = Checker {
        policy: options.policy,
        profiles: ProfileFallback::new(usable_profile_path(options.profile_path.as_deref())),
        payload: options.payload,
    };
    let mut exit = Exit::Done;
    for file in &options.files {
        let report = checker.check(file);
        if report.action == Action::Invalid {
            exit = Exit::InvalidResult;
        }
        if options.json {
            let line = serde_json::to_string(&report).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", report.text())?;
        }
    }
    out.flush()?;
    Ok(exit)
}

/// PROFILE_PATH, unless it is something reading would block on or fill
/// memory with (a FIFO, a device): then it is left out, with a warning, and
/// results without a profile are checked as if it were unset.
fn usable_profile_path(path: Option<&Path>) -> Option<PathBuf> {
    let path = path?;
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            tracing::warn!(
                path = %path.display(),
                kind = file_kind(&meta.file_type()),
                "PROFILE_PATH is not a regular file; checking without it"
            );
            None
        }
        // Missing or unreadable: ProfileFallback says so, as in the relay.
        _ => Some(path.to_path_buf()),
    }
}

struct Checker {
    policy: Policy,
    profiles: ProfileFallback,
    payload: bool,
}

impl Checker {
    fn check(&mut self, file: &Path) -> Report {
        let meta = match std::fs::metadata(file) {
            Ok(meta) if meta.is_file() => meta,
            Ok(meta) => {
                return Report::invalid(
                    file,
                    format!(
                        "is not a regular file but {}: the relay only reads regular files (it ignores this name)",
                        file_kind(&meta.file_type())
                    ),
                    None,
                );
            }
            Err(e) => {
                return Report::invalid(
                    file,
                    format!("cannot read: {e} (the relay ignores a name it cannot read)"),
                    None,
                );
            }
        };
        let mut report = match read_result(file, &meta) {
            Ok(result) => self.decide(file, result),
            Err(ReadError::Violation { reason, field }) => Report::invalid(file, reason, field),
            Err(ReadError::Incomplete(reason)) => Report::invalid(
                file,
                format!(
                    "{reason} (the relay waits RELAY_SETTLE_TIMEOUT after its last change for a complete result, then reports it invalid)"
                ),
                None,
            ),
        };
        // Only for a file that is there: a missing name or a FIFO already says enough.
        report.note = name_note(file);
        report
    }

    /// What the relay's loop does with a parsed result (`run.rs`'s
    /// `decide_and_deliver`), minus the delivery.
    fn decide(&mut self, file: &Path, result: AssessmentResult) -> Report {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let decision = decide(&result, &self.policy);
        // As the relay: PROFILE_PATH only for what needs it.
        let profile = if decision == Decision::Forward || identity::own_id(&result).is_none() {
            self.profiles.for_result(&result)
        } else {
            None
        };
        let id_source = match (identity::own_id(&result), &profile) {
            (Some(_), _) => IdSource::Result,
            (None, Some(_)) => IdSource::Profile,
            (None, None) => IdSource::PerPod,
        };
        // With an id or a profile, the pod's salt is never asked for.
        let id = (id_source != IdSource::PerPod)
            .then(|| identity::result_id(&name, &result, profile.as_deref(), String::new));
        let (action, reason) = match &decision {
            Decision::Forward => (
                Action::Forward,
                match (result.score, self.policy.min_score) {
                    (Some(score), Some(min)) => {
                        format!("accepted, score {score} is at least RELAY_MIN_SCORE {min}")
                    }
                    (Some(score), None) => format!("accepted, score {score}"),
                    (None, Some(min)) => {
                        format!("accepted without a score (passes RELAY_MIN_SCORE {min})")
                    }
                    (None, None) => "accepted".to_string(),
                },
            ),
            Decision::Skip(Skip::NotAccepted { verdict }) => (
                Action::Skip,
                format!(
                    "verdict {}: only accepted results are forwarded",
                    verdict.map_or("null", Verdict::as_str)
                ),
            ),
            Decision::Skip(Skip::BelowMinScore { score, min_score }) => (
                Action::Skip,
                format!(
                    "accepted, but score {score} is below RELAY_MIN_SCORE {min_score} (its receipt says not_forwarded)"
                ),
            ),
            Decision::AssessorError { kind, message } => (
                Action::Skip,
                format!(
                    "status error ({}{}): nothing is delivered, and the relay exits 5 so the Job can retry",
                    kind.as_ref().map_or("no error kind", |k| k.as_str()),
                    message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            ),
        };
        let forward = action == Action::Forward;
        // A per-pod id is still forwarded, under an id this check cannot know.
        let webhook_id = id.as_deref().filter(|_| forward).map(identity::webhook_id);
        let payload = (forward && self.payload).then(|| {
            let body = webhook_body(
                &result,
                profile.as_deref(),
                webhook_id.as_deref().unwrap_or_default(),
            );
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        });
        Report {
            file: file.display().to_string(),
            action,
            reason,
            field: None,
            verdict: result.verdict,
            score: result.score,
            status: Some(result.effective_status()),
            id,
            id_source: Some(id_source),
            webhook_id,
            note: None,
            payload,
        }
    }
}

/// The body a plain https webhook target is sent, rendered by that target
/// itself (no request is made).
fn webhook_body(result: &AssessmentResult, profile: Option<&Value>, webhook_id: &str) -> Vec<u8> {
    let delivery = Delivery {
        result,
        profile,
        webhook_id,
        timestamp: 0,
    };
    let targets = parse_targets("https://relay-check.invalid/").unwrap_or_default();
    match targets
        .first()
        .map(|t| t.render(&delivery, &Auth::default()))
    {
        Some(Rendered::Http(request)) => request.body,
        _ => Vec::new(),
    }
}

/// Whether the relay would pick this file's name up at all, by the
/// watcher's own filter: a WATCH_DIR relay reads only `*.json` names, and
/// no relay reads an atomic writer's temp name (RESULT_PATH reads any other).
fn name_note(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_string_lossy().into_owned();
    let wants = |watch: Watch| {
        watch::Settings {
            watch,
            ignore: None,
            poll_interval: None,
        }
        .wants(&name)
    };
    let dir = PathBuf::from(".");
    if !wants(Watch::File {
        dir: dir.clone(),
        name: name.clone(),
    }) {
        Some("the relay never reads this name: it is an atomic writer's temp name".into())
    } else if !wants(Watch::Dir(dir)) {
        Some("a relay watching the directory (WATCH_DIR) skips this name (it reads *.json); only RESULT_PATH would read it".into())
    } else {
        None
    }
}

/// What a name that is not a regular file is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_watcher_skips_are_noted() {
        assert_eq!(name_note(Path::new("out/result.json")), None);
        let txt = name_note(Path::new("out/result.txt")).unwrap();
        assert!(txt.contains("WATCH_DIR"), "{txt}");
        let temp = name_note(Path::new("out/.result.json.x.tmp")).unwrap();
        assert!(temp.contains("temp name"), "{temp}");
    }
}
