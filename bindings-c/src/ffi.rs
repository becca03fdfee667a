//! Reading arguments from C and handing results back: null checks, UTF-8 checks, owned
//! strings and boxed handles.

use std::ffi::{c_char, CStr, CString};

use serde::Serialize;

use crate::error::FfiError;
use crate::panic::ffi_panic_boundary;

/// A shared reference from a handle pointer, or `NullArgument` naming the parameter.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that no one mutates for `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(ptr: *const T, name: &'static str) -> Result<&'a T, FfiError> {
    // SAFETY: the caller vouches for the pointer; NULL is turned into an error.
    unsafe { ptr.as_ref() }.ok_or(FfiError::NullArgument(name))
}

/// A unique reference from a handle pointer, or `NullArgument` naming the parameter.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that no one else uses for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(
    ptr: *mut T,
    name: &'static str,
) -> Result<&'a mut T, FfiError> {
    // SAFETY: as above, and the caller promises exclusive use.
    unsafe { ptr.as_mut() }.ok_or(FfiError::NullArgument(name))
}

/// A borrowed `&str` from a NUL-terminated C string, checked for NULL and UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that lives and stays unchanged for `'a`.
pub(crate) unsafe fn arg_str<'a>(
    ptr: *const c_char,
    name: &'static str,
) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::NullArgument(name));
    }
    // SAFETY: non-null and NUL-terminated, as the caller vouches.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| FfiError::InvalidUtf8(name, e))
}

/// An output slot: checked for NULL and cleared, so a failed call leaves NULL behind.
pub(crate) struct Out<T>(*mut *mut T);

impl<T> Out<T> {
    /// # Safety
    /// `ptr` is NULL or valid for writing one pointer.
    pub(crate) unsafe fn new(ptr: *mut *mut T, name: &'static str) -> Result<Self, FfiError> {
        if ptr.is_null() {
            return Err(FfiError::NullArgument(name));
        }
        // SAFETY: non-null and writable, as the caller vouches.
        unsafe { ptr.write(std::ptr::null_mut()) };
        Ok(Out(ptr))
    }

    /// Like [`Out::new`], but a NULL slot means the caller does not want the value.
    ///
    /// # Safety
    /// As [`Out::new`].
    pub(crate) unsafe fn optional(ptr: *mut *mut T) -> Self {
        if !ptr.is_null() {
            // SAFETY: non-null and writable, as the caller vouches.
            unsafe { ptr.write(std::ptr::null_mut()) };
        }
        Out(ptr)
    }

    fn put(self, value: *mut T) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: checked writable in `new`/`optional`; the caller still owns the slot.
        unsafe { self.0.write(value) };
    }
}

impl Out<c_char> {
    /// Hands the caller an owned copy of `text` (if it asked for one).
    pub(crate) fn put_string(self, text: String) -> Result<(), FfiError> {
        if self.0.is_null() {
            return Ok(());
        }
        // The engine's JSON comes from serde_json, which escapes control characters: no NUL.
        let text = CString::new(text).map_err(engine::Error::internal)?;
        self.put(text.into_raw());
        Ok(())
    }

    /// Serializes `value` to JSON and hands the caller an owned string (if it asked for one).
    pub(crate) fn put_json<V: Serialize>(self, value: &V) -> Result<(), FfiError> {
        let json = serde_json::to_string(value).map_err(engine::Error::internal)?;
        self.put_string(json)
    }
}

impl<T> Out<T> {
    /// Hands the caller an owned, boxed handle.
    pub(crate) fn put_box(self, value: T) {
        if self.0.is_null() {
            return;
        }
        self.put(Box::into_raw(Box::new(value)));
    }
}

/// Frees a string that this library returned through an output parameter (`char **..._out`).
/// NULL is allowed and does nothing.
///
/// # Safety
/// `s` is NULL or a string returned by this library that has not been freed yet. Strings from
/// `ms_last_error_json`, `ms_last_error_message`, `ms_status_name` and `ms_version` are
/// borrowed and must not be passed here.
#[no_mangle]
pub unsafe extern "C" fn ms_string_free(s: *mut c_char) {
    ffi_panic_boundary! {
        if !s.is_null() {
            // SAFETY: the string came from `CString::into_raw` in `put_string`, as the caller vouches.
            drop(unsafe { CString::from_raw(s) });
        }
    }
}

/// The library's version, e.g. `"0.1.0"`.
///
/// Ownership: a static string; never free it.
#[no_mangle]
pub extern "C" fn ms_version() -> *const c_char {
    ffi_panic_boundary! { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() }
}
