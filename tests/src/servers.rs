//! The real HTTP peers of a pod, on `127.0.0.1`: a notifier that verifies
//! every delivery's Standard Webhooks signature (with the `standardwebhooks`
//! crate, not our own code) and an OpenAI-compatible judge.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

/// One delivery as the notifier received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Value,
    /// Whether `webhook-signature` verified against the secret.
    pub signature_valid: bool,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct NotifierState {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    secret: Option<String>,
}

/// A webhook receiver.
pub struct Notifier {
    pub addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Listens now on a fresh port.
    pub async fn start(secret: Option<&str>) -> Notifier {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Notifier::serve(listener, secret)
    }

    /// Listens on `port` once `delay` has passed: until then connections to
    /// it are refused (a notifier that is down, then comes up).
    pub async fn start_later(port: u16, delay: Duration, secret: Option<&str>) -> Notifier {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let state = NotifierState {
            deliveries: Arc::clone(&deliveries),
            secret: secret.map(str::to_string),
        };
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("the reserved port is free again");
            let _ = axum::serve(listener, router(state)).await;
        });
        Notifier {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            deliveries,
            task,
        }
    }

    fn serve(listener: tokio::net::TcpListener, secret: Option<&str>) -> Notifier {
        let addr = listener.local_addr().unwrap();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let state = NotifierState {
            deliveries: Arc::clone(&deliveries),
            secret: secret.map(str::to_string),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        Notifier {
            addr,
            deliveries,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(state: NotifierState) -> Router {
    Router::new()
        .route("/hook", post(receive))
        .with_state(state)
}

async fn receive(
    State(state): State<NotifierState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature_valid = match &state.secret {
        Some(secret) => standardwebhooks::Webhook::new(secret)
            .map(|hook| hook.verify(&body, &headers).is_ok())
            .unwrap_or(false),
        None => false,
    };
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.deliveries.lock().unwrap().push(Delivery {
        headers,
        body,
        signature_valid,
    });
    StatusCode::NO_CONTENT
}

/// An OpenAI-compatible chat-completions server that judges every listing
/// the same way, after an optional delay (a slow model).
pub struct Judge {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct JudgeState {
    verdict: &'static str,
    delay: Duration,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Judge {
    pub async fn start(verdict: &'static str, delay: Duration) -> Judge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = JudgeState {
            verdict,
            delay,
            requests: Arc::clone(&requests),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Judge {
            addr,
            requests,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Judge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn complete(State(state): State<JudgeState>, body: Bytes) -> (StatusCode, String) {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(request);
    tokio::time::sleep(state.delay).await;
    let content = json!({
        "verdict": state.verdict,
        "score": if state.verdict == "accept" { 0.9 } else { 0.1 },
        "reasons": [format!("the test judge says {}", state.verdict)],
    })
    .to_string();
    let reply = json!({
        "id": "chatcmpl-pod",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "pod-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    });
    (StatusCode::OK, reply.to_string())
}

/// A port that was free a moment ago (for a server started later).
pub fn reserve_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
