//! `ms_registry`: the handle on the engine's registry, the services of a process.

use std::sync::Arc;

use engine::Registry;

use crate::call::Status;
use crate::error::ms_status;
use crate::ffi::Out;
use crate::panic::ffi_panic_boundary;

/// A registry of model services: serves every operation (`ms_call`, `ms_call_stream`): deploy,
/// list, retrieve, scale and delete services, and run chat completions against them by
/// access name.
///
/// Create with `ms_registry_new`, free with `ms_registry_free`. Thread-safe: one registry may
/// be used from many threads at once; free it once, after every other call on it returned.
#[allow(non_camel_case_types)]
pub struct ms_registry {
    /// Shared, as every binding holds the engine's registry, so Rust code linked into the same
    /// program can serve the same services (`Client::with_registry`).
    inner: Arc<Registry>,
}

impl ms_registry {
    /// The engine's registry, whose one entry (`call_blocking` / `stream`) serves every call.
    pub(crate) fn engine(&self) -> &Arc<Registry> {
        &self.inner
    }
}

/// Creates an empty registry.
///
/// Ownership: on `MS_STATUS_OK`, `*registry_out` is a new registry owned by the caller; free
/// it with `ms_registry_free`.
///
/// # Safety
/// `registry_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_registry_new(registry_out: *mut *mut ms_registry) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for `registry_out`.
        let out = unsafe { Out::new(registry_out, "registry_out") }?;
        out.put_box(ms_registry { inner: Arc::new(Registry::new()) });
        Ok(ms_status::Ok) as Status
    }
}

/// Frees a registry. Its services stop once the requests they hold have finished; streams
/// already created keep working until they end or are freed. NULL is allowed and does nothing.
/// To wait for a service to finish its work, delete it first (`ms_services_delete`).
///
/// # Safety
/// `registry` is NULL or a registry from `ms_registry_new` that has not been freed yet, and
/// no other call is using it.
#[no_mangle]
pub unsafe extern "C" fn ms_registry_free(registry: *mut ms_registry) {
    ffi_panic_boundary! {
        if !registry.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `ms_registry_new`.
            drop(unsafe { Box::from_raw(registry) });
        }
    }
}
