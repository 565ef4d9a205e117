//! Objects: attributes, items, `None`, type names, `str()` and `len()` of an object.
//!
//! May depend on: last_error, gil, pyerr, values, args, vectorcall (and lib).

use crate::args::obj_and_name;
use crate::gil::{enter, Entry};
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::values::{finish, from_value, P4sValue};
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::cell::RefCell;
use std::ffi::c_char;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// Checks `obj` and makes the key object from a packed `key` (a new reference), or the status
/// to return (-2 for NULL arguments, -1 when Python refused the key).
///
/// # Safety
/// `key`, if not NULL, points to a valid packed value.
unsafe fn key_object(
    e: &Entry,
    obj: PyObj,
    key: *const P4sValue,
    what: &str,
) -> Result<PyObj, i32> {
    if obj.is_null() || key.is_null() {
        set_last_error(&format!("{what}: NULL argument"));
        return Err(P4S_ERROR);
    }
    // SAFETY: GIL held (inside an entry); `key` valid (caller's contract).
    let k = unsafe { from_value(e.api(), &*key) };
    if k.is_null() {
        return Err(take_python_error(e));
    }
    Ok(k)
}

export! {
    /// Gets attribute `name` (`len` UTF-8 bytes) of `obj`, packed into `out` as by
    /// `p4s_to_value`. Returns 0, -1 or -2.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_getattr_value(obj: *mut PyObject, name: *const c_char, len: i64, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        // SAFETY: `name` valid for `len`.
        let Some(n) = (unsafe { obj_and_name(obj, name, len, "p4s_getattr_value") }) else {
            return P4S_ERROR;
        };
        // SAFETY: GIL held; `obj` live.
        let r = unsafe { (e.api().PyObject_GetAttrString)(obj, n.as_ptr().cast()) };
        finish(&e, r, out, scratch, cap)
    }
}

export! {
    /// Sets attribute `name` of `obj` to the packed `value`, or deletes it when `value` is NULL.
    /// Returns 0, -1 or -2.
    ///
    /// Owns: nothing returned; `obj` keeps its own reference to the value.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_setattr(obj: *mut PyObject, name: *const c_char, len: i64, value: *const P4sValue) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        // SAFETY: `name` valid for `len`.
        let Some(n) = (unsafe { obj_and_name(obj, name, len, "p4s_setattr") }) else {
            return P4S_ERROR;
        };
        let v = if value.is_null() { NULL } else {
            // SAFETY: GIL held; `value` valid.
            let v = unsafe { from_value(api, &*value) };
            if v.is_null() {
                return take_python_error(&e);
            }
            v
        };
        // SAFETY: GIL held; a NULL value deletes the attribute.
        let rc = unsafe { (api.PyObject_SetAttrString)(obj, n.as_ptr().cast(), v) };
        // SAFETY: our reference (NULL allowed).
        unsafe { (api.Py_DecRef)(v) };
        if rc != 0 { take_python_error(&e) } else { P4S_OK }
    }
}

export! {
    /// `obj[key]` with a packed key, the result packed into `out`. Returns 0, -1 or -2.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_getitem(obj: *mut PyObject, key: *const P4sValue, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        // SAFETY: `key` valid (caller's contract).
        let k = match unsafe { key_object(&e, obj, key, "p4s_getitem") } {
            Ok(k) => k,
            Err(st) => return st,
        };
        // SAFETY: GIL held.
        let r = unsafe { (api.PyObject_GetItem)(obj, k) };
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(k) };
        finish(&e, r, out, scratch, cap)
    }
}

export! {
    /// `obj[key] = value` with packed key and value, or `del obj[key]` when `value` is NULL.
    /// Returns 0, -1 or -2.
    ///
    /// Owns: nothing returned; `obj` keeps its own reference to the value.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_setitem(obj: *mut PyObject, key: *const P4sValue, value: *const P4sValue) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        // SAFETY: `key` valid (caller's contract).
        let k = match unsafe { key_object(&e, obj, key, "p4s_setitem") } {
            Ok(k) => k,
            Err(st) => return st,
        };
        let rc = if value.is_null() {
            // SAFETY: GIL held.
            unsafe { (api.PyObject_DelItem)(obj, k) }
        } else {
            // SAFETY: GIL held; `value` valid.
            let v = unsafe { from_value(api, &*value) };
            // SAFETY: GIL held; SetItem does not steal.
            let rc = if v.is_null() { -1 } else { unsafe { (api.PyObject_SetItem)(obj, k, v) } };
            // SAFETY: ours (NULL allowed).
            unsafe { (api.Py_DecRef)(v) };
            rc
        };
        // SAFETY: ours.
        unsafe { (api.Py_DecRef)(k) };
        if rc != 0 { take_python_error(&e) } else { P4S_OK }
    }
}

export! {
    /// The `None` object (borrowed; valid until stop).
    ///
    /// Owns: a borrowed reference, valid until Python stops.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with code `P4S_NOT_STARTED`, when Python is not running.
    fn p4s_none() -> *mut PyObject, on_panic = NULL, {
        let Some(e) = enter() else { return NULL };
        e.api()._Py_NoneStruct
    }
}

thread_local! {
    static NAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

export! {
    /// The qualified name of `obj`'s type: `int`, `numpy.ndarray`, `collections.OrderedDict`
    /// (builtins without a module). UTF-8, NUL-terminated, borrowed until the next call of this
    /// function on this thread; NULL on error.
    ///
    /// Owns: a borrowed UTF-8 string, valid until this thread's next `p4s_type_name`.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with a shim error (NULL `obj`, not running) or a kept Python exception.
    fn p4s_type_name(obj: *mut PyObject) -> *const c_char, on_panic = std::ptr::null(), {
        let Some(e) = enter() else { return std::ptr::null() };
        if obj.is_null() {
            set_last_error("p4s_type_name: NULL object");
            return std::ptr::null();
        }
        match type_name(&e, obj) {
            Some(bytes) => NAME.with(|n| {
                let mut n = n.borrow_mut();
                n.clear();
                n.extend_from_slice(&bytes);
                n.push(0);
                n.as_ptr().cast()
            }),
            None => std::ptr::null(),
        }
    }
}

export! {
    /// The type object of `obj` (borrowed): a cheap key for caching per-type decisions.
    ///
    /// Owns: a borrowed reference (the type lives at least as long as `obj`).
    /// GIL: not needed: it reads `obj`'s type field; `obj` must be live.
    /// Fails: NULL, with a shim error, for a NULL `obj`.
    fn p4s_type_of(obj: *mut PyObject) -> *mut PyObject, on_panic = NULL, {
        if obj.is_null() {
            set_last_error("p4s_type_of: NULL object");
            return NULL;
        }
        // SAFETY: `obj` is live (caller's contract); reading the type needs no GIL.
        unsafe { ob_type(obj) }
    }
}

/// A one-shot unary function call on an object, for the export `what` below.
fn unary(obj: PyObj, what: &str, f: impl FnOnce(&Api, PyObj) -> PyObj) -> PyObj {
    let Some(e) = enter() else { return NULL };
    if obj.is_null() {
        set_last_error(&format!("{what}: NULL object"));
        return NULL;
    }
    let r = f(e.api(), obj);
    if r.is_null() {
        take_python_error(&e);
    }
    r
}

export! {
    /// `str(obj)`: new str reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_str(obj: *mut PyObject) -> *mut PyObject, on_panic = NULL, {
        // SAFETY: GIL held inside `unary`; `obj` live.
        unary(obj, "p4s_str", |api, o| unsafe { (api.PyObject_Str)(o) })
    }
}

export! {
    /// `len(obj)`, or -1 (Python error kept) / -2.
    ///
    /// Owns: nothing.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_len(obj: *mut PyObject) -> i64, on_panic = i64::from(P4S_ERROR), {
        let Some(e) = enter() else { return i64::from(P4S_ERROR) };
        if obj.is_null() {
            set_last_error("p4s_len: NULL object");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: GIL held; `obj` live.
        let n = unsafe { (e.api().PyObject_Size)(obj) };
        if n < 0 { i64::from(take_python_error(&e)) } else { n as i64 }
    }
}

/// `str()` of `_py4cl2_cffi.type_name(obj)` as UTF-8 (GIL held): `int`, `numpy.ndarray`,
/// `mod.Class`. Errors are cleared, not kept.
fn type_name(e: &Entry, obj: PyObj) -> Option<Vec<u8>> {
    let api = e.api();
    // SAFETY: GIL held; the helper module is live; every reference made here is released here.
    unsafe {
        let f = (api.PyObject_GetAttrString)(e.runtime().helpers(), c"type_name".as_ptr());
        let r = if f.is_null() {
            NULL
        } else {
            let r = vectorcall(api, f, &[obj], NULL);
            (api.Py_DecRef)(f);
            r
        };
        if r.is_null() {
            (api.PyErr_Clear)();
            return None;
        }
        let out = crate::pyerr::str_bytes(e, r);
        (api.Py_DecRef)(r);
        out
    }
}
