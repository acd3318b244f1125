//! Watching the results directory, watchexec style: inotify events (through
//! `notify`) are only *hints* about which names to look at, bridged into a
//! bounded tokio channel; the directory listing is the truth. A full rescan
//! happens on start, when the kernel queue overflowed (`Flag::Rescan`), when
//! our own channel overflowed, and on any watcher error. When the watcher
//! cannot start at all (inotify limits, FUSE, NFS), or `RELAY_POLL_INTERVAL`
//! asks for it, the directory is polled instead.
//!
//! The watcher owns the filtering: only names that are results to read (see
//! [`Settings::wants`]) ever leave this module, from hints or from a scan.
//!
//! In inotify mode no timer runs: an idle relay sleeps until the kernel
//! wakes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Hints queued between the watcher thread and the relay; beyond this the
/// hint is dropped and a full rescan is requested instead.
const HINT_QUEUE: usize = 1024;

/// The polling interval when inotify is unavailable and none was configured.
const FALLBACK_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What the relay watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    /// One file, `RESULT_PATH`: only that name in its directory counts.
    File { dir: PathBuf, name: String },
    /// Every `*.json` in `WATCH_DIR`.
    Dir(PathBuf),
}

impl Watch {
    pub(crate) fn dir(&self) -> &Path {
        match self {
            Watch::File { dir, .. } | Watch::Dir(dir) => dir,
        }
    }

    /// Whether a file name in the directory is a result to read.
    fn wants(&self, name: &str) -> bool {
        if shortlist_contract::atomic::is_temp_name(name) {
            return false;
        }
        match self {
            Watch::File { name: wanted, .. } => name == wanted,
            Watch::Dir(_) => name.ends_with(".json"),
        }
    }
}

/// The watch's settings: what to watch, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) watch: Watch,
    /// A name in the directory that is never a result: PROFILE_PATH's, when
    /// the profile is mounted in the watched directory.
    pub(crate) ignore: Option<String>,
    /// Poll at this interval instead of using inotify (RELAY_POLL_INTERVAL).
    pub(crate) poll_interval: Option<Duration>,
}

impl Settings {
    /// The watched directory.
    pub(crate) fn dir(&self) -> &Path {
        self.watch.dir()
    }

    /// Whether a name in the directory is a result to read.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.watch.wants(name) && self.ignore.as_deref() != Some(name)
    }
}

/// What to look at next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hint {
    /// These names in the directory may have changed.
    Names(Vec<String>),
    /// Anything may have changed: list the directory.
    Rescan,
}

/// How the directory is being watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchMode {
    Inotify,
    Poll(Duration),
}

/// A running directory watch.
pub(crate) struct DirWatcher {
    settings: Settings,
    mode: WatchMode,
    /// Kept alive for as long as we watch; dropping it stops the thread.
    watcher: Option<RecommendedWatcher>,
    hints: mpsc::Receiver<Hint>,
    overflowed: Arc<AtomicBool>,
    /// The polling period's timer, created on the first poll (its first
    /// tick is immediate: a rescan right after switching to polling).
    ticker: Option<tokio::time::Interval>,
}

impl DirWatcher {
    /// Starts watching the directory, by polling when an interval is set,
    /// else by inotify, falling back to polling when inotify cannot start.
    pub(crate) fn start(settings: Settings) -> DirWatcher {
        let (tx, hints) = mpsc::channel(HINT_QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let dir = settings.dir();
        if let Some(interval) = settings.poll_interval {
            tracing::info!(dir = %dir.display(), interval_ms = interval.as_millis() as u64, "watching by polling (RELAY_POLL_INTERVAL)");
            return DirWatcher::polling(settings, interval, hints, overflowed);
        }
        match start_inotify(dir, tx, overflowed.clone()) {
            Ok(watcher) => {
                tracing::info!(dir = %dir.display(), "watching with inotify");
                DirWatcher {
                    settings,
                    mode: WatchMode::Inotify,
                    watcher: Some(watcher),
                    hints,
                    overflowed,
                    ticker: None,
                }
            }
            Err(error) => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %error,
                    interval_ms = FALLBACK_POLL_INTERVAL.as_millis() as u64,
                    "inotify is unavailable here; polling instead"
                );
                DirWatcher::polling(settings, FALLBACK_POLL_INTERVAL, hints, overflowed)
            }
        }
    }

    fn polling(
        settings: Settings,
        interval: Duration,
        hints: mpsc::Receiver<Hint>,
        overflowed: Arc<AtomicBool>,
    ) -> DirWatcher {
        DirWatcher {
            settings,
            mode: WatchMode::Poll(interval),
            watcher: None,
            hints,
            overflowed,
            ticker: None,
        }
    }

    /// The watched directory.
    pub(crate) fn dir(&self) -> &Path {
        self.settings.dir()
    }

    /// The wanted names in the directory: the truth, whatever the events
    /// said. Sorted, so a rescan handles results in a stable order.
    pub(crate) fn scan(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if self.settings.wants(&name) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Waits for the next hint; names the relay does not want are left out.
    /// Cancel-safe (used in `select!`).
    pub(crate) async fn next(&mut self) -> Hint {
        match self.next_unfiltered().await {
            Hint::Names(mut names) => {
                names.retain(|name| self.settings.wants(name));
                Hint::Names(names)
            }
            Hint::Rescan => Hint::Rescan,
        }
    }

    async fn next_unfiltered(&mut self) -> Hint {
        if self.overflowed.swap(false, Ordering::AcqRel) {
            return Hint::Rescan;
        }
        match self.mode {
            WatchMode::Poll(interval) => {
                // A fixed period, whatever happened between two polls (an
                // Interval, not a sleep restarted after each wake-up).
                let ticker = self.ticker.get_or_insert_with(|| {
                    let mut ticker = tokio::time::interval(interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticker
                });
                ticker.tick().await;
                Hint::Rescan
            }
            WatchMode::Inotify => match self.hints.recv().await {
                Some(hint) => {
                    if self.overflowed.swap(false, Ordering::AcqRel) {
                        return Hint::Rescan;
                    }
                    hint
                }
                None => {
                    // The watcher thread is gone: keep going by polling.
                    tracing::warn!("the inotify watcher stopped; polling instead");
                    self.watcher = None;
                    self.mode = WatchMode::Poll(FALLBACK_POLL_INTERVAL);
                    Hint::Rescan
                }
            },
        }
    }
}

fn start_inotify(
    dir: &Path,
    tx: mpsc::Sender<Hint>,
    overflowed: Arc<AtomicBool>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let hint = match event {
            Ok(event) if event.need_rescan() => Hint::Rescan,
            Ok(event) => Hint::Names(
                event
                    .paths
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect(),
            ),
            Err(error) => {
                tracing::warn!(error = %error, "watcher error; rescanning the directory");
                Hint::Rescan
            }
        };
        if matches!(&hint, Hint::Names(names) if names.is_empty()) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(hint) {
            // Never block the watcher thread: remember to rescan instead.
            overflowed.store(true, Ordering::Release);
            // Wake the receiver if it is parked on an empty queue later.
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_filters_names() {
        let file = Watch::File {
            dir: ".".into(),
            name: "result.json".into(),
        };
        assert!(file.wants("result.json"));
        assert!(!file.wants("other.json"));
        assert!(!file.wants(".result.json.x.tmp"));
        let dir = Watch::Dir(".".into());
        assert!(dir.wants("a.json"));
        assert!(!dir.wants("..data"));
        assert!(!dir.wants("a.json.tmp"));
        assert!(!dir.wants("notes.txt"));
    }

    #[test]
    fn the_profile_in_the_watched_directory_is_not_a_result() {
        let settings = Settings {
            watch: Watch::Dir(".".into()),
            ignore: Some("profile.json".into()),
            poll_interval: None,
        };
        assert!(settings.wants("result.json"));
        assert!(!settings.wants("profile.json"));
    }

    #[tokio::test]
    async fn scan_lists_only_wanted_names_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.json", "a.json", "notes.txt", "profile.json"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        std::fs::create_dir(dir.path().join(".relay")).unwrap();
        let watcher = DirWatcher::start(Settings {
            watch: Watch::Dir(dir.path().to_path_buf()),
            ignore: Some("profile.json".into()),
            poll_interval: Some(Duration::from_millis(10)),
        });
        assert_eq!(watcher.scan().unwrap(), ["a.json", "b.json"]);
    }
}
