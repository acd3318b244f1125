//! The durable outbox: a record per (result, target) written atomically after
//! the target answered 2xx (or the line was appended). On start, and before
//! every delivery, a recorded pair is skipped, so a relay restarted after
//! `kill -9` (a native sidecar is restarted by the kubelet; the `emptyDir`
//! survives) never notifies twice, and resumes what it had not finished.
//!
//! Records live in a hidden directory beside the results (`.relay/` by
//! default), named `<result file>.<target key>.delivered`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shortlist_contract::atomic::{WriteError, write_atomic};

/// What is recorded about one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    /// The idempotency key the receiver saw.
    pub(crate) webhook_id: String,
    /// The target, as safe to log (no secrets).
    pub(crate) target: String,
    /// The HTTP status (0 for file and stdout targets).
    pub(crate) status: u16,
    /// Attempts it took.
    pub(crate) attempts: u32,
    /// When the delivery was confirmed, RFC 3339.
    pub(crate) delivered_at: String,
}

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("cannot serialise the delivery record: {0}")]
    Serialise(#[from] serde_json::Error),
    /// Names the record's path.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The records in one directory.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Outbox { dir: dir.into() }
    }

    fn record_path(&self, result_name: &str, target_key: &str) -> PathBuf {
        self.dir.join(record_name(result_name, target_key))
    }

    /// Whether this result was already delivered to this target.
    pub(crate) fn is_delivered(&self, result_name: &str, target_key: &str) -> bool {
        self.record_path(result_name, target_key).is_file()
    }

    /// The record of this result's delivery to this target, if there is a
    /// readable one. Records are the relay's own small files; one that is
    /// not a regular file, is over 64 KiB or does not parse is as good as
    /// none (the receipt then waits, and a restart re-delivers).
    pub(crate) fn read(&self, result_name: &str, target_key: &str) -> Option<DeliveryRecord> {
        use std::io::Read;
        let path = self.record_path(result_name, target_key);
        // Checked before opening too: opening a FIFO would block.
        if !std::fs::metadata(&path).ok()?.is_file() {
            return None;
        }
        let file = std::fs::File::open(&path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// Records a confirmed delivery, atomically and durably.
    pub(crate) fn record(
        &self,
        result_name: &str,
        target_key: &str,
        record: &DeliveryRecord,
    ) -> Result<(), RecordError> {
        let mut bytes = serde_json::to_vec_pretty(record)?;
        bytes.push(b'\n');
        Ok(write_atomic(
            &self.record_path(result_name, target_key),
            &bytes,
        )?)
    }
}

/// The largest record read back (a record is a few hundred bytes).
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// The longest record name: 255 bytes (NAME_MAX) less what the atomic
/// write adds for its temporary file (`.`, `.xxxxxx.tmp`), with room spare.
const MAX_RECORD_NAME: usize = 200;

/// How much of a long result name is kept, readable, before its hash.
const KEPT_PREFIX: usize = 120;

/// `<result>.<target key>.delivered`; when that would be too long for a
/// file name (a result named with 245 characters), the result's name is cut
/// to a readable prefix and `~` + a hash of the whole name, so the record
/// can be written, and found again after a restart. Names that fit keep
/// the old form, so existing records stay valid.
fn record_name(result_name: &str, target_key: &str) -> String {
    let plain = format!("{result_name}.{target_key}.delivered");
    if plain.len() <= MAX_RECORD_NAME {
        return plain;
    }
    let mut cut = KEPT_PREFIX.min(result_name.len());
    while !result_name.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = crate::hex::sha256_prefix(result_name.as_bytes(), 8);
    format!("{}~{hash}.{target_key}.delivered", &result_name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_result_names_make_bounded_distinct_record_names() {
        let long = format!("{}.json", "é".repeat(120));
        let other = format!("{}x.json", "é".repeat(120));
        let name = record_name(&long, "0123456789ab");
        assert!(name.len() <= MAX_RECORD_NAME, "{}", name.len());
        assert!(name.starts_with("éé"));
        assert_ne!(name, record_name(&other, "0123456789ab"));
        assert_eq!(record_name("r.json", "abc"), "r.json.abc.delivered");
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let record = DeliveryRecord {
            webhook_id: "msg_1".into(),
            target: "stdout:".into(),
            status: 0,
            attempts: 1,
            delivered_at: "2026-11-22T00:00:00Z".into(),
        };
        let long = format!("{}.json", "a".repeat(245 - 5));
        outbox.record(&long, "0123456789ab", &record).unwrap();
        assert!(Outbox::new(dir.path()).is_delivered(&long, "0123456789ab"));
    }

    #[test]
    fn records_survive_a_new_outbox_on_the_same_dir() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        assert!(!outbox.is_delivered("r.json", "abc"));
        let record = DeliveryRecord {
            webhook_id: "msg_1".into(),
            target: "https://example.test/hook".into(),
            status: 200,
            attempts: 2,
            delivered_at: "2026-11-22T00:00:00Z".into(),
        };
        outbox.record("r.json", "abc", &record).unwrap();
        let again = Outbox::new(dir.path());
        assert!(again.is_delivered("r.json", "abc"));
        assert_eq!(again.read("r.json", "abc"), Some(record.clone()));
        assert_eq!(again.read("r.json", "def"), None);
        assert!(!again.is_delivered("r.json", "def"));
        let read: DeliveryRecord = serde_json::from_slice(
            &std::fs::read(dir.path().join("r.json.abc.delivered")).unwrap(),
        )
        .unwrap();
        assert_eq!(read, record);
    }
}
