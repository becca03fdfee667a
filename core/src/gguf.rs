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

    fn f32(&self, key: &str) -> Option<f32> {
        let id = self.key(key, sys::GGUF_TYPE_FLOAT32)?;
        // SAFETY: the key holds an f32.
        Some(unsafe { sys::gguf_get_val_f32(self.0, id) })
    }

    /// An array of strings, as llama.cpp reads it (each up to its first NUL byte).
    fn strings(&self, key: &str) -> Option<Vec<&[u8]>> {
        let id = self.key(key, sys::GGUF_TYPE_ARRAY)?;
        // SAFETY: the key holds an array; its elements are read as strings only when they are
        // strings, within its length; the pointers live as long as the context (and `self`).
        unsafe {
            if sys::gguf_get_arr_type(self.0, id) != sys::GGUF_TYPE_STRING {
                return None;
            }
            let n = sys::gguf_get_arr_n(self.0, id);
            Some(
                (0..n)
                    .map(|i| CStr::from_ptr(sys::gguf_get_arr_str(self.0, id, i)).to_bytes())
                    .collect(),
            )
        }
    }

    /// A number, or a per-layer array of numbers, of any integer type; `None` when the key is
    /// absent, negative or not an integer.
    fn numbers(&self, key: &str) -> Option<Vec<u64>> {
        let key = CString::new(key).ok()?;
        // SAFETY: live context, valid C string.
        let id = unsafe { sys::gguf_find_key(self.0, key.as_ptr()) };
        if id < 0 {
            return None;
        }
        // SAFETY: id is a valid key index.
        let kind = unsafe { sys::gguf_get_kv_type(self.0, id) };
        if kind == sys::GGUF_TYPE_ARRAY {
            // SAFETY: the key holds an array; its data is read only for integer element types
            // (gguf_get_arr_data asserts on string arrays), within its length.
            unsafe {
                let element = sys::gguf_get_arr_type(self.0, id);
                integer_size(element)?;
                let n = sys::gguf_get_arr_n(self.0, id);
                let data = sys::gguf_get_arr_data(self.0, id);
                (0..n).map(|i| read_integer(element, data, i)).collect()
            }
        } else {
            integer_size(kind)?;
            // SAFETY: the key holds one integer (gguf_get_val_data asserts on strings and arrays).
            unsafe {
                Some(vec![read_integer(
                    kind,
                    sys::gguf_get_val_data(self.0, id),
                    0,
                )?])
            }
        }
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

/// Bytes of one integer of GGUF type `kind`; `None` for the types that are not integers.
fn integer_size(kind: sys::gguf_type) -> Option<usize> {
    Some(match kind {
        sys::GGUF_TYPE_UINT8 | sys::GGUF_TYPE_INT8 => 1,
        sys::GGUF_TYPE_UINT16 | sys::GGUF_TYPE_INT16 => 2,
        sys::GGUF_TYPE_UINT32 | sys::GGUF_TYPE_INT32 => 4,
        sys::GGUF_TYPE_UINT64 | sys::GGUF_TYPE_INT64 => 8,
        _ => return None,
    })
}

/// Element `i` of an integer array of GGUF type `kind`; `None` when it is negative.
///
/// # Safety
/// `data` must point to at least `i + 1` integers of that type.
unsafe fn read_integer(
    kind: sys::gguf_type,
    data: *const std::ffi::c_void,
    i: usize,
) -> Option<u64> {
    let size = integer_size(kind)?;
    // SAFETY: the caller guarantees the element exists; GGUF data need not be aligned.
    let at = unsafe { data.cast::<u8>().add(i * size) };
    // SAFETY: as above.
    let value: i128 = unsafe {
        match kind {
            sys::GGUF_TYPE_UINT8 => at.read().into(),
            sys::GGUF_TYPE_INT8 => (at.cast::<i8>().read()).into(),
            sys::GGUF_TYPE_UINT16 => at.cast::<u16>().read_unaligned().into(),
            sys::GGUF_TYPE_INT16 => at.cast::<i16>().read_unaligned().into(),
            sys::GGUF_TYPE_UINT32 => at.cast::<u32>().read_unaligned().into(),
            sys::GGUF_TYPE_INT32 => at.cast::<i32>().read_unaligned().into(),
            sys::GGUF_TYPE_UINT64 => at.cast::<u64>().read_unaligned().into(),
            _ => at.cast::<i64>().read_unaligned().into(),
        }
    };
    u64::try_from(value).ok()
}

/// What the KV cache of a model costs, read from its GGUF metadata before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KvGeometry {
    /// Layers of the model (`{arch}.block_count`).
    pub layers: u64,
    /// Bytes one token of context takes in the KV cache over all layers: per layer, its KV heads
    /// times the key and value head sizes, at 2 bytes each (llama.cpp's default F16 cache).
    pub bytes_per_token: u64,
}

/// A per-layer value: one number for every layer, or one per layer (0 when missing).
fn at_layer(values: &[u64], layer: u64) -> u64 {
    match values {
        [one] => *one,
        many => many.get(layer as usize).copied().unwrap_or(0),
    }
}

/// Bytes of one cached key or value element (the F16 type llama.cpp caches in by default).
const KV_ELEMENT_BYTES: u64 = 2;

/// Reads the KV cache geometry of the model at `path` from its metadata: `{arch}.block_count`,
/// `.attention.head_count(_kv)` (a number or one per layer), `.attention.key_length` and
/// `.attention.value_length` (default: `embedding_length / head_count`).
pub(crate) fn kv_geometry(path: &Path, architecture: &str) -> Result<KvGeometry> {
    let header = GgufHeader::open(path)
        .ok_or_else(|| load_error(path, "corrupt or truncated GGUF header or metadata"))?;
    let key = |name: &str| format!("{architecture}.{name}");
    let layers = header
        .numbers(&key("block_count"))
        .and_then(|v| v.first().copied())
        .ok_or_else(|| {
            load_error(
                path,
                format!("the GGUF metadata has no `{architecture}.block_count`"),
            )
        })?;
    let number = |name: &str| header.numbers(&key(name));
    let embedding = number("embedding_length").map_or(0, |v| at_layer(&v, 0));
    let heads = number("attention.head_count").unwrap_or_default();
    let kv_heads = number("attention.head_count_kv").unwrap_or_else(|| heads.clone());
    let key_length = number("attention.key_length");
    let value_length = number("attention.value_length");
    let mut bytes_per_token = 0u64;
    // llama.cpp refuses more layers than it has room for; no need to count past that.
    for layer in 0..layers.min(crate::limits::MAX_LAYERS) {
        let head_size = embedding.checked_div(at_layer(&heads, layer)).unwrap_or(0);
        let k = key_length
            .as_deref()
            .map_or(head_size, |v| at_layer(v, layer));
        let v = value_length
            .as_deref()
            .map_or(head_size, |v| at_layer(v, layer));
        let layer_bytes = at_layer(&kv_heads, layer)
            .saturating_mul(k.saturating_add(v))
            .saturating_mul(KV_ELEMENT_BYTES);
        bytes_per_token = bytes_per_token.saturating_add(layer_bytes);
    }
    Ok(KvGeometry {
        layers,
        bytes_per_token,
    })
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
    check_metadata(&header, &architecture).map_err(|reason| load_error(path, reason))?;
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

/// The metadata llama.cpp trusts without checking: values it asserts on (which aborts the
/// process) or that make a later call throw through Rust (which aborts it as well). Each check
/// names the key at fault; each was a crash in the hostile-file corpus (`tests/hostile_models`).
fn check_metadata(header: &GgufHeader, architecture: &str) -> std::result::Result<(), String> {
    let key = |name: &str| format!("{architecture}.{name}");
    // llama.cpp asserts 0 < n_layer <= LLAMA_MAX_LAYERS.
    let layers = header.numbers(&key("block_count"));
    match layers.as_deref() {
        Some([n]) if (1..=crate::limits::MAX_LAYERS).contains(n) => {}
        Some([n]) => {
            return Err(format!(
                "`{}` is {n}; a model has between 1 and {} layers",
                key("block_count"),
                crate::limits::MAX_LAYERS
            ))
        }
        _ => {
            return Err(format!(
                "the GGUF metadata has no number `{}`",
                key("block_count")
            ))
        }
    }
    // llama-cpp-2 reads the trained context as a positive i32 and panics otherwise.
    if let Some(trained) = header.numbers(&key("context_length")) {
        if !matches!(trained.as_slice(), [n] if (1..=i32::MAX as u64).contains(n)) {
            return Err(format!(
                "`{}` is {trained:?}; it must be between 1 and {}",
                key("context_length"),
                i32::MAX
            ));
        }
    }
    // Far past any real model; only a corrupt file would size a KV cache by these.
    for (name, most) in [
        ("embedding_length", 1u64 << 18),
        ("attention.head_count", 1 << 14),
        ("attention.head_count_kv", 1 << 14),
        ("attention.key_length", 1 << 14),
        ("attention.value_length", 1 << 14),
    ] {
        if let Some(v) = header.numbers(&key(name)).and_then(|v| v.into_iter().max()) {
            if v > most {
                return Err(format!(
                    "`{}` is {v}; no model has more than {most}",
                    key(name)
                ));
            }
        }
    }
    // Normalisation asserts eps >= 0 on the first decode.
    for name in [
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
    ] {
        if let Some(eps) = header.f32(&key(name)) {
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(format!(
                    "`{}` is {eps}; it must be a finite number >= 0",
                    key(name)
                ));
            }
        }
    }
    check_vocabulary(header)
}

/// The tokenizer checks: llama.cpp asserts that token texts are unique and that a model has a
/// vocabulary at all, and its SentencePiece tokenizer throws (through Rust: an abort) when a
/// byte it falls back to has no token.
fn check_vocabulary(header: &GgufHeader) -> std::result::Result<(), String> {
    let model = header.string("tokenizer.ggml.model").unwrap_or_default();
    if matches!(model.as_str(), "none" | "no_vocab") {
        return Err(format!(
            "the model has no vocabulary (`tokenizer.ggml.model` is `{model}`); a chat service needs one"
        ));
    }
    let Some(tokens) = header.strings("tokenizer.ggml.tokens") else {
        return Ok(()); // llama.cpp refuses a missing or mistyped token list itself
    };
    // llama.cpp stands in `[EMPTY_<id>]` for an empty token text.
    let texts: Vec<std::borrow::Cow<'_, [u8]>> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| match t.is_empty() {
            true => format!("[EMPTY_{i}]").into_bytes().into(),
            false => (*t).into(),
        })
        .collect();
    let mut seen = std::collections::HashMap::with_capacity(texts.len());
    for (id, text) in texts.iter().enumerate() {
        if let Some(first) = seen.insert(text.as_ref(), id) {
            return Err(format!(
                "tokens {first} and {id} of `tokenizer.ggml.tokens` are the same text `{}`",
                String::from_utf8_lossy(text)
            ));
        }
    }
    if model == "llama" {
        for byte in 0..=255u8 {
            let hex = format!("<0x{byte:02X}>");
            if !seen.contains_key(hex.as_bytes()) && !seen.contains_key(&[byte][..]) {
                return Err(format!(
                    "the SentencePiece vocabulary has no token for byte {hex}, which its tokenizer falls back to"
                ));
            }
        }
    }
    Ok(())
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
    // On a thread that ends, so no OpenMP team stays on the caller's thread (crate::threads).
    let loaded = crate::threads::on_own_thread(|| {
        let mut last_tenth = -1i32;
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(gpu_layers)
            .with_progress_callback(move |progress| {
                let tenth = (progress * 10.0) as i32;
                if tenth != last_tenth {
                    last_tenth = tenth;
                    let progress = format!("{:.0}%", progress * 100.0);
                    tracing::info!(target: "modelservice::load", path = %shown, progress, "loading model");
                }
                true
            });
        LlamaModel::load_from_file(backend, path, &params).map_err(|e| e.to_string())
    });
    let model = loaded
        .unwrap_or_else(|panic| Err(format!("the load panicked: {panic}")))
        .map_err(|e| {
            let architecture = &base.architecture;
            load_error(
                path,
                format!(
                    "llama.cpp could not load it ({e}); architecture `{architecture}` may be \
                     unsupported or the tensor data corrupt"
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
