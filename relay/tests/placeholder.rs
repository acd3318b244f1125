//! Published placeholder webhook secrets are refused at start-up when a
//! target would be sent signatures made with them. `deploy/base` ships one
//! in its Secret, and re-applying the base resets a real Secret to it: a
//! relay that then signed with it would hand the receiver signatures anyone
//! can forge, without a word. The placeholder is read from the kustomization
//! itself, so a new placeholder there without the relay knowing it fails
//! here (and in scripts/check-deploy.sh).

use std::time::Duration;

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

const QUICK: Duration = Duration::from_secs(10);

/// The `webhook-secret=` literal of deploy/base's secretGenerator.
fn deploy_placeholder() -> String {
    let path = workspace_root().join("deploy/base/kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("- webhook-secret="))
        .unwrap_or_else(|| panic!("{}: no webhook-secret= literal", path.display()))
        .trim()
        .to_string()
}

/// The secret and its key part appear nowhere in the output.
fn assert_not_shown(out: &Output, secret: &str) {
    for needle in [secret, secret.trim_start_matches("whsec_")] {
        assert!(!out.mentions(needle), "the secret was shown\n{}", out.ctx());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_placeholder_in_a_mounted_file_is_refused_for_a_webhook() {
    let placeholder = deploy_placeholder();
    let server = Notifier::start(vec![]).await;
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let secrets = tempdir();
    let file = secrets.path().join("webhook-secret");
    std::fs::write(&file, format!("{placeholder}\n")).unwrap();
    let envs =
        result_env(&path, &server.url("/hook")).set("WEBHOOK_SECRET_FILE", file.to_str().unwrap());
    let out = spawn_relay(RELAY, &envs).wait(QUICK).await;

    out.assert_code(2);
    assert!(
        out.stderr.contains("WEBHOOK_SECRET_FILE") && out.stderr.contains("placeholder"),
        "the message must name the variable and say why\n{}",
        out.ctx()
    );
    assert_not_shown(&out, &placeholder);
    assert!(
        server.requests().is_empty(),
        "nothing may be sent\n{}",
        server.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_webhooks_example_secret_is_refused_whatever_its_spelling() {
    let server = Notifier::start(vec![]).await;
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    // The example of the specification, without the prefix: same key bytes.
    let secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let envs = result_env(&path, &format!("stdout:,{}", server.url("/hook")))
        .set("WEBHOOK_SECRET", secret);
    let out = spawn_relay(RELAY, &envs).wait(QUICK).await;

    out.assert_code(2);
    assert!(out.stderr.contains("WEBHOOK_SECRET"), "{}", out.ctx());
    assert!(!out.stderr.contains("WEBHOOK_SECRET_FILE"), "{}", out.ctx());
    assert_not_shown(&out, secret);
    assert!(server.requests().is_empty());
}

/// The base as shipped (`NOTIFIER_URL=stdout:`) signs nothing, so its
/// placeholder does no harm and the quick start keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placeholder_is_harmless_without_an_http_target() {
    let placeholder = deploy_placeholder();
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let envs = result_env(&path, "stdout:").set("WEBHOOK_SECRET", &placeholder);
    let out = spawn_relay(RELAY, &envs).wait(QUICK).await;

    out.assert_code(0);
    assert!(out.stdout.contains("accept"), "{}", out.ctx());
    assert_not_shown(&out, &placeholder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_secret_signs_as_before() {
    let server = Notifier::start(vec![]).await;
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s01")));
    let secret = random_secret();
    let envs = result_env(&path, &server.url("/hook")).set("WEBHOOK_SECRET", &secret);
    let out = spawn_relay(RELAY, &envs).wait(QUICK).await;

    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", out.ctx());
    assert!(requests[0].signature_valid(&secret));
}
