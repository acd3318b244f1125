//! The `llama` judge: a GGUF model run in-process through llama.cpp
//! (`llama-cpp-2`), so a pod needs no LLM server, as the original Shortlist
//! assessor loaded its model in-process.
//!
//! - The model's own chat template (from the GGUF metadata) formats the same
//!   spotlighted system and user messages the `openai` backend sends.
//! - Sampling is constrained by a grammar generated from the verdict JSON
//!   Schema, so every reply parses; it is validated locally anyway, and an
//!   unusable one gets one repair turn, as with a server.
//! - Temperature 0 (the default) samples greedily: the same input gives the
//!   same verdict.
//! - The model is checked at start-up (exists, is GGUF, fits in memory) but
//!   loaded only when a profile reaches the judge: a profile the rules reject
//!   costs no model load.
//! - A listing longer than the context is cut to fit, with a note in the
//!   result's `reasons`, never a crash.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use regex::Regex;
use shortlist_contract::{BackendInfo, ScoreSource};

use super::reply::{ReplyProblem, interpret};
use super::{
    Answer, AnswerFuture, Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats,
    Question,
};
use crate::prompt::Prompt;
use crate::setting::SettingError;
use crate::verdict::{
    REASON_MAX_CHARS, REASONS_MAX_ITEMS, REASONS_MIN_ITEMS, reply_schema, score_steps,
};
use engine::{Engine, EngineSettings, Request};

mod engine;
mod model_file;
mod sampling;
mod threads;

pub(crate) use model_file::{ModelFile, locate_model};

/// The llama judge's settings; the model file was found and checked at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) model: ModelFile,
    /// CPU threads for prompt evaluation and generation (LLM_THREADS); by
    /// default as many as the process may use and the machine leaves free
    /// (see [`threads`]).
    pub(crate) threads: Option<usize>,
    /// Most tokens of one prompt and its reply (LLM_CONTEXT_SIZE).
    pub(crate) context_size: u32,
    /// In a batch, ASSESSOR_JOBS: the replies decoded together, beside the
    /// shared prompt prefix. None for one profile.
    pub(crate) parallel: Option<usize>,
    pub(crate) max_tokens: u32,
    pub(crate) temperature: f32,
    pub(crate) seed: Option<i64>,
    /// Regex mode: plain-text replies, accept iff the whole reply matches.
    pub(crate) positive_regex: Option<Regex>,
}

/// The process-wide llama.cpp backend (it may be initialised only once).
fn backend() -> Result<&'static LlamaBackend, JudgeError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| JudgeError::ModelUnavailable {
            detail: format!("cannot initialise llama.cpp: {e}"),
        })
}

pub(crate) struct LlamaJudge {
    file: ModelFile,
    model_name: String,
    engine_settings: EngineSettings,
    positive_regex: Option<Regex>,
    /// Loaded on first use, with the engine that decodes every reply.
    loaded: Mutex<Option<Loaded>>,
}

/// The model and its engine, once a profile reached the judge.
#[derive(Clone)]
struct Loaded {
    model: Arc<LlamaModel>,
    engine: Arc<Engine>,
}

impl LlamaJudge {
    pub(crate) fn new(settings: &Settings) -> Result<Self, SettingError> {
        let file = settings.model.clone();
        let grammar = match settings.positive_regex {
            Some(_) => None,
            None => Some(verdict_grammar().map_err(|message| SettingError::Invalid {
                variable: "LLM_BACKEND",
                value: "llama".into(),
                message,
            })?),
        };
        let model_name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(LlamaJudge {
            file,
            model_name,
            engine_settings: EngineSettings {
                threads: settings.threads.unwrap_or(0) as i32,
                slots: settings.parallel.unwrap_or(1).max(1),
                batch: settings.parallel.is_some(),
                per_reply_cap: settings.context_size,
                max_tokens: settings.max_tokens,
                temperature: settings.temperature,
                seed: settings.seed.unwrap_or(42) as u32,
                grammar,
            },
            positive_regex: settings.positive_regex.clone(),
            loaded: Mutex::new(None),
        })
    }

    /// Loads the model and starts its engine once; returns them and the
    /// load time in ms (0 when already loaded). Concurrent first callers
    /// wait for one load.
    fn load(&self) -> Result<(Loaded, u64), JudgeError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = slot.as_ref() {
            return Ok((loaded.clone(), 0));
        }
        let started = Instant::now();
        let probe = (self.engine_settings.threads == 0).then(threads::CpuProbe::start);
        let backend = backend()?;
        let model =
            LlamaModel::load_from_file(backend, &self.file.path, &LlamaModelParams::default())
                .map_err(|e| JudgeError::ModelUnavailable {
                    detail: format!("{}: cannot load the model: {e}", self.file.path.display()),
                })?;
        let model = Arc::new(model);
        let mut engine_settings = self.engine_settings.clone();
        if let Some(probe) = probe {
            engine_settings.threads = probe.threads(threads::default_threads()) as i32;
        }
        let engine = Arc::new(Engine::start(model.clone(), engine_settings)?);
        let loaded = Loaded { model, engine };
        *slot = Some(loaded.clone());
        Ok((loaded, started.elapsed().as_millis() as u64))
    }

    /// The whole judgement: fit the prompt, generate, one repair turn.
    async fn judge_with(
        &self,
        request: &JudgeRequest<'_>,
        stats: &mut JudgeStats,
    ) -> Result<Decision, JudgeError> {
        let (loaded, load_ms) = self.load()?;
        stats.timings.push(("llm_load", load_ms));
        let model = &loaded.model;
        let template = self.chat_template(model)?;
        let cap = self.engine_settings.per_reply_cap;
        let max_tokens = self.engine_settings.max_tokens;

        // Fit the prompt into the context, leaving room for the reply: cut
        // the listing text (never the instructions) until it fits.
        let mut prompt: Prompt = request.prompt.clone();
        let mut budget = request.builder.max_text_chars;
        let mut messages = vec![
            ("system", prompt.system.clone()),
            ("user", prompt.user.clone()),
        ];
        let mut tokens = tokenize(model, &template, &messages)?;
        let room = cap.saturating_sub(max_tokens) as usize;
        let mut truncation_note = None;
        while tokens.len() > room {
            let chars = request.profile.text.chars().count().min(budget);
            if chars <= 100 {
                return Err(JudgeError::ContextOverflow {
                    detail: format!(
                        "the instructions alone take {} tokens, more than LLM_CONTEXT_SIZE={cap} minus LLM_MAX_TOKENS={max_tokens}",
                        tokens.len()
                    ),
                });
            }
            // Shrink in proportion to the overflow, with a margin.
            budget = ((chars as f64) * (room as f64 / tokens.len() as f64) * 0.9) as usize;
            let mut builder = request.builder.clone();
            builder.max_text_chars = budget.max(100);
            prompt = builder.build_with_nonce(request.profile, request.captions, &prompt.nonce);
            messages = vec![
                ("system", prompt.system.clone()),
                ("user", prompt.user.clone()),
            ];
            tokens = tokenize(model, &template, &messages)?;
            truncation_note = Some(format!(
                "listing text cut to {} characters to fit the model's context (LLM_CONTEXT_SIZE={cap})",
                budget.max(100),
            ));
        }

        let mut repaired = false;
        loop {
            if tokens.len() + max_tokens as usize > cap as usize {
                return Err(JudgeError::ContextOverflow {
                    detail: format!(
                        "the prompt takes {} tokens; with LLM_MAX_TOKENS={max_tokens} that exceeds LLM_CONTEXT_SIZE={cap}",
                        tokens.len(),
                    ),
                });
            }
            stats.attempts += 1;
            let generated = loaded.engine.generate(tokens, Request::Verdict).await?;
            stats.add_usage(generated.prompt_tokens, generated.completion_tokens);
            stats.add_speed(
                generated.prompt_tokens - generated.reused_tokens,
                generated.prompt_eval_ms,
                generated.completion_tokens,
                generated.generation_ms,
            );
            match interpret(
                &generated.text,
                generated.truncated,
                max_tokens,
                self.positive_regex.as_ref(),
            ) {
                Ok(mut decision) => {
                    decision.reasons.extend(truncation_note);
                    if let (Some(p), Some(_)) = (generated.accept_probability, decision.score) {
                        // The model's own odds, not a number it wrote.
                        decision.score = Some((p * 1000.0).round() / 1000.0);
                        decision.score_source = Some(ScoreSource::TokenProbability);
                    }
                    return Ok(decision);
                }
                Err(problem) if !repaired && !matches!(problem, ReplyProblem::Truncated(_)) => {
                    repaired = true;
                    tracing::warn!(problem = ?problem, "unusable reply; one repair turn");
                    messages.push(("assistant", generated.text));
                    messages.push(("user", problem.repair_message()));
                    tokens = tokenize(model, &template, &messages)?;
                }
                Err(problem) => return Err(problem.into_error()),
            }
        }
    }
}

impl LlamaJudge {
    /// The model's own chat template (from its GGUF metadata).
    fn chat_template(&self, model: &LlamaModel) -> Result<LlamaChatTemplate, JudgeError> {
        model
            .chat_template(None)
            .map_err(|e| JudgeError::ModelUnavailable {
                detail: format!(
                    "{}: the model has no usable chat template: {e}",
                    self.file.path.display()
                ),
            })
    }

    /// One question, answered under a grammar of its choices.
    async fn ask_with(
        &self,
        question: &Question,
        stats: &mut JudgeStats,
    ) -> Result<Option<Answer>, JudgeError> {
        if self.positive_regex.is_some() {
            // Regex mode judges plain text; it asks no questions.
            return Ok(None);
        }
        let (loaded, load_ms) = self.load()?;
        if load_ms > 0 {
            stats.timings.push(("llm_load", load_ms));
        }
        let template = self.chat_template(&loaded.model)?;
        let distribution = self
            .choice_distribution(&loaded, &template, question, stats)
            .await?;
        let best = distribution
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((index, probability)) = best.filter(|(_, p)| *p > 0.0) else {
            return Ok(None);
        };
        tracing::debug!(fact = %question.fact, ?distribution, "question answered");
        Ok(Some(Answer {
            choice: question.choices[index].clone(),
            probability: Some(probability),
            distribution: Some(distribution),
        }))
    }

    /// Each choice's probability as the first token of the answer (one
    /// decode step after the prompt).
    async fn choice_distribution(
        &self,
        loaded: &Loaded,
        template: &LlamaChatTemplate,
        question: &Question,
        stats: &mut JudgeStats,
    ) -> Result<Vec<f64>, JudgeError> {
        let messages = vec![
            ("system", question.system.clone()),
            ("user", question.user.clone()),
        ];
        let tokens = tokenize(&loaded.model, template, &messages)?;
        let cap = self.engine_settings.per_reply_cap as usize;
        if tokens.len() + ANSWER_TOKENS as usize > cap {
            return Err(JudgeError::ContextOverflow {
                detail: format!(
                    "the question about {:?} takes {} tokens, more than LLM_CONTEXT_SIZE={cap} allows",
                    question.fact,
                    tokens.len()
                ),
            });
        }
        stats.attempts += 1;
        let request = Request::Question {
            grammar: choices_grammar(&question.choices).into(),
            max_tokens: ANSWER_TOKENS,
            choices: question.choices.clone().into(),
        };
        let generated = loaded.engine.generate(tokens, request).await?;
        stats.add_usage(generated.prompt_tokens, generated.completion_tokens);
        stats.add_speed(
            generated.prompt_tokens - generated.reused_tokens,
            generated.prompt_eval_ms,
            generated.completion_tokens,
            generated.generation_ms,
        );
        Ok(generated
            .choice_probabilities
            .unwrap_or_else(|| vec![0.0; question.choices.len()]))
    }
}

/// The tokens a question's answer is generated for: the choice is read off
/// the first token's distribution, so one is enough.
const ANSWER_TOKENS: u32 = 1;

/// A GBNF grammar whose only sentences are the choices.
fn choices_grammar(choices: &[String]) -> String {
    let alternatives: Vec<String> = choices
        .iter()
        .map(|c| format!("\"{}\"", c.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("root ::= {}\n", alternatives.join(" | "))
}

/// The chat, formatted by the model's own template and tokenized as the
/// model reads it.
fn tokenize(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[(&str, String)],
) -> Result<Vec<LlamaToken>, JudgeError> {
    let chat = messages
        .iter()
        .map(|(role, content)| {
            LlamaChatMessage::new(role.to_string(), content.clone()).map_err(|e| {
                JudgeError::ReplyInvalid {
                    detail: format!("cannot pass a message to llama.cpp: {e}"),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| JudgeError::ModelUnavailable {
            detail: format!("cannot apply the model's chat template: {e}"),
        })?;
    let vocab = model.vocab();
    Ok(vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true))
}

/// The GBNF grammar of a verdict, from its JSON Schema, tightened for a
/// local model:
/// - properties in the order the prompt asks for (verdict, score, reasons):
///   llama.cpp keeps the schema's key order, and serde_json would sort it;
/// - the score as one of 0, 0.05, ..., 1: llama.cpp's converter bounds only
///   integers, and small models otherwise write `"score": 2`;
/// - at most two reasons of 80 characters, so the reply fits the token limit.
fn verdict_grammar() -> Result<String, String> {
    // A reason is words: it starts with a letter and holds letters, digits,
    // spaces and punctuation, up to REASON_MAX_CHARS. A small model left to
    // itself fills a free string with "1.1.1.1" or a timestamp.
    let rest = REASON_MAX_CHARS - 1;
    let reason_pattern = format!("^[A-Za-z][A-Za-z0-9 ,.;:'£%()/-]{{9,{rest}}}$");
    let reason_pattern = serde_json::to_string(&reason_pattern).expect("a string serialises");
    let reason_pattern = reason_pattern.trim_matches('"');
    let scores = score_steps();
    let verdict = reply_schema()["properties"]["verdict"].to_string();
    let schema = format!(
        r#"{{"type":"object","properties":{{"verdict":{verdict},"score":{{"enum":{scores}}},"reasons":{{"type":"array","items":{{"type":"string","pattern":"{reason_pattern}"}},"minItems":{REASONS_MIN_ITEMS},"maxItems":{REASONS_MAX_ITEMS}}}}},"required":["verdict","score","reasons"],"additionalProperties":false}}"#,
    );
    llama_cpp_2::json_schema_to_grammar(&schema)
        .map_err(|e| format!("cannot turn the verdict schema into a grammar: {e}"))
}

impl Judge for LlamaJudge {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "llama".into(),
            model: Some(self.model_name.clone()),
        }
    }

    fn timing_key(&self) -> &'static str {
        "llm"
    }

    fn judge<'a>(&'a self, request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        Box::pin(async move {
            let mut stats = JudgeStats::default();
            // Loading the model (once) and tokenizing block this thread
            // briefly; the decoding runs on the engine's thread.
            let outcome = self.judge_with(request, &mut stats).await;
            (outcome, stats)
        })
    }

    fn ask<'a>(&'a self, question: &'a Question) -> AnswerFuture<'a> {
        Box::pin(async move {
            let mut stats = JudgeStats::default();
            let outcome = self.ask_with(question, &mut stats).await;
            (outcome, stats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_orders_keys_as_the_prompt_and_bounds_the_score() {
        let grammar = verdict_grammar().unwrap();
        let root = grammar.lines().find(|l| l.starts_with("root ::=")).unwrap();
        let (v, s, r) = (
            root.find("verdict").unwrap(),
            root.find("score").unwrap(),
            root.find("reasons").unwrap(),
        );
        assert!(v < s && s < r, "{root}");
        assert!(grammar.contains("0.95"), "{grammar}");
        assert!(
            !grammar.contains("integral-part"),
            "no free-form numbers:\n{grammar}"
        );
        // A reason starts with a letter (no "1.1.1.1" or timestamps).
        assert!(grammar.lines().any(|l| l.contains("[A-Za-z]")), "{grammar}");
    }
}
