//! Opening a GGUF file: checks that give a clear reason before llama.cpp sees the file
//! (missing, not GGUF, truncated), the load itself, and the base-model metadata.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;

use crate::api::BaseModel;
use crate::backend::backend;
use crate::error::{Error, Result};

/// Model files loaded by this process: scaling must never add to it.
static MODEL_LOADS: AtomicU64 = AtomicU64::new(0);

/// How many times a model file has been loaded into memory by this process.
pub fn model_loads() -> u64 {
    MODEL_LOADS.load(Ordering::Relaxed)
}

fn load_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::ModelLoad {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// What the header says, read before the weights are loaded.
struct Header {
    architecture: String,
}

/// Reads the GGUF header and checks that every tensor's data lies inside the file.
fn check_header(path: &Path) -> Result<Header> {
    let meta = std::fs::metadata(path)
        .map_err(|e| load_error(path, format!("cannot read the file: {e}")))?;
    if !meta.is_file() {
        return Err(load_error(path, "not a regular file"));
    }
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path)
            .map_err(|e| load_error(path, format!("cannot open the file: {e}")))?;
        if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
            return Err(load_error(
                path,
                "not a GGUF file (the file does not start with the `GGUF` magic bytes)",
            ));
        }
    }
    let cpath = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| load_error(path, "path contains a NUL byte"))?;
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: a valid C string and no ggml context requested; the result is freed below.
    let ctx = unsafe { sys::gguf_init_from_file(cpath.as_ptr(), params) };
    if ctx.is_null() {
        return Err(load_error(
            path,
            "corrupt or truncated GGUF header or metadata",
        ));
    }
    // SAFETY: ctx is a live gguf context until gguf_free.
    let result = unsafe {
        let data_offset = sys::gguf_get_data_offset(ctx) as u64;
        let mut needed = data_offset;
        for i in 0..sys::gguf_get_n_tensors(ctx) {
            let end = data_offset
                + (sys::gguf_get_tensor_offset(ctx, i) + sys::gguf_get_tensor_size(ctx, i)) as u64;
            needed = needed.max(end);
        }
        let key = sys::gguf_find_key(ctx, c"general.architecture".as_ptr());
        let architecture = if key >= 0 {
            CStr::from_ptr(sys::gguf_get_val_str(ctx, key))
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        sys::gguf_free(ctx);
        (needed, architecture)
    };
    let (needed, architecture) = result;
    if needed > meta.len() {
        return Err(load_error(
            path,
            format!(
                "truncated file: its tensors need {needed} bytes but the file has {}",
                meta.len()
            ),
        ));
    }
    if architecture.is_empty() {
        return Err(load_error(
            path,
            "the GGUF metadata has no `general.architecture`",
        ));
    }
    Ok(Header { architecture })
}

/// Loads the weights once; every instance of the service shares the returned model.
pub(crate) fn load_model(path: &Path, gpu_layers: u32) -> Result<(Arc<LlamaModel>, BaseModel)> {
    let header = check_header(path)?;
    let backend = backend()?;
    let shown = path.display().to_string();
    let mut last_tenth = -1i32;
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(gpu_layers)
        .with_progress_callback(move |progress| {
            let tenth = (progress * 10.0) as i32;
            if tenth != last_tenth {
                last_tenth = tenth;
                tracing::info!(target: "modelservice::load", path = %shown, progress = format!("{:.0}%", progress * 100.0), "loading model");
            }
            true
        });
    let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
        load_error(
            path,
            format!(
                "llama.cpp could not load it ({e}); architecture `{}` may be unsupported or the tensor data corrupt",
                header.architecture
            ),
        )
    })?;
    MODEL_LOADS.fetch_add(1, Ordering::Relaxed);
    let base = describe(&model, path, header.architecture);
    Ok((Arc::new(model), base))
}

fn describe(model: &LlamaModel, path: &Path, architecture: String) -> BaseModel {
    let meta = |key: &str| model.meta_val_str(key).ok().filter(|s| !s.is_empty());
    let name = meta("general.name").unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    BaseModel {
        name,
        size_label: meta("general.size_label"),
        quantization: quantization(model),
        trained_context_length: model.n_ctx_train(),
        parameters: model.n_params(),
        file_size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        path: path.to_path_buf(),
        has_chat_template: meta("tokenizer.chat_template").is_some(),
        architecture,
    }
}

/// The weights' type as llama.cpp names it (`Q4_1`, `Q4_K - Medium` ...): the last part of
/// the model description, which reads `<arch> <size> <type>`.
fn quantization(model: &LlamaModel) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length; llama.cpp NUL-terminates within it.
    let n = unsafe { sys::llama_model_desc(model_ptr(model), buf.as_mut_ptr().cast(), buf.len()) };
    let desc = String::from_utf8_lossy(&buf[..n.clamp(0, 255) as usize]).into_owned();
    desc.splitn(3, ' ').nth(2).unwrap_or(&desc).to_owned()
}

/// The raw model pointer, for the few calls llama-cpp-2 does not wrap.
fn model_ptr(model: &LlamaModel) -> *const sys::llama_model {
    // LlamaModel is a transparent wrapper over a non-null llama_model pointer.
    // SAFETY: reading the pointer field; it stays valid while `model` lives.
    unsafe { *(model as *const LlamaModel as *const *const sys::llama_model) }
}
