//! Log probabilities on the real SmolLM2: a proper distribution, greedy picks the most likely
//! token, the tokens spell the text (stop sequences included), streamed equals whole, errors.

mod common;

use common::*;
use modelservice::{ChatCompletionRequest, ChoiceLogprobs, Registry};

fn with_logprobs(top: u32) -> ChatCompletionRequest {
    let mut req = greedy("lp/smol", "Name three colours.", 24);
    req.logprobs = Some(true);
    req.top_logprobs = Some(top);
    req
}

fn entries(logprobs: &Option<ChoiceLogprobs>) -> &[modelservice::TokenLogprob] {
    logprobs.as_ref().unwrap().content.as_deref().unwrap()
}

#[test]
fn logprobs_are_a_distribution_and_spell_the_answer() {
    let registry: Registry = registry_with("lp/smol");
    let answer = registry.chat_blocking(with_logprobs(5)).unwrap();
    let choice = &answer.choices[0];
    let tokens = entries(&choice.logprobs);
    assert_eq!(tokens.len() as u32, answer.usage.completion_tokens);
    let text: String = tokens.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(Some(text), choice.message.content);
    for t in tokens {
        assert!(t.logprob <= 0.0);
        assert_eq!(t.top_logprobs.len(), 5);
        let mass: f32 = t.top_logprobs.iter().map(|a| a.logprob.exp()).sum();
        assert!(mass <= 1.0 + 1e-4, "{mass}");
        // Greedy: the chosen token is the most likely one.
        assert_eq!(t.top_logprobs[0].token, t.token);
        assert!((t.top_logprobs[0].logprob - t.logprob).abs() < 1e-6);
        assert!(t
            .top_logprobs
            .windows(2)
            .all(|w| w[0].logprob >= w[1].logprob));
    }

    // Streamed: each chunk carries its own tokens' entries; together they equal the whole.
    let mut req = with_logprobs(2);
    req.stream = Some(true);
    let mut stream = registry.chat_stream(req).unwrap();
    let mut streamed = Vec::new();
    while let Some(chunk) = stream.next_blocking() {
        for c in chunk.unwrap().choices {
            if let Some(lp) = c.logprobs {
                streamed.extend(lp.content.unwrap());
            }
        }
    }
    let whole: Vec<String> = tokens.iter().map(|t| t.token.clone()).collect();
    let streamed: Vec<String> = streamed.into_iter().map(|t| t.token).collect();
    assert_eq!(streamed, whole);

    // A stop sequence swallows its text, and the entries of its tokens with it.
    let words: Vec<&str> = choice
        .message
        .content
        .as_deref()
        .unwrap()
        .split_whitespace()
        .collect();
    let mut stopped = with_logprobs(0);
    stopped.stop = Some(modelservice::StopSequences::One(words[1].to_owned()));
    let cut = registry.chat_blocking(stopped).unwrap();
    let text: String = entries(&cut.choices[0].logprobs)
        .iter()
        .map(|t| t.token.as_str())
        .collect();
    let content = cut.choices[0].message.content.clone().unwrap();
    assert!(content.starts_with(&text) && text.len() <= content.len());

    // Not asked: no entries.
    let plain = registry.chat_blocking(greedy("lp/smol", "Hi.", 4)).unwrap();
    assert!(plain.choices[0].logprobs.is_none());
}

#[test]
fn top_logprobs_errors_name_the_field() {
    let registry = registry_with("lp/errors");
    let mut req = greedy("lp/errors", "Hi.", 4);
    req.top_logprobs = Some(2);
    let err = registry.chat_blocking(req.clone()).unwrap_err();
    assert_eq!(err.param(), Some("top_logprobs"));
    req.logprobs = Some(true);
    req.top_logprobs = Some(21);
    let err = registry.chat_blocking(req).unwrap_err();
    assert_eq!(err.param(), Some("top_logprobs"));
}
