//! The `openai` backend: any OpenAI-compatible chat-completions server
//! (OpenAI, vLLM, Ollama `/v1`, llama.cpp's server, llama-cpp-python, LM
//! Studio).
//!
//! Built on async-openai: its config (base URL, Bearer key), its request
//! types and its request pipeline, with two deliberate seams:
//! - the transport is our own tower service over our own reqwest client
//!   (connect and request timeouts; async-openai's default client has none),
//!   which turns every non-2xx answer into an [`HttpStatusError`] carrying the
//!   status, `Retry-After` and body — async-openai's own error mapping drops
//!   the status of non-JSON 4xx bodies and all headers, and both decide
//!   whether to retry or fall back;
//! - requests and replies go through its "bring your own types" path, because
//!   the `json_object` + `schema` form that llama-cpp-python needs has no
//!   typed equivalent, and replies from small servers omit fields its typed
//!   response requires.
//!
//! Structured output is negotiated: `json_schema` (strict) first; a server
//! that refuses it (400/422, or llama-cpp-python's 500 "Input should be
//! 'text' or 'json_object'") gets `json_object` with the schema, then plain
//! instructions; what worked is remembered for the rest of the run. Every
//! reply is validated locally; one repair request follows an unusable reply.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs, ResponseFormat, ResponseFormatJsonSchema,
};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use shortlist_shared::BackendInfo;

use super::reply::interpret;
use super::{Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats};
use crate::config::{ConfigError, Settings, StructuredOutput};
use crate::verdict::{excerpt, reply_schema};
use shortlist_shared::error::error_chain;
use shortlist_shared::retry::{RetryDecision, RetryPolicy, parse_retry_after};

/// The longest backoff between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How a request asks for structure, from strictest to loosest. Stored as a
/// `u8` in an atomic so a downgrade is remembered across requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Mode {
    JsonSchema = 0,
    JsonObject = 1,
    Instructions = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::JsonSchema,
            1 => Mode::JsonObject,
            _ => Mode::Instructions,
        }
    }

    fn next(self) -> Option<Mode> {
        match self {
            Mode::JsonSchema => Some(Mode::JsonObject),
            Mode::JsonObject => Some(Mode::Instructions),
            Mode::Instructions => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::JsonSchema => "json_schema",
            Mode::JsonObject => "json_object",
            Mode::Instructions => "instructions only",
        }
    }
}

/// A non-2xx answer, as our transport reports it through async-openai.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub struct HttpStatusError {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// One failed request, classified.
#[derive(Debug)]
enum CallError {
    Status(HttpStatusError),
    Timeout,
    Connect(String),
    Transport(String),
    /// A 2xx whose body is not a chat completion.
    BadBody(String),
}

/// The parts of a chat completion we read; lenient, because servers differ.
#[derive(Debug, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

pub struct OpenAiJudge {
    client: Client<OpenAIConfig>,
    /// `{base}/chat/completions` without credentials, for messages.
    endpoint: String,
    model: String,
    temperature: f32,
    max_tokens: u32,
    seed: Option<i64>,
    positive_regex: Option<Regex>,
    /// The structured-output mode that currently works ([`Mode`] as u8).
    mode: AtomicU8,
    /// Whether a refused mode may be downgraded (`LLM_STRUCTURED_OUTPUT=auto`).
    negotiate: bool,
    policy: RetryPolicy,
    timeout: Duration,
}

impl OpenAiJudge {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("shortlist-assessor/", env!("CARGO_PKG_VERSION")));
        if settings.base_url.starts_with("http://") {
            // Plain HTTP (a server in the pod or on the node): skip loading the
            // system's CA certificates, ~1-2 ms of start-up spent for nothing.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|e| ConfigError::Invalid {
            variable: "LLM_BASE_URL",
            value: settings.base_url.clone(),
            message: format!("cannot build an HTTP client: {e}"),
        })?;
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.clone());
        // Always set (possibly empty) so async-openai never reads a key from
        // its own environment defaults behind our back.
        config = config.with_api_key(
            settings
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string())
                .unwrap_or_default(),
        );
        let transport_client = http.clone();
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = transport_client.clone();
            async move { send(&http, factory).await }
        });
        let client = Client::build(http, config).with_http_service(transport);

        let start_mode = match (
            settings.positive_regex.is_some(),
            settings.structured_output,
        ) {
            (true, _) | (false, StructuredOutput::None) => Mode::Instructions,
            (false, StructuredOutput::Auto | StructuredOutput::JsonSchema) => Mode::JsonSchema,
            (false, StructuredOutput::JsonObject) => Mode::JsonObject,
        };
        Ok(OpenAiJudge {
            client,
            endpoint: display_endpoint(&settings.base_url),
            model: settings.model.clone().unwrap_or_default(),
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
            seed: settings.seed,
            positive_regex: settings.positive_regex.clone(),
            mode: AtomicU8::new(start_mode as u8),
            negotiate: settings.structured_output == StructuredOutput::Auto
                && settings.positive_regex.is_none(),
            policy: RetryPolicy {
                max_attempts: settings.max_attempts,
                base_delay: settings.retry_base_delay,
                max_delay: MAX_RETRY_DELAY,
                deadline: settings.deadline,
            },
            timeout: settings.timeout,
        })
    }

    fn current_mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// The request body for `messages` in `mode`.
    fn request_body(
        &self,
        messages: &[ChatCompletionRequestMessage],
        mode: Mode,
    ) -> Result<Value, JudgeError> {
        let invalid = |e: OpenAIError| JudgeError::Rejected {
            url: self.endpoint.clone(),
            status: 0,
            detail: format!("cannot build the request: {e}"),
        };
        let mut builder = CreateChatCompletionRequestArgs::default();
        builder
            .model(self.model.clone())
            .messages(messages.to_vec())
            .temperature(self.temperature)
            .max_tokens(self.max_tokens);
        if let Some(seed) = self.seed {
            builder.seed(seed);
        }
        match mode {
            Mode::JsonSchema => {
                builder.response_format(ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        description: Some("The verdict on one listing".into()),
                        name: "verdict".into(),
                        schema: reply_schema(),
                        strict: Some(true),
                    },
                });
            }
            Mode::JsonObject => {
                builder.response_format(ResponseFormat::JsonObject);
            }
            Mode::Instructions => {}
        }
        let request = builder.build().map_err(invalid)?;
        let mut body = serde_json::to_value(request).map_err(|e| JudgeError::Rejected {
            url: self.endpoint.clone(),
            status: 0,
            detail: format!("cannot encode the request: {e}"),
        })?;
        if mode == Mode::JsonObject {
            // llama-cpp-python and llama.cpp constrain json_object by this schema.
            body["response_format"]["schema"] = reply_schema();
        }
        Ok(body)
    }

    /// One HTTP request through async-openai, classified.
    async fn call(&self, body: &Value) -> Result<ChatResponse, CallError> {
        match self
            .client
            .chat()
            .create_byot::<&Value, ChatResponse>(body)
            .await
        {
            Ok(response) => Ok(response),
            Err(error) => Err(classify(error)),
        }
    }

    /// Whether a failed request in `mode` means the server refused the
    /// structured-output form rather than failed.
    fn is_format_refusal(&self, mode: Mode, error: &CallError) -> bool {
        if !self.negotiate || mode == Mode::Instructions {
            return false;
        }
        let CallError::Status(e) = error else {
            return false;
        };
        match e.status {
            400 | 422 => true,
            500 => {
                let body = e.body.to_ascii_lowercase();
                [
                    "response_format",
                    "json_schema",
                    "json_object",
                    "input should be",
                ]
                .iter()
                .any(|needle| body.contains(needle))
            }
            _ => false,
        }
    }

    fn decide(&self, mode: Mode, error: &CallError) -> RetryDecision {
        if self.is_format_refusal(mode, error) {
            return RetryDecision::Stop;
        }
        match error {
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

    fn to_judge_error(&self, error: CallError) -> JudgeError {
        let url = self.endpoint.clone();
        match error {
            CallError::Status(e) => {
                let detail = format!("HTTP {}: {}", e.status, excerpt(e.body.trim()));
                match e.status {
                    429 => JudgeError::RateLimited { url, detail },
                    408 | 409 | 500..=599 => JudgeError::Unavailable { url, detail },
                    status => JudgeError::Rejected {
                        url,
                        status,
                        detail: excerpt(e.body.trim()),
                    },
                }
            }
            CallError::Timeout => JudgeError::Timeout {
                what: format!("{url} (LLM_TIMEOUT)"),
                after: self.timeout,
            },
            CallError::Connect(detail) | CallError::Transport(detail) => {
                JudgeError::Unavailable { url, detail }
            }
            CallError::BadBody(detail) => JudgeError::ReplyInvalid {
                detail: format!(
                    "{url} answered 2xx with a body that is not a chat completion: {detail}"
                ),
            },
        }
    }

    async fn judge_inner(
        &self,
        request: &JudgeRequest<'_>,
        stats: &mut JudgeStats,
    ) -> Result<Decision, JudgeError> {
        let mut messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(request.prompt.system.as_str()).into(),
            ChatCompletionRequestUserMessage::from(request.prompt.user.as_str()).into(),
        ];
        let mut repaired = false;
        loop {
            let mode = self.current_mode();
            let body = self.request_body(&messages, mode)?;
            let logic = |e: &CallError| self.decide(mode, e);
            let (outcome, attempts) = self.policy.run(&logic, || self.call(&body)).await;
            stats.attempts += attempts;
            let response = match outcome {
                Ok(response) => response,
                Err(error) if self.is_format_refusal(mode, &error) => {
                    let next = mode.next().expect("instructions mode is never refused");
                    tracing::warn!(
                        refused = mode.name(),
                        next = next.name(),
                        error = %self.to_judge_error(error),
                        "the server refused this structured-output form; falling back for the rest of the run"
                    );
                    self.mode.store(next as u8, Ordering::Relaxed);
                    continue;
                }
                Err(error) => return Err(self.to_judge_error(error)),
            };
            if let Some(usage) = &response.usage {
                stats.add_usage(usage.prompt_tokens, usage.completion_tokens);
            }
            let Some(choice) = response.choices.into_iter().next() else {
                return Err(JudgeError::ReplyInvalid {
                    detail: format!("{} answered with no choices", self.endpoint),
                });
            };
            let message = choice.message.unwrap_or(WireMessage {
                content: None,
                refusal: None,
            });
            if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
                return Err(JudgeError::Refused {
                    detail: excerpt(refusal.trim()),
                });
            }
            let content = message.content.unwrap_or_default();
            let truncated = choice.finish_reason.as_deref() == Some("length");
            match interpret(
                &content,
                truncated,
                self.max_tokens,
                self.positive_regex.as_ref(),
            ) {
                Ok(decision) => return Ok(decision),
                Err(problem) if !repaired => {
                    repaired = true;
                    tracing::warn!(problem = ?problem, "unusable reply; sending one repair request");
                    messages.push(
                        ChatCompletionRequestAssistantMessageArgs::default()
                            .content(content)
                            .build()
                            .map_err(|e| JudgeError::ReplyInvalid {
                                detail: e.to_string(),
                            })?
                            .into(),
                    );
                    messages.push(
                        ChatCompletionRequestUserMessage::from(problem.repair_message()).into(),
                    );
                }
                Err(problem) => return Err(problem.into_error()),
            }
        }
    }
}

impl Judge for OpenAiJudge {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "openai".into(),
            model: Some(self.model.clone()),
        }
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let mut stats = JudgeStats::default();
            let deadline = self.policy.deadline;
            let outcome =
                match tokio::time::timeout(deadline, self.judge_inner(request, &mut stats)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(JudgeError::Timeout {
                        what: format!("{} (LLM_DEADLINE)", self.endpoint),
                        after: deadline,
                    }),
                };
            (outcome, stats)
        })
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
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
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
        OpenAIError::Reqwest(e) if e.is_decode() || e.is_body() => {
            CallError::Transport(error_chain(&e))
        }
        OpenAIError::Reqwest(e) => CallError::Transport(error_chain(&e)),
        OpenAIError::JSONDeserialize(e, content) => {
            CallError::BadBody(format!("{e}: {}", excerpt(&content)))
        }
        other => CallError::Transport(other.to_string()),
    }
}

/// `{base}/chat/completions` with any userinfo removed.
fn display_endpoint(base_url: &str) -> String {
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

    #[test]
    fn modes_degrade_in_order() {
        assert_eq!(Mode::JsonSchema.next(), Some(Mode::JsonObject));
        assert_eq!(Mode::JsonObject.next(), Some(Mode::Instructions));
        assert_eq!(Mode::Instructions.next(), None);
        for m in [Mode::JsonSchema, Mode::JsonObject, Mode::Instructions] {
            assert_eq!(Mode::from_u8(m as u8), m);
        }
    }
}
