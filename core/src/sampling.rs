//! Sampling: the defaults (one place), and the llama.cpp sampler chain built from a request.

use std::sync::Arc;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use crate::api::ChatCompletionRequest;
use crate::error::{Error, Result};
use crate::tool_calling::ToolGrammar;

/// The values used when a request leaves a parameter out.
pub mod defaults {
    /// OpenAI's default.
    pub const TEMPERATURE: f32 = 1.0;
    /// OpenAI's default (no nucleus cut).
    pub const TOP_P: f32 = 1.0;
    /// llama.cpp's default; small models ramble without it.
    pub const TOP_K: i32 = 40;
    /// llama.cpp's default.
    pub const MIN_P: f32 = 0.05;
    /// Disabled, as in llama.cpp.
    pub const REPEAT_PENALTY: f32 = 1.0;
    /// How many recent tokens the repeat, frequency and presence penalties look at.
    pub const PENALTY_LAST_N: i32 = 64;
}

/// A request's sampling settings, resolved against the defaults.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SamplingParams {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: i32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub seed: u32,
    pub logit_bias: Vec<(i32, f32)>,
    /// A GBNF grammar the answer must follow (from `response_format`), already checked to parse.
    pub grammar: Option<Arc<str>>,
    /// Alternatives per token when log probabilities are asked for (`top_logprobs`).
    pub logprobs: Option<u32>,
    /// The grammar of tool calls (replaces `grammar`; lazy under `tool_choice: "auto"`).
    pub tool_grammar: Option<ToolGrammar>,
}

impl SamplingParams {
    /// Settings for choice `index` of a (validated) request. With a seed, choice i samples
    /// with seed + i, so `n` choices differ but the whole response is reproducible.
    pub(crate) fn from_request(req: &ChatCompletionRequest, index: u32) -> Self {
        let seed = match req.seed {
            Some(s) => (s as u32).wrapping_add(index),
            None => random_seed(),
        };
        SamplingParams {
            temperature: req.temperature.unwrap_or(defaults::TEMPERATURE),
            top_p: req.top_p.unwrap_or(defaults::TOP_P),
            top_k: req.top_k.unwrap_or(defaults::TOP_K),
            min_p: req.min_p.unwrap_or(defaults::MIN_P),
            repeat_penalty: req.repeat_penalty.unwrap_or(defaults::REPEAT_PENALTY),
            presence_penalty: req.presence_penalty.unwrap_or(0.0),
            frequency_penalty: req.frequency_penalty.unwrap_or(0.0),
            seed,
            logit_bias: req
                .logit_bias
                .iter()
                .flatten()
                .filter_map(|(token, bias)| Some((token.parse().ok()?, *bias)))
                .collect(),
            grammar: None,
            logprobs: req.logprobs_wanted(),
            tool_grammar: None,
        }
    }

    /// The request's sampler: the chain, and the grammar when the answer is constrained.
    pub(crate) fn build(&self, model: &LlamaModel) -> Result<Sampler> {
        let (grammar, constraint) = match (&self.tool_grammar, &self.grammar) {
            (Some(tools), _) => (Some(tools.compile(model)?), "tools"),
            (None, Some(gbnf)) => (Some(compile_grammar(model, gbnf)?), "response_format"),
            (None, None) => (None, "response_format"),
        };
        Ok(Sampler {
            chain: self.chain(model),
            argmax: self.greedy_only().then(|| Argmax {
                bias: self.biases(model.n_vocab()).collect(),
                biased: Vec::new(),
            }),
            grammar,
            constraint,
        })
    }

    /// Whether the chain is a logit bias (if any) and greedy: its pick is then the argmax of
    /// the biased logits.
    fn greedy_only(&self) -> bool {
        self.temperature <= 0.0 && !self.penalized()
    }

    fn penalized(&self) -> bool {
        self.repeat_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0
    }

    /// The logit biases on tokens of the vocabulary (llama.cpp asserts on others).
    fn biases(&self, n_vocab: i32) -> impl Iterator<Item = (i32, f32)> + '_ {
        self.logit_bias
            .iter()
            .copied()
            .filter(move |(token, _)| (0..n_vocab).contains(token))
    }

    /// Builds the chain: bias, penalties, then greedy at temperature 0, else
    /// top-k, top-p, min-p, temperature and a seeded draw.
    fn chain(&self, model: &LlamaModel) -> LlamaSampler {
        let n_vocab = model.n_vocab();
        let mut chain = Vec::new();
        let bias: Vec<LlamaLogitBias> = self
            .biases(n_vocab)
            .map(|(token, bias)| LlamaLogitBias::new(LlamaToken(token), bias))
            .collect();
        if !bias.is_empty() {
            chain.push(LlamaSampler::logit_bias(n_vocab, &bias));
        }
        if self.penalized() {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                defaults::PENALTY_LAST_N,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            if self.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(self.min_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist(self.seed));
        }
        LlamaSampler::chain_simple(chain)
    }
}

/// Parses a GBNF grammar into a sampler (llama.cpp's parser; its errors are caught by the shim).
pub(crate) fn compile_grammar(model: &LlamaModel, gbnf: &str) -> Result<LlamaSampler> {
    LlamaSampler::grammar(model, gbnf, "root").map_err(|e| {
        Error::invalid(
            "response_format",
            format!("The response format's grammar does not compile: {e}"),
        )
    })
}

/// A request's sampler. With a grammar it samples as llama.cpp's common sampler does: the chain
/// picks a token from the unconstrained candidates, the grammar checks that one token, and only
/// if it is rejected is the grammar applied to the whole vocabulary (a full scan per token would
/// hold back every slot of the batch). No token the grammar rejects is ever accepted into it:
/// llama.cpp throws or aborts the process on that.
pub(crate) struct Sampler {
    chain: LlamaSampler,
    /// Set when the chain only biases and takes the greedy pick: the pick is then read straight
    /// from the logits, without llama.cpp's candidate array (n_vocab entries filled per token,
    /// about 5% of a step at 8 slots).
    argmax: Option<Argmax>,
    grammar: Option<LlamaSampler>,
    /// The parameter the grammar comes from, named when it cannot be satisfied.
    constraint: &'static str,
}

impl Sampler {
    /// The next token from batch row `at`; an error when the grammar allows no token the chain
    /// can pick (an impossible constraint ends the request, never the process).
    pub(crate) fn sample(&mut self, ctx: &LlamaContext<'_>, at: i32) -> Result<LlamaToken> {
        // The chain's pick from the unconstrained candidates, and the grammar it must pass.
        let (picked, grammar) = match (&mut self.argmax, &mut self.grammar) {
            (Some(argmax), None) => {
                let token = argmax.pick(ctx.get_logits_ith(at));
                self.chain.accept(token);
                return Ok(token);
            }
            (None, None) => return Ok(self.chain.sample(ctx, at)),
            (Some(argmax), Some(grammar)) => (Some(argmax.pick(ctx.get_logits_ith(at))), grammar),
            (None, Some(grammar)) => {
                let mut candidates = ctx.token_data_array_ith(at);
                candidates.apply_sampler(&mut self.chain);
                (candidates.selected_token(), grammar)
            }
        };
        let mut token = picked.filter(|&t| grammar_allows(grammar, t));
        if token.is_none() {
            let mut candidates = ctx.token_data_array_ith(at);
            candidates.apply_sampler(grammar);
            candidates.apply_sampler(&mut self.chain);
            token = candidates
                .selected_token()
                .filter(|&t| grammar_allows(grammar, t));
        }
        let constraint = self.constraint;
        let unsatisfiable = || {
            let what = if constraint == "tools" {
                "The tool-call format"
            } else {
                "The response format"
            };
            Error::invalid(
                constraint,
                format!("{what} cannot be satisfied with these sampling parameters: no token the model may emit continues it."),
            )
        };
        let token = token.ok_or_else(unsatisfiable)?;
        grammar.try_accept(token).map_err(|_| unsatisfiable())?;
        self.chain.accept(token);
        Ok(token)
    }
}

/// Greedy decoding read from the logits in place: llama.cpp's logit bias and greedy samplers,
/// without their n_vocab-entry candidate array.
struct Argmax {
    bias: Vec<(i32, f32)>,
    /// The logits with the bias added (only when there is one): the context's are read-only.
    biased: Vec<f32>,
}

impl Argmax {
    fn pick(&mut self, logits: &[f32]) -> LlamaToken {
        let logits = if self.bias.is_empty() {
            logits
        } else {
            self.biased.clear();
            self.biased.extend_from_slice(logits);
            for &(token, bias) in &self.bias {
                if let Some(logit) = self.biased.get_mut(token as usize) {
                    *logit += bias;
                }
            }
            &self.biased
        };
        LlamaToken(first_max(logits) as i32)
    }
}

/// llama.cpp's greedy choice: the first logit that no later one exceeds, scanning from the first
/// (a NaN never wins, and a NaN in first place is kept). Found as the highest value, kept per
/// lane so that the compiler vectorizes it, then its first place: 4 to 5 times faster than one
/// running index over a 49k vocabulary.
fn first_max(logits: &[f32]) -> usize {
    const LANES: usize = 16;
    let Some(&first) = logits.first().filter(|l| !l.is_nan()) else {
        return 0;
    };
    let mut lanes = [first; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (max, &logit) in lanes.iter_mut().zip(chunk) {
            if logit > *max {
                *max = logit;
            }
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(first, |max, &l| if l > max { l } else { max });
    let mut at = 0;
    for chunk in logits.chunks(LANES) {
        if chunk.iter().fold(false, |hit, &l| hit | (l == max)) {
            return at + chunk.iter().position(|&l| l == max).unwrap_or(0);
        }
        at += chunk.len();
    }
    0
}

/// Whether the grammar, in its current state, lets `token` come next.
pub(crate) fn grammar_allows(grammar: &mut LlamaSampler, token: LlamaToken) -> bool {
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
    one.apply_sampler(grammar);
    one.data.first().is_some_and(|d| d.logit().is_finite())
}

/// A seed for requests that gave none: different per call.
fn random_seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ChatMessage;

    /// The in-place greedy pick equals llama.cpp's logit bias + greedy chain, ties, NaN and
    /// infinities included.
    #[test]
    fn the_greedy_pick_is_llama_cpps() {
        // Not a multiple of the scan's 16 lanes: the tail is read apart.
        let n = 1000usize;
        let mut state = 0x2545_f491_u32;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut cases: Vec<Vec<f32>> = (0..200)
            .map(|_| (0..n).map(|_| (random() % 64) as f32 / 8.0 - 4.0).collect())
            .collect();
        cases.push(vec![f32::NAN; n]);
        cases.push(vec![f32::NEG_INFINITY; n]);
        let mut nan_first = vec![1.0; n];
        nan_first[0] = f32::NAN;
        cases.push(nan_first);
        let mut nan_later = vec![1.0; n];
        nan_later[7] = f32::NAN;
        nan_later[9] = 2.0;
        cases.push(nan_later);
        let mut infinite = vec![0.0; n];
        infinite[500] = f32::INFINITY;
        cases.push(infinite);
        let mut last = vec![0.0; n];
        last[n - 1] = 1.0;
        cases.push(last);
        let biases: [&[(i32, f32)]; 4] = [
            &[],
            &[(3, 100.0)],
            &[(0, -100.0), (2, -100.0), (999, 0.125)],
            &[(5, 1.5), (5, 2.5)],
        ];
        for (k, logits) in cases.iter().enumerate() {
            for bias in biases {
                let mut chain = Vec::new();
                if !bias.is_empty() {
                    let bias: Vec<LlamaLogitBias> = bias
                        .iter()
                        .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t), b))
                        .collect();
                    chain.push(LlamaSampler::logit_bias(n as i32, &bias));
                }
                chain.push(LlamaSampler::greedy());
                let mut chain = LlamaSampler::chain_simple(chain);
                let mut candidates = LlamaTokenDataArray::from_iter(
                    logits
                        .iter()
                        .enumerate()
                        .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                    false,
                );
                candidates.apply_sampler(&mut chain);
                let mut argmax = Argmax {
                    bias: bias.to_vec(),
                    biased: Vec::new(),
                };
                assert_eq!(
                    Some(argmax.pick(logits)),
                    candidates.selected_token(),
                    "case {k}, bias {bias:?}"
                );
            }
        }
    }

    #[test]
    fn defaults_and_seeds() {
        let mut req = ChatCompletionRequest::new("m", vec![ChatMessage::user("x")]);
        let p = SamplingParams::from_request(&req, 0);
        assert_eq!(
            (p.temperature, p.top_k, p.min_p),
            (defaults::TEMPERATURE, defaults::TOP_K, defaults::MIN_P)
        );
        req.seed = Some(7);
        assert_eq!(SamplingParams::from_request(&req, 0).seed, 7);
        assert_eq!(SamplingParams::from_request(&req, 2).seed, 9);
    }
}
