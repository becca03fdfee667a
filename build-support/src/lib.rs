//! Shared by the build scripts of the Python, Node and C bindings. With the core's `cpu-variants`
//! feature llama.cpp is a set of shared libraries (`libllama.so`, `libggml*.so`) plus one CPU
//! backend module per x86 generation (`libggml-cpu-<variant>.so`, loaded at run time; with `cuda`
//! also `libggml-cuda.so`). A package only runs where those files sit next to its own library, so
//! each binding's build script copies them into the directory its package is made from, and links
//! with `$ORIGIN` as run path.
//!
//! The build script calling this must depend on `llama-cpp-sys-2` directly: cargo hands its
//! `links = "llama"` metadata (`DEP_LLAMA_BACKENDS_DIR`) only to direct dependents.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by llama-cpp-sys-2 when it builds the CPU backend modules; absent in the static build.
const BACKENDS_DIR_VAR: &str = "DEP_LLAMA_BACKENDS_DIR";

/// Copies llama.cpp's shared libraries and CPU backend modules into `dest` and gives the
/// crate's libraries and programs `$ORIGIN` as run path. Returns the files copied (none in a static build).
pub fn bundle_llama_libs(dest: &Path) -> io::Result<Vec<PathBuf>> {
    println!("cargo:rerun-if-env-changed={BACKENDS_DIR_VAR}");
    let Some(backends) = std::env::var_os(BACKENDS_DIR_VAR).map(PathBuf::from) else {
        return Ok(Vec::new());
    };
    // The loader finds libllama.so.0 and libggml*.so.0 next to the binding's own library.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    let libs = backends.with_file_name("lib");
    fs::create_dir_all(dest)?;
    let mut copied = Vec::new();
    for dir in [&libs, &backends] {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if is_loaded_by_name(&name) {
                println!("cargo:rerun-if-changed={}", path.display());
                copied.push(install(&path, &dest.join(&*name))?);
            }
        }
    }
    Ok(copied)
}

/// The directory cargo puts the crate's own artifacts in (`target/<profile>`), from `OUT_DIR`
/// (`target/<profile>/build/<crate>-<hash>/out`).
pub fn profile_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    out.ancestors()
        .nth(3)
        .expect("OUT_DIR is target/<profile>/build/<crate>/out")
        .to_path_buf()
}

/// The names the loader asks for: a library's soname (`libllama.so.0`, one version number) and
/// the backend modules llama.cpp opens by path (`libggml-cpu-haswell.so`, and `libggml-cuda.so`
/// with the `cuda` feature). The link-time names (`libllama.so`, `libggml-base.so`) and the fully
/// versioned file are the same bytes again: not copied.
fn is_loaded_by_name(name: &str) -> bool {
    if !name.starts_with("lib") {
        return false;
    }
    match name.split_once(".so") {
        Some((stem, "")) => stem
            .strip_prefix("libggml-")
            .is_some_and(|backend| !backend.is_empty() && backend != "base"),
        Some((_, version)) => version
            .strip_prefix('.')
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// Writes `src` (following symbolic links) to `target` without its debug sections (the packages
/// would grow ~10x), unless `target` is newer. A new inode each time (rename): a process that has
/// the old file mapped keeps it.
fn install(src: &Path, target: &Path) -> io::Result<PathBuf> {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(installed)) = (modified(src), modified(target)) {
        if installed >= built {
            return Ok(target.to_path_buf());
        }
    }
    // Written aside, then renamed: two build scripts may install into the same target/<profile>.
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&partial)
        .arg(src)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        fs::copy(src, &partial)?;
    }
    fs::rename(&partial, target)?;
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::is_loaded_by_name;

    #[test]
    fn sonames_and_backend_modules_are_copied_once() {
        for name in [
            "libllama.so.0",
            "libggml-base.so.0",
            "libggml-cpu-zen4.so",
            "libggml-cuda.so",
        ] {
            assert!(is_loaded_by_name(name), "{name}");
        }
        for name in [
            "libllama.so",
            "libllama.so.0.6.0",
            "libggml.so",
            "libggml-base.so",
            "libllama-common.so",
            "libggml.a",
            "pkgconfig",
            "libggml-cpu-.so.x",
        ] {
            assert!(!is_loaded_by_name(name), "{name}");
        }
    }
}
