//! Refuses to build on a llama.cpp build whose AMX kernels would die on the first prompt
//! (`build/llama_cpp_check.rs`), with what to set instead.

#[path = "build/llama_cpp_check.rs"]
mod llama_cpp_check;

use std::path::{Path, PathBuf};

fn main() {
    // Set by llama-cpp-sys-2 (`links = "llama"`) when it builds the CPU modules.
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    println!("cargo:rerun-if-changed=core/build/llama_cpp_check.rs");
    let Some(backends) = std::env::var_os("DEP_LLAMA_BACKENDS_DIR").map(PathBuf::from) else {
        return;
    };
    let build = backends.with_file_name("build");
    println!(
        "cargo:rerun-if-changed={}",
        build.join("CMakeCache.txt").display()
    );
    if let Some(reason) = llama_cpp_check::refusal(&build, &backends) {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        eprintln!(
            "{reason}.\nSet, in the [env] of your .cargo/config.toml:\n  \
             CMAKE_PROJECT_INCLUDE = \"{}\"\n  LLAMA_LIB_PROFILE = \"Release\"\n\
             (or LLAMA_LIB_PROFILE = \"RelWithDebInfo\" for -O2 without the fix), then run \
             `cargo clean`: llama-cpp-sys-2 configures CMake once per build directory, and \
             `cargo clean -p llama-cpp-sys-2` alone leaves copies of its libraries that its next \
             build stops on (\"File exists\").",
            crate_dir.join("cmake/llama-cpp.cmake").display()
        );
        std::process::exit(1);
    }
}
