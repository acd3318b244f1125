//! The response cache: with `CACHE_DIR` set, a judge's decision is stored
//! under `CACHE_DIR/responses/<sha256>.json`, keyed by everything that
//! decides the reply: the backend kind and model, the sampling and
//! structured-output settings, and the full request (system and user
//! messages, with the per-request delimiter nonce normalised so the same
//! listing gives the same key). A hit skips the backend entirely and the
//! result says `"cached": true`; errors are never cached.
//!
//! Like the captions cache it never fails an assessment: unreadable entries
//! are misses and unwritable ones warnings.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shortlist_shared::BackendInfo;

use super::{Decision, Judge, JudgeFuture, JudgeRequest, JudgeStats};
use crate::cache_entry::EntryStore;

const CACHE_VERSION: &str = "shortlist.response/v1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    decision: Decision,
}

/// A judge with a response cache in front of it.
pub struct CachedJudge {
    inner: Box<dyn Judge>,
    store: EntryStore,
    /// The settings part of every key (backend, model, sampling, schema).
    fingerprint: String,
}

impl CachedJudge {
    pub fn new(inner: Box<dyn Judge>, cache_dir: &Path, fingerprint: String) -> Self {
        CachedJudge {
            inner,
            store: EntryStore::new(cache_dir.join("responses"), CACHE_VERSION, "response"),
            fingerprint,
        }
    }

    fn key(&self, request: &JudgeRequest<'_>) -> String {
        let nonce = request.prompt.nonce.as_str();
        let normalise = |text: &str| text.replace(nonce, "{nonce}");
        let digest = Sha256::new()
            .chain_update(CACHE_VERSION)
            .chain_update([0])
            .chain_update(self.fingerprint.as_bytes())
            .chain_update([0])
            .chain_update(normalise(&request.prompt.system).as_bytes())
            .chain_update([0])
            .chain_update(normalise(&request.prompt.user).as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Judge for CachedJudge {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let key = self.key(request);
            if let Some(Entry { decision }) = self.store.load(&key).await {
                tracing::debug!(%key, "response cache hit");
                let stats = JudgeStats {
                    cached: true,
                    ..JudgeStats::default()
                };
                return (Ok(decision), stats);
            }
            let (outcome, stats) = self.inner.judge(request).await;
            if let Ok(decision) = &outcome {
                let entry = Entry {
                    decision: decision.clone(),
                };
                self.store.store(&key, entry).await;
            }
            (outcome, stats)
        })
    }
}
