//! Loading a model leaves no OpenMP threads tied to the caller's thread. llama.cpp's parallel
//! regions while loading (weight repacking) would otherwise leave an idle thread team behind for
//! as long as the caller lives; libgomp then counts more threads than CPUs, stops spin-waiting,
//! and every decode step's barriers sleep in the kernel (a third of single-stream speed lost).
//! Linux only: threads are found by name in `/proc`.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use modelservice::Registry;

/// The names of this process's threads (Linux: `/proc/self/task/*/comm`).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[test]
fn deploying_leaves_no_openmp_team_on_the_calling_thread() {
    // The test thread's name (the test's, cut to 15 bytes); OpenMP workers inherit the name of
    // the thread whose team they join.
    let me = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let me = me.trim_end();
    let registry = Registry::new();
    let mut two_threads = spec("omp/smol", smollm2());
    two_threads.threads = Some(2);
    registry.deploy(two_threads).unwrap();
    registry
        .chat_blocking(greedy("omp/smol", "Say hello.", 4))
        .unwrap();

    let names = thread_names();
    let namesakes = names.iter().filter(|n| n.as_str() == me).count();
    assert_eq!(
        namesakes, 1,
        "threads named like the deploying thread ({me}): {names:?}"
    );
}
