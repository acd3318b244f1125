//! How the next token of a reply is picked: greedy or seeded, under the
//! verdict grammar when there is one. One [`Sampling`] per reply (the
//! grammar's state is the reply's position in the JSON object).

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;

use crate::judge::JudgeError;

/// The choice of tokens for one reply.
pub(super) struct Sampling {
    /// Greedy, or temperature + seeded draw.
    choose: LlamaSampler,
    /// The verdict grammar, in JSON mode.
    grammar: Option<LlamaSampler>,
}

impl Sampling {
    /// Greedy at temperature 0, or seeded sampling above it; and the
    /// verdict grammar (GBNF) beside it, applied the way llama.cpp's server
    /// does (see [`Sampling::next`]).
    pub(super) fn new(
        model: &LlamaModel,
        grammar: Option<&str>,
        temperature: f32,
        seed: u32,
    ) -> Result<Self, JudgeError> {
        let grammar = match grammar {
            Some(grammar) => Some(LlamaSampler::grammar(model, grammar, "root").map_err(|e| {
                JudgeError::ModelUnavailable {
                    detail: format!("cannot build the verdict grammar for this model: {e}"),
                }
            })?),
            None => None,
        };
        let choose = if temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([LlamaSampler::temp(temperature), LlamaSampler::dist(seed)])
        };
        Ok(Sampling { choose, grammar })
    }

    /// The next token after output `idx` of the last decode. With a
    /// grammar, the token chosen without it is checked first (one token
    /// against the grammar), and only a rejected one pays for the grammar
    /// over the whole vocabulary (~49k tokens for SmolLM2): most tokens of a
    /// reply are the model's own first choice, so this generates at nearly
    /// unconstrained speed. At temperature 0 the reply is the same token for
    /// token as with the grammar applied first (a greedy token the grammar
    /// accepts is also the best of the tokens it accepts).
    pub(super) fn next(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
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

    /// The next token, as [`Sampling::next`] picks it, and the distribution
    /// it was picked from: the probability of every token the grammar
    /// allows, renormalised over them (softmax of their logits). Costs the
    /// grammar over the whole vocabulary, so it is used only where a
    /// probability is measured (a verdict's first token, a short answer).
    pub(super) fn next_measured(
        &mut self,
        ctx: &LlamaContext<'_>,
        idx: i32,
    ) -> (LlamaToken, Vec<(LlamaToken, f64)>) {
        let mut candidates = ctx.token_data_array_ith(idx);
        if let Some(grammar) = self.grammar.as_mut() {
            candidates.apply_sampler(grammar);
        }
        let dist = allowed_distribution(&candidates.data);
        candidates.apply_sampler(&mut self.choose);
        let token = candidates
            .selected_token()
            .expect("greedy and dist always select a token");
        if let Some(grammar) = self.grammar.as_mut() {
            grammar.accept(token);
        }
        self.choose.accept(token);
        (token, dist)
    }
}

/// Softmax over the tokens with a finite logit (those a grammar allows),
/// keeping those of any weight.
fn allowed_distribution(data: &[LlamaTokenData]) -> Vec<(LlamaToken, f64)> {
    let max = data
        .iter()
        .map(LlamaTokenData::logit)
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return Vec::new();
    }
    let weights: Vec<(LlamaToken, f64)> = data
        .iter()
        .filter(|d| d.logit().is_finite())
        .map(|d| (d.id(), f64::from(d.logit() - max).exp()))
        .collect();
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    weights
        .into_iter()
        .map(|(t, w)| (t, w / total))
        .filter(|(_, p)| *p > 1e-9)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_is_a_softmax_over_allowed_tokens() {
        let data = [
            LlamaTokenData::new(LlamaToken(1), 2.0, 0.0),
            LlamaTokenData::new(LlamaToken(2), f32::NEG_INFINITY, 0.0),
            LlamaTokenData::new(LlamaToken(3), 2.0 + 3f32.ln(), 0.0),
        ];
        let dist = allowed_distribution(&data);
        assert_eq!(dist.len(), 2);
        assert!((dist[0].1 - 0.25).abs() < 1e-6, "{dist:?}");
        assert!((dist[1].1 - 0.75).abs() < 1e-6, "{dist:?}");
        let none = [LlamaTokenData::new(LlamaToken(1), f32::NEG_INFINITY, 0.0)];
        assert!(allowed_distribution(&none).is_empty());
    }
}
