//! The test API server (`pod_tests::apiserver`) on the wire: what a
//! Kubernetes client sends and gets back (objects, lists, `Status` errors,
//! watch streams), the Job controller's and kubelet's part (a created Job's
//! pod really runs the built pair, and the Job's status and conditions
//! follow), the garbage collector, and the injected failures.

use std::time::Duration;

use pod_tests::apiserver::{ApiServer, ClusterOptions};
use pod_tests::manifests::Manifests;
use pod_tests::wiring;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{FakeOpenAi, Notifier, verdict};

const NS: &str = "shortlist";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A server seeded like the base deployment (its Secret, with a random
/// webhook secret, its ServiceAccount and NetworkPolicy), whose pods are
/// judged by `judge` and deliver to `notifier`.
struct Cluster {
    server: ApiServer,
    http: reqwest::Client,
    base: Manifests,
    _judge: FakeOpenAi,
    notifier: Notifier,
    _pvc: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let mut base = Manifests::rendered("base");
    wiring::webhook_secret(&mut base);
    let judge =
        FakeOpenAi::answering(|_| verdict("accept", 0.9, "the test judge says accept")).await;
    let notifier = Notifier::start(vec![]).await;
    let pvc = tempfile::tempdir().unwrap();
    let seed = base
        .objects
        .iter()
        .filter(|o| {
            ["Secret", "ServiceAccount", "NetworkPolicy"]
                .contains(&o["kind"].as_str().unwrap_or_default())
        })
        .cloned();
    let (judge_url, notifier_url, pvc_root) = (
        judge.base_url(),
        notifier.url("/hook"),
        pvc.path().to_path_buf(),
    );
    let options = ClusterOptions::new(testkit::binary::assessor(), testkit::binary::relay())
        .seed(seed)
        .configure(move |kubelet| wiring::wire(kubelet, &judge_url, &notifier_url, &pvc_root));
    Cluster {
        server: ApiServer::start(options).await,
        http: reqwest::Client::new(),
        base,
        _judge: judge,
        notifier,
        _pvc: pvc,
    }
}

fn config_maps(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

fn jobs(ns: &str) -> String {
    format!("/apis/batch/v1/namespaces/{ns}/jobs")
}

fn pods(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods")
}

impl Cluster {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    async fn merge_patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .patch(self.url(path))
                .header("content-type", MERGE_PATCH)
                .body(body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str, options: &Value) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).json(options))
            .await
    }

    /// The base deployment's profile ConfigMap, to be created under a
    /// generated name, with `profile` as its profile if given.
    fn profile_config_map(&self, profile: Option<&str>) -> Value {
        let mut cm = self
            .base
            .objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap")
            .unwrap()
            .clone();
        cm["metadata"] = json!({"generateName": "shortlist-profile-",
                                "labels": {"app.kubernetes.io/name": "shortlist-assess", "test": "yes"}});
        if let Some(profile) = profile {
            cm["data"]["profile.json"] = json!(profile);
        }
        cm
    }

    /// The base deployment's Job, under a generated name, mounting
    /// ConfigMap `profile`.
    fn job(&self, profile: &str) -> Value {
        let mut job = self.base.job().clone();
        let metadata = job["metadata"].as_object_mut().unwrap();
        metadata.remove("name");
        metadata.insert("generateName".into(), json!("shortlist-assess-"));
        for volume in job["spec"]["template"]["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
        {
            if volume.get("configMap").is_some() {
                volume["configMap"]["name"] = json!(profile);
            }
        }
        job
    }

    /// Creates a profile ConfigMap and a Job mounting it, owning it;
    /// returns the Job as created.
    async fn launch(&self, profile: Option<&str>) -> Value {
        let (status, cm) = self
            .post(&config_maps(NS), &self.profile_config_map(profile))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cm}");
        let cm_name = cm["metadata"]["name"].as_str().unwrap();
        let (status, job) = self.post(&jobs(NS), &self.job(cm_name)).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
            "name": job["metadata"]["name"], "uid": job["metadata"]["uid"]}]}});
        let (status, patched) = self
            .merge_patch(&format!("{}/{cm_name}", config_maps(NS)), &owner)
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        job
    }
}

/// Whether `object` reads as the typed `T` a kube client deserializes.
fn assert_typed<T: serde::de::DeserializeOwned>(object: &Value) {
    if let Err(e) = serde_json::from_value::<T>(object.clone()) {
        panic!(
            "not a valid {}: {e}\n{object:#}",
            std::any::type_name::<T>()
        );
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap()
}

fn rv_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_status(status: StatusCode, body: &Value, code: u16, reason: &str) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Reads a watch stream to its end (or `until` an event), one event per
/// line; gives up after `within`.
async fn watch_events(
    response: reqwest::Response,
    within: Duration,
    until: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut response = response;
    let mut events = Vec::new();
    let mut buffer = Vec::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("the stream reads") {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let event: Value = serde_json::from_slice(&line).expect("one JSON event a line");
                let done = until(&event);
                events.push(event);
                if done {
                    return;
                }
            }
        }
        assert!(buffer.is_empty(), "a partial last line");
    };
    if tokio::time::timeout(within, read).await.is_err() {
        panic!("the watch did not end within {within:?}: {events:#?}");
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_maps_are_created_listed_patched_and_deleted_in_the_wire_format() {
    let cluster = cluster().await;
    let (status, cm) = cluster
        .post(&config_maps(NS), &cluster.profile_config_map(None))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cm}");
    let name = name_of(&cm).to_string();
    let suffix = name
        .strip_prefix("shortlist-profile-")
        .expect("generateName is the prefix");
    assert_eq!(suffix.len(), 5);
    assert!(
        suffix
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(cm["metadata"]["namespace"], NS);
    assert_eq!(cm["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(rv_of(&cm) > 0);
    let created = cm["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );

    let (status, got) = cluster.get(&format!("{}/{name}", config_maps(NS))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, cm);
    assert_typed::<k8s_openapi::api::core::v1::ConfigMap>(&got);

    let (status, list) = cluster
        .get(&format!(
            "{}?labelSelector=test%3Dyes,app.kubernetes.io/name%3Dshortlist-assess",
            config_maps(NS)
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(rv_of(&list) >= rv_of(&cm));
    assert!(list["metadata"].get("continue").is_none());
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["kind"], "ConfigMap");
    let (_, none) = cluster
        .get(&format!(
            "{}?labelSelector=test%3Dno&limit=500",
            config_maps(NS)
        ))
        .await;
    assert_eq!(none["items"], json!([]));
    let (_, elsewhere) = cluster.get(&config_maps("other")).await;
    assert_eq!(elsewhere["items"], json!([]));

    let owner = json!({"metadata": {"ownerReferences": [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "5b1c9f0e-0000-4000-8000-000000000009"}]}});
    let (status, patched) = cluster
        .merge_patch(&format!("{}/{name}", config_maps(NS)), &owner)
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["metadata"]["ownerReferences"],
        owner["metadata"]["ownerReferences"]
    );
    assert_eq!(
        patched["data"], cm["data"],
        "a merge patch keeps what it does not name"
    );
    assert!(rv_of(&patched) > rv_of(&cm));
    let requests = cluster.server.requests();
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.content_type.as_deref(), Some(MERGE_PATCH));
    assert_eq!(patch.body.as_ref(), Some(&owner));

    let (status, body) = cluster
        .send(
            cluster
                .http
                .patch(cluster.url(&format!("{}/{name}", config_maps(NS))))
                .json(&owner),
        )
        .await;
    assert_status(status, &body, 415, "UnsupportedMediaType");
    let mut again = cluster.profile_config_map(None);
    again["metadata"] = json!({"name": name});
    let (status, body) = cluster.post(&config_maps(NS), &again).await;
    assert_status(status, &body, 409, "AlreadyExists");

    let (status, body) = cluster
        .delete(
            &format!("{}/{name}", config_maps(NS)),
            &json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["details"]["name"], name.as_str());
    let (status, body) = cluster.get(&format!("{}/{name}", config_maps(NS))).await;
    assert_status(status, &body, 404, "NotFound");
    assert_eq!(body["message"], format!("configmaps \"{name}\" not found"));
    assert!(cluster.server.config_maps(NS).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_pod_runs_the_pair_and_the_watch_follows_it_to_complete() {
    let cluster = cluster().await;
    let (_, list) = cluster.get(&jobs(NS)).await;
    assert_eq!(list["kind"], "JobList");
    let since = rv_of(&list);
    let job = cluster.launch(None).await;
    let name = name_of(&job).to_string();
    assert!(
        name.starts_with("shortlist-assess-") && name.len() == 22,
        "{name}"
    );
    assert_eq!(job["spec"]["backoffLimit"], 3);
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        name.as_str()
    );

    // As kube's watcher asks after its list.
    let watch = cluster
        .http
        .get(cluster.url(&format!(
            "{}?&watch=true&timeoutSeconds=290&fieldSelector=metadata.name%3D{name}&allowWatchBookmarks=true&resourceVersion={since}",
            jobs(NS)
        )))
        .send()
        .await
        .unwrap();
    let events = watch_events(watch, Duration::from_secs(90), |e| {
        condition(&e["object"], "Complete").is_some() || condition(&e["object"], "Failed").is_some()
    })
    .await;
    assert_eq!(events[0]["type"], "ADDED", "{events:#?}");
    assert_eq!(name_of(&events[0]["object"]), name);
    assert!(
        events[1..]
            .iter()
            .all(|e| e["type"] == "MODIFIED" || e["type"] == "BOOKMARK"),
        "{events:#?}"
    );
    let versions: Vec<u64> = events.iter().map(|e| rv_of(&e["object"])).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(
        events.iter().any(|e| e["object"]["status"]["active"] == 1),
        "{events:#?}"
    );
    for event in &events {
        if event["type"] != "BOOKMARK" {
            assert_typed::<k8s_openapi::api::batch::v1::Job>(&event["object"]);
        }
    }
    let done = &events.last().unwrap()["object"];
    let pods_now = cluster.server.pods(NS);
    let complete = condition(done, "Complete")
        .unwrap_or_else(|| panic!("the Job failed: {done:#}\npods: {pods_now:#?}"));
    assert_eq!(complete["reason"], "CompletionsReached");
    assert!(condition(done, "SuccessCriteriaMet").is_some());
    assert_eq!(done["status"]["succeeded"], 1);
    assert_eq!(done["status"]["active"], 0);
    assert!(
        done["status"]["startTime"].is_string() && done["status"]["completionTime"].is_string()
    );

    // The pod, found as the runner finds it, reads as a kubelet wrote it.
    let (_, pod_list) = cluster
        .get(&format!(
            "{}?labelSelector=batch.kubernetes.io%2Fjob-name%3D{name}",
            pods(NS)
        ))
        .await;
    assert_eq!(pod_list["kind"], "PodList");
    let items = pod_list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{pod_list:#}");
    let pod = &items[0];
    assert_typed::<k8s_openapi::api::core::v1::Pod>(pod);
    assert!(name_of(pod).starts_with(&format!("{name}-")));
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["uid"],
        job["metadata"]["uid"]
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    let assessor = &pod["status"]["containerStatuses"][0];
    assert_eq!(assessor["name"], "assessor");
    assert_eq!(assessor["image"], "ghcr.io/shortlist/assessor:0.1.0");
    let terminated = &assessor["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0);
    assert_eq!(terminated["reason"], "Completed");
    let summary: Value = serde_json::from_str(terminated["message"].as_str().unwrap()).unwrap();
    assert_eq!(summary["schema"], "shortlist.termination/v1");
    assert_eq!(summary["verdict"], "accept");
    let relay = &pod["status"]["initContainerStatuses"][0];
    assert_eq!(relay["name"], "relay");
    assert_eq!(relay["state"]["terminated"]["exitCode"], 0);
    let (_, one) = cluster.get(&format!("{}/{}", pods(NS), name_of(pod))).await;
    assert_eq!(&one, pod);
    assert_eq!(cluster.notifier.requests().len(), 1, "one delivery");

    // Deleting the Job in the background takes its pod and its ConfigMap.
    let (status, body) = cluster
        .delete(
            &format!("{}/{name}", jobs(NS)),
            &json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(cluster.server.jobs(NS).is_empty());
    assert!(cluster.server.pods(NS).is_empty());
    assert!(cluster.server.config_maps(NS).is_empty());
    let (status, body) = cluster.get(&format!("{}/{name}", jobs(NS))).await;
    assert_status(status, &body, 404, "NotFound");
    assert_eq!(body["message"], format!("jobs.batch \"{name}\" not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_profile_fails_the_job_through_its_pod_failure_policy() {
    let cluster = cluster().await;
    let job = cluster.launch(Some("{\"text\": 42}")).await;
    let name = name_of(&job);
    let done = cluster
        .server
        .job_finished(NS, name, Duration::from_secs(60))
        .await
        .expect("the Job finishes");
    let failed = condition(&done, "Failed").unwrap_or_else(|| panic!("{done:#}"));
    assert_eq!(failed["reason"], "PodFailurePolicy");
    assert!(condition(&done, "FailureTarget").is_some());
    let pods = cluster.server.pods(NS);
    assert_eq!(pods.len(), 1, "FailJob does not retry");
    assert_eq!(
        failed["message"],
        format!(
            "Container assessor for pod {NS}/{} failed with exit code 3 matching FailJob rule at index 0",
            name_of(&pods[0])
        )
    );
    assert_eq!(done["status"]["failed"], 1);
    assert_eq!(pods[0]["status"]["phase"], "Failed");
    let terminated = &pods[0]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["reason"], "Error");
    let summary: Value = serde_json::from_str(terminated["message"].as_str().unwrap()).unwrap();
    assert_eq!(summary["error"]["kind"], "profile_invalid");
    // Without a propagation policy a Job's pods are orphaned, not deleted.
    let (status, _) = cluster
        .delete(&format!("{}/{name}", jobs(NS)), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let pods = cluster.server.pods(NS);
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["metadata"]["ownerReferences"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_creation_is_refused_as_asked_and_bad_names_are_invalid() {
    let cluster = cluster().await;
    let refusal = "jobs.batch is forbidden: User \"system:serviceaccount:shortlist:runner\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"shortlist\"";
    cluster
        .server
        .refuse_job_creation(403, "Forbidden", refusal);
    let (status, body) = cluster.post(&jobs(NS), &cluster.job("absent")).await;
    assert_status(status, &body, 403, "Forbidden");
    assert_eq!(body["message"], refusal);
    assert!(cluster.server.jobs(NS).is_empty());
    cluster.server.accept_job_creation();

    let mut long = cluster.job("absent");
    long["metadata"]["name"] = json!("x".repeat(64));
    let (status, body) = cluster.post(&jobs(NS), &long).await;
    assert_status(status, &body, 422, "Invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("must be no more than 63 characters"),
        "{body}"
    );
    // A long generateName is cut so that the name fits.
    let mut generated = cluster.job("absent");
    generated["metadata"]["generateName"] = json!(format!("{}-", "y".repeat(70)));
    let (status, body) = cluster.post(&jobs(NS), &generated).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(name_of(&body).len(), 63);
    // Its pod waits for the ConfigMap that never comes (ContainerCreating).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pods = cluster.server.pods(NS);
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["status"]["phase"], "Pending");
    assert_eq!(
        pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    let (status, body) = cluster
        .post(&jobs(NS), &json!({"metadata": {"name": "x"}}))
        .await;
    assert_status(status, &body, 422, "Invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_can_be_unavailable_for_a_few_requests() {
    let cluster = cluster().await;
    cluster.server.unavailable_for(2);
    for _ in 0..2 {
        let (status, body) = cluster.get(&jobs(NS)).await;
        assert_status(status, &body, 503, "ServiceUnavailable");
    }
    let (status, _) = cluster.get(&jobs(NS)).await;
    assert_eq!(status, StatusCode::OK);
    let requests = cluster.server.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.path == jobs(NS))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_replay_history_end_with_a_bookmark_and_expire_once_compacted() {
    let cluster = cluster().await;
    let before = cluster.server.resource_version();
    let (_, cm) = cluster
        .post(&config_maps(NS), &cluster.profile_config_map(None))
        .await;
    let path = format!("{}/{}", config_maps(NS), name_of(&cm));
    cluster
        .merge_patch(&path, &json!({"metadata": {"labels": {"test": "no"}}}))
        .await;

    // Replayed from `before`: added, then it left the selection.
    let watch = cluster
        .http
        .get(cluster.url(&format!(
            "{}?watch=1&labelSelector=test%3Dyes&resourceVersion={before}&timeoutSeconds=1&allowWatchBookmarks=true",
            config_maps(NS)
        )))
        .send()
        .await
        .unwrap();
    let events = watch_events(watch, Duration::from_secs(10), |_| false).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "DELETED", "BOOKMARK"], "{events:#?}");
    let bookmark = &events[2]["object"];
    assert_eq!(bookmark["kind"], "ConfigMap");
    assert_eq!(rv_of(bookmark), cluster.server.resource_version());

    // Resource version 0: every current object, then live changes.
    let watch = cluster
        .http
        .get(cluster.url(&format!(
            "{}?watch=true&resourceVersion=0&timeoutSeconds=5",
            config_maps(NS)
        )))
        .send()
        .await
        .unwrap();
    cluster
        .merge_patch(&path, &json!({"data": {"extra": "1"}}))
        .await;
    let events = watch_events(watch, Duration::from_secs(10), |e| e["type"] == "MODIFIED").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["object"]["data"]["extra"], "1");

    cluster.server.compact();
    let watch = cluster
        .http
        .get(cluster.url(&format!(
            "{}?watch=true&resourceVersion={before}",
            config_maps(NS)
        )))
        .send()
        .await
        .unwrap();
    let events = watch_events(watch, Duration::from_secs(10), |_| false).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "ERROR");
    let status = &events[0]["object"];
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_unknown_paths_get_status_objects() {
    let cluster = cluster().await;
    let (status, body) = cluster.get("/api/v1/namespaces/shortlist/secrets").await;
    assert_status(status, &body, 404, "NotFound");
    let (status, body) = cluster.get("/nothing/here").await;
    assert_status(status, &body, 404, "NotFound");
    let (status, body) = cluster
        .get(&format!("{}?labelSelector=a%20in%20(b", jobs(NS)))
        .await;
    assert_status(status, &body, 400, "BadRequest");
    let (status, body) = cluster
        .get(&format!("{}?fieldSelector=spec.parallelism%3D1", jobs(NS)))
        .await;
    assert_status(status, &body, 400, "BadRequest");
    let (status, body) = cluster
        .get(&format!("{}?watch=true&resourceVersion=abc", jobs(NS)))
        .await;
    assert_status(status, &body, 400, "BadRequest");
    let (status, body) = cluster
        .send(
            cluster
                .http
                .post(cluster.url(&config_maps(NS)))
                .body("{not json"),
        )
        .await;
    assert_status(status, &body, 400, "BadRequest");
    let (status, body) = cluster
        .post(
            &config_maps(NS),
            &json!({"kind": "Secret", "metadata": {"name": "a"}}),
        )
        .await;
    assert_status(status, &body, 400, "BadRequest");
    let (status, body) = cluster
        .post(&pods(NS), &json!({"metadata": {"name": "a"}}))
        .await;
    assert_status(status, &body, 405, "MethodNotAllowed");
    let (status, body) = cluster
        .merge_patch(&format!("{}/absent", config_maps(NS)), &json!({}))
        .await;
    assert_status(status, &body, 404, "NotFound");
    let (status, body) = cluster
        .delete(&format!("{}/absent", jobs(NS)), &json!({}))
        .await;
    assert_status(status, &body, 404, "NotFound");
    let (status, body) = cluster
        .delete(
            &format!("{}/absent", jobs(NS)),
            &json!({"propagationPolicy": "Sideways"}),
        )
        .await;
    assert_status(status, &body, 400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_first_comes_up_on_its_port_and_can_go_away_again() {
    let port = testkit::unbound_port();
    let options = ClusterOptions::new(testkit::binary::assessor(), testkit::binary::relay());
    let server = ApiServer::down_on(port, options);
    let http = reqwest::Client::new();
    let version = format!("http://127.0.0.1:{port}/version");
    assert!(
        http.get(&version).send().await.is_err(),
        "nothing listens yet"
    );
    server.listen().await;
    let answer: Value = http
        .get(&version)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["major"], "1");
    server.stop_listening().await;
    assert!(http.get(&version).send().await.is_err(), "it went away");
    server.listen().await;
    assert!(
        http.get(&version)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = std::fs::read_to_string(server.kubeconfig(dir.path())).unwrap();
    let parsed: Value = serde_yaml_ng::from_str(&kubeconfig).unwrap();
    assert_eq!(
        parsed["clusters"][0]["cluster"]["server"],
        format!("http://127.0.0.1:{port}")
    );
    assert_eq!(parsed["contexts"][0]["context"]["namespace"], NS);
    assert_eq!(parsed["current-context"], "test");
}

/// kube-rs itself (client and watcher, as the runner uses them) against
/// the server: typed create, merge patch and delete; a watcher that lists,
/// watches, and after a compaction gets 410 and lists again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_clients_and_watchers_work_against_it() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    use kube::runtime::watcher;

    // kube builds its TLS config from rustls' process-wide provider, which
    // must be chosen when features could bring in more than one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(cluster.server.kubeconfig(dir.path())).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, NS);
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap = serde_json::from_value(cluster.profile_config_map(None)).unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    let owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
        "name": "j", "uid": "5b1c9f0e-0000-4000-8000-000000000009"}]}});
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&owner))
        .await
        .unwrap();
    assert_eq!(patched.metadata.owner_references.unwrap()[0].name, "j");
    let missing = api.get("absent").await.unwrap_err();
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404),
        "{missing:?}"
    );

    let mut events = watcher(
        api.clone(),
        watcher::Config::default().timeout(1).disable_bookmarks(),
    )
    .boxed();
    let mut seen = Vec::new();
    let mut next = async || {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the watcher goes on")
            .expect("the watcher does not end");
        match event {
            Ok(watcher::Event::Init) => "init".to_string(),
            Ok(watcher::Event::InitApply(cm)) => {
                format!("init-apply {}", cm.metadata.name.unwrap())
            }
            Ok(watcher::Event::InitDone) => "init-done".to_string(),
            Ok(watcher::Event::Apply(cm)) => format!("apply {}", cm.metadata.name.unwrap()),
            Ok(watcher::Event::Delete(cm)) => format!("delete {}", cm.metadata.name.unwrap()),
            Err(e) => format!("error {e}"),
        }
    };
    for _ in 0..3 {
        seen.push(next().await);
    }
    assert_eq!(
        seen,
        ["init", format!("init-apply {name}").as_str(), "init-done"]
    );
    // A change elsewhere moves the resourceVersion on; compaction then
    // expires the one the watcher resumes from.
    cluster
        .post(
            &config_maps("elsewhere"),
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    cluster.server.compact();
    let mut after = Vec::new();
    while after.last().map(String::as_str) != Some("init-done") {
        after.push(next().await);
        assert!(after.len() < 10, "{after:?}");
    }
    assert!(
        after[0].starts_with("error") && after[0].contains("Expired"),
        "{after:?}"
    );
    assert_eq!(
        after[1..],
        ["init", format!("init-apply {name}").as_str(), "init-done"]
    );
    let lists = cluster
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == config_maps(NS) && !r.is_watch())
        .count();
    assert_eq!(lists, 2, "the watcher listed again");

    api.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
    seen.clear();
    seen.push(next().await);
    assert_eq!(seen, [format!("delete {name}")]);
}
