//! Sampling: the defaults (one place), and the llama.cpp sampler chain built from a request.

use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
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
        let n_vocab = model.n_vocab();
        Ok(Sampler {
            chain: self.chain(n_vocab),
            pick: self.pick(n_vocab),
            logits: Logits::new(self.biases(n_vocab).collect()),
            grammar,
            constraint,
        })
    }

    /// Which candidates the chain needs: penalties may raise any token, so they need all; else
    /// greedy needs only the highest logit, and a draw that starts with top-k only the k highest.
    fn pick(&self, n_vocab: i32) -> Pick {
        match usize::try_from(self.top_k) {
            _ if self.penalized() => Pick::All,
            _ if self.temperature <= 0.0 => Pick::Argmax,
            Ok(k @ 1..=MAX_TOP_K_PICKED) if k < n_vocab as usize => Pick::TopK(k),
            _ => Pick::All,
        }
    }

    /// Whether the chain has llama.cpp's penalties (they rescore the tokens seen so far).
    fn penalized(&self) -> bool {
        self.repeat_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0
    }

    /// The logit biases on tokens of the vocabulary (llama.cpp's own sampler asserts on others).
    fn biases(&self, n_vocab: i32) -> impl Iterator<Item = (i32, f32)> + '_ {
        self.logit_bias
            .iter()
            .copied()
            .filter(move |(token, _)| (0..n_vocab).contains(token))
    }

    /// Builds the chain: penalties, then greedy at temperature 0, else top-k, top-p, min-p,
    /// temperature and a seeded draw. The logit bias comes first, added to the logits by
    /// [`Logits`] (as llama.cpp's logit-bias sampler adds it).
    fn chain(&self, n_vocab: i32) -> LlamaSampler {
        let mut chain = Vec::new();
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
    pick: Pick,
    logits: Logits,
    grammar: Option<LlamaSampler>,
    /// The parameter the grammar comes from, named when it cannot be satisfied.
    constraint: &'static str,
}

/// The largest top-k whose candidates are picked here rather than by llama.cpp (which sorts
/// larger ones another way).
const MAX_TOP_K_PICKED: usize = 128;

/// Which of the vocabulary's tokens the chain is handed. Filling llama.cpp's candidate array
/// with the whole vocabulary, for a chain that keeps one token or a few dozen, cost about
/// 100-200 us a token (49k entries), 5% of a step at 8 slots.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    /// Greedy without penalties: the highest logit, read in place.
    Argmax,
    /// A draw that starts with top-k, without penalties: the k highest logits.
    TopK(usize),
    /// Every token (penalties can raise any of them).
    All,
}

impl Sampler {
    /// The next token from one `row` of the model's logits; an error when the grammar allows no
    /// token the chain can pick (an impossible constraint ends the request, never the process).
    pub(crate) fn sample(&mut self, row: &[f32]) -> Result<LlamaToken> {
        let Sampler {
            chain,
            pick,
            logits,
            grammar,
            constraint,
        } = self;
        let Logits {
            bias,
            bias_unique,
            biased,
            kept,
            candidates,
        } = logits;
        if *pick == Pick::Argmax && grammar.is_none() {
            // Greedy under a bias rarely needs the biased row (`max_with_bias`).
            let token = LlamaToken(max_with_bias(row, bias, *bias_unique, biased) as i32);
            chain.accept(token);
            return Ok(token);
        }
        let logits = with_bias(row, bias, biased);
        // The chain's pick from the unconstrained candidates.
        let picked = match *pick {
            Pick::Argmax => Some(LlamaToken(first_max(logits) as i32)),
            Pick::TopK(k) => {
                top_k(logits, k, kept);
                candidates.clear();
                candidates
                    .extend(kept.iter().map(|&(logit, id)| {
                        LlamaTokenData::new(LlamaToken(id as i32), logit, 0.0)
                    }));
                draw(chain, candidates, None)
            }
            Pick::All => {
                all(logits, candidates);
                draw(chain, candidates, None)
            }
        };
        let Some(grammar) = grammar.as_mut() else {
            let token = picked.ok_or_else(|| Error::internal("the sampler picked no token"))?;
            chain.accept(token);
            return Ok(token);
        };
        let mut token = picked.filter(|&t| grammar_allows(grammar, t));
        if token.is_none() {
            all(logits, candidates);
            token = draw(chain, candidates, Some(grammar)).filter(|&t| grammar_allows(grammar, t));
        }
        let constraint = *constraint;
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
        chain.accept(token);
        Ok(token)
    }
}

/// A request's logit bias and the buffers its sampling reuses from token to token.
#[derive(Default)]
struct Logits {
    bias: Vec<(i32, f32)>,
    /// No token appears twice in `bias`.
    bias_unique: bool,
    /// The logits with the bias added (only when there is one): the context's are read-only.
    biased: Vec<f32>,
    /// The top k, as (logit, token).
    kept: Vec<(f32, u32)>,
    candidates: Vec<LlamaTokenData>,
}

impl Logits {
    fn new(bias: Vec<(i32, f32)>) -> Self {
        let mut tokens: Vec<i32> = bias.iter().map(|&(t, _)| t).collect();
        tokens.sort_unstable();
        tokens.dedup();
        Logits {
            bias_unique: tokens.len() == bias.len(),
            bias,
            ..Logits::default()
        }
    }
}

/// `logits` with `bias` added, as llama.cpp's logit-bias sampler adds it (into `biased`).
fn with_bias<'a>(logits: &'a [f32], bias: &[(i32, f32)], biased: &'a mut Vec<f32>) -> &'a [f32] {
    if bias.is_empty() {
        return logits;
    }
    biased.clear();
    biased.extend_from_slice(logits);
    for &(token, bias) in bias {
        if let Some(logit) = biased.get_mut(token as usize) {
            *logit += bias;
        }
    }
    biased
}

/// `first_max` of `logits` with `bias` added, without copying the row (196 KiB for SmolLM2, a
/// large part of the host's work per token where the GPU decodes) when the highest unbiased
/// logit is not a biased token: every other unbiased one is then at most it, so only the biased
/// tokens can still pass it. `unique`: no token is biased twice (else the biases are added in
/// turn, on the copy, as llama.cpp adds them).
fn max_with_bias(
    logits: &[f32],
    bias: &[(i32, f32)],
    unique: bool,
    biased: &mut Vec<f32>,
) -> usize {
    let top = first_max(logits);
    if bias.is_empty() {
        return top;
    }
    let Some(&highest) = logits.get(top) else {
        return top;
    };
    if !unique || bias.iter().any(|&(t, _)| usize::try_from(t) == Ok(top)) {
        return first_max(with_bias(logits, bias, biased));
    }
    // As a scan from the first token chooses: the first of equals; a NaN never wins, except in
    // first place.
    let mut best = (highest, top);
    for &(token, b) in bias {
        let Some(value) = usize::try_from(token).ok().and_then(|at| logits.get(at)) else {
            continue;
        };
        let (value, at) = (value + b, token as usize);
        if at == 0 && value.is_nan() {
            return 0; // a scan keeps a NaN in first place
        }
        if value > best.0 || (value == best.0 && at < best.1) {
            best = (value, at);
        }
    }
    best.1
}

/// Every token as a candidate, in vocabulary order (as llama.cpp fills its array).
fn all(logits: &[f32], candidates: &mut Vec<LlamaTokenData>) {
    candidates.clear();
    candidates.extend(
        logits
            .iter()
            .enumerate()
            .map(|(id, &logit)| LlamaTokenData::new(LlamaToken(id as i32), logit, 0.0)),
    );
}

/// Applies the grammar (if given) and the chain to `candidates`; returns the chain's pick. The
/// vector comes back (cut to what the chain kept) for the next token.
fn draw(
    chain: &mut LlamaSampler,
    candidates: &mut Vec<LlamaTokenData>,
    grammar: Option<&mut LlamaSampler>,
) -> Option<LlamaToken> {
    let mut array = LlamaTokenDataArray::new(std::mem::take(candidates), false);
    if let Some(grammar) = grammar {
        array.apply_sampler(grammar);
    }
    array.apply_sampler(chain);
    let token = array.selected_token();
    *candidates = array.data;
    token
}

/// Lanes of the vectorized scans below: the compiler turns a fixed-width inner loop over
/// independent lanes into SIMD, which a running index or a running threshold prevents.
const LANES: usize = 16;

/// llama.cpp's greedy choice: the first logit that no later one exceeds, scanning from the first
/// (a NaN never wins, and a NaN in first place is kept). Found as the highest value, kept per
/// lane, then its first place: 4 to 5 times faster than one running index over 49k logits.
fn first_max(logits: &[f32]) -> usize {
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

/// The `k` highest logits as (logit, token) in `kept`, in vocabulary order: the set llama.cpp's
/// top-k keeps of the whole vocabulary (ties at the cut go to the lower token id; NaN never
/// counts). Once `k` are kept, a block of logits is read only if one of them beats the lowest
/// kept; the kept are cut back to `k` whenever they reach `2k`.
fn top_k(logits: &[f32], k: usize, kept: &mut Vec<(f32, u32)>) {
    kept.clear();
    if k == 0 {
        return;
    }
    let by_rank = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let mut floor: Option<f32> = None;
    for (block, chunk) in logits.chunks(LANES).enumerate() {
        if let Some(floor) = floor {
            if !chunk.iter().fold(false, |hit, &l| hit | (l > floor)) {
                continue;
            }
        }
        for (j, &logit) in chunk.iter().enumerate() {
            let keep = match floor {
                Some(floor) => logit > floor,
                None => !logit.is_nan(),
            };
            if !keep {
                continue;
            }
            kept.push((logit, (block * LANES + j) as u32));
            if kept.len() == if floor.is_some() { 2 * k } else { k } {
                kept.select_nth_unstable_by(k - 1, by_rank);
                kept.truncate(k);
                floor = Some(kept[k - 1].0);
            }
        }
    }
    if kept.len() > k {
        kept.select_nth_unstable_by(k - 1, by_rank);
        kept.truncate(k);
    }
    kept.sort_unstable_by_key(|&(_, id)| id);
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

    use llama_cpp_2::token::logit_bias::LlamaLogitBias;

    /// A xorshift stream: reproducible logits without a dependency.
    fn numbers(mut state: u32) -> impl FnMut() -> u32 {
        move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        }
    }

    /// llama.cpp's chain over the whole vocabulary: the logit bias sampler first, then `rest`.
    fn llama_cpp_pick(
        logits: &[f32],
        bias: &[(i32, f32)],
        rest: &mut LlamaSampler,
    ) -> Option<LlamaToken> {
        let mut candidates = LlamaTokenDataArray::from_iter(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
            false,
        );
        if !bias.is_empty() {
            let bias: Vec<LlamaLogitBias> = bias
                .iter()
                .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t), b))
                .collect();
            candidates.apply_sampler(&mut LlamaSampler::logit_bias(logits.len() as i32, &bias));
        }
        candidates.apply_sampler(rest);
        candidates.selected_token()
    }

    const BIASES: [&[(i32, f32)]; 4] = [
        &[],
        &[(3, 100.0)],
        &[(0, -100.0), (2, -100.0), (999, 0.125)],
        &[(5, 1.5), (5, 2.5)],
    ];

    /// The in-place greedy pick equals llama.cpp's logit bias + greedy chain, ties, NaN and
    /// infinities included.
    #[test]
    fn the_greedy_pick_is_llama_cpps() {
        // Not a multiple of the scans' 16 lanes: the tail is read apart.
        let n = 1000usize;
        let mut random = numbers(0x2545_f491);
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
        for (k, logits) in cases.iter().enumerate() {
            for bias in BIASES {
                let mut biased = Vec::new();
                let ours = first_max(with_bias(logits, bias, &mut biased));
                let mut greedy = LlamaSampler::greedy();
                assert_eq!(
                    Some(LlamaToken(ours as i32)),
                    llama_cpp_pick(logits, bias, &mut greedy),
                    "case {k}, bias {bias:?}"
                );
                let unique = Logits::new(bias.to_vec()).bias_unique;
                assert_eq!(
                    max_with_bias(logits, bias, unique, &mut biased),
                    ours,
                    "case {k}, bias {bias:?}: without the copy"
                );
            }
            // Biases on the highest logit, on ties with it before and after it, and past it.
            let top = first_max(logits);
            let value = logits[top];
            let tie_before = logits.iter().position(|&l| l < value).filter(|&t| t < top);
            let mut targeted = vec![
                vec![(top as i32, -100.0)],
                vec![(top as i32, 0.5)],
                vec![(0, f32::NAN)],
            ];
            for (t, l) in logits.iter().enumerate().step_by(97) {
                targeted.push(vec![(t as i32, value - l)]);
                targeted.push(vec![(t as i32, value - l + 0.125), (top as i32, -1.0)]);
            }
            if let Some(t) = tie_before {
                targeted.push(vec![(t as i32, value - logits[t])]);
            }
            for bias in &targeted {
                let mut biased = Vec::new();
                let copied = first_max(with_bias(logits, bias, &mut biased));
                let unique = Logits::new(bias.clone()).bias_unique;
                assert_eq!(
                    max_with_bias(logits, bias, unique, &mut biased),
                    copied,
                    "case {k}, bias {bias:?}"
                );
            }
        }
    }

    /// The k kept are the k highest, ties at the cut to the lower id, NaN never.
    #[test]
    fn top_k_keeps_the_highest_and_ties_to_the_lower_id() {
        let mut random = numbers(0x9e37_79b9);
        for case in 0..300 {
            let n = 200 + (random() % 900) as usize;
            let levels = if case % 2 == 0 { 16 } else { 1 << 20 };
            let mut logits: Vec<f32> = (0..n).map(|_| (random() % levels) as f32).collect();
            if case % 3 == 0 {
                logits[(random() as usize) % n] = f32::NAN;
            }
            let k = 1 + (random() % 130) as usize;
            let mut expected: Vec<(f32, u32)> = logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan())
                .map(|(i, &l)| (l, i as u32))
                .collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(k);
            expected.sort_by_key(|&(_, id)| id);
            let mut kept = Vec::new();
            top_k(&logits, k, &mut kept);
            assert_eq!(kept, expected, "case {case}: n {n}, k {k}");
        }
    }

    /// A draw from the top k picked here equals llama.cpp's chain over the whole vocabulary,
    /// seed for seed, token after token (logits without ties: llama.cpp orders tied ones as its
    /// sort happens to leave them).
    #[test]
    fn a_top_k_draw_is_llama_cpps() {
        let n = 4000usize;
        let mut random = numbers(0x1234_5677);
        for bias in BIASES {
            for (top_k_param, top_p, min_p, temperature) in [
                (40, 1.0, 0.05, 1.0),
                (5, 0.9, 0.0, 0.7),
                (128, 0.95, 0.1, 1.5),
            ] {
                let params = SamplingParams {
                    temperature,
                    top_p,
                    top_k: top_k_param,
                    min_p,
                    repeat_penalty: 1.0,
                    presence_penalty: 0.0,
                    frequency_penalty: 0.0,
                    seed: 42,
                    logit_bias: bias.to_vec(),
                    grammar: None,
                    logprobs: None,
                    tool_grammar: None,
                };
                assert_eq!(params.pick(n as i32), Pick::TopK(top_k_param as usize));
                let mut ours = params.chain(n as i32);
                let mut theirs = params.chain(n as i32);
                let mut logits = Logits::new(bias.to_vec());
                for draw_no in 0..100 {
                    // Distinct values, shuffled.
                    let mut raw: Vec<f32> = (0..n).map(|i| i as f32 / 400.0).collect();
                    for i in (1..n).rev() {
                        raw.swap(i, random() as usize % (i + 1));
                    }
                    let biased = with_bias(&raw, &logits.bias, &mut logits.biased);
                    top_k(biased, top_k_param as usize, &mut logits.kept);
                    logits.candidates.clear();
                    logits.candidates.extend(
                        logits
                            .kept
                            .iter()
                            .map(|&(l, id)| LlamaTokenData::new(LlamaToken(id as i32), l, 0.0)),
                    );
                    let picked = draw(&mut ours, &mut logits.candidates, None);
                    assert_eq!(
                        picked,
                        llama_cpp_pick(&raw, bias, &mut theirs),
                        "draw {draw_no}, top_k {top_k_param}, bias {bias:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn penalties_and_large_top_k_read_every_token() {
        let mut req = ChatCompletionRequest::new("m", vec![ChatMessage::user("x")]);
        assert_eq!(
            SamplingParams::from_request(&req, 0).pick(49152),
            Pick::TopK(40)
        );
        req.temperature = Some(0.0);
        assert_eq!(
            SamplingParams::from_request(&req, 0).pick(49152),
            Pick::Argmax
        );
        req.frequency_penalty = Some(0.5);
        assert_eq!(SamplingParams::from_request(&req, 0).pick(49152), Pick::All);
        req.frequency_penalty = None;
        req.temperature = Some(1.0);
        req.top_k = Some(0);
        assert_eq!(SamplingParams::from_request(&req, 0).pick(49152), Pick::All);
        req.top_k = Some(1000);
        assert_eq!(SamplingParams::from_request(&req, 0).pick(49152), Pick::All);
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
