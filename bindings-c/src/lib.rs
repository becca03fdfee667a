//! The C ABI of modelservice: `include/modelservice.h` is generated from this crate by
//! cbindgen.
//!
//! One entry serves every operation by name, JSON in and JSON out (`ms_call`, and
//! `ms_call_stream` for chunks); the typed functions (`ms_services_deploy` ...) are one-line
//! conveniences over it. Handles are opaque (`ms_registry`, `ms_stream`) with create/free
//! pairs; every fallible function returns an `ms_status` and leaves the OpenAI error envelope
//! in the thread's last error. No panic crosses the boundary (see `panic.rs`).

mod call;
mod conveniences;
mod error;
mod ffi;
mod panic;
mod registry;
mod stream;

pub use call::{ms_call, ms_call_stream, ms_operations};
pub use conveniences::{
    ms_chat_completions_create, ms_chat_completions_create_stream, ms_models_list,
    ms_models_retrieve, ms_services_delete, ms_services_deploy, ms_services_list,
    ms_services_metrics, ms_services_retrieve, ms_services_scale,
};
pub use error::{
    ms_last_error_json, ms_last_error_message, ms_status, ms_status_http_status, ms_status_name,
};
pub use ffi::{ms_string_free, ms_version};
pub use registry::{ms_registry, ms_registry_free, ms_registry_new};
pub use stream::{ms_stream, ms_stream_free, ms_stream_next, ms_stream_next_timeout};
