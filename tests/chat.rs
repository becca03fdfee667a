//! Chat completions on the real models: determinism, streaming, usage, stop, max_tokens,
//! batching, cancellation, prefix reuse, errors.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use modelservice::{
    ChatCompletionRequest, ChatMessage, Error, FinishReason, Registry, Role, StopSequences,
    StreamOptions, Usage,
};

#[test]
fn completions_on_both_models_are_deterministic_when_asked() {
    let registry = registry_with("chat/smol");
    let mut gemma = spec("chat/gemma", gemma3());
    gemma.context_length = Some(512);
    registry.deploy(gemma).unwrap();

    for model in ["chat/smol", "chat/gemma"] {
        let req = greedy(model, "What is the capital of France?", 24);
        let a = registry.chat_blocking(req.clone()).unwrap();
        let b = registry.chat_blocking(req).unwrap();
        assert!(!content(&a).trim().is_empty(), "{model} answered nothing");
        assert_eq!(
            content(&a),
            content(&b),
            "{model}: temperature 0 must repeat"
        );
        assert_eq!(a.object, "chat.completion");
        assert_eq!(a.model, model);
        assert!(a.id.starts_with("chatcmpl-") && a.id != b.id);
        assert_eq!(a.choices[0].message.role, Role::Assistant);

        // A seed makes sampling at temperature > 0 reproducible.
        let mut seeded = greedy(model, "Tell me a short story.", 32);
        seeded.temperature = Some(1.0);
        seeded.seed = Some(1234);
        let s1 = registry.chat_blocking(seeded.clone()).unwrap();
        let s2 = registry.chat_blocking(seeded).unwrap();
        assert_eq!(content(&s1), content(&s2), "{model}: same seed, same text");
    }
}

#[test]
fn stream_joins_to_the_whole_answer_and_usage_is_exact() {
    let registry = registry_with("chat/stream");
    let req = greedy("chat/stream", "Describe the sea in two sentences.", 40);
    let whole = registry.chat_blocking(req.clone()).unwrap();

    let mut streamed_req = req.clone();
    streamed_req.stream = Some(true);
    streamed_req.stream_options = Some(StreamOptions {
        include_usage: Some(true),
    });
    let mut stream = registry.chat_stream(streamed_req).unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next_blocking() {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(
        chunks[0].choices[0].delta.role,
        Some(Role::Assistant),
        "the first delta carries the role"
    );
    let text: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.clone())
        .collect();
    assert_eq!(text, content(&whole));
    assert!(chunks
        .iter()
        .all(|c| c.object == "chat.completion.chunk" && c.id == chunks[0].id));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(
        finish.choices[0].finish_reason,
        Some(whole.choices[0].finish_reason)
    );
    let usage_chunk = chunks.last().unwrap();
    assert!(usage_chunk.choices.is_empty());
    // The streamed request repeats the whole one: its slot kept the prompt's logits, so the
    // whole prompt came from the cache.
    let (prompt, completion) = (whole.usage.prompt_tokens, whole.usage.completion_tokens);
    assert_eq!(
        usage_chunk.usage,
        Some(Usage::new(prompt, completion, prompt))
    );

    // The prompt count is the tokenizer's count of the rendered ChatML prompt (SmolLM2's template
    // adds its default system message).
    let rendered = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                    <|im_start|>user\nDescribe the sea in two sentences.<|im_end|>\n<|im_start|>assistant\n";
    let tokens = registry.tokenize("chat/stream", rendered).unwrap();
    assert_eq!(whole.usage.prompt_tokens as usize, tokens.len());
    assert_eq!(
        registry.count_prompt_tokens(&req).unwrap(),
        whole.usage.prompt_tokens
    );
    assert_eq!(
        whole.usage.total_tokens,
        whole.usage.prompt_tokens + whole.usage.completion_tokens
    );
    assert!(!text.contains('\u{FFFD}'), "no split characters");
}

#[test]
fn max_tokens_and_stop_end_with_the_right_reason() {
    let registry = registry_with("chat/stop");
    let short = registry
        .chat_blocking(greedy("chat/stop", "Count from one to twenty in words.", 5))
        .unwrap();
    assert_eq!(short.choices[0].finish_reason, FinishReason::Length);
    assert_eq!(short.usage.completion_tokens, 5);

    let mut req = greedy(
        "chat/stop",
        "Count from one to twenty in words, separated by spaces.",
        60,
    );
    let free = content(&registry.chat_blocking(req.clone()).unwrap()).to_owned();
    // Stop at a word from the middle of the free answer: the text ends right before it.
    let words: Vec<&str> = free.split_whitespace().collect();
    assert!(words.len() >= 4, "answer too short to cut: {free:?}");
    let stop_word = words[words.len() / 2];
    let at = free.find(stop_word).unwrap();
    req.stop = Some(StopSequences::Many(vec![
        "@@never@@".into(),
        stop_word.into(),
    ]));
    let stopped = registry.chat_blocking(req.clone()).unwrap();
    assert_eq!(content(&stopped), &free[..at]);
    assert_eq!(stopped.choices[0].finish_reason, FinishReason::Stop);

    // Streaming never leaks any part of the stop sequence.
    req.stream = Some(true);
    let mut stream = registry.chat_stream(req).unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next_blocking() {
        text.extend(
            chunk
                .unwrap()
                .choices
                .into_iter()
                .filter_map(|c| c.delta.content),
        );
    }
    assert_eq!(text, &free[..at]);
}

#[test]
fn concurrent_requests_batch_and_match_sequential_results() {
    let mut four_slots = spec("chat/batch", smollm2());
    four_slots.slots = 4;
    four_slots.threads = Some(2);
    let registry = Arc::new(Registry::new());
    registry.deploy(four_slots).unwrap();
    let prompts = [
        "Name three fruits.",
        "What is two plus two?",
        "Write a haiku about snow.",
        "Why is the sky blue?",
    ];
    let one_by_one: Vec<String> = prompts
        .iter()
        .map(|p| content(&registry.chat_blocking(greedy("chat/batch", p, 32)).unwrap()).to_owned())
        .collect();
    let before = registry.retrieve("chat/batch").unwrap().stats;

    let together: Vec<_> = prompts
        .iter()
        .map(|p| {
            let registry = registry.clone();
            let req = greedy("chat/batch", p, 32);
            thread::spawn(move || {
                let start = Instant::now();
                let done = registry.chat_blocking(req).unwrap();
                (
                    content(&done).to_owned(),
                    start,
                    Instant::now(),
                    done.usage.completion_tokens,
                )
            })
        })
        .collect();
    let results: Vec<_> = together.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, (text, ..)) in results.iter().enumerate() {
        assert_eq!(
            text, &one_by_one[i],
            "prompt {i}: batched greedy text differs from sequential"
        );
    }
    // Their lifetimes overlap, and the engine put several sequences in one decode step.
    let latest_start = results.iter().map(|r| r.1).max().unwrap();
    let earliest_end = results.iter().map(|r| r.2).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "the four requests did not run at the same time"
    );
    let after = registry.retrieve("chat/batch").unwrap().stats;
    assert_eq!(after.peak_batch_sequences, 4);
    let generated: u64 = results.iter().map(|r| u64::from(r.3)).sum();
    let steps = after.decode_steps - before.decode_steps;
    assert!(
        steps < generated,
        "{steps} decode steps for {generated} tokens: no batching"
    );
}

#[test]
fn dropping_a_stream_frees_its_slot() {
    let mut one_slot = spec("chat/cancel", smollm2());
    one_slot.slots = 1;
    let registry = Registry::new();
    registry.deploy(one_slot).unwrap();
    let mut long = greedy(
        "chat/cancel",
        "Write a very long essay about the history of ships.",
        900,
    );
    long.stream = Some(true);
    let mut stream = registry.chat_stream(long).unwrap();
    stream.next_blocking().unwrap().unwrap();
    stream.next_blocking().unwrap().unwrap(); // first generated text: it is running
    drop(stream);
    // The only slot is free again long before 900 tokens would have been generated.
    let next = registry
        .chat_blocking(greedy("chat/cancel", "Say ok.", 4))
        .unwrap();
    assert!(!content(&next).is_empty());
    let used = registry
        .retrieve("chat/cancel")
        .unwrap()
        .usage
        .completion_tokens;
    assert!(
        used < 100,
        "{used} tokens generated: the dropped stream kept running"
    );
}

#[test]
fn a_shared_prompt_prefix_is_reused() {
    let registry = registry_with("chat/prefix");
    let system = "You are a careful assistant. Answer in one short sentence. ".repeat(8);
    let ask = |q: &str| {
        let mut req = ChatCompletionRequest::new(
            "chat/prefix",
            vec![ChatMessage::system(system.clone()), ChatMessage::user(q)],
        );
        req.temperature = Some(0.0);
        req.max_tokens = Some(8);
        registry.chat_blocking(req).unwrap()
    };
    let first = ask("What is ice?");
    assert_eq!(first.usage.prompt_tokens_details.cached_tokens, 0);
    let reused_before = registry
        .retrieve("chat/prefix")
        .unwrap()
        .stats
        .prompt_tokens_reused;
    let second = ask("What is fire?");
    let reused = registry
        .retrieve("chat/prefix")
        .unwrap()
        .stats
        .prompt_tokens_reused
        - reused_before;
    assert!(
        reused as u32 > first.usage.prompt_tokens / 2,
        "only {reused} prompt tokens reused"
    );
    // The usage says so, as OpenAI's `prompt_tokens_details.cached_tokens` does.
    assert_eq!(
        u64::from(second.usage.prompt_tokens_details.cached_tokens),
        reused
    );
}

#[test]
fn n_choices_are_parallel_sequences() {
    let registry = registry_with("chat/n");
    let mut req = greedy("chat/n", "Say something nice.", 12);
    req.n = Some(3);
    let r = registry.chat_blocking(req).unwrap();
    assert_eq!(r.choices.len(), 3);
    assert_eq!(
        r.choices.iter().map(|c| c.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // Greedy choices agree; the prompt is counted once.
    assert!(r
        .choices
        .iter()
        .all(|c| c.message.content == r.choices[0].message.content));
    let single = registry
        .count_prompt_tokens(&greedy("chat/n", "Say something nice.", 12))
        .unwrap();
    assert_eq!(r.usage.prompt_tokens, single);
    assert_eq!(r.usage.prompt_tokens_details.cached_tokens, 0);
    // On a new service, a long prompt is fed in chunks and the second choice copies what the
    // first one decoded: a copy within the request is not a cache hit.
    registry.deploy(spec("chat/n-long", smollm2())).unwrap();
    let mut long = greedy("chat/n-long", &"Tell me about rivers. ".repeat(40), 4);
    long.n = Some(2);
    let r = registry.chat_blocking(long).unwrap();
    let stats = registry.retrieve("chat/n-long").unwrap().stats;
    assert!(stats.prefix_copies > 0 && stats.prompt_tokens_reused > 0);
    assert_eq!(r.usage.prompt_tokens_details.cached_tokens, 0);
}

#[test]
fn bad_requests_get_their_error_and_the_service_keeps_serving() {
    let mut small = spec("chat/errors", smollm2());
    small.context_length = Some(64);
    let registry = Registry::new();
    registry.deploy(small).unwrap();
    let ok = || {
        registry
            .chat_blocking(greedy("chat/errors", "Hi", 4))
            .expect("still serving")
    };

    let unknown = registry
        .chat_blocking(greedy("no/such-model", "Hi", 4))
        .unwrap_err();
    assert_eq!(
        (unknown.status(), unknown.code(), unknown.param()),
        (404, Some("model_not_found"), Some("model"))
    );
    ok();

    let mut empty = greedy("chat/errors", "Hi", 4);
    empty.messages.clear();
    let e = registry.chat_blocking(empty).unwrap_err();
    assert_eq!(
        (e.status(), e.kind(), e.param()),
        (400, "invalid_request_error", Some("messages"))
    );
    ok();

    let mut hot = greedy("chat/errors", "Hi", 4);
    hot.temperature = Some(7.5);
    assert_eq!(
        registry.chat_blocking(hot).unwrap_err().param(),
        Some("temperature")
    );
    ok();

    let long = greedy("chat/errors", &"many words here ".repeat(40), 4);
    let e = registry.chat_blocking(long).unwrap_err();
    assert!(matches!(e, Error::ContextLengthExceeded { .. }), "{e:?}");
    assert_eq!(
        (e.status(), e.code(), e.param()),
        (400, Some("context_length_exceeded"), Some("messages"))
    );
    let too_much = greedy("chat/errors", "Hi", 500);
    assert_eq!(
        registry.chat_blocking(too_much).unwrap_err().param(),
        Some("max_tokens")
    );
    ok();

    let malformed =
        ChatCompletionRequest::from_json(r#"{"model": "chat/errors", "messages": "hi"}"#)
            .unwrap_err();
    assert_eq!(malformed.param(), Some("messages"));
    ok();
}

#[test]
fn a_full_queue_refuses_at_once() {
    let mut tiny = spec("chat/queue", smollm2());
    tiny.slots = 1;
    tiny.queue_size = 1;
    let registry = Registry::new();
    registry.deploy(tiny).unwrap();
    let mut running = registry
        .chat_stream(greedy("chat/queue", "Write a long poem.", 200))
        .unwrap();
    running.next_blocking().unwrap().unwrap();
    running.next_blocking().unwrap().unwrap(); // generating: the one slot is taken
    let waiting = registry.chat_stream(greedy("chat/queue", "Hi", 4)).unwrap(); // fills the queue
    let start = Instant::now();
    let refused = registry
        .chat_stream(greedy("chat/queue", "Hi", 4))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(matches!(refused, Error::Overloaded { .. }), "{refused:?}");
    assert_eq!(refused.status(), 429);
    drop(running);
    let served = waiting
        .collect_blocking()
        .expect("the queued request is served");
    assert!(!content(&served).is_empty());
}
