//! A new instance decodes two tokens before its first request (its warm-up), so the thread guard
//! of `core/src/threads.rs` knows how long a step takes before the first prompt comes. Without
//! it, a first step of a size never timed had one second: on a 2-core machine SmolLM2's first
//! 512 prompt tokens took about 2 s, so that step was stopped and decoded again on one thread
//! (589 tokens: 5.2 s instead of 2.2 s). With our Q4_1 kernel a 589-token prompt still takes
//! 1.7-1.8 s to its first token there (benches/RESULTS.md), over the second; on a machine fast
//! enough to prefill 512 tokens within it, this test cannot tell.
//! Alone in its binary: tests running beside it would take the pool's cores, and a pool short of
//! cores is what the guard stops.

mod common;

use common::*;
use modelservice::Registry;

#[test]
fn a_new_service_decodes_a_long_first_prompt_on_its_pool() {
    let registry = Registry::new();
    let mut two_threads = spec("w1/smol", smollm2());
    two_threads.threads = Some(2);
    registry.deploy(two_threads).unwrap();
    // Stops of the warm-up itself (the weights read in from disk) are not this test's business.
    let before = registry.retrieve("w1/smol").unwrap().stats.stopped_steps;
    let long = "Rule: answer the visitors of the lighthouse museum politely. ".repeat(60);
    let answer = registry.chat_blocking(greedy("w1/smol", &long, 4)).unwrap();
    assert!(
        answer.usage.prompt_tokens > 512,
        "{} prompt tokens: the first step must be a full batch",
        answer.usage.prompt_tokens
    );
    let stats = registry.retrieve("w1/smol").unwrap().stats;
    assert_eq!(
        stats.stopped_steps - before,
        0,
        "the first prompt's steps ran on the pool: {stats:?}"
    );
}
