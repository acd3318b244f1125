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

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shortlist_shared::BackendInfo;

use super::{Decision, Judge, JudgeFuture, JudgeRequest, JudgeStats};

const CACHE_VERSION: &str = "shortlist.response/v1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    schema: String,
    decision: Decision,
}

/// A judge with a response cache in front of it.
pub struct CachedJudge {
    inner: Box<dyn Judge>,
    dir: PathBuf,
    /// The settings part of every key (backend, model, sampling, schema).
    fingerprint: String,
}

impl CachedJudge {
    pub fn new(inner: Box<dyn Judge>, cache_dir: &Path, fingerprint: String) -> Self {
        CachedJudge {
            inner,
            dir: cache_dir.join("responses"),
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

    async fn get(&self, path: &Path) -> Option<Decision> {
        let bytes = tokio::fs::read(path).await.ok()?;
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.schema == CACHE_VERSION => Some(entry.decision),
            _ => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable response cache entry");
                None
            }
        }
    }

    async fn put(&self, path: PathBuf, decision: &Decision) {
        let entry = Entry {
            schema: CACHE_VERSION.into(),
            decision: decision.clone(),
        };
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut temp = tempfile::Builder::new()
                .prefix(".response.")
                .suffix(".tmp")
                .tempfile_in(&dir)?;
            temp.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
            temp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await;
        if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write to the response cache");
        }
    }
}

impl Judge for CachedJudge {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let path = self.dir.join(format!("{}.json", self.key(request)));
            if let Some(decision) = self.get(&path).await {
                tracing::debug!(path = %path.display(), "response cache hit");
                let stats = JudgeStats {
                    cached: true,
                    ..JudgeStats::default()
                };
                return (Ok(decision), stats);
            }
            let (outcome, stats) = self.inner.judge(request).await;
            if let Ok(decision) = &outcome {
                self.put(path, decision).await;
            }
            (outcome, stats)
        })
    }
}
