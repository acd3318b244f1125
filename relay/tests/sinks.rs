//! What each target receives: the generic webhook, ntfy, Slack, Discord,
//! file:// and stdout:, with signing, bearer tokens, the User-Agent, and
//! several targets at once.

use std::collections::HashSet;

use serde_json::Value;
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Whether `s` says something that identifies the listing.
fn names_the_listing(s: &str, profile: &Value) -> bool {
    let meta = &profile["metadata"];
    let text: String = profile["text"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(24)
        .collect();
    [
        meta["url"].as_str(),
        meta["summary"].as_str(),
        meta["location"].as_str(),
        meta["price"].as_str(),
        Some(text.as_str()),
    ]
    .into_iter()
    .flatten()
    .any(|needle| !needle.is_empty() && s.contains(needle))
}

async fn one_delivery(url: &str, result: &Value, extra: Envs) -> (tempfile::TempDir, Output) {
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", result);
    let mut envs = result_env(&path, url);
    for (k, v) in extra.0 {
        envs = envs.set(&k, v);
    }
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    (dir, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_webhook_has_user_agent_and_no_signature_without_a_secret() {
    let server = Notifier::start(vec![]).await;
    let result = accept(&sample("s01"));
    let (_dir, out) = one_delivery(&server.url("/hook"), &result, Envs::new()).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let r = &requests[0];
    let ua = r.must_header("user-agent");
    let expected = format!("shortlist-relay/{}", env!("CARGO_PKG_VERSION"));
    assert!(
        ua.starts_with(&expected),
        "User-Agent {ua:?}, expected {expected:?}"
    );
    assert!(
        r.header("webhook-signature").is_none(),
        "signed without a secret\n{}",
        r.describe()
    );
    assert!(
        r.header("authorization").is_none(),
        "an Authorization header without a token\n{}",
        r.describe()
    );
    assert_webhook_headers(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntfy_gets_the_topic_path_title_click_tags_and_a_text_body() {
    let server = Notifier::start(vec![]).await;
    let profile = sample("s01");
    let result = accept(&profile);
    let url = format!("ntfy+http://{}/shortlist-alerts", server.authority());
    let (_dir, out) = one_delivery(&url, &result, Envs::new()).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let r = &requests[0];
    assert_eq!(r.method, "POST", "{}", r.describe());
    assert_eq!(r.path, "/shortlist-alerts", "{}", r.describe());
    assert!(
        !r.must_header("title").trim().is_empty(),
        "{}",
        r.describe()
    );
    assert_eq!(
        r.must_header("click"),
        profile["metadata"]["url"].as_str().unwrap(),
        "{}",
        r.describe()
    );
    assert!(!r.must_header("tags").trim().is_empty(), "{}", r.describe());
    let body = r.text();
    assert!(!body.trim().is_empty(), "empty ntfy body");
    assert!(
        serde_json::from_str::<Value>(&body)
            .map(|v| !v.is_object())
            .unwrap_or(true),
        "ntfy wants a plain-text body, got JSON:\n{body}"
    );
    assert!(
        names_the_listing(&(body.clone() + r.must_header("title")), &profile),
        "the message does not name the listing:\n{}",
        r.describe()
    );
    assert_webhook_headers(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_a_text_message() {
    let server = Notifier::start(vec![]).await;
    let profile = sample("s04");
    let result = accept(&profile);
    let url = format!(
        "slack+http://{}/services/T000/B000/XXXX",
        server.authority()
    );
    let (_dir, out) = one_delivery(&url, &result, Envs::new()).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let r = &requests[0];
    assert_eq!(r.path, "/services/T000/B000/XXXX");
    let body = r.json();
    let text = body["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"text\" string: {body:#}"));
    assert!(!text.trim().is_empty());
    assert!(
        names_the_listing(text, &profile),
        "the message does not name the listing: {text}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{}",
        r.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_gets_content_of_at_most_2000_characters() {
    let server = Notifier::start(vec![]).await;
    // Long, multi-byte text and many reasons: the message must be cut, on a
    // character boundary, to Discord's limit.
    let text = "Spacious £ flat with a garden 🌳 and views. ".repeat(150);
    let profile = full_profile("long-one", &text);
    let mut result = accept(&profile);
    result["reasons"] = serde_json::json!(vec![
        "a rather long reason about the garden 🌳 and the price £";
        60
    ]);
    let url = format!("discord+http://{}/api/webhooks/1/abc", server.authority());
    let (_dir, out) = one_delivery(&url, &result, Envs::new()).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", server.describe());
    let r = &requests[0];
    assert_eq!(r.path, "/api/webhooks/1/abc");
    let body = r.json();
    let content = body["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"content\" string: {body:#}"));
    assert!(!content.trim().is_empty());
    let chars = content.chars().count();
    assert!(
        chars <= 2000,
        "content is {chars} characters, over Discord's 2000"
    );
    assert!(
        String::from_utf8(r.body.clone()).is_ok(),
        "the body is not UTF-8"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_target_appends_one_json_line_per_result() {
    let dir = tempdir();
    let out_dir = tempdir();
    let jsonl = out_dir.path().join("deliveries.jsonl");
    std::fs::write(&jsonl, "{\"earlier\":true}\n").unwrap();
    let ids = ["file-one", "file-two", "file-three"];
    for id in ids {
        write_atomic(
            dir.path(),
            &format!("{id}.json"),
            &accept(&full_profile(id, &format!("Listing {id}."))),
        );
    }
    write_atomic(
        dir.path(),
        "rejected.json",
        &reject(&full_profile("file-rejected", "No.")),
    );
    let url = format!("file://{}", jsonl.display());
    let out = spawn_relay(RELAY, &dir_env(dir.path(), &url, 4))
        .wait(GUARD)
        .await;
    out.assert_code(0);

    let content = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "the earlier line + one per accepted result:\n{content}"
    );
    assert_eq!(
        lines[0], "{\"earlier\":true}",
        "the existing content must be kept"
    );
    assert!(content.ends_with('\n'), "the last line must be complete");
    let values: Vec<Value> = lines[1..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for id in ids {
        let n = values.iter().filter(|v| json_has_string(v, id)).count();
        assert_eq!(n, 1, "{id} appears in {n} lines:\n{content}");
    }
    assert!(
        !values.iter().any(|v| json_has_string(v, "file-rejected")),
        "a rejection was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_target_prints_one_json_line() {
    let result = accept(&sample("s06"));
    let (_dir, out) = one_delivery("stdout:", &result, Envs::new()).await;
    out.assert_code(0);
    let lines = out.stdout_lines();
    assert_eq!(
        lines.len(),
        1,
        "one line on stdout (logs go to stderr)\n{}",
        out.ctx()
    );
    let line: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.ctx()));
    assert!(json_has_string(&line, "s06"), "{line:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_is_the_default_target() {
    let dir = tempdir();
    let path = write_atomic(dir.path(), "result.json", &accept(&sample("s10")));
    let envs = fast().set("RESULT_PATH", path.to_str().unwrap());
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(0);
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 1, "{}", out.ctx());
    let line: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.ctx()));
    assert!(json_has_string(&line, "s10"), "{line:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_targets_at_once_each_receive_once() {
    let hook = Notifier::start(vec![]).await;
    let slack = Notifier::start(vec![]).await;
    let out_dir = tempdir();
    let jsonl = out_dir.path().join("out.jsonl");
    let targets = format!(
        "{},slack+http://{}/slack,file://{}",
        hook.url("/hook"),
        slack.authority(),
        jsonl.display()
    );
    let result = accept(&sample("s12"));
    let (dir, out) = one_delivery(&targets, &result, Envs::new()).await;
    out.assert_code(0);
    assert_eq!(hook.count(), 1, "{}", hook.describe());
    assert_eq!(slack.count(), 1, "{}", slack.describe());
    assert_webhook_body(hook.requests()[0].json(), &result);
    assert!(slack.requests()[0].json()["text"].is_string());
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 1);
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(records.len(), 3, "one record per target: {records:?}");
    let names: HashSet<&String> = records.iter().map(|r| &r.0).collect();
    assert_eq!(names.len(), 3);
}

// --- secrets ------------------------------------------------------------------

const TOKEN: &str = "tok-BEARER-0123456789-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_token_is_sent_as_a_bearer_and_never_logged() {
    let server = Notifier::start(vec![]).await;
    let extra = Envs::new()
        .set("NOTIFIER_TOKEN", TOKEN)
        .set("RUST_LOG", "trace");
    let (_dir, out) = one_delivery(&server.url("/"), &accept(&sample("s01")), extra).await;
    out.assert_code(0);
    let r = &server.requests()[0];
    assert_eq!(r.must_header("authorization"), format!("Bearer {TOKEN}"));
    assert!(
        !out.mentions(TOKEN),
        "the token leaked into the output\n{}",
        out.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_token_file_is_read_and_trimmed() {
    let server = Notifier::start(vec![]).await;
    let secrets = tempdir();
    let file = secrets.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let extra = Envs::new().set("NOTIFIER_TOKEN_FILE", file.to_str().unwrap());
    let (_dir, out) = one_delivery(&server.url("/"), &accept(&sample("s01")), extra).await;
    out.assert_code(0);
    assert_eq!(
        server.requests()[0].must_header("authorization"),
        format!("Bearer {TOKEN}")
    );
    assert!(!out.mentions(TOKEN), "{}", out.ctx());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_url_file_is_read_and_never_logged() {
    let server = Notifier::start(vec![]).await;
    let secrets = tempdir();
    let file = secrets.path().join("url");
    // Webhook URLs often carry their credential (a query token here; the
    // path of Slack/Discord hooks): logs show neither.
    let url = server.url("/hooks/in?token=secretpath123");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    let extra = Envs::new().set("NOTIFIER_URL_FILE", file.to_str().unwrap());
    let (_dir, out) = one_delivery("stdout:", &accept(&sample("s01")), extra).await;
    out.assert_code(0);
    assert_eq!(server.requests().len(), 1, "{}", out.ctx());
    assert!(!out.mentions("secretpath123"), "{}", out.ctx());

    let missing = Envs::new().set("NOTIFIER_URL_FILE", "/nonexistent/url");
    let (_dir, out) = one_delivery("stdout:", &accept(&sample("s01")), missing).await;
    out.assert_code(2);
    assert!(out.mentions("NOTIFIER_URL_FILE"), "{}", out.ctx());
}

/// The secret string, its key part, and the raw key never appear in output.
fn assert_secret_not_logged(out: &Output, secret: &str) {
    let key_part = secret.trim_start_matches("whsec_");
    assert!(
        !out.mentions(secret),
        "the webhook secret leaked\n{}",
        out.ctx()
    );
    assert!(
        !out.mentions(key_part),
        "the webhook key leaked\n{}",
        out.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_with_the_webhook_secret() {
    // One retry: every attempt carries its own valid signature.
    let server = Notifier::start(vec![Reply::status(503), Reply::ok()]).await;
    let secret = random_secret();
    let extra = Envs::new()
        .set("WEBHOOK_SECRET", &secret)
        .set("RUST_LOG", "trace");
    let (_dir, out) = one_delivery(&server.url("/signed"), &accept(&sample("s01")), extra).await;
    out.assert_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", server.describe());
    for r in &requests {
        assert!(
            r.must_header("webhook-signature").contains("v1,"),
            "{}",
            r.describe()
        );
        assert!(
            r.signature_valid(&secret),
            "the signature does not verify\n{}",
            r.describe()
        );
        // The check can fail: another key does not verify it.
        let other = random_secret();
        assert!(
            !r.signature_valid(&other),
            "a signature verified with a random key"
        );
        // Nor does a tampered body.
        let mut tampered = r.clone();
        tampered.body.push(b' ');
        assert!(
            !tampered.signature_valid(&secret),
            "a tampered body verified"
        );
    }
    assert_eq!(requests[0].webhook_id(), requests[1].webhook_id());
    assert_secret_not_logged(&out, &secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_secret_can_come_from_a_file() {
    let server = Notifier::start(vec![]).await;
    let secret = random_secret();
    let secrets = tempdir();
    let file = secrets.path().join("webhook-secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let extra = Envs::new()
        .set("WEBHOOK_SECRET_FILE", file.to_str().unwrap())
        .set("RUST_LOG", "trace");
    let (_dir, out) = one_delivery(&server.url("/signed"), &accept(&sample("s01")), extra).await;
    out.assert_code(0);
    let r = &server.requests()[0];
    assert!(
        r.signature_valid(&secret),
        "the signature does not verify\n{}",
        r.describe()
    );
    assert_secret_not_logged(&out, &secret);
}

/// Slack and Discord keep their secret in the URL path; any URL may carry
/// userinfo or a `?token=`. None of it may reach the logs (not even through
/// a transport error's message) or the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_target_urls_are_never_logged_on_failure() {
    let closed = unbound_port();
    let targets = [
        format!("slack+http://127.0.0.1:{closed}/services/T000/B000/SLACKPATHSECRET1"),
        format!("discord+http://127.0.0.1:{closed}/api/webhooks/1/DISCORDPATHSECRET2"),
        format!("http://127.0.0.1:{closed}/hook?token=QUERYSECRET3"),
        format!("http://user:USERINFOSECRET4@127.0.0.1:{closed}/hook2"),
    ]
    .join(",");
    let extra = Envs::new().set("RELAY_DELIVERY_DEADLINE", "500ms");
    let (dir, out) = one_delivery(&targets, &accept(&sample("s01")), extra).await;
    out.assert_code(1);
    for secret in [
        "SLACKPATHSECRET1",
        "DISCORDPATHSECRET2",
        "QUERYSECRET3",
        "USERINFOSECRET4",
    ] {
        assert!(
            !out.mentions(secret),
            "{secret} leaked into the output\n{}",
            out.ctx()
        );
    }
    assert!(outbox_records(&dir.path().join(".relay")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_target_urls_are_never_logged_or_recorded_on_success() {
    let server = Notifier::start(vec![Reply::status(500), Reply::ok()]).await;
    let target = format!(
        "slack+http://{}/services/T000/B000/SLACKPATHSECRET5",
        server.authority()
    );
    let (dir, out) = one_delivery(&target, &accept(&sample("s01")), Envs::new()).await;
    out.assert_code(0);
    assert_eq!(server.count(), 2, "{}", server.describe());
    assert!(
        !out.mentions("SLACKPATHSECRET5"),
        "the Slack path leaked\n{}",
        out.ctx()
    );
    let records = outbox_records(&dir.path().join(".relay"));
    assert_eq!(records.len(), 1);
    for (name, value) in &records {
        assert!(!name.contains("SLACKPATHSECRET5"), "{name}");
        assert!(!value.to_string().contains("SLACKPATHSECRET5"), "{value}");
    }
}

/// A token that cannot go in an HTTP header must be refused at start-up,
/// not silently left out of every request (which the receiver would answer
/// with 401s at delivery time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_sent_is_a_usage_error() {
    let server = Notifier::start(vec![]).await;
    let extra = Envs::new().set("NOTIFIER_TOKEN", "tok en-PART-OF-TOKEN-99");
    let (_dir, out) = one_delivery(&server.url("/"), &accept(&sample("s01")), extra).await;
    assert_eq!(
        server.count(),
        0,
        "sent without the configured token\n{}",
        server.describe()
    );
    out.assert_code(2);
    assert!(out.stderr.contains("NOTIFIER_TOKEN"), "{}", out.ctx());
    assert!(
        !out.mentions("PART-OF-TOKEN-99"),
        "the token was echoed\n{}",
        out.ctx()
    );
}
