//! Writing delivery receipts (`<result>.receipt`, see
//! `shortlist_contract::receipt`): once every target has a record of an
//! accepted result in the outbox, or the policy kept it back, the relay says
//! so next to the result, where an assessor waiting with
//! `ASSESSOR_AWAIT_DELIVERY` looks for it.
//!
//! A receipt is built from the outbox's records, not from what this process
//! remembers, so one relay that delivered to one target and a restarted one
//! that delivered to the other still write a complete receipt, and a relay
//! killed between the last record and the receipt writes it on restart.

use std::path::PathBuf;

use shortlist_contract::atomic::{Durability, WriteError, write_atomic_with};
use shortlist_contract::receipt::{
    RECEIPT_VERSION, Receipt, ReceiptDelivery, ReceiptOutcome, receipt_name,
};
use shortlist_contract::result::now_rfc3339;

use crate::notifier::Target;
use crate::outbox::{DeliveryRecord, Outbox};

/// Where receipts go: the results directory.
#[derive(Debug, Clone)]
pub(crate) struct Receipts {
    dir: PathBuf,
}

/// The result a receipt is about.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptFor {
    /// The result's file name.
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) webhook_id: String,
}

impl Receipts {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Receipts { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(receipt_name(name))
    }

    /// Writes the `delivered` receipt when every target has a record, and
    /// says whether it did. `just_recorded` is the record this caller has
    /// just written (for that target, not read back). Blocking.
    pub(crate) fn write_if_delivered(
        &self,
        outbox: &Outbox,
        targets: &[Target],
        result: &ReceiptFor,
        just_recorded: Option<(&str, &DeliveryRecord)>,
    ) -> bool {
        let mut deliveries = Vec::with_capacity(targets.len());
        for target in targets {
            let key = target.key();
            let record = match just_recorded {
                Some((recorded_key, record)) if recorded_key == key => record.clone(),
                _ => match outbox.read(&result.name, &key) {
                    Some(record) => record,
                    None => return false,
                },
            };
            deliveries.push(ReceiptDelivery {
                target: record.target,
                status: record.status,
                attempts: record.attempts,
                delivered_at: record.delivered_at,
            });
        }
        let receipt = Receipt {
            receipt_version: RECEIPT_VERSION,
            result: result.name.clone(),
            id: result.id.clone(),
            webhook_id: result.webhook_id.clone(),
            outcome: ReceiptOutcome::Delivered,
            reason: None,
            deliveries,
            written_at: now_rfc3339(),
        };
        self.write(&result.name, &receipt);
        true
    }

    /// Writes the `not_forwarded` receipt of an accepted result the policy
    /// kept back. Blocking.
    pub(crate) fn write_not_forwarded(&self, result: &ReceiptFor, reason: String) {
        let receipt = Receipt {
            receipt_version: RECEIPT_VERSION,
            result: result.name.clone(),
            id: result.id.clone(),
            webhook_id: result.webhook_id.clone(),
            outcome: ReceiptOutcome::NotForwarded,
            reason: Some(reason),
            deliveries: Vec::new(),
            written_at: now_rfc3339(),
        };
        self.write(&result.name, &receipt);
    }

    /// Whether the result in file `name` has a receipt.
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// Atomic (temp file + rename) but not fsynced: a receipt is read by a
    /// process on the same machine while the relay runs, which sees it at
    /// once; after a machine crash, the relay rewrites a lost receipt on
    /// restart from the outbox's records (which are fsynced). Two fsyncs
    /// per result would double the relay's cost in a burst.
    ///
    /// A receipt that cannot be written is logged: the notifier has the
    /// message, but an assessor waiting for the receipt will time out (exit
    /// 6) and a retried pod delivers again, with the same `webhook-id`.
    fn write(&self, name: &str, receipt: &Receipt) {
        let path = self.path(name);
        match write_atomic_with(&path, &receipt.to_bytes(), Durability::Deferred) {
            Ok(()) => tracing::debug!(file = %name, receipt = %path.display(), "receipt written"),
            Err(error) => report(name, &error),
        }
    }
}

fn report(name: &str, error: &WriteError) {
    tracing::error!(
        file = %name,
        error = %error,
        "cannot write the delivery receipt; an assessor awaiting it will exit 6 and its retry delivers again (same webhook-id)"
    );
}
