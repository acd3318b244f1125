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
    /// `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}` when
    /// requested and given. Kept as a value and read leniently
    /// ([`crate::judge::logprobs`]): a server's odd logprobs (nulls, a
    /// missing field) cost the score its source, never the reply.
    #[serde(default)]
    pub(crate) logprobs: Option<Value>,
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
    /// `{base}/chat/completions` without credentials and with query values
    /// hidden, for messages.
    pub(crate) endpoint: String,
}

/// A base URL as requests use it: async-openai appends `/chat/completions`
/// to `api_base` as text, so a query string (`/v1?api-key=…`) must be taken
/// off first and put back on each request by our transport, or the path
/// would become `v1?api-key=…/chat/completions`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SplitBase {
    /// Scheme, credentials, host and path, without a trailing slash.
    api_base: String,
    /// The query as written (still encoded), without its `?`.
    query: Option<String>,
}

fn split_base(base_url: &str) -> SplitBase {
    match reqwest::Url::parse(base_url) {
        Ok(mut url) => {
            let query = url.query().filter(|q| !q.is_empty()).map(str::to_string);
            url.set_query(None);
            url.set_fragment(None);
            SplitBase {
                api_base: url.as_str().trim_end_matches('/').to_string(),
                query,
            }
        }
        // Validated at start-up; passed on as given if it ever is not.
        Err(_) => SplitBase {
            api_base: base_url.trim_end_matches('/').to_string(),
            query: None,
        },
    }
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
        let base = split_base(base_url);
        // Always set (possibly empty) so async-openai never reads a key from
        // its own environment defaults behind our back.
        let config = OpenAIConfig::new()
            .with_api_base(base.api_base)
            .with_api_key(api_key.map(|k| k.expose().to_string()).unwrap_or_default());
        let transport_client = http.clone();
        let query = base.query;
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = transport_client.clone();
            let query = query.clone();
            async move { send(&http, query.as_deref(), factory).await }
        });
        Ok(ChatHttp {
            client: Client::build(http, config).with_http_service(transport),
            endpoint: display_endpoint(base_url),
        })
    }

    /// One chat-completions request, classified. `body` is any serializable
    /// request (a value, or a type that writes a schema's keys in order).
    pub(crate) async fn call<B>(&self, body: &B) -> Result<ChatResponse, CallError>
    where
        B: serde::Serialize + Sync + ?Sized,
    {
        self.client
            .chat()
            .create_byot::<&B, ChatResponse>(body)
            .await
            .map_err(classify)
    }
}

/// Our transport: sends the request async-openai built, and reports any
/// non-2xx answer as an [`HttpStatusError`] with its status, `Retry-After`
/// and body intact.
async fn send(
    http: &reqwest::Client,
    base_query: Option<&str>,
    factory: HttpRequestFactory,
) -> Result<reqwest::Response, OpenAIError> {
    let mut request = factory.build().await?;
    // The base URL's own query, where it was written: after the path.
    if let Some(base_query) = base_query {
        let url = request.url_mut();
        let query = match url.query().filter(|q| !q.is_empty()) {
            Some(own) => format!("{base_query}&{own}"),
            None => base_query.to_string(),
        };
        url.set_query(Some(&query));
    }
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
        // reqwest's messages name the full URL, query (and a key in it)
        // included; the caller names the endpoint itself, redacted.
        OpenAIError::Reqwest(e) if e.is_timeout() => CallError::Timeout,
        OpenAIError::Reqwest(e) if e.is_connect() => {
            CallError::Connect(error_chain(&e.without_url()))
        }
        OpenAIError::Reqwest(e) => CallError::Transport(error_chain(&e.without_url())),
        OpenAIError::JSONDeserialize(e, content) => {
            CallError::BadBody(format!("{e}: {}", excerpt(&content)))
        }
        other => CallError::Transport(other.to_string()),
    }
}

/// `{base}/chat/completions` as shown in messages: the path joined before
/// the query, credentials removed and query values hidden
/// ([`redact_url`]).
pub(crate) fn display_endpoint(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(mut url) => {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().extend(["chat", "completions"]);
            }
            redact(url)
        }
        Err(_) => format!("{}/chat/completions", redact_url(base_url)),
    }
}

/// A URL as it may be shown (in a result, a log line, an error message):
/// without `user:password@`, without a fragment, and with every query value
/// replaced by `***` (`?api-key=***`), because some servers take their key
/// in the query and the operator's URL must not leak it. Keys stay, so the
/// reader still sees which parameters were given. Text that is not a URL is
/// shown up to a `?` or `#`.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(url) => redact(url),
        Err(_) => {
            let end = url.find(['?', '#']).unwrap_or(url.len());
            let hidden = if end < url.len() { "?***" } else { "" };
            format!("{}{hidden}", &url[..end])
        }
    }
}

fn redact(mut url: reqwest::Url) -> String {
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    if let Some(query) = url.query().map(str::to_string) {
        let hidden: Vec<String> = query
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                // A bare token may be the secret itself.
                None => "***".to_string(),
            })
            .collect();
        url.set_query((!hidden.is_empty()).then(|| hidden.join("&")).as_deref());
    }
    url.to_string()
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

    #[test]
    fn the_query_stays_after_the_path_and_its_values_are_hidden() {
        assert_eq!(
            split_base("http://host/v1?api-key=SECRET&x=1"),
            SplitBase {
                api_base: "http://host/v1".into(),
                query: Some("api-key=SECRET&x=1".into()),
            }
        );
        assert_eq!(
            split_base("http://host/v1/").api_base,
            "http://host/v1",
            "no trailing slash"
        );
        assert_eq!(split_base("http://host/v1?").query, None);
        assert_eq!(
            display_endpoint("http://u:p@host/v1?api-key=SECRET&flag"),
            "http://host/v1/chat/completions?api-key=***&***"
        );
        assert_eq!(
            display_endpoint("http://host/v1/?key=SECRET#frag"),
            "http://host/v1/chat/completions?key=***"
        );
        assert_eq!(
            redact_url("https://host/a?sig=SECRET"),
            "https://host/a?sig=***"
        );
        assert_eq!(redact_url("not a url?key=SECRET"), "not a url?***");
        assert_eq!(redact_url("http://host/v1"), "http://host/v1");
    }
}
