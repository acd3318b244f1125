//! [`BlackHole`]: a peer that accepts TCP connections and never answers, for
//! request timeouts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Accepts connections and never answers (nor closes them while it lives).
pub struct BlackHole {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BlackHole {
    /// Listens on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start() -> BlackHole {
        let listener = crate::net::loopback_listener().await;
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let log = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                log.lock().unwrap().push(Instant::now());
                held.push(stream);
            }
        });
        BlackHole {
            addr,
            accepted,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted so far (one per attempt: a timed-out connection
    /// is not reused).
    pub fn connections(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}
