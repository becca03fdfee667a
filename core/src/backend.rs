//! The one llama.cpp backend of the process, shared by every service and binding.

use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

use crate::error::{Error, Result};

static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

/// The process-wide backend, initialised on first use. llama.cpp's own log lines are routed
/// into `tracing` first, so they never reach the host program's stderr directly.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            crate::llama_log::install();
            crate::cpu_backend::load()?;
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("llama.cpp backend failed to initialise: {e}")))
}
