//! Delivery receipts: how a relay tells an assessor "your accepted result
//! reached every notifier".
//!
//! In a Kubernetes Job the pod succeeds when the assessor exits 0, whatever
//! the relay (a sidecar) still has to do. An accepted verdict whose
//! notifier was down past the relay's drain would be lost with the pod's
//! `emptyDir`, with nothing but a log line to show for it. The receipt closes
//! that gap through the file contract: once every target confirmed a result,
//! the relay writes `<result file>.receipt` next to it (atomically); an
//! assessor given `ASSESSOR_AWAIT_DELIVERY` waits for that file after writing
//! an accepted result, and exits 6 ("delivery not confirmed") when it never
//! comes, so the Job retries the pod and a new relay delivers again (with the
//! same `webhook-id`, so a deduplicating receiver still sees one).
//!
//! A receipt is also written for an accepted result the relay deliberately
//! did not forward (below `RELAY_MIN_SCORE`): the wait is over, there is
//! nothing to deliver. Rejected and error results get none (nobody waits
//! for them).

use std::io::Read;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The receipt version this crate writes (`receipt_version`).
pub const RECEIPT_VERSION: u32 = 1;

/// What a receipt ends in, after the result file's name.
pub const RECEIPT_SUFFIX: &str = ".receipt";

/// The largest receipt read: a receipt lists one line per target, so 64 KiB
/// is far beyond any real one, and a hostile file cannot fill memory.
pub const MAX_RECEIPT_BYTES: u64 = 64 * 1024;

/// The longest file name most filesystems allow (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// How much of a long result name a receipt name keeps, readable, before
/// the hash that makes it unique.
const KEPT_PREFIX: usize = 120;

/// What the relay did with an accepted result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptOutcome {
    /// Every notifier target confirmed it (HTTP 2xx, or the line appended).
    Delivered,
    /// The relay's policy kept it back (e.g. below `RELAY_MIN_SCORE`); the
    /// reason says which. Nothing will be delivered, and nothing is owed.
    NotForwarded,
}

/// One target's confirmed delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptDelivery {
    /// The target, as safe to log: no credentials, no query values.
    pub target: String,
    /// The HTTP status it answered (0 for `file:` and `stdout:` targets).
    pub status: u16,
    /// Attempts it took.
    pub attempts: u32,
    /// When it was confirmed, RFC 3339.
    pub delivered_at: String,
}

/// `<result file>.receipt`: written by the relay once an accepted result is
/// done with (delivered everywhere, or deliberately not forwarded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Shortlist delivery receipt v1", extend("$id" = "https://shortlist.dev/schema/receipt.v1.json"))]
pub struct Receipt {
    /// Always 1 for this version.
    pub receipt_version: u32,
    /// The result file's name (in the same directory as the receipt).
    pub result: String,
    /// The result's id, as the relay derived it.
    pub id: String,
    /// The idempotency key receivers saw (`webhook-id` header, and `id` in the body).
    pub webhook_id: String,
    /// What happened to the result.
    pub outcome: ReceiptOutcome,
    /// Why it was not forwarded (only for `not_forwarded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One entry per target, for `delivered`.
    #[serde(default)]
    pub deliveries: Vec<ReceiptDelivery>,
    /// When the receipt was written, RFC 3339.
    pub written_at: String,
}

/// Why a receipt could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("{path}: cannot read the receipt: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the receipt is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: the receipt is over {MAX_RECEIPT_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: the receipt is not a valid receipt: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The receipt's path for the result at `result_path`: the same directory,
/// the result's file name + `.receipt`. A name that would then be too long
/// for a file name keeps a readable prefix, `~` and 16 hex digits of the
/// SHA-256 of the whole result name, so it stays unique and can be written
/// (with room for the atomic write's temporary name).
pub fn receipt_path(result_path: &Path) -> PathBuf {
    let name = result_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    result_path.with_file_name(receipt_name(&name))
}

/// The receipt's file name for a result named `result_name`.
pub fn receipt_name(result_name: &str) -> String {
    let plain = format!("{result_name}{RECEIPT_SUFFIX}");
    // The atomic write's temp name adds `.` and `.XXXXXX.tmp`.
    if plain.len() + 12 <= NAME_MAX {
        return plain;
    }
    let mut cut = KEPT_PREFIX.min(result_name.len());
    while !result_name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = crate::hex::sha256_prefix(result_name.as_bytes(), 8);
    format!("{}~{digest}{RECEIPT_SUFFIX}", &result_name[..cut])
}

impl Receipt {
    /// Reads the receipt at `path`: `Ok(None)` when there is none (yet).
    /// Only a regular file of at most [`MAX_RECEIPT_BYTES`] is read, so a
    /// FIFO or `/dev/zero` in its place is an error, not a hang.
    pub fn read(path: &Path) -> Result<Option<Receipt>, ReceiptError> {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ReceiptError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if !metadata.is_file() {
            return Err(ReceiptError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let unreadable = |source| ReceiptError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            // Replaced between the two calls: not there yet after all.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(unreadable(source)),
        };
        if !file.metadata().map_err(unreadable)?.is_file() {
            return Err(ReceiptError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_RECEIPT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReceiptError::Invalid {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The receipt as written: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a receipt serialises");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            receipt_version: RECEIPT_VERSION,
            result: "result.json".into(),
            id: "listing-1".into(),
            webhook_id: "msg_abc".into(),
            outcome: ReceiptOutcome::Delivered,
            reason: None,
            deliveries: vec![ReceiptDelivery {
                target: "https://hooks.example/x".into(),
                status: 200,
                attempts: 1,
                delivered_at: "2026-12-04T00:00:00Z".into(),
            }],
            written_at: "2026-12-04T00:00:01Z".into(),
        }
    }

    #[test]
    fn the_receipt_sits_next_to_its_result() {
        assert_eq!(
            receipt_path(Path::new("/results/result.json")),
            Path::new("/results/result.json.receipt")
        );
        assert_eq!(receipt_name("a.json"), "a.json.receipt");
    }

    #[test]
    fn long_result_names_get_bounded_distinct_receipt_names() {
        let long = format!("{}.json", "é".repeat(124));
        let other = format!("{}x.json", "é".repeat(123));
        let name = receipt_name(&long);
        assert!(name.len() + 12 <= NAME_MAX, "{}", name.len());
        assert!(name.ends_with(RECEIPT_SUFFIX));
        assert!(name.starts_with("éé"));
        assert_ne!(name, receipt_name(&other));
        // Just fitting keeps the plain form.
        let fits = "a".repeat(NAME_MAX - 12 - RECEIPT_SUFFIX.len());
        assert_eq!(receipt_name(&fits), format!("{fits}{RECEIPT_SUFFIX}"));
    }

    #[test]
    fn a_receipt_reads_back_and_absence_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json.receipt");
        assert!(Receipt::read(&path).unwrap().is_none());
        std::fs::write(&path, receipt().to_bytes()).unwrap();
        assert_eq!(Receipt::read(&path).unwrap(), Some(receipt()));
    }

    #[test]
    fn hostile_receipts_are_errors_not_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json.receipt");
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(
            Receipt::read(&path),
            Err(ReceiptError::NotAFile { .. })
        ));
        let zero = dir.path().join("zero.receipt");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            Receipt::read(&zero),
            Err(ReceiptError::NotAFile { .. })
        ));
        let big = dir.path().join("big.receipt");
        std::fs::write(&big, vec![b' '; MAX_RECEIPT_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            Receipt::read(&big),
            Err(ReceiptError::TooLarge { .. })
        ));
        let bad = dir.path().join("bad.receipt");
        std::fs::write(&bad, b"{\"receipt_version\":1}").unwrap();
        let error = Receipt::read(&bad).unwrap_err();
        assert!(error.to_string().contains("bad.receipt"), "{error}");
    }
}
