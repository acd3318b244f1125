//! How a test wires a pod of the rendered manifests to its own peers: the
//! deployment's placeholder webhook secret replaced, the assessor judged by
//! an OpenAI-compatible test server, the relay delivering to a test
//! notifier, and the model volume (a PersistentVolumeClaim) an empty host
//! directory, since the judge is a server here. Shared by the pod tests
//! and the API server's, which apply it to every pod it runs.

use std::path::Path;

use crate::kubelet::Kubelet;
use crate::manifests::Manifests;

pub const ASSESSOR: &str = "assessor";
pub const RELAY: &str = "relay";

/// Replaces the webhook secret of the Secret the Job mounts with a random
/// one (`whsec_` + base64 of 32 random bytes) and returns it: what the
/// relay signs with.
pub fn webhook_secret(manifests: &mut Manifests) -> String {
    use base64::Engine as _;
    use rand::Rng as _;
    let key: [u8; 32] = rand::rng().random();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    replace_webhook_secret(manifests, &secret);
    secret
}

/// Replaces the webhook secret of the Secret the Job mounts (a published
/// placeholder, which the relay refuses for HTTP targets) with `secret`, as
/// a real deployment does.
pub fn replace_webhook_secret(manifests: &mut Manifests, secret: &str) {
    let job = manifests.job();
    let secret_name = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|v| v["secret"]["secretName"].as_str())
        .expect("the Job mounts a Secret")
        .to_string();
    let data = manifests.secret(&secret_name);
    let key = data
        .keys()
        .find(|k| k.contains("webhook"))
        .expect("the Secret has a webhook secret")
        .clone();
    manifests.set_secret_key(&secret_name, &key, secret);
}

/// Points `kubelet`'s pod at the judge (`llm_base_url`, OpenAI API) and the
/// notifier, and maps every PersistentVolumeClaim volume of its Job to a
/// directory under `pvc_root` (created here).
pub fn wire(kubelet: &mut Kubelet, llm_base_url: &str, notifier_url: &str, pvc_root: &Path) {
    let pod = kubelet.manifests.job()["spec"]["template"]["spec"].clone();
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        if volume.get("persistentVolumeClaim").is_some() {
            let name = volume["name"].as_str().unwrap_or("pvc");
            let dir = pvc_root.join(name);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("{}: cannot create: {e}", dir.display()));
            kubelet.host_volumes.insert(name.to_string(), dir);
        }
    }
    kubelet
        .set_env(ASSESSOR, "LLM_BACKEND", "openai")
        .set_env(ASSESSOR, "LLM_BASE_URL", llm_base_url)
        .set_env(ASSESSOR, "LLM_MODEL", "pod-test")
        .set_env(ASSESSOR, "LLM_RETRY_BASE_DELAY", "50ms")
        .set_env(ASSESSOR, "LOG_FORMAT", "json")
        .set_env(RELAY, "NOTIFIER_URL", notifier_url)
        .set_env(RELAY, "LOG_FORMAT", "json");
}
