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

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shortlist_contract::BackendInfo;

use super::{AnswerFuture, Decision, Judge, JudgeFuture, JudgeRequest, JudgeStats, Question};
use crate::cache_entry::EntryStore;
use shortlist_contract::hex::encode as hex;

const CACHE_VERSION: &str = "shortlist.response/v1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    decision: Decision,
}

/// The response cache's settings: where, and what else goes into every key.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `CACHE_DIR`; entries go to its `responses/` directory.
    pub(crate) cache_dir: PathBuf,
    /// Every setting that changes a reply for the same messages (kind,
    /// model, sampling, structured output, reply schema), as one string.
    pub(crate) fingerprint: String,
}

/// A judge with a response cache in front of it.
pub(crate) struct CachedJudge {
    inner: Box<dyn Judge>,
    store: EntryStore,
    /// The settings part of every key (backend, model, sampling, schema).
    fingerprint: String,
}

impl CachedJudge {
    pub(crate) fn new(inner: Box<dyn Judge>, settings: &Settings) -> Self {
        CachedJudge {
            inner,
            store: EntryStore::new(
                settings.cache_dir.join("responses"),
                CACHE_VERSION,
                "response",
            ),
            fingerprint: settings.fingerprint.clone(),
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
        hex(digest)
    }
}

impl Judge for CachedJudge {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn timing_key(&self) -> &'static str {
        self.inner.timing_key()
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

    /// Facts questions are short and constrained; they are not cached.
    fn ask<'a>(&'a self, question: &'a Question) -> AnswerFuture<'a> {
        self.inner.ask(question)
    }
}
