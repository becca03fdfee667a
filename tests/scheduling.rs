//! The worker's scheduling on the real model: the oldest prompt gets its first token first, a
//! long prompt is fed in chunks that keep running streams moving, and a prefix cached in another
//! slot is copied instead of decoded again, with greedy answers unchanged.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use common::*;
use modelservice::{ChatCompletion, ChatCompletionRequest, ChatMessage, Registry};

fn with_system(
    model: &str,
    system: &str,
    question: &str,
    max_tokens: u32,
) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(
        model,
        vec![ChatMessage::system(system), ChatMessage::user(question)],
    );
    req.temperature = Some(0.0);
    req.max_tokens = Some(max_tokens);
    req
}

fn streaming(mut req: ChatCompletionRequest) -> ChatCompletionRequest {
    req.stream = Some(true);
    req
}

const SYSTEM: &str = "You are a careful assistant for a library. You answer questions about \
    books, authors and opening hours in one short, friendly sentence, and you never invent facts.";

#[test]
fn a_prefix_cached_in_a_busy_slot_is_copied_and_the_answer_is_unchanged() {
    let registry = Registry::new();
    let mut two_slots = spec("sched/copy", smollm2());
    two_slots.slots = 2;
    registry.deploy(two_slots).unwrap();
    let mut fresh = spec("sched/fresh", smollm2());
    fresh.slots = 1;
    registry.deploy(fresh).unwrap();

    let question = "When does the library open on Sundays?";
    let expected = registry
        .chat_blocking(with_system("sched/fresh", SYSTEM, question, 16))
        .unwrap();

    // Slot 0 is busy generating an answer that shares the system prompt.
    let mut busy = registry
        .chat_stream(streaming(with_system(
            "sched/copy",
            SYSTEM,
            "Who wrote the most books in your collection?",
            64,
        )))
        .unwrap();
    busy.next_blocking().unwrap().unwrap();
    busy.next_blocking().unwrap().unwrap();
    let before = registry.retrieve("sched/copy").unwrap().stats;

    let copied = registry
        .chat_blocking(with_system("sched/copy", SYSTEM, question, 16))
        .unwrap();
    let after = registry.retrieve("sched/copy").unwrap().stats;
    drop(busy);

    assert_eq!(after.prefix_copies - before.prefix_copies, 1);
    let reused = after.prompt_tokens_reused - before.prompt_tokens_reused;
    assert!(
        reused as u32 > copied.usage.prompt_tokens / 2,
        "only {reused} of {} prompt tokens came from the other slot",
        copied.usage.prompt_tokens
    );
    assert_eq!(
        u64::from(copied.usage.prompt_tokens_details.cached_tokens),
        reused
    );
    assert_eq!(expected.usage.prompt_tokens_details.cached_tokens, 0);
    assert_eq!(
        content(&copied),
        content(&expected),
        "greedy answer on a copied prefix differs from the one computed fresh"
    );
}

#[test]
fn the_oldest_prompt_gets_its_first_token_first() {
    let registry = Arc::new(Registry::new());
    registry.deploy(spec("sched/order", smollm2())).unwrap();
    // Different long prompts: each prefill takes a while, so first tokens are far apart when
    // prompts are fed one after the other, and all come together when fed in one batch.
    let topics = ["rivers", "mountains", "deserts", "forests"];
    let streams: Vec<_> = topics
        .iter()
        .map(|t| {
            let text = format!("Tell me about {t}. ").repeat(40);
            registry
                .chat_stream(streaming(greedy("sched/order", &text, 4)))
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            thread::spawn(move || {
                // The first chunk carries the role, the next one the first text.
                stream.next_blocking().unwrap().unwrap();
                stream.next_blocking().unwrap().unwrap();
                let first = start.elapsed();
                while stream.next_blocking().is_some() {}
                first
            })
        })
        .collect();
    let firsts: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for pair in firsts.windows(2) {
        assert!(
            pair[0] < pair[1],
            "first tokens did not come in arrival order: {firsts:?}"
        );
    }
}

#[test]
fn a_long_prompt_does_not_stall_a_running_stream() {
    let registry = Registry::new();
    registry.deploy(spec("sched/chunks", smollm2())).unwrap();
    let mut running = registry
        .chat_stream(streaming(greedy(
            "sched/chunks",
            "Write a long story about a lighthouse keeper.",
            48,
        )))
        .unwrap();
    running.next_blocking().unwrap().unwrap();
    running.next_blocking().unwrap().unwrap();

    // About 900 prompt tokens: fed 128 per step next to the running stream's tokens.
    let long = "Summarise the following notes about trains. ".repeat(100);
    let mut late = registry
        .chat_stream(streaming(greedy("sched/chunks", &long, 4)))
        .unwrap();
    let reader = thread::spawn(move || {
        late.next_blocking().unwrap().unwrap();
        late.next_blocking().unwrap().unwrap();
        Instant::now()
    });
    let mut arrivals = Vec::new();
    while let Some(chunk) = running.next_blocking() {
        chunk.unwrap();
        arrivals.push(Instant::now());
    }
    let late_first = reader.join().unwrap();
    let during = arrivals.iter().filter(|&&t| t < late_first).count();
    assert!(
        during >= 6,
        "the running stream got only {during} chunks while a long prompt was prefilled"
    );
}

/// A greedy one-token request for `text` with its log probabilities (exact floats to compare).
fn first_token_logprobs(model: &str, text: &str) -> ChatCompletionRequest {
    let mut req = greedy(model, text, 1);
    req.logprobs = Some(true);
    req.top_logprobs = Some(5);
    req
}

#[test]
fn a_prompt_is_decoded_in_one_step_with_its_last_token_and_repeats_exactly() {
    let registry = Registry::new();
    registry.deploy(spec("sched/tail", smollm2())).unwrap();
    let stats = || registry.retrieve("sched/tail").unwrap().stats;

    // On an idle instance a prompt, short or long, takes one step to its first token.
    for text in [
        "Name a colour.",
        &"Count the trains in this list. ".repeat(12),
    ] {
        let before = stats();
        let fresh = registry
            .chat_blocking(first_token_logprobs("sched/tail", text))
            .unwrap();
        let middle = stats();
        assert_eq!(
            middle.decode_steps - before.decode_steps,
            1,
            "steps to the first token of a {}-token prompt",
            fresh.usage.prompt_tokens
        );

        // An exact repeat starts from the logits its slot kept: nothing is decoded before its
        // first token, the whole prompt counts as cached, and its log probabilities are the
        // same floats, not merely the same greedy token.
        let repeat = registry
            .chat_blocking(first_token_logprobs("sched/tail", text))
            .unwrap();
        let after = stats();
        assert_eq!(
            after.decode_steps, middle.decode_steps,
            "steps of the repeat"
        );
        let reused = after.prompt_tokens_reused - middle.prompt_tokens_reused;
        assert_eq!(reused, u64::from(fresh.usage.prompt_tokens));
        assert_started_from_kept_logits(&repeat, &fresh);
    }

    // A prompt that shares a cached prefix (the chat template's opening) without repeating a
    // cached prompt: only its short rest is decoded, in one step with its last token.
    let before = stats();
    registry
        .chat_blocking(first_token_logprobs(
            "sched/tail",
            "Name a colour. Then a fruit.",
        ))
        .unwrap();
    let after = stats();
    assert_eq!(after.decode_steps - before.decode_steps, 1);
    assert!(after.prompt_tokens_reused > before.prompt_tokens_reused);
}

#[test]
fn a_repeat_drawn_from_kept_logits_draws_as_a_decoded_prompt_does() {
    let registry = Registry::new();
    let mut one_slot = spec("sched/draw", smollm2());
    one_slot.slots = 1;
    registry.deploy(one_slot).unwrap();
    let draw = |seed: i64| {
        let mut req = greedy("sched/draw", "Write a word.", 8);
        req.temperature = Some(1.0);
        req.seed = Some(seed);
        // Kept logits must be the model's: ones kept with this bias added would get it twice.
        req.logit_bias = Some([("28".to_owned(), 5.0)].into());
        let done = registry.chat_blocking(req).unwrap();
        let cached = done.usage.prompt_tokens_details.cached_tokens;
        (content(&done).to_owned(), cached, done.usage.prompt_tokens)
    };
    for seed in 1..=4 {
        // Another prompt in the only slot: the next draw decodes its prompt's tail.
        registry
            .chat_blocking(greedy("sched/draw", "Name a river.", 1))
            .unwrap();
        let (decoded, cached, prompt) = draw(seed);
        assert!(cached < prompt);
        let (kept, cached, prompt) = draw(seed);
        assert_eq!(
            cached, prompt,
            "the repeat did not start from the kept logits"
        );
        assert_eq!(kept, decoded, "seed {seed}");
    }
}

#[test]
fn a_repeat_copied_from_a_busy_slot_starts_from_its_logits() {
    let registry = Registry::new();
    let mut two_slots = spec("sched/repeat-copy", smollm2());
    two_slots.slots = 2;
    registry.deploy(two_slots).unwrap();
    let text = "Count the trains in this list. ".repeat(12);
    let fresh = registry
        .chat_blocking(first_token_logprobs("sched/repeat-copy", &text))
        .unwrap();
    // Slot 0 repeats the prompt (from its kept logits) and keeps generating.
    let mut busy = registry
        .chat_stream(streaming(greedy("sched/repeat-copy", &text, 64)))
        .unwrap();
    busy.next_blocking().unwrap().unwrap();
    busy.next_blocking().unwrap().unwrap();
    let before = registry.retrieve("sched/repeat-copy").unwrap().stats;
    // The other slot copies the prompt's KV cache and the logits slot 0 kept for it: nothing is
    // decoded for it, and its first token has the same log probabilities, float for float.
    let copied = registry
        .chat_blocking(first_token_logprobs("sched/repeat-copy", &text))
        .unwrap();
    let after = registry.retrieve("sched/repeat-copy").unwrap().stats;
    drop(busy);
    assert_eq!(after.prefix_copies - before.prefix_copies, 1);
    assert_started_from_kept_logits(&copied, &fresh);
}

/// `repeat` took its whole prompt from the cache, and its first token's log probabilities are
/// `fresh`'s, float for float (not merely the same greedy token).
fn assert_started_from_kept_logits(repeat: &ChatCompletion, fresh: &ChatCompletion) {
    assert_eq!(
        repeat.usage.prompt_tokens_details.cached_tokens,
        repeat.usage.prompt_tokens
    );
    assert_eq!(
        serde_json::to_string(&repeat.choices[0].logprobs).unwrap(),
        serde_json::to_string(&fresh.choices[0].logprobs).unwrap(),
        "log probabilities of the repeated prompt differ"
    );
}

/// The `n` choices of one request decode its prompt once: the others wait one step, copy the
/// prompt's KV cache with the logits of their first token, and answer as the first does
/// (one-token answers: nothing else is decoded).
#[test]
fn the_choices_of_one_request_decode_its_prompt_once() {
    let registry = Registry::new();
    registry.deploy(spec("sched/choices", smollm2())).unwrap();
    registry.deploy(spec("sched/alone", smollm2())).unwrap();
    let question = "Name three rivers of Europe and one city on each.";
    let alone = registry
        .chat_blocking(first_token_logprobs("sched/alone", question))
        .unwrap();
    let mut req = first_token_logprobs("sched/choices", question);
    req.n = Some(4);
    let before = registry.retrieve("sched/choices").unwrap().stats;
    let choices = registry.chat_blocking(req).unwrap();
    let after = registry.retrieve("sched/choices").unwrap().stats;
    let prompt = u64::from(choices.usage.prompt_tokens);
    // Choices that arrive in one step copy the first's cache; one that arrives after the first
    // has ended takes that slot's cache itself. Either way the prompt is decoded once.
    assert_eq!(
        after.prompt_tokens_reused - before.prompt_tokens_reused,
        3 * prompt
    );
    assert_eq!(after.tokens_decoded - before.tokens_decoded, prompt);
    assert_eq!(choices.choices.len(), 4);
    assert_every_choice_answers_as(
        &choices,
        &alone,
        "the first token's log probabilities differ",
    );
}

/// Every choice has `alone`'s text and log probabilities, float for float.
fn assert_every_choice_answers_as(choices: &ChatCompletion, alone: &ChatCompletion, what: &str) {
    for choice in &choices.choices {
        assert_eq!(choice.message.content, alone.choices[0].message.content);
        assert_eq!(
            serde_json::to_string(&choice.logprobs).unwrap(),
            serde_json::to_string(&alone.choices[0].logprobs).unwrap(),
            "choice {}: {what}",
            choice.index
        );
    }
}

/// A token's log probabilities do not depend on how many sequences share its step: llama.cpp
/// decodes a lone token with its row-by-column kernel and a batch of Q4_1 weights with ours
/// (`cmake/q4_1_gemm.c`), which must give the same floats. Five choices decode in steps of five
/// (tiles of 4 and 1 tokens), three in steps of three; each must match the lone answer token for
/// token. Where llama.cpp's AMX kernels take the batches instead (its one-token kernel there is
/// another), ours does not run and nothing is claimed.
#[test]
fn a_token_decoded_in_a_batch_has_the_log_probabilities_it_has_alone() {
    let registry = Registry::new();
    let mut five_slots = spec("sched/batch", smollm2());
    five_slots.slots = 5;
    five_slots.threads = Some(2);
    registry.deploy(five_slots).unwrap();
    let features = registry
        .retrieve("sched/batch")
        .unwrap()
        .cpu_backend
        .features;
    let has = |f: &str| features.iter().any(|x| x == f);
    if !has("MODELSERVICE_Q4_1_GEMM") || has("AMX_INT8") {
        eprintln!("our Q4_1 kernel does not take this machine's batches: {features:?}");
        return;
    }
    let question = "Describe the water cycle for a child.";
    let mut lone = greedy("sched/batch", question, 24);
    lone.logprobs = Some(true);
    lone.top_logprobs = Some(3);
    let alone = registry.chat_blocking(lone.clone()).unwrap();
    assert_eq!(alone.usage.completion_tokens, 24, "{}", content(&alone));
    for n in [5, 3] {
        let mut req = lone.clone();
        req.n = Some(n);
        let choices = registry.chat_blocking(req).unwrap();
        assert_eq!(choices.choices.len(), n as usize);
        let what = format!("n = {n}: a token's log probabilities changed in a batch");
        assert_every_choice_answers_as(&choices, &alone, &what);
    }
}
