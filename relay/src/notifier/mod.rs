//! Notifiers, the pure half of delivery: which targets `NOTIFIER_URL` names
//! ([`target`]), what each one is sent for an accepted result ([`render`]),
//! and how it is signed ([`signing`]).
//!
//! Nothing here does I/O, so every adapter's exact request can be checked in
//! unit tests; `deliver` owns sending, retries and the outbox. The flow is
//! [`parse_targets`] once at start-up, then per attempt
//! [`Target::render`] → [`Rendered`] → send / append / print.
//!
//! Secrets live in target URLs, the webhook secret and the bearer token;
//! every `Debug` and `Display` here prints them redacted, and header values
//! carrying them are marked sensitive. When logging a transport error for a
//! request built here, use `reqwest::Error::without_url()` (or log
//! [`Target::display`]) since the URL itself may hold the secret.

mod render;
mod signing;
mod target;

use std::fmt;
use std::path::PathBuf;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

pub(crate) use render::check_bearer_token;
pub(crate) use signing::Signer;
pub(crate) use target::{Target, parse_targets};

/// One delivery attempt of one accepted result to one target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery<'a> {
    pub(crate) result: &'a shortlist_contract::AssessmentResult,
    /// The profile: the result's own `profile`, or the one read from
    /// PROFILE_PATH; may be None.
    pub(crate) profile: Option<&'a serde_json::Value>,
    /// The Standard Webhooks message id: the same on every retry of one
    /// delivery, so receivers can drop duplicates. Should be ASCII; other
    /// bytes are percent-encoded in the header (and signed as encoded).
    pub(crate) webhook_id: &'a str,
    /// Unix seconds of this attempt.
    pub(crate) timestamp: i64,
}

/// Credentials added to every HTTP delivery.
#[derive(Clone, Copy, Default)]
pub(crate) struct Auth<'a> {
    /// Signs with Standard Webhooks `webhook-signature` when set.
    pub(crate) signer: Option<&'a Signer>,
    /// Sent as `Authorization: Bearer <token>` when set (ntfy access tokens,
    /// most webhook gateways). Validate it at start-up with
    /// [`check_bearer_token`]: a token that is not a valid header value is
    /// left out of the request rather than sent mangled.
    pub(crate) bearer: Option<&'a str>,
}

/// Redacted: auth is carried around in config structs that get logged.
impl fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("signer", &self.signer.map(|_| "<redacted>"))
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .finish()
    }
}

/// An HTTP POST to make.
#[derive(Clone)]
pub(crate) struct HttpRequest {
    /// The full URL, secrets included: send it, never log it.
    pub(crate) url: Url,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Vec<u8>,
}

/// Shows only the URL's scheme and host (the path may be a Slack or Discord
/// secret); sensitive headers print as `Sensitive` (the `http` crate's own
/// redaction).
impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.url.host_str().unwrap_or("");
        f.debug_struct("HttpRequest")
            .field("url", &format_args!("{}://{host}/…", self.url.scheme()))
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// What to do for one delivery.
#[derive(Debug, Clone)]
pub(crate) enum Rendered {
    /// POST this request.
    Http(HttpRequest),
    /// Append `line` (one JSON object, ending in `\n`) to `path`.
    FileLine { path: PathBuf, line: Vec<u8> },
    /// Write the line (ending in `\n`) to standard output.
    StdoutLine(Vec<u8>),
}
