//! `ASSESSOR_AWAIT_DELIVERY`: after writing an accepted result, wait for the
//! relay's receipt (`<RESULT_PATH>.receipt`, see
//! `shortlist_contract::receipt`) and report exit 6 when it does not come.
//!
//! Why: in a Job whose relay is a native sidecar, the pod succeeds as soon
//! as the assessor exits 0. A notifier that is down past the relay's drain
//! would lose the accepted verdict with the pod's `emptyDir`. Waiting here
//! turns "not delivered" into a failed pod, which the Job retries; the new
//! pod's relay delivers with the same `webhook-id`.
//!
//! The receipt is polled, not watched: a stat every [`POLL_INTERVAL`] costs
//! nothing, and works on every volume (inotify does not on NFS or FUSE).

use std::path::{Path, PathBuf};
use std::time::Duration;

use shortlist_contract::receipt::{Receipt, receipt_path};
use tokio::time::Instant;

/// How often the receipt is looked for.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The receipt did not come in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "delivery not confirmed: no receipt at {receipt} within {waited:?} (ASSESSOR_AWAIT_DELIVERY){problem}; \
     the result is written, and a retry delivers it again with the same webhook-id"
)]
pub(crate) struct NotConfirmed {
    receipt: PathBuf,
    waited: Duration,
    /// What was wrong with what was found, if anything (`; …`).
    problem: String,
}

/// Removes a receipt left from an earlier result at this path, so only a
/// receipt for the result about to be written ends the wait. A receipt
/// that cannot be removed is checked against the result's id instead.
pub(crate) fn forget_old_receipt(result_path: &Path) {
    let path = receipt_path(result_path);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(receipt = %path.display(), "removed the receipt of an earlier result")
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(receipt = %path.display(), error = %error, "cannot remove an earlier receipt")
        }
    }
}

/// Waits up to `timeout` for the receipt of the result at `result_path`
/// (whose id is `result_id`, when it has one).
pub(crate) async fn await_receipt(
    result_path: &Path,
    result_id: Option<&str>,
    timeout: Duration,
) -> Result<Receipt, NotConfirmed> {
    let path = receipt_path(result_path);
    tracing::info!(
        receipt = %path.display(),
        timeout_ms = timeout.as_millis() as u64,
        "accepted; waiting for the relay's delivery receipt"
    );
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    let mut problem = None;
    loop {
        match Receipt::read(&path) {
            Ok(Some(receipt)) if result_id.is_none_or(|id| id == receipt.id) => {
                tracing::info!(
                    receipt = %path.display(),
                    outcome = ?receipt.outcome,
                    targets = receipt.deliveries.len(),
                    webhook_id = %receipt.webhook_id,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "delivery confirmed"
                );
                return Ok(receipt);
            }
            Ok(Some(receipt)) => {
                problem = Some(format!(
                    "the receipt there is for another result (id {:?})",
                    receipt.id
                ));
            }
            Ok(None) => {}
            Err(error) => problem = Some(error.to_string()),
        }
        let now = Instant::now();
        let left = deadline.map_or(POLL_INTERVAL, |deadline| {
            deadline.saturating_duration_since(now)
        });
        if left.is_zero() {
            return Err(NotConfirmed {
                receipt: path,
                waited: timeout,
                problem: problem.map(|p| format!("; {p}")).unwrap_or_default(),
            });
        }
        tokio::time::sleep(left.min(POLL_INTERVAL)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shortlist_contract::receipt::{RECEIPT_VERSION, ReceiptOutcome};

    fn receipt(id: &str) -> Receipt {
        Receipt {
            receipt_version: RECEIPT_VERSION,
            result: "r.json".into(),
            id: id.into(),
            webhook_id: "msg_x".into(),
            outcome: ReceiptOutcome::Delivered,
            reason: None,
            deliveries: Vec::new(),
            written_at: "2026-12-04T00:00:00Z".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_receipt_means_not_confirmed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        let started = Instant::now();
        let error = await_receipt(&result, Some("a"), Duration::from_secs(90))
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(90));
        let text = error.to_string();
        assert!(text.contains("r.json.receipt"), "{text}");
        assert!(text.contains("ASSESSOR_AWAIT_DELIVERY"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_receipt_that_appears_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        let receipt_file = receipt_path(&result);
        let write = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            std::fs::write(&receipt_file, receipt("a").to_bytes()).unwrap();
        };
        let started = Instant::now();
        let (found, ()) = tokio::join!(
            await_receipt(&result, Some("a"), Duration::from_secs(60)),
            write
        );
        assert_eq!(found.unwrap(), receipt("a"));
        assert!(started.elapsed() <= Duration::from_secs(5) + POLL_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_receipt_for_another_result_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        std::fs::write(receipt_path(&result), receipt("old").to_bytes()).unwrap();
        let error = await_receipt(&result, Some("new"), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("another result"), "{error}");
        // Removing it leaves the way clear.
        forget_old_receipt(&result);
        assert!(!receipt_path(&result).exists());
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_timeout_does_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        std::fs::write(receipt_path(&result), receipt("a").to_bytes()).unwrap();
        let found = await_receipt(&result, None, Duration::MAX).await.unwrap();
        assert_eq!(found.id, "a");
    }
}
