//! `--wait`: watch one Job until it completes or fails, for at most a given
//! time. A watch that breaks (the API server restarting, a connection
//! reset) is resumed with backoff by kube's watcher and logged; only the
//! deadline ends the wait without an answer.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::cluster::Cluster;
use crate::status::finished;

/// Why a wait ended without a finished Job.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "Job {job} in namespace {namespace} did not finish within {waited} (it is left running; look again with `kubectl -n {namespace} get job {job}`)"
    )]
    TimedOut {
        job: String,
        namespace: String,
        waited: String,
    },
    #[error("Job {job} in namespace {namespace} was deleted before it finished")]
    Deleted { job: String, namespace: String },
    #[error("Job {job} in namespace {namespace} does not exist")]
    NotFound { job: String, namespace: String },
}

/// Waits until Job `name` has its `Complete` or `Failed` condition.
pub async fn until_finished(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Job, WaitError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher::watcher(cluster.jobs(namespace), config).default_backoff();
    let watch = async {
        let mut stream = std::pin::pin!(stream);
        let mut seen = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => seen = false,
                Ok(Event::Apply(job) | Event::InitApply(job)) => {
                    seen = true;
                    if finished(&job).is_some() {
                        return Ok(job);
                    }
                }
                Ok(Event::InitDone) if !seen => {
                    return Err(WaitError::NotFound {
                        job: name.to_string(),
                        namespace: namespace.to_string(),
                    });
                }
                Ok(Event::InitDone) => {}
                Ok(Event::Delete(_)) => {
                    return Err(WaitError::Deleted {
                        job: name.to_string(),
                        namespace: namespace.to_string(),
                    });
                }
                Err(error) => {
                    tracing::warn!(job = name, url = cluster.url(), error = %shortlist_shared::error::error_chain(&error), "watching the Job failed; retrying with backoff");
                }
            }
        }
        // The watcher's stream never ends; this is the deadline's to say.
        std::future::pending().await
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(outcome) => outcome,
        Err(_) => Err(WaitError::TimedOut {
            job: name.to_string(),
            namespace: namespace.to_string(),
            waited: shortlist_shared::duration::format_duration(timeout),
        }),
    }
}
