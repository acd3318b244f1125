//! Sending one accepted result to one target, with retries: an HTTP POST,
//! or a line appended to a file or written to standard output.
//!
//! Retriable, as the webhook senders people trust do it: 408, 429, 5xx,
//! connection errors and timeouts, with exponential backoff and full jitter,
//! `Retry-After` honoured (seconds or HTTP-date), bounded by
//! `RELAY_DELIVERY_DEADLINE`. Not retried: any other 4xx (410 means the
//! receiver is gone for good), and 3xx (redirects are not followed: a
//! webhook that moved is a configuration error, and following it would send
//! a signed body somewhere nobody chose).

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use shortlist_contract::AssessmentResult;
use shortlist_shared::error::error_chain;
use shortlist_shared::retry::{RetryDecision, RetryPolicy, retry_after};
use shortlist_shared::secret::Secret;

use crate::notifier::{Auth, Delivery, HttpRequest, Rendered, Signer, Target};

/// The longest backoff between two delivery attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Attempts are bounded by the deadline; this only stops a runaway loop
/// against a server that fails instantly.
const MAX_ATTEMPTS: u32 = 1000;

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The target confirmed (2xx) or the line was written.
    Delivered { status: u16, attempts: u32 },
    /// Permanently failed, or out of deadline.
    Failed { reason: String, attempts: u32 },
}

/// One failed attempt.
#[derive(Debug)]
enum AttemptError {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    Timeout,
    Connect(String),
    Other(String),
}

impl AttemptError {
    /// A short word for logs: `status`, `timeout`, `connect` or `error`.
    fn kind(&self) -> &'static str {
        match self {
            AttemptError::Status { .. } => "status",
            AttemptError::Timeout => "timeout",
            AttemptError::Connect(_) => "connect",
            AttemptError::Other(_) => "error",
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Status { status, body, .. } => {
                let body: String = body.trim().chars().take(200).collect();
                write!(f, "HTTP {status}: {body:?}")
            }
            AttemptError::Timeout => f.write_str("timed out (RELAY_REQUEST_TIMEOUT)"),
            AttemptError::Connect(e) => write!(f, "cannot connect: {e}"),
            AttemptError::Other(e) => f.write_str(e),
        }
    }
}

/// Decides which failed attempts are worth another.
fn retry_logic(error: &AttemptError) -> RetryDecision {
    match error {
        AttemptError::Status {
            status,
            retry_after,
            ..
        } => match status {
            408 | 429 | 500..=599 => RetryDecision::Retry {
                after: *retry_after,
            },
            _ => RetryDecision::Stop,
        },
        AttemptError::Timeout | AttemptError::Connect(_) => RetryDecision::Retry { after: None },
        AttemptError::Other(_) => RetryDecision::Retry { after: None },
    }
}

/// Sends deliveries; shared by all delivery tasks.
pub(super) struct Sender {
    http: reqwest::Client,
    policy: RetryPolicy,
    signer: Option<Signer>,
    bearer: Option<Secret>,
}

impl Sender {
    pub(super) fn new(
        needs_tls: bool,
        request_timeout: Duration,
        deadline: Duration,
        base_delay: Duration,
        signer: Option<Signer>,
        bearer: Option<Secret>,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none());
        if !needs_tls {
            // No https target: skip loading the system's CA certificates
            // (start-up time and resident memory of a sidecar that waits).
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build()?;
        Ok(Sender {
            http,
            policy: RetryPolicy {
                max_attempts: MAX_ATTEMPTS,
                base_delay,
                max_delay: MAX_RETRY_DELAY,
                deadline,
            },
            signer,
            bearer,
        })
    }

    /// Delivers `result` to `target`. Never panics; every failure is an [`Outcome::Failed`].
    pub(super) async fn deliver(
        &self,
        target: &Target,
        result: &AssessmentResult,
        profile: Option<&Value>,
        webhook_id: &str,
    ) -> Outcome {
        let auth = Auth {
            signer: self.signer.as_ref(),
            bearer: self.bearer.as_ref().map(|b| b.expose()),
        };
        let render = || {
            target.render(
                &Delivery {
                    result,
                    profile,
                    webhook_id,
                    timestamp: unix_now(),
                },
                &auth,
            )
        };
        match render() {
            Rendered::StdoutLine(line) => {
                let written = {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&line).and_then(|_| out.flush())
                };
                match written {
                    Ok(()) => Outcome::Delivered {
                        status: 0,
                        attempts: 1,
                    },
                    Err(e) => Outcome::Failed {
                        reason: format!("cannot write to stdout: {e}"),
                        attempts: 1,
                    },
                }
            }
            Rendered::FileLine { path, line } => match append_line(&path, &line) {
                Ok(()) => Outcome::Delivered {
                    status: 0,
                    attempts: 1,
                },
                Err(e) => Outcome::Failed {
                    reason: format!("{}: cannot append: {e}", path.display()),
                    attempts: 1,
                },
            },
            Rendered::Http(_) => {
                // Re-render per attempt: the timestamp (and so the signature)
                // is fresh each time, the webhook-id is not.
                let tried = std::sync::atomic::AtomicU32::new(0);
                let attempt = || async {
                    tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let result = match render() {
                        Rendered::Http(request) => self.send(request).await,
                        _ => Err(AttemptError::Other("target changed kind".into())),
                    };
                    if let Err(error) = &result {
                        if let RetryDecision::Retry { after } = retry_logic(error) {
                            // Why a retry (same webhook-id) is coming: a
                            // receiver that saw the request needs to know.
                            tracing::warn!(
                                id = %webhook_id,
                                target = %target.display(),
                                attempt = tried.load(std::sync::atomic::Ordering::Relaxed),
                                reason = error.kind(),
                                error = %error,
                                retry_after_ms = after.map(|d| d.as_millis() as u64),
                                "delivery attempt failed; will retry unless out of attempts or deadline"
                            );
                        }
                    }
                    result
                };
                let (outcome, attempts) = self.policy.run(&retry_logic, attempt).await;
                match outcome {
                    Ok(status) => Outcome::Delivered { status, attempts },
                    Err(error) => {
                        let why = match retry_logic(&error) {
                            RetryDecision::Stop => "not retriable",
                            RetryDecision::Retry { .. } => {
                                "out of attempts or RELAY_DELIVERY_DEADLINE"
                            }
                        };
                        Outcome::Failed {
                            reason: format!("{error} ({why})"),
                            attempts,
                        }
                    }
                }
            }
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<u16, AttemptError> {
        let mut builder = self.http.post(request.url).body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.map_err(|e| {
            // The URL may carry a secret (Slack/Discord paths, tokens): drop it.
            let e = e.without_url();
            if e.is_timeout() {
                AttemptError::Timeout
            } else if e.is_connect() {
                AttemptError::Connect(error_chain(&e))
            } else {
                AttemptError::Other(error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(status);
        }
        // A server's Retry-After is hostile input: never wait past the
        // delivery deadline (the retry is then not scheduled at all).
        let retry_after =
            retry_after(response.headers()).map(|after| after.min(self.policy.deadline));
        let body = response.text().await.unwrap_or_default();
        Err(AttemptError::Status {
            status,
            retry_after,
            body,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Appends one line and syncs it, so a recorded delivery is on disk.
fn append_line(path: &std::path::Path, line: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, after: Option<u64>) -> AttemptError {
        AttemptError::Status {
            status,
            retry_after: after.map(Duration::from_secs),
            body: String::new(),
        }
    }

    #[test]
    fn what_is_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(retry_logic(&status(s, None)), RetryDecision::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 302, 400, 401, 403, 404, 409, 410, 422] {
            assert_eq!(retry_logic(&status(s, None)), RetryDecision::Stop, "{s}");
        }
        assert_eq!(
            retry_logic(&status(429, Some(3))),
            RetryDecision::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert!(matches!(
            retry_logic(&AttemptError::Timeout),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            retry_logic(&AttemptError::Connect("refused".into())),
            RetryDecision::Retry { .. }
        ));
    }
}
