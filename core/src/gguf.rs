//! Opening a GGUF file: checks that give a clear reason before llama.cpp sees the file
//! (missing, not GGUF, truncated), the load itself, and the base-model metadata.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;

use crate::api::{BaseModel, ServiceKind};
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

/// An open GGUF header (metadata only, no tensor data), freed on drop.
struct GgufHeader(*mut sys::gguf_context);

impl Drop for GgufHeader {
    fn drop(&mut self) {
        // SAFETY: the pointer came from gguf_init_from_file and is freed once.
        unsafe { sys::gguf_free(self.0) }
    }
}

impl GgufHeader {
    fn open(path: &Path) -> Option<Self> {
        let cpath = CString::new(path.to_string_lossy().as_bytes()).ok()?;
        let params = sys::gguf_init_params {
            no_alloc: true,
            ctx: std::ptr::null_mut(),
        };
        // SAFETY: a valid C string; no ggml context is requested.
        let ctx = unsafe { sys::gguf_init_from_file(cpath.as_ptr(), params) };
        (!ctx.is_null()).then_some(GgufHeader(ctx))
    }

    fn key(&self, key: &str, kind: sys::gguf_type) -> Option<i64> {
        let key = CString::new(key).ok()?;
        // SAFETY: live context, valid C string.
        let id = unsafe { sys::gguf_find_key(self.0, key.as_ptr()) };
        // SAFETY: id is a valid key index when non-negative.
        (id >= 0 && unsafe { sys::gguf_get_kv_type(self.0, id) } == kind).then_some(id)
    }

    fn string(&self, key: &str) -> Option<String> {
        let id = self.key(key, sys::GGUF_TYPE_STRING)?;
        // SAFETY: the key holds a string; the pointer lives as long as the context.
        let value = unsafe { CStr::from_ptr(sys::gguf_get_val_str(self.0, id)) };
        Some(value.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
    }

    fn u32(&self, key: &str) -> Option<u32> {
        let id = self.key(key, sys::GGUF_TYPE_UINT32)?;
        // SAFETY: the key holds a u32.
        Some(unsafe { sys::gguf_get_val_u32(self.0, id) })
    }

    /// Bytes the file must have to hold every tensor's data.
    fn bytes_needed(&self) -> u64 {
        // SAFETY: live context; tensor indices are in range.
        unsafe {
            let data_offset = sys::gguf_get_data_offset(self.0) as u64;
            (0..sys::gguf_get_n_tensors(self.0))
                .map(|i| {
                    data_offset
                        + (sys::gguf_get_tensor_offset(self.0, i)
                            + sys::gguf_get_tensor_size(self.0, i)) as u64
                })
                .max()
                .unwrap_or(data_offset)
        }
    }
}

/// Reads the header of a GGUF file without loading its weights: the checks that give a clear
/// reason (missing, not GGUF, corrupt, truncated) and the base model as far as the metadata
/// tells it (the weights' type and parameter count are filled in by [`load_model`]).
pub(crate) fn inspect(path: &Path) -> Result<BaseModel> {
    let meta = std::fs::metadata(path)
        .map_err(|e| load_error(path, format!("cannot read the file: {e}")))?;
    if !meta.is_file() {
        return Err(load_error(path, "not a regular file"));
    }
    let mut magic = [0u8; 4];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if read.is_err() || &magic != b"GGUF" {
        return Err(load_error(
            path,
            "not a GGUF file (the file does not start with the `GGUF` magic bytes)",
        ));
    }
    let header = GgufHeader::open(path)
        .ok_or_else(|| load_error(path, "corrupt or truncated GGUF header or metadata"))?;
    let needed = header.bytes_needed();
    if needed > meta.len() {
        return Err(load_error(
            path,
            format!(
                "truncated file: its tensors need {needed} bytes but the file has {}",
                meta.len()
            ),
        ));
    }
    let architecture = header
        .string("general.architecture")
        .ok_or_else(|| load_error(path, "the GGUF metadata has no `general.architecture`"))?;
    Ok(BaseModel {
        name: header.string("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        size_label: header.string("general.size_label"),
        quantization: String::new(),
        trained_context_length: header
            .u32(&format!("{architecture}.context_length"))
            .unwrap_or(0),
        parameters: 0,
        file_size: meta.len(),
        path: path.to_path_buf(),
        has_chat_template: header.string("tokenizer.chat_template").is_some(),
        architecture,
    })
}

/// llama.cpp's encoder-only architectures: they have no KV cache and only produce embeddings.
const ENCODER_ARCHITECTURES: &[&str] = &[
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "neo-bert",
    "modern-bert",
];

/// llama.cpp's `LLAMA_POOLING_TYPE_RANK`: a reranker's score, not an embedding.
const POOLING_RANK: u32 = 4;

/// Whether a model serves embeddings: an encoder architecture, or a file that declares how to
/// pool its token vectors (`{arch}.pooling_type`, e.g. a decoder turned embedder). Rerankers
/// and files that declare no pooling (type 0) stay generative. Call after [`inspect`].
pub(crate) fn service_kind(path: &Path, architecture: &str) -> ServiceKind {
    let pooling = GgufHeader::open(path)
        .and_then(|h| h.u32(&format!("{architecture}.pooling_type")))
        .unwrap_or(0);
    if ENCODER_ARCHITECTURES.contains(&architecture) || (pooling != 0 && pooling != POOLING_RANK) {
        ServiceKind::Embedding
    } else {
        ServiceKind::Chat
    }
}

/// Loads the weights once; every instance of the service shares the returned model.
/// `base` is what [`inspect`] read; the load completes it.
pub(crate) fn load_model(
    path: &Path,
    gpu_layers: u32,
    mut base: BaseModel,
) -> Result<(Arc<LlamaModel>, BaseModel)> {
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
                base.architecture
            ),
        )
    })?;
    MODEL_LOADS.fetch_add(1, Ordering::Relaxed);
    base.quantization = quantization(&model);
    base.parameters = model.n_params();
    base.trained_context_length = model.n_ctx_train();
    Ok((Arc::new(model), base))
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
