//! The HTTP side of talking to an OpenAI-compatible chat-completions server,
//! shared by the `openai` judge and the captions stage: one
//! async-openai client per server over our own reqwest client and transport.
//!
//! The transport is a tower service of ours (connect and request timeouts;
//! async-openai's default client has none) that turns every non-2xx answer
//! into an [`HttpStatusError`] carrying the status, `Retry-After` and body:
//! async-openai's own error mapping drops the status of non-JSON 4xx bodies
//! and all headers, and both decide whether to retry or fall back. Requests
//! and replies go through its "bring your own types" path: replies from small
//! servers omit fields its typed response requires.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use serde::Deserialize;
use serde_json::Value;
use shortlist_shared::error::error_chain;
use shortlist_shared::retry::{RetryDecision, retry_after};
use shortlist_shared::secret::Secret;

use crate::verdict::excerpt;

/// A non-2xx answer, as our transport reports it through async-openai.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub(crate) struct HttpStatusError {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: String,
}

/// One failed request, classified.
#[derive(Debug)]
pub(crate) enum CallError {
    Status(HttpStatusError),
    Timeout,
    Connect(String),
    Transport(String),
    /// A 2xx whose body is not a chat completion.
    BadBody(String),
}

impl CallError {
    /// Retry as the official clients do: 408, 409, 429, 5xx and connection
    /// problems, honouring `Retry-After`; everything else is final.
    pub(crate) fn retry_decision(&self) -> RetryDecision {
        match self {
            CallError::Status(e) => match e.status {
                408 | 409 | 429 | 500..=599 => RetryDecision::Retry {
                    after: e.retry_after,
                },
                _ => RetryDecision::Stop,
            },
            CallError::Timeout | CallError::Connect(_) | CallError::Transport(_) => {
                RetryDecision::Retry { after: None }
            }
            CallError::BadBody(_) => RetryDecision::Stop,
        }
    }

    /// A one-line description naming the endpoint.
    pub(crate) fn describe(&self, endpoint: &str) -> String {
        match self {
            CallError::Status(e) => {
                format!("{endpoint}: HTTP {}: {}", e.status, excerpt(e.body.trim()))
            }
            CallError::Timeout => format!("{endpoint}: timed out"),
            CallError::Connect(d) | CallError::Transport(d) => format!("{endpoint}: {d}"),
            CallError::BadBody(d) => {
                format!("{endpoint} answered 2xx with a body that is not a chat completion: {d}")
            }
        }
    }
}

/// The parts of a chat completion we read; lenient, because servers differ.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub(crate) message: Option<WireMessage>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub(crate) prompt_tokens: u64,
    #[serde(default)]
    pub(crate) completion_tokens: u64,
}

/// One server: its client and its endpoint as shown in messages.
pub(crate) struct ChatHttp {
    client: Client<OpenAIConfig>,
    /// `{base}/chat/completions` without credentials, for messages.
    pub(crate) endpoint: String,
}

impl ChatHttp {
    /// A client for `base_url` (already validated as http(s)). Fails only
    /// when reqwest cannot build a client (e.g. no TLS roots).
    pub(crate) fn new(
        base_url: &str,
        api_key: Option<&Secret>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("shortlist-assessor/", env!("CARGO_PKG_VERSION")));
        if base_url.starts_with("http://") {
            // Plain HTTP (a server in the pod or on the node): skip loading the
            // system's CA certificates, ~1-2 ms of start-up spent for nothing.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        // Always set (possibly empty) so async-openai never reads a key from
        // its own environment defaults behind our back.
        let config = OpenAIConfig::new()
            .with_api_base(base_url.to_string())
            .with_api_key(api_key.map(|k| k.expose().to_string()).unwrap_or_default());
        let transport_client = http.clone();
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = transport_client.clone();
            async move { send(&http, factory).await }
        });
        Ok(ChatHttp {
            client: Client::build(http, config).with_http_service(transport),
            endpoint: display_endpoint(base_url),
        })
    }

    /// One chat-completions request, classified.
    pub(crate) async fn call(&self, body: &Value) -> Result<ChatResponse, CallError> {
        self.client
            .chat()
            .create_byot::<&Value, ChatResponse>(body)
            .await
            .map_err(classify)
    }
}

/// Our transport: sends the request async-openai built, and reports any
/// non-2xx answer as an [`HttpStatusError`] with its status, `Retry-After`
/// and body intact.
async fn send(
    http: &reqwest::Client,
    factory: HttpRequestFactory,
) -> Result<reqwest::Response, OpenAIError> {
    let mut request = factory.build().await?;
    let headers = request.headers_mut();
    // async-openai always sends a Bearer header; without a key it would be an
    // empty "Bearer ", which some proxies reject.
    if headers
        .get(reqwest::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"Bearer")
    {
        headers.remove(reqwest::header::AUTHORIZATION);
    }
    // Keep the key out of any Debug output of the request (hyper/reqwest traces).
    if let Some(auth) = headers.get_mut(reqwest::header::AUTHORIZATION) {
        auth.set_sensitive(true);
    }
    let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    Err(OpenAIError::Boxed(Box::new(HttpStatusError {
        status: status.as_u16(),
        retry_after,
        body,
    })))
}

fn classify(error: OpenAIError) -> CallError {
    match error {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpStatusError>() {
            Ok(status) => CallError::Status(*status),
            Err(other) => CallError::Transport(other.to_string()),
        },
        OpenAIError::Reqwest(e) if e.is_timeout() => CallError::Timeout,
        OpenAIError::Reqwest(e) if e.is_connect() => CallError::Connect(error_chain(&e)),
        OpenAIError::Reqwest(e) => CallError::Transport(error_chain(&e)),
        OpenAIError::JSONDeserialize(e, content) => {
            CallError::BadBody(format!("{e}: {}", excerpt(&content)))
        }
        other => CallError::Transport(other.to_string()),
    }
}

/// `{base}/chat/completions` with any userinfo removed.
pub(crate) fn display_endpoint(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            format!("{}/chat/completions", url.as_str().trim_end_matches('/'))
        }
        Err(_) => format!("{base_url}/chat/completions"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_drops_credentials() {
        assert_eq!(
            display_endpoint("http://user:pw@localhost:8080/v1"),
            "http://localhost:8080/v1/chat/completions"
        );
    }
}
