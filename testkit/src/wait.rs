//! Synchronisation by polling up to a deadline, never by a fixed sleep.

use std::time::{Duration, Instant};

/// How often waits poll.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Polls `cond` every few milliseconds until it holds (true) or `timeout`
/// passes (false).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        tokio::time::sleep(POLL).await;
    }
}
