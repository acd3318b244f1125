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
//! instructions; what worked is remembered for the rest of the run. Each
//! form carries the schema's bounds that servers of its kind accept
//! ([`SchemaDialect`]). Every reply is validated locally; one repair request
//! follows an unusable reply.
//!
//! The score comes from the server's `logprobs` at the verdict token when it
//! gives them (`score_source: logprobs`, see [`super::logprobs`]), else it is
//! the number the model wrote (`stated`). A server that refuses the
//! parameter is asked without it for the rest of the run, as with the
//! structured-output form.
//!
//! [`Judge::ask`] answers a fact's narrow question with one of its choices,
//! through the same requests (negotiated form, retries, deadline).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs,
};
use regex::Regex;
use serde_json::Value;
use serde_json::value::RawValue;
use shortlist_contract::{BackendInfo, DecidedBy, ScoreSource};

use shortlist_shared::retry::{RetryDecision, RetryPolicy};
use shortlist_shared::secret::Secret;

use super::logprobs::{self, TokenChoices};
use super::reply::interpret;
use super::{
    Answer, AnswerFuture, Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats,
    Question,
};
use crate::chat_http::{CallError, ChatHttp};
use crate::refusal::{self, Refusal};
use crate::setting::SettingError;
use crate::verdict::{SchemaDialect, excerpt, reply_schema_json};

/// The longest backoff between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How many alternatives per token a request asks for (`top_logprobs`):
/// enough to hold both `accept` and `reject` spellings (`acc`, `"acc`,
/// ` accept`...) and every short answer's start; OpenAI allows up to 20.
const TOP_LOGPROBS: u8 = 5;

/// The token limit of a question's answer: `{"answer": "semi-detached"}`
/// is about a dozen tokens; a model that writes more is not answering.
// Used once the facts stage asks questions (issue 15); until then only tests do.
#[cfg_attr(not(test), allow(dead_code))]
const ASK_MAX_TOKENS: u32 = 24;

/// What the choice a question's answer falls back to, always among its
/// choices.
// Used once the facts stage asks questions (issue 15); until then only tests do.
#[cfg_attr(not(test), allow(dead_code))]
const UNKNOWN: &str = "unknown";

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
    /// The server refused `logprobs`; not asked for again this run.
    logprobs_refused: AtomicBool,
    policy: RetryPolicy,
    timeout: Duration,
}

/// What a request asks the model to write.
#[derive(Debug, Clone, Copy)]
enum Expect<'q> {
    /// A verdict ([`crate::verdict`]).
    Verdict,
    /// `{"answer": <one of these>}`.
    #[cfg_attr(not(test), allow(dead_code))]
    Answer(&'q [String]),
}

/// A request body: the fields async-openai builds, plus `response_format`
/// as JSON text, so the schema's properties keep their order on the wire
/// (a `serde_json::Value` sorts object keys; see
/// [`crate::verdict::reply_schema_json`]).
#[derive(Debug, serde::Serialize)]
struct RequestBody {
    #[serde(flatten)]
    fields: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Box<RawValue>>,
}

/// What one exchange returned once negotiation and retries are done.
#[derive(Debug)]
struct Completion {
    content: String,
    /// Generation stopped at the token limit.
    truncated: bool,
    refusal: Option<String>,
    /// Per generated token, when asked for and given.
    logprobs: Option<Vec<TokenChoices>>,
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
            logprobs_refused: AtomicBool::new(false),
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

    /// Whether a request for `expect` asks for logprobs: not for a regex-mode
    /// verdict (plain text has no verdict token to read), not once the server
    /// refused them.
    fn wants_logprobs(&self, expect: Expect<'_>) -> bool {
        let useful = match expect {
            Expect::Verdict => self.positive_regex.is_none(),
            Expect::Answer(_) => true,
        };
        useful && !self.logprobs_refused.load(Ordering::Relaxed)
    }

    /// The `response_format` of a request for `expect` in `mode`, as JSON text.
    fn response_format(mode: Mode, expect: Expect<'_>) -> Option<String> {
        let (name, description, schema) = match expect {
            Expect::Verdict => (
                "verdict",
                "The verdict on one listing",
                reply_schema_json(match mode {
                    Mode::JsonSchema => SchemaDialect::Strict,
                    _ => SchemaDialect::Full,
                }),
            ),
            Expect::Answer(choices) => (
                "answer",
                "One of the allowed answers",
                answer_schema(choices),
            ),
        };
        match mode {
            Mode::JsonSchema => Some(format!(
                r#"{{"type":"json_schema","json_schema":{{"name":"{name}","description":"{description}","schema":{schema},"strict":true}}}}"#
            )),
            // llama-cpp-python and llama.cpp constrain json_object by this schema.
            Mode::JsonObject => Some(format!(r#"{{"type":"json_object","schema":{schema}}}"#)),
            Mode::Instructions => None,
        }
    }

    /// The request body for `messages` in `mode`.
    fn request_body(
        &self,
        messages: &[ChatCompletionRequestMessage],
        mode: Mode,
        expect: Expect<'_>,
        max_tokens: u32,
        with_logprobs: bool,
    ) -> Result<RequestBody, JudgeError> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| JudgeError::Rejected {
            url: self.http.endpoint.clone(),
            status: 0,
            detail: format!("cannot {what} the request: {e}"),
        };
        let mut builder = CreateChatCompletionRequestArgs::default();
        builder
            .model(self.model.clone())
            .messages(messages.to_vec())
            .temperature(self.temperature)
            .max_tokens(max_tokens);
        if let Some(seed) = self.seed {
            builder.seed(seed);
        }
        if with_logprobs {
            builder.logprobs(true).top_logprobs(TOP_LOGPROBS);
        }
        let request = builder.build().map_err(|e| invalid("build", &e))?;
        let fields = serde_json::to_value(request).map_err(|e| invalid("encode", &e))?;
        let response_format = Self::response_format(mode, expect)
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| invalid("encode", &e))?;
        Ok(RequestBody {
            fields,
            response_format,
        })
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

    fn decide(&self, mode: Mode, with_logprobs: bool, error: &CallError) -> RetryDecision {
        if (with_logprobs && is_logprobs_refusal(error)) || self.is_format_refusal(mode, error) {
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

    /// One exchange for `messages`: retries by the policy, and on a refusal
    /// of logprobs or of the structured-output form, the same request
    /// without them (remembered for the rest of the run).
    async fn complete(
        &self,
        messages: &[ChatCompletionRequestMessage],
        expect: Expect<'_>,
        max_tokens: u32,
        stats: &mut JudgeStats,
    ) -> Result<Completion, JudgeError> {
        loop {
            let mode = self.current_mode();
            let with_logprobs = self.wants_logprobs(expect);
            let body = self.request_body(messages, mode, expect, max_tokens, with_logprobs)?;
            let logic = |e: &CallError| self.decide(mode, with_logprobs, e);
            let (outcome, attempts) = self.policy.run(&logic, || self.http.call(&body)).await;
            stats.attempts += attempts;
            let response = match outcome {
                Ok(response) => response,
                Err(error) if with_logprobs && is_logprobs_refusal(&error) => {
                    tracing::warn!(
                        error = %self.to_judge_error(error),
                        "the server refused logprobs; asking without them for the rest of the run (scores are the model's stated ones)"
                    );
                    self.logprobs_refused.store(true, Ordering::Relaxed);
                    continue;
                }
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
            return Ok(Completion {
                content: message.content.unwrap_or_default(),
                truncated: choice.finish_reason.as_deref() == Some("length"),
                refusal: message.refusal.filter(|r| !r.trim().is_empty()),
                logprobs: logprobs::read(choice.logprobs.as_ref()),
            });
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
            let completion = self
                .complete(&messages, Expect::Verdict, self.max_tokens, stats)
                .await?;
            if let Some(refusal) = completion.refusal {
                return Err(JudgeError::Refused {
                    detail: excerpt(refusal.trim()),
                });
            }
            match interpret(
                &completion.content,
                completion.truncated,
                self.max_tokens,
                self.positive_regex.as_ref(),
            ) {
                Ok(decision) => return Ok(score_from_logprobs(decision, completion.logprobs)),
                Err(problem) if !repaired => {
                    repaired = true;
                    tracing::warn!(problem = ?problem, "unusable reply; sending one repair request");
                    messages.push(
                        ChatCompletionRequestAssistantMessageArgs::default()
                            .content(completion.content)
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

    /// One question, one request, no repair: an answer that is not one of
    /// the choices is `unknown` (the facts stage then says it does not
    /// know), which is what a repair would most likely end in too.
    #[cfg_attr(not(test), allow(dead_code))]
    async fn ask_inner(
        &self,
        question: &Question,
        stats: &mut JudgeStats,
    ) -> Result<Answer, JudgeError> {
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(question.system.as_str()).into(),
            ChatCompletionRequestUserMessage::from(question.user.as_str()).into(),
        ];
        let completion = self
            .complete(
                &messages,
                Expect::Answer(&question.choices),
                ASK_MAX_TOKENS,
                stats,
            )
            .await?;
        let unknown = |why: &str| {
            tracing::debug!(fact = %question.fact, reply = %excerpt(completion.content.trim()), "{why}; the answer is unknown");
            Answer {
                choice: UNKNOWN.into(),
                probability: None,
                distribution: None,
            }
        };
        if completion.refusal.is_some() {
            return Ok(unknown("the model refused to answer"));
        }
        let Some((written, key)) = read_answer(&completion.content) else {
            return Ok(unknown("the reply holds no answer"));
        };
        let Some(choice) = question
            .choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(written.trim()))
        else {
            return Ok(unknown("the answer is not one of the choices"));
        };
        let choices: Vec<&str> = question.choices.iter().map(String::as_str).collect();
        let at = completion
            .logprobs
            .as_deref()
            .and_then(|tokens| Some((tokens, logprobs::value_start(tokens, key)?)));
        let probability = at.and_then(|(tokens, (index, lead))| {
            logprobs::choice_probability(&tokens[index], lead, choice, &choices)
        });
        // Every choice's share at the same token, for the facts stage's
        // calibration; a token that begins several choices counts for each,
        // so the shares are normalised.
        let distribution = at.and_then(|(tokens, (index, lead))| {
            let shares: Vec<f64> = choices
                .iter()
                .map(|c| logprobs::choice_probability(&tokens[index], lead, c, &choices))
                .collect::<Option<_>>()?;
            let total: f64 = shares.iter().sum();
            (total > 0.0).then(|| shares.iter().map(|s| s / total).collect())
        });
        Ok(Answer {
            choice: choice.clone(),
            probability,
            distribution,
        })
    }
}

/// The schema of a question's answer: `{"answer": <one of choices>}`.
fn answer_schema(choices: &[String]) -> String {
    let choices = serde_json::to_string(choices).unwrap_or_else(|_| "[]".into());
    format!(
        r#"{{"type":"object","properties":{{"answer":{{"type":"string","enum":{choices}}}}},"required":["answer"],"additionalProperties":false}}"#
    )
}

/// The answer a reply gives: `{"answer": "..."}` (with the key its value
/// follows), or, from a server that was not constrained, a bare word
/// (`balcony`, `"balcony".`). None when there is none.
#[cfg_attr(not(test), allow(dead_code))]
fn read_answer(content: &str) -> Option<(String, Option<&'static str>)> {
    let trimmed = content.trim();
    if let (Some(start), Some(end)) = (trimmed.find('{'), trimmed.rfind('}'))
        && end > start
    {
        let value: Value = serde_json::from_str(&trimmed[start..=end]).ok()?;
        let answer = value.get("answer")?.as_str()?;
        return Some((answer.to_string(), Some("answer")));
    }
    let bare = trimmed
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '.' || c.is_whitespace())
        .to_string();
    (!bare.is_empty()).then_some((bare, None))
}

/// Whether a failed request means the server does not take `logprobs`
/// (HTTP 400/422, or llama-cpp-python's 500 for a model loaded without
/// `logits_all`, naming the parameter) rather than failed.
fn is_logprobs_refusal(error: &CallError) -> bool {
    let CallError::Status(e) = error else {
        return false;
    };
    matches!(e.status, 400 | 422 | 500) && e.body.to_ascii_lowercase().contains("logprobs")
}

/// A model's decision with its score from the logprobs at the verdict,
/// when the reply carries them there; the verdict stays as written.
fn score_from_logprobs(mut decision: Decision, tokens: Option<Vec<TokenChoices>>) -> Decision {
    if decision.decided_by != DecidedBy::Llm {
        return decision;
    }
    if let Some(p) = tokens.as_deref().and_then(logprobs::verdict_probability) {
        tracing::debug!(stated = ?decision.score, from_logprobs = p, "score from logprobs");
        decision.score = Some((p * 10_000.0).round() / 10_000.0);
        decision.score_source = Some(ScoreSource::Logprobs);
    }
    decision
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

    fn ask<'a>(&'a self, question: &'a Question) -> AnswerFuture<'a> {
        Box::pin(async move {
            let mut stats = JudgeStats::default();
            let deadline = self.policy.deadline;
            let outcome =
                match tokio::time::timeout(deadline, self.ask_inner(question, &mut stats)).await {
                    Ok(outcome) => outcome.map(Some),
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
    use serde_json::json;
    use testkit::{
        FakeOpenAi, Recorded, TokenLogprob, completion, completion_with_logprobs, error_reply,
        openai_error, tokens_at,
    };

    fn settings(server: &FakeOpenAi, structured_output: StructuredOutput) -> Settings {
        Settings {
            base_url: server.base_url(),
            api_key: None,
            model: "test-model".into(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            retry_base_delay: Duration::from_millis(10),
            deadline: Duration::from_secs(20),
            temperature: 0.0,
            max_tokens: 300,
            seed: None,
            structured_output,
            positive_regex: None,
        }
    }

    fn question() -> Question {
        Question {
            fact: "outdoor_space".into(),
            system: "You answer one question about a listing.".into(),
            user: "Which outdoor space does it have? LISTING-7".into(),
            choices: ["balcony", "terrace", "garden", "none", "unknown"]
                .map(String::from)
                .to_vec(),
        }
    }

    async fn ask(judge: &OpenAiJudge) -> (Answer, JudgeStats) {
        let question = question();
        let (outcome, stats) = judge.ask(&question).await;
        (outcome.unwrap().expect("the openai judge answers"), stats)
    }

    fn choices_of(req: &Recorded, schema: &Value) -> Value {
        assert_eq!(schema["required"], json!(["answer"]), "{}", req.text());
        assert_eq!(schema["additionalProperties"], false);
        schema["properties"]["answer"]["enum"].clone()
    }

    #[tokio::test]
    async fn ask_sends_one_constrained_question_and_weighs_the_answer() {
        let reply = r#"{"answer": "balcony"}"#;
        let mut tokens = tokens_at(reply, &["{\"", "answer", "\": \"", "bal", "cony"]);
        let at = tokens.iter().position(|t| t.token == "bal").unwrap();
        tokens[at] = TokenLogprob::weighing(
            "bal",
            &[("bal", 0.5), ("b", 0.1), ("gar", 0.2), ("the", 0.2)],
        );
        let server = FakeOpenAi::start(vec![completion_with_logprobs(&tokens)]).await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::Auto)).unwrap();
        let (answer, stats) = ask(&judge).await;
        assert_eq!(answer.choice, "balcony");
        let p = answer.probability.unwrap();
        assert!((p - 0.6 / 0.8).abs() < 1e-9, "{p}");
        // Every choice's share, for the facts stage's calibration.
        let shares = answer.distribution.unwrap();
        let expected = [0.75, 0.0, 0.25, 0.0, 0.0];
        assert!(
            shares
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{shares:?}"
        );
        assert_eq!(stats.attempts, 1);
        assert_eq!(stats.usage.as_ref().unwrap().prompt_tokens, 42);

        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        let req = &reqs[0];
        let body = req.json();
        assert_eq!(req.message("system"), question().system);
        assert_eq!(req.message("user"), question().user);
        assert_eq!(body["max_tokens"], ASK_MAX_TOKENS);
        assert_eq!(body["temperature"].as_f64(), Some(0.0));
        assert_eq!(body["logprobs"], true);
        assert_eq!(body["top_logprobs"], TOP_LOGPROBS);
        let rf = req.response_format().unwrap();
        assert_eq!(rf["type"], "json_schema");
        assert_eq!(rf["json_schema"]["strict"], true);
        assert_eq!(rf["json_schema"]["name"], "answer");
        assert_eq!(
            choices_of(req, &rf["json_schema"]["schema"]),
            json!(question().choices)
        );
    }

    #[tokio::test]
    async fn ask_negotiates_the_form_as_verdicts_do_and_remembers_it() {
        let llama_cpp_python = error_reply(
            500,
            &openai_error(
                "Input should be 'text' or 'json_object'",
                "internal_server_error",
            ),
        );
        let server = FakeOpenAi::start(vec![
            llama_cpp_python,
            completion(r#"{"answer":"Garden"}"#),
            completion(r#"{"answer":"none"}"#),
        ])
        .await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::Auto)).unwrap();
        let (answer, stats) = ask(&judge).await;
        assert_eq!(answer.choice, "garden", "matched without regard to case");
        assert_eq!(answer.probability, None, "no logprobs, no probability");
        assert_eq!(stats.attempts, 2);
        let (answer, stats) = ask(&judge).await;
        assert_eq!(answer.choice, "none");
        assert_eq!(stats.attempts, 1);
        let reqs = server.requests();
        assert_eq!(reqs.len(), 3);
        for req in &reqs[1..] {
            let rf = req.response_format().unwrap();
            assert_eq!(rf["type"], "json_object", "{}", req.text());
            assert_eq!(choices_of(req, &rf["schema"]), json!(question().choices));
        }
    }

    #[tokio::test]
    async fn an_answer_outside_the_choices_is_unknown() {
        let server = FakeOpenAi::start(vec![
            completion(r#"{"answer":"garage"}"#),
            completion("I cannot tell from this listing."),
            completion(""),
        ])
        .await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::Auto)).unwrap();
        for _ in 0..3 {
            let (answer, _) = ask(&judge).await;
            assert_eq!(
                answer,
                Answer {
                    choice: "unknown".into(),
                    probability: None,
                    distribution: None,
                }
            );
        }
    }

    #[tokio::test]
    async fn a_bare_answer_is_read_when_nothing_constrains_the_reply() {
        let server = FakeOpenAi::start(vec![completion_with_logprobs(&tokens_at(
            " Terrace.",
            &[" Ter", "race"],
        ))])
        .await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::None)).unwrap();
        let (answer, _) = ask(&judge).await;
        assert_eq!(answer.choice, "terrace");
        assert_eq!(answer.probability, Some(1.0));
        assert!(server.requests()[0].response_format().is_none());
    }

    #[tokio::test]
    async fn a_refusal_of_logprobs_is_remembered_for_the_run() {
        let server = FakeOpenAi::start(vec![error_reply(
            422,
            &json!({"detail": [{"loc": ["body", "top_logprobs"], "msg": "logprobs are not supported"}]})
                .to_string(),
        )])
        .await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::Auto)).unwrap();
        let (_, stats) = ask(&judge).await;
        assert_eq!(stats.attempts, 2);
        ask(&judge).await;
        let reqs = server.requests();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].json()["logprobs"], true);
        for req in &reqs[1..] {
            assert!(req.json().get("logprobs").is_none(), "{}", req.text());
            assert_eq!(
                req.response_format().unwrap()["type"],
                "json_schema",
                "the form is not downgraded for a logprobs refusal"
            );
        }
    }

    #[tokio::test]
    async fn ask_gives_up_as_a_judgement_does() {
        let server = FakeOpenAi::start(vec![error_reply(
            401,
            &openai_error("bad key", "invalid_request_error"),
        )])
        .await;
        let judge = OpenAiJudge::new(&settings(&server, StructuredOutput::Auto)).unwrap();
        let (outcome, stats) = judge.ask(&question()).await;
        assert!(
            matches!(outcome, Err(JudgeError::Unauthorized { .. })),
            "{outcome:?}"
        );
        assert_eq!(stats.attempts, 1);
    }

    #[test]
    fn logprobs_refusals_are_told_from_failures() {
        let status = |status, body: &str| {
            CallError::Status(crate::chat_http::HttpStatusError {
                status,
                retry_after: None,
                body: body.into(),
            })
        };
        // llama-cpp-python's server for a model loaded with logits_all=False
        // (seen live with 0.3.36).
        assert!(is_logprobs_refusal(&status(
            500,
            r#"{"error":{"message":"logprobs is not supported for models created with logits_all=False","type":"internal_server_error"}}"#
        )));
        assert!(is_logprobs_refusal(&status(
            400,
            "Invalid parameter: 'top_logprobs'"
        )));
        assert!(!is_logprobs_refusal(&status(503, "logprobs: overloaded")));
        assert!(!is_logprobs_refusal(&status(
            400,
            "'response_format' is not supported"
        )));
        assert!(!is_logprobs_refusal(&CallError::Timeout));
    }

    #[test]
    fn answers_are_read_from_json_or_bare() {
        assert_eq!(
            read_answer(r#"{"answer": "garden"}"#),
            Some(("garden".into(), Some("answer")))
        );
        assert_eq!(read_answer("\"garden\".\n"), Some(("garden".into(), None)));
        assert_eq!(read_answer(r#"{"other": 1}"#), None);
        assert_eq!(read_answer("  "), None);
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
