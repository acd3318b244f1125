//! Retries, in the manner of vector's `RetryLogic`: a backend says which of
//! its errors are worth another attempt (and how long the server asked us to
//! wait); [`RetryPolicy`] owns the rest: exponential backoff with full jitter
//! (a random delay in `[0, base·2ⁿ]`, capped), a bound on attempts, and an
//! overall deadline. Backoff timing comes from `backon`; jitter and the
//! `Retry-After` override are applied through its `adjust` hook.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use rand::Rng;
use tokio::time::Instant;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again; `after` is the server's `Retry-After`, which wins over backoff.
    Retry { after: Option<Duration> },
    /// Give up: the error will not go away by asking again.
    Stop,
}

/// Decides whether an error is retriable.
pub trait RetryLogic<E> {
    fn decide(&self, error: &E) -> RetryDecision;
}

impl<E, F: Fn(&E) -> RetryDecision> RetryLogic<E> for F {
    fn decide(&self, error: &E) -> RetryDecision {
        self(error)
    }
}

/// Bounds on retrying.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts at most, the first included (≥ 1).
    pub max_attempts: u32,
    /// The backoff before the first retry; doubles each time.
    pub base_delay: Duration,
    /// The largest backoff between two attempts.
    pub max_delay: Duration,
    /// No retry is scheduled that would start after this much time.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// Runs `operation` until it succeeds, `logic` says stop, attempts run out,
    /// or the next wait would pass the deadline. Returns the last outcome and
    /// the number of attempts made.
    pub async fn run<T, E, F, Fut>(
        &self,
        logic: &impl RetryLogic<E>,
        mut operation: F,
    ) -> (Result<T, E>, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        let deadline = self.deadline;
        let outcome = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            operation()
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| matches!(logic.decide(e), RetryDecision::Retry { .. }))
        .adjust(|e, planned| {
            // `planned` is None once the attempts are used up.
            let planned = planned?;
            let wait = match logic.decide(e) {
                RetryDecision::Retry { after: Some(after) } => after,
                _ => full_jitter(planned),
            };
            if started.elapsed() + wait > deadline {
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    "not retrying: the wait would pass the deadline"
                );
                return None;
            }
            Some(wait)
        })
        .notify(|_, wait| {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "retrying after a transient failure"
            );
        })
        .await;
        (outcome, attempts.load(Ordering::Relaxed))
    }
}

/// A uniformly random duration in `[0, ceiling]` ("full jitter"): spreads
/// the retries of many pods hit by the same outage.
pub fn full_jitter(ceiling: Duration) -> Duration {
    let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// The longest wait a `Retry-After` may ask for: a day. A server's value is
/// hostile input; `u64::MAX` seconds would overflow every deadline sum.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The `Retry-After` of an HTTP response, if it has a usable one: the one
/// reading of that header for both binaries (the judge's and vision
/// server's replies, a notifier's).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Parses a `Retry-After` value: delay-seconds (`"120"`, tolerating `"1.5"`)
/// or an HTTP-date (`"Wed, 21 Oct 2026 07:28:00 GMT"`; a past date means now).
/// Capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }

    #[derive(Debug, PartialEq)]
    enum E {
        Transient,
        After(u64),
        Permanent,
    }

    fn logic(e: &E) -> RetryDecision {
        match e {
            E::Transient => RetryDecision::Retry { after: None },
            E::After(s) => RetryDecision::Retry {
                after: Some(Duration::from_secs(*s)),
            },
            E::Permanent => RetryDecision::Stop,
        }
    }

    /// Runs a scripted sequence of outcomes, recording when each attempt started.
    async fn scripted(
        policy: RetryPolicy,
        script: Vec<Result<u8, E>>,
    ) -> (Result<u8, E>, u32, Vec<Duration>) {
        let start = Instant::now();
        let script = RefCell::new(script.into_iter());
        let times = RefCell::new(Vec::new());
        let (outcome, attempts) = policy
            .run(&logic, || {
                times.borrow_mut().push(start.elapsed());
                let next = script.borrow_mut().next().unwrap_or(Ok(0));
                async move { next }
            })
            .await;
        (outcome, attempts, times.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_growing_jittered_delays() {
        let (outcome, attempts, times) =
            scripted(policy(4), vec![Err(E::Transient), Err(E::Transient), Ok(7)]).await;
        assert_eq!(outcome, Ok(7));
        assert_eq!(attempts, 3);
        // full jitter: each wait is within [0, base * 2^n]
        assert!(times[1] - times[0] <= Duration::from_millis(500));
        assert!(times[2] - times[1] <= Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let (outcome, attempts, _) = scripted(policy(4), vec![Err(E::Permanent), Ok(1)]).await;
        assert_eq!(outcome, Err(E::Permanent));
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let (outcome, attempts, _) =
            scripted(policy(3), (0..10).map(|_| Err(E::Transient)).collect()).await;
        assert_eq!(outcome, Err(E::Transient));
        assert_eq!(attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_wins_over_backoff() {
        let (outcome, attempts, times) = scripted(policy(4), vec![Err(E::After(7)), Ok(1)]).await;
        assert_eq!(outcome, Ok(1));
        assert_eq!(attempts, 2);
        assert_eq!(times[1] - times[0], Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_stops() {
        let mut p = policy(5);
        p.deadline = Duration::from_secs(5);
        let (outcome, attempts, _) = scripted(p, vec![Err(E::After(60)), Ok(1)]).await;
        assert_eq!(outcome, Err(E::After(60)));
        assert_eq!(attempts, 1);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        // Hostile values are capped, not overflowed.
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
