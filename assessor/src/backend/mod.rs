//! The judge stage: one trait, one implementation per backend. A backend gets
//! the profile and the prompt already framed ([`crate::prompt`]) and returns
//! a [`Decision`] or a [`JudgeError`] whose `kind` goes into the result, plus
//! the [`JudgeStats`] it accumulated either way (attempts and tokens are
//! recorded for failures too: they cost money).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use shortlist_shared::{BackendInfo, DecidedBy, Profile, Usage, Verdict};

use crate::config::{BackendKind, Settings};
use crate::prompt::{Prompt, PromptBuilder};

pub mod cache;
pub mod chat_http;
pub mod command;
pub mod fixed;
#[cfg(feature = "llama")]
pub mod llama;
pub mod openai;
pub mod reply;

/// What a backend judges.
#[derive(Debug)]
pub struct JudgeRequest<'a> {
    pub profile: &'a Profile,
    pub profile_value: &'a serde_json::Value,
    pub prompt: &'a Prompt,
    /// What built the prompt, for a backend that must rebuild it smaller
    /// (an in-process model with a fixed context).
    pub builder: &'a PromptBuilder,
    pub criteria: Option<&'a str>,
    /// Captions of the profile's photos (successful ones, in order), already
    /// inside `prompt`; kept for a backend that rebuilds it.
    pub captions: &'a [String],
}

/// A backend's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub score: Option<f64>,
    pub reasons: Vec<String>,
    pub decided_by: DecidedBy,
}

/// What a judgement cost, whatever its outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeStats {
    /// Requests made (HTTP requests, command runs, generations), retries and repair included.
    pub attempts: u32,
    /// Tokens, when the backend reports them.
    pub usage: Option<Usage>,
    /// Stage timings a backend measures itself (model load, ...), added to `timings_ms`.
    pub timings: Vec<(&'static str, u64)>,
    /// The decision came from the response cache; no backend was asked.
    pub cached: bool,
    /// Time spent evaluating prompts and generating, for the speeds in `usage`.
    prompt_ms: f64,
    generation_ms: f64,
    speed_prompt_tokens: u64,
    speed_completion_tokens: u64,
}

impl JudgeStats {
    pub fn add_usage(&mut self, prompt_tokens: u64, completion_tokens: u64) {
        let usage = self.usage.get_or_insert_with(Usage::default);
        usage.prompt_tokens += prompt_tokens;
        usage.completion_tokens += completion_tokens;
    }

    /// Records prompt-evaluation and generation work (in-process backends)
    /// and keeps `usage`'s tokens-per-second figures up to date.
    pub fn add_speed(
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
pub enum JudgeError {
    #[error("{url}: the server is unavailable: {detail}")]
    Unavailable { url: String, detail: String },
    #[error("{url}: the server refused the request with HTTP {status}: {detail}")]
    Rejected {
        url: String,
        status: u16,
        detail: String,
    },
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
    #[error("the model cannot be used: {detail}")]
    ModelUnavailable { detail: String },
    #[error("the prompt does not fit the model's context: {detail}")]
    ContextOverflow { detail: String },
}

impl JudgeError {
    pub fn kind(&self) -> &'static str {
        match self {
            JudgeError::Unavailable { .. } => "backend_unavailable",
            JudgeError::Rejected { .. } => "backend_rejected",
            JudgeError::RateLimited { .. } => "rate_limited",
            JudgeError::Timeout { .. } => "timeout",
            JudgeError::ReplyInvalid { .. } => "reply_invalid",
            JudgeError::ReplyTruncated { .. } => "reply_truncated",
            JudgeError::Refused { .. } => "refused",
            JudgeError::CommandFailed { .. } => "command_failed",
            JudgeError::ModelUnavailable { .. } => "model_unavailable",
            JudgeError::ContextOverflow { .. } => "context_overflow",
        }
    }
}

/// A boxed judge future (the trait is used as `dyn Judge`).
pub type JudgeFuture<'a> =
    Pin<Box<dyn Future<Output = (Result<Decision, JudgeError>, JudgeStats)> + Send + 'a>>;

/// A judge backend.
pub trait Judge: Send + Sync {
    /// The backend named in the result.
    fn info(&self) -> BackendInfo;
    /// Judges one profile.
    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a>;
}

/// Builds the backend the settings ask for.
pub fn from_settings(settings: &Settings) -> Result<Box<dyn Judge>, crate::config::ConfigError> {
    Ok(match settings.backend {
        BackendKind::Fixed => Box::new(fixed::FixedJudge::new(settings.fixed_verdict)),
        BackendKind::Command => Box::new(command::CommandJudge::from_settings(settings)),
        BackendKind::Openai => Box::new(openai::OpenAiJudge::from_settings(settings)?),
        #[cfg(feature = "llama")]
        BackendKind::Llama => Box::new(llama::LlamaJudge::from_settings(settings)?),
    })
}

/// The backend, behind the response cache when `CACHE_DIR` is set and
/// `LLM_RESPONSE_CACHE` is on (the fixed backend is never cached: it costs
/// nothing).
pub fn with_cache(settings: &Settings, judge: Box<dyn Judge>) -> Box<dyn Judge> {
    match (
        &settings.cache_dir,
        settings.response_cache,
        settings.backend,
    ) {
        (Some(dir), true, kind) if kind != BackendKind::Fixed => Box::new(cache::CachedJudge::new(
            judge,
            dir,
            cache_fingerprint(settings),
        )),
        _ => judge,
    }
}

/// Every setting that changes a reply for the same messages.
fn cache_fingerprint(settings: &Settings) -> String {
    let model_file = settings
        .model_path
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    serde_json::json!({
        "backend": settings.backend.as_str(),
        "model": settings.backend_model(),
        "model_file_bytes": model_file,
        "base_url": settings.base_url,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "structured_output": format!("{:?}", settings.structured_output),
        "positive_regex": settings.positive_regex.as_ref().map(|r| r.as_str().to_string()),
        "command": settings.command,
        "reply_schema": crate::verdict::reply_schema(),
    })
    .to_string()
}
