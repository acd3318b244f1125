//! The kit's own servers, checked with a real HTTP client: scripts,
//! handlers, defaults, late start and signature verification.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::*;

async fn post(url: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut request = reqwest::Client::new().post(url).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .expect("the request reaches the server");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a text body"))
}

fn content(body: &str) -> Value {
    let completion: Value = serde_json::from_str(body).expect("a completion is JSON");
    serde_json::from_str(
        completion["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .expect("the content is JSON")
}

#[tokio::test]
async fn fake_openai_answers_from_its_script_then_with_the_default() {
    let server = FakeOpenAi::start(vec![
        verdict("reject", 0.2, "scripted"),
        error_reply(429, &openai_error("slow down", "rate_limit_error")),
    ])
    .await;
    let url = format!("{}/chat/completions", server.base_url());
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});

    let (status, body) = post(&url, &[], &request.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(content(&body)["verdict"], "reject");
    let (status, body) = post(&url, &[], &request.to_string()).await;
    assert_eq!(status, 429);
    assert!(body.contains("slow down"), "{body}");
    let (status, body) = post(&url, &[], &request.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        content(&body),
        serde_json::from_str::<Value>(DEFAULT_CONTENT).unwrap()
    );

    assert_eq!(server.remaining(), 0);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].message("user"), "hello");
    assert_eq!(requests[1].replied, 429);
}

#[tokio::test]
async fn fake_openai_answers_each_request_from_its_handler() {
    let server = FakeOpenAi::answering(|request| {
        let user = request.try_message("user").unwrap_or_default();
        if user.contains("garden") {
            verdict("accept", 0.9, "a garden")
        } else {
            Reply::status(400)
        }
    })
    .await;
    let url = format!("{}/chat/completions", server.base_url());
    let ask = |text: &str| {
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]})
            .to_string()
    };
    let (status, body) = post(&url, &[], &ask("a flat with a garden")).await;
    assert_eq!(status, 200);
    assert_eq!(content(&body)["verdict"], "accept");
    let (status, _) = post(&url, &[], &ask("a flat")).await;
    assert_eq!(status, 400);
    // A script entry comes before the handler.
    server.push([Reply::status(503)]);
    let (status, _) = post(&url, &[], &ask("a garden again")).await;
    assert_eq!(status, 503);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_notifier_fails_as_scripted_then_answers_with_its_default() {
    let notifier = Notifier::start(vec![
        Reply::status(503).header_date_in("retry-after", Duration::from_secs(2)),
        Reply::status(500),
    ])
    .await;
    let url = notifier.url("/hook");
    let (status, _) = post(&url, &[], "{}").await;
    assert_eq!(status, 503);
    let (status, _) = post(&url, &[], "{}").await;
    assert_eq!(status, 500);
    let (status, _) = post(&url, &[], r#"{"a":1}"#).await;
    assert_eq!(status, 200);
    notifier.set_default(Reply::status(410));
    let (status, _) = post(&url, &[], "{}").await;
    assert_eq!(status, 410);
    let requests = notifier.requests();
    assert_eq!(
        requests.iter().map(|r| r.replied).collect::<Vec<_>>(),
        [503, 500, 200, 410]
    );
    assert_eq!(requests[2].json()["a"], 1);
}

#[tokio::test]
async fn a_notifier_started_later_refuses_connections_until_it_is_up() {
    let port = unbound_port();
    let notifier = Notifier::start_later(port, Duration::from_millis(500), vec![]);
    let url = notifier.url("/hook");
    let refused = reqwest::Client::new().post(&url).body("{}").send().await;
    assert!(refused.is_err(), "nothing listens yet: {refused:?}");
    let up = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(up, "the notifier came up on port {port}");
    let (status, _) = post(&url, &[], "{}").await;
    assert_eq!(status, 200);
    assert_eq!(notifier.count(), 1);
}

#[tokio::test]
async fn signatures_verify_with_the_secret_only() {
    let notifier = Notifier::start(vec![]).await;
    let secret = random_secret();
    let body = r#"{"assessment":{"verdict":"accept"}}"#;
    let timestamp = unix_now();
    let signature = standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .sign("msg_1", timestamp, body.as_bytes())
        .unwrap();
    let headers = [
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            format!("v1,bm90LXRoaXMtb25l {signature}"),
        ),
    ];
    post(&notifier.url("/signed"), &headers, body).await;
    let r = &notifier.requests()[0];
    assert_webhook_headers(r);
    assert!(r.signature_valid(&secret), "{}", r.describe());
    assert!(!r.signature_valid(&random_secret()));
    let mut tampered = r.clone();
    tampered.body.push(b' ');
    assert!(!tampered.signature_valid(&secret));
}

#[test]
fn samples_and_labels_come_from_the_repository() {
    let samples = samples();
    assert_eq!(samples.len(), SAMPLE_COUNT);
    let labels = labels();
    for (name, path, value) in &samples {
        assert!(path.starts_with(samples_dir()));
        assert!(value["text"].is_string(), "{name}");
        assert!(labels[name.as_str()].is_string(), "{name} has a label");
    }
    assert_eq!(sample("s01"), samples[0].2);
}

#[test]
fn envs_replace_and_remove() {
    let envs = Envs::new()
        .set("A", "1")
        .set("B", "2")
        .set("A", "3")
        .remove("B");
    assert_eq!(envs.get("A"), Some("3"));
    assert_eq!(envs.get("B"), None);
    assert_eq!(envs.len(), 1);
}
