//! The runner's command line, spawned for real: usage errors name the flag
//! or variable and exit 2; a missing cluster is said plainly; a template
//! that cannot be a per-listing Job is refused before anything else.

use std::time::Duration;

use testkit::{Output, Process, command};

async fn runner(dir: &std::path::Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = command(env!("CARGO_BIN_EXE_runner"), dir, envs.iter().copied());
    cmd.args(args);
    Process::spawn(cmd, None)
        .wait(Duration::from_secs(30))
        .await
}

fn listing(dir: &std::path::Path) -> String {
    let path = dir.join("listing.json");
    std::fs::write(
        &path,
        r#"{"text": "Two bed flat in Bristol", "metadata": {"id": "t1"}}"#,
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_bad_wait_is_named_by_its_flag_or_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let listing = listing(dir.path());
    let out = runner(dir.path(), &[], &["submit", &listing, "--wait=90"]).await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("--wait") && out.stderr.contains("bare number"),
        "{}",
        out.ctx()
    );
    let out = runner(
        dir.path(),
        &[("RUNNER_WAIT", "soon")],
        &["submit", &listing],
    )
    .await;
    out.assert_code(2);
    assert!(out.stderr.contains("RUNNER_WAIT"), "{}", out.ctx());
    let out = runner(
        dir.path(),
        &[("RUNNER_API_RETRIES", "99999999999")],
        &["submit", &listing],
    )
    .await;
    out.assert_code(2);
    assert!(out.stderr.contains("RUNNER_API_RETRIES"), "{}", out.ctx());
}

#[tokio::test]
async fn without_a_cluster_submit_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let listing = listing(dir.path());
    let home = dir.path().to_str().unwrap();
    let out = runner(
        dir.path(),
        &[("HOME", home)],
        &["submit", &listing, "--wait"],
    )
    .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("no Kubernetes cluster configured"),
        "{}",
        out.ctx()
    );
    assert!(out.stderr.contains("set KUBECONFIG"), "{}", out.ctx());
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_template_that_is_no_single_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let listing = listing(dir.path());
    let batch = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rendered/batch.yaml");
    let out = runner(dir.path(), &[], &["render", "--template", batch, &listing]).await;
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("batch.yaml: its Job runs 3 completions, Indexed"),
        "{}",
        out.ctx()
    );
    let out = runner(
        dir.path(),
        &[],
        &["render", "--template", "/dev/zero", &listing],
    )
    .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("/dev/zero") && out.stderr.contains("not a regular file"),
        "{}",
        out.ctx()
    );
    let classic = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rendered/classic.yaml"
    );
    let out = runner(
        dir.path(),
        &[],
        &["render", "--template", classic, "-n", "elsewhere", &listing],
    )
    .await;
    out.assert_code(0);
    assert!(out.stdout.contains("namespace: elsewhere"), "{}", out.ctx());
}
