//! The decoding engine: one thread that owns the llama.cpp context and
//! runs every reply of the process through it, the way llama.cpp's server
//! runs its slots.
//!
//! - **One model, one context.** The model is loaded once; the context (and
//!   its KV cache) lives as long as the judge, so a batch does not pay for a
//!   context per profile.
//! - **Shared prefix.** Every prompt of a run starts with the same system
//!   prompt (instructions, brief, reply format); the nonce and the listing
//!   come after it. The KV cache of that common prefix is kept in sequence 0
//!   and copied (by reference: the cache is unified, a copy only tags the
//!   cells) into each new reply's sequence, so only the tokens after it are
//!   evaluated. The prefix is found, not declared: the first prompt is kept
//!   whole, and the second cuts it to the longest common token prefix of the
//!   two. A token's cache depends only on the tokens before it, so reusing
//!   any common token prefix is exact.
//! - **Continuous batching.** Up to `slots` replies (ASSESSOR_JOBS in a
//!   batch) are decoded together: every step makes one `llama_decode` call
//!   holding the new prompts' remaining tokens and one token of every reply
//!   under way, and a finished reply's slot takes the next waiting prompt at
//!   once.
//! - **Bounded.** A reply is admitted only when the cells it may need fit
//!   the cache; a waiting reply whose caller went away is dropped, and a
//!   reply under way for a caller that went away is stopped at the next
//!   step.
//! - **Probabilities, not stated numbers.** A verdict reply measures
//!   P(accept) from the model's own distribution at the token where the
//!   verdict's value starts, under the grammar (normalised over the tokens
//!   that begin "accept" and "reject"); a question's reply measures each
//!   allowed answer's probability at its first token.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use super::backend;
use super::sampling::Sampling;
use crate::judge::JudgeError;

/// Sequence 0 holds the shared prefix; replies use 1..=slots.
const PREFIX_SEQ: i32 = 0;

/// How the engine decodes.
#[derive(Debug, Clone)]
pub(super) struct EngineSettings {
    /// CPU threads for every decode (0 until the judge chose them).
    pub(super) threads: i32,
    /// Replies decoded together (ASSESSOR_JOBS in a batch).
    pub(super) slots: usize,
    /// Many prompts will come (a batch): the context keeps room for the
    /// shared prefix beside the slots. One profile gets a context of its
    /// own prompt and reply only.
    pub(super) batch: bool,
    /// Most tokens of one prompt and its reply (LLM_CONTEXT_SIZE); the
    /// caller checked every prompt against it.
    pub(super) per_reply_cap: u32,
    pub(super) max_tokens: u32,
    pub(super) temperature: f32,
    pub(super) seed: u32,
    /// The verdict grammar (GBNF); none in regex mode.
    pub(super) grammar: Option<String>,
}

/// What a prompt is for: which grammar constrains its reply, which
/// probability is measured, and whether it may set the shared prefix.
#[derive(Debug, Clone)]
pub(super) enum Request {
    /// A verdict, under the engine's grammar; measures P(accept).
    Verdict,
    /// A narrow question, under its own grammar (its allowed answers);
    /// measures the answer's probability. Never becomes the shared prefix:
    /// verdict prompts share theirs, questions have another.
    Question {
        grammar: Arc<str>,
        max_tokens: u32,
        choices: Arc<[String]>,
    },
}

/// What one reply produced.
#[derive(Debug)]
pub(super) struct Generated {
    pub(super) text: String,
    /// It stopped at `max_tokens`, not at the end of its answer.
    pub(super) truncated: bool,
    pub(super) prompt_tokens: u64,
    /// Prompt tokens taken from the shared prefix, not evaluated again.
    pub(super) reused_tokens: u64,
    pub(super) completion_tokens: u64,
    /// Wall time of the step that evaluated the prompt (shared with the
    /// other replies in it).
    pub(super) prompt_eval_ms: f64,
    /// Wall time from then to the reply's last token.
    pub(super) generation_ms: f64,
    /// Verdicts: P(accept) at the verdict's first token, when the reply
    /// reached it.
    pub(super) accept_probability: Option<f64>,
    /// Questions: each choice's probability at the answer's first token.
    pub(super) choice_probabilities: Option<Vec<f64>>,
}

/// A prompt waiting for its reply.
struct Job {
    tokens: Vec<LlamaToken>,
    request: Request,
    reply: oneshot::Sender<Result<Generated, JudgeError>>,
}

/// The handle the judge holds; dropping it ends the engine's thread once
/// its replies are done.
pub(super) struct Engine {
    jobs: mpsc::Sender<Job>,
}

impl Engine {
    /// Starts the engine's thread for a loaded model.
    pub(super) fn start(
        model: Arc<LlamaModel>,
        settings: EngineSettings,
    ) -> Result<Self, JudgeError> {
        let (jobs, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("llama-engine".into())
            .spawn(move || Worker::new(&model, settings).run(inbox))
            .map_err(|e| JudgeError::ModelUnavailable {
                detail: format!("cannot start the llama.cpp engine thread: {e}"),
            })?;
        Ok(Engine { jobs })
    }

    /// Generates the reply to `tokens` (a formatted, tokenized chat whose
    /// length plus `max_tokens` is within `per_reply_cap`).
    pub(super) async fn generate(
        &self,
        tokens: Vec<LlamaToken>,
        request: Request,
    ) -> Result<Generated, JudgeError> {
        let stopped = || JudgeError::ModelUnavailable {
            detail: "the llama.cpp engine stopped".into(),
        };
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                tokens,
                request,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// A reply under way.
struct Slot {
    seq: i32,
    job: Job,
    /// Prompt tokens `[0, shared)` came from the prefix (or are the prefix).
    shared: usize,
    /// Tokens of this sequence in the cache (its position for the next one).
    n_past: usize,
    /// Sampled, not yet decoded.
    pending: Option<LlamaToken>,
    /// Its output's index in the current step's batch.
    output: Option<i32>,
    sampling: Sampling,
    text: Vec<u8>,
    generated: u32,
    reused: usize,
    admitted: Instant,
    prompt_eval_ms: Option<f64>,
    generation_started: Option<Instant>,
    /// Its prompt becomes the provisional prefix once evaluated.
    provides_prefix: bool,
    accept_probability: Option<f64>,
    choice_probabilities: Option<Vec<f64>>,
}

impl Slot {
    /// Cells this reply may still come to hold beside the prefix.
    fn reserved(&self, prefix: usize, max_tokens: u32) -> usize {
        self.job.tokens.len() - self.shared.min(prefix) + max_tokens as usize
    }
}

/// The engine's thread: the context, the prefix and the slots.
struct Worker<'m> {
    model: &'m LlamaModel,
    settings: EngineSettings,
    /// Created for the first prompt, sized to it; rebuilt bigger when a
    /// prompt does not fit an empty cache.
    ctx: Option<LlamaContext<'m>>,
    n_ctx: usize,
    batch: Option<LlamaBatch<'static>>,
    /// The tokens whose cache sequence 0 holds.
    prefix: Vec<LlamaToken>,
    /// The prefix was cut to what two prompts share; it is kept from then on.
    prefix_settled: bool,
    waiting: VecDeque<Job>,
    slots: Vec<Option<Slot>>,
}

impl<'m> Worker<'m> {
    fn new(model: &'m LlamaModel, settings: EngineSettings) -> Self {
        let slots = (0..settings.slots.max(1)).map(|_| None).collect();
        Worker {
            model,
            settings,
            ctx: None,
            n_ctx: 0,
            batch: None,
            prefix: Vec::new(),
            prefix_settled: false,
            waiting: VecDeque::new(),
            slots,
        }
    }

    fn run(mut self, inbox: mpsc::Receiver<Job>) {
        loop {
            let busy = self.slots.iter().any(Option::is_some);
            if !busy && self.waiting.is_empty() {
                match inbox.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return, // the judge is gone
                }
            }
            while let Ok(job) = inbox.try_recv() {
                self.waiting.push_back(job);
            }
            self.waiting.retain(|job| !job.reply.is_closed());
            self.drop_abandoned();
            if let Err(error) = self.admit() {
                // The first waiting prompt cannot get a context at all.
                if let Some(job) = self.waiting.pop_front() {
                    let _ = job.reply.send(Err(error));
                }
                continue;
            }
            if self.slots.iter().any(Option::is_some) {
                self.step();
            }
        }
    }

    /// Stops replies whose caller went away (a batch past its drain time).
    fn drop_abandoned(&mut self) {
        for index in 0..self.slots.len() {
            if self.slots[index]
                .as_ref()
                .is_some_and(|slot| slot.job.reply.is_closed())
            {
                let slot = self.slots[index].take().expect("checked");
                self.forget(slot.seq);
            }
        }
    }

    /// Cells in use or promised: the prefix and every slot's reservation.
    fn reserved(&self) -> usize {
        let prefix = self.prefix.len();
        prefix
            + self
                .slots
                .iter()
                .flatten()
                .map(|slot| slot.reserved(prefix, self.settings.max_tokens))
                .sum::<usize>()
    }

    /// Moves waiting prompts into free slots while their cells fit.
    fn admit(&mut self) -> Result<(), JudgeError> {
        while let Some(job) = self.waiting.front() {
            let Some(free) = self.slots.iter().position(Option::is_none) else {
                return Ok(());
            };
            let len = job.tokens.len();
            let shared = self.shareable(&job.tokens);
            let need = len - shared + self.settings.max_tokens as usize;
            if self.ctx.is_none() || self.reserved() + need > self.n_ctx {
                if self.slots.iter().any(Option::is_some) {
                    return Ok(()); // wait for a reply to finish
                }
                // Nothing under way: drop the prefix, and if the prompt still
                // does not fit, make a bigger context.
                self.clear_prefix();
                let alone = len + self.settings.max_tokens as usize;
                if self.ctx.is_none() || alone > self.n_ctx {
                    self.build_context(len)?;
                }
            }
            let job = self.waiting.pop_front().expect("peeked");
            let seq = free as i32 + 1;
            let shared = self.shareable(&job.tokens);
            let verdict = matches!(job.request, Request::Verdict);
            if verdict && !self.prefix_settled && !self.prefix.is_empty() {
                // The second prompt: the prefix becomes what the two share.
                self.cut_prefix(shared);
                self.prefix_settled = true;
            }
            if shared > 0 {
                let ctx = self.ctx.as_mut().expect("built above");
                let _ = ctx.copy_kv_cache_seq(PREFIX_SEQ, seq, None, Some(shared as u32));
            }
            let grammar = match &job.request {
                Request::Verdict => self.settings.grammar.as_deref(),
                Request::Question { grammar, .. } => Some(&**grammar),
            };
            let sampling = Sampling::new(
                self.model,
                grammar,
                self.settings.temperature,
                self.settings.seed,
            );
            let sampling = match sampling {
                Ok(sampling) => sampling,
                Err(error) => {
                    self.forget(seq);
                    let _ = job.reply.send(Err(error));
                    continue;
                }
            };
            let provides_prefix = verdict && self.prefix.is_empty() && !self.prefix_settled;
            self.slots[free] = Some(Slot {
                seq,
                shared,
                n_past: shared,
                pending: None,
                output: None,
                sampling,
                text: Vec::new(),
                generated: 0,
                reused: shared,
                admitted: Instant::now(),
                prompt_eval_ms: None,
                generation_started: None,
                provides_prefix,
                accept_probability: None,
                choice_probabilities: None,
                job,
            });
            if provides_prefix {
                // The others wait one step for its prompt to become the
                // prefix they share.
                break;
            }
        }
        Ok(())
    }

    /// How many of `tokens` the prefix's cache can stand for: their common
    /// tokens, less one (the last prompt token is always evaluated, for
    /// its logits).
    fn shareable(&self, tokens: &[LlamaToken]) -> usize {
        let common = self
            .prefix
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        common.min(tokens.len().saturating_sub(1))
    }

    fn cut_prefix(&mut self, len: usize) {
        if len < self.prefix.len() {
            if let Some(ctx) = self.ctx.as_mut() {
                let _ = ctx.clear_kv_cache_seq(Some(PREFIX_SEQ as u32), Some(len as u32), None);
            }
            self.prefix.truncate(len);
        }
    }

    fn clear_prefix(&mut self) {
        self.cut_prefix(0);
        self.prefix_settled = false;
    }

    /// Removes a finished or abandoned reply's own cells.
    fn forget(&mut self, seq: i32) {
        if let Some(ctx) = self.ctx.as_mut() {
            let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        }
    }

    /// A context for prompts like one of `prompt` tokens: with one slot, that
    /// prompt and its reply; with more, room for the prompt as a prefix and
    /// every slot's whole prompt and reply (the prefix's sharing only adds
    /// room).
    fn build_context(&mut self, prompt: usize) -> Result<(), JudgeError> {
        let trained = self.model.n_ctx_train();
        let n_ctx = context_for(
            prompt,
            self.settings.max_tokens,
            self.settings.batch.then_some(self.settings.slots),
            self.settings.per_reply_cap,
            trained,
        );
        // The old context goes first: both at once may not fit a pod.
        self.ctx = None;
        self.prefix.clear();
        self.prefix_settled = false;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_seq_max(self.settings.slots as u32 + 1)
            .with_kv_unified(true)
            .with_n_threads(self.settings.threads)
            .with_n_threads_batch(self.settings.threads);
        let ctx = self.model.new_context(backend()?, params).map_err(|e| {
            JudgeError::ModelUnavailable {
                detail: format!("cannot create a llama.cpp context of {n_ctx} tokens: {e}"),
            }
        })?;
        tracing::debug!(
            n_ctx,
            slots = self.settings.slots,
            threads = self.settings.threads,
            "llama.cpp context created"
        );
        self.n_ctx = n_ctx as usize;
        self.ctx = Some(ctx);
        self.batch = Some(LlamaBatch::new(n_ctx as usize, 1));
        Ok(())
    }

    /// One `llama_decode`: the new prompts' remaining tokens and one token of
    /// every reply under way; then one sampled token per reply.
    fn step(&mut self) {
        let mut batch = self.batch.take().expect("a context has a batch");
        batch.clear();
        let mut added = Ok(());
        for slot in self.slots.iter_mut().flatten() {
            slot.output = None;
            let result = match slot.pending {
                Some(token) => batch.add(token, slot.n_past as i32, &[slot.seq], true),
                None => {
                    let tokens = &slot.job.tokens[slot.n_past..];
                    let last = tokens.len().saturating_sub(1);
                    tokens.iter().enumerate().try_for_each(|(i, token)| {
                        batch.add(*token, (slot.n_past + i) as i32, &[slot.seq], i == last)
                    })
                }
            };
            if let Err(e) = result {
                added = Err(e.to_string());
                break;
            }
            slot.output = Some(batch.n_tokens() - 1);
        }
        let started = Instant::now();
        let decoded = added.and_then(|()| {
            self.ctx
                .as_mut()
                .expect("slots imply a context")
                .decode(&mut batch)
                .map_err(|e| e.to_string())
        });
        let step_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.batch = Some(batch);
        if let Err(detail) = decoded {
            // Every reply in this step fails; their cells are dropped.
            for index in 0..self.slots.len() {
                if let Some(slot) = self.slots[index].take() {
                    self.forget(slot.seq);
                    let _ = slot.job.reply.send(Err(JudgeError::ModelUnavailable {
                        detail: format!("llama.cpp could not decode: {detail}"),
                    }));
                }
            }
            return;
        }

        let model = self.model;
        let vocab = model.vocab();
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else {
                continue;
            };
            match slot.pending.take() {
                Some(_) => slot.n_past += 1,
                None => {
                    slot.n_past = slot.job.tokens.len();
                    slot.prompt_eval_ms = Some(step_ms);
                    slot.generation_started = Some(Instant::now());
                    if slot.provides_prefix {
                        // The first evaluated prompt becomes the provisional
                        // prefix: its cells are tagged with sequence 0 too,
                        // so they outlive its reply.
                        slot.provides_prefix = false;
                        slot.shared = slot.job.tokens.len();
                        if let Some(ctx) = self.ctx.as_mut() {
                            let _ = ctx.copy_kv_cache_seq(
                                slot.seq,
                                PREFIX_SEQ,
                                None,
                                Some(slot.shared as u32),
                            );
                        }
                        self.prefix = slot.job.tokens.clone();
                    }
                }
            }
            let output = slot.output.expect("every slot was in the batch");
            let ctx = self.ctx.as_ref().expect("slots imply a context");
            let limit = match &slot.job.request {
                Request::Verdict => self.settings.max_tokens,
                Request::Question { max_tokens, .. } => (*max_tokens).min(self.settings.max_tokens),
            };
            let token = match &slot.job.request {
                Request::Question { choices, .. } => {
                    let (token, dist) = slot.sampling.next_measured(ctx, output);
                    if slot.generated == 0 {
                        slot.choice_probabilities = Some(choice_shares(model, &dist, choices));
                    }
                    token
                }
                Request::Verdict
                    if slot.accept_probability.is_none() && at_verdict_value(&slot.text) =>
                {
                    let (token, dist) = slot.sampling.next_measured(ctx, output);
                    slot.accept_probability = accept_share(model, &dist);
                    token
                }
                Request::Verdict => slot.sampling.next(ctx, output),
            };
            let finished = if vocab.is_eog(token) {
                Some(false)
            } else {
                vocab.token_to_piece_into(token, &mut slot.text, false, None);
                slot.generated += 1;
                slot.pending = Some(token);
                (slot.generated >= limit).then_some(true)
            };
            if let Some(truncated) = finished {
                let slot = self.slots[index].take().expect("present");
                self.finish(slot, truncated);
            }
        }
    }

    fn finish(&mut self, slot: Slot, truncated: bool) {
        self.forget(slot.seq);
        let generation_ms = slot
            .generation_started
            .map(|t| t.elapsed().as_secs_f64() * 1000.0)
            .unwrap_or_default();
        tracing::debug!(
            prompt_tokens = slot.job.tokens.len(),
            reused = slot.reused,
            generated = slot.generated,
            waited_ms = slot.admitted.elapsed().as_millis() as u64,
            "reply generated"
        );
        let _ = slot.job.reply.send(Ok(Generated {
            text: String::from_utf8_lossy(&slot.text).into_owned(),
            truncated,
            prompt_tokens: slot.job.tokens.len() as u64,
            reused_tokens: slot.reused as u64,
            completion_tokens: u64::from(slot.generated),
            prompt_eval_ms: slot.prompt_eval_ms.unwrap_or_default(),
            generation_ms,
            accept_probability: slot.accept_probability,
            choice_probabilities: slot.choice_probabilities,
        }));
    }
}

/// The reply so far ends where the verdict's value begins: after
/// `"verdict":` and perhaps the opening quote and spaces.
fn at_verdict_value(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let Some(at) = text.rfind("\"verdict\"") else {
        return false;
    };
    let rest = text[at + "\"verdict\"".len()..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    let rest = rest.trim_start();
    rest.is_empty() || rest == "\""
}

/// Each token of a distribution as the text it writes, without leading
/// whitespace and lower-cased, with its probability.
fn words<'a>(
    model: &'a LlamaModel,
    dist: &'a [(LlamaToken, f64)],
) -> impl Iterator<Item = (String, f64)> + 'a {
    let mut piece = Vec::new();
    dist.iter().map(move |(token, p)| {
        piece.clear();
        model
            .vocab()
            .token_to_piece_into(*token, &mut piece, false, None);
        let word = String::from_utf8_lossy(&piece).trim_start().to_lowercase();
        (word, *p)
    })
}

/// P(accept) from the distribution over allowed next tokens where the
/// verdict's value starts: the mass of the tokens that begin "accept" over
/// that of the tokens beginning either word. None when those tokens carry
/// little of the mass (the next token is a quote or a space: the following
/// step measures again).
fn accept_share(model: &LlamaModel, dist: &[(LlamaToken, f64)]) -> Option<f64> {
    let (mut accept, mut reject) = (0.0, 0.0);
    for (word, p) in words(model, dist) {
        let word = word.trim_start_matches('"');
        if word.is_empty() {
            continue;
        }
        let begins = |target: &str| target.starts_with(word) || word.starts_with(target);
        if begins("accept") {
            accept += p;
        } else if begins("reject") {
            reject += p;
        }
    }
    (accept + reject > 0.5).then(|| accept / (accept + reject))
}

/// Each choice's share of the distribution over an answer's first token: a
/// token counts for the choice it spells exactly, else is split among the
/// choices it begins ("1" of "1" and "10"... counts for "1"). Normalised
/// over the choices; all zero when no token begins any.
fn choice_shares(model: &LlamaModel, dist: &[(LlamaToken, f64)], choices: &[String]) -> Vec<f64> {
    let mut shares = vec![0.0; choices.len()];
    for (word, p) in words(model, dist) {
        if word.is_empty() {
            continue;
        }
        if let Some(exact) = choices.iter().position(|c| *c == word) {
            shares[exact] += p;
            continue;
        }
        let begun: Vec<usize> = (0..choices.len())
            .filter(|i| choices[*i].starts_with(&word))
            .collect();
        for i in &begun {
            shares[*i] += p / begun.len() as f64;
        }
    }
    let total: f64 = shares.iter().sum();
    if total > 0.0 {
        shares.iter_mut().for_each(|s| *s /= total);
    }
    shares
}

/// The context to allocate, first sized by a prompt of `prompt` tokens:
/// - one profile (`batch_slots` None): that prompt and a reply of up to
///   `max_tokens`, rounded up to a multiple of 256 (so repair turns of a
///   similar length fit), at most `cap` (LLM_CONTEXT_SIZE, already checked to
///   hold the prompt and reply) and at most what the model was trained on,
///   when it says so;
/// - a batch of `slots` replies at a time: the prompt once more (the shared
///   prefix, at first the whole first prompt) beside each slot's prompt and
///   reply, rounded the same way, at most `cap` per slot plus one for the
///   prefix.
fn context_for(
    prompt: usize,
    max_tokens: u32,
    batch_slots: Option<usize>,
    cap: u32,
    trained: u32,
) -> u32 {
    const STEP: u64 = 256;
    let one = prompt as u64 + u64::from(max_tokens);
    let (needed, limit) = match batch_slots {
        None => (one, u64::from(cap)),
        Some(slots) => {
            let slots = slots.max(1) as u64;
            (prompt as u64 + slots * one, (slots + 1) * u64::from(cap))
        }
    };
    let rounded = needed.div_ceil(STEP) * STEP;
    let mut n_ctx = rounded.min(limit).max(one);
    if trained > 0 && batch_slots.is_none() {
        n_ctx = n_ctx.min(u64::from(trained).max(needed));
    }
    n_ctx.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::context_for;

    #[test]
    fn one_slot_gets_its_prompt_and_reply_not_the_cap() {
        // 581 prompt tokens + 300: 881, rounded up to 1024, under 2048.
        assert_eq!(context_for(581, 300, None, 2048, 8192), 1024);
        // Never above the cap, nor above the training context...
        assert_eq!(context_for(1900, 100, None, 2048, 8192), 2048);
        assert_eq!(context_for(100, 100, None, 4096, 240), 240);
        // ...unless the work itself needs more (the cap was checked).
        assert_eq!(context_for(600, 300, None, 4096, 512), 900);
        // A model that does not say: the cap alone.
        assert_eq!(context_for(10, 10, None, 2048, 0), 256);
    }

    #[test]
    fn slots_get_a_prefix_and_a_whole_reply_each() {
        // 580 + 4 × 880 = 4100 → 4352.
        assert_eq!(context_for(580, 300, Some(4), 2048, 8192), 4352);
        // A batch of one reply at a time keeps room for the prefix too.
        assert_eq!(context_for(580, 300, Some(1), 2048, 8192), 1536);
        // At most a cap per slot and one for the prefix.
        assert_eq!(context_for(1900, 100, Some(4), 1990, 8192), 5 * 1990);
        // Never less than one prompt and its reply.
        assert!(context_for(2000, 48, Some(2), 2048, 0) >= 2048);
    }
}
