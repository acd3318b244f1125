//! The Job controller and the kubelet of the test API server. For each
//! created Job a task makes its pod (`<job>-<5 random>`, labelled and owned
//! like the real controller's), waits as the kubelet does for the
//! ConfigMaps and Secrets its volumes name, runs it for real with
//! [`Kubelet`], writes the pod's final status (container states with exit
//! codes and termination messages), and reads the pod through the Job's
//! `podFailurePolicy` and `backoffLimit` into the Job's status and
//! conditions, retrying with a new pod when the policy says so. One pod at
//! a time per Job (`parallelism` and `completions` other than 1 are not
//! simulated); Jobs run concurrently.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::store::{self, Kind};
use super::{Shared, lock};
use crate::kubelet::{ContainerRun, JobAction, Kubelet, Phase, PodRun};
use crate::manifests::Manifests;

/// How long a pod waits for the ConfigMaps and Secrets its volumes name
/// before it fails (a real kubelet would wait for ever).
const VOLUME_WAIT: Duration = Duration::from_secs(10);

/// How many times an `Ignore`d failure is retried before it counts.
const MAX_IGNORED: u32 = 5;

/// Starts the controller's work on a newly created Job.
pub fn start(shared: &Arc<Shared>, namespace: &str, job: &Value) {
    let uid = job["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let task = tokio::spawn(run(
        shared.clone(),
        namespace.to_string(),
        name,
        uid.clone(),
    ));
    lock(&shared.runs).insert(uid, task.abort_handle());
}

/// Whether a Job has finished (a true `Complete` or `Failed` condition).
pub fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

/// One Job: where it is, which one it is.
struct JobRef {
    shared: Arc<Shared>,
    namespace: String,
    name: String,
    uid: String,
}

impl JobRef {
    /// The Job now, if it is still this one.
    fn current(&self) -> Option<Value> {
        let store = self.shared.store();
        let job = store.get(Kind::Job, &self.namespace, &self.name)?;
        (job["metadata"]["uid"] == self.uid.as_str()).then(|| job.clone())
    }

    /// Merges `status` into the Job's status (one MODIFIED event).
    fn set_status(&self, status: Value) {
        let mut store = self.shared.store();
        let same = store
            .get(Kind::Job, &self.namespace, &self.name)
            .is_some_and(|job| job["metadata"]["uid"] == self.uid.as_str());
        if same {
            store.update(Kind::Job, &self.namespace, &self.name, |job| {
                super::objects::merge(&mut job["status"], &status);
            });
        }
    }

    fn set_pod_status(&self, pod: &str, status: Value) {
        self.shared
            .store()
            .update(Kind::Pod, &self.namespace, pod, |object| {
                object["status"] = status
            });
    }

    /// The Job's final conditions, `reason` and `message` on both.
    fn finish(&self, kind: (&str, &str), counts: Value, reason: &str, message: &str) {
        let now = store::now();
        let condition = |kind: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": now, "lastTransitionTime": now})
        };
        let mut status = json!({
            "active": 0,
            "ready": 0,
            "terminating": 0,
            "conditions": [condition(kind.0), condition(kind.1)],
        });
        if kind.1 == "Complete" {
            status["completionTime"] = json!(now);
        }
        super::objects::merge(&mut status, &counts);
        self.set_status(status);
    }
}

/// What became of one pod.
enum Outcome {
    /// It ran; its containers started at this wall-clock time.
    Ran(Box<PodRun>, OffsetDateTime),
    /// It never started (a volume's source is missing).
    NotStarted(String),
    /// The kubelet harness itself failed (a panic in it or in the test's
    /// configuration hook).
    Crashed(String),
    /// `activeDeadlineSeconds` passed while it ran.
    DeadlineExceeded,
}

async fn run(shared: Arc<Shared>, namespace: String, name: String, uid: String) {
    let job = JobRef {
        shared,
        namespace,
        name,
        uid,
    };
    let started = Instant::now();
    let Some(spec) = job.current() else { return };
    let backoff_limit = spec["spec"]["backoffLimit"].as_u64().unwrap_or(6);
    let deadline = spec["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(|s| started + Duration::from_secs(s));
    let mut failed = 0u64;
    let mut ignored = 0u32;
    job.set_status(json!({
        "startTime": store::now(), "active": 1, "ready": 0, "terminating": 0,
        "uncountedTerminatedPods": {},
    }));
    loop {
        let Some(spec) = job.current() else { return };
        let pod = new_pod(&job.namespace, &spec);
        let pod_name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if job
            .shared
            .store()
            .insert(Kind::Pod, &job.namespace, pod)
            .is_none()
        {
            continue; // the random name was taken: another one
        }
        let running = run_pod(&job, &spec, &pod_name);
        let outcome = match deadline {
            None => running.await,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                tokio::time::timeout(left, running)
                    .await
                    .unwrap_or(Outcome::DeadlineExceeded)
            }
        };
        let pod_spec = &spec["spec"]["template"]["spec"];
        let action = match &outcome {
            Outcome::Ran(run, at) => {
                job.set_pod_status(&pod_name, finished_pod_status(pod_spec, run, *at));
                // The harness panics on a policy it does not know: counts.
                std::panic::catch_unwind(AssertUnwindSafe(|| run.job_action(&spec)))
                    .unwrap_or(JobAction::Count)
            }
            Outcome::NotStarted(message) | Outcome::Crashed(message) => {
                job.set_pod_status(&pod_name, unstarted_pod_status(pod_spec, message));
                JobAction::Count
            }
            Outcome::DeadlineExceeded => {
                job.set_pod_status(
                    &pod_name,
                    json!({"phase": "Failed", "reason": "DeadlineExceeded",
                           "message": "Pod was active on the node longer than the specified deadline"}),
                );
                job.finish(
                    ("FailureTarget", "Failed"),
                    json!({"failed": failed + 1}),
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                );
                break;
            }
        };
        match action {
            JobAction::Complete => {
                job.finish(
                    ("SuccessCriteriaMet", "Complete"),
                    json!({"succeeded": 1, "failed": failed}),
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
                break;
            }
            JobAction::FailJob => {
                let message = match &outcome {
                    Outcome::Ran(run, _) => fail_job_message(&spec, run, &job.namespace, &pod_name),
                    _ => "a FailJob rule matched".to_string(),
                };
                job.finish(
                    ("FailureTarget", "Failed"),
                    json!({"failed": failed + 1}),
                    "PodFailurePolicy",
                    &message,
                );
                break;
            }
            JobAction::Ignore if ignored < MAX_IGNORED => ignored += 1,
            JobAction::Ignore | JobAction::Count | JobAction::FailIndex => {
                failed += 1;
                if failed > backoff_limit {
                    job.finish(
                        ("FailureTarget", "Failed"),
                        json!({"failed": failed}),
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    );
                    break;
                }
                job.set_status(json!({"failed": failed}));
            }
        }
    }
    lock(&job.shared.runs).remove(&job.uid);
}

/// A new pod of `job`, Pending, as the Job controller creates it.
fn new_pod(namespace: &str, job: &Value) -> Value {
    let job_name = job["metadata"]["name"].as_str().unwrap_or_default();
    let job_uid = job["metadata"]["uid"].as_str().unwrap_or_default();
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", job_uid),
        ("batch.kubernetes.io/job-name", job_name),
        ("controller-uid", job_uid),
        ("job-name", job_name),
    ] {
        labels.insert(key.to_string(), json!(value));
    }
    let now = store::now();
    let mut metadata = json!({
        "name": format!("{job_name}-{}", store::random_suffix()),
        "generateName": format!("{job_name}-"),
        "namespace": namespace,
        "uid": store::uid(),
        "creationTimestamp": now,
        "labels": labels,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                             "uid": job_uid, "controller": true, "blockOwnerDeletion": true}],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        metadata["annotations"] = Value::Object(annotations.clone());
    }
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("kind-worker");
    let waiting = json!({"waiting": {"reason": "ContainerCreating"}});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": statuses(&spec["containers"], |_| waiting.clone()),
            "initContainerStatuses": statuses(&spec["initContainers"], |_| waiting.clone()),
        },
    })
}

/// One status per container of `specs`, in order, with `state`.
fn statuses(specs: &Value, state: impl Fn(&Value) -> Value) -> Value {
    let list: Vec<Value> = specs
        .as_array()
        .into_iter()
        .flatten()
        .map(|spec| {
            json!({"name": spec["name"], "ready": false, "restartCount": 0, "started": false,
                   "image": spec["image"], "imageID": "", "state": state(spec)})
        })
        .collect();
    Value::Array(list)
}

/// Waits for the pod's volumes, then runs it.
async fn run_pod(job: &JobRef, spec: &Value, pod_name: &str) -> Outcome {
    let pod_spec = &spec["spec"]["template"]["spec"];
    let waited = Instant::now();
    loop {
        match missing_volume_source(job, pod_spec) {
            None => break,
            Some(missing) if waited.elapsed() >= VOLUME_WAIT => {
                return Outcome::NotStarted(format!(
                    "MountVolume.SetUp failed: {missing} not found"
                ));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let shared = &job.shared;
    let started = OffsetDateTime::now_utc();
    let running = json!({"running": {"startedAt": store::timestamp(started)}});
    job.set_pod_status(
        pod_name,
        json!({
            "phase": "Running",
            "startTime": store::timestamp(started),
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Initialized", "status": "True"}],
            "containerStatuses": statuses(&pod_spec["containers"], |_| running.clone()),
            "initContainerStatuses": statuses(&pod_spec["initContainers"], |_| running.clone()),
        }),
    );
    job.set_status(json!({"ready": 1}));
    let mut objects = vec![spec.clone()];
    objects.extend(shared.store().list(Kind::ConfigMap, &job.namespace));
    objects.extend(shared.seed.iter().cloned());
    let manifests = Manifests {
        path: PathBuf::from(format!("apiserver/namespaces/{}", job.namespace)),
        objects,
    };
    let mut kubelet = Kubelet::new(manifests, shared.assessor.clone(), shared.relay.clone());
    let configure = shared.configure.clone();
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| configure(&mut kubelet))) {
        return Outcome::Crashed(format!(
            "the kubelet configuration panicked: {}",
            panic_text(&*panic)
        ));
    }
    let outcome = match AssertUnwindSafe(kubelet.run_pod()).catch_unwind().await {
        Ok(run) => Outcome::Ran(Box::new(run), started),
        Err(panic) => Outcome::Crashed(format!("the kubelet failed: {}", panic_text(&*panic))),
    };
    job.set_status(json!({"ready": 0}));
    outcome
}

/// The first ConfigMap or Secret a volume names that does not exist
/// (`configmap "x"`), unless the volume is `optional`.
fn missing_volume_source(job: &JobRef, pod_spec: &Value) -> Option<String> {
    let store = job.shared.store();
    for volume in pod_spec["volumes"].as_array().into_iter().flatten() {
        if let Some(name) = volume["configMap"]["name"].as_str() {
            let exists = store.get(Kind::ConfigMap, &job.namespace, name).is_some();
            if !exists && volume["configMap"]["optional"] != true {
                return Some(format!("configmap \"{name}\""));
            }
        }
        if let Some(name) = volume["secret"]["secretName"].as_str() {
            let exists = job
                .shared
                .seed
                .iter()
                .any(|o| o["kind"] == "Secret" && o["metadata"]["name"] == name);
            if !exists && volume["secret"]["optional"] != true {
                return Some(format!("secret \"{name}\""));
            }
        }
    }
    None
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".to_string())
}

/// The pod's status after it ran, as a kubelet reports it.
fn finished_pod_status(pod_spec: &Value, run: &PodRun, started: OffsetDateTime) -> Value {
    let state = |spec: &Value| {
        let name = spec["name"].as_str().unwrap_or_default();
        match run.containers.iter().find(|c| c.name == name) {
            Some(container) => terminated(container, started),
            None => json!({"waiting": {"reason": "PodInitializing"}}),
        }
    };
    json!({
        "phase": match run.phase { Phase::Succeeded => "Succeeded", Phase::Failed => "Failed" },
        "startTime": store::timestamp(started),
        "conditions": [{"type": "PodScheduled", "status": "True"},
                       {"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "False", "reason": "PodCompleted"}],
        "containerStatuses": statuses(&pod_spec["containers"], state),
        "initContainerStatuses": statuses(&pod_spec["initContainers"], state),
    })
}

fn terminated(container: &ContainerRun, started: OffsetDateTime) -> Value {
    let mut state = Map::new();
    state.insert("exitCode".into(), json!(container.exit.code));
    state.insert(
        "reason".into(),
        json!(if container.exit.code == 0 {
            "Completed"
        } else {
            "Error"
        }),
    );
    if let Some(signal) = container.exit.signal {
        state.insert("signal".into(), json!(signal));
    }
    if !container.termination_message.is_empty() {
        state.insert("message".into(), json!(container.termination_message));
    }
    state.insert(
        "startedAt".into(),
        json!(store::timestamp(started + container.started_at)),
    );
    state.insert(
        "finishedAt".into(),
        json!(store::timestamp(started + container.ended_at)),
    );
    json!({"terminated": state})
}

/// A pod that never ran its containers: Failed, its containers waiting.
fn unstarted_pod_status(pod_spec: &Value, message: &str) -> Value {
    let waiting = json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}});
    json!({
        "phase": "Failed",
        "message": message,
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": statuses(&pod_spec["containers"], |_| waiting.clone()),
        "initContainerStatuses": statuses(&pod_spec["initContainers"], |_| waiting.clone()),
    })
}

/// The real controller's message for a `FailJob` match: which container,
/// which exit code, which rule.
fn fail_job_message(job: &Value, run: &PodRun, namespace: &str, pod: &str) -> String {
    match run.failure_rule(job) {
        Some(matched) => format!(
            "Container {} for pod {namespace}/{pod} failed with exit code {} matching {:?} rule at index {}",
            matched.container.name, matched.container.exit.code, matched.action, matched.index,
        ),
        None => format!("Pod {namespace}/{pod} failed matching a FailJob rule"),
    }
}
