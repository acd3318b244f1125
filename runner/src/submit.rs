//! Submitting a listing: its ConfigMap, then its Job naming that
//! ConfigMap, then the ConfigMap owned by the Job, so deleting the Job (by
//! hand, or its `ttlSecondsAfterFinished`) garbage-collects both.
//!
//! Nothing is left behind half-made: a Job the API server refuses takes
//! its ConfigMap back out, and an owner reference that cannot be set takes
//! both out. A create whose answer was lost (the connection broke after
//! the request went out) is looked up by this submission's label before
//! anything is retried or removed, so it is neither made twice nor
//! orphaned.

use kube::api::DynamicObject;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cluster::{Cluster, ClusterError};
use crate::listing::Listing;
use crate::objects::{Objects, SUBMISSION_LABEL, TooLarge};
use crate::template::Template;

/// What a submission created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitted {
    pub id: String,
    pub job: String,
    pub namespace: String,
    pub config_map: String,
}

/// Why a submission failed; [`SubmitError::Cluster`] says what became of
/// anything already created.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Interrupted before anything was created (or what was, removed).
    #[error("interrupted before the listing's ConfigMap was created; nothing was left behind")]
    Interrupted,
    #[error("{error}{cleanup}")]
    Cluster {
        #[source]
        error: ClusterError,
        /// What was done about the objects already created.
        cleanup: String,
    },
}

impl SubmitError {
    fn cluster(error: ClusterError) -> SubmitError {
        SubmitError::Cluster {
            error,
            cleanup: String::new(),
        }
    }
}

/// A random token naming one submission's objects.
pub fn submission_token(listing: &Listing) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{}:{}:{}", now.as_nanos(), std::process::id(), listing.id);
    let counter = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let digest = Sha256::digest(format!("{seed}:{counter}").as_bytes());
    shortlist_contract::hex::encode(&digest[..6])
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Submits `listing` as a Job from `template` in `namespace`.
pub async fn submit(
    cluster: &Cluster,
    template: &Template,
    listing: &Listing,
    namespace: &str,
) -> Result<Submitted, SubmitError> {
    submit_unless(
        cluster,
        template,
        listing,
        namespace,
        std::future::pending(),
    )
    .await
}

/// [`submit`], given up when `interrupt` completes while the first object
/// is still being created (the API server away, its retries waiting): a
/// ConfigMap that request may have made is looked up and removed. Once the
/// ConfigMap exists, the submission is finished (or cleaned up) whatever
/// `interrupt` says: nothing is cut in half.
pub async fn submit_unless(
    cluster: &Cluster,
    template: &Template,
    listing: &Listing,
    namespace: &str,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<Submitted, SubmitError> {
    let token = submission_token(listing);
    let objects = Objects::build(template, listing, namespace, &token)?;

    let creating = create_once(cluster, namespace, &objects.config_map, &token);
    let config_map = tokio::select! {
        created = creating => created.map_err(SubmitError::cluster)?,
        () = interrupt => {
            // One look, no retries: the user asked to stop.
            let once = cluster.once();
            let selector = format!("{SUBMISSION_LABEL}={token}");
            let made = once.config_maps_labelled(namespace, &selector).await.unwrap_or_default();
            for config_map in made {
                if let Some(name) = config_map.metadata.name {
                    let _ = once.delete_config_map(namespace, &name).await;
                }
            }
            return Err(SubmitError::Interrupted);
        }
    };
    let config_map_name = config_map.metadata.name.clone().unwrap_or_default();
    tracing::info!(config_map = %config_map_name, namespace, id = %listing.id, "created the listing's ConfigMap");

    let job = match create_once(
        cluster,
        namespace,
        &objects.job_for(&config_map_name),
        &token,
    )
    .await
    {
        Ok(job) => job,
        Err(error) => {
            let cleanup = remove(cluster, namespace, &config_map_name, None).await;
            return Err(SubmitError::Cluster { error, cleanup });
        }
    };
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    tracing::info!(job = %job_name, namespace, "created the listing's Job");

    if let Err(error) = cluster
        .own_config_map(namespace, &config_map_name, &job_name, &uid)
        .await
    {
        let cleanup = remove(cluster, namespace, &config_map_name, Some(&job_name)).await;
        return Err(SubmitError::Cluster { error, cleanup });
    }
    Ok(Submitted {
        id: listing.id.clone(),
        job: job_name,
        namespace: namespace.to_string(),
        config_map: config_map_name,
    })
}

/// Creates `object`; when the answer was lost, finds what the request
/// made (by the submission label) instead of creating a second one.
async fn create_once(
    cluster: &Cluster,
    namespace: &str,
    object: &Value,
    token: &str,
) -> Result<DynamicObject, ClusterError> {
    match cluster.create(namespace, object).await {
        Ok(created) => Ok(created),
        Err(error) if error.is_ambiguous() => {
            let kind = object["kind"].as_str().unwrap_or_default();
            let selector = format!("{SUBMISSION_LABEL}={token}");
            tracing::warn!(kind, error = %error, "the create's answer was lost; looking for what it made");
            let found = match kind {
                "Job" => cluster
                    .jobs_labelled(namespace, &selector)
                    .await
                    .ok()
                    .and_then(|items| items.into_iter().next())
                    .map(|j| (j.metadata.name, j.metadata.uid)),
                _ => cluster
                    .config_maps_labelled(namespace, &selector)
                    .await
                    .ok()
                    .and_then(|items| items.into_iter().next())
                    .map(|c| (c.metadata.name, c.metadata.uid)),
            };
            match found {
                Some((name, uid)) => {
                    let mut created: DynamicObject = serde_json::from_value(object.clone())
                        .map_err(|e| ClusterError::Object {
                            action: format!("create {kind}"),
                            kind: "object",
                            error: e,
                        })?;
                    created.metadata.name = name;
                    created.metadata.uid = uid;
                    Ok(created)
                }
                None => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// Removes what a failed submission made; says what became of it.
async fn remove(cluster: &Cluster, namespace: &str, config_map: &str, job: Option<&str>) -> String {
    let mut notes = Vec::new();
    if let Some(job) = job {
        match cluster.delete_job(namespace, job).await {
            Ok(()) => notes.push(format!("Job {job} was deleted")),
            Err(error) => notes.push(format!(
                "Job {job} could not be deleted either ({error}): delete it with `kubectl -n {namespace} delete job {job}`"
            )),
        }
    }
    match cluster.delete_config_map(namespace, config_map).await {
        Ok(()) => notes.push(format!("ConfigMap {config_map} was deleted")),
        Err(error) => notes.push(format!(
            "ConfigMap {config_map} could not be deleted either ({error}): delete it with `kubectl -n {namespace} delete configmap {config_map}`"
        )),
    }
    format!("; {}", notes.join("; "))
}
