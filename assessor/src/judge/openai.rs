//! The `openai` judge: any OpenAI-compatible chat-completions server
//! (OpenAI, vLLM, Ollama `/v1`, llama.cpp's server, llama-cpp-python, LM
//! Studio).
//!
//! Built on async-openai through [`ChatHttp`] (our transport keeps the HTTP
//! status and `Retry-After` of every failure).
//!
//! Structured output is negotiated: `json_schema` (strict) first; a server
//! that refuses it (400/422, or llama-cpp-python's 500 "Input should be
//! 'text' or 'json_object'") gets `json_object` with the schema, then plain
//! instructions; what worked is remembered for the rest of the run. Every
//! reply is validated locally; one repair request follows an unusable reply.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs, ResponseFormat, ResponseFormatJsonSchema,
};
use regex::Regex;
use serde_json::Value;
use shortlist_contract::BackendInfo;

use shortlist_shared::retry::{RetryDecision, RetryPolicy};
use shortlist_shared::secret::Secret;

use super::reply::interpret;
use super::{Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats};
use crate::chat_http::{CallError, ChatHttp};
use crate::refusal::{self, Refusal};
use crate::setting::SettingError;
use crate::verdict::{excerpt, reply_schema};

/// The longest backoff between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The openai judge's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The server's base URL, validated, without its trailing slash.
    pub(crate) base_url: String,
    pub(crate) api_key: Option<Secret>,
    pub(crate) model: String,
    pub(crate) connect_timeout: Duration,
    /// Time limit of one request.
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_base_delay: Duration,
    /// Time limit of the whole judgement, retries included.
    pub(crate) deadline: Duration,
    pub(crate) temperature: f32,
    pub(crate) max_tokens: u32,
    pub(crate) seed: Option<i64>,
    pub(crate) structured_output: StructuredOutput,
    /// Regex mode: plain-text replies, accept iff the whole reply matches.
    pub(crate) positive_regex: Option<Regex>,
}

/// How the `openai` judge asks for a structured reply; `auto` starts with
/// the strictest and falls back when a server refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StructuredOutput {
    /// json_schema, then json_object with the schema, then instructions only.
    Auto,
    /// `response_format: {"type": "json_schema", ...}` (strict).
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": ...}`.
    JsonObject,
    /// No `response_format`; the schema is in the instructions only.
    None,
}

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

pub(crate) struct OpenAiJudge {
    http: ChatHttp,
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
    pub(crate) fn new(settings: &Settings) -> Result<Self, SettingError> {
        let http = ChatHttp::new(
            &settings.base_url,
            settings.api_key.as_ref(),
            settings.connect_timeout,
            settings.timeout,
        )
        .map_err(|message| SettingError::Invalid {
            variable: "LLM_BASE_URL",
            value: crate::chat_http::redact_url(&settings.base_url),
            message,
        })?;
        let start_mode = match (
            settings.positive_regex.is_some(),
            settings.structured_output,
        ) {
            (true, _) | (false, StructuredOutput::None) => Mode::Instructions,
            (false, StructuredOutput::Auto | StructuredOutput::JsonSchema) => Mode::JsonSchema,
            (false, StructuredOutput::JsonObject) => Mode::JsonObject,
        };
        Ok(OpenAiJudge {
            http,
            model: settings.model.clone(),
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
            url: self.http.endpoint.clone(),
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
            url: self.http.endpoint.clone(),
            status: 0,
            detail: format!("cannot encode the request: {e}"),
        })?;
        if mode == Mode::JsonObject {
            // llama-cpp-python and llama.cpp constrain json_object by this schema.
            body["response_format"]["schema"] = reply_schema();
        }
        Ok(body)
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
        error.retry_decision()
    }

    fn to_judge_error(&self, error: CallError) -> JudgeError {
        let url = self.http.endpoint.clone();
        match error {
            CallError::Status(e) => {
                if let Some(refusal) = Refusal::of(e.status) {
                    let message = refusal.message(&url, refusal::JUDGE, &excerpt(e.body.trim()));
                    return match refusal {
                        Refusal::Unauthorized { .. } => JudgeError::Unauthorized { message },
                        Refusal::NotFound => JudgeError::NotFound { message },
                    };
                }
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
            let (outcome, attempts) = self.policy.run(&logic, || self.http.call(&body)).await;
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
                    detail: format!("{} answered with no choices", self.http.endpoint),
                });
            };
            let message = choice.message.unwrap_or_default();
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

    fn timing_key(&self) -> &'static str {
        "llm"
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let mut stats = JudgeStats::default();
            let deadline = self.policy.deadline;
            let outcome =
                match tokio::time::timeout(deadline, self.judge_inner(request, &mut stats)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(JudgeError::Timeout {
                        what: format!("{} (LLM_DEADLINE)", self.http.endpoint),
                        after: deadline,
                    }),
                };
            (outcome, stats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
