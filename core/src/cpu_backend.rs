//! Which build of llama.cpp's CPU backend runs the services. With the `cpu-variants` feature the
//! CPU backend is built once per x86 generation as loadable modules (`libggml-cpu-<variant>.so`)
//! and llama.cpp loads the best one this processor runs (AVX-512, VNNI, AMX where present), so
//! one build is both portable and as fast as the machine allows.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::api::CpuBackend;

/// Prefix and suffix of the variant modules' file names.
const VARIANT_PREFIX: &str = "libggml-cpu-";
const VARIANT_SUFFIX: &str = ".so";
/// Overrides where the variant modules are looked for.
pub const BACKEND_DIR_ENV: &str = "MODELSERVICE_BACKEND_DIR";

/// Loads the CPU backend variants (with `cpu-variants`; nothing to load otherwise), once per
/// process. The library does it before initialising its backend; a program that initialises a
/// llama backend of its own (the benchmarks' raw loops) calls it first.
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(load_once).clone()
}

fn load_once() -> Result<(), String> {
    #[cfg(feature = "cpu-variants")]
    {
        let dir = variant_dir().ok_or_else(|| {
            format!(
                "no llama.cpp CPU backend modules ({VARIANT_PREFIX}*{VARIANT_SUFFIX}) found next to \
                 the modelservice library, in ${BACKEND_DIR_ENV}, or where they were built"
            )
        })?;
        let path = std::ffi::CString::new(dir.to_string_lossy().into_owned())
            .map_err(|_| format!("backend directory {} holds a NUL byte", dir.display()))?;
        // SAFETY: a valid NUL-terminated path; llama.cpp copies it.
        unsafe { llama_cpp_sys_2::ggml_backend_load_all_from_path(path.as_ptr()) };
        // SAFETY: plain query of llama.cpp's backend registry.
        if unsafe { llama_cpp_sys_2::ggml_backend_dev_count() } == 0 {
            return Err(format!(
                "none of the llama.cpp CPU backend modules in {} runs on this processor",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The directories searched for variant modules, in order: `$MODELSERVICE_BACKEND_DIR`, the
/// directory of the library or program holding this code (where the Python wheel, the Node
/// addon and the C library carry them), that of llama.cpp's own library, and the build's.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(BACKEND_DIR_ENV) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.extend(object_dir(search_dirs as *const c_void));
    dirs.extend(object_dir(
        llama_cpp_sys_2::ggml_backend_dev_count as *const c_void,
    ));
    dirs.extend(llama_cpp_sys_2::BACKENDS_DIR.map(PathBuf::from));
    dirs
}

#[cfg_attr(not(feature = "cpu-variants"), allow(dead_code))]
fn variant_dir() -> Option<PathBuf> {
    search_dirs().into_iter().find(|dir| holds_variants(dir))
}

fn holds_variants(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| variant_name(&e.file_name().to_string_lossy()).is_some())
    })
}

/// `sapphirerapids` for `libggml-cpu-sapphirerapids.so`.
fn variant_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_prefix(VARIANT_PREFIX)?
        .strip_suffix(VARIANT_SUFFIX)
        .filter(|v| !v.is_empty())
}

/// The CPU backend the process uses: the variant picked, and the instruction-set features it
/// was built with. Read once, after the backend is loaded.
pub(crate) fn info() -> CpuBackend {
    static INFO: OnceLock<CpuBackend> = OnceLock::new();
    if crate::backend::backend().is_err() {
        return CpuBackend {
            variant: "unavailable".into(),
            features: Vec::new(),
        };
    }
    INFO.get_or_init(|| {
        let info = read_info();
        tracing::info!(
            target: "modelservice::load",
            variant = %info.variant,
            features = %info.features.join(" "),
            "llama.cpp CPU backend"
        );
        info
    })
    .clone()
}

fn read_info() -> CpuBackend {
    let built_in = || CpuBackend {
        variant: "built-in".into(),
        features: Vec::new(),
    };
    // SAFETY: registry lookups by a static NUL-terminated name; null when absent.
    let reg = unsafe { llama_cpp_sys_2::ggml_backend_reg_by_name(c"CPU".as_ptr()) };
    if reg.is_null() {
        return built_in();
    }
    // SAFETY: `reg` is a live registry entry; the name is NUL-terminated.
    let get_features = unsafe {
        llama_cpp_sys_2::ggml_backend_reg_get_proc_address(
            reg,
            c"ggml_backend_get_features".as_ptr(),
        )
    };
    if get_features.is_null() {
        return built_in();
    }
    // The module that defines the function is the variant that was loaded.
    let module = object_path(get_features.cast_const());
    let variant = module
        .as_deref()
        .and_then(|p| {
            p.file_name()
                .and_then(|f| variant_name(&f.to_string_lossy()).map(str::to_owned))
        })
        .unwrap_or_else(|| "built-in".into());
    // SAFETY: llama.cpp documents this proc address as `ggml_backend_get_features_t`.
    let get_features: llama_cpp_sys_2::ggml_backend_get_features_t =
        unsafe { std::mem::transmute(get_features) };
    let mut features = Vec::new();
    if let Some(get_features) = get_features {
        // SAFETY: returns a static array terminated by an entry whose name is null.
        unsafe {
            let mut entry = get_features(reg);
            while !entry.is_null() && !(*entry).name.is_null() {
                let name = CStr::from_ptr((*entry).name).to_string_lossy();
                let value = if (*entry).value.is_null() {
                    "".into()
                } else {
                    CStr::from_ptr((*entry).value).to_string_lossy()
                };
                features.push(if value == "1" {
                    name.into_owned()
                } else {
                    format!("{name}={value}")
                });
                entry = entry.add(1);
            }
        }
    }
    // Our own kernels in that module (cmake/llama-cpp.cmake adds them), after ggml's features.
    if let Some(module) = &module {
        features.extend(
            OUR_KERNELS
                .iter()
                .filter(|(symbol, _)| module_defines(module, symbol))
                .map(|(_, feature)| (*feature).to_owned()),
        );
    }
    CpuBackend { variant, features }
}

/// Kernels of ours that may be compiled into llama.cpp's CPU modules: the symbol a module defines
/// where the kernel runs, and the feature it is reported as.
const OUR_KERNELS: [(&CStr, &str); 1] = [(c"modelservice_q4_1_gemm", "MODELSERVICE_Q4_1_GEMM")];

/// Whether the loaded shared object at `module` exports `symbol`. A module linked into a program
/// (the built-in backend) is not found this way, so kernels are reported for variant modules.
fn module_defines(module: &Path, symbol: &CStr) -> bool {
    let Ok(path) = std::ffi::CString::new(module.to_string_lossy().into_owned()) else {
        return false;
    };
    // SAFETY: RTLD_NOLOAD only looks up an object already loaded (no constructors run); the
    // handle is released after one symbol lookup.
    unsafe {
        let handle = dlopen(path.as_ptr(), RTLD_LAZY | RTLD_NOLOAD);
        if handle.is_null() {
            return false;
        }
        let found = !dlsym(handle, symbol.as_ptr()).is_null();
        dlclose(handle);
        found
    }
}

#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    fbase: *mut c_void,
    sname: *const c_char,
    saddr: *mut c_void,
}

// glibc's values (the variant modules are Linux shared objects).
const RTLD_LAZY: c_int = 0x1;
const RTLD_NOLOAD: c_int = 0x4;

extern "C" {
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
}

/// The file of the shared object (or program) that holds `addr`.
fn object_path(addr: *const c_void) -> Option<PathBuf> {
    let mut info = DlInfo {
        fname: std::ptr::null(),
        fbase: std::ptr::null_mut(),
        sname: std::ptr::null(),
        saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { dladdr(addr, &mut info) } == 0 || info.fname.is_null() {
        return None;
    }
    // SAFETY: dladdr's file name is a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.fname) }
        .to_string_lossy()
        .into_owned();
    let path = PathBuf::from(name);
    // The main program's name may be relative to where it was started.
    std::fs::canonicalize(&path).ok().or(Some(path))
}

fn object_dir(addr: *const c_void) -> Option<PathBuf> {
    object_path(addr)?.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_come_from_module_file_names() {
        assert_eq!(
            variant_name("libggml-cpu-sapphirerapids.so"),
            Some("sapphirerapids")
        );
        assert_eq!(variant_name("libggml-cpu-.so"), None);
        assert_eq!(variant_name("libggml-base.so"), None);
        assert_eq!(variant_name("libggml-cpu-x64.so.1"), None);
    }

    /// llama.cpp is built at -O3 (CMake's Release; `.cargo/config.toml` pins it, since our release
    /// profile's line tables would make it RelWithDebInfo, -O2), with `cmake/llama-cpp.cmake`
    /// included: without it, GCC's `_tile_loadconfig` leaves the AMX kernels of the
    /// `sapphirerapids` module an empty tile configuration at -O3, and they die with "Illegal
    /// instruction" on their first prompt (which every chat test then shows).
    #[test]
    fn llama_cpp_is_built_at_o3_with_the_amx_tile_configuration_fixed() {
        let Some(backends) = llama_cpp_sys_2::BACKENDS_DIR else {
            return; // one built-in backend: no AMX module
        };
        // `<out>/backends`; CMake configured `<out>/build`.
        let cache = Path::new(backends).join("../build/CMakeCache.txt");
        let cache =
            std::fs::read_to_string(&cache).unwrap_or_else(|e| panic!("{}: {e}", cache.display()));
        let entry = |name: &str| {
            crate::llama_cpp_check::cache_entry(&cache, name)
                .unwrap_or_else(|| panic!("{name} in llama.cpp's CMakeCache.txt"))
        };
        // llama-cpp-sys-2 configures CMake once per build directory: a target directory from
        // before `.cargo/config.toml` set these keeps its old configuration.
        let stale = "after changing .cargo/config.toml, run `cargo clean`";
        assert_eq!(entry("CMAKE_BUILD_TYPE"), "Release", "{stale}");
        let include = entry("CMAKE_PROJECT_INCLUDE");
        assert!(
            include.ends_with("cmake/llama-cpp.cmake"),
            "CMAKE_PROJECT_INCLUDE={include}; {stale}"
        );
    }

    /// `cmake/llama-cpp.cmake` puts our Q4_1 kernel into every CPU module, and the service info
    /// says so wherever the picked module has AVX2. Without this check a llama.cpp update that
    /// renamed the CPU targets would drop the kernel silently (and the speed with it).
    #[test]
    #[cfg(all(feature = "cpu-variants", target_arch = "x86_64"))]
    fn the_picked_cpu_module_reports_our_q4_1_kernel_where_it_has_avx2() {
        crate::backend::backend().expect("llama.cpp backend");
        let info = read_info();
        assert_ne!(info.variant, "built-in");
        let has = |f: &str| info.features.iter().any(|x| x == f);
        assert_eq!(
            has("MODELSERVICE_Q4_1_GEMM"),
            has("AVX2"),
            "variant {}: {:?}",
            info.variant,
            info.features
        );
    }

    /// The build script refuses a GCC -O3 build of the AMX module without the fix, and only that.
    #[test]
    fn the_build_script_refuses_only_an_o3_gcc_build_without_the_fix() {
        use crate::llama_cpp_check::verdict;
        let gcc = r#"set(CMAKE_CXX_COMPILER_ID "GNU")"#;
        let clang = r#"set(CMAKE_CXX_COMPILER_ID "Clang")"#;
        let cache = |build_type: &str, flags: &str| {
            format!(
                "CMAKE_BUILD_TYPE:STRING={build_type}\nCMAKE_CXX_FLAGS:STRING={flags}\n\
                 CMAKE_CXX_FLAGS_RELEASE:STRING=-O3 -DNDEBUG\n\
                 CMAKE_CXX_FLAGS_RELWITHDEBINFO:STRING=-O2 -g -DNDEBUG\n"
            )
        };
        let ours = include_str!("../../cmake/llama-cpp.cmake");
        let release = cache("Release", "-fPIC");
        let refused = verdict(&release, gcc, None).expect("GCC -O3 without the fix");
        assert!(refused.contains("Illegal instruction"), "{refused}");
        assert!(verdict(&release, gcc, Some("# another include")).is_some());
        assert_eq!(verdict(&release, gcc, Some(ours)), None);
        assert_eq!(verdict(&release, clang, None), None);
        assert_eq!(verdict(&cache("RelWithDebInfo", "-fPIC"), gcc, None), None);
        assert!(verdict(&cache("RelWithDebInfo", "-O3"), gcc, None).is_none());
        assert!(verdict(&cache("Debug", "-O3"), gcc, None).is_some());
        // This build passes (what the build script ran on).
        if let Some(backends) = llama_cpp_sys_2::BACKENDS_DIR {
            let backends = Path::new(backends);
            assert_eq!(
                crate::llama_cpp_check::refusal(&backends.with_file_name("build"), backends),
                None
            );
        }
    }

    #[test]
    fn the_cpu_backend_reports_its_features() {
        crate::backend::backend().expect("backend");
        let info = info();
        assert!(!info.variant.is_empty());
        assert!(
            info.features
                .iter()
                .any(|f| f.starts_with("SSE") || f.starts_with("AVX")),
            "{info:?}"
        );
        if cfg!(feature = "cpu-variants") {
            assert_ne!(info.variant, "built-in");
            // The machine kind this project runs on has AMX: its variant must be the one picked.
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let flags = cpuinfo
                .lines()
                .find(|l| l.starts_with("flags"))
                .unwrap_or("");
            let has = |f: &str| flags.split_whitespace().any(|x| x == f);
            if [
                "avx512vbmi",
                "avx512_vnni",
                "avx512_bf16",
                "amx_tile",
                "amx_int8",
            ]
            .iter()
            .all(|f| has(f))
            {
                assert_eq!(info.variant, "sapphirerapids", "{info:?}");
            }
        } else {
            assert_eq!(info.variant, "built-in");
        }
    }
}
