//! What is forwarded and what is not, and the exit codes that say so:
//! rejections, assessor errors, RELAY_MIN_SCORE, invalid files, temp files,
//! the wait timeout, the minimal custom result, and the codes' precedence.

use std::time::Duration;

use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_not_sent_and_exit_zero() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    for name in ["s02", "s03", "s05"] {
        write_atomic(dir.path(), &format!("{name}.json"), &reject(&sample(name)));
    }
    // The minimal custom-assessor rejection too.
    std::fs::write(dir.path().join("custom.json"), br#"{"verdict":"reject"}"#).unwrap();
    let out = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 4))
        .wait(GUARD)
        .await;
    out.assert_code(0);
    assert_eq!(
        server.count(),
        0,
        "a rejection was sent\n{}",
        server.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assessor_error_result_is_not_sent_and_exits_5() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = write_atomic(dir.path(), "result.json", &error_result(&sample("s01")));
    let out = spawn_relay(RELAY, &result_env(&path, &server.url("/")))
        .wait(GUARD)
        .await;
    out.assert_code(5);
    assert_eq!(
        server.count(),
        0,
        "an error result was sent\n{}",
        server.describe()
    );
}

/// `status: error` wins over a stray `verdict: accept` in the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_error_is_not_sent_even_with_an_accept_verdict() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    std::fs::write(
        &path,
        br#"{"status":"error","verdict":"accept","error":{"kind":"timeout","message":"m"}}"#,
    )
    .unwrap();
    let out = spawn_relay(RELAY, &result_env(&path, &server.url("/")))
        .wait(GUARD)
        .await;
    out.assert_code(5);
    assert_eq!(server.count(), 0, "{}", server.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_score_filters_scored_results_and_passes_unscored_ones() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let low = assessor_result(
        "low",
        &full_profile("low", "Low score."),
        "accept",
        Some(0.5),
    );
    let high = assessor_result(
        "high",
        &full_profile("high", "High score."),
        "accept",
        Some(0.9),
    );
    let edge = assessor_result(
        "edge",
        &full_profile("edge", "Exactly the minimum."),
        "accept",
        Some(0.8),
    );
    let unscored = assessor_result(
        "unscored",
        &full_profile("unscored", "No score."),
        "accept",
        None,
    );
    write_atomic(dir.path(), "low.json", &low);
    write_atomic(dir.path(), "high.json", &high);
    write_atomic(dir.path(), "edge.json", &edge);
    write_atomic(dir.path(), "unscored.json", &unscored);
    let envs = dir_env(dir.path(), &server.url("/"), 4).set("RELAY_MIN_SCORE", "0.8");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let mut ids: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.json()["assessment"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec!["edge", "high", "unscored"],
        "{}",
        server.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_stays_garbage_is_invalid_exit_4_and_nothing_is_sent() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    std::fs::write(&path, b"{\"verdict\": \"acc").unwrap();
    let envs = result_env(&path, &server.url("/")).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(4);
    assert!(
        out.elapsed >= Duration::from_millis(280),
        "reported invalid before RELAY_SETTLE_TIMEOUT\n{}",
        out.ctx()
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took too long to give up\n{}",
        out.ctx()
    );
    assert!(
        out.mentions("result.json"),
        "the log must name the file\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0, "{}", server.describe());
}

/// Valid JSON that is not a result (no verdict) is invalid too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_without_a_verdict_is_invalid() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    std::fs::write(&path, br#"{"status":"ok","score":0.9}"#).unwrap();
    let envs = result_env(&path, &server.url("/")).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(4);
    assert_eq!(server.count(), 0, "{}", server.describe());
}

/// Temp and hidden names (our `.x.tmp`, kubelet's `..data`, editors' files)
/// are never read: garbage in them must not count as an invalid result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_and_hidden_files_are_ignored() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    for name in [
        ".result.json.x.tmp",
        "..data",
        ".hidden.json",
        "other.json.tmp",
        "other.json.part",
        "other.json~",
        "notes.txt",
    ] {
        std::fs::write(dir.path().join(name), b"garbage {{{").unwrap();
    }
    std::fs::create_dir(dir.path().join("..2026_11_21_10_00_00.123456")).unwrap();
    write_atomic(dir.path(), "good.json", &accept(&sample("s01")));
    let envs = dir_env(dir.path(), &server.url("/"), 1).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let mut relay = spawn_relay(RELAY, &envs);
    relay.expect_requests(&server, 1, GUARD).await;
    // More garbage under ignored names while it runs.
    std::fs::write(dir.path().join(".late.json.x.tmp"), b"{").unwrap();
    let out = relay.wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
}

/// The same in RESULT_PATH mode: only the named file counts, so another
/// `.json` (and the writer's temp file) in the directory is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_path_mode_reads_only_its_file() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    std::fs::write(dir.path().join("other.json"), b"not json").unwrap();
    std::fs::write(dir.path().join(".result.json.abc.tmp"), b"{\"verd").unwrap();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s04")));
    let envs = result_env(&path, &server.url("/")).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    assert_eq!(server.count(), 1, "{}", server.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_result_within_the_wait_timeout_exits_3() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let envs = result_env(&dir.path().join("result.json"), &server.url("/"))
        .set("RELAY_WAIT_TIMEOUT", "500ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(3);
    assert!(
        out.elapsed >= Duration::from_millis(450),
        "gave up before RELAY_WAIT_TIMEOUT\n{}",
        out.ctx()
    );
    assert!(
        out.elapsed < Duration::from_secs(4),
        "did not give up promptly\n{}",
        out.ctx()
    );
    assert_eq!(server.count(), 0);
}

/// WATCH_DIR expecting 3 with only 2 arriving: exit 3 (after delivering the two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_results_than_expected_exits_3_after_delivering_them() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    write_atomic(
        dir.path(),
        "a.json",
        &accept(&full_profile("a", "Listing a.")),
    );
    write_atomic(
        dir.path(),
        "b.json",
        &accept(&full_profile("b", "Listing b.")),
    );
    let envs = dir_env(dir.path(), &server.url("/"), 3).set("RELAY_WAIT_TIMEOUT", "700ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(3);
    assert_eq!(server.count(), 2, "{}", server.describe());
}

/// `{"verdict":"accept"}` + PROFILE_PATH: the webhook carries that profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_result_is_delivered_with_the_profile_from_profile_path() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    std::fs::write(&path, br#"{"verdict":"accept"}"#).unwrap();
    let profile = sample("s01");
    let envs = result_env(&path, &server.url("/"))
        .set("PROFILE_PATH", sample_path("s01").to_str().unwrap());
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let body = requests[0].json();
    assert_eq!(body["text"], profile["text"], "{body:#}");
    assert_eq!(body["metadata"], profile["metadata"], "{body:#}");
    assert_eq!(body["images"], profile["images"], "{body:#}");
    assert_eq!(body["assessment"]["verdict"], "accept", "{body:#}");
    assert_webhook_headers(&requests[0]);
}

/// A result carrying its own profile wins over PROFILE_PATH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_own_profile_wins_over_profile_path() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let result = accept(&sample("s04"));
    let path = write_atomic(dir.path(), "result.json", &result);
    let envs = result_env(&path, &server.url("/"))
        .set("PROFILE_PATH", sample_path("s01").to_str().unwrap());
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    assert_webhook_body(server.requests()[0].json(), &result);
}

/// Two minimal results in one directory get distinct webhook-ids (the id
/// falls back to the file name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_results_without_ids_get_distinct_webhook_ids() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    std::fs::write(dir.path().join("one.json"), br#"{"verdict":"accept"}"#).unwrap();
    std::fs::write(dir.path().join("two.json"), br#"{"verdict":"accept"}"#).unwrap();
    let out = spawn_relay(RELAY, &dir_env(dir.path(), &server.url("/"), 2))
        .wait(GUARD)
        .await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    assert_ne!(
        requests[0].webhook_id(),
        requests[1].webhook_id(),
        "{}",
        server.describe()
    );
}

// --- precedence: 1, 4, 5, 3 ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_wins_over_invalid_and_error_results() {
    let dir = tempdir();
    let server = Notifier::start(vec![Reply::status(400)]).await;
    write_atomic(
        dir.path(),
        "accepted.json",
        &accept(&full_profile("acc", "Accepted.")),
    );
    write_atomic(
        dir.path(),
        "failed.json",
        &error_result(&full_profile("err", "Errored.")),
    );
    std::fs::write(dir.path().join("garbage.json"), b"{{{").unwrap();
    let envs = dir_env(dir.path(), &server.url("/"), 3).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_wins_over_the_wait_timeout() {
    let dir = tempdir();
    let server = Notifier::start(vec![Reply::status(410)]).await;
    write_atomic(
        dir.path(),
        "gone.json",
        &accept(&full_profile("gone", "Receiver gone.")),
    );
    let envs = dir_env(dir.path(), &server.url("/"), 2).set("RELAY_WAIT_TIMEOUT", "500ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_wins_over_an_error_result() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    write_atomic(
        dir.path(),
        "failed.json",
        &error_result(&full_profile("err", "Errored.")),
    );
    std::fs::write(dir.path().join("garbage.json"), b"{{{").unwrap();
    let envs = dir_env(dir.path(), &server.url("/"), 2).set("RELAY_SETTLE_TIMEOUT", "300ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(4);
    assert_eq!(server.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_result_wins_over_the_wait_timeout() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    write_atomic(
        dir.path(),
        "failed.json",
        &error_result(&full_profile("err", "Errored.")),
    );
    let envs = dir_env(dir.path(), &server.url("/"), 2).set("RELAY_WAIT_TIMEOUT", "500ms");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(5);
}

/// An unparsable file still unsettled when the wait times out is not
/// forgotten: the relay exits non-zero, promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_file_at_the_wait_timeout_is_reported_invalid() {
    let dir = tempdir();
    let server = Notifier::start(vec![]).await;
    let path = dir.path().join("result.json");
    std::fs::write(&path, b"{\"verdict\":").unwrap();
    let envs = result_env(&path, &server.url("/"))
        .set("RELAY_WAIT_TIMEOUT", "500ms")
        .set("RELAY_SETTLE_TIMEOUT", "10s");
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    // Not a silent success: invalid (4) or, at least, timed out (3).
    assert!(
        out.code == 4 || out.code == 3,
        "expected exit 4 (or 3)\n{}",
        out.ctx()
    );
    assert!(out.elapsed < Duration::from_secs(5), "{}", out.ctx());
    assert_eq!(server.count(), 0);
}

/// Two pods' minimal results, both at `result.json`, for different profiles:
/// two different messages, so two different webhook-ids (receivers drop a
/// repeated id as a duplicate, per Standard Webhooks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_results_for_different_profiles_get_different_webhook_ids() {
    let server = Notifier::start(vec![]).await;
    let mut ids = Vec::new();
    for name in ["s01", "s04"] {
        let dir = tempdir();
        let path = dir.path().join("result.json");
        std::fs::write(&path, br#"{"verdict":"accept"}"#).unwrap();
        let envs = result_env(&path, &server.url("/"))
            .set("PROFILE_PATH", sample_path(name).to_str().unwrap());
        spawn_relay(RELAY, &envs).wait(GUARD).await.assert_code(0);
        ids.push(server.requests().last().unwrap().webhook_id());
    }
    assert_eq!(server.count(), 2);
    assert_ne!(
        ids[0], ids[1],
        "two different listings were sent with the same webhook-id; a deduplicating receiver drops the second"
    );
}
