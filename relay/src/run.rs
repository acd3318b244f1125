//! The relay's event loop, mini-redis style: `run(settings, shutdown)`.
//!
//! Data flows one way: the watcher hints at names ([`watch`]), the settle
//! tracker says when a file is a complete result ([`settle`]), [`decide`]
//! says whether to forward it, and [`deliver`] sends it to every target and
//! records each delivery. This loop only moves results between them and
//! keeps the counts that make the exit code. It ends when `RELAY_EXPECT`
//! results are handled, when the wait for them times out, or on shutdown
//! (SIGTERM), after draining deliveries within `RELAY_DRAIN_TIMEOUT`.
//!
//! [`watch`]: crate::watch
//! [`settle`]: crate::settle
//! [`decide`]: crate::decide
//! [`deliver`]: crate::deliver

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use shortlist_contract::{AssessmentResult, ErrorKind, Verdict};
use tokio::time::Instant;

use crate::config::{Lifetime, Settings};
use crate::decide::{Decision, Policy, Skip, decide};
use crate::deliver::{ClientError, Deliveries, Finished, Outcome};
use crate::exit::Exit;
use crate::identity;
use crate::profile::ProfileFallback;
use crate::settle::{Look, SettleTracker};
use crate::watch::{DirWatcher, Hint};

/// Names looked at per loop turn before the loop yields: a burst of
/// thousands of results is worked through in slices, so deliveries, timers
/// and the shutdown signal get their turn between two slices.
const NAMES_PER_TURN: usize = 64;

/// `now + after`, or a year from now when that overflows: a deadline that
/// far is never reached, and must never panic.
fn deadline_after(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(crate::config::MAX_DURATION))
        .unwrap_or(now)
}

/// Names to look at, each once, in arrival order.
#[derive(Debug, Default)]
struct Backlog {
    order: VecDeque<String>,
    queued: HashSet<String>,
}

impl Backlog {
    fn push(&mut self, name: String) {
        if self.queued.insert(name.clone()) {
            self.order.push_back(name);
        }
    }

    fn pop(&mut self) -> Option<String> {
        let name = self.order.pop_front()?;
        self.queued.remove(&name);
        Some(name)
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}

/// Runs the relay until its work is done or `shutdown` completes; the exit
/// code says how it went. Fails only when it cannot start delivering at all.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<Exit, ClientError> {
    let Settings {
        watch,
        settle_timeout,
        policy,
        profile_path,
        delivery,
        lifetime,
        ..
    } = settings;
    let mut relay = Relay {
        settle: SettleTracker::new(watch.dir(), settle_timeout),
        policy,
        profiles: ProfileFallback::new(profile_path),
        ids: identity::Identity::new(&delivery.state_dir),
        deliveries: Deliveries::new(delivery, watch.dir().to_path_buf())?,
        counts: Counts::default(),
        backlog: Backlog::default(),
    };
    // Start watching before the first scan, so nothing written between
    // the two is missed.
    let watcher = DirWatcher::start(watch);
    Ok(relay.main_loop(watcher, lifetime, shutdown).await)
}

/// Counts for the exit code and the final log line.
#[derive(Debug, Default)]
struct Counts {
    /// Results done with: decided and, if accepted, every delivery ended.
    handled: u64,
    accepted: u64,
    rejected: u64,
    delivered: u64,
    failed_deliveries: u64,
    invalid: u64,
    assessor_errors: u64,
}

impl Counts {
    /// When several apply, the most actionable wins (see [`Exit`]).
    fn exit_code(&self, timed_out: bool) -> Exit {
        if self.failed_deliveries > 0 {
            Exit::DeliveryFailed
        } else if self.invalid > 0 {
            Exit::InvalidResult
        } else if self.assessor_errors > 0 {
            Exit::AssessorError
        } else if timed_out {
            Exit::WaitTimedOut
        } else {
            Exit::Done
        }
    }
}

struct Relay {
    settle: SettleTracker,
    policy: Policy,
    profiles: ProfileFallback,
    ids: identity::Identity,
    deliveries: Deliveries,
    counts: Counts,
    /// Names hinted or listed, not looked at yet.
    backlog: Backlog,
}

impl Relay {
    async fn main_loop(
        &mut self,
        mut watcher: DirWatcher,
        lifetime: Lifetime,
        shutdown: impl Future<Output = ()>,
    ) -> Exit {
        let started = Instant::now();
        self.rescan(&watcher);
        let expect = lifetime.expect;
        let wait_deadline = deadline_after(started, lifetime.wait_timeout);
        let mut timed_out = false;
        let mut stopped = false;
        tokio::pin!(shutdown);
        loop {
            if expect > 0
                && self.counts.handled >= expect
                && self.deliveries.is_empty()
                && self.backlog.is_empty()
            {
                break;
            }
            let settle_at = self.settle.next_deadline();
            // Biased: the shutdown signal first, then what frees resources
            // (finished deliveries), then timers, then new work. No branch
            // can starve the others: new work is taken in bounded slices.
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; stopping the watch and draining deliveries");
                    // The kubelet sends SIGTERM once the assessor has exited:
                    // its result may have landed in the same instant as the
                    // signal, before its event was read. The listing is the
                    // truth, so read it one last time (worked through within
                    // the drain timeout).
                    self.rescan(&watcher);
                    stopped = true;
                    break;
                }
                Some(finished) = self.deliveries.next_finished(), if !self.deliveries.is_empty() => {
                    self.count_delivery(finished);
                }
                _ = tokio::time::sleep_until(wait_deadline), if expect > 0 && self.decided() < expect => {
                    tracing::error!(
                        expected = expect,
                        received = self.decided(),
                        waited_ms = lifetime.wait_timeout.as_millis() as u64,
                        "timed out waiting for results (RELAY_WAIT_TIMEOUT); did the assessor die?"
                    );
                    timed_out = true;
                    break;
                }
                _ = tokio::time::sleep_until(settle_at.unwrap_or(wait_deadline)), if settle_at.is_some() => {
                    for (name, look) in self.settle.recheck_pending() {
                        self.take(&name, look);
                    }
                }
                () = std::future::ready(()), if !self.backlog.is_empty() => {
                    self.work_backlog();
                    // Let delivery tasks, timers and signals run.
                    tokio::task::yield_now().await;
                }
                hint = watcher.next() => match hint {
                    Hint::Rescan => self.rescan(&watcher),
                    Hint::Names(names) => {
                        for name in names {
                            self.backlog.push(name);
                        }
                    }
                },
            }
        }
        drop(watcher);
        self.drain(lifetime.drain_timeout).await;
        if stopped && expect > 0 && self.decided() < expect {
            tracing::error!(
                expected = expect,
                received = self.decided(),
                "shut down before every expected result arrived"
            );
            timed_out = true;
        }
        for (name, error) in self.settle.pending() {
            tracing::error!(file = %name, error = %error, "result file never became valid before the relay stopped");
            self.counts.invalid += 1;
        }
        let exit = self.counts.exit_code(timed_out);
        let counts = &self.counts;
        tracing::info!(
            handled = counts.handled,
            accepted = counts.accepted,
            rejected = counts.rejected,
            delivered = counts.delivered,
            failed_deliveries = counts.failed_deliveries,
            invalid = counts.invalid,
            assessor_errors = counts.assessor_errors,
            exit_code = exit.code(),
            "relay finished"
        );
        exit
    }

    /// Results decided so far (handled, or with deliveries in flight).
    fn decided(&self) -> u64 {
        self.counts.handled + self.deliveries.results_in_flight() as u64
    }

    /// Looks at up to [`NAMES_PER_TURN`] names of the backlog.
    fn work_backlog(&mut self) {
        for _ in 0..NAMES_PER_TURN {
            let Some(name) = self.backlog.pop() else {
                break;
            };
            let look = self.settle.look(&name);
            self.take(&name, look);
        }
    }

    /// Queues every result file in the directory to be looked at (in
    /// slices, by the loop).
    fn rescan(&mut self, watcher: &DirWatcher) {
        match watcher.scan() {
            Ok(names) => {
                for name in names {
                    self.backlog.push(name);
                }
            }
            Err(e) => {
                tracing::error!(dir = %watcher.dir().display(), error = %e, "cannot list the results directory")
            }
        }
    }

    /// Acts on what the settle tracker found in file `name`.
    fn take(&mut self, name: &str, look: Look) {
        match look {
            Look::Ready(result) => self.decide_and_deliver(name, *result),
            Look::Invalid => {
                self.counts.invalid += 1;
                self.counts.handled += 1;
            }
            Look::Revived(result) => {
                // Counted once, as what it finally is.
                self.counts.invalid -= 1;
                self.counts.handled -= 1;
                self.decide_and_deliver(name, *result);
            }
            Look::Pending | Look::Nothing => {}
        }
    }

    fn decide_and_deliver(&mut self, name: &str, result: AssessmentResult) {
        if self.deliveries.is_running(name) {
            // Never two deliveries of one (result, target) at once: the
            // receiver would see the same id twice.
            tracing::warn!(file = %name, "already being delivered; not started again");
            return;
        }
        let decision = decide(&result, &self.policy);
        // PROFILE_PATH is only read for what needs it: the id of a result
        // without one, and what is delivered.
        let profile = if decision == Decision::Forward || identity::own_id(&result).is_none() {
            self.profiles.for_result(&result)
        } else {
            None
        };
        let id = self.ids.result_id(name, &result, profile.as_deref());
        match decision {
            Decision::AssessorError { kind, message } => {
                tracing::warn!(
                    file = %name,
                    %id,
                    kind = kind.as_ref().map_or("unknown", ErrorKind::as_str),
                    message = message.as_deref().unwrap_or(""),
                    "the assessor reported an error; nothing to deliver"
                );
                self.counts.assessor_errors += 1;
                self.counts.handled += 1;
            }
            Decision::Skip(Skip::NotAccepted { verdict }) => {
                tracing::info!(file = %name, %id, verdict = verdict.map(Verdict::as_str).unwrap_or("null"), "not accepted; not forwarded");
                self.counts.rejected += 1;
                self.counts.handled += 1;
            }
            Decision::Skip(Skip::BelowMinScore { score, min_score }) => {
                tracing::info!(file = %name, %id, score, min_score, "accepted, but below RELAY_MIN_SCORE; not forwarded");
                // The assessor may be waiting for this result's receipt.
                self.deliveries.not_forwarded(
                    name,
                    &id,
                    format!("score {score} is below RELAY_MIN_SCORE {min_score}"),
                );
                self.counts.rejected += 1;
                self.counts.handled += 1;
            }
            Decision::Forward => {
                self.counts.accepted += 1;
                if self.deliveries.start(name, &id, result, profile) == 0 {
                    // Every target has it already (a restart).
                    self.counts.handled += 1;
                }
            }
        }
    }

    fn count_delivery(&mut self, finished: Option<Finished>) {
        let Some(finished) = finished else {
            return;
        };
        match finished.outcome {
            Outcome::Delivered { .. } => self.counts.delivered += 1,
            Outcome::Failed { .. } => self.counts.failed_deliveries += 1,
        }
        if finished.result_done {
            self.counts.handled += 1;
        }
    }

    /// Lets in-flight deliveries finish within `timeout`, and works
    /// through what is left of the backlog (the final listing's results)
    /// in the same time; what is left then is aborted and counted as failed
    /// (the outbox has no record of it, so a restarted relay resumes it).
    async fn drain(&mut self, timeout: Duration) {
        if self.deliveries.is_empty() && self.backlog.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = self.deliveries.len(),
            backlog = self.backlog.len(),
            timeout_ms = timeout.as_millis() as u64,
            "draining deliveries"
        );
        let deadline = deadline_after(Instant::now(), timeout);
        loop {
            if self.deliveries.is_empty() && self.backlog.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => {
                    let left = self.deliveries.abandon();
                    if left > 0 {
                        tracing::error!(
                            in_flight = left,
                            "drain timeout (RELAY_DRAIN_TIMEOUT): deliveries abandoned; a restart resumes them"
                        );
                    }
                    if !self.backlog.is_empty() {
                        tracing::error!(
                            not_looked_at = self.backlog.len(),
                            "drain timeout (RELAY_DRAIN_TIMEOUT): results not read before stopping; a restart reads them"
                        );
                    }
                    self.counts.failed_deliveries += left as u64;
                    break;
                }
                Some(finished) = self.deliveries.next_finished(), if !self.deliveries.is_empty() => {
                    self.count_delivery(finished);
                }
                () = std::future::ready(()), if !self.backlog.is_empty() => {
                    self.work_backlog();
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_actionable_exit_code_wins() {
        let counts = |failed, invalid, errors| Counts {
            failed_deliveries: failed,
            invalid,
            assessor_errors: errors,
            ..Counts::default()
        };
        assert_eq!(counts(0, 0, 0).exit_code(false), Exit::Done);
        assert_eq!(counts(0, 0, 0).exit_code(true), Exit::WaitTimedOut);
        assert_eq!(counts(0, 0, 1).exit_code(true), Exit::AssessorError);
        assert_eq!(counts(0, 1, 1).exit_code(true), Exit::InvalidResult);
        assert_eq!(counts(1, 1, 1).exit_code(true), Exit::DeliveryFailed);
        assert_eq!(counts(1, 0, 0).exit_code(false), Exit::DeliveryFailed);
    }
}
