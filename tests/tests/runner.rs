//! The runner end to end: the real `runner` binary, through kube-rs, against
//! the test API server (`pod_tests::apiserver`), whose Jobs run the real
//! assessor and relay in the kubelet in miniature; the judge and the
//! notifier are real HTTP servers on 127.0.0.1. What the runner prints and
//! exits with is checked against what the cluster holds afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pod_tests::apiserver::{ApiServer, ClusterOptions, RecordedRequest};
use pod_tests::kubelet::Kubelet;
use pod_tests::manifests::Manifests;
use serde_json::{Value, json};
use testkit::{FakeOpenAi, Notifier, Output, Process, command, unbound_port, verdict};

const NAMESPACE: &str = "shortlist";
/// What the id of `examples/profiles/redland-flat.json` is.
const REDLAND: &str = "examples/profiles/redland-flat.json";
/// A listing with this id has its pod read a profile that is not there:
/// the assessor's exit 3, from inside the pod.
const UNREADABLE: &str = "unreadable-profile";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn listing_id(path: &Path) -> String {
    let value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["metadata"]["id"].as_str().unwrap().to_string()
}

/// A cluster: the test API server seeded with what `deploy/base` applies
/// once (its Secret with a real webhook secret, the ServiceAccount, the
/// NetworkPolicy), whose pods judge with `judge` and deliver to `notifier`.
struct Cluster {
    server: ApiServer,
    secret: String,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn cluster_options(
    judge: &FakeOpenAi,
    notifier: &Notifier,
) -> (ClusterOptions, String, tempfile::TempDir) {
    let mut base = Manifests::rendered("base");
    let secret = pod_tests::webhook_secret(&mut base);
    let seed: Vec<Value> = base
        .objects
        .into_iter()
        .filter(|o| o["kind"] != "Job" && o["kind"] != "ConfigMap")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let judge_url = judge.base_url();
    let notifier_url = notifier.url("/hook");
    let options = ClusterOptions::new(testkit::binary::assessor(), testkit::binary::relay())
        .seed(seed)
        .configure(move |kubelet: &mut Kubelet| {
            kubelet.host_volumes.insert("models".into(), models.clone());
            kubelet
                .set_env("assessor", "LLM_BACKEND", "openai")
                .set_env("assessor", "LLM_BASE_URL", judge_url.clone())
                .set_env("assessor", "LLM_MODEL", "runner-test")
                .set_env("assessor", "LLM_RETRY_BASE_DELAY", "50ms")
                .set_env("relay", "NOTIFIER_URL", notifier_url.clone());
            let id = kubelet.manifests.job()["metadata"]["annotations"]["shortlist.dev/listing-id"]
                .clone();
            if id == UNREADABLE {
                kubelet.set_env("assessor", "PROFILE_PATH", "/nonexistent/profile.json");
            }
        });
    (options, secret, dir)
}

impl Cluster {
    async fn start(judge: &FakeOpenAi, notifier: &Notifier) -> Cluster {
        let (options, secret, dir) = cluster_options(judge, notifier);
        let server = ApiServer::start(options).await;
        let kubeconfig = server.kubeconfig(dir.path());
        Cluster {
            server,
            secret,
            dir,
            kubeconfig,
        }
    }

    /// The runner with this cluster's kubeconfig and quick retries.
    fn runner(&self, args: &[&str]) -> tokio::process::Command {
        runner_command(&self.kubeconfig, self.dir.path(), args)
    }

    /// The ConfigMaps a submission made (the seed has none).
    fn listing_config_maps(&self) -> Vec<Value> {
        self.server.config_maps(NAMESPACE)
    }
}

fn runner_command(kubeconfig: &Path, dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = command(
        testkit::binary::runner(),
        dir,
        [
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("RUNNER_API_RETRIES", "3"),
            ("HOME", dir.to_str().unwrap()),
        ],
    );
    cmd.args(args);
    cmd
}

async fn run(cmd: tokio::process::Command) -> Output {
    Process::spawn(cmd, None)
        .wait(Duration::from_secs(120))
        .await
}

async fn judge(verdict_of_all: &'static str) -> FakeOpenAi {
    let score = if verdict_of_all == "accept" { 0.9 } else { 0.1 };
    let reason = format!("the test judge says {verdict_of_all}");
    FakeOpenAi::answering(move |_| verdict(verdict_of_all, score, &reason)).await
}

fn calls(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| !r.is_watch() && r.method != "GET")
        .map(|r| {
            let kind = if r.path.contains("/jobs") {
                "jobs"
            } else {
                "configmaps"
            };
            format!("{} {kind}", r.method)
        })
        .collect()
}

/// A value of `key:   value` in the runner's text output.
fn field<'a>(out: &'a Output, key: &str) -> Option<&'a str> {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")).map(str::trim))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_listing_is_judged_delivered_and_reported_by_submit_wait() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let listing = root().join(REDLAND);
    let id = listing_id(&listing);

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait=90s"])).await;
    out.assert_code(0);
    let job_name = out.stdout_lines()[0].to_string();
    assert!(
        job_name.starts_with("shortlist-ex-redland-flat-"),
        "{}",
        out.ctx()
    );
    assert_eq!(field(&out, "state"), Some("succeeded"), "{}", out.ctx());
    assert_eq!(field(&out, "exit code"), Some("0"));
    assert_eq!(field(&out, "verdict"), Some("accept"));
    assert_eq!(field(&out, "score"), Some("0.90"));
    assert_eq!(field(&out, "reason"), Some("the test judge says accept"));

    // Delivered once, signed with the cluster's secret, for this listing.
    let deliveries = notifier.requests();
    assert_eq!(deliveries.len(), 1, "{}", out.ctx());
    assert!(deliveries[0].signature_valid(&cluster.secret));
    assert_eq!(deliveries[0].json()["assessment"]["id"], id.as_str());

    // ConfigMap, Job, owner reference: in that order, nothing else written.
    assert_eq!(
        calls(&cluster.server.requests()),
        ["POST configmaps", "POST jobs", "PATCH configmaps"]
    );
    let jobs = cluster.server.jobs(NAMESPACE);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["metadata"]["name"], job_name.as_str());
    assert_eq!(
        job["metadata"]["annotations"]["shortlist.dev/listing-id"],
        id.as_str()
    );
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "shortlist-runner"
    );
    assert!(
        job["spec"]["ttlSecondsAfterFinished"].as_u64().is_some(),
        "finished Jobs are cleaned up"
    );
    let config_maps = cluster.listing_config_maps();
    assert_eq!(config_maps.len(), 1);
    let config_map = &config_maps[0];
    assert_eq!(
        config_map["data"]["profile.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
        std::fs::read(&listing).unwrap(),
        "the listing is mounted byte for byte"
    );
    let owner = &config_map["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Job");
    assert_eq!(owner["name"], job_name.as_str());
    assert_eq!(owner["uid"], job["metadata"]["uid"]);
    let volume = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "profile")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);

    // Asked again later, by id.
    let again = run(cluster.runner(&["status", &id])).await;
    again.assert_code(0);
    assert_eq!(
        field(&again, "job").map(|j| j.starts_with(&job_name)),
        Some(true),
        "{}",
        again.ctx()
    );
    assert_eq!(field(&again, "verdict"), Some("accept"));
    let unknown = run(cluster.runner(&["status", "never-submitted"])).await;
    unknown.assert_code(22);
    assert!(
        unknown
            .stderr
            .contains("no Job for listing \"never-submitted\""),
        "{}",
        unknown.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_listing_is_reported_and_not_delivered() {
    let judge = judge("reject").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let listing = root().join(REDLAND);

    let out = run(cluster.runner(&[
        "submit",
        listing.to_str().unwrap(),
        "--wait=90s",
        "--output=json",
    ]))
    .await;
    out.assert_code(0);
    let status: Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{}", out.ctx()));
    assert_eq!(status["state"], "succeeded");
    assert_eq!(status["exit_code"], 0);
    assert_eq!(status["summary"]["verdict"], "reject");
    assert_eq!(
        status["summary"]["reasons"][0],
        "the test judge says reject"
    );
    assert_eq!(status["id"], listing_id(&listing).as_str());
    assert_eq!(notifier.count(), 0, "a rejection is not delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assessors_exit_3_in_the_pod_reaches_submit_wait() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let listing = cluster.dir.path().join("unreadable.json");
    std::fs::write(
        &listing,
        json!({"text": "A flat", "metadata": {"id": UNREADABLE}}).to_string(),
    )
    .unwrap();

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait=90s"])).await;
    out.assert_code(3);
    assert_eq!(field(&out, "state"), Some("failed"), "{}", out.ctx());
    assert_eq!(field(&out, "exit code"), Some("3"));
    assert_eq!(
        field(&out, "error"),
        Some("profile_unreadable"),
        "{}",
        out.ctx()
    );
    let job = &cluster.server.jobs(NAMESPACE)[0];
    let failed = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .expect("the Job failed");
    assert_eq!(
        failed["reason"], "PodFailurePolicy",
        "exit 3 is not retried"
    );
    assert_eq!(cluster.server.pods(NAMESPACE).len(), 1, "one pod, no retry");
    assert_eq!(notifier.count(), 0);

    let again = run(cluster.runner(&["status", UNREADABLE, "-o", "json"])).await;
    again.assert_code(3);
    let status: Value = serde_json::from_str(again.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}\n{}", again.ctx()));
    assert_eq!(status["state"], "failed");
    assert_eq!(status["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_or_too_large_listing_is_refused_before_anything_is_created() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let dir = cluster.dir.path();

    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, r#"{"metadata": {"id": "x"}}"#).unwrap();
    let out = run(cluster.runner(&["submit", invalid.to_str().unwrap(), "--wait"])).await;
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("invalid.json: field \"text\" is required"),
        "{}",
        out.ctx()
    );

    let large = dir.join("large.json");
    let text = "A flat with a garden. ".repeat(60_000);
    std::fs::write(
        &large,
        json!({"text": text, "metadata": {"id": "large"}}).to_string(),
    )
    .unwrap();
    let out = run(cluster.runner(&["submit", large.to_str().unwrap()])).await;
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("over Kubernetes' limit of 1048576 bytes for a ConfigMap"),
        "{}",
        out.ctx()
    );
    assert!(out.stderr.contains("nothing was created"));

    let fifo = dir.join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run(cluster.runner(&["submit", fifo.to_str().unwrap()])).await;
    out.assert_code(3);
    assert!(out.stderr.contains("FIFO"), "{}", out.ctx());

    assert!(
        cluster.server.requests().is_empty(),
        "the API server was never asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_job_leaves_no_orphan_configmap() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    cluster.server.refuse_job_creation(
        403,
        "Forbidden",
        "jobs.batch is forbidden: User \"system:serviceaccount:shortlist:shortlist-runner\" cannot create resource \"jobs\"",
    );
    let listing = root().join(REDLAND);

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait"])).await;
    out.assert_code(20);
    assert!(
        out.stderr
            .contains("cannot create Job shortlist-ex-redland-flat-*"),
        "{}",
        out.ctx()
    );
    assert!(
        out.stderr
            .contains("403 Forbidden: jobs.batch is forbidden"),
        "{}",
        out.ctx()
    );
    assert!(
        out.stderr.contains(&cluster.server.url()),
        "names the API server: {}",
        out.ctx()
    );
    assert!(out.stderr.contains("was deleted"), "{}", out.ctx());
    assert_eq!(
        calls(&cluster.server.requests()),
        ["POST configmaps", "POST jobs", "DELETE configmaps"],
        "a refusal is not retried; the ConfigMap is taken back"
    );
    assert!(
        cluster.listing_config_maps().is_empty(),
        "no orphan ConfigMap"
    );
    assert!(cluster.server.jobs(NAMESPACE).is_empty());
    assert!(
        out.stdout.trim().is_empty(),
        "no Job name printed: {}",
        out.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_is_away_is_retried_with_backoff_then_reported() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let listing = root().join(REDLAND);

    // Busy: two 503s, then the submission goes through.
    let cluster = Cluster::start(&judge, &notifier).await;
    cluster.server.unavailable_for(2);
    let out = run(cluster.runner(&["submit", listing.to_str().unwrap()])).await;
    out.assert_code(0);
    let posts = cluster
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/configmaps"))
        .count();
    assert_eq!(posts, 3, "two refused attempts, then the one that made it");
    assert_eq!(cluster.server.jobs(NAMESPACE).len(), 1);
    assert_eq!(cluster.listing_config_maps().len(), 1);
    drop(cluster);

    // Down for good: a clear error after the retries, and nothing made.
    let port = unbound_port();
    let (options, _secret, dir) = cluster_options(&judge, &notifier);
    let down = ApiServer::down_on(port, options);
    let kubeconfig = down.kubeconfig(dir.path());
    let out = run(runner_command(
        &kubeconfig,
        dir.path(),
        &["submit", listing.to_str().unwrap(), "--wait"],
    ))
    .await;
    out.assert_code(20);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.ctx()
    );
    assert!(out.stderr.contains("after 4 attempts"), "{}", out.ctx());
    assert!(
        out.stderr.contains("cannot create ConfigMap"),
        "{}",
        out.ctx()
    );

    // Down, then back within the retries: the submission goes through.
    // Eight retries: with full jitter, three could all fall within the
    // 300 ms the server stays down.
    let mut cmd = runner_command(
        &kubeconfig,
        dir.path(),
        &["submit", listing.to_str().unwrap()],
    );
    cmd.env("RUNNER_API_RETRIES", "8");
    let process = Process::spawn(cmd, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    down.listen().await;
    let out = process.wait(Duration::from_secs(60)).await;
    out.assert_code(0);
    assert_eq!(down.jobs(NAMESPACE).len(), 1, "{}", out.ctx());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_prints_the_objects_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let listing = root().join(REDLAND);
    let out = run(runner_command(
        &dir.path().join("no-kubeconfig"),
        dir.path(),
        &["render", listing.to_str().unwrap()],
    ))
    .await;
    out.assert_code(0);
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&out.stdout) {
        let value: Value = serde::Deserialize::deserialize(document).unwrap();
        if !value.is_null() {
            objects.push(value);
        }
    }
    let kinds: Vec<_> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Job"]);
    assert_eq!(
        objects[0]["data"]["profile.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
        std::fs::read(&listing).unwrap()
    );
    // The pod template is deploy/base's, but for the profile's ConfigMap.
    let base = Manifests::rendered("base");
    let mut expected = base.job()["spec"]["template"]["spec"].clone();
    let mut rendered = objects[1]["spec"]["template"]["spec"].clone();
    for spec in [&mut expected, &mut rendered] {
        for volume in spec["volumes"].as_array_mut().unwrap() {
            if volume["name"] == "profile" {
                volume["configMap"]["name"] = json!("-");
            }
        }
    }
    assert_eq!(rendered, expected);
}

/// `runner serve`, started on a free port; the address it printed.
async fn serve(cluster: &Cluster) -> (Process, String) {
    let mut process = Process::spawn(
        cluster.runner(&["serve", "--listen", "127.0.0.1:0", "--drain-timeout", "2s"]),
        None,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(address) = process
            .stdout_now()
            .lines()
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_string))
        {
            return (process, address);
        }
        assert!(
            std::time::Instant::now() < deadline && !process.has_exited(),
            "runner serve did not start\n{}",
            process.ctx()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_until_finished(http: &reqwest::Client, base: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let response = http
            .get(format!("{base}/v1/listings/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let status: Value = response.json().await.unwrap();
        if status["state"] == "succeeded" || status["state"] == "failed" {
            return status;
        }
        assert!(
            matches!(status["state"].as_str(), Some("pending" | "running")),
            "{status}"
        );
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_submits_listings_and_reports_their_jobs() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let (process, base) = serve(&cluster).await;
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // Accepted and delivered.
    let listing = std::fs::read(root().join(REDLAND)).unwrap();
    let id = listing_id(&root().join(REDLAND));
    let response = http
        .post(format!("{base}/v1/listings"))
        .body(listing)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["id"], id.as_str());
    assert!(
        created["job"]
            .as_str()
            .unwrap()
            .starts_with("shortlist-ex-redland-flat-")
    );
    let status = status_until_finished(&http, &base, &id).await;
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["exit_code"], 0);
    assert_eq!(status["job"], created["job"]);
    assert_eq!(status["summary"]["verdict"], "accept");
    assert_eq!(notifier.count(), 1);

    // The assessor's exit 3 inside the pod.
    let unreadable = json!({"text": "A flat", "metadata": {"id": UNREADABLE}}).to_string();
    let response = http
        .post(format!("{base}/v1/listings"))
        .body(unreadable)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let status = status_until_finished(&http, &base, UNREADABLE).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["exit_code"], 3);
    assert_eq!(status["summary"]["error"]["kind"], "profile_unreadable");

    // Refused requests: JSON errors, nothing created.
    let before = cluster.server.jobs(NAMESPACE).len();
    let response = http
        .post(format!("{base}/v1/listings"))
        .body("{\"metadata\": {}}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_listing");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field \"text\" is required")
    );
    let huge = json!({"text": "x".repeat(2 * 1024 * 1024)}).to_string();
    // Its own connection: the server answers 413 without reading the rest
    // of the body and closes it, which a pooled connection would meet on
    // the next request.
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/listings"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "listing_too_large");
    let response = http
        .get(format!("{base}/v1/listings/no-such-listing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(cluster.server.jobs(NAMESPACE).len(), before);

    // SIGTERM: a clean stop.
    process.sigterm();
    let out = process.wait(Duration::from_secs(15)).await;
    out.assert_code(0);
}

/// A judge that takes `delay` to answer: a pod that runs a while.
async fn slow_judge(delay: Duration) -> FakeOpenAi {
    FakeOpenAi::answering(move |_| verdict("accept", 0.9, "slow but sure").delayed(delay)).await
}

/// The first stdout line (the Job's name) once printed.
async fn job_name_printed(process: &mut Process) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = process.stdout_now().lines().next() {
            return line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline && !process.has_exited(),
            "no Job name printed\n{}",
            process.ctx()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_or_is_interrupted_leaves_the_job_running() {
    let judge = slow_judge(Duration::from_secs(4)).await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let listing = root().join(REDLAND);

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait=1s"])).await;
    out.assert_code(21);
    let job = out.stdout_lines()[0].to_string();
    assert!(
        out.stderr.contains(&format!(
            "Job {job} in namespace shortlist did not finish within 1s"
        )),
        "{}",
        out.ctx()
    );
    assert!(out.stderr.contains("it is left running"));
    assert!(
        out.stderr
            .contains("look again with `runner status ex-redland-flat`"),
        "{}",
        out.ctx()
    );

    let mut process = Process::spawn(
        cluster.runner(&["submit", listing.to_str().unwrap(), "--wait"]),
        None,
    );
    let second = job_name_printed(&mut process).await;
    process.sigint();
    let out = process.wait(Duration::from_secs(10)).await;
    out.assert_code(130);
    assert!(
        out.stderr.contains(&format!("Job {second} runs on")),
        "{}",
        out.ctx()
    );

    // Both Jobs run to the end, each with its owned ConfigMap.
    for name in [&job, &second] {
        let finished = cluster
            .server
            .job_finished(NAMESPACE, name, Duration::from_secs(60))
            .await;
        let finished = finished.unwrap_or_else(|| panic!("{name} did not finish"));
        assert_eq!(finished["status"]["succeeded"], 1, "{finished}");
    }
    let owners: Vec<Value> = cluster
        .listing_config_maps()
        .iter()
        .map(|c| c["metadata"]["ownerReferences"][0]["name"].clone())
        .collect();
    assert_eq!(owners.len(), 2);
    assert!(
        owners.contains(&json!(job)) && owners.contains(&json!(second)),
        "{owners:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_survives_the_api_server_going_away_and_coming_back() {
    let judge = slow_judge(Duration::from_secs(6)).await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    let listing = root().join(REDLAND);

    let mut process = Process::spawn(
        cluster.runner(&["submit", listing.to_str().unwrap(), "--wait=90s"]),
        None,
    );
    job_name_printed(&mut process).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The judge takes 6 s, so the pod is still running while the server is
    // away (stopping may take a moment: it drains connections).
    cluster.server.stop_listening().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.server.listen().await;
    let out = process.wait(Duration::from_secs(90)).await;
    out.assert_code(0);
    assert_eq!(field(&out, "verdict"), Some("accept"), "{}", out.ctx());
    assert!(
        out.stderr
            .contains("watching the Job failed; retrying with backoff"),
        "the outage was seen: {}",
        out.ctx()
    );
    assert_eq!(notifier.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_whose_answer_is_lost_is_found_not_made_twice() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    // Both the ConfigMap's and the Job's creation: done, answer lost.
    cluster.server.lose_creation_answers(2);
    let listing = root().join(REDLAND);

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait=90s"])).await;
    out.assert_code(0);
    assert_eq!(field(&out, "verdict"), Some("accept"), "{}", out.ctx());
    assert_eq!(
        calls(&cluster.server.requests()),
        ["POST configmaps", "POST jobs", "PATCH configmaps"],
        "each create was sent once, then looked up by the submission's label"
    );
    assert_eq!(cluster.listing_config_maps().len(), 1);
    let jobs = cluster.server.jobs(NAMESPACE);
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        cluster.listing_config_maps()[0]["metadata"]["ownerReferences"][0]["uid"],
        jobs[0]["metadata"]["uid"]
    );
    assert_eq!(notifier.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_reference_that_cannot_be_set_takes_the_job_and_configmap_back() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let cluster = Cluster::start(&judge, &notifier).await;
    cluster.server.refuse_config_map_patches(
        403,
        "Forbidden",
        "configmaps \"x\" is forbidden: User \"system:serviceaccount:shortlist:shortlist-runner\" cannot patch resource \"configmaps\"",
    );
    let listing = root().join(REDLAND);

    let out = run(cluster.runner(&["submit", listing.to_str().unwrap(), "--wait"])).await;
    out.assert_code(20);
    assert!(
        out.stderr
            .contains("cannot set the owner of ConfigMap shortlist-ex-redland-flat-"),
        "{}",
        out.ctx()
    );
    assert!(out.stderr.contains("403 Forbidden"), "{}", out.ctx());
    assert!(out.stderr.contains("was deleted"), "{}", out.ctx());
    assert_eq!(
        calls(&cluster.server.requests()),
        [
            "POST configmaps",
            "POST jobs",
            "PATCH configmaps",
            "DELETE jobs",
            "DELETE configmaps"
        ]
    );
    assert!(
        cluster.listing_config_maps().is_empty(),
        "no orphan ConfigMap"
    );
    assert!(
        cluster.server.jobs(NAMESPACE).is_empty(),
        "no Job whose ConfigMap would outlive it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_while_the_api_server_is_away_stops_at_once_leaving_nothing() {
    let judge = judge("accept").await;
    let notifier = Notifier::start(vec![]).await;
    let port = unbound_port();
    let (options, _secret, dir) = cluster_options(&judge, &notifier);
    let down = ApiServer::down_on(port, options);
    let kubeconfig = down.kubeconfig(dir.path());
    let listing = root().join(REDLAND);

    // Twenty retries would take minutes; Ctrl-C ends them.
    let mut cmd = runner_command(
        &kubeconfig,
        dir.path(),
        &["submit", listing.to_str().unwrap(), "--wait"],
    );
    cmd.env("RUNNER_API_RETRIES", "20");
    let mut process = Process::spawn(cmd, None);
    assert!(
        process
            .wait_for_stderr(Duration::from_secs(20), |e| e
                .contains("retrying after a transient failure"))
            .await,
        "{}",
        process.ctx()
    );
    process.sigint();
    let out = process.wait(Duration::from_secs(10)).await;
    out.assert_code(130);
    assert!(
        out.stderr
            .contains("interrupted before the listing's ConfigMap was created"),
        "{}",
        out.ctx()
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert!(out.stdout.trim().is_empty());
}
