//! The pair in a pod, run as the kubelet would run it, from the rendered
//! manifests of `deploy/` (see `pod_tests::kubelet`), and judged as the Job
//! controller would judge it. The judge and the notifier are real HTTP
//! servers on 127.0.0.1; deliveries' Standard Webhooks signatures are
//! verified with the `standardwebhooks` crate against the Secret's key.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use pod_tests::kubelet::{JobAction, Kubelet, Phase, PodRun};
use pod_tests::manifests::Manifests;
use pod_tests::wiring::{ASSESSOR, RELAY, webhook_secret};
use serde_json::Value;
use testkit::{FakeOpenAi, Notifier, unbound_port, verdict};

/// An OpenAI-compatible judge that judges every listing `verdict_of_all`,
/// after `delay` (a slow model).
async fn start_judge(verdict_of_all: &'static str, delay: Duration) -> FakeOpenAi {
    let score = if verdict_of_all == "accept" { 0.9 } else { 0.1 };
    let reason = format!("the test judge says {verdict_of_all}");
    FakeOpenAi::answering(move |_| verdict(verdict_of_all, score, &reason).delayed(delay)).await
}

/// A kubelet for overlay `name` whose judge and notifier are ours (see
/// `wiring::wire`); the directory holds the PVCs' stand-ins.
fn kubelet(
    manifests: Manifests,
    judge: &FakeOpenAi,
    notifier_url: &str,
) -> (Kubelet, tempfile::TempDir) {
    let pvc_root = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::new(
        manifests,
        testkit::binary::assessor(),
        testkit::binary::relay(),
    );
    pod_tests::wiring::wire(
        &mut kubelet,
        &judge.base_url(),
        notifier_url,
        pvc_root.path(),
    );
    (kubelet, pvc_root)
}

fn profile_id(manifests: &Manifests) -> String {
    let data = manifests.config_map(profile_config_map(manifests).as_str());
    let profile: Value = serde_json::from_slice(&data["profile.json"]).unwrap();
    profile["metadata"]["id"]
        .as_str()
        .expect("the sample profile has an id")
        .to_string()
}

fn profile_config_map(manifests: &Manifests) -> String {
    let job = manifests.job();
    job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["configMap"]["name"].as_str())
        .expect("the Job mounts a ConfigMap")
        .to_string()
}

fn assert_clean(pod: &PodRun) {
    assert!(
        pod.rootfs_writes.is_empty(),
        "wrote outside its volumes (readOnlyRootFilesystem): {:?}\n{}",
        pod.rootfs_writes,
        pod.describe()
    );
    for c in &pod.containers {
        assert!(
            !c.stderr.contains("panicked"),
            "{} panicked\n{}",
            c.name,
            pod.describe()
        );
    }
}

fn result_in(pod: &PodRun, container: &str, variable: &str) -> Value {
    let path = PathBuf::from(&pod.container(container).env[variable]);
    serde_json::from_slice(
        &std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), pod.describe())),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_profile_is_delivered_once_signed_and_the_pod_succeeds() {
    let mut manifests = Manifests::rendered("base");
    let secret = webhook_secret(&mut manifests);
    let id = profile_id(&manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.phase, Phase::Succeeded, "{}", pod.describe());
    assert_eq!(pod.job_action(kubelet.manifests.job()), JobAction::Complete);
    assert_clean(&pod);
    assert_eq!(judge.requests().len(), 1, "{}", pod.describe());
    let deliveries = notifier.requests();
    assert_eq!(deliveries.len(), 1, "{}", pod.describe());
    let delivery = &deliveries[0];
    assert!(
        delivery.signature_valid(&secret),
        "signature did not verify: {}",
        delivery.describe()
    );
    assert_eq!(
        delivery.json()["assessment"]["verdict"],
        "accept",
        "{}",
        delivery.describe()
    );
    assert_eq!(delivery.json()["assessment"]["id"], id.as_str());
    // The verdict is in the pod's status too: the assessor's termination
    // message, as whoever launched the Job reads it.
    let summary: serde_json::Value =
        serde_json::from_str(&pod.container(ASSESSOR).termination_message)
            .unwrap_or_else(|e| panic!("termination message: {e}\n{}", pod.describe()));
    assert_eq!(summary["schema"], "shortlist.termination/v1");
    assert_eq!(summary["verdict"], "accept");
    assert_eq!(summary["id"], id.as_str());
    assert_eq!(summary["status"], "ok");
    // The relay was the native sidecar: started first, stopped by the kubelet
    // after the assessor, within the grace period, and exited cleanly.
    let relay = pod.container(RELAY);
    let assessor = pod.container(ASSESSOR);
    assert!(relay.sidecar && relay.started_at <= assessor.started_at);
    assert!(relay.ended_at >= assessor.ended_at);
    assert_eq!(relay.exit.code, 0, "{}", pod.describe());
    // The key came from the mounted Secret, not a plain env var.
    assert!(
        assessor.env.contains_key("LLM_API_KEY_FILE") && !assessor.env.contains_key("LLM_API_KEY")
    );
    assert!(
        relay.env.contains_key("WEBHOOK_SECRET_FILE") && !relay.env.contains_key("WEBHOOK_SECRET")
    );
    assert!(!relay.stderr.contains(&secret) && !relay.stdout.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_profile_is_not_delivered_and_the_pod_succeeds() {
    let mut manifests = Manifests::rendered("base");
    let _secret = webhook_secret(&mut manifests);
    let judge = start_judge("reject", Duration::ZERO).await;
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.phase, Phase::Succeeded, "{}", pod.describe());
    assert_eq!(pod.job_action(kubelet.manifests.job()), JobAction::Complete);
    assert_clean(&pod);
    assert!(notifier.requests().is_empty(), "{}", pod.describe());
    let result = result_in(&pod, ASSESSOR, "RESULT_PATH");
    assert_eq!(result["verdict"], "reject");
    assert_eq!(pod.container(RELAY).exit.code, 0, "{}", pod.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_profile_exits_3_and_the_policy_fails_the_job() {
    let mut manifests = Manifests::rendered("base");
    let config_map = profile_config_map(&manifests);
    manifests.set_config_map_key(&config_map, "profile.json", "{\"text\": 42}");
    let _secret = webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.container(ASSESSOR).exit.code, 3, "{}", pod.describe());
    assert_eq!(pod.phase, Phase::Failed);
    assert_eq!(
        pod.job_action(kubelet.manifests.job()),
        JobAction::FailJob,
        "{}",
        pod.describe()
    );
    assert!(judge.requests().is_empty());
    assert!(notifier.requests().is_empty());
    let result = result_in(&pod, ASSESSOR, "RESULT_PATH");
    assert_eq!(result["error"]["kind"], "profile_invalid");
    let summary: serde_json::Value =
        serde_json::from_str(&pod.container(ASSESSOR).termination_message).unwrap();
    assert_eq!(summary["status"], "error");
    assert_eq!(summary["error"]["kind"], "profile_invalid");
    assert!(summary["verdict"].is_null());
    assert_clean(&pod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assessor_killed_mid_judgement_fails_the_pod_for_a_retry_and_the_relay_does_not_hang() {
    let mut manifests = Manifests::rendered("base");
    let _secret = webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::from_secs(60)).await;
    let notifier = Notifier::start(vec![]).await;
    let (mut kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    kubelet.kill_after = Some((ASSESSOR.into(), Duration::from_millis(1500)));
    let pod = kubelet.run_pod().await;

    let assessor = pod.container(ASSESSOR);
    assert_eq!(assessor.exit.signal, Some(9), "{}", pod.describe());
    assert_eq!(assessor.exit.code, 137);
    assert_eq!(
        judge.requests().len(),
        1,
        "killed while the judge was thinking"
    );
    assert_eq!(pod.phase, Phase::Failed);
    // Not FailJob (that is for exit 3): the failure counts and the Job retries.
    let job = kubelet.manifests.job();
    assert_eq!(pod.job_action(job), JobAction::Count, "{}", pod.describe());
    assert!(job["spec"]["backoffLimit"].as_u64().unwrap() >= 1);
    // The relay got SIGTERM when the assessor died and left within the grace period.
    let relay = pod.container(RELAY);
    assert!(
        relay.stopped_by_kubelet && relay.exit.signal.is_none(),
        "{}",
        pod.describe()
    );
    let grace = job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    assert!(
        relay.ended_at - assessor.ended_at < Duration::from_secs(grace),
        "{}",
        pod.describe()
    );
    assert!(notifier.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_down_during_the_run_still_gets_the_delivery_before_the_pod_succeeds() {
    let mut manifests = Manifests::rendered("base");
    let secret = webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    // Deliberately down at first: nothing listens on the port for 2 s.
    let port = unbound_port();
    let notifier = Notifier::start_later(port, Duration::from_secs(2), vec![]);
    let (kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.phase, Phase::Succeeded, "{}", pod.describe());
    let deliveries = notifier.requests();
    assert_eq!(deliveries.len(), 1, "{}", pod.describe());
    assert!(deliveries[0].signature_valid(&secret));
    let relay = pod.container(RELAY);
    let assessor = pod.container(ASSESSOR);
    // The assessor (ASSESSOR_AWAIT_DELIVERY) waited for the relay's receipt
    // until the notifier came up and confirmed, and only then exited 0.
    assert!(
        assessor.ended_at >= Duration::from_secs(2),
        "{}",
        pod.describe()
    );
    assert_eq!(assessor.exit.code, 0, "{}", pod.describe());
    assert_eq!(relay.exit.code, 0, "{}", pod.describe());
    let receipt = testkit::receipt_of(&pod.volume("results").join("result.json"))
        .unwrap_or_else(|| panic!("no receipt\n{}", pod.describe()));
    assert_eq!(receipt["outcome"], "delivered", "{}", pod.describe());
    assert_eq!(receipt["webhook_id"], deliveries[0].webhook_id().as_str());
}

/// A notifier that stays down: the assessor exits 6 (delivery not
/// confirmed), which the policy counts as a retriable failure; the retried
/// pod delivers with the same `webhook-id`, so a deduplicating receiver
/// sees one listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_delivery_fails_the_pod_for_a_retry_that_delivers_with_the_same_id() {
    let mut manifests = Manifests::rendered("base");
    webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    let notifier = Notifier::start(vec![]).await;
    notifier.set_default(testkit::Reply::status(503));
    let (mut kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    kubelet
        .set_env(ASSESSOR, "ASSESSOR_AWAIT_DELIVERY", "2s")
        .set_env(RELAY, "RELAY_DRAIN_TIMEOUT", "1s");
    let first = kubelet.run_pod().await;
    assert_eq!(first.phase, Phase::Failed, "{}", first.describe());
    assert_eq!(
        first.container(ASSESSOR).exit.code,
        6,
        "{}",
        first.describe()
    );
    assert_eq!(
        first.job_action(kubelet.manifests.job()),
        JobAction::Count,
        "{}",
        first.describe()
    );
    let refused = notifier.requests();
    assert!(!refused.is_empty(), "{}", first.describe());

    // The Job's retry: a new pod (new emptyDir), the notifier back.
    notifier.set_default(testkit::Reply::ok());
    let second = kubelet.run_pod().await;
    assert_eq!(second.phase, Phase::Succeeded, "{}", second.describe());
    let all = notifier.requests();
    let delivered: Vec<_> = all.iter().filter(|r| r.replied == 200).collect();
    assert_eq!(delivered.len(), 1, "{}", second.describe());
    assert_eq!(
        delivered[0].webhook_id(),
        refused[0].webhook_id(),
        "a retried pod must reuse the webhook-id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classic_overlay_pair_completes_on_its_own() {
    let mut manifests = Manifests::rendered("classic");
    let pod_spec = manifests.job()["spec"]["template"]["spec"].clone();
    assert!(
        pod_spec["initContainers"]
            .as_array()
            .is_none_or(|c| c.iter().all(|c| c["restartPolicy"] != "Always")),
        "classic has no native sidecar"
    );
    let secret = webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _pvc) = kubelet(manifests, &judge, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.phase, Phase::Succeeded, "{}", pod.describe());
    assert_eq!(pod.job_action(kubelet.manifests.job()), JobAction::Complete);
    let relay = pod.container(RELAY);
    assert!(
        !relay.sidecar && !relay.stopped_by_kubelet,
        "the relay exits by itself"
    );
    assert_eq!(relay.exit.code, 0);
    let deliveries = notifier.requests();
    assert_eq!(deliveries.len(), 1, "{}", pod.describe());
    assert!(deliveries[0].signature_valid(&secret));
    assert_clean(&pod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_overlay_indexes_judge_disjoint_shares_that_cover_every_profile() {
    let mut manifests = Manifests::rendered("batch");
    let job = manifests.job().clone();
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap() as u32;
    assert!(completions >= 2);
    let config_map = profile_config_map(&manifests);
    let lines: Vec<Value> = String::from_utf8(
        manifests
            .config_map(&config_map)
            .into_iter()
            .find(|(k, _)| k.ends_with(".jsonl"))
            .expect("a JSONL of profiles")
            .1,
    )
    .unwrap()
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let all_ids: BTreeSet<String> = lines
        .iter()
        .map(|p| p["metadata"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all_ids.len(), lines.len(), "ids are distinct");

    let secret = webhook_secret(&mut manifests);
    let judge = start_judge("accept", Duration::ZERO).await;
    let mut seen = BTreeSet::new();
    let mut judged_total = 0;
    for index in 0..completions {
        let notifier = Notifier::start(vec![]).await;
        let (mut kubelet, _pvc) = kubelet(manifests.clone(), &judge, &notifier.url("/hook"));
        kubelet.completion_index = Some(index);
        let pod = kubelet.run_pod().await;
        assert_eq!(
            pod.phase,
            Phase::Succeeded,
            "index {index}\n{}",
            pod.describe()
        );
        assert_clean(&pod);
        let results_dir = PathBuf::from(&pod.container(ASSESSOR).env["RESULT_DIR"]);
        let mut ids = BTreeSet::new();
        for entry in std::fs::read_dir(&results_dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let result: Value =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            assert_eq!(result["status"], "ok", "{result}");
            ids.insert(result["id"].as_str().unwrap().to_string());
        }
        assert!(
            !ids.is_empty(),
            "index {index} judged nothing\n{}",
            pod.describe()
        );
        for id in &ids {
            assert!(seen.insert(id.clone()), "{id} judged by two indexes");
        }
        judged_total += ids.len();
        // The relay delivered this index's accepted results, each once.
        let delivered: BTreeSet<String> = notifier
            .requests()
            .iter()
            .map(|d| {
                assert!(d.signature_valid(&secret));
                d.json()["assessment"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(delivered.len(), notifier.requests().len(), "no duplicates");
        assert!(delivered.is_subset(&ids), "{delivered:?} vs {ids:?}");
    }
    assert_eq!(
        seen, all_ids,
        "together the indexes judged every profile once"
    );
    assert_eq!(judged_total, all_ids.len());
}

/// A Python interpreter the kubelet can start with a cleared environment
/// (so not a pyenv shim, which needs its own variables).
fn python3() -> PathBuf {
    let candidates = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|dir| !dir.to_string_lossy().contains("shims"))
        .map(|dir| dir.join("python3"));
    candidates
        .chain(on_path)
        .find(|p| p.is_file())
        .expect("python3 (the custom assessor example is Python)")
}

/// The base Job's pod with docs/deploy.md's custom assessor
/// (examples/custom-assessor/assessor.py) in place of the assessor image,
/// as the kustomize `images:` override there puts it; the real relay
/// delivers to `notifier_url`. The temp dirs hold the image's entrypoint
/// and the (unused) model volume.
fn custom_assessor_kubelet(
    mut manifests: Manifests,
    notifier_url: &str,
) -> (Kubelet, [tempfile::TempDir; 2]) {
    const IMAGE: &str = "ghcr.io/you/keyword-assessor:0.1.0";
    for container in manifests.job_mut()["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
    {
        if container["name"] == ASSESSOR {
            container["image"] = Value::String(IMAGE.into());
        }
    }
    // The image's ENTRYPOINT, `python3 /app/assessor.py`, as a wrapper.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/custom-assessor/assessor.py")
        .canonicalize()
        .unwrap();
    let image_dir = tempfile::tempdir().unwrap();
    let entrypoint = image_dir.path().join("entrypoint");
    std::fs::write(
        &entrypoint,
        format!(
            "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
            python3().display(),
            script.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&entrypoint, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut kubelet = Kubelet::new(
        manifests,
        testkit::binary::assessor(),
        testkit::binary::relay(),
    );
    kubelet
        .binaries
        .insert(0, ("keyword-assessor".into(), entrypoint));
    let pvc_root = tempfile::tempdir().unwrap();
    kubelet
        .host_volumes
        .insert("models".into(), pvc_root.path().to_path_buf());
    kubelet
        .set_env(ASSESSOR, "PYTHONDONTWRITEBYTECODE", "1")
        .set_env(RELAY, "NOTIFIER_URL", notifier_url)
        .set_env(RELAY, "LOG_FORMAT", "json");
    (kubelet, [image_dir, pvc_root])
}

/// docs/deploy.md's custom assessor in the base Job's pod (its env, mounts,
/// read-only root filesystem and /tmp emptyDir) beside the real relay. The
/// keyword judge accepts the base's Redland flat (a balcony); the relay
/// delivers it signed, the script waits for the receipt
/// (ASSESSOR_AWAIT_DELIVERY from the base) and exits 0, and the Job
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_python_assessor_runs_in_the_base_job_and_its_verdict_is_delivered() {
    let mut manifests = Manifests::rendered("base");
    let secret = webhook_secret(&mut manifests);
    let id = profile_id(&manifests);
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _dirs) = custom_assessor_kubelet(manifests, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.phase, Phase::Succeeded, "{}", pod.describe());
    assert_eq!(pod.job_action(kubelet.manifests.job()), JobAction::Complete);
    assert_clean(&pod);
    let deliveries = notifier.requests();
    assert_eq!(deliveries.len(), 1, "{}", pod.describe());
    let delivery = &deliveries[0];
    assert!(delivery.signature_valid(&secret), "{}", delivery.describe());
    let assessment = &delivery.json()["assessment"];
    assert_eq!(assessment["verdict"], "accept", "{}", delivery.describe());
    assert_eq!(assessment["id"], id.as_str());
    let result = result_in(&pod, ASSESSOR, "RESULT_PATH");
    assert_eq!(result["decided_by"], "keywords");
    assert_eq!(result["assessor"]["name"], "keyword-assessor");
    // It waited for the relay's receipt before exiting 0.
    let receipt = testkit::receipt_of(&pod.volume("results").join("result.json"))
        .unwrap_or_else(|| panic!("no receipt\n{}", pod.describe()));
    assert_eq!(receipt["outcome"], "delivered", "{}", pod.describe());
    assert!(
        pod.container(ASSESSOR)
            .stderr
            .contains("delivery confirmed"),
        "{}",
        pod.describe()
    );
}

/// The contract's exit codes are what the base's podFailurePolicy reads,
/// whoever wrote the assessor: an invalid profile is exit 3 and fails the
/// Job, with an error result and nothing delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_python_assessor_given_an_invalid_profile_fails_the_job() {
    let mut manifests = Manifests::rendered("base");
    webhook_secret(&mut manifests);
    let config_map = profile_config_map(&manifests);
    manifests.set_config_map_key(&config_map, "profile.json", "{\"text\": 42}");
    let notifier = Notifier::start(vec![]).await;
    let (kubelet, _dirs) = custom_assessor_kubelet(manifests, &notifier.url("/hook"));
    let pod = kubelet.run_pod().await;

    assert_eq!(pod.container(ASSESSOR).exit.code, 3, "{}", pod.describe());
    assert_eq!(
        pod.job_action(kubelet.manifests.job()),
        JobAction::FailJob,
        "{}",
        pod.describe()
    );
    let result = result_in(&pod, ASSESSOR, "RESULT_PATH");
    assert_eq!(result["error"]["kind"], "profile_invalid");
    assert!(notifier.requests().is_empty());
    assert_clean(&pod);
}
