//! Checking and copying the arguments of exports: names and source text given as pointer and
//! length, object arguments that must not be NULL. A bad argument is a shim error naming the
//! export.
//!
//! May depend on: last_error (and lib).

use crate::last_error::set_last_error;
use crate::PyObject;
use std::ffi::c_char;

/// A NUL-terminated copy of `len` bytes at `p`.
///
/// # Safety
/// `p` valid for `len` bytes.
pub(crate) unsafe fn cstring(p: *const c_char, len: i64) -> Option<Vec<u8>> {
    if p.is_null() || len < 0 {
        return None;
    }
    // SAFETY: caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) };
    if bytes.contains(&0) {
        return None;
    }
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    Some(v)
}

/// Checks a (non-NULL) object argument and copies a name argument NUL-terminated; on bad input
/// records a shim error naming the function `what` and returns `None`.
///
/// # Safety
/// `name` valid for `len` bytes.
pub(crate) unsafe fn obj_and_name(
    obj: *mut PyObject,
    name: *const c_char,
    len: i64,
    what: &str,
) -> Option<Vec<u8>> {
    if obj.is_null() {
        set_last_error(&format!("{what}: NULL object"));
        return None;
    }
    // SAFETY: caller's contract.
    unsafe { name_arg(name, len, what) }
}

/// Copies a name argument NUL-terminated; on bad input records a shim error naming the
/// function `what` and returns `None`.
///
/// # Safety
/// `name` valid for `len` bytes.
pub(crate) unsafe fn name_arg(name: *const c_char, len: i64, what: &str) -> Option<Vec<u8>> {
    // SAFETY: caller's contract.
    let n = unsafe { cstring(name, len) };
    if n.is_none() {
        set_last_error(&format!("{what}: NULL name or NUL inside it"));
    }
    n
}
