//! Batch mode: every profile of a directory or JSONL file, `ASSESSOR_JOBS`
//! at a time, each result written atomically to `RESULT_DIR/<id>.json` (the
//! files the relay watches) and optionally appended to `RESULTS_JSONL`.
//!
//! - Resumable: a profile whose result already exists and is `ok` is skipped
//!   (`ASSESSOR_FORCE=true` judges it again), so a killed batch or a retried
//!   Job pod repeats no finished work; a result whose `fingerprint` differs
//!   from this run's (the brief, rules, prompts or judge changed) is judged
//!   again.
//! - Stoppable: on SIGTERM/SIGINT no new profile starts, those in flight
//!   have `ASSESSOR_DRAIN_TIMEOUT`, and the summary says what is left.
//! - Shardable: `ASSESSOR_SHARD=i/N`, or an Indexed Job's
//!   `JOB_COMPLETION_INDEX` with `ASSESSOR_SHARD_COUNT=N`.
//! - Flat memory: the input is streamed through a bounded channel and at most
//!   `jobs` profiles are in flight.

pub(crate) mod input;
pub(crate) mod progress;
pub(crate) mod shard;
pub(crate) mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shortlist_contract::atomic::{Durability, sync_filesystem, temp_target, write_atomic_with};
use shortlist_contract::{AssessmentResult, ErrorKind, Status};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::input::{InputFormat, Item, read_into};
use self::progress::Progress;
use self::shard::Shard;
use self::summary::{Left, Outcome, Summary};
use crate::assess::Assessor;
use crate::exit::Exit;
use crate::output::render;
use crate::process_group;
use crate::shutdown::Shutdown;

/// Validated batch settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) input: PathBuf,
    pub(crate) format: InputFormat,
    pub(crate) result_dir: PathBuf,
    pub(crate) results_jsonl: Option<PathBuf>,
    pub(crate) jobs: usize,
    pub(crate) shard: Option<Shard>,
    pub(crate) force: bool,
    /// After SIGTERM/SIGINT, how long profiles in flight may finish.
    pub(crate) drain_timeout: Duration,
    /// ASSESSOR_AWAIT_DELIVERY: after the batch, wait this long for the
    /// relay's receipts of the accepted results it wrote.
    pub(crate) await_delivery: Option<Duration>,
    /// Prices per 1000 prompt / completion tokens, for the cost estimate.
    pub(crate) prices: Option<(f64, f64)>,
}

/// Why a batch could not run at all (exit 5: nowhere to write results).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("RESULT_DIR {}: cannot create: {source}", path.display())]
    ResultDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("RESULTS_JSONL {}: cannot open: {source}", path.display())]
    ResultsJsonl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the batch; the summary's exit code says whether every profile was
/// assessed. On `shutdown` no new profile starts; those in flight have
/// `drain_timeout` to finish, and the summary says how many are left.
pub(crate) async fn run(
    assessor: Arc<Assessor>,
    batch: &Settings,
    shutdown: &Shutdown,
) -> Result<Summary, Error> {
    let started = Instant::now();
    std::fs::create_dir_all(&batch.result_dir).map_err(|source| Error::ResultDir {
        path: batch.result_dir.clone(),
        source,
    })?;
    tracing::info!(
        input = %batch.input.display(),
        result_dir = %batch.result_dir.display(),
        jobs = batch.jobs,
        shard = batch.shard.map(|s| s.to_string()),
        "batch started"
    );

    let leftovers = Leftovers::scan(&batch.result_dir);
    let (sender, mut receiver) = mpsc::channel::<Item>(batch.jobs * 2);
    let reader = {
        let batch = batch.clone();
        tokio::task::spawn_blocking(move || {
            read_into(batch.format, &batch.input, batch.shard, sender)
        })
    };

    let mut jsonl = match &batch.results_jsonl {
        None => None,
        Some(path) => match tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
        {
            Ok(file) => Some(tokio::io::BufWriter::new(file)),
            Err(source) => {
                return Err(Error::ResultsJsonl {
                    path: path.clone(),
                    source,
                });
            }
        },
    };

    // Each profile is its own task, so the runtime's worker threads share
    // the work (polled inside one future, every assessment would run on the
    // thread that awaits it); at most `jobs` are in flight.
    let shared = Arc::new((batch.clone(), leftovers));
    let want_line = batch.results_jsonl.is_some();
    let mut tasks: JoinSet<(Outcome, Option<Vec<u8>>)> = JoinSet::new();

    let mut summary = Summary {
        prices: batch.prices,
        ..Summary::default()
    };
    let waiting = if assessor.loads_a_model() {
        "loading the model…"
    } else {
        "waiting for the first result…"
    };
    let mut progress = Progress::new(count_entries(batch), waiting);
    let mut last_sync = Instant::now();
    let mut input_open = true;
    let signalled = shutdown.requested();
    tokio::pin!(signalled);
    let insisted = shutdown.insisted();
    tokio::pin!(insisted);
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let stopping = summary.interrupted.is_some() || summary.refused.is_some();
        if tasks.is_empty() && (stopping || !input_open) {
            break;
        }
        let taking = input_open && !stopping && tasks.len() < batch.jobs;
        tokio::select! {
            biased;
            signal = &mut signalled, if summary.interrupted.is_none() => {
                summary.interrupted = Some(signal);
                drain_until = Some(tokio::time::Instant::now() + batch.drain_timeout);
                tracing::warn!(
                    signal = signal.name(),
                    in_flight = tasks.len(),
                    drain_timeout = ?batch.drain_timeout,
                    "stopping: no new profiles; those in flight may finish"
                );
            }
            () = &mut insisted, if drain_until.is_some() => {
                tracing::warn!(
                    abandoned = tasks.len(),
                    "a second signal: abandoning the profiles still in flight"
                );
                break;
            }
            () = sleep_until_or_never(drain_until) => {
                tracing::warn!(
                    abandoned = tasks.len(),
                    "ASSESSOR_DRAIN_TIMEOUT is over; abandoning the profiles still in flight"
                );
                break;
            }
            Some(joined) = tasks.join_next() => {
                let (outcome, line) = joined.unwrap_or((Outcome::Unwritable, None));
                record(&mut summary, &outcome, line, jsonl.as_mut()).await;
                progress.update(&summary);
                if last_sync.elapsed() >= SYNC_EVERY {
                    last_sync = Instant::now();
                    sync_results(&batch.result_dir).await;
                }
            }
            item = receiver.recv(), if taking => match item {
                Some(item) => {
                    let assessor = Arc::clone(&assessor);
                    let shared = Arc::clone(&shared);
                    tasks.spawn(process_owned(assessor, shared, item, want_line));
                }
                None => input_open = false,
            },
        }
    }
    let stopped = summary.interrupted.is_some() || summary.refused.is_some();
    // Past the drain time: the judgements still running are dropped (their
    // command's process group gets SIGTERM), and nothing more is written
    // for them; the ones that finished meanwhile still count.
    tasks.abort_all();
    let mut abandoned = 0u64;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((outcome, line)) => {
                record(&mut summary, &outcome, line, jsonl.as_mut()).await;
            }
            Err(error) if error.is_cancelled() => abandoned += 1,
            Err(_) => record(&mut summary, &Outcome::Unwritable, None, jsonl.as_mut()).await,
        }
    }
    process_group::end_abandoned(process_group::GRACE).await;
    let left = if stopped {
        Some(count_left(&mut receiver, abandoned).await)
    } else {
        None
    };
    progress.finish();
    if let Some(writer) = jsonl.as_mut() {
        if let Err(error) = writer.flush().await {
            tracing::error!(%error, "cannot write RESULTS_JSONL");
            summary.unwritable += 1;
        } else if let Err(error) = writer.get_ref().sync_all().await {
            tracing::warn!(%error, "cannot sync RESULTS_JSONL");
        }
    }
    sync_results(&batch.result_dir).await;
    receiver.close();
    drop(receiver);
    // A stopped batch does not wait long for an input that may be slow.
    let reader = if stopped {
        tokio::time::timeout(COUNT_LEFT_FOR, reader).await.ok()
    } else {
        Some(reader.await)
    };
    let input_stats = match reader {
        Some(Ok(Ok(stats))) => Some(stats),
        // Reported in the summary's table (and its exit code), after the
        // profiles that could be read were assessed.
        Some(Ok(Err(error))) => {
            tracing::error!(%error, "the batch input could not be read to the end");
            summary.input_error = Some(error.to_string());
            None
        }
        Some(Err(error)) => {
            tracing::error!(%error, "the input reader failed");
            summary.input_error = Some(format!("the input reader failed: {error}"));
            None
        }
        None => None,
    };
    summary.left = left;
    summary.elapsed = started.elapsed();
    summary.input = input_stats;
    summary.log();
    Ok(summary)
}

/// Counts one outcome, and appends its line to RESULTS_JSONL. A result
/// whose server refused the configuration stops the batch: every other
/// profile would be refused the same way.
async fn record(
    summary: &mut Summary,
    outcome: &Outcome,
    line: Option<Vec<u8>>,
    jsonl: Option<&mut tokio::io::BufWriter<tokio::fs::File>>,
) {
    if let (Some(writer), Some(line)) = (jsonl, line) {
        if let Err(error) = writer.write_all(&line).await {
            tracing::error!(%error, "cannot append to RESULTS_JSONL");
            summary.unwritable += 1;
        }
    }
    summary.record(outcome);
    if let (
        None,
        Outcome::Assessed {
            result,
            exit: Exit::BackendRefused,
            ..
        },
    ) = (&summary.refused, outcome)
    {
        let kind = result
            .error
            .clone()
            .flatten()
            .map(|e| e.kind)
            .unwrap_or(ErrorKind::BackendRejected);
        tracing::error!(%kind, "the backend refused the configuration; stopping the batch");
        summary.refused = Some(kind);
    }
}

/// How long a stopped batch spends counting what it left unread.
const COUNT_LEFT_FOR: Duration = Duration::from_secs(1);

/// What a stopped batch leaves for the next run: the judgements it
/// abandoned and the entries it did not start, counted from the input
/// (read on, not judged) for up to [`COUNT_LEFT_FOR`].
async fn count_left(receiver: &mut mpsc::Receiver<Item>, abandoned: u64) -> Left {
    let mut count = abandoned;
    let counted = tokio::time::timeout(COUNT_LEFT_FOR, async {
        while receiver.recv().await.is_some() {
            count += 1;
        }
    })
    .await;
    Left {
        count,
        exact: counted.is_ok(),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Results are written atomically but not fsynced one by one (two fsyncs
/// per result cost more than judging it against a fast server); the
/// filesystem is synced this often and at the end, so a crash loses at most
/// this much finished work, which the resumed batch judges again.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn sync_results(dir: &Path) {
    let dir = dir.to_path_buf();
    let synced = tokio::task::spawn_blocking(move || sync_filesystem(&dir)).await;
    if let Ok(Err(error)) | Err(error) = synced.map_err(std::io::Error::other) {
        tracing::warn!(%error, "cannot sync the results directory's filesystem");
    }
}

/// The number of entries when it is cheap to know up front and is this
/// pod's whole share (no shard): files in a directory, lines of a JSONL
/// that is a regular file. A streamed JSONL (a FIFO) has no total: counting
/// would mean reading it, and what a second reader takes from a pipe the
/// batch's reader never sees, so it is not even opened here (the progress
/// shows a spinner instead).
fn count_entries(batch: &Settings) -> Option<u64> {
    if batch.shard.is_some() {
        return None;
    }
    match batch.format {
        InputFormat::Directory => input::profile_files(&batch.input)
            .ok()
            .map(|files| files.len() as u64),
        InputFormat::Jsonl => {
            use std::io::BufRead;
            // Opens only a regular file (looked at before opening, and
            // again once open).
            let (file, _) = shortlist_contract::regular_file::open(&batch.input).ok()?;
            let reader = std::io::BufReader::with_capacity(1 << 20, file);
            Some(
                reader
                    .split(b'\n')
                    .filter(|line| line.as_ref().is_ok_and(|l| !l.trim_ascii().is_empty()))
                    .count() as u64,
            )
        }
    }
}

/// [`process`] with owned handles, for `tokio::spawn`.
async fn process_owned(
    assessor: Arc<Assessor>,
    shared: Arc<(Settings, Leftovers)>,
    item: Item,
    want_line: bool,
) -> (Outcome, Option<Vec<u8>>) {
    let (batch, leftovers) = &*shared;
    process(&assessor, batch, leftovers, item, want_line).await
}

/// One item: skip it when its result exists, else assess and write it.
/// Returns the outcome and the JSONL line to append.
async fn process(
    assessor: &Assessor,
    batch: &Settings,
    leftovers: &Leftovers,
    item: Item,
    want_line: bool,
) -> (Outcome, Option<Vec<u8>>) {
    let name = result_file_name(&item);
    // A writer killed mid-write (SIGKILL, OOM, node loss) leaves its temp
    // file behind; this run now owns that name, so its leftovers go.
    leftovers.remove_for(&name);
    let path = batch.result_dir.join(name);
    let mut stale = false;
    if !batch.force && item.parsed.is_ok() {
        match existing(&path, assessor.fingerprint()) {
            Existing::Current => {
                tracing::debug!(source = %item.source, result = %path.display(), "already assessed; skipped");
                return (Outcome::Skipped, None);
            }
            Existing::Stale => {
                tracing::debug!(source = %item.source, result = %path.display(), "assessed under other settings; judging again");
                stale = true;
            }
            Existing::None => {}
        }
    }
    if batch.await_delivery.is_some() {
        // Only a receipt for the result about to be written may end the wait.
        crate::await_delivery::forget_old_receipt(&path);
    }
    let started = Instant::now();
    let (result, exit) = assessor.assess(item.parsed, &item.dir).await;
    let ms = started.elapsed().as_millis() as u64;
    // Written on this worker thread: without fsync a result write is a few
    // tens of microseconds, less than handing it to the blocking pool costs
    // in wake-ups (the benchmark counted 16 futex calls per profile that way).
    let written = write_atomic_with(&path, &render(&result), Durability::Deferred);
    if let Err(error) = written {
        tracing::error!(source = %item.source, %error, "the result could not be written");
        return (Outcome::Unwritable, None);
    }
    let line = want_line.then(|| {
        let mut line = serde_json::to_vec(&result).expect("a result always serialises");
        line.push(b'\n');
        line
    });
    (
        Outcome::Assessed {
            result: Box::new(result),
            path,
            exit,
            ms,
            stale,
        },
        line,
    )
}

/// Temp files of killed writers in RESULT_DIR (`.<name>.XXXXXX.tmp`, the
/// atomic writer's names), by the result name they were for. Only a name
/// this run is about to write (or has found done) has its leftovers removed:
/// another shard's pod may be writing its own into the same directory right
/// now. Leftovers older than an hour are abandoned whoever made them.
pub(crate) struct Leftovers {
    by_name: std::collections::HashMap<String, Vec<PathBuf>>,
}

impl Leftovers {
    const ABANDONED: std::time::Duration = std::time::Duration::from_secs(3600);

    pub(crate) fn scan(dir: &Path) -> Leftovers {
        let mut by_name: std::collections::HashMap<String, Vec<PathBuf>> = Default::default();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(target) = temp_target(&file_name).map(str::to_string) else {
                continue;
            };
            let path = entry.path();
            let abandoned = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Self::ABANDONED);
            if abandoned {
                remove_leftover(&path);
            } else {
                by_name.entry(target).or_default().push(path);
            }
        }
        Leftovers { by_name }
    }

    fn remove_for(&self, name: &str) {
        for path in self.by_name.get(name).into_iter().flatten() {
            remove_leftover(path);
        }
    }
}

fn remove_leftover(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed a temp file left by an interrupted write")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove a leftover temp file")
        }
    }
}

/// What a profile's existing result means for this run.
enum Existing {
    /// No complete, successful result: judge it.
    None,
    /// A successful result decided as this run would decide it: skip it.
    Current,
    /// A successful result decided by other settings (its `fingerprint`
    /// differs: the brief, rules, prompts or judge changed): judge again.
    Stale,
}

/// Reads `path`'s result. One without a fingerprint (written before
/// results had one, or by a custom assessor) counts as current: resume
/// must not silently re-judge, and pay for, a whole directory.
fn existing(path: &Path, fingerprint: Option<&str>) -> Existing {
    // A small local read, done in place (see the result write above); a
    // FIFO or device planted in RESULT_DIR is not a result, not a hang.
    let Ok(bytes) =
        shortlist_contract::regular_file::read(path, shortlist_contract::result::MAX_RESULT_BYTES)
    else {
        return Existing::None;
    };
    match serde_json::from_slice::<AssessmentResult>(&bytes) {
        Ok(r) if r.effective_status() == Status::Ok && r.verdict.is_some() => {
            match (r.fingerprint.as_deref(), fingerprint) {
                (Some(theirs), Some(ours)) if theirs != ours => Existing::Stale,
                _ => Existing::Current,
            }
        }
        _ => Existing::None,
    }
}

/// `<id>.json`, with the id made safe as a file name; an entry that could
/// not be read is named after its source so it still gets a result.
pub(crate) fn result_file_name(item: &Item) -> String {
    match &item.id {
        Some(id) => format!("{}.json", safe_file_stem(id)),
        None => format!(
            "invalid-{}.json",
            &shortlist_contract::profile::stable_id(&serde_json::Value::String(
                item.source.clone()
            ))["sha256-".len()..]
        ),
    }
}

/// Keeps `[A-Za-z0-9._-]`; anything else (or a leading dot, or an overlong
/// id) is replaced and a short hash added so distinct ids stay distinct.
fn safe_file_stem(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == id && !id.starts_with('.') && !id.is_empty() && id.len() <= 100 {
        return clean;
    }
    let hash = shortlist_contract::profile::stable_id(&serde_json::Value::String(id.to_string()));
    let head: String = clean.trim_start_matches('.').chars().take(80).collect();
    let digits = hash.strip_prefix("sha256-").unwrap_or(&hash);
    format!("{head}-{}", &digits[..8.min(digits.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe_and_distinct() {
        assert_eq!(safe_file_stem("s01"), "s01");
        assert_eq!(safe_file_stem("rightmove-123_4.5"), "rightmove-123_4.5");
        let a = safe_file_stem("a/b");
        let b = safe_file_stem("a?b");
        assert!(a.starts_with("a_b-") && b.starts_with("a_b-"));
        assert_ne!(a, b);
        assert!(!safe_file_stem("..").starts_with('.'));
        assert!(!safe_file_stem("../../etc/passwd").contains('/'));
        assert!(safe_file_stem(&"x".repeat(300)).len() < 100);
    }
}
