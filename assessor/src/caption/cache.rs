//! Captions cached in `CACHE_DIR/captions/`, keyed by the SHA-256 of the
//! image bytes, the caption model and the caption prompt: a re-run, or the
//! same photo in a relisted property, costs no vision request.
//!
//! A cache is an optimisation, so it never fails an assessment: an entry
//! that cannot be read is a miss, one that cannot be written is a warning.
//! Entries are written to a temp file and renamed (a reader never sees half
//! of one) but not fsynced: a lost entry is only a repeated request.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache_entry::{EntryStore, warn_unreadable};
use shortlist_contract::hex::encode as hex;

/// Bumped when the entry format or what a caption means changes.
const CACHE_VERSION: &str = "shortlist.caption/v1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    model: String,
    caption: String,
}

pub(crate) struct CaptionCache {
    store: EntryStore,
}

impl CaptionCache {
    pub(crate) fn new(cache_dir: &Path) -> Self {
        CaptionCache {
            store: EntryStore::new(cache_dir.join("captions"), CACHE_VERSION, "caption"),
        }
    }

    /// The entry's key for these bytes under this model and prompt.
    pub(crate) fn key(image: &[u8], model: &str, prompt: &str) -> String {
        let image_hash = Sha256::digest(image);
        let digest = Sha256::new()
            .chain_update(CACHE_VERSION.as_bytes())
            .chain_update([0])
            .chain_update(image_hash)
            .chain_update(model.as_bytes())
            .chain_update([0])
            .chain_update(prompt.as_bytes())
            .finalize();
        hex(digest)
    }

    pub(crate) async fn get(&self, key: &str) -> Option<String> {
        let entry: Entry = self.store.load(key).await?;
        if entry.caption.trim().is_empty() {
            warn_unreadable(&self.store.path(key), "caption");
            return None;
        }
        Some(entry.caption)
    }

    pub(crate) async fn put(&self, key: &str, model: &str, caption: &str) {
        let entry = Entry {
            model: model.into(),
            caption: caption.into(),
        };
        self.store.store(key, entry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_bytes_model_and_prompt() {
        let k = CaptionCache::key(b"img", "m", "p");
        assert_eq!(k.len(), 64);
        assert_eq!(k, CaptionCache::key(b"img", "m", "p"));
        assert_ne!(k, CaptionCache::key(b"img2", "m", "p"));
        assert_ne!(k, CaptionCache::key(b"img", "m2", "p"));
        assert_ne!(k, CaptionCache::key(b"img", "m", "p2"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            CaptionCache::key(b"i", "ab", "c"),
            CaptionCache::key(b"i", "a", "bc")
        );
    }

    #[tokio::test]
    async fn round_trip_and_corrupt_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CaptionCache::new(dir.path());
        let key = CaptionCache::key(b"img", "m", "p");
        assert_eq!(cache.get(&key).await, None);
        cache.put(&key, "m", "A bright kitchen").await;
        assert_eq!(cache.get(&key).await.as_deref(), Some("A bright kitchen"));
        std::fs::write(
            dir.path().join("captions").join(format!("{key}.json")),
            b"{oops",
        )
        .unwrap();
        assert_eq!(cache.get(&key).await, None);
    }
}
