//! The Kubernetes API, as the runner uses it: a handful of calls, each
//! retried under one policy ([`KubeRetryLogic`] decides what is worth
//! another attempt) and each failure reported with what was attempted,
//! where, and what the API server said.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, Config};
use serde_json::Value;
use shortlist_shared::retry::{RetryDecision, RetryLogic, RetryPolicy};

/// Why a call to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig and not in a pod.
    #[error(
        "no Kubernetes cluster configured: {0} (set KUBECONFIG, or run in a pod with a service account)"
    )]
    NotConfigured(String),
    #[error("cannot {action} at {url}: {detail}{}", attempts_note(*.attempts))]
    Api {
        action: String,
        url: String,
        detail: String,
        attempts: u32,
        #[source]
        source: Box<kube::Error>,
    },
    /// An object the runner built that the client cannot send (a template
    /// field of the wrong type).
    #[error("cannot {action}: the object is not a valid {kind}: {error}")]
    Object {
        action: String,
        kind: &'static str,
        error: serde_json::Error,
    },
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl ClusterError {
    /// The HTTP status the API server answered with, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the request may have reached the API server and been done
    /// though its answer was lost: a create that fails so is looked up
    /// before anything is retried or cleaned up.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ClusterError::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => matches!(status.code, 500 | 502 | 504),
                kube::Error::HyperError(_) | kube::Error::Service(_) => !is_connect_error(source),
                _ => false,
            },
            _ => false,
        }
    }
}

/// A connection that was never made (refused, unreachable, no such host,
/// timed out connecting): the request cannot have arrived. Told by the
/// error's own type, not its text: "connection closed before message
/// completed" is the opposite case.
fn is_connect_error(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(client) = current.downcast_ref::<hyper_util::client::legacy::Error>() {
            if client.is_connect() {
                return true;
            }
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        source = current.source();
    }
    false
}

/// What is worth another attempt, vector's `RetryLogic` style: the server
/// being busy or away (429, 503, a refused or broken connection) always;
/// 500, 502 and 504 only for calls that are safe to repeat (a create may
/// have happened: its caller looks it up instead).
#[derive(Debug, Clone, Copy)]
pub struct KubeRetryLogic {
    pub idempotent: bool,
}

impl RetryLogic<kube::Error> for KubeRetryLogic {
    fn decide(&self, error: &kube::Error) -> RetryDecision {
        match error {
            kube::Error::Api(status) => match status.code {
                429 | 503 => RetryDecision::Retry { after: None },
                500 | 502 | 504 if self.idempotent => RetryDecision::Retry { after: None },
                _ => RetryDecision::Stop,
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                if self.idempotent || is_connect_error(error) {
                    RetryDecision::Retry { after: None }
                } else {
                    RetryDecision::Stop
                }
            }
            _ => RetryDecision::Stop,
        }
    }
}

/// The retry policy for `retries` retries after the first attempt.
pub fn retry_policy(retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: retries.saturating_add(1),
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(8),
        deadline: Duration::from_secs(120),
    }
}

/// A connected client and how to retry its calls.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    url: String,
    retry: RetryPolicy,
}

impl Cluster {
    /// Connects the way kubectl does: `KUBECONFIG` (or `~/.kube/config`),
    /// else the pod's service account. Nothing is sent yet.
    pub async fn connect(retries: u32) -> Result<Cluster, ClusterError> {
        let mut config = Config::infer()
            .await
            .map_err(|e| ClusterError::NotConfigured(shortlist_shared::error::error_chain(&e)))?;
        // Our own policy retries (bounded, logged); kube's would retry
        // 429/503/504 again inside each of our attempts.
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .map_err(|e| ClusterError::NotConfigured(shortlist_shared::error::error_chain(&e)))?;
        Ok(Cluster {
            client,
            url,
            retry: retry_policy(retries),
        })
    }

    /// This client with one attempt per call: for the last look of a
    /// submission being given up, which must not wait out the retries.
    pub fn once(&self) -> Cluster {
        Cluster {
            retry: retry_policy(0),
            ..self.clone()
        }
    }

    /// The API server's address, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn jobs(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn config_maps(&self, namespace: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Runs `call` under the retry policy; a failure names `action`.
    async fn call<T, F, Fut>(
        &self,
        action: String,
        idempotent: bool,
        call: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        let (outcome, attempts) = self.retry.run(&KubeRetryLogic { idempotent }, call).await;
        outcome.map_err(|source| ClusterError::Api {
            detail: describe(&source),
            action,
            url: self.url.clone(),
            attempts,
            source: Box::new(source),
        })
    }

    /// Creates `object` (a ConfigMap or a Job, as JSON) as it is: sent
    /// untyped, so a template's fields reach the API server unchanged and
    /// are judged there.
    pub async fn create(
        &self,
        namespace: &str,
        object: &Value,
    ) -> Result<DynamicObject, ClusterError> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let resource = match kind {
            "Job" => ApiResource::erase::<Job>(&()),
            _ => ApiResource::erase::<ConfigMap>(&()),
        };
        let action = format!(
            "create {kind} {}* in namespace {namespace}",
            object["metadata"]["generateName"]
                .as_str()
                .unwrap_or_default()
        );
        let dynamic: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|error| ClusterError::Object {
                action: action.clone(),
                kind: if kind == "Job" { "Job" } else { "ConfigMap" },
                error,
            })?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params = PostParams::default();
        self.call(action, false, || api.create(&params, &dynamic))
            .await
    }

    /// Makes the ConfigMap `name` owned by the Job (`job`, `uid`): deleting
    /// the Job then deletes the ConfigMap.
    pub async fn own_config_map(
        &self,
        namespace: &str,
        name: &str,
        job: &str,
        uid: &str,
    ) -> Result<(), ClusterError> {
        let patch = serde_json::json!({"metadata": {"ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid,
        }]}});
        let api = self.config_maps(namespace);
        let params = PatchParams::default();
        let patch = Patch::Merge(&patch);
        self.call(
            format!("set the owner of ConfigMap {name} to Job {job} in namespace {namespace}"),
            true,
            || api.patch(name, &params, &patch),
        )
        .await
        .map(drop)
    }

    /// Deletes a ConfigMap; one already gone is fine.
    pub async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.delete(self.config_maps(namespace), "ConfigMap", namespace, name)
            .await
    }

    /// Deletes a Job with its pods (and, by its owner reference, its
    /// ConfigMap); one already gone is fine.
    pub async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.delete(self.jobs(namespace), "Job", namespace, name)
            .await
    }

    /// Deletes `name` with background propagation (its dependents go
    /// too); a 404 counts as done.
    async fn delete<K>(
        &self,
        api: Api<K>,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(), ClusterError>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let params = DeleteParams::background();
        let outcome = self
            .call(
                format!("delete {kind} {name} in namespace {namespace}"),
                true,
                || api.delete(name, &params),
            )
            .await;
        ignore_not_found(outcome.map(drop))
    }

    /// The ConfigMaps with this label selector.
    pub async fn config_maps_labelled(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<ConfigMap>, ClusterError> {
        let action = format!("list ConfigMaps {selector} in namespace {namespace}");
        self.list(self.config_maps(namespace), action, selector)
            .await
    }

    /// The Jobs with this label selector.
    pub async fn jobs_labelled(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Job>, ClusterError> {
        let action = format!("list Jobs {selector} in namespace {namespace}");
        self.list(self.jobs(namespace), action, selector).await
    }

    /// The pods the Job controller made for `job`.
    pub async fn pods_of(&self, namespace: &str, job: &str) -> Result<Vec<Pod>, ClusterError> {
        let action = format!("list the pods of Job {job} in namespace {namespace}");
        let selector = format!("batch.kubernetes.io/job-name={job}");
        self.list(self.pods(namespace), action, &selector).await
    }

    /// The objects of `api` with this label selector.
    async fn list<K>(
        &self,
        api: Api<K>,
        action: String,
        selector: &str,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let params = ListParams::default().labels(selector);
        self.call(action, true, || api.list(&params))
            .await
            .map(|list| list.items)
    }
}

fn ignore_not_found(outcome: Result<(), ClusterError>) -> Result<(), ClusterError> {
    match outcome {
        Err(error) if error.status_code() == Some(404) => Ok(()),
        other => other,
    }
}

/// What the API server said, or why it could not be asked.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let mut text = status.code.to_string();
            if !status.reason.is_empty() {
                text.push_str(&format!(" {}", status.reason));
            }
            if !status.message.is_empty() {
                text.push_str(&format!(": {}", status.message));
            }
            text
        }
        other => shortlist_shared::error::error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16) -> kube::Error {
        let status: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": "X", "message": "m"
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn busy_or_away_is_retried_and_refusals_are_not() {
        let create = KubeRetryLogic { idempotent: false };
        let get = KubeRetryLogic { idempotent: true };
        for code in [429, 503] {
            assert!(
                matches!(create.decide(&api_error(code)), RetryDecision::Retry { .. }),
                "{code}"
            );
        }
        for code in [500, 502, 504] {
            assert_eq!(
                create.decide(&api_error(code)),
                RetryDecision::Stop,
                "{code}"
            );
            assert!(
                matches!(get.decide(&api_error(code)), RetryDecision::Retry { .. }),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert_eq!(get.decide(&api_error(code)), RetryDecision::Stop, "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_back_off() {
        let policy = retry_policy(3);
        let started = tokio::time::Instant::now();
        let (outcome, attempts) = policy
            .run(&KubeRetryLogic { idempotent: true }, || async {
                Err::<(), _>(api_error(503))
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(attempts, 4);
        // Full jitter: somewhere between nothing and 250 + 500 + 1000 ms.
        assert!(
            started.elapsed() <= Duration::from_millis(1750),
            "{:?}",
            started.elapsed()
        );

        let (outcome, attempts) = policy
            .run(&KubeRetryLogic { idempotent: true }, || async {
                Err::<(), _>(api_error(403))
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(attempts, 1, "a refusal is not retried");
    }
}
