//! Settling: when a file in the watched directory is a complete result.
//!
//! Our assessor writes atomically (temp file + rename), but a custom one may
//! write in place, so a file can be seen half-written. A file that does not
//! parse yet is *pending*: it is read again whenever it changes and once its
//! settle timeout (RELAY_SETTLE_TIMEOUT, counted from when it was first seen
//! unparsable) is due; if it still does not parse by then it is *invalid*.
//! A file that parses is *ready*, exactly once: after that it counts as
//! handled and later changes are ignored (a verdict is not taken back).
//!
//! Changes are noticed by a [`Fingerprint`] (size, inode, full-precision
//! mtime), so an unchanged pending file is not re-read on every hint.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shortlist_contract::AssessmentResult;
use tokio::time::Instant;

/// Result files larger than this are invalid without parsing.
const MAX_RESULT_BYTES: u64 = 32 * 1024 * 1024;

/// What looking at a file found.
#[derive(Debug)]
pub(crate) enum Look {
    /// A complete result, seen for the first time: decide it. (Boxed: the
    /// other variants are small.)
    Ready(Box<AssessmentResult>),
    /// Not a complete result yet; looked at again when it changes or at
    /// [`SettleTracker::next_deadline`].
    Pending,
    /// Still not a result after the settle timeout (logged here, with why);
    /// the file counts as handled from now on.
    Invalid,
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
    /// Ready or invalid; later changes are ignored.
    Handled { fingerprint: Fingerprint },
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
                FileState::Handled { .. } => None,
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
            FileState::Handled { .. } => None,
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
        let since = match self.files.get(name) {
            Some(FileState::Handled { fingerprint: old }) => {
                if *old != fingerprint {
                    tracing::warn!(file = %name, "result changed after it was handled; the change is ignored");
                    self.files
                        .insert(name.to_string(), FileState::Handled { fingerprint });
                }
                return Look::Nothing;
            }
            Some(FileState::Pending {
                fingerprint: old,
                since,
                ..
            }) => {
                if *old == fingerprint && !force {
                    return Look::Nothing;
                }
                Some(*since)
            }
            None => None,
        };
        match read_result(&path, &meta) {
            Ok(result) => {
                self.files
                    .insert(name.to_string(), FileState::Handled { fingerprint });
                Look::Ready(Box::new(result))
            }
            Err(error) => {
                let now = Instant::now();
                let since = since.unwrap_or(now);
                if now.duration_since(since) >= self.timeout {
                    tracing::error!(
                        file = %name,
                        error = %error,
                        settle_ms = self.timeout.as_millis() as u64,
                        "invalid result: still unparsable after RELAY_SETTLE_TIMEOUT"
                    );
                    self.files
                        .insert(name.to_string(), FileState::Handled { fingerprint });
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

/// Reads and parses one result file; the error says why it is not (yet) one.
fn read_result(path: &Path, meta: &std::fs::Metadata) -> Result<AssessmentResult, String> {
    if meta.len() > MAX_RESULT_BYTES {
        return Err(format!(
            "is {} bytes, larger than the {MAX_RESULT_BYTES}-byte limit",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("is empty".to_string());
    }
    serde_json::from_slice::<AssessmentResult>(&bytes)
        .map_err(|e| format!("is not a valid result: {e}"))
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

        // Invalid is final: a later valid version is ignored.
        write(&dir, "r.json", ACCEPT);
        assert!(matches!(tracker.look("r.json"), Look::Nothing));
    }

    #[tokio::test(start_paused = true)]
    async fn the_settle_timeout_counts_from_the_first_unparsable_look() {
        let (dir, mut tracker) = tracker();
        let start = Instant::now();
        write(&dir, "r.json", "{");
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        tokio::time::advance(Duration::from_secs(6)).await;
        write(&dir, "r.json", r#"{"verdict""#);
        assert!(matches!(tracker.look("r.json"), Look::Pending));
        assert_eq!(tracker.next_deadline(), Some(start + TIMEOUT));
        tokio::time::advance(Duration::from_secs(4)).await;
        // A change seen at the deadline is read, and is still not a result.
        write(&dir, "r.json", r#"{"verdict": "#);
        invalid(tracker.look("r.json"));
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
}
