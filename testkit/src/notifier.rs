//! [`Notifier`]: a webhook receiver on `127.0.0.1` answering any path and
//! method from a script of [`Reply`]s, then a default reply (200 unless
//! changed), recording every delivery with its arrival time. Failing N times,
//! given statuses and `Retry-After` are script entries; signatures are
//! checked on the recorded deliveries (see [`crate::webhook`]).

use std::time::Duration;

use crate::http::{Recorded, Reply};
use crate::server::Server;
use crate::text::clip;
use crate::wait::wait_until;

/// A notifier test server.
pub struct Notifier {
    server: Server,
}

impl Notifier {
    /// Starts on `127.0.0.1:0`, on the current tokio runtime.
    pub async fn start(script: Vec<Reply>) -> Notifier {
        let listener = crate::net::loopback_listener().await;
        Notifier {
            server: Server::serve(listener, script, Reply::ok()),
        }
    }

    /// Starts now on `port`, a port from [`crate::net::unbound_port`] that
    /// the binary already targets (a notifier that was down comes up).
    pub async fn start_on(port: u16, script: Vec<Reply>) -> Notifier {
        let listener = crate::server::bind_port(port).await;
        Notifier {
            server: Server::serve(listener, script, Reply::ok()),
        }
    }

    /// Returns at once; listens on `port` (from
    /// [`crate::net::unbound_port`]) only once `delay` has passed: until
    /// then connections are refused (a notifier that is down, then comes up).
    pub fn start_later(port: u16, delay: Duration, script: Vec<Reply>) -> Notifier {
        Notifier {
            server: Server::later(port, delay, script, Reply::ok()),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.addr(), path)
    }

    /// `host:port`, for the `ntfy+http://…` style targets.
    pub fn authority(&self) -> String {
        self.server.addr().to_string()
    }

    /// Every delivery so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn count(&self) -> usize {
        self.server.count()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.server.push(replies);
    }

    /// The reply once the script is used up (200 unless changed).
    pub fn set_default(&self, reply: Reply) {
        self.server.set_default(reply);
    }

    /// Waits until at least `n` requests arrived; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.count() >= n).await
    }

    /// Every request's description, for assertion messages.
    pub fn describe(&self) -> String {
        let requests = self.requests();
        let mut out = format!("{} request(s)", requests.len());
        for (i, r) in requests.iter().enumerate().take(10) {
            out.push_str(&format!(
                "\n--- request {i} ---\n{}",
                clip(&r.describe(), 2000)
            ));
        }
        out
    }
}
