//! Where a listing's Job stands, read from the Job and its pods: pending,
//! running, succeeded or failed, the assessor's exit code, and the summary
//! it left in its termination message (docs/contract.md). One reading for
//! `submit --wait` and `GET /v1/listings/{id}`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use serde::Serialize;
use shortlist_contract::termination::TerminationSummary;

use crate::cluster::{Cluster, ClusterError};
use crate::listing::label_value;
use crate::objects::{LISTING_ID_ANNOTATION, LISTING_LABEL};

/// A Job's state, as the HTTP API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created; no pod runs yet (scheduling, pulling, mounting).
    Pending,
    /// A pod is running.
    Running,
    /// The Job completed: the assessor exited 0.
    Succeeded,
    /// The Job failed for good (its failure policy, retries used up, its
    /// deadline).
    Failed,
}

/// A listing's Job and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct ListingStatus {
    pub id: String,
    pub job: String,
    pub namespace: String,
    pub state: State,
    /// The assessor's exit code in the pod that ended last.
    pub exit_code: Option<i32>,
    /// The assessor's summary of its result.
    pub summary: Option<TerminationSummary>,
    /// Why the Job failed (its condition's message), or a termination
    /// message that is no summary (a crash's log tail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The Job's final condition, if it has one: `Complete` or `Failed`.
pub fn finished(job: &Job) -> Option<State> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
            ("Complete", "True") => Some(State::Succeeded),
            ("Failed", "True") => Some(State::Failed),
            _ => None,
        })
}

fn failure_message(job: &Job) -> Option<String> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| {
            let reason = c.reason.clone().unwrap_or_default();
            match c.message.as_deref() {
                Some(message) if !message.is_empty() => format!("{reason}: {message}"),
                _ => reason,
            }
        })
}

/// The assessor container's end in `pod`, if it ended.
fn terminated<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)?
        .state
        .as_ref()?
        .terminated
        .as_ref()
}

/// Reads the status of `job` from it and its `pods`; `container` is the
/// template's assessor container.
pub fn read(job: &Job, pods: &[Pod], container: &str) -> ListingStatus {
    let metadata = &job.metadata;
    let id = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LISTING_ID_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let running = pods
        .iter()
        .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
    let state = finished(job).unwrap_or(if running {
        State::Running
    } else {
        State::Pending
    });
    // The pod whose assessor ended last: with retries, the last attempt.
    let last = pods
        .iter()
        .filter_map(|p| terminated(p, container))
        .max_by_key(|t| t.finished_at.as_ref().map(|time| time.0));
    let exit_code = last.map(|t| t.exit_code);
    let text = last
        .and_then(|t| t.message.clone())
        .filter(|m| !m.trim().is_empty());
    let summary = text.as_deref().and_then(TerminationSummary::parse);
    let message = if state == State::Failed {
        failure_message(job)
    } else {
        None
    }
    .or_else(|| {
        if summary.is_none() {
            text.clone()
        } else {
            None
        }
    });
    ListingStatus {
        id,
        job: metadata.name.clone().unwrap_or_default(),
        namespace: metadata.namespace.clone().unwrap_or_default(),
        state,
        exit_code,
        summary,
        message,
    }
}

/// The status of the newest Job of listing `id` (a listing may be
/// submitted again), or `None` when it has none (never submitted, or its
/// Job is gone: `ttlSecondsAfterFinished`).
pub async fn of_listing(
    cluster: &Cluster,
    namespace: &str,
    id: &str,
    container: &str,
) -> Result<Option<ListingStatus>, ClusterError> {
    let selector = format!("{LISTING_LABEL}={}", label_value(id));
    let jobs = cluster.jobs_labelled(namespace, &selector).await?;
    let newest = jobs
        .into_iter()
        .filter(|job| {
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LISTING_ID_ANNOTATION))
                .is_some_and(|annotated| annotated == id)
        })
        .max_by_key(|job| job.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let Some(job) = newest else {
        return Ok(None);
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let pods = cluster.pods_of(namespace, &name).await?;
    Ok(Some(read(&job, &pods, container)))
}

impl ListingStatus {
    /// Lines for a terminal: `key: value`, aligned.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<(&str, String)> = vec![
            (
                "job",
                format!("{} (namespace {})", self.job, self.namespace),
            ),
            ("state", format!("{:?}", self.state).to_lowercase()),
        ];
        if let Some(code) = self.exit_code {
            lines.push(("exit code", code.to_string()));
        }
        if let Some(summary) = &self.summary {
            if let Some(verdict) = &summary.verdict {
                lines.push(("verdict", verdict.clone()));
            }
            if let Some(score) = summary.score {
                lines.push(("score", format!("{score:.2}")));
            }
            if let Some(decided_by) = &summary.decided_by {
                lines.push(("decided by", decided_by.clone()));
            }
            if let Some(error) = &summary.error {
                lines.push(("error", error.kind.clone()));
            }
            if let Some(reason) = summary.first_reason() {
                lines.push(("reason", reason.to_string()));
            }
        }
        if let Some(message) = &self.message {
            lines.push((
                "message",
                message.lines().last().unwrap_or_default().to_string(),
            ));
        }
        lines
            .into_iter()
            .map(|(key, value)| format!("{:<12}{value}\n", format!("{key}:")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "shortlist-s01-abcde", "namespace": "shortlist",
                          "annotations": {LISTING_ID_ANNOTATION: "s01"}},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn pod(phase: &str, exit: Option<(i32, &str, &str)>) -> Pod {
        let state = match exit {
            Some((code, message, at)) => {
                json!({"terminated": {"exitCode": code, "message": message, "finishedAt": at}})
            }
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "assessor", "ready": false, "restartCount": 0, "image": "i", "imageID": "", "state": state}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn a_completed_job_gives_the_verdict_from_the_termination_message() {
        let summary = r#"{"schema":"shortlist.termination/v1","id":"s01","status":"ok","verdict":"accept","score":0.875,"decided_by":"facts","reasons":["two bedrooms"]}"#;
        let status = read(
            &job(json!([{"type": "Complete", "status": "True"}])),
            &[pod("Succeeded", Some((0, summary, "2026-12-04T10:00:00Z")))],
            "assessor",
        );
        assert_eq!(status.state, State::Succeeded);
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(status.id, "s01");
        let text = status.to_text();
        assert!(text.contains("verdict:    accept\n"), "{text}");
        assert!(text.contains("decided by: facts\n"), "{text}");
        assert!(text.contains("score:      0.88\n"), "{text}");
        assert!(text.contains("reason:     two bedrooms\n"), "{text}");
    }

    #[test]
    fn a_failed_job_gives_the_last_attempts_exit_code_and_why() {
        let status = read(
            &job(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                         "message": "Job has reached the specified backoff limit"}]),
            ),
            &[
                pod("Failed", Some((4, "backend down", "2026-12-04T10:00:00Z"))),
                pod("Failed", Some((6, "", "2026-12-04T10:05:00Z"))),
            ],
            "assessor",
        );
        assert_eq!(status.state, State::Failed);
        assert_eq!(status.exit_code, Some(6));
        assert!(status.summary.is_none());
        assert_eq!(
            status.message.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
    }

    #[test]
    fn a_job_without_conditions_is_pending_or_running() {
        assert_eq!(read(&job(json!([])), &[], "assessor").state, State::Pending);
        assert_eq!(
            read(&job(json!([])), &[pod("Running", None)], "assessor").state,
            State::Running
        );
    }
}
