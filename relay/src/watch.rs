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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Names collected between two takes by the relay; beyond this many the
/// names are dropped and one full rescan is requested instead (a listing is
/// cheaper than an unbounded set).
const MAX_PENDING_NAMES: usize = 65_536;

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

/// What the watcher thread collected since the relay last took it: a set,
/// so a burst of events about the same names costs one look each, and one
/// flag, so any number of overflows costs one rescan.
#[derive(Debug, Default)]
struct Collected {
    names: HashSet<String>,
    rescan: bool,
}

impl Collected {
    fn add(&mut self, names: impl IntoIterator<Item = String>) {
        if self.rescan {
            // A rescan will list them anyway.
            return;
        }
        self.names.extend(names);
        if self.names.len() > MAX_PENDING_NAMES {
            self.request_rescan();
        }
    }

    fn request_rescan(&mut self) {
        self.rescan = true;
        self.names = HashSet::new();
    }

    /// Everything collected, as one hint (None when nothing was).
    fn take(&mut self) -> Option<Hint> {
        if std::mem::take(&mut self.rescan) {
            self.names.clear();
            return Some(Hint::Rescan);
        }
        if self.names.is_empty() {
            return None;
        }
        let mut names: Vec<String> = std::mem::take(&mut self.names).into_iter().collect();
        names.sort();
        Some(Hint::Names(names))
    }
}

/// Shared between the watcher thread (which adds) and the relay (which takes).
type Shared = Arc<Mutex<Collected>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Collected> {
    // The critical sections cannot leave the set inconsistent.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether an event can mean a result appeared, changed or went away. The
/// inotify mask notify uses includes OPEN (and notify reports it as an
/// access): the relay's own reads and listings would otherwise come back as
/// hints, one per file read, and keep a burst's queue full.
fn matters(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        // Renames (moved-to / moved-from) and in-place writes. Metadata
        // changes (chmod, touch) do not change a result.
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // Close after write; opens, reads and close-after-read are not news.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => true,
    }
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
    /// Wake-ups from the watcher thread (at most one queued: what to look
    /// at is in `collected`); closed when the thread is gone.
    wake: mpsc::Receiver<()>,
    collected: Shared,
    /// The polling period's timer, created on the first poll (its first
    /// tick is immediate: a rescan right after switching to polling).
    ticker: Option<tokio::time::Interval>,
}

impl DirWatcher {
    /// Starts watching the directory, by polling when an interval is set,
    /// else by inotify, falling back to polling when inotify cannot start.
    pub(crate) fn start(settings: Settings) -> DirWatcher {
        let (tx, wake) = mpsc::channel(1);
        let collected = Shared::default();
        let dir = settings.dir();
        if let Some(interval) = settings.poll_interval {
            tracing::info!(dir = %dir.display(), interval_ms = interval.as_millis() as u64, "watching by polling (RELAY_POLL_INTERVAL)");
            return DirWatcher::polling(settings, interval, wake, collected);
        }
        match start_inotify(dir, tx, collected.clone()) {
            Ok(watcher) => {
                tracing::info!(dir = %dir.display(), "watching with inotify");
                DirWatcher {
                    settings,
                    mode: WatchMode::Inotify,
                    watcher: Some(watcher),
                    wake,
                    collected,
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
                DirWatcher::polling(settings, FALLBACK_POLL_INTERVAL, wake, collected)
            }
        }
    }

    fn polling(
        settings: Settings,
        interval: Duration,
        wake: mpsc::Receiver<()>,
        collected: Shared,
    ) -> DirWatcher {
        DirWatcher {
            settings,
            mode: WatchMode::Poll(interval),
            watcher: None,
            wake,
            collected,
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

    /// Everything the watcher thread collected since the last call, as
    /// one hint: a burst of events is one wake-up, and any number of
    /// overflows one rescan.
    async fn next_unfiltered(&mut self) -> Hint {
        loop {
            if let Some(hint) = lock(&self.collected).take() {
                return hint;
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
                    return Hint::Rescan;
                }
                WatchMode::Inotify => {
                    if self.wake.recv().await.is_none() {
                        // The watcher thread is gone: keep going by polling.
                        tracing::warn!("the inotify watcher stopped; polling instead");
                        self.watcher = None;
                        self.mode = WatchMode::Poll(FALLBACK_POLL_INTERVAL);
                        return Hint::Rescan;
                    }
                }
            }
        }
    }
}

fn start_inotify(
    dir: &Path,
    tx: mpsc::Sender<()>,
    collected: Shared,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if event.need_rescan() => lock(&collected).request_rescan(),
            Ok(event) if !matters(&event.kind) => return,
            Ok(event) => {
                let names = event
                    .paths
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                lock(&collected).add(names);
            }
            Err(error) => {
                tracing::warn!(error = %error, "watcher error; rescanning the directory");
                lock(&collected).request_rescan();
            }
        }
        // Never block the watcher thread; a full queue already holds a
        // wake-up that will take what was just added.
        let _ = tx.try_send(());
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

    #[test]
    fn only_events_that_can_change_a_result_matter() {
        use notify::event::{CreateKind, RemoveKind, RenameMode};
        assert!(matters(&EventKind::Create(CreateKind::File)));
        assert!(matters(&EventKind::Remove(RemoveKind::File)));
        assert!(matters(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(matters(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!matters(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!matters(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
    }

    #[test]
    fn collected_names_coalesce_and_overflows_make_one_rescan() {
        let mut collected = Collected::default();
        assert_eq!(collected.take(), None);
        collected.add(["b.json".to_string(), "a.json".to_string()]);
        collected.add(["a.json".to_string()]);
        assert_eq!(
            collected.take(),
            Some(Hint::Names(vec!["a.json".into(), "b.json".into()]))
        );
        collected.request_rescan();
        collected.add(["c.json".to_string()]);
        collected.request_rescan();
        assert_eq!(collected.take(), Some(Hint::Rescan));
        assert_eq!(collected.take(), None);
        collected.add((0..=MAX_PENDING_NAMES).map(|i| format!("{i}.json")));
        assert_eq!(collected.take(), Some(Hint::Rescan));
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
