//! The relay's event loop, mini-redis style: `run(settings, shutdown)`.
//!
//! Files are looked at when the watcher hints at them (or on a rescan); a
//! file is *handled* once it parses as a result and is decided: rejections
//! and error results are logged and counted, accepted ones are delivered to
//! every target not yet recorded in the outbox. Deliveries run as tasks so a
//! slow notifier never stops the watching. The loop ends when
//! `RELAY_EXPECT` results are handled, when the wait for them times out, or
//! on shutdown (SIGTERM), after draining deliveries within
//! `RELAY_DRAIN_TIMEOUT`.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use shortlist_shared::result::now_rfc3339;
use shortlist_shared::{AssessmentResult, Status, Verdict};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Settings, Watch};
use crate::deliver::{Deliverer, Outcome};
use crate::exit::Exit;
use crate::outbox::{DeliveryRecord, Outbox};
use crate::sink::Target;
use crate::watch::{DirWatcher, Hint, list_names};

/// Deliveries in flight at once, across results and targets.
const MAX_CONCURRENT_DELIVERIES: usize = 32;

/// Result files larger than this are invalid without parsing.
const MAX_RESULT_BYTES: u64 = 32 * 1024 * 1024;

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
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }
}

#[derive(Debug)]
enum FileState {
    /// Seen, but not (yet) a complete result.
    Unsettled {
        fingerprint: Fingerprint,
        since: Instant,
        error: String,
    },
    /// Decided; later changes are ignored.
    Handled { fingerprint: Fingerprint },
}

/// Counts for the exit code and the final log line.
#[derive(Debug, Default)]
struct Stats {
    handled: u64,
    accepted: u64,
    rejected: u64,
    delivered: u64,
    failed_deliveries: u64,
    invalid: u64,
    assessor_errors: u64,
}

/// An accepted result whose deliveries are in flight.
struct Pending {
    remaining: usize,
}

/// What a delivery task reports.
struct TaskDone {
    name: String,
    id: String,
    target: String,
    outcome: Outcome,
    latency: Duration,
}

/// Runs the relay until its work is done or `shutdown` completes.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Exit {
    let deliverer = match Deliverer::new(
        settings.targets.iter().any(Target::needs_tls),
        settings.request_timeout,
        settings.delivery_deadline,
        settings.retry_base_delay,
        settings.signer.clone(),
        settings.bearer.clone(),
    ) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("relay: cannot build the HTTP client: {e}");
            return Exit::Usage;
        }
    };
    // A profile mounted in the watched directory is not a result.
    let profile_name = settings.profile_path.as_ref().and_then(|p| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let same_dir =
            std::fs::canonicalize(dir).ok()? == std::fs::canonicalize(settings.watch.dir()).ok()?;
        same_dir.then(|| p.file_name()?.to_str().map(str::to_string))?
    });
    let mut relay = Relay {
        profile_name,
        watch: settings.watch.clone(),
        outbox: Outbox::new(&settings.state_dir),
        targets: Arc::new(settings.targets.clone()),
        deliverer,
        profile_path: settings.profile_path.clone(),
        fallback_profile: None,
        min_score: settings.min_score,
        settle_timeout: settings.settle_timeout,
        files: HashMap::new(),
        pending: HashMap::new(),
        tasks: JoinSet::new(),
        permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES)),
        stats: Stats::default(),
    };
    relay.main_loop(&settings, shutdown).await
}

struct Relay {
    /// The name of PROFILE_PATH when it sits in the watched directory.
    profile_name: Option<String>,
    watch: Watch,
    outbox: Outbox,
    targets: Arc<Vec<Target>>,
    deliverer: Arc<Deliverer>,
    profile_path: Option<PathBuf>,
    fallback_profile: Option<Arc<Value>>,
    min_score: Option<f64>,
    settle_timeout: Duration,
    files: HashMap<String, FileState>,
    pending: HashMap<String, Pending>,
    tasks: JoinSet<TaskDone>,
    permits: Arc<Semaphore>,
    stats: Stats,
}

impl Relay {
    async fn main_loop(&mut self, settings: &Settings, shutdown: impl Future<Output = ()>) -> Exit {
        let started = Instant::now();
        // Start watching before the first scan, so nothing written between
        // the two is missed.
        let mut watcher = DirWatcher::start(self.watch.dir(), settings.poll_interval);
        self.rescan();
        let expect = settings.expect;
        let wait_deadline = started + settings.wait_timeout;
        let mut timed_out = false;
        tokio::pin!(shutdown);
        loop {
            if expect > 0 && self.stats.handled >= expect && self.tasks.is_empty() {
                break;
            }
            let settle_at = self.next_settle_deadline();
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; stopping the watch and draining deliveries");
                    // The kubelet sends SIGTERM once the assessor has exited:
                    // its result may have landed in the same instant as the
                    // signal, before its event was read. The listing is the
                    // truth, so read it one last time.
                    self.rescan();
                    if expect > 0 && self.decided() < expect {
                        tracing::error!(expected = expect, received = self.decided(), "shut down before every expected result arrived");
                        timed_out = true;
                    }
                    break;
                }
                hint = watcher.next() => match hint {
                    Hint::Rescan => self.rescan(),
                    Hint::Names(names) => {
                        for name in names {
                            self.check(&name, false);
                        }
                    }
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match joined {
                        Ok(done) => self.finish_delivery(done),
                        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
                    }
                }
                _ = tokio::time::sleep_until(settle_at.unwrap_or(wait_deadline)), if settle_at.is_some() => {
                    self.recheck_unsettled();
                }
                _ = tokio::time::sleep_until(wait_deadline), if expect > 0 && self.decided() < expect => {
                    tracing::error!(
                        expected = expect,
                        received = self.decided(),
                        waited_ms = settings.wait_timeout.as_millis() as u64,
                        "timed out waiting for results (RELAY_WAIT_TIMEOUT); did the assessor die?"
                    );
                    timed_out = true;
                    break;
                }
            }
        }
        drop(watcher);
        self.drain(settings.drain_timeout).await;
        self.report_unsettled();
        let exit = self.exit_code(timed_out);
        tracing::info!(
            handled = self.stats.handled,
            accepted = self.stats.accepted,
            rejected = self.stats.rejected,
            delivered = self.stats.delivered,
            failed_deliveries = self.stats.failed_deliveries,
            invalid = self.stats.invalid,
            assessor_errors = self.stats.assessor_errors,
            exit_code = exit.code(),
            "relay finished"
        );
        exit
    }

    /// Results decided so far (handled, or with deliveries in flight).
    fn decided(&self) -> u64 {
        self.stats.handled + self.pending.len() as u64
    }

    fn exit_code(&self, timed_out: bool) -> Exit {
        if self.stats.failed_deliveries > 0 {
            Exit::DeliveryFailed
        } else if self.stats.invalid > 0 {
            Exit::InvalidResult
        } else if self.stats.assessor_errors > 0 {
            Exit::AssessorError
        } else if timed_out {
            Exit::WaitTimedOut
        } else {
            Exit::Done
        }
    }

    /// Lists the directory: the truth, whatever the events said.
    fn rescan(&mut self) {
        match list_names(self.watch.dir()) {
            Ok(names) => {
                for name in names {
                    self.check(&name, false);
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.watch.dir().display(), error = %e, "cannot list the results directory")
            }
        }
    }

    fn next_settle_deadline(&self) -> Option<Instant> {
        self.files
            .values()
            .filter_map(|state| match state {
                FileState::Unsettled { since, .. } => Some(*since + self.settle_timeout),
                FileState::Handled { .. } => None,
            })
            .min()
    }

    fn recheck_unsettled(&mut self) {
        let names: Vec<String> = self
            .files
            .iter()
            .filter(|(_, s)| matches!(s, FileState::Unsettled { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            self.check(&name, true);
        }
    }

    /// At exit, files that never became results are reported, not forgotten.
    fn report_unsettled(&mut self) {
        for (name, state) in &self.files {
            if let FileState::Unsettled { error, .. } = state {
                tracing::error!(file = %name, error = %error, "result file never became valid before the relay stopped");
                self.stats.invalid += 1;
            }
        }
    }

    /// Looks at one name: reads it if it is new or changed, decides it once
    /// it parses. `force` re-reads an unchanged unsettled file (settle timer).
    fn check(&mut self, name: &str, force: bool) {
        if !self.watch.wants(name) || self.profile_name.as_deref() == Some(name) {
            return;
        }
        let path = self.watch.dir().join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return,
            Err(_) => {
                // Gone (renamed away, or a temp name): forget a half-written state.
                if matches!(self.files.get(name), Some(FileState::Unsettled { .. })) {
                    self.files.remove(name);
                }
                return;
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
                return;
            }
            Some(FileState::Unsettled {
                fingerprint: old,
                since,
                ..
            }) => {
                if *old == fingerprint && !force {
                    return;
                }
                Some(*since)
            }
            None => None,
        };
        let parsed = if meta.len() > MAX_RESULT_BYTES {
            Err(format!(
                "is {} bytes, larger than the {MAX_RESULT_BYTES}-byte limit",
                meta.len()
            ))
        } else {
            std::fs::read(&path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|bytes| {
                    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                        Err("is empty".to_string())
                    } else {
                        serde_json::from_slice::<AssessmentResult>(&bytes)
                            .map_err(|e| format!("is not a valid result: {e}"))
                    }
                })
        };
        match parsed {
            Ok(result) => {
                self.files
                    .insert(name.to_string(), FileState::Handled { fingerprint });
                self.decide(name, result);
            }
            Err(error) => {
                let now = Instant::now();
                let since = since.unwrap_or(now);
                if now.duration_since(since) >= self.settle_timeout {
                    tracing::error!(
                        file = %name,
                        error = %error,
                        settle_ms = self.settle_timeout.as_millis() as u64,
                        "invalid result: still unparsable after RELAY_SETTLE_TIMEOUT"
                    );
                    self.stats.invalid += 1;
                    self.stats.handled += 1;
                    self.files
                        .insert(name.to_string(), FileState::Handled { fingerprint });
                } else {
                    tracing::debug!(file = %name, error = %error, "result not complete yet; waiting for more writes");
                    self.files.insert(
                        name.to_string(),
                        FileState::Unsettled {
                            fingerprint,
                            since,
                            error,
                        },
                    );
                }
            }
        }
    }

    /// Decides a parsed result: forward, or log and count.
    fn decide(&mut self, name: &str, result: AssessmentResult) {
        let id = match &result.id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ => self.derived_id(name, &result),
        };
        if result.effective_status() == Status::Error {
            let error = result.error.clone().flatten();
            tracing::warn!(
                file = %name,
                %id,
                kind = error.as_ref().map(|e| e.kind.as_str()).unwrap_or("unknown"),
                message = error.as_ref().map(|e| e.message.as_str()).unwrap_or(""),
                "the assessor reported an error; nothing to deliver"
            );
            self.stats.assessor_errors += 1;
            self.stats.handled += 1;
            return;
        }
        match result.verdict {
            Some(Verdict::Accept) => {}
            other => {
                tracing::info!(file = %name, %id, verdict = other.map(Verdict::as_str).unwrap_or("null"), "not accepted; not forwarded");
                self.stats.rejected += 1;
                self.stats.handled += 1;
                return;
            }
        }
        if let (Some(min), Some(score)) = (self.min_score, result.score) {
            if score < min {
                tracing::info!(file = %name, %id, score, min_score = min, "accepted, but below RELAY_MIN_SCORE; not forwarded");
                self.stats.rejected += 1;
                self.stats.handled += 1;
                return;
            }
        }
        self.stats.accepted += 1;
        let profile = match &result.profile {
            Some(p) if !p.is_null() => Some(Arc::new(p.clone())),
            _ => self.fallback_profile(),
        };
        let webhook_id = webhook_id(&id);
        let result = Arc::new(result);
        let mut spawned = 0;
        for index in 0..self.targets.len() {
            let target = &self.targets[index];
            if self.outbox.is_delivered(name, &target.key()) {
                tracing::info!(file = %name, %id, target = %target.display(), "already delivered (outbox); not sent again");
                continue;
            }
            spawned += 1;
            let targets = self.targets.clone();
            let deliverer = self.deliverer.clone();
            let outbox = self.outbox.clone();
            let permits = self.permits.clone();
            let result = result.clone();
            let profile = profile.clone();
            let name = name.to_string();
            let id = id.clone();
            let webhook_id = webhook_id.clone();
            self.tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let target = &targets[index];
                let started = Instant::now();
                let outcome = deliverer
                    .deliver(target, &result, profile.as_deref(), &webhook_id)
                    .await;
                if let Outcome::Delivered { status, attempts } = &outcome {
                    let record = DeliveryRecord {
                        webhook_id: webhook_id.clone(),
                        target: target.display(),
                        status: *status,
                        attempts: *attempts,
                        delivered_at: now_rfc3339(),
                    };
                    // Durable (two fsyncs), so off the loop's only thread: a
                    // slow disk must not stall watching and other deliveries.
                    let (record_name, key) = (name.clone(), target.key());
                    let written = tokio::task::spawn_blocking(move || outbox.record(&record_name, &key, &record)).await;
                    match written {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(file = %name, error = %e, "delivered, but the delivery record could not be written; a restart may deliver again (same webhook-id)"),
                        Err(e) => tracing::error!(file = %name, error = %e, "delivered, but recording it failed; a restart may deliver again (same webhook-id)"),
                    }
                }
                TaskDone {
                    name,
                    id,
                    target: target.display(),
                    outcome,
                    latency: started.elapsed(),
                }
            });
        }
        if spawned == 0 {
            self.stats.handled += 1;
        } else {
            self.pending
                .insert(name.to_string(), Pending { remaining: spawned });
        }
    }

    /// An id for a result that carries none (a minimal custom assessor's):
    /// the assessor's own rule applied to the profile (`metadata.id`, else a
    /// hash of it), so results for different profiles never share a
    /// `webhook-id`; without any profile, the file name and a hash of the
    /// result itself.
    fn derived_id(&mut self, name: &str, result: &AssessmentResult) -> String {
        let profile = match &result.profile {
            Some(p) if !p.is_null() => Some(Arc::new(p.clone())),
            _ => self.fallback_profile(),
        };
        match profile {
            Some(profile) => shortlist_shared::profile::stable_id(&profile),
            None => {
                let canonical = serde_json::to_vec(result).unwrap_or_default();
                let digest = Sha256::digest(&canonical);
                let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("{}-{hex}", name.trim_end_matches(".json"))
            }
        }
    }

    fn fallback_profile(&mut self) -> Option<Arc<Value>> {
        if let Some(p) = &self.fallback_profile {
            return Some(p.clone());
        }
        let path = self.profile_path.as_ref()?;
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(profile) => {
                let profile = Arc::new(profile);
                self.fallback_profile = Some(profile.clone());
                Some(profile)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "cannot read PROFILE_PATH; delivering without the profile");
                None
            }
        }
    }

    fn finish_delivery(&mut self, done: TaskDone) {
        match &done.outcome {
            Outcome::Delivered { status, attempts } => {
                self.stats.delivered += 1;
                tracing::info!(
                    file = %done.name,
                    id = %done.id,
                    verdict = "accept",
                    target = %done.target,
                    status,
                    attempts,
                    latency_ms = done.latency.as_millis() as u64,
                    "delivered"
                );
            }
            Outcome::Failed { reason, attempts } => {
                self.stats.failed_deliveries += 1;
                tracing::error!(
                    file = %done.name,
                    id = %done.id,
                    verdict = "accept",
                    target = %done.target,
                    attempts,
                    latency_ms = done.latency.as_millis() as u64,
                    reason = %reason,
                    "delivery failed"
                );
            }
        }
        if let Some(pending) = self.pending.get_mut(&done.name) {
            pending.remaining = pending.remaining.saturating_sub(1);
            if pending.remaining == 0 {
                self.pending.remove(&done.name);
                self.stats.handled += 1;
            }
        }
    }

    /// Lets in-flight deliveries finish within `timeout`; what is left is
    /// aborted and counted as failed (the outbox has no record of it, so a
    /// restarted relay would resume it).
    async fn drain(&mut self, timeout: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = self.tasks.len(),
            timeout_ms = timeout.as_millis() as u64,
            "draining deliveries"
        );
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(done))) => self.finish_delivery(done),
                Ok(Some(Err(e))) => tracing::error!(error = %e, "a delivery task failed"),
                Ok(None) => break,
                Err(_) => {
                    let left = self.tasks.len();
                    self.tasks.abort_all();
                    tracing::error!(
                        in_flight = left,
                        "drain timeout (RELAY_DRAIN_TIMEOUT): deliveries abandoned; a restart resumes them"
                    );
                    self.stats.failed_deliveries += left as u64;
                    break;
                }
            }
        }
    }
}

/// The Standard Webhooks `webhook-id` of a result: derived from its id only,
/// so every attempt, every restart and every target see the same key.
pub fn webhook_id(result_id: &str) -> String {
    let digest = Sha256::digest(format!("shortlist-result:{result_id}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_are_stable_and_distinct() {
        assert_eq!(webhook_id("s01"), webhook_id("s01"));
        assert_ne!(webhook_id("s01"), webhook_id("s02"));
        assert!(webhook_id("s01").starts_with("msg_"));
        assert_eq!(webhook_id("s01").len(), 4 + 32);
    }
}
