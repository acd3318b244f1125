//! Watching the results directory, watchexec style: inotify events (through
//! `notify`) are only *hints* about which names to look at, bridged into a
//! bounded tokio channel; the directory listing is the truth. A full rescan
//! happens on start, when the kernel queue overflowed (`Flag::Rescan`), when
//! our own channel overflowed, and on any watcher error. When the watcher
//! cannot start at all (inotify limits, FUSE, NFS), or `RELAY_POLL_INTERVAL`
//! asks for it, the directory is polled instead.
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
pub const FALLBACK_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What to look at next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// These names in the directory may have changed.
    Names(Vec<String>),
    /// Anything may have changed: list the directory.
    Rescan,
}

/// How the directory is being watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Inotify,
    Poll(Duration),
}

/// A running directory watch.
pub struct DirWatcher {
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
    /// Starts watching `dir`, by polling every `poll` when given, else by
    /// inotify, falling back to polling when inotify cannot start.
    pub fn start(dir: &Path, poll: Option<Duration>) -> DirWatcher {
        let (tx, hints) = mpsc::channel(HINT_QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        if let Some(interval) = poll {
            tracing::info!(dir = %dir.display(), interval_ms = interval.as_millis() as u64, "watching by polling (RELAY_POLL_INTERVAL)");
            return DirWatcher::polling(interval, hints, overflowed);
        }
        match start_inotify(dir, tx, overflowed.clone()) {
            Ok(watcher) => {
                tracing::info!(dir = %dir.display(), "watching with inotify");
                DirWatcher {
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
                DirWatcher::polling(FALLBACK_POLL_INTERVAL, hints, overflowed)
            }
        }
    }

    fn polling(
        interval: Duration,
        hints: mpsc::Receiver<Hint>,
        overflowed: Arc<AtomicBool>,
    ) -> DirWatcher {
        DirWatcher {
            mode: WatchMode::Poll(interval),
            watcher: None,
            hints,
            overflowed,
            ticker: None,
        }
    }

    pub fn mode(&self) -> WatchMode {
        self.mode
    }

    /// Waits for the next hint. Cancel-safe (used in `select!`).
    pub async fn next(&mut self) -> Hint {
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

/// The names in `dir`, for a full rescan.
pub fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The path of a name in the watched directory.
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
