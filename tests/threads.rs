//! The threads the library leaves behind. Each instance keeps its compute threads from one step
//! to the next: the ggml thread pool attached to its context (without one, ggml would start and
//! join a pool for every decode step) or, built with the `openmp` feature, its OpenMP team. And
//! loading a model leaves nothing tied to the caller's thread: with OpenMP, llama.cpp's parallel
//! regions while loading would leave an idle team there for as long as the caller lives, libgomp
//! would count more threads than CPUs and stop spin-waiting, and every decode step's barriers
//! would sleep in the kernel. And an instance with more threads than cores still answers: the
//! pool's barriers spin without yielding, which would make every step take seconds, and the guard
//! in `core/src/threads.rs` moves its steps to one thread instead.
//! Linux only: threads are found by name in `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use modelservice::Registry;

/// The ids of this process's threads named `name` (Linux: `/proc/self/task/*/comm`, which holds
/// at most 15 bytes of a thread's name).
fn threads_named(name: &str) -> BTreeSet<u32> {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn deploying_leaves_no_threads_on_the_calling_thread() {
    // The test thread's name (the test's, cut to 15 bytes); threads started by a thread inherit
    // its name.
    let me = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let me = me.trim_end();
    let registry = Registry::new();
    let mut two_threads = spec("t1/smol", smollm2());
    two_threads.threads = Some(2);
    registry.deploy(two_threads).unwrap();
    registry
        .chat_blocking(greedy("t1/smol", "Say hello.", 4))
        .unwrap();

    let namesakes = threads_named(me);
    assert_eq!(
        namesakes.len(),
        1,
        "threads named like the deploying thread ({me}): {namesakes:?}"
    );
}

#[test]
fn an_instance_keeps_its_threads_from_one_step_to_the_next() {
    let registry = Registry::new();
    let mut three_threads = spec("t2/smol", smollm2());
    three_threads.threads = Some(3);
    registry.deploy(three_threads).unwrap();
    // The instance's thread and its 2 workers (named after it, having been started by it).
    let instance = "modelservice t2/smol#0";
    let answer = || {
        registry
            .chat_blocking(greedy("t2/smol", "Count from one to ten.", 16))
            .unwrap()
    };
    answer();
    let after_first = threads_named(instance);
    assert_eq!(
        after_first.len(),
        3,
        "the instance's thread and 2 workers, at rest: {after_first:?}"
    );
    answer();
    assert_eq!(
        threads_named(instance),
        after_first,
        "the same threads after another answer"
    );
}

#[test]
fn an_instance_with_more_threads_than_cores_still_answers() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let registry = Registry::new();
    let mut crowded = spec("t3/smol", smollm2());
    crowded.threads = Some(cores + 1);
    registry.deploy(crowded).unwrap();
    let started = Instant::now();
    for _ in 0..2 {
        let answer = registry
            .chat_blocking(greedy("t3/smol", "Write a long story about the sea.", 16))
            .unwrap();
        assert_eq!(answer.usage.completion_tokens, 16);
    }
    // About a second when it works; a collapsed pool took 97 s (2 cores, 3 threads).
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "two 16-token answers took {took:?}"
    );
    // The pool's threads outnumber the cores, so its steps were stopped and redone on one
    // thread (OpenMP's sleeping barriers need no guard).
    let stopped = registry.retrieve("t3/smol").unwrap().stats.stopped_steps;
    if cfg!(feature = "openmp") {
        assert_eq!(stopped, 0);
    } else {
        assert!(stopped >= 1, "{stopped} steps stopped");
    }
}

#[test]
fn steps_stopped_with_several_requests_in_flight_keep_their_answers() {
    // Three slots answering at once on a pool with more threads than cores: the pool collapses
    // on each try, and steps that hold several sequences are stopped and redone on one thread.
    // The answers are those of one thread answering one request at a time.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let registry = Registry::new();
    let mut crowded = spec("t4/crowded", smollm2());
    crowded.threads = Some(cores + 1);
    crowded.slots = 3;
    registry.deploy(crowded).unwrap();
    let mut reference = spec("t4/reference", smollm2());
    reference.slots = 1;
    registry.deploy(reference).unwrap();
    let questions = [
        "Write a long story about the sea.",
        "Name ten animals and where they live.",
        "Explain how rain forms, step by step.",
    ];
    let answer = |service: &str, question: &str| {
        let answer = registry
            .chat_blocking(greedy(service, question, 32))
            .unwrap();
        content(&answer).to_owned()
    };
    let expected: Vec<String> = questions
        .iter()
        .map(|q| answer("t4/reference", q))
        .collect();
    let answers: Vec<String> = std::thread::scope(|s| {
        let asked: Vec<_> = questions
            .iter()
            .map(|q| s.spawn(|| answer("t4/crowded", q)))
            .collect();
        asked.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert_eq!(answers, expected, "answers of one thread, one at a time");
    let stats = registry.retrieve("t4/crowded").unwrap().stats;
    assert!(stats.peak_batch_sequences >= 2, "{stats:?}");
    if cfg!(feature = "openmp") {
        assert_eq!(stats.stopped_steps, 0);
    } else {
        // The warm-up step before the first request (1 s budget) and at least one retry of the
        // pool 100 ms later, with the three answers under way.
        assert!(stats.stopped_steps >= 2, "{stats:?}");
    }
}
