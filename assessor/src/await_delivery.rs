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
    /// The first receipt missing.
    receipt: PathBuf,
    waited: Duration,
    /// How many more are missing, and what was wrong with what was found,
    /// if anything (`; …`).
    problem: String,
}

/// An accepted result whose receipt is awaited.
#[derive(Debug, Clone)]
pub(crate) struct Awaited {
    /// The result file.
    pub(crate) result: PathBuf,
    /// Its id, when it has one: a receipt for another id does not count.
    pub(crate) id: Option<String>,
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
    let awaited = [Awaited {
        result: result_path.to_path_buf(),
        id: result_id.map(str::to_string),
    }];
    let mut found = await_receipts(&awaited, timeout).await?;
    Ok(found.pop().expect("one receipt per awaited result"))
}

/// Waits up to `timeout`, all together, for the receipts of every result in
/// `awaited` (a batch's accepted results); their receipts, in order.
pub(crate) async fn await_receipts(
    awaited: &[Awaited],
    timeout: Duration,
) -> Result<Vec<Receipt>, NotConfirmed> {
    let paths: Vec<PathBuf> = awaited.iter().map(|a| receipt_path(&a.result)).collect();
    if let Some(first) = paths.first() {
        tracing::info!(
            receipt = %first.display(),
            results = awaited.len(),
            timeout_ms = timeout.as_millis() as u64,
            "accepted; waiting for the relay's delivery receipt"
        );
    }
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    let mut found: Vec<Option<Receipt>> = vec![None; awaited.len()];
    let mut problem = None;
    loop {
        for ((slot, awaited), path) in found.iter_mut().zip(awaited).zip(&paths) {
            if slot.is_some() {
                continue;
            }
            match Receipt::read(path) {
                Ok(Some(receipt)) if awaited.id.as_deref().is_none_or(|id| id == receipt.id) => {
                    tracing::info!(
                        receipt = %path.display(),
                        outcome = ?receipt.outcome,
                        targets = receipt.deliveries.len(),
                        webhook_id = %receipt.webhook_id,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "delivery confirmed"
                    );
                    *slot = Some(receipt);
                }
                Ok(Some(receipt)) => {
                    problem = Some(format!(
                        "{}: the receipt there is for another result (id {:?})",
                        path.display(),
                        receipt.id
                    ));
                }
                Ok(None) => {}
                Err(error) => problem = Some(error.to_string()),
            }
        }
        let missing: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        let Some(&first) = missing.first() else {
            return Ok(found.into_iter().flatten().collect());
        };
        let now = Instant::now();
        let left = deadline.map_or(POLL_INTERVAL, |deadline| {
            deadline.saturating_duration_since(now)
        });
        if left.is_zero() {
            let mut notes = Vec::new();
            if missing.len() > 1 {
                notes.push(format!("{} more missing", missing.len() - 1));
            }
            notes.extend(problem);
            return Err(NotConfirmed {
                receipt: paths[first].clone(),
                waited: timeout,
                problem: notes.iter().map(|n| format!("; {n}")).collect(),
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
    async fn a_batch_waits_for_every_receipt_and_names_the_missing() {
        let dir = tempfile::tempdir().unwrap();
        let awaited: Vec<Awaited> = ["a", "b", "c"]
            .iter()
            .map(|id| Awaited {
                result: dir.path().join(format!("{id}.json")),
                id: Some(id.to_string()),
            })
            .collect();
        std::fs::write(receipt_path(&awaited[0].result), receipt("a").to_bytes()).unwrap();
        let error = await_receipts(&awaited, Duration::from_secs(3))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("b.json.receipt"), "{error}");
        assert!(error.contains("1 more missing"), "{error}");
        for id in ["b", "c"] {
            let path = receipt_path(&dir.path().join(format!("{id}.json")));
            std::fs::write(path, receipt(id).to_bytes()).unwrap();
        }
        let found = await_receipts(&awaited, Duration::from_secs(3))
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(
            await_receipts(&[], Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
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
