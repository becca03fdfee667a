//! Log probabilities of output tokens (`logprobs` / `top_logprobs`): computed from the model's
//! distribution before sampling (as llama.cpp's `n_probs`), only when a request asks, and handed
//! out only once the text of their token has been emitted, so that text a stop sequence
//! swallows has no entries.

use std::collections::VecDeque;

use crate::api::{TokenLogprob, TopLogprob};

/// The log probability of `token` and of the `top` most likely tokens under `logits`;
/// `piece` gives a token's bytes.
pub(crate) fn token_logprob(
    logits: &[f32],
    token: i32,
    top: usize,
    piece: impl Fn(i32) -> Vec<u8>,
) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = max
        + logits
            .iter()
            .map(|&l| f64::from(l - max).exp())
            .sum::<f64>()
            .ln() as f32;
    let logprob = |t: i32| {
        logits
            .get(t as usize)
            .map_or(f32::NEG_INFINITY, |&l| l - log_sum)
    };
    let entry = |t: i32| {
        let bytes = piece(t);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    let mut top_tokens: Vec<i32> = Vec::new();
    if top > 0 {
        let mut ids: Vec<i32> = (0..logits.len() as i32).collect();
        let k = top.min(ids.len());
        let by_logit = |a: &i32, b: &i32| logits[*b as usize].total_cmp(&logits[*a as usize]);
        ids.select_nth_unstable_by(k - 1, by_logit);
        ids.truncate(k);
        ids.sort_by(by_logit);
        top_tokens = ids;
    }
    let (text, bytes) = entry(token);
    TokenLogprob {
        token: text,
        logprob: logprob(token),
        bytes: Some(bytes),
        top_logprobs: top_tokens
            .into_iter()
            .map(|t| {
                let (text, bytes) = entry(t);
                TopLogprob {
                    token: text,
                    logprob: logprob(t),
                    bytes: Some(bytes),
                }
            })
            .collect(),
    }
}

/// Entries whose token's text has not been emitted yet (a stop sequence may still swallow it).
#[derive(Debug, Default)]
pub(crate) struct PendingLogprobs {
    /// Each entry with the byte offset at which its token's text ends.
    entries: VecDeque<(usize, TokenLogprob)>,
    pushed: usize,
    emitted: usize,
}

impl PendingLogprobs {
    /// Records a token's entry and the length of the text it added.
    pub(crate) fn push(&mut self, entry: TokenLogprob, text_len: usize) {
        self.pushed += text_len;
        self.entries.push_back((self.pushed, entry));
    }

    /// `emitted_len` more bytes of text went out: the entries whose text is all out.
    pub(crate) fn release(&mut self, emitted_len: usize) -> Vec<TokenLogprob> {
        self.emitted += emitted_len;
        let mut out = Vec::new();
        while self
            .entries
            .front()
            .is_some_and(|(end, _)| *end <= self.emitted)
        {
            out.push(self.entries.pop_front().expect("front exists").1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_and_top_alternatives() {
        let logits = [1.0f32, 3.0, 2.0, 0.0];
        let e = token_logprob(&logits, 2, 3, |t| vec![b'a' + t as u8]);
        let total: f32 = logits.iter().map(|l| (l - 2.0 + e.logprob).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let tops: Vec<&str> = e.top_logprobs.iter().map(|t| t.token.as_str()).collect();
        assert_eq!(tops, ["b", "c", "a"]);
        assert_eq!(e.token, "c");
        assert_eq!(e.top_logprobs[1].logprob, e.logprob);
    }

    #[test]
    fn entries_wait_for_their_text() {
        let entry = |s: &str| TokenLogprob {
            token: s.into(),
            logprob: 0.0,
            bytes: None,
            top_logprobs: vec![],
        };
        let mut p = PendingLogprobs::default();
        p.push(entry("ab"), 2);
        p.push(entry("c"), 1);
        assert_eq!(p.release(1).len(), 0, "only half of `ab` is out");
        assert_eq!(p.release(1).len(), 1);
        assert_eq!(p.release(1)[0].token, "c");
    }
}
