//! Start-up errors: exit 2, a message naming the variable, no secret echoed.

use std::time::Duration;

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

const QUICK: Duration = Duration::from_secs(10);

/// Runs the relay with `envs`; it must exit 2 naming `variable` on stderr.
async fn usage_error(envs: &Envs, variable: &str) -> Output {
    let out = spawn_relay(RELAY, envs).wait(QUICK).await;
    out.assert_code(2);
    assert!(
        out.stderr.contains(variable),
        "the message must name {variable}\n{}",
        out.ctx()
    );
    assert!(out.elapsed < Duration::from_secs(5), "{}", out.ctx());
    out
}

fn a_dir_env(dir: &std::path::Path) -> Envs {
    Envs::new().set("WATCH_DIR", dir.to_str().unwrap())
}

#[tokio::test]
async fn help_lists_the_settings() {
    let out = spawn_relay_with_args(RELAY, &Envs::new(), &["--help"])
        .wait(QUICK)
        .await;
    out.assert_code(0);
    for var in [
        "RESULT_PATH",
        "WATCH_DIR",
        "PROFILE_PATH",
        "NOTIFIER_URL",
        "NOTIFIER_URL_FILE",
        "WEBHOOK_SECRET",
        "WEBHOOK_SECRET_FILE",
        "NOTIFIER_TOKEN",
        "NOTIFIER_TOKEN_FILE",
        "RELAY_MIN_SCORE",
        "RELAY_EXPECT",
        "RELAY_WAIT_TIMEOUT",
        "RELAY_SETTLE_TIMEOUT",
        "RELAY_POLL_INTERVAL",
        "RELAY_REQUEST_TIMEOUT",
        "RELAY_DELIVERY_DEADLINE",
        "RELAY_RETRY_BASE_DELAY",
        "RELAY_DRAIN_TIMEOUT",
        "RELAY_STATE_DIR",
        "LOG_FORMAT",
    ] {
        assert!(
            out.stdout.contains(var),
            "--help does not mention {var}\n{}",
            out.ctx()
        );
    }
}

#[tokio::test]
async fn nothing_to_watch() {
    let out = usage_error(&Envs::new(), "RESULT_PATH").await;
    assert!(out.stderr.contains("WATCH_DIR"), "{}", out.ctx());
}

#[tokio::test]
async fn watch_dir_that_does_not_exist() {
    let dir = tempdir();
    let missing = dir.path().join("not-mounted");
    let out = usage_error(&a_dir_env(&missing), "WATCH_DIR").await;
    assert!(
        out.stderr.contains("not-mounted"),
        "name the path\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn result_path_in_a_directory_that_does_not_exist() {
    let dir = tempdir();
    let path = dir.path().join("not-mounted").join("result.json");
    usage_error(
        &Envs::new().set("RESULT_PATH", path.to_str().unwrap()),
        "RESULT_PATH",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_notifier_scheme() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("NOTIFIER_URL", "gopher://x"),
        "NOTIFIER_URL",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_scheme_among_several_targets() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("NOTIFIER_URL", "stdout:,gopher://x"),
        "NOTIFIER_URL",
    )
    .await;
}

#[tokio::test]
async fn a_duration_without_a_unit() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("RELAY_WAIT_TIMEOUT", "30"),
        "RELAY_WAIT_TIMEOUT",
    )
    .await;
}

#[tokio::test]
async fn a_min_score_out_of_range() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("RELAY_MIN_SCORE", "1.5"),
        "RELAY_MIN_SCORE",
    )
    .await;
}

#[tokio::test]
async fn an_invalid_webhook_secret_is_named_but_not_echoed() {
    let dir = tempdir();
    for secret in ["whsec_!!!", "whsec_!!!sensitive-material-42"] {
        let out = usage_error(
            &a_dir_env(dir.path()).set("WEBHOOK_SECRET", secret),
            "WEBHOOK_SECRET",
        )
        .await;
        assert!(
            !out.mentions(secret),
            "the secret was echoed\n{}",
            out.ctx()
        );
        assert!(
            !out.mentions("sensitive-material-42"),
            "part of the secret was echoed\n{}",
            out.ctx()
        );
    }
}

#[tokio::test]
async fn an_invalid_webhook_secret_in_a_file_is_not_echoed() {
    let dir = tempdir();
    let secrets = tempdir();
    let file = secrets.path().join("secret");
    std::fs::write(&file, "whsec_!!!file-material-77\n").unwrap();
    let out = spawn_relay(
        RELAY,
        &a_dir_env(dir.path()).set("WEBHOOK_SECRET_FILE", file.to_str().unwrap()),
    )
    .wait(QUICK)
    .await;
    out.assert_code(2);
    assert!(out.stderr.contains("WEBHOOK_SECRET"), "{}", out.ctx());
    assert!(
        !out.mentions("file-material-77"),
        "the secret was echoed\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn a_missing_secret_file_is_named() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("WEBHOOK_SECRET_FILE", "/nonexistent/webhook-secret"),
        "WEBHOOK_SECRET_FILE",
    )
    .await;
}

#[tokio::test]
async fn a_relative_file_target() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("NOTIFIER_URL", "file://out.jsonl"),
        "NOTIFIER_URL",
    )
    .await;
}

#[tokio::test]
async fn a_target_listed_twice_is_refused_without_showing_its_secret_path() {
    let dir = tempdir();
    let slack = "slack+https://hooks.slack.com/services/T0/B0/SLACKSECRETXYZ";
    let out = usage_error(
        &a_dir_env(dir.path()).set("NOTIFIER_URL", format!("{slack},{slack}")),
        "NOTIFIER_URL",
    )
    .await;
    assert!(
        !out.mentions("SLACKSECRETXYZ"),
        "the Slack secret path was echoed\n{}",
        out.ctx()
    );
}

#[tokio::test]
async fn an_unknown_log_format() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("LOG_FORMAT", "xml"),
        "LOG_FORMAT",
    )
    .await;
}

#[tokio::test]
async fn a_poll_interval_too_short() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("RELAY_POLL_INTERVAL", "1ms"),
        "RELAY_POLL_INTERVAL",
    )
    .await;
}

#[tokio::test]
async fn a_zero_request_timeout() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("RELAY_REQUEST_TIMEOUT", "0s"),
        "RELAY_REQUEST_TIMEOUT",
    )
    .await;
}

#[tokio::test]
async fn result_path_and_watch_dir_together() {
    let dir = tempdir();
    let out = spawn_relay(
        RELAY,
        &a_dir_env(dir.path()).set(
            "RESULT_PATH",
            dir.path().join("result.json").to_str().unwrap(),
        ),
    )
    .wait(QUICK)
    .await;
    out.assert_code(2);
}

#[tokio::test]
async fn a_missing_token_file_is_named() {
    let dir = tempdir();
    usage_error(
        &a_dir_env(dir.path()).set("NOTIFIER_TOKEN_FILE", "/nonexistent/notifier-token"),
        "NOTIFIER_TOKEN_FILE",
    )
    .await;
}

/// `relay --help` ends with examples and every exit code; `-h` points there.
#[tokio::test]
async fn help_has_examples_and_exit_codes() {
    let out = spawn_relay_with_args(RELAY, &Envs::new(), &["--help"])
        .wait(QUICK)
        .await;
    out.assert_code(0);
    let table = out
        .stdout
        .split("Exit codes")
        .nth(1)
        .unwrap_or_else(|| panic!("no exit codes in --help\n{}", out.ctx()));
    for code in 0..=5 {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
            "exit code {code} missing\n{table}"
        );
    }
    assert!(out.stdout.contains("Examples:") && out.stdout.contains("relay check"));
    let short = spawn_relay_with_args(RELAY, &Envs::new(), &["-h"])
        .wait(QUICK)
        .await;
    short.assert_code(0);
    assert!(
        short
            .stdout
            .contains("--help shows examples and the exit codes")
    );
}

/// `relay check --json=false` and `--payload` read like every boolean.
#[tokio::test]
async fn check_booleans_take_equals() {
    let dir = tempdir();
    let result = write_json(
        dir.path(),
        "r.json",
        &accept(&simple_profile("r1", "A flat.")),
    );
    let file = result.to_str().unwrap();
    let plain = spawn_relay_with_args(RELAY, &Envs::new(), &["check", file, "--json=false"])
        .wait(QUICK)
        .await;
    plain.assert_code(0);
    assert!(
        !plain.stdout.trim_start().starts_with('{'),
        "{}",
        plain.ctx()
    );
    let json = spawn_relay_with_args(RELAY, &Envs::new(), &["check", file, "--json"])
        .wait(QUICK)
        .await;
    json.assert_code(0);
    assert!(json.stdout.trim_start().starts_with('{'), "{}", json.ctx());
    let bad = spawn_relay_with_args(RELAY, &Envs::new(), &["check", file, "--json=maybe"])
        .wait(QUICK)
        .await;
    bad.assert_code(2);
    assert!(bad.stderr.contains("--json"), "{}", bad.ctx());
}
