//! The on-disk side of the assessor's caches (captions, judge responses):
//! one JSON file per key, `<dir>/<key>.json`, tagged with the cache's format
//! version. A cache is an optimisation, so it never fails an assessment: an
//! entry that is missing, unreadable or of another version is a miss, one
//! that cannot be written is a warning. Entries are written atomically
//! (temp file + rename, so a reader never sees half of one) but not fsynced:
//! a lost entry only costs a repeated request.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shortlist_contract::atomic::{Durability, write_atomic_with};

/// The most one entry may hold: a reply or a caption is a few KiB.
const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;

/// An entry as stored: the version tag beside the cache's own fields.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    schema: String,
    #[serde(flatten)]
    body: T,
}

/// One cache directory.
#[derive(Debug, Clone)]
pub(crate) struct EntryStore {
    dir: PathBuf,
    /// The format version every entry carries (`shortlist.caption/v1`, ...).
    schema: &'static str,
    /// For messages: "caption", "response".
    what: &'static str,
}

impl EntryStore {
    pub(crate) fn new(dir: PathBuf, schema: &'static str, what: &'static str) -> Self {
        EntryStore { dir, schema, what }
    }

    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The entry under `key`, when there is a readable one of this version.
    pub(crate) async fn load<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        // A regular file, capped: a FIFO or a device planted in the cache
        // directory is a miss, not a hang.
        let read_path = path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            shortlist_contract::regular_file::read(&read_path, MAX_ENTRY_BYTES)
        })
        .await
        .ok()?
        .ok()?;
        match serde_json::from_slice::<Stored<T>>(&bytes) {
            Ok(stored) if stored.schema == self.schema => Some(stored.body),
            _ => {
                warn_unreadable(&path, self.what);
                None
            }
        }
    }

    /// Stores `body` under `key`; a failure is logged, never returned.
    pub(crate) async fn store<T: Serialize>(&self, key: &str, body: T) {
        let stored = Stored {
            schema: self.schema.to_string(),
            body,
        };
        let bytes = match serde_json::to_vec(&stored) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, "cannot encode a {} cache entry", self.what);
                return;
            }
        };
        let dir = self.dir.clone();
        let path = self.path(key);
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_atomic_with(&path, &bytes, Durability::Deferred).map_err(std::io::Error::other)
        })
        .await;
        if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write to the {} cache", self.what);
        }
    }
}

/// The warning for an entry that exists but cannot be used.
pub(crate) fn warn_unreadable(path: &Path, what: &str) {
    tracing::warn!(path = %path.display(), "ignoring an unreadable {what} cache entry");
}
