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

use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use regex::Regex;
use serde_json::json;
use shortlist_contract::BackendInfo;

use super::reply::{ReplyProblem, interpret};
use super::{Decision, Judge, JudgeError, JudgeFuture, JudgeRequest, JudgeStats};
use crate::prompt::Prompt;
use crate::setting::SettingError;
use crate::verdict::reply_schema;

/// The demo model's file name, looked up in `CACHE_DIR` when no model is named.
pub(crate) const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Memory a context and its buffers need beyond the weights, for the
/// start-up "does it fit" check (a 2k context of a small model is far less;
/// this errs on the side of refusing early rather than being OOM-killed late).
const CONTEXT_OVERHEAD_BYTES: u64 = 64 * 1024 * 1024;

/// The llama judge's settings; the model file was found and checked at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) model: ModelFile,
    /// CPU threads for prompt evaluation and generation.
    pub(crate) threads: usize,
    /// Context size in tokens (prompt + reply).
    pub(crate) context_size: u32,
    pub(crate) max_tokens: u32,
    pub(crate) temperature: f32,
    pub(crate) seed: Option<i64>,
    /// Regex mode: plain-text replies, accept iff the whole reply matches.
    pub(crate) positive_regex: Option<Regex>,
}

/// What was checked at start-up.
#[derive(Debug, Clone)]
pub(crate) struct ModelFile {
    pub(crate) path: PathBuf,
}

/// Finds and checks the model file: `LLM_MODEL_PATH`, else `LLM_MODEL` (or
/// the demo model's name) inside `CACHE_DIR` or `CACHE_DIR/models`.
pub(crate) fn locate_model(
    model_path: Option<&Path>,
    model_name: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<ModelFile, SettingError> {
    let path = match model_path {
        Some(path) => path.to_path_buf(),
        None => {
            let name = model_name.unwrap_or(DEFAULT_MODEL_FILE);
            let Some(cache) = cache_dir else {
                return Err(SettingError::Missing {
                    variable: "LLM_MODEL_PATH",
                    why: "for LLM_BACKEND=llama (a .gguf file), or set CACHE_DIR to a directory holding LLM_MODEL; scripts/fetch-model.sh fetches the demo model",
                });
            };
            let candidates = [cache.join(name), cache.join("models").join(name)];
            match candidates.iter().find(|p| p.is_file()) {
                Some(found) => found.clone(),
                None => {
                    return Err(SettingError::Invalid {
                        variable: "LLM_MODEL",
                        value: name.to_string(),
                        message: format!(
                            "no such model in CACHE_DIR ({} or {}); run scripts/fetch-model.sh or set LLM_MODEL_PATH",
                            candidates[0].display(),
                            candidates[1].display()
                        ),
                    });
                }
            }
        }
    };
    let invalid = |message: String| SettingError::Invalid {
        variable: "LLM_MODEL_PATH",
        value: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| invalid(format!("cannot read the model file: {e}")))?;
    if !meta.is_file() {
        return Err(invalid("is not a file".into()));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| invalid(format!("cannot read the model file: {e}")))?;
    if &magic != b"GGUF" {
        return Err(invalid(format!(
            "is not a GGUF model (its first bytes are {magic:02x?}, expected \"GGUF\")"
        )));
    }
    if let Some(available) = available_memory() {
        let needed = meta.len() + CONTEXT_OVERHEAD_BYTES;
        if needed > available {
            return Err(invalid(format!(
                "the model needs about {} MiB of memory but only {} MiB is available (container limit or free memory); use a smaller quantisation or raise the limit",
                needed >> 20,
                available >> 20
            )));
        }
    }
    Ok(ModelFile { path })
}

/// Memory this process may still use: the cgroup's limit minus its usage
/// when there is one (a pod's `resources.limits.memory`), else the host's
/// `MemAvailable`; the smaller of the two.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let cgroup = (|| {
        let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
        let max: u64 = max.trim().parse().ok()?; // "max" = no limit
        let current: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(max.saturating_sub(current))
    })();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The context to allocate for a prompt of `prompt` tokens and a reply of
/// up to `max_tokens`: that much, rounded up to a multiple of 256 (so
/// repair turns of a similar length reuse the same size), at most `cap`
/// (LLM_CONTEXT_SIZE, already checked to hold the prompt and reply) and at
/// most what the model was trained on, when it says so.
fn context_for(prompt: usize, max_tokens: u32, cap: u32, trained: u32) -> u32 {
    const STEP: u64 = 256;
    let needed = prompt as u64 + u64::from(max_tokens);
    let rounded = needed.div_ceil(STEP) * STEP;
    let mut n_ctx = rounded.min(u64::from(cap));
    if trained > 0 {
        n_ctx = n_ctx.min(u64::from(trained).max(needed));
    }
    n_ctx as u32
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

/// Generation settings.
#[derive(Debug, Clone)]
struct Generation {
    threads: i32,
    context_size: u32,
    max_tokens: u32,
    temperature: f32,
    seed: u32,
}

/// What one generation produced.
struct Generated {
    text: String,
    truncated: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
    prompt_eval_ms: f64,
    generation_ms: f64,
}

pub(crate) struct LlamaJudge {
    file: ModelFile,
    model_name: String,
    settings: Generation,
    positive_regex: Option<Regex>,
    /// The GBNF grammar of the verdict; none in regex mode.
    grammar: Option<String>,
    /// Loaded on first use; the mutex also serialises generations (one
    /// context at a time is what fits a pod's CPU budget anyway).
    model: Mutex<Option<Arc<LlamaModel>>>,
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
            settings: Generation {
                threads: settings.threads as i32,
                context_size: settings.context_size,
                max_tokens: settings.max_tokens,
                temperature: settings.temperature,
                seed: settings.seed.unwrap_or(42) as u32,
            },
            positive_regex: settings.positive_regex.clone(),
            grammar,
            model: Mutex::new(None),
        })
    }

    /// Loads the model once; returns it and the load time in ms (0 when cached).
    fn model(&self) -> Result<(Arc<LlamaModel>, u64), JudgeError> {
        let mut slot = self.model.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = slot.as_ref() {
            return Ok((model.clone(), 0));
        }
        let started = Instant::now();
        let backend = backend()?;
        let model =
            LlamaModel::load_from_file(backend, &self.file.path, &LlamaModelParams::default())
                .map_err(|e| JudgeError::ModelUnavailable {
                    detail: format!("{}: cannot load the model: {e}", self.file.path.display()),
                })?;
        let model = Arc::new(model);
        *slot = Some(model.clone());
        Ok((model, started.elapsed().as_millis() as u64))
    }

    /// Runs the whole judgement (blocking: called on a blocking thread).
    fn judge_blocking(
        &self,
        request: &JudgeRequest<'_>,
        stats: &mut JudgeStats,
    ) -> Result<Decision, JudgeError> {
        let (model, load_ms) = self.model()?;
        stats.timings.push(("llm_load", load_ms));
        let template = model
            .chat_template(None)
            .map_err(|e| JudgeError::ModelUnavailable {
                detail: format!(
                    "{}: the model has no usable chat template: {e}",
                    self.file.path.display()
                ),
            })?;

        // Fit the prompt into the context, leaving room for the reply: cut
        // the listing text (never the instructions) until it fits.
        let mut prompt: Prompt = request.prompt.clone();
        let mut budget = request.builder.max_text_chars;
        let mut messages = vec![
            ("system", prompt.system.clone()),
            ("user", prompt.user.clone()),
        ];
        let mut tokens = self.tokenize(&model, &template, &messages)?;
        let room = self
            .settings
            .context_size
            .saturating_sub(self.settings.max_tokens) as usize;
        let mut truncation_note = None;
        while tokens > room {
            let chars = request.profile.text.chars().count().min(budget);
            if chars <= 100 {
                return Err(JudgeError::ContextOverflow {
                    detail: format!(
                        "the instructions alone take {tokens} tokens, more than LLM_CONTEXT_SIZE={} minus LLM_MAX_TOKENS={}",
                        self.settings.context_size, self.settings.max_tokens
                    ),
                });
            }
            // Shrink in proportion to the overflow, with a margin.
            budget = ((chars as f64) * (room as f64 / tokens as f64) * 0.9) as usize;
            let mut builder = request.builder.clone();
            builder.max_text_chars = budget.max(100);
            prompt = builder.build_with_nonce(request.profile, request.captions, &prompt.nonce);
            messages = vec![
                ("system", prompt.system.clone()),
                ("user", prompt.user.clone()),
            ];
            tokens = self.tokenize(&model, &template, &messages)?;
            truncation_note = Some(format!(
                "listing text cut to {} characters to fit the model's context (LLM_CONTEXT_SIZE={})",
                budget.max(100),
                self.settings.context_size
            ));
        }

        let mut repaired = false;
        loop {
            stats.attempts += 1;
            let generated = self.generate(&model, &template, &messages)?;
            stats.add_usage(generated.prompt_tokens, generated.completion_tokens);
            stats.add_speed(
                generated.prompt_tokens,
                generated.prompt_eval_ms,
                generated.completion_tokens,
                generated.generation_ms,
            );
            match interpret(
                &generated.text,
                generated.truncated,
                self.settings.max_tokens,
                self.positive_regex.as_ref(),
            ) {
                Ok(mut decision) => {
                    decision.reasons.extend(truncation_note);
                    return Ok(decision);
                }
                Err(problem) if !repaired && !matches!(problem, ReplyProblem::Truncated(_)) => {
                    repaired = true;
                    tracing::warn!(problem = ?problem, "unusable reply; one repair turn");
                    messages.push(("assistant", generated.text));
                    messages.push(("user", problem.repair_message()));
                }
                Err(problem) => return Err(problem.into_error()),
            }
        }
    }

    fn chat(&self, messages: &[(&str, String)]) -> Result<Vec<LlamaChatMessage>, JudgeError> {
        messages
            .iter()
            .map(|(role, content)| {
                LlamaChatMessage::new(role.to_string(), content.clone()).map_err(|e| {
                    JudgeError::ReplyInvalid {
                        detail: format!("cannot pass a message to llama.cpp: {e}"),
                    }
                })
            })
            .collect()
    }

    fn format(
        &self,
        model: &LlamaModel,
        template: &llama_cpp_2::model::LlamaChatTemplate,
        messages: &[(&str, String)],
    ) -> Result<String, JudgeError> {
        model
            .apply_chat_template(template, &self.chat(messages)?, true)
            .map_err(|e| JudgeError::ModelUnavailable {
                detail: format!("cannot apply the model's chat template: {e}"),
            })
    }

    fn tokenize(
        &self,
        model: &LlamaModel,
        template: &llama_cpp_2::model::LlamaChatTemplate,
        messages: &[(&str, String)],
    ) -> Result<usize, JudgeError> {
        let text = self.format(model, template, messages)?;
        let vocab = model.vocab();
        Ok(vocab
            .tokenize(text.as_bytes(), vocab.should_add_bos(), true)
            .len())
    }

    fn generate(
        &self,
        model: &LlamaModel,
        template: &llama_cpp_2::model::LlamaChatTemplate,
        messages: &[(&str, String)],
    ) -> Result<Generated, JudgeError> {
        let backend = backend()?;
        let text = self.format(model, template, messages)?;
        let vocab = model.vocab();
        let tokens = vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true);
        let n_ctx = self.settings.context_size;
        if tokens.len() + self.settings.max_tokens as usize > n_ctx as usize {
            return Err(JudgeError::ContextOverflow {
                detail: format!(
                    "the prompt takes {} tokens; with LLM_MAX_TOKENS={} that exceeds LLM_CONTEXT_SIZE={n_ctx}",
                    tokens.len(),
                    self.settings.max_tokens
                ),
            });
        }
        // The context holds this prompt and its reply, not LLM_CONTEXT_SIZE
        // (the cap): the KV cache is sized by it, ~25 MiB saved per context
        // at the default 2048 for a typical 600-token listing.
        let n_ctx = context_for(
            tokens.len(),
            self.settings.max_tokens,
            n_ctx,
            model.n_ctx_train(),
        );
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_threads(self.settings.threads)
            .with_n_threads_batch(self.settings.threads);
        let mut ctx =
            model
                .new_context(backend, params)
                .map_err(|e| JudgeError::ModelUnavailable {
                    detail: format!("cannot create a llama.cpp context of {n_ctx} tokens: {e}"),
                })?;
        let mut batch = LlamaBatch::new(n_ctx as usize, 1);
        let last = tokens.len() as i32 - 1;
        for (i, token) in tokens.iter().enumerate() {
            batch
                .add(*token, i as i32, &[0], i as i32 == last)
                .map_err(|e| JudgeError::ContextOverflow {
                    detail: e.to_string(),
                })?;
        }
        let prompt_started = Instant::now();
        ctx.decode(&mut batch)
            .map_err(|e| JudgeError::ModelUnavailable {
                detail: format!("llama.cpp could not evaluate the prompt: {e}"),
            })?;
        let prompt_eval_ms = prompt_started.elapsed().as_secs_f64() * 1000.0;

        let mut sampler = self.sampler(model)?;
        let mut out: Vec<u8> = Vec::new();
        let mut n_cur = batch.n_tokens();
        let mut generated = 0u32;
        let mut truncated = true;
        let generation_started = Instant::now();
        while generated < self.settings.max_tokens {
            let token = sampler.next(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                truncated = false;
                break;
            }
            vocab.token_to_piece_into(token, &mut out, false, None);
            generated += 1;
            batch.clear();
            batch
                .add(token, n_cur, &[0], true)
                .map_err(|e| JudgeError::ContextOverflow {
                    detail: e.to_string(),
                })?;
            n_cur += 1;
            ctx.decode(&mut batch)
                .map_err(|e| JudgeError::ModelUnavailable {
                    detail: format!("llama.cpp could not continue generating: {e}"),
                })?;
        }
        let generation_ms = generation_started.elapsed().as_secs_f64() * 1000.0;
        Ok(Generated {
            text: String::from_utf8_lossy(&out).into_owned(),
            truncated,
            prompt_tokens: tokens.len() as u64,
            completion_tokens: u64::from(generated),
            prompt_eval_ms,
            generation_ms,
        })
    }

    /// Greedy at temperature 0, or seeded sampling above it; and the
    /// verdict grammar beside it, applied the way llama.cpp's server does
    /// (see [`Sampling::next`]).
    fn sampler(&self, model: &LlamaModel) -> Result<Sampling, JudgeError> {
        let grammar = match &self.grammar {
            Some(grammar) => Some(LlamaSampler::grammar(model, grammar, "root").map_err(|e| {
                JudgeError::ModelUnavailable {
                    detail: format!("cannot build the verdict grammar for this model: {e}"),
                }
            })?),
            None => None,
        };
        let choose = if self.settings.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::temp(self.settings.temperature),
                LlamaSampler::dist(self.settings.seed),
            ])
        };
        Ok(Sampling { choose, grammar })
    }
}

/// How the next token is picked.
struct Sampling {
    /// Greedy, or temperature + seeded draw.
    choose: LlamaSampler,
    /// The verdict grammar, in JSON mode.
    grammar: Option<LlamaSampler>,
}

impl Sampling {
    /// The next token after output `idx` of the last decode. With a
    /// grammar, the token chosen without it is checked first (one token
    /// against the grammar), and only a rejected one pays for the grammar
    /// over the whole vocabulary (~49k tokens for SmolLM2): most tokens of a
    /// reply are the model's own first choice, so this generates at nearly
    /// unconstrained speed. At temperature 0 the reply is the same token for
    /// token as with the grammar applied first (a greedy token the grammar
    /// accepts is also the best of the tokens it accepts).
    fn next(&mut self, ctx: &llama_cpp_2::context::LlamaContext<'_>, idx: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else {
            return self.choose.sample(ctx, idx);
        };
        let mut candidates = ctx.token_data_array_ith(idx);
        candidates.apply_sampler(&mut self.choose);
        let mut token = candidates
            .selected_token()
            .expect("greedy and dist always select a token");
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
        one.apply_sampler(grammar);
        if one.data[0].logit() == f32::NEG_INFINITY {
            let mut candidates = ctx.token_data_array_ith(idx);
            candidates.apply_sampler(grammar);
            candidates.apply_sampler(&mut self.choose);
            token = candidates
                .selected_token()
                .expect("the grammar leaves at least one token");
        }
        grammar.accept(token);
        self.choose.accept(token);
        token
    }
}

/// The GBNF grammar of a verdict, from its JSON Schema, tightened for a
/// local model:
/// - properties in the order the prompt asks for (verdict, score, reasons):
///   llama.cpp keeps the schema's key order, and serde_json would sort it;
/// - the score as one of 0, 0.05, ..., 1: llama.cpp's converter bounds only
///   integers, and small models otherwise write `"score": 2`;
/// - at most two reasons of 80 characters, so the reply fits the token limit.
fn verdict_grammar() -> Result<String, String> {
    let scores: Vec<serde_json::Value> = (0..=20)
        .map(|i| match i {
            0 => json!(0),
            20 => json!(1),
            i => json!((i as f64) / 20.0),
        })
        .collect();
    let verdict = reply_schema()["properties"]["verdict"].to_string();
    let schema = format!(
        r#"{{"type":"object","properties":{{"verdict":{verdict},"score":{{"enum":{scores}}},"reasons":{{"type":"array","items":{{"type":"string","maxLength":80}},"minItems":1,"maxItems":2}}}},"required":["verdict","score","reasons"],"additionalProperties":false}}"#,
        scores = serde_json::Value::Array(scores),
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
            // llama.cpp blocks this thread for the whole generation. The
            // assessor runs one profile on a current-thread runtime with
            // nothing else to do meanwhile, so blocking here is right (and
            // keeps the request borrowable; llama.cpp runs its own threads).
            let outcome = self.judge_blocking(request, &mut stats);
            (outcome, stats)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_context_fits_the_work_not_the_cap() {
        // 581 prompt tokens + 300: 881, rounded up to 1024, under 2048.
        assert_eq!(super::context_for(581, 300, 2048, 8192), 1024);
        // Never above the cap, nor above the training context...
        assert_eq!(super::context_for(1900, 100, 2048, 8192), 2048);
        assert_eq!(super::context_for(100, 100, 4096, 240), 240);
        // ...unless the work itself needs more (the cap was checked).
        assert_eq!(super::context_for(600, 300, 4096, 512), 900);
        // A model that does not say: the cap alone.
        assert_eq!(super::context_for(10, 10, 2048, 0), 256);
    }

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
    }
}
