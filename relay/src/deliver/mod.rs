//! Delivery and its record: an accepted result is sent to every target not
//! yet recorded in the [`Outbox`], one task per (result, target) so a slow
//! notifier never stops the watching, at most [`MAX_CONCURRENT_DELIVERIES`]
//! at once. A task records a confirmed delivery before it reports back, so
//! a relay restarted at any point re-sends only what has no record.
//!
//! When the last target's record is written, the same task writes the
//! result's receipt ([`Receipts`]); the receipts of results that need no
//! delivery (every target had it already, or the policy kept an accepted
//! result back) are written by tasks of their own. The loop's drain waits
//! for all of them alike.
//!
//! [`send`] holds one delivery's attempts and retries; this module owns the
//! tasks.

mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use shortlist_contract::AssessmentResult;
use shortlist_contract::result::now_rfc3339;
use shortlist_shared::secret::Secret;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::identity::webhook_id;
use crate::notifier::{Signer, Target};
use crate::outbox::{DeliveryRecord, Outbox};
use crate::receipt::{ReceiptFor, Receipts};
pub(crate) use send::Outcome;
use send::Sender;

/// Deliveries in flight at once, across results and targets.
const MAX_CONCURRENT_DELIVERIES: usize = 32;

/// Where and how accepted results are delivered.
#[derive(Debug)]
pub(crate) struct Settings {
    /// NOTIFIER_URL's targets, at least one.
    pub(crate) targets: Vec<Target>,
    /// Signs HTTP deliveries (WEBHOOK_SECRET).
    pub(crate) signer: Option<Signer>,
    /// Sent as a bearer token (NOTIFIER_TOKEN), already checked.
    pub(crate) bearer: Option<Secret>,
    /// RELAY_REQUEST_TIMEOUT: one request.
    pub(crate) request_timeout: Duration,
    /// RELAY_DELIVERY_DEADLINE: one result to one target, retries included.
    pub(crate) deadline: Duration,
    /// RELAY_RETRY_BASE_DELAY: the first backoff.
    pub(crate) retry_base_delay: Duration,
    /// RELAY_STATE_DIR: where the outbox keeps its records (exists).
    pub(crate) state_dir: PathBuf,
}

/// The HTTP client could not be built (the relay cannot deliver at all).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(#[source] reqwest::Error);

/// A delivery that ended (after its record was written, when it succeeded).
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    /// It was the last running delivery of its result: the result is
    /// handled now.
    pub(crate) result_done: bool,
}

/// What a task reports.
enum TaskDone {
    /// One delivery ended.
    Delivery(DeliveryDone),
    /// A receipt-only task ended (it logs its own failures).
    Receipt,
}

/// What one delivery task reports.
struct DeliveryDone {
    name: String,
    id: String,
    target: String,
    outcome: Outcome,
    latency: Duration,
}

/// The running deliveries.
pub(crate) struct Deliveries {
    sender: Arc<Sender>,
    targets: Arc<Vec<Target>>,
    outbox: Outbox,
    receipts: Receipts,
    tasks: JoinSet<TaskDone>,
    permits: Arc<Semaphore>,
    /// Deliveries still running, per result file name.
    running: HashMap<String, usize>,
}

impl Deliveries {
    /// `results_dir` is where receipts go, next to the results.
    pub(crate) fn new(settings: Settings, results_dir: PathBuf) -> Result<Self, ClientError> {
        for target in &settings.targets {
            // Which credential goes out, never the credential itself.
            let auth = if target.has_userinfo() {
                "basic (user:pass in NOTIFIER_URL)"
            } else if settings.bearer.is_some() && target.is_http() {
                "bearer (NOTIFIER_TOKEN)"
            } else {
                "none"
            };
            tracing::info!(
                target = %target.display(),
                auth,
                "delivery target"
            );
        }
        let sender = Sender::new(
            settings.targets.iter().any(Target::needs_tls),
            settings.request_timeout,
            settings.deadline,
            settings.retry_base_delay,
            settings.signer,
            settings.bearer,
        )
        .map_err(ClientError)?;
        Ok(Deliveries {
            sender: Arc::new(sender),
            targets: Arc::new(settings.targets),
            outbox: Outbox::new(settings.state_dir),
            receipts: Receipts::new(results_dir),
            tasks: JoinSet::new(),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES)),
            running: HashMap::new(),
        })
    }

    /// Whether no delivery (or receipt write) is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether the result in file `name` has a delivery running.
    pub(crate) fn is_running(&self, name: &str) -> bool {
        self.running.contains_key(name)
    }

    /// Results with a delivery still running.
    pub(crate) fn results_in_flight(&self) -> usize {
        self.running.len()
    }

    /// Starts delivering the result in file `name` (with id `id`) to every
    /// target without a record; returns how many deliveries started (0 when
    /// every target already has it).
    pub(crate) fn start(
        &mut self,
        name: &str,
        id: &str,
        result: AssessmentResult,
        profile: Option<Arc<Value>>,
    ) -> usize {
        let webhook_id = webhook_id(id);
        let result = Arc::new(result);
        let mut started = 0;
        for index in 0..self.targets.len() {
            let target = &self.targets[index];
            if self.outbox.is_delivered(name, &target.key()) {
                tracing::info!(file = %name, %id, target = %target.display(), "already delivered (outbox); not sent again");
                continue;
            }
            started += 1;
            let targets = self.targets.clone();
            let sender = self.sender.clone();
            let outbox = self.outbox.clone();
            let permits = self.permits.clone();
            let result = result.clone();
            let profile = profile.clone();
            let name = name.to_string();
            let id = id.to_string();
            let receipts = self.receipts.clone();
            let receipt_for = ReceiptFor {
                name: name.to_string(),
                id: id.to_string(),
                webhook_id: webhook_id.clone(),
            };
            let webhook_id = webhook_id.clone();
            self.tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let target = &targets[index];
                let started = Instant::now();
                let outcome = sender
                    .deliver(target, &result, profile.as_deref(), &webhook_id)
                    .await;
                if let Outcome::Delivered { status, attempts } = &outcome {
                    let record = DeliveryRecord {
                        webhook_id,
                        target: target.display(),
                        status: *status,
                        attempts: *attempts,
                        delivered_at: now_rfc3339(),
                    };
                    let key = target.key();
                    let all = targets.clone();
                    // Durable (fsyncs), so off the loop's only thread: a
                    // slow disk must not stall watching and other deliveries.
                    let written = tokio::task::spawn_blocking(move || {
                        let recorded = outbox.record(&receipt_for.name, &key, &record);
                        if recorded.is_ok() {
                            // The last target to finish writes the receipt.
                            receipts.write_if_delivered(
                                &outbox,
                                &all,
                                &receipt_for,
                                Some((&key, &record)),
                            );
                        }
                        recorded
                    })
                    .await;
                    report_record(&name, written);
                }
                TaskDone::Delivery(DeliveryDone {
                    name,
                    id,
                    target: target.display(),
                    outcome,
                    latency: started.elapsed(),
                })
            });
        }
        if started > 0 {
            self.running.insert(name.to_string(), started);
        } else if !self.receipts.exists(name) {
            // Delivered everywhere before a restart, and killed before the
            // receipt was written: write it now.
            let receipts = self.receipts.clone();
            let outbox = self.outbox.clone();
            let targets = self.targets.clone();
            let receipt_for = ReceiptFor {
                name: name.to_string(),
                id: id.to_string(),
                webhook_id,
            };
            self.tasks.spawn_blocking(move || {
                receipts.write_if_delivered(&outbox, &targets, &receipt_for, None);
                TaskDone::Receipt
            });
        }
        started
    }

    /// Writes the receipt of an accepted result that is not forwarded
    /// (`reason` says why), so an assessor waiting for it is released.
    pub(crate) fn not_forwarded(&mut self, name: &str, id: &str, reason: String) {
        let receipts = self.receipts.clone();
        let receipt_for = ReceiptFor {
            name: name.to_string(),
            id: id.to_string(),
            webhook_id: webhook_id(id),
        };
        self.tasks.spawn_blocking(move || {
            receipts.write_not_forwarded(&receipt_for, reason);
            TaskDone::Receipt
        });
    }

    /// Waits for the next task to end and logs it: `Some(None)` for a
    /// receipt-only task (so the loop looks at its exit condition again),
    /// `None` when nothing is running. Cancel-safe (used in `select!`).
    pub(crate) async fn next_finished(&mut self) -> Option<Option<Finished>> {
        match self.tasks.join_next().await? {
            Ok(TaskDone::Delivery(done)) => Some(Some(self.finish(done))),
            Ok(TaskDone::Receipt) => Some(None),
            Err(e) => {
                tracing::error!(error = %e, "a delivery task failed");
                Some(None)
            }
        }
    }

    /// Aborts every running delivery (nothing is recorded for them, so a
    /// restarted relay resumes them); returns how many there were.
    pub(crate) fn abandon(&mut self) -> usize {
        let left = self.len();
        self.tasks.abort_all();
        left
    }

    /// The number of deliveries running (receipt-only tasks not counted).
    pub(crate) fn len(&self) -> usize {
        self.running.values().sum()
    }

    fn finish(&mut self, done: DeliveryDone) -> Finished {
        match &done.outcome {
            Outcome::Delivered { status, attempts } => {
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
        let mut result_done = false;
        if let Some(remaining) = self.running.get_mut(&done.name) {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.running.remove(&done.name);
                result_done = true;
            }
        }
        Finished {
            outcome: done.outcome,
            result_done,
        }
    }
}

/// Logs a record that could not be written: the receiver has the message,
/// and a restart would send it again with the same `webhook-id`.
fn report_record(
    name: &str,
    written: Result<Result<(), crate::outbox::RecordError>, tokio::task::JoinError>,
) {
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(file = %name, error = %e, "delivered, but the delivery record could not be written; a restart may deliver again (same webhook-id)")
        }
        Err(e) => {
            tracing::error!(file = %name, error = %e, "delivered, but recording it failed; a restart may deliver again (same webhook-id)")
        }
    }
}
