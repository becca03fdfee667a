//! Whether llama-cpp-sys-2 built llama.cpp's `sapphirerapids` CPU module in a way that dies on its
//! first prompt: GCC's `_tile_loadconfig` (12.2 here) declares that `ldtilecfg` reads 8 of its 64
//! bytes, so at -O3 the stores of the tile shapes are dropped and the AMX kernels stop with
//! "Illegal instruction". `cmake/llama-cpp.cmake` (through `CMAKE_PROJECT_INCLUDE`) fixes it; a
//! program that embeds the crate from its own workspace does not get our `.cargo/config.toml`
//! and, with a release profile without debug info, gets -O3 without the fix. Shared by the build
//! script (which refuses such a build) and the unit tests.

use std::path::Path;

/// The header our CMake include forces into the AMX kernels; a copy of the include under another
/// name is recognised by it.
const FIX: &str = "amx_tile_loadconfig.h";

/// Why the llama.cpp build in `build_dir` (llama-cpp-sys-2's `out/build`) must not be used;
/// `None` when it is safe or cannot be judged (no CMake cache, no AMX module).
pub fn refusal(build_dir: &Path, backends_dir: &Path) -> Option<String> {
    if !backends_dir.join("libggml-cpu-sapphirerapids.so").exists() {
        return None;
    }
    let cache = std::fs::read_to_string(build_dir.join("CMakeCache.txt")).ok()?;
    // `CMakeFiles/<cmake version>/CMakeCXXCompiler.cmake` names the compiler.
    let compiler = std::fs::read_dir(build_dir.join("CMakeFiles"))
        .ok()?
        .flatten()
        .find_map(|dir| std::fs::read_to_string(dir.path().join("CMakeCXXCompiler.cmake")).ok())?;
    let include = cache_entry(&cache, "CMAKE_PROJECT_INCLUDE")
        .and_then(|path| std::fs::read_to_string(path).ok());
    verdict(&cache, &compiler, include.as_deref())
}

/// The judgement on the files' contents: GCC, an -O3 build, and no include that brings the fix.
pub fn verdict(cache: &str, compiler: &str, include: Option<&str>) -> Option<String> {
    if !compiler.contains(r#"set(CMAKE_CXX_COMPILER_ID "GNU")"#) {
        return None;
    }
    let build_type = cache_entry(cache, "CMAKE_BUILD_TYPE").unwrap_or("");
    let flags = format!(
        "{} {}",
        cache_entry(cache, "CMAKE_CXX_FLAGS").unwrap_or(""),
        cache_entry(
            cache,
            &format!("CMAKE_CXX_FLAGS_{}", build_type.to_uppercase())
        )
        .unwrap_or("")
    );
    // The last -O option wins.
    let level = flags.split_whitespace().rfind(|f| f.starts_with("-O"))?;
    if level != "-O3" && level != "-Ofast" {
        return None;
    }
    if include.is_some_and(|text| text.contains(FIX)) {
        return None;
    }
    Some(format!(
        "llama.cpp was built by GCC at {level} ({build_type}) without modelservice's fix of GCC's \
         `_tile_loadconfig`: its sapphirerapids CPU module would die with \"Illegal instruction\" \
         on its first prompt on processors with AMX"
    ))
}

/// The value of `name` in a CMake cache (`NAME:TYPE=value`).
pub fn cache_entry<'a>(cache: &'a str, name: &str) -> Option<&'a str> {
    cache.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.split_once(':')?.0 == name).then_some(value.trim())
    })
}
