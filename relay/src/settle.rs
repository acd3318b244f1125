//! Settling: when a file in the watched directory is a complete result.
//!
//! Our assessor writes atomically (temp file + rename), but a custom one may
//! write in place, so a file can be seen half-written. A file that is not
//! complete JSON yet is *pending*: it is read again whenever it changes and
//! once its settle timeout is due. RELAY_SETTLE_TIMEOUT counts from the last
//! change seen (size, inode or mtime), not from first sight: a writer that
//! is still writing is not cut off, only one that stopped. If it still does
//! not parse by then it is *invalid*. A complete JSON document that breaks
//! the contract (no verdict, a score outside [0, 1], ...) is invalid at
//! once, with the reason logged: waiting cannot fix it.
//!
//! A file that parses is *ready*, exactly once: after that it counts as
//! handled and later changes are ignored (a verdict is not taken back). An
//! invalid file is not given up on: if it changes and then parses, it is
//! [`Look::Revived`], so a writer that paused longer than the settle timeout
//! still gets its result delivered.
//!
//! Changes are noticed by a [`Fingerprint`] (size, inode, full-precision
//! mtime), so an unchanged pending file is not re-read on every hint.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shortlist_contract::AssessmentResult;
use tokio::time::Instant;

// Result files larger than this are invalid without parsing.
use shortlist_contract::result::MAX_RESULT_BYTES;

/// What looking at a file found.
#[derive(Debug)]
pub(crate) enum Look {
    /// A complete result, seen for the first time: decide it. (Boxed: the
    /// other variants are small.)
    Ready(Box<AssessmentResult>),
    /// Not a complete result yet; looked at again when it changes or at
    /// [`SettleTracker::next_deadline`].
    Pending,
    /// Not a result (logged here, with why): complete JSON that breaks the
    /// contract, or still incomplete after the settle timeout. The file
    /// counts as handled unless it later becomes [`Look::Revived`].
    Invalid,
    /// A complete result in a file that was reported [`Look::Invalid`]
    /// before: decide it, and take back the invalid count (the file ends as
    /// what it finally is, so it is counted once).
    Revived(Box<AssessmentResult>),
    /// Nothing new: already handled, unchanged since the last look, gone, or
    /// not a regular file.
    Nothing,
}

/// What identifies a version of a file: size, inode and full-precision
/// mtime (whole seconds would miss a rewrite within the same second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    ino: u64,
    mtime_ns: i128,
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Self {
        Fingerprint {
            len: meta.len(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

#[derive(Debug)]
enum FileState {
    /// Seen, but not (yet) a complete result.
    Pending {
        fingerprint: Fingerprint,
        since: Instant,
        error: String,
    },
    /// Ready; later changes are ignored.
    Handled { fingerprint: Fingerprint },
    /// Reported invalid; a change is read again, in case it completes it.
    Invalid { fingerprint: Fingerprint },
}

/// The state of every file seen in one directory.
#[derive(Debug)]
pub(crate) struct SettleTracker {
    dir: PathBuf,
    timeout: Duration,
    files: HashMap<String, FileState>,
}

impl SettleTracker {
    /// Tracks files in `dir`; a file may stay unparsable for `timeout`.
    pub(crate) fn new(dir: &Path, timeout: Duration) -> Self {
        SettleTracker {
            dir: dir.to_path_buf(),
            timeout,
            files: HashMap::new(),
        }
    }

    /// Looks at `name` after a hint or during a scan: reads it if it is new
    /// or changed since the last look.
    pub(crate) fn look(&mut self, name: &str) -> Look {
        self.look_at(name, false)
    }

    /// When the earliest pending file's settle timeout is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.files
            .values()
            .filter_map(|state| match state {
                FileState::Pending { since, .. } => Some(*since + self.timeout),
                FileState::Handled { .. } | FileState::Invalid { .. } => None,
            })
            .min()
    }

    /// Reads every pending file again, changed or not (called when a settle
    /// deadline is due); returns what each look found, by name.
    pub(crate) fn recheck_pending(&mut self) -> Vec<(String, Look)> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter(|(_, state)| matches!(state, FileState::Pending { .. }))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let look = self.look_at(&name, true);
                (name, look)
            })
            .collect()
    }

    /// The files still pending, with why each does not parse: at exit they
    /// are reported, not forgotten.
    pub(crate) fn pending(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().filter_map(|(name, state)| match state {
            FileState::Pending { error, .. } => Some((name.as_str(), error.as_str())),
            FileState::Handled { .. } | FileState::Invalid { .. } => None,
        })
    }

    /// `force` re-reads an unchanged pending file (its settle deadline).
    fn look_at(&mut self, name: &str, force: bool) -> Look {
        let path = self.dir.join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Look::Nothing,
            Err(_) => {
                // Gone (renamed away, or a temp name): forget a half-written state.
                if matches!(self.files.get(name), Some(FileState::Pending { .. })) {
                    self.files.remove(name);
                }
                return Look::Nothing;
            }
        };
        let fingerprint = Fingerprint::of(&meta);
        let now = Instant::now();
        let since = match self.files.get(name) {
            Some(FileState::Handled { fingerprint: old }) => {
                if *old != fingerprint {
                    tracing::warn!(file = %name, "result changed after it was handled; the change is ignored");
                    self.files
                        .insert(name.to_string(), FileState::Handled { fingerprint });
                }
                return Look::Nothing;
            }
            Some(FileState::Invalid { fingerprint: old }) => {
                if *old == fingerprint {
                    return Look::Nothing;
                }
                return match read_result(&path, &meta) {
                    Ok(result) => {
                        tracing::info!(file = %name, "a result reported invalid is now complete; handling it");
                        self.files
                            .insert(name.to_string(), FileState::Handled { fingerprint });
                        Look::Revived(Box::new(result))
                    }
                    Err(error) => {
                        tracing::debug!(file = %name, error = %error, "a result reported invalid changed and is still not one");
                        self.files
                            .insert(name.to_string(), FileState::Invalid { fingerprint });
                        Look::Nothing
                    }
                };
            }
            Some(FileState::Pending {
                fingerprint: old,
                since,
                ..
            }) => {
                if *old == fingerprint {
                    if !force {
                        return Look::Nothing;
                    }
                    Some(*since)
                } else {
                    // Still being written: the settle timeout starts again.
                    None
                }
            }
            None => None,
        };
        match read_result(&path, &meta) {
            Ok(result) => {
                self.files
                    .insert(name.to_string(), FileState::Handled { fingerprint });
                Look::Ready(Box::new(result))
            }
            Err(ReadError::Violation { reason, field }) => {
                tracing::error!(
                    file = %name,
                    error = %reason,
                    field = field.as_deref().unwrap_or("unknown"),
                    "invalid result: complete JSON that breaks the result contract"
                );
                self.files
                    .insert(name.to_string(), FileState::Invalid { fingerprint });
                Look::Invalid
            }
            Err(ReadError::Incomplete(error)) => {
                let since = since.unwrap_or(now);
                if now.duration_since(since) >= self.timeout {
                    tracing::error!(
                        file = %name,
                        error = %error,
                        settle_ms = self.timeout.as_millis() as u64,
                        "invalid result: still unparsable RELAY_SETTLE_TIMEOUT after its last change"
                    );
                    self.files
                        .insert(name.to_string(), FileState::Invalid { fingerprint });
                    Look::Invalid
                } else {
                    tracing::debug!(file = %name, error = %error, "result not complete yet; waiting for more writes");
                    self.files.insert(
                        name.to_string(),
                        FileState::Pending {
                            fingerprint,
                            since,
                            error,
                        },
                    );
                    Look::Pending
                }
            }
        }
    }
}

/// Why a file is not a result; each says why in words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ReadError {
    /// Not complete JSON (yet): empty, cut off, unreadable, too large. More
    /// writes may complete it, so it waits for the settle timeout.
    #[error("{0}")]
    Incomplete(String),
    /// A complete JSON document that breaks the contract: no later write
    /// of a writer that appends can fix it, so it is invalid now. `field`
    /// is the top-level field to blame, when one is.
    #[error("{reason}")]
    Violation {
        reason: String,
        field: Option<String>,
    },
}

/// Reads and parses one result file (`relay check` reads through here too,
/// so it says what the running relay would).
pub(crate) fn read_result(
    path: &Path,
    meta: &std::fs::Metadata,
) -> Result<AssessmentResult, ReadError> {
    if meta.len() > MAX_RESULT_BYTES {
        return Err(ReadError::Incomplete(format!(
            "is {} bytes, larger than the {MAX_RESULT_BYTES}-byte limit",
            meta.len()
        )));
    }
    // Capped as read too (a file that grows after the stat is not read
    // without bound), and only a regular file is opened.
    let bytes = shortlist_contract::regular_file::read(path, MAX_RESULT_BYTES)
        .map_err(|e| ReadError::Incomplete(format!("cannot read: {e}")))?;
    parse_result(&bytes).map_err(|error| match error {
        ReadError::Violation { reason, .. } => ReadError::Violation {
            reason,
            field: offending_field(&bytes),
        },
        incomplete => incomplete,
    })
}

/// The top-level field to blame when a complete document breaks the
/// contract (serde's message does not always say, e.g. for an unknown
/// `verdict` value): `verdict` when it is missing, else the first field
/// that alone fails to parse beside a null verdict.
fn offending_field(bytes: &[u8]) -> Option<String> {
    let Ok(serde_json::Value::Object(document)) = serde_json::from_slice(bytes) else {
        return None;
    };
    if !document.contains_key("verdict") {
        return Some("verdict".to_string());
    }
    document.into_iter().find_map(|(key, value)| {
        let mut probe = serde_json::Map::new();
        probe.insert("verdict".to_string(), serde_json::Value::Null);
        probe.insert(key.clone(), value);
        serde_json::from_value::<AssessmentResult>(serde_json::Value::Object(probe))
            .is_err()
            .then_some(key)
    })
}

/// Parses a result, telling "not complete JSON" from "complete JSON that is
/// not a result": a type error (serde's data category) in a document that
/// is whole JSON is a violation; syntax and end-of-input errors, and a type
/// error in a document that is cut off, are incomplete.
fn parse_result(bytes: &[u8]) -> Result<AssessmentResult, ReadError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReadError::Incomplete("is empty".to_string()));
    }
    serde_json::from_slice::<AssessmentResult>(bytes).map_err(|e| {
        let complete =
            e.is_data() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        let error = format!("is not a valid result: {e}");
        if complete {
            ReadError::Violation {
                reason: error,
                field: None,
            }
        } else {
            ReadError::Incomplete(error)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shortlist_contract::Verdict;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const ACCEPT: &str = r#"{"verdict":"accept"}"#;

    fn tracker() -> (tempfile::TempDir, SettleTracker) {
        let dir = tempfile::tempdir().unwrap();
        let tracker = SettleTracker::new(dir.path(), TIMEOUT);
        (dir, tracker)
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }

    /// Replaces the file by a new one (a new inode), as an atomic writer does.
    fn replace(dir: &tempfile::TempDir, name: &str, text: &str) {
        let temp = dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, dir.path().join(name)).unwrap();
    }

    fn ready(look: Look) -> AssessmentResult {
        match look {
            Look::Ready(result) => *result,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn invalid(look: Look) {
        assert!(
            matches!(look, Look::Invalid),
            "expected Invalid, got {look:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_result_is_ready_once() {
        let (dir, mut tracker) = tracker();
        write(&dir, "r.json", ACCEPT);
        assert_eq!(ready(tracker.look("r.json")).verdict, Some(Verdict::Accept));
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        assert_eq!(tracker.next_deadline(), None);
        assert_eq!(tracker.pending().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_handling_is_ignored() {
        let (dir, mut tracker) = tracker();
        write(&dir, "r.json", ACCEPT);
        ready(tracker.look("r.json"));
        replace(&dir, "r.json", r#"{"verdict":"reject"}"#);
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        tokio::time::advance(TIMEOUT * 2).await;
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        assert!(tracker.recheck_pending().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_written_result_is_pending_until_complete() {
        let (dir, mut tracker) = tracker();
        let start = Instant::now();
        write(&dir, "r.json", r#"{"verd"#);
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        assert_eq!(tracker.next_deadline(), Some(start + TIMEOUT));
        let pending: Vec<_> = tracker.pending().collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, "r.json");
        assert!(
            pending[0].1.starts_with("is not a valid result"),
            "{pending:?}"
        );

        // Unchanged: not read again on a hint.
        assert!(matches!(tracker.look("r.json"), Look::Nothing));

        tokio::time::advance(Duration::from_secs(4)).await;
        write(&dir, "r.json", ACCEPT);
        assert_eq!(ready(tracker.look("r.json")).verdict, Some(Verdict::Accept));
        assert_eq!(tracker.next_deadline(), None);
        assert_eq!(tracker.pending().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_result_that_never_parses_is_invalid_at_its_deadline() {
        let (dir, mut tracker) = tracker();
        write(&dir, "r.json", r#"{"verdict":"#);
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        let deadline = tracker.next_deadline().unwrap();

        tokio::time::advance(TIMEOUT - Duration::from_millis(1)).await;
        let looks = tracker.recheck_pending();
        assert_eq!(looks.len(), 1);
        assert!(matches!(looks[0], (ref name, Look::Pending) if name == "r.json"));
        assert_eq!(tracker.next_deadline(), Some(deadline));

        tokio::time::advance(Duration::from_millis(1)).await;
        let mut looks = tracker.recheck_pending();
        assert_eq!(looks.len(), 1);
        let (name, look) = looks.remove(0);
        assert_eq!(name, "r.json");
        invalid(look);
        assert_eq!(tracker.next_deadline(), None);
        assert_eq!(tracker.pending().count(), 0);

        // Invalid is not final: a later valid version is revived, once.
        write(&dir, "r.json", ACCEPT);
        assert!(matches!(tracker.look("r.json"), Look::Revived(_)));
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
    }

    #[tokio::test(start_paused = true)]
    async fn the_settle_timeout_restarts_when_the_file_changes() {
        let (dir, mut tracker) = tracker();
        let start = Instant::now();
        write(&dir, "r.json", "{");
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        assert_eq!(tracker.next_deadline(), Some(start + TIMEOUT));
        tokio::time::advance(Duration::from_secs(6)).await;
        write(&dir, "r.json", r#"{"verdict""#);
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        let changed = Instant::now();
        assert_eq!(tracker.next_deadline(), Some(changed + TIMEOUT));
        // Past the first look's deadline, within the last change's: pending.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(
            tracker.recheck_pending().remove(0).1,
            Look::Pending
        ));
        // A change seen at a recheck also restarts it.
        write(&dir, "r.json", r#"{"verdict": "#);
        assert!(matches!(
            tracker.recheck_pending().remove(0).1,
            Look::Pending
        ));
        assert_eq!(tracker.next_deadline(), Some(Instant::now() + TIMEOUT));
        // Unchanged for the whole timeout: invalid.
        tokio::time::advance(TIMEOUT).await;
        invalid(tracker.recheck_pending().remove(0).1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_pauses_longer_than_the_timeout_mid_file_still_gets_its_result_handled() {
        let (dir, mut tracker) = tracker();
        let (first, second) = ACCEPT.split_at(8);
        write(&dir, "r.json", first);
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        // The writer pauses 12 s: past the 10 s timeout, the file is invalid.
        tokio::time::advance(Duration::from_secs(10)).await;
        invalid(tracker.recheck_pending().remove(0).1);
        assert_eq!(tracker.next_deadline(), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        // Unchanged: nothing new, no second report.
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        // A change that is still not complete: nothing new either.
        write(&dir, "r.json", &ACCEPT[..ACCEPT.len() - 1]);
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        assert_eq!(tracker.next_deadline(), None);
        // Completed: revived, exactly once.
        write(&dir, "r.json", &[first, second].concat());
        match tracker.look("r.json") {
            Look::Revived(result) => assert_eq!(result.verdict, Some(Verdict::Accept)),
            other => panic!("expected Revived, got {other:?}"),
        }
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        // Ready is final: a later change is ignored.
        replace(&dir, "r.json", r#"{"verdict":"reject"}"#);
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        assert_eq!(tracker.pending().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn complete_json_that_breaks_the_contract_is_invalid_at_once() {
        let (dir, mut tracker) = tracker();
        for (name, text) in [
            ("score.json", r#"{"verdict":"accept","score":86}"#),
            ("negative.json", r#"{"verdict":"accept","score":-0.5}"#),
            ("no-verdict.json", r#"{"status":"ok","score":0.9}"#),
            ("verdict.json", r#"{"verdict":"maybe"}"#),
            ("status.json", r#"{"verdict":"accept","status":"fine"}"#),
            ("id.json", r#"{"verdict":"accept","id":true}"#),
            ("array.json", r#"[{"verdict":"accept"}]"#),
        ] {
            write(&dir, name, text);
            invalid(tracker.look(name));
            assert!(matches!(tracker.look(name), Look::Nothing), "{name}");
        }
        assert_eq!(tracker.next_deadline(), None);
        assert_eq!(tracker.pending().count(), 0);
        // Fixed in place: revived.
        write(&dir, "score.json", r#"{"verdict":"accept","score":0.86}"#);
        match tracker.look("score.json") {
            Look::Revived(result) => assert_eq!(result.score, Some(0.86)),
            other => panic!("expected Revived, got {other:?}"),
        }
    }

    #[test]
    fn only_whole_json_is_a_violation() {
        let violation = |text: &str| match parse_result(text.as_bytes()) {
            Err(ReadError::Violation { reason, .. }) => reason,
            other => panic!("{text}: expected a violation, got {other:?}"),
        };
        let incomplete = |text: &str| {
            assert!(
                matches!(parse_result(text.as_bytes()), Err(ReadError::Incomplete(_))),
                "{text}"
            )
        };
        let error = violation(r#"{"verdict":"accept","score":86}"#);
        assert!(error.contains("score 86 is outside [0, 1]"), "{error}");
        let error = violation(r#"{"score":0.5}"#);
        assert!(error.contains("verdict"), "{error}");
        // Cut off, even where what is there already breaks the contract.
        incomplete(r#"{"verdict":"accept","score":86"#);
        incomplete(r#"{"verdict":"acc"#);
        incomplete(r#"{"verdict":"accept","score":0."#);
        incomplete("");
        incomplete("  \n");
        // Not JSON at all: waits for the settle timeout, as before.
        incomplete(r#"{"verdict": accept}"#);
        incomplete(r#"{"verdict":"accept"} trailing"#);
        // Lenient where the contract is.
        for text in [
            r#"{"verdict":"accept","decided_by":"heuristic"}"#,
            r#"{"verdict":"accept","id":7}"#,
            r#"{"verdict":"accept","custom":{"any":"thing"}}"#,
        ] {
            assert!(parse_result(text.as_bytes()).is_ok(), "{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn empty_and_whitespace_files_are_pending() {
        let (dir, mut tracker) = tracker();
        write(&dir, "a.json", "");
        write(&dir, "b.json", " \n\t");
        assert!(matches!(tracker.look("a.json"), Look::Pending));
        assert!(matches!(tracker.look("b.json"), Look::Pending));
        let mut pending: Vec<_> = tracker.pending().collect();
        pending.sort();
        assert_eq!(pending, [("a.json", "is empty"), ("b.json", "is empty")]);
        tokio::time::advance(TIMEOUT).await;
        let looks = tracker.recheck_pending();
        let names: Vec<&str> = looks.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["a.json", "b.json"]);
        looks.into_iter().for_each(|(_, look)| invalid(look));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_file_that_goes_away_is_forgotten() {
        let (dir, mut tracker) = tracker();
        write(&dir, "r.json", "{");
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        std::fs::remove_file(dir.path().join("r.json")).unwrap();
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
        assert_eq!(tracker.next_deadline(), None);
        assert_eq!(tracker.pending().count(), 0);
        // Back again later: a fresh settle timeout.
        tokio::time::advance(TIMEOUT * 3).await;
        let now = Instant::now();
        write(&dir, "r.json", "{");
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        assert_eq!(tracker.next_deadline(), Some(now + TIMEOUT));
    }

    #[tokio::test(start_paused = true)]
    async fn directories_and_missing_names_are_nothing() {
        let (dir, mut tracker) = tracker();
        std::fs::create_dir(dir.path().join("d.json")).unwrap();
        assert!(matches!(tracker.look("d.json"), Look::Nothing));
        assert!(matches!(tracker.look("missing.json"), Look::Nothing));
        assert_eq!(tracker.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_file_is_not_read() {
        let (dir, mut tracker) = tracker();
        let file = std::fs::File::create(dir.path().join("big.json")).unwrap();
        // Sparse: no 32 MiB actually written.
        file.set_len(MAX_RESULT_BYTES + 1).unwrap();
        assert!(matches!(tracker.look("big.json"), Look::Pending));
        let (_, error) = tracker.pending().next().unwrap();
        assert!(
            error.contains("larger than the 33554432-byte limit"),
            "{error}"
        );
        tokio::time::advance(TIMEOUT).await;
        invalid(tracker.recheck_pending().remove(0).1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_pending_deadline_comes_first() {
        let (dir, mut tracker) = tracker();
        let start = Instant::now();
        write(&dir, "a.json", "{");
        assert!(matches!(tracker.look("a.json"), Look::Pending));
        tokio::time::advance(Duration::from_secs(3)).await;
        write(&dir, "b.json", "{");
        assert!(matches!(tracker.look("b.json"), Look::Pending));
        assert_eq!(tracker.next_deadline(), Some(start + TIMEOUT));

        tokio::time::advance(Duration::from_secs(7)).await;
        let looks = tracker.recheck_pending();
        assert!(matches!(&looks[0], (name, Look::Invalid) if name == "a.json"));
        assert!(matches!(&looks[1], (name, Look::Pending) if name == "b.json"));
        assert_eq!(
            tracker.next_deadline(),
            Some(start + Duration::from_secs(3) + TIMEOUT)
        );
    }

    #[test]
    fn the_offending_field_is_named() {
        for (text, field) in [
            (r#"{"verdict":"accept","score":86}"#, Some("score")),
            (r#"{"verdict":"maybe"}"#, Some("verdict")),
            (r#"{"score":0.5}"#, Some("verdict")),
            (r#"{"verdict":"accept","status":"fine"}"#, Some("status")),
            (r#"{"verdict":"accept","id":true}"#, Some("id")),
            (
                r#"{"verdict":"accept","backend":{"model":"m"}}"#,
                Some("backend"),
            ),
            (r#"{"verdict":"accept","reasons":"one"}"#, Some("reasons")),
            (r#"[{"verdict":"accept"}]"#, None),
            (r#"{"verdict":"accept"}"#, None),
        ] {
            assert_eq!(offending_field(text.as_bytes()).as_deref(), field, "{text}");
        }
    }
}
