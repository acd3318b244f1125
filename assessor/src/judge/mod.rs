//! The judge: the last stage, asked once the rules pass. One trait
//! ([`Judge`]), one implementation per kind (`LLM_BACKEND`: openai, llama,
//! command, fixed), each with its own settings in [`JudgeSettings`]. A judge
//! gets the profile and the prompt already framed ([`crate::prompt`]) and
//! returns a [`Decision`] or a [`JudgeError`] whose `kind` goes into the
//! result, plus the [`JudgeStats`] it accumulated either way (attempts and
//! tokens are recorded for failures too: they cost money). The result file
//! calls the judge its `backend`, as the contract always has.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use shortlist_contract::{BackendInfo, DecidedBy, ErrorKind, Profile, ScoreSource, Usage, Verdict};

use crate::exit::Exit;
use crate::prompt::{Prompt, PromptBuilder};
use crate::setting::SettingError;

pub(crate) mod cache;
pub(crate) mod command;
pub(crate) mod fixed;
#[cfg(feature = "llama")]
pub(crate) mod llama;
pub(crate) mod logprobs;
pub(crate) mod openai;
pub(crate) mod reply;

/// Which judge decides once the rules pass, with its settings: only what
/// that judge needs, validated at start-up, so a judge cannot be configured
/// half-way (a command judge always has a program).
#[derive(Debug, Clone)]
pub(crate) enum JudgeSettings {
    /// Any OpenAI-compatible chat-completions server.
    Openai(openai::Settings),
    /// A GGUF model run in-process by llama.cpp.
    #[cfg(feature = "llama")]
    Llama(llama::Settings),
    /// An external program: JSON on stdin, verdict JSON on stdout.
    Command(command::Settings),
    /// Always the same verdict: for wiring tests of a deployment.
    Fixed(Verdict),
}

/// Builds the judge the settings ask for, behind the response cache when
/// one is configured.
pub(crate) fn build(
    settings: &JudgeSettings,
    response_cache: Option<&cache::Settings>,
) -> Result<Box<dyn Judge>, SettingError> {
    let judge: Box<dyn Judge> = match settings {
        JudgeSettings::Fixed(verdict) => Box::new(fixed::FixedJudge::new(*verdict)),
        JudgeSettings::Command(settings) => Box::new(command::CommandJudge::new(settings.clone())),
        JudgeSettings::Openai(settings) => Box::new(openai::OpenAiJudge::new(settings)?),
        #[cfg(feature = "llama")]
        JudgeSettings::Llama(settings) => Box::new(llama::LlamaJudge::new(settings)?),
    };
    Ok(match response_cache {
        Some(cache) => Box::new(cache::CachedJudge::new(judge, cache)),
        None => judge,
    })
}

/// What a judge judges.
#[derive(Debug)]
pub(crate) struct JudgeRequest<'a> {
    /// Only the in-process model reads it (to rebuild the prompt).
    #[cfg_attr(not(feature = "llama"), allow(dead_code))]
    pub(crate) profile: &'a Profile,
    pub(crate) profile_value: &'a serde_json::Value,
    pub(crate) prompt: &'a Prompt,
    /// What built the prompt, for a judge that must rebuild it smaller
    /// (an in-process model with a fixed context).
    #[cfg_attr(not(feature = "llama"), allow(dead_code))]
    pub(crate) builder: &'a PromptBuilder,
    pub(crate) criteria: Option<&'a str>,
    /// Captions of the profile's photos (successful ones, in order), already
    /// inside `prompt`; kept for a judge that rebuilds it.
    pub(crate) captions: &'a [String],
}

/// A judge's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Decision {
    pub(crate) verdict: Verdict,
    pub(crate) score: Option<f64>,
    /// Where `score` came from (None when there is no score).
    #[serde(default)]
    pub(crate) score_source: Option<ScoreSource>,
    pub(crate) reasons: Vec<String>,
    pub(crate) decided_by: DecidedBy,
}

/// What a judgement cost, whatever its outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JudgeStats {
    /// Requests made (HTTP requests, command runs, generations), retries and repair included.
    pub(crate) attempts: u32,
    /// Tokens, when the judge reports them.
    pub(crate) usage: Option<Usage>,
    /// Stage timings a judge measures itself (model load, ...), added to `timings_ms`.
    pub(crate) timings: Vec<(&'static str, u64)>,
    /// The decision came from the response cache; no judge was asked.
    pub(crate) cached: bool,
    /// Time spent evaluating prompts and generating, for the speeds in `usage`.
    prompt_ms: f64,
    generation_ms: f64,
    speed_prompt_tokens: u64,
    speed_completion_tokens: u64,
}

impl JudgeStats {
    pub(crate) fn add_usage(&mut self, prompt_tokens: u64, completion_tokens: u64) {
        let usage = self.usage.get_or_insert_with(Usage::default);
        usage.prompt_tokens += prompt_tokens;
        usage.completion_tokens += completion_tokens;
    }

    /// Records prompt-evaluation and generation work (in-process backends)
    /// and keeps `usage`'s tokens-per-second figures up to date.
    #[cfg_attr(not(feature = "llama"), allow(dead_code))]
    pub(crate) fn add_speed(
        &mut self,
        prompt_tokens: u64,
        prompt_ms: f64,
        completion_tokens: u64,
        generation_ms: f64,
    ) {
        self.speed_prompt_tokens += prompt_tokens;
        self.speed_completion_tokens += completion_tokens;
        self.prompt_ms += prompt_ms;
        self.generation_ms += generation_ms;
        let per_second = |tokens: u64, ms: f64| {
            (ms > 0.0).then(|| (tokens as f64 * 1000.0 / ms * 10.0).round() / 10.0)
        };
        let usage = self.usage.get_or_insert_with(Usage::default);
        usage.prompt_tokens_per_second = per_second(self.speed_prompt_tokens, self.prompt_ms);
        usage.generation_tokens_per_second =
            per_second(self.speed_completion_tokens, self.generation_ms);
        self.timings
            .retain(|(k, _)| *k != "llm_prompt_eval" && *k != "llm_generation");
        self.timings
            .push(("llm_prompt_eval", self.prompt_ms.round() as u64));
        self.timings
            .push(("llm_generation", self.generation_ms.round() as u64));
    }
}

/// Why a judgement failed. `kind()` is the result's `error.kind`; messages
/// name the URL or command involved, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JudgeError {
    #[error("{url}: the server is unavailable: {detail}")]
    Unavailable { url: String, detail: String },
    #[error("{url}: the server refused the request with HTTP {status}: {detail}")]
    Rejected {
        url: String,
        status: u16,
        detail: String,
    },
    /// 401/403: the API key (a configuration error: exit 2).
    #[error("{message}")]
    Unauthorized { message: String },
    /// 404: the model or the base URL (a configuration error: exit 2).
    #[error("{message}")]
    NotFound { message: String },
    #[error("{url}: rate limited (HTTP 429) on every attempt: {detail}")]
    RateLimited { url: String, detail: String },
    #[error("{what}: timed out after {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("the model's reply is invalid: {detail}")]
    ReplyInvalid { detail: String },
    #[error("the model's reply was cut off at the token limit (LLM_MAX_TOKENS): {detail}")]
    ReplyTruncated { detail: String },
    #[error("the model refused to judge: {detail}")]
    Refused { detail: String },
    #[error("command {command:?} failed: {detail}")]
    CommandFailed { command: String, detail: String },
    /// Only the in-process model loads a model (and has a fixed context).
    #[error("the model cannot be used: {detail}")]
    #[cfg_attr(not(feature = "llama"), allow(dead_code))]
    ModelUnavailable { detail: String },
    #[error("the prompt does not fit the model's context: {detail}")]
    #[cfg_attr(not(feature = "llama"), allow(dead_code))]
    ContextOverflow { detail: String },
}

impl JudgeError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            JudgeError::Unavailable { .. } => ErrorKind::BackendUnavailable,
            JudgeError::Rejected { .. } => ErrorKind::BackendRejected,
            JudgeError::Unauthorized { .. } => ErrorKind::BackendUnauthorized,
            JudgeError::NotFound { .. } => ErrorKind::BackendNotFound,
            JudgeError::RateLimited { .. } => ErrorKind::RateLimited,
            JudgeError::Timeout { .. } => ErrorKind::Timeout,
            JudgeError::ReplyInvalid { .. } => ErrorKind::ReplyInvalid,
            JudgeError::ReplyTruncated { .. } => ErrorKind::ReplyTruncated,
            JudgeError::Refused { .. } => ErrorKind::Refused,
            JudgeError::CommandFailed { .. } => ErrorKind::CommandFailed,
            JudgeError::ModelUnavailable { .. } => ErrorKind::ModelUnavailable,
            JudgeError::ContextOverflow { .. } => ErrorKind::ContextOverflow,
        }
    }

    /// The exit code of an assessment this error ended: 2 when the server
    /// refused the configuration (no retry of the Job can help), else 4.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            JudgeError::Unauthorized { .. } | JudgeError::NotFound { .. } => Exit::BackendRefused,
            _ => Exit::BackendFailed,
        }
    }
}

/// One narrow question about a listing (a fact of the facts stage), to be
/// answered with exactly one of `choices`: a small model that cannot weigh a
/// whole brief can still pick "balcony" out of six words, and a constrained
/// answer cannot ramble. `choices` always ends with `"unknown"`.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    /// The fact's name, for logs and errors.
    pub(crate) fact: String,
    pub(crate) system: String,
    pub(crate) user: String,
    /// The allowed answers, as the model must write them.
    pub(crate) choices: Vec<String>,
}

/// A judge's answer to a [`Question`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// One of the question's `choices`.
    pub(crate) choice: String,
    /// The answer's probability among the choices, from the model's own
    /// token distribution (or the server's logprobs); None when the judge
    /// cannot tell.
    pub(crate) probability: Option<f64>,
    /// Every choice's probability, in the question's order, when the judge
    /// can tell: what the facts stage calibrates.
    pub(crate) distribution: Option<Vec<f64>>,
}

/// A boxed answer future; `Ok(None)`: this judge does not answer questions
/// (a command, the fixed backend), so facts come from patterns only.
pub(crate) type AnswerFuture<'a> =
    Pin<Box<dyn Future<Output = (Result<Option<Answer>, JudgeError>, JudgeStats)> + Send + 'a>>;

/// A boxed judge future (the trait is used as `dyn Judge`).
pub(crate) type JudgeFuture<'a> =
    Pin<Box<dyn Future<Output = (Result<Decision, JudgeError>, JudgeStats)> + Send + 'a>>;

/// A judge.
pub(crate) trait Judge: Send + Sync {
    /// The judge named in the result's `backend` field.
    fn info(&self) -> BackendInfo;
    /// The result's `timings_ms` key for the time this judge took.
    fn timing_key(&self) -> &'static str;
    /// Judges one profile.
    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a>;
    /// Answers one narrow question with one of its choices. By default a
    /// judge does not (`Ok(None)`).
    fn ask<'a>(&'a self, _question: &'a Question) -> AnswerFuture<'a> {
        Box::pin(async { (Ok(None), JudgeStats::default()) })
    }
}
