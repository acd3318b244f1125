//! The recording HTTP server under [`crate::FakeOpenAi`] and
//! [`crate::Notifier`]: answers any method on any path, records every
//! request on arrival, and answers from a script, then a handler, then a
//! default reply.
//!
//! It serves on a listener the kit bound (port 0), never on a port it
//! released and bound again.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use crate::http::{Recorded, Reply};

/// Decides the reply to a request from the request itself.
pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    handler: Mutex<Option<Handler>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running recording server; dropping it stops it.
pub(crate) struct Server {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn inner(script: Vec<Reply>, default: Reply) -> Arc<Inner> {
        Arc::new(Inner {
            script: Mutex::new(script.into()),
            handler: Mutex::new(None),
            default: Mutex::new(default),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// Serves on `listener` (bound by the caller) on the current runtime.
    pub(crate) fn serve(
        listener: tokio::net::TcpListener,
        script: Vec<Reply>,
        default: Reply,
    ) -> Server {
        let inner = Server::inner(script, default);
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let app = router(inner.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test server");
        });
        Server { addr, inner, task }
    }

    /// Binds `127.0.0.1:port` after `delay` and serves there; until then
    /// connections are refused. `port` comes from
    /// [`crate::net::unbound_port`]; binding retries for a few seconds in
    /// case the port is still in TIME_WAIT.
    pub(crate) fn later(port: u16, delay: Duration, script: Vec<Reply>, default: Reply) -> Server {
        let inner = Server::inner(script, default);
        let app = router(inner.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let listener = bind_port(port).await;
            axum::serve(listener, app).await.expect("test server");
        });
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            inner,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    pub(crate) fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    pub(crate) fn remaining(&self) -> usize {
        self.inner.script.lock().unwrap().len()
    }

    pub(crate) fn set_handler(&self, handler: Handler) {
        *self.inner.handler.lock().unwrap() = Some(handler);
    }

    pub(crate) fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = reply;
    }
}

/// Binds `127.0.0.1:port`, retrying for up to five seconds.
pub(crate) async fn bind_port(port: u16) -> tokio::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return listener,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind the reserved port 127.0.0.1:{port}: {e}"),
        }
    }
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(inner)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        parsed: serde_json::from_slice(&body).ok(),
        body: body.to_vec(),
        at: Instant::now(),
        replied: 0,
    };
    let reply = {
        // Record and choose under one lock so that replies follow arrival order.
        let mut requests = inner.requests.lock().unwrap();
        let scripted = inner.script.lock().unwrap().pop_front();
        let reply = match scripted {
            Some(reply) => reply,
            None => {
                let handler = inner.handler.lock().unwrap().clone();
                match handler {
                    Some(handler) => handler(&recorded),
                    None => inner.default.lock().unwrap().clone(),
                }
            }
        };
        recorded.replied = reply.status;
        requests.push(recorded);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).expect("a valid status in the reply"));
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for (name, offset) in &reply.date_headers {
        builder = builder.header(
            name.as_str(),
            httpdate::fmt_http_date(SystemTime::now() + *offset),
        );
    }
    builder
        .body(Body::from(reply.body))
        .expect("a response from valid parts")
}
