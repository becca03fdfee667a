//! Legacy text completions (`completions.create`) on the real SmolLM2: prompts of every shape,
//! batches of prompts with `n`, streamed equals whole, echo, log probabilities in the legacy
//! shape, the default budget of 16 tokens, and the errors that name their field.

mod common;

use std::sync::Arc;

use common::*;
use modelservice::{CompletionPrompt, CompletionRequest, FinishReason, Registry};
use serde_json::{json, Value};

const MODEL: &str = "cmpl/smol";
const PROMPT: &str = "The capital of France is";

fn greedy_completion(
    prompt: impl Into<CompletionPrompt>,
    max_tokens: Option<u32>,
) -> CompletionRequest {
    let mut req = CompletionRequest::new(MODEL, prompt);
    req.temperature = Some(0.0);
    req.max_tokens = max_tokens;
    req
}

fn registry() -> Arc<Registry> {
    Arc::new(registry_with(MODEL))
}

#[test]
fn prompts_of_every_shape_complete_the_same_text() {
    let registry = registry();
    let whole = registry
        .completion_blocking(greedy_completion(PROMPT, None))
        .unwrap();
    assert!(whole.id.starts_with("cmpl-"), "{}", whole.id);
    assert_eq!(whole.object, "text_completion");
    assert_eq!(whole.model, MODEL);
    let choice = &whole.choices[0];
    assert!(!choice.text.is_empty());
    assert!(choice.logprobs.is_none());
    // No `max_tokens`: OpenAI's default of 16 tokens, then `length`.
    let usage = whole.usage.unwrap();
    assert_eq!(usage.completion_tokens, 16, "{:?}", choice.text);
    assert_eq!(choice.finish_reason, Some(FinishReason::Length));
    // No chat template: the prompt is exactly the text's tokens.
    let tokens = registry.tokenize(MODEL, PROMPT).unwrap();
    assert_eq!(usage.prompt_tokens as usize, tokens.len());
    println!("{PROMPT:?} -> {:?}", choice.text);

    // The same prompt as token ids, alone and in a list, gives the same text.
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    let by_ids = registry
        .completion_blocking(greedy_completion(
            CompletionPrompt::Tokens(ids.clone()),
            None,
        ))
        .unwrap();
    assert_eq!(by_ids.choices[0].text, choice.text);
    let by_lists = registry
        .completion_blocking(greedy_completion(
            CompletionPrompt::TokenLists(vec![ids.clone(), ids]),
            None,
        ))
        .unwrap();
    assert_eq!(by_lists.choices.len(), 2);
    assert!(by_lists.choices.iter().all(|c| c.text == choice.text));
    assert_eq!(
        by_lists.usage.unwrap().prompt_tokens,
        2 * usage.prompt_tokens
    );
}

#[test]
fn a_batch_of_prompts_is_prompt_major_then_n() {
    let registry = registry();
    let prompts = ["The capital of France is", "One, two, three,"];
    let alone: Vec<String> = prompts
        .iter()
        .map(|p| {
            registry
                .completion_blocking(greedy_completion(*p, Some(8)))
                .unwrap()
                .choices[0]
                .text
                .clone()
        })
        .collect();
    assert_ne!(alone[0], alone[1]);
    let mut req = greedy_completion(CompletionPrompt::from(prompts.to_vec()), Some(8));
    req.n = Some(2);
    let batch = registry.completion_blocking(req).unwrap();
    let texts: Vec<(u32, &str)> = batch
        .choices
        .iter()
        .map(|c| (c.index, c.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (0, alone[0].as_str()),
            (1, alone[0].as_str()),
            (2, alone[1].as_str()),
            (3, alone[1].as_str())
        ]
    );
}

#[test]
fn a_batch_of_prompts_sums_their_cached_tokens() {
    let registry = registry();
    // A repeat takes each prompt whole from the cache: every choice's slot kept its prompt's
    // logits.
    let prompts = [
        "Rivers run to the sea. ".repeat(20),
        "Deserts are dry and wide. ".repeat(20),
    ];
    let ask = || {
        let mut req = greedy_completion(CompletionPrompt::Texts(prompts.to_vec()), Some(2));
        req.n = Some(2);
        registry.completion_blocking(req).unwrap().usage.unwrap()
    };
    assert_eq!(ask().prompt_tokens_details.cached_tokens, 0);
    let again = ask();
    // Per prompt, the least over its `n` choices; summed over the prompts.
    assert_eq!(
        again.prompt_tokens_details.cached_tokens, again.prompt_tokens,
        "{again:?}"
    );
}

#[test]
fn streamed_chunks_reassemble_to_the_whole_completion() {
    let registry = registry();
    let body = json!({
        "model": MODEL, "prompt": ["Once upon a time", "def add(a, b):"],
        "temperature": 0, "max_tokens": 12, "logprobs": 1,
    });
    let whole: Value = serde_json::from_str(
        &registry
            .call_blocking("completions.create", &body.to_string())
            .unwrap(),
    )
    .unwrap();
    let mut streamed = vec![String::new(); 2];
    let mut tokens = vec![Vec::<String>::new(); 2];
    let mut finish = vec![Value::Null; 2];
    let mut usage = None;
    let mut with_usage = body.clone();
    with_usage["stream_options"] = json!({"include_usage": true});
    let mut stream = registry
        .stream("completions.create", &with_usage.to_string())
        .unwrap();
    let id = stream.id().to_owned();
    while let Some(chunk) = stream.next_blocking() {
        let chunk: Value = serde_json::from_str(&chunk.unwrap()).unwrap();
        assert_eq!(chunk["id"], id.as_str());
        assert_eq!(chunk["object"], "text_completion");
        if !chunk["usage"].is_null() {
            assert!(chunk["choices"].as_array().unwrap().is_empty());
            usage = Some(chunk["usage"].clone());
        }
        for c in chunk["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            streamed[i].push_str(c["text"].as_str().unwrap());
            for t in c["logprobs"]["tokens"].as_array().unwrap() {
                tokens[i].push(t.as_str().unwrap().to_owned());
            }
            if !c["finish_reason"].is_null() {
                finish[i] = c["finish_reason"].clone();
            }
        }
    }
    for i in 0..2 {
        let choice = &whole["choices"][i];
        assert_eq!(choice["text"], streamed[i].as_str());
        assert_eq!(choice["finish_reason"], finish[i]);
        assert_eq!(choice["logprobs"]["tokens"], json!(tokens[i]));
    }
    let usage = usage.unwrap();
    for count in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usage[count], whole["usage"][count], "{count}");
    }
    // The streamed request repeats the whole one: each choice's slot kept the prompt's logits.
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"],
        usage["prompt_tokens"]
    );
}

#[test]
fn legacy_logprobs_spell_the_text() {
    let registry = registry();
    let mut req = greedy_completion("Name three colours:", Some(10));
    req.logprobs = Some(3);
    let whole = registry.completion_blocking(req).unwrap();
    let choice = &whole.choices[0];
    let lp = choice.logprobs.as_ref().unwrap();
    let n = whole.usage.unwrap().completion_tokens as usize;
    assert_eq!(lp.tokens.len(), n);
    assert_eq!(lp.token_logprobs.len(), n);
    assert_eq!(lp.top_logprobs.len(), n);
    assert_eq!(lp.tokens.concat(), choice.text);
    let mut offset = 0;
    for i in 0..n {
        assert_eq!(lp.text_offset[i], offset);
        offset += lp.tokens[i].chars().count() as u32;
        let top = &lp.top_logprobs[i];
        assert!((3..=4).contains(&top.len()), "{top:?}");
        // Greedy: the chosen token is the most likely one, and it is in the map.
        let best = top.values().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(top[&lp.tokens[i]], lp.token_logprobs[i]);
        assert!((best - lp.token_logprobs[i]).abs() < 1e-6, "{top:?}");
        let mass: f32 = top.values().map(|l| l.exp()).sum();
        assert!(mass <= 1.0 + 1e-4);
    }
}

#[test]
fn echo_stop_and_n_with_a_seed() {
    let registry = registry();
    let mut req = greedy_completion(PROMPT, Some(6));
    req.echo = Some(true);
    let echoed = registry.completion_blocking(req).unwrap();
    let plain = registry
        .completion_blocking(greedy_completion(PROMPT, Some(6)))
        .unwrap();
    assert_eq!(
        echoed.choices[0].text,
        format!("{PROMPT}{}", plain.choices[0].text)
    );
    // Echoed token ids are the prompt's text.
    let ids: Vec<u32> = registry
        .tokenize(MODEL, PROMPT)
        .unwrap()
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let mut req = greedy_completion(CompletionPrompt::Tokens(ids), Some(1));
    req.echo = Some(true);
    let text = &registry.completion_blocking(req).unwrap().choices[0].text;
    assert!(text.starts_with(PROMPT), "{text:?}");

    // A stop sequence ends the text before it.
    let first_word = plain.choices[0]
        .text
        .trim_start()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let mut req = greedy_completion(PROMPT, Some(6));
    req.stop = Some(modelservice::StopSequences::One(first_word.clone()));
    let stopped = registry.completion_blocking(req).unwrap();
    assert!(!stopped.choices[0].text.contains(&first_word));
    assert_eq!(stopped.choices[0].finish_reason, Some(FinishReason::Stop));

    // n with a seed at temperature 1: reproducible, and choice i samples with seed + i.
    let mut req = CompletionRequest::new(MODEL, "Once upon a time");
    req.n = Some(3);
    req.seed = Some(42);
    req.max_tokens = Some(12);
    let a = registry.completion_blocking(req.clone()).unwrap();
    let b = registry.completion_blocking(req).unwrap();
    let texts = |c: &modelservice::Completion| -> Vec<String> {
        c.choices.iter().map(|c| c.text.clone()).collect()
    };
    assert_eq!(texts(&a), texts(&b));
    assert!(
        texts(&a).iter().any(|t| t != &a.choices[0].text),
        "{:?}",
        texts(&a)
    );
}

#[test]
fn errors_name_their_field() {
    let registry = registry();
    let call = |body: Value| {
        registry
            .call_blocking("completions.create", &body.to_string())
            .unwrap_err()
    };
    let base = json!({"model": MODEL, "prompt": "Hi"});
    for (extra, param, code) in [
        (json!({"suffix": "!"}), "suffix", "invalid_value"),
        (json!({"best_of": 2}), "best_of", "invalid_value"),
        (
            json!({"echo": true, "logprobs": 1}),
            "echo",
            "invalid_value",
        ),
        (json!({"logprobs": 6}), "logprobs", "invalid_value"),
        (json!({"prompt": [1, 99999999]}), "prompt", "invalid_value"),
        (
            json!({"prompt": "x ".repeat(1100)}),
            "prompt",
            "context_length_exceeded",
        ),
        (
            json!({"max_tokens": 5000}),
            "max_tokens",
            "context_length_exceeded",
        ),
        (json!({"messages": []}), "messages", "invalid_value"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let err = call(body);
        assert_eq!(err.status(), 400, "{extra}: {err}");
        assert_eq!(
            (err.param(), err.code()),
            (Some(param), Some(code)),
            "{extra}: {err}"
        );
    }
    let err = call(json!({"model": "nope", "prompt": "Hi"}));
    assert_eq!(err.code(), Some("model_not_found"));
}

/// Hostile prompts end in an answer or a typed 4xx, and the service keeps serving: token ids at
/// the edges of the vocabulary, a prompt of end-of-text tokens only, a batch asking for more
/// sequences than the queue holds.
#[test]
fn hostile_prompts_end_in_an_answer_or_a_4xx() {
    let registry = registry();
    let n_vocab = 49_152u32; // SmolLM2's vocabulary
    let call = |body: Value| registry.call_blocking("completions.create", &body.to_string());
    let ok =
        call(json!({"model": MODEL, "prompt": [0, n_vocab - 1, 1, 2], "max_tokens": 2})).unwrap();
    assert!(ok.contains("text_completion"), "{ok}");
    // Only end-of-text tokens: the model may end at once; either way a choice comes back.
    let eos: Value = serde_json::from_str(
        &call(json!({"model": MODEL, "prompt": [2, 2, 2], "max_tokens": 3})).unwrap(),
    )
    .unwrap();
    assert_eq!(eos["choices"].as_array().unwrap().len(), 1, "{eos}");
    for prompt in [json!([n_vocab]), json!([[1], [u32::MAX]]), json!([[]])] {
        let err = call(json!({"model": MODEL, "prompt": prompt})).unwrap_err();
        assert_eq!(
            (err.status(), err.param()),
            (400, Some("prompt")),
            "{prompt}: {err}"
        );
    }
    // 64 prompts × 16 choices: more sequences than the service can ever hold, so no retry helps.
    let many = vec!["Hi"; 64];
    let err = call(json!({"model": MODEL, "prompt": many, "n": 16, "max_tokens": 1})).unwrap_err();
    assert_eq!((err.status(), err.param()), (400, Some("prompt")), "{err}");
    let err = call(json!({"model": MODEL, "prompt": vec!["Hi"; 65]})).unwrap_err();
    assert_eq!(err.param(), Some("prompt"), "{err}");
    // Still serving.
    let again = registry
        .completion_blocking(greedy_completion(PROMPT, Some(2)))
        .unwrap();
    assert_eq!(again.usage.unwrap().completion_tokens, 2);
}

/// The async Rust client: `client.completions().create(...)` and its stream give the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_serves_text_completions() {
    let client = modelservice::Client::with_registry(registry());
    let whole = client
        .completions()
        .create(greedy_completion(PROMPT, Some(6)))
        .await
        .unwrap();
    let mut stream = client
        .completions()
        .create_stream(greedy_completion(PROMPT, Some(6)))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next_chunk().await {
        for c in chunk.unwrap().choices {
            text.push_str(&c.text);
        }
    }
    assert_eq!(text, whole.choices[0].text);
}
