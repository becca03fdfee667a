//! Hostile model files: copies of the real SmolLM2 file, broken in every way a downloaded file
//! could be (see `mutations.rs`), each deployed with `Registry::deploy` in a child process so a
//! crash is counted instead of ending the suite. The target is no crash and no hang: every file
//! is refused with a typed error (`model_load_failed`, naming what is wrong) or deploys and
//! serves.
//!
//! `make test` runs a short corpus; `make fuzz` sets `MODELSERVICE_FUZZ=long` for all of it.

#[path = "../common/mod.rs"]
mod common;
mod gguf_file;
mod mutations;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gguf_file::Gguf;
use modelservice::Registry;
use mutations::{byte_flips, structural, Mutant};

/// Set in a child: the hostile file it deploys.
const CHILD_FILE: &str = "MODELSERVICE_HOSTILE_GGUF";
/// How long one child may take before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// What became of one hostile file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Deployed, and a short completion ran.
    Served,
    /// Refused with this error code (a typed 4xx).
    Refused(String),
    /// Deployed but the completion failed with this code.
    FailedRequest(String),
    /// A 5xx or an untyped error.
    Internal(String),
    /// Killed by a signal, or exited without a verdict (a panic, an abort).
    Crashed(String),
    Hung,
}

impl Outcome {
    fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Crashed(_) | Outcome::Hung | Outcome::Internal(_)
        )
    }
}

/// The child's side: deploy the file, ask for two tokens, print the verdict on one line.
#[test]
fn child_deploys_one_file() {
    let Some(path) = std::env::var_os(CHILD_FILE) else {
        return; // not a child: nothing to do in an ordinary run
    };
    let registry = Registry::new();
    let mut s = spec("u/hostile", PathBuf::from(path));
    s.slots = 1;
    s.context_length = Some(256);
    let verdict = match registry.deploy(s) {
        Err(e) => format!("refused {} {} {}", e.status(), e.code().unwrap_or("-"), e),
        Ok(_) => match registry.chat_blocking(greedy("u/hostile", "Hi.", 2)) {
            Ok(_) => "served".to_owned(),
            Err(e) => format!("request {} {} {}", e.status(), e.code().unwrap_or("-"), e),
        },
    };
    println!("VERDICT {}", verdict.replace('\n', " "));
}

/// Runs the child on `file` and reads its verdict.
fn deploy_in_child(file: &Path) -> (Outcome, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_deploys_one_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_FILE, file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary runs again as a child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .ok();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .ok();
    let Some(status) = status else {
        return (Outcome::Hung, String::new());
    };
    let verdict = stdout
        .lines()
        .find_map(|l| l.split_once("VERDICT ").map(|(_, v)| v))
        .map(str::to_owned);
    let outcome = match (&verdict, status.signal()) {
        (_, Some(signal)) => Outcome::Crashed(format!("signal {signal}: {}", last_words(&stderr))),
        (None, None) => {
            Outcome::Crashed(format!("exit {:?}: {}", status.code(), last_words(&stderr)))
        }
        (Some(v), None) => {
            let mut words = v.splitn(4, ' ');
            let (kind, status, code) = (words.next(), words.next(), words.next());
            match (kind, status) {
                (Some("served"), _) => Outcome::Served,
                (_, Some(s)) if s.starts_with('5') => Outcome::Internal(code.unwrap_or("-").into()),
                (Some("refused"), _) => Outcome::Refused(code.unwrap_or("-").into()),
                _ => Outcome::FailedRequest(code.unwrap_or("-").into()),
            }
        }
    };
    (outcome, verdict.unwrap_or_default())
}

/// The lines of a dead child's stderr that say why: llama.cpp's abort message or the panic.
fn last_words(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            l.contains("GGML")
                || l.contains("panicked")
                || l.contains("error")
                || l.contains("terminate")
        })
        .take(4)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Deploys every mutant in a child and returns what each did.
fn run_corpus(mutants: &[Mutant]) -> Vec<(String, Outcome, String)> {
    let original = std::fs::read(smollm2()).unwrap();
    let parsed = Gguf::parse(&original);
    // `MODELSERVICE_HOSTILE_KEEP=<dir>` keeps the last file there, to debug it by hand.
    let kept = std::env::var_os("MODELSERVICE_HOSTILE_KEEP").map(PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("modelservice-hostile-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hostile.gguf");
    let mut results = Vec::new();
    for m in mutants {
        std::fs::write(&file, m.bytes(&original, &parsed)).unwrap();
        let started = Instant::now();
        let (outcome, verdict) = deploy_in_child(&file);
        println!(
            "{:6.2}s {}: {outcome:?}",
            started.elapsed().as_secs_f64(),
            m.name
        );
        results.push((m.name.clone(), outcome, verdict));
    }
    if kept.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    results
}

/// Prints the tally and every failure; returns the failures.
fn report(results: &[(String, Outcome, String)]) -> Vec<String> {
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for (_, outcome, _) in results {
        let key = match outcome {
            Outcome::Crashed(_) => "crashed".into(),
            other => format!("{other:?}"),
        };
        *tally.entry(key).or_default() += 1;
    }
    println!("hostile files: {} tried", results.len());
    for (outcome, n) in &tally {
        println!("  {n:4}  {outcome}");
    }
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, o, _)| o.is_failure())
        .map(|(name, o, v)| format!("{name}: {o:?} {v}"))
        .collect();
    for f in &failures {
        println!("  FAILURE {f}");
    }
    failures
}

fn long_run() -> bool {
    std::env::var("MODELSERVICE_FUZZ").is_ok_and(|v| v == "long")
}

/// Files that crashed or hung the process before `gguf.rs` and the template budget refused
/// them: the short corpus always runs them again.
const REGRESSIONS: &[&str] = &[
    "block_count = 0",
    "block_count = 1000",
    "block_count = 4294967295",
    "context_length = 4294967295",
    "attention.layer_norm_rms_epsilon = NaN",
    "attention.layer_norm_rms_epsilon = -1",
    "tokenizer model `llama`",
    "tokenizer model `none`",
    "duplicate tokens (two ordinary)",
    "an empty token and its stand-in",
    "chat template with a huge loop",
    "tokenizer model `t5` without a bos id",
];

/// The corpus. Long: every structural mutant, a truncation at every structure boundary, and
/// 400 random bit flips. Short (for `make test`): the regressions, every fifth other
/// structural mutant, and 8 bit flips.
fn corpus() -> Vec<Mutant> {
    let original = std::fs::read(smollm2()).unwrap();
    let parsed = Gguf::parse(&original);
    let long = long_run();
    let mut mutants = structural(&parsed, long);
    if !long {
        let mut i = 0;
        mutants.retain(|m| {
            i += 1;
            REGRESSIONS.contains(&m.name.as_str()) || i % 5 == 0
        });
    }
    mutants.extend(byte_flips(&parsed, if long { 400 } else { 8 }, 0x5EED));
    // `MODELSERVICE_HOSTILE_ONLY=<part of a name>` runs the matching files alone.
    if let Ok(only) = std::env::var("MODELSERVICE_HOSTILE_ONLY") {
        mutants.retain(|m| m.name.contains(&only));
    }
    mutants
}

#[test]
fn hostile_model_files_never_crash_the_process() {
    let mutants = corpus();
    let results = run_corpus(&mutants);
    let failures = report(&results);
    assert!(
        failures.is_empty(),
        "{} of {} hostile files crashed, hung or failed inside: {failures:#?}",
        failures.len(),
        results.len()
    );
    if std::env::var_os("MODELSERVICE_HOSTILE_ONLY").is_none() && !long_run() {
        for name in REGRESSIONS {
            assert!(
                results.iter().any(|(n, _, _)| n == name),
                "regression `{name}` is in the corpus"
            );
        }
    }
    let refused = results
        .iter()
        .filter(|(_, o, _)| matches!(o, Outcome::Refused(_)))
        .count();
    assert!(
        refused * 2 > results.len(),
        "most hostile files are refused"
    );
}

#[test]
fn the_generator_round_trips_the_real_file() {
    let original = std::fs::read(smollm2()).unwrap();
    let parsed = Gguf::parse(&original);
    assert_eq!(parsed.write(&original), original);
    assert_eq!(parsed.tensors.len(), 272);
    assert!(parsed.boundaries.len() > 272 * 4);
}
