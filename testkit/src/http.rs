//! What the kit's HTTP servers answer ([`Reply`]) and what they saw
//! ([`Recorded`]); shared by [`crate::FakeOpenAi`] and [`crate::Notifier`].

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::text::clip;

/// One HTTP answer: a script entry, a handler's result or a default.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Headers whose value is an HTTP-date this far after the moment of
    /// replying (e.g. `Retry-After: <date>`).
    pub date_headers: Vec<(String, Duration)>,
    pub body: String,
    /// Answers only after this (the request is recorded on arrival).
    pub delay: Duration,
}

impl Reply {
    /// An answer with `status` and a short text body.
    pub fn status(status: u16) -> Reply {
        Reply::raw(status, "text/plain", &format!("test server says {status}"))
    }

    /// `200 OK` with a short text body.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// A raw body with a status and content type.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            date_headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A header holding the HTTP-date `offset` after the reply is sent,
    /// computed when replying.
    pub fn header_date_in(mut self, name: &str, offset: Duration) -> Reply {
        self.date_headers.push((name.to_string(), offset));
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as a kit server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The exact bytes (signatures are over these).
    pub body: Vec<u8>,
    /// When the request arrived (before any delay of its reply).
    pub at: Instant,
    /// The status the server answered (or will answer, after a delay).
    pub replied: u16,
    /// The body parsed once on arrival; `None` when it is not JSON.
    pub(crate) parsed: Option<Value>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header, or a panic naming it and showing the request.
    pub fn must_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("request has no {name:?} header:\n{}", self.describe()))
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the request) when it is not.
    pub fn json(&self) -> &Value {
        self.parsed
            .as_ref()
            .unwrap_or_else(|| panic!("request body is not JSON:\n{}", self.describe()))
    }

    /// The body as JSON, or `None` when it is not.
    pub fn try_json(&self) -> Option<&Value> {
        self.parsed.as_ref()
    }

    /// The request for assertion messages.
    pub fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("  {n}: {v}"))
            .collect();
        format!(
            "{} {}{} (answered {})\n{}\n\n{}",
            self.method,
            self.path,
            self.query
                .as_ref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default(),
            self.replied,
            headers.join("\n"),
            clip(&self.text(), 3000)
        )
    }
}
