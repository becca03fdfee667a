//! The typed functions: SDK-shaped conveniences (`ms_services_deploy`,
//! `ms_chat_completions_create` ...). Each is one call of the engine's one entry with its
//! operation's name and a JSON body, exactly what `ms_call` does: no engine logic here.

use std::ffi::c_char;

use engine::Operation;
use serde_json::json;

use crate::call::{call_into, call_stream_into};
use crate::error::ms_status;
use crate::ffi::{arg_ref, arg_str, Out};
use crate::panic::ffi_panic_boundary;
use crate::registry::ms_registry;
use crate::stream::ms_stream;

/// Deploys a model as a service: loads the GGUF file and starts the service's instances.
/// Blocks until the service is running (or failed to start).
///
/// `spec_json` is a service spec, e.g.
/// `{"name": "test", "access_name": "u-8105f7322477/test", "model": "/path/model.gguf"}`,
/// with the optional fields `instances`, `slots`, `context_length`, `threads`, `gpu_layers`,
/// `chat_template` and `queue_size`.
///
/// Ownership: on `MS_STATUS_OK`, `*info_json_out` (if `info_json_out` is not NULL) is the
/// service's info as a JSON object, owned by the caller: free it with `ms_string_free`. On
/// failure it is set to NULL.
///
/// Errors: `MS_STATUS_INVALID_REQUEST` (malformed spec, or an unknown field: `param` names
/// it), `MS_STATUS_SERVICE_EXISTS`, `MS_STATUS_MODEL_LOAD_FAILED`.
///
/// A convenience, the same as
/// `ms_call(registry, "services.deploy", spec_json, info_json_out)`.
///
/// # Safety
/// `registry` is a live registry; `spec_json` is NULL or a NUL-terminated string;
/// `info_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_deploy(
    registry: *const ms_registry,
    spec_json: *const c_char,
    info_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::optional(info_json_out) };
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let spec_json = unsafe { arg_str(spec_json, "spec_json") }?;
        call_into(registry, Operation::ServicesDeploy.name(), spec_json, out)
    }
}

/// Lists the deployed services.
///
/// Ownership: on `MS_STATUS_OK`, `*list_json_out` is `{"object": "list", "data": [info, ...]}`
/// (one service info per service, by access name), owned by the caller: free it with
/// `ms_string_free`.
///
/// A convenience, the same as
/// `ms_call(registry, "services.list", NULL, list_json_out)`.
///
/// # Safety
/// `registry` is a live registry; `list_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_list(
    registry: *const ms_registry,
    list_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(list_json_out, "list_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        call_into(registry, Operation::ServicesList.name(), "{}", out)
    }
}

/// Retrieves one service's info by access name.
///
/// Ownership: on `MS_STATUS_OK`, `*info_json_out` is the service's info as a JSON object,
/// owned by the caller: free it with `ms_string_free`.
///
/// Errors: `MS_STATUS_NOT_FOUND`.
///
/// A convenience, the same as
/// `ms_call(registry, "services.retrieve", {"access_name": access_name}, ...)`.
///
/// # Safety
/// `registry` is a live registry; `access_name` is NULL or a NUL-terminated string;
/// `info_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_retrieve(
    registry: *const ms_registry,
    access_name: *const c_char,
    info_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(info_json_out, "info_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let access_name = unsafe { arg_str(access_name, "access_name") }?;
        let body = json!({ "access_name": access_name }).to_string();
        call_into(registry, Operation::ServicesRetrieve.name(), &body, out)
    }
}

/// Scales a service to `instances` instances (llama contexts sharing the loaded weights).
/// Scaling down lets the removed instances finish their requests first; blocks until done.
///
/// Ownership: on `MS_STATUS_OK`, `*info_json_out` (if `info_json_out` is not NULL) is the
/// service's new info, owned by the caller: free it with `ms_string_free`.
///
/// Errors: `MS_STATUS_NOT_FOUND`, `MS_STATUS_INVALID_REQUEST` (e.g. 0 instances).
///
/// A convenience, the same as
/// `ms_call(registry, "services.scale", {"access_name", "instances"}, ...)`.
///
/// # Safety
/// `registry` is a live registry; `access_name` is NULL or a NUL-terminated string;
/// `info_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_scale(
    registry: *const ms_registry,
    access_name: *const c_char,
    instances: usize,
    info_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::optional(info_json_out) };
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let access_name = unsafe { arg_str(access_name, "access_name") }?;
        let body = json!({ "access_name": access_name, "instances": instances }).to_string();
        call_into(registry, Operation::ServicesScale.name(), &body, out)
    }
}

/// Deletes a service. `confirm` must equal the service's display `name` (as the product's
/// delete dialog asks). New requests to it fail with `MS_STATUS_NOT_FOUND` at once; requests
/// already queued or running finish before this returns.
///
/// Ownership: on `MS_STATUS_OK`, `*info_json_out` (if `info_json_out` is not NULL) is the
/// deleted service's last info, owned by the caller: free it with `ms_string_free`.
///
/// Errors: `MS_STATUS_NOT_FOUND`, `MS_STATUS_INVALID_REQUEST` (wrong confirmation; `param`
/// is `confirm`).
///
/// A convenience, the same as
/// `ms_call(registry, "services.delete", {"access_name", "confirm"}, ...)`.
///
/// # Safety
/// `registry` is a live registry; `access_name` and `confirm` are NULL or NUL-terminated
/// strings; `info_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_delete(
    registry: *const ms_registry,
    access_name: *const c_char,
    confirm: *const c_char,
    info_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::optional(info_json_out) };
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let access_name = unsafe { arg_str(access_name, "access_name") }?;
        let confirm = unsafe { arg_str(confirm, "confirm") }?;
        let body = json!({ "access_name": access_name, "confirm": confirm }).to_string();
        call_into(registry, Operation::ServicesDelete.name(), &body, out)
    }
}

/// Reads the services' request metrics: requests by the status they ended with, prompt and
/// completion tokens, queue depth, and time-to-first-token and latency histograms (the same
/// figures the HTTP server's `/metrics` shows). `access_name` NULL means every service.
///
/// Ownership: on `MS_STATUS_OK`, `*metrics_json_out` is `{"object": "list", "data": [...]}`
/// (one entry per service, by access name), owned by the caller: free it with
/// `ms_string_free`.
///
/// Errors: `MS_STATUS_NOT_FOUND` (no service has `access_name`).
///
/// A convenience, the same as
/// `ms_call(registry, "services.metrics", {"access_name": access_name}, ...)`.
///
/// # Safety
/// `registry` is a live registry; `access_name` is NULL or a NUL-terminated string;
/// `metrics_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_services_metrics(
    registry: *const ms_registry,
    access_name: *const c_char,
    metrics_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(metrics_json_out, "metrics_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let access_name = if access_name.is_null() {
            None
        } else {
            Some(unsafe { arg_str(access_name, "access_name") }?)
        };
        let body = json!({ "access_name": access_name }).to_string();
        call_into(registry, Operation::ServicesMetrics.name(), &body, out)
    }
}

/// Lists the running services as OpenAI models (`GET /v1/models`):
/// `{"object": "list", "data": [{"id": access_name, "object": "model", ...}]}`.
///
/// Ownership: on `MS_STATUS_OK`, `*models_json_out` is owned by the caller: free it with
/// `ms_string_free`.
///
/// A convenience, the same as
/// `ms_call(registry, "models.list", NULL, models_json_out)`.
///
/// # Safety
/// `registry` is a live registry; `models_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_models_list(
    registry: *const ms_registry,
    models_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(models_json_out, "models_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        call_into(registry, Operation::ModelsList.name(), "{}", out)
    }
}

/// Retrieves one model (`GET /v1/models/{model}`) by access name.
///
/// Ownership: on `MS_STATUS_OK`, `*model_json_out` is owned by the caller: free it with
/// `ms_string_free`.
///
/// Errors: `MS_STATUS_NOT_FOUND`.
///
/// A convenience, the same as
/// `ms_call(registry, "models.retrieve", {"model": model}, ...)`.
///
/// # Safety
/// `registry` is a live registry; `model` is NULL or a NUL-terminated string;
/// `model_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_models_retrieve(
    registry: *const ms_registry,
    model: *const c_char,
    model_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(model_json_out, "model_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let model = unsafe { arg_str(model, "model") }?;
        let body = json!({ "model": model }).to_string();
        call_into(registry, Operation::ModelsRetrieve.name(), &body, out)
    }
}

/// Runs a whole chat completion (`POST /v1/chat/completions`), blocking the calling thread
/// until it is done.
///
/// `request_json` is an OpenAI chat completion request, e.g.
/// `{"model": "u-8105f7322477/test", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}`.
/// Its `model` is the service's access name. `stream` is ignored: this function always
/// returns the whole completion (use `ms_chat_completions_create_stream` for chunks).
///
/// Ownership: on `MS_STATUS_OK`, `*response_json_out` is the `chat.completion` object as JSON,
/// owned by the caller: free it with `ms_string_free`. On failure it is set to NULL.
///
/// Errors: `MS_STATUS_INVALID_REQUEST` (malformed JSON or a bad value: the envelope's `param`
/// names the field), `MS_STATUS_NOT_FOUND` (no such service), `MS_STATUS_CONTEXT_LENGTH_EXCEEDED`,
/// `MS_STATUS_OVERLOADED`, `MS_STATUS_SERVICE_UNAVAILABLE`.
///
/// A convenience, the same as
/// `ms_call(registry, "chat.completions.create", request_json, response_json_out)`.
///
/// # Safety
/// `registry` is a live registry; `request_json` is NULL or a NUL-terminated string;
/// `response_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_chat_completions_create(
    registry: *const ms_registry,
    request_json: *const c_char,
    response_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(response_json_out, "response_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let request_json = unsafe { arg_str(request_json, "request_json") }?;
        call_into(registry, Operation::ChatCompletionsCreate.name(), request_json, out)
    }
}

/// Starts a streamed chat completion and returns its stream of `chat.completion.chunk`s; read
/// them with `ms_stream_next`. The request is validated, rendered and queued before this
/// returns, so request errors come from here, not from the stream. `stream` in the request is
/// ignored (always streamed); `stream_options.include_usage` adds a final usage chunk.
///
/// Ownership: on `MS_STATUS_OK`, `*stream_out` is a new stream owned by the caller: free it
/// with `ms_stream_free`, which cancels the generation if it is still running. On failure it
/// is set to NULL.
///
/// Errors: as `ms_chat_completions_create`.
///
/// A convenience, the same as
/// `ms_call_stream(registry, "chat.completions.create", request_json, stream_out)`.
///
/// # Safety
/// `registry` is a live registry; `request_json` is NULL or a NUL-terminated string;
/// `stream_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_chat_completions_create_stream(
    registry: *const ms_registry,
    request_json: *const c_char,
    stream_out: *mut *mut ms_stream,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(stream_out, "stream_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let request_json = unsafe { arg_str(request_json, "request_json") }?;
        call_stream_into(registry, Operation::ChatCompletionsCreate.name(), request_json, out)
    }
}
