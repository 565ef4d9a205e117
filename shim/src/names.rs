//! Names: resolving a dotted name from `__main__` and builtins ([`p4s_lookup`],
//! [`p4s_lookup_value`]), binding a global ([`p4s_set_global`]) and importing a module
//! ([`p4s_import`]).
//!
//! May depend on: last_error, gil, pyerr, values, args (and lib).

use crate::args::name_arg;
use crate::gil::{enter, Entry};
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::values::{finish, from_value, P4sValue};
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use std::ffi::c_char;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// `__main__.__dict__` (borrowed; GIL held).
pub(crate) fn main_dict(api: &Api) -> PyObj {
    // SAFETY: GIL held; AddModule returns a borrowed module, GetDict a borrowed dict.
    unsafe {
        let m = (api.PyImport_AddModule)(c"__main__".as_ptr());
        if m.is_null() {
            return NULL;
        }
        (api.PyModule_GetDict)(m)
    }
}

/// For the builtins that read their caller's frame (`exec`, `eval`, `globals`, `locals`,
/// `vars`, `dir`), the helper module's stand-in that uses `__main__` instead, since a call
/// from Lisp has no Python frame (`exec('x = 1')` would fail with "frame does not exist").
/// A new reference, or NULL for any other name.
fn frame_free_stand_in(e: &Entry, name: &str) -> PyObj {
    let helper: &std::ffi::CStr = match name {
        "exec" => c"exec_in_main",
        "eval" => c"eval_in_main",
        "globals" => c"globals_of_main",
        "locals" => c"locals_of_main",
        "vars" => c"vars_of_main",
        "dir" => c"dir_of_main",
        _ => return NULL,
    };
    let api = e.api();
    // SAFETY: GIL held; the helper module is live; a new reference or NULL (error cleared).
    unsafe {
        let f = (api.PyObject_GetAttrString)(e.runtime().helpers(), helper.as_ptr());
        if f.is_null() {
            (api.PyErr_Clear)();
        }
        f
    }
}

/// Resolves a dotted name: the first part in `__main__`'s globals, then builtins; the rest as
/// attributes. New reference or NULL with `NameError`/`AttributeError` set.
fn lookup(e: &Entry, name: &[u8]) -> PyObj {
    let api = e.api();
    let text = String::from_utf8_lossy(name);
    let mut parts = text.split('.');
    let first = parts.next().unwrap_or("");
    let Ok(cfirst) = std::ffi::CString::new(first) else {
        return NULL;
    };
    // SAFETY: GIL held; GetItemString returns borrowed references or NULL.
    let mut o = unsafe {
        let g = main_dict(api);
        let mut o = if g.is_null() {
            NULL
        } else {
            (api.PyDict_GetItemString)(g, cfirst.as_ptr())
        };
        let mut stand_in = NULL;
        if o.is_null() {
            o = (api.PyDict_GetItemString)((api.PyEval_GetBuiltins)(), cfirst.as_ptr());
            if !o.is_null() && !text.contains('.') {
                stand_in = frame_free_stand_in(e, first);
            }
        }
        if o.is_null() && text.contains('.') {
            // An unbound first part of a dotted name is imported as a module ("math.sin"
            // before import-module). A module that cannot be imported reports the NameError
            // below, as for any unbound name.
            let m = (api.PyImport_ImportModule)(cfirst.as_ptr());
            if m.is_null() {
                (api.PyErr_Clear)();
            } else {
                stand_in = m;
                o = m;
            }
        }
        if o.is_null() {
            let msg = std::ffi::CString::new(format!("name '{first}' is not defined"))
                .unwrap_or_default();
            (api.PyErr_SetString)(Api::read_pointer(api.PyExc_NameError), msg.as_ptr());
            return NULL;
        }
        if stand_in.is_null() {
            (api.Py_IncRef)(o);
            o
        } else {
            stand_in
        }
    };
    for part in parts {
        let Ok(c) = std::ffi::CString::new(part) else {
            // SAFETY: our reference.
            unsafe { (api.Py_DecRef)(o) };
            return NULL;
        };
        // SAFETY: GIL held; `o` is ours.
        let next = unsafe { (api.PyObject_GetAttrString)(o, c.as_ptr()) };
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(o) };
        if next.is_null() {
            return NULL;
        }
        o = next;
    }
    o
}

export! {
    /// Resolves a dotted name (`len` UTF-8 bytes): its first part in `__main__`'s globals, then
    /// builtins, then (for a dotted name) imported as a module; the rest as attributes
    /// (`"math.pi"`, `"str"`, `"os.path.join"` before `os` is imported). One crossing for the
    /// whole policy.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_lookup(name: *const c_char, len: i64) -> *mut PyObject, on_panic = NULL, {
        let Some(e) = enter() else { return NULL };
        // SAFETY: `name` valid for `len` (caller's contract).
        let Some(n) = (unsafe { name_arg(name, len, "p4s_lookup") }) else {
            return NULL;
        };
        let r = lookup(&e, &n[..n.len() - 1]);
        if r.is_null() {
            take_python_error(&e);
        }
        r
    }
}

export! {
    /// Like [`p4s_lookup`], with the value packed into `out` as by `p4s_to_value`.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_lookup_value(name: *const c_char, len: i64, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        // SAFETY: `name` valid for `len` (caller's contract).
        let Some(n) = (unsafe { name_arg(name, len, "p4s_lookup_value") }) else {
            return P4S_ERROR;
        };
        let r = lookup(&e, &n[..n.len() - 1]);
        finish(&e, r, out, scratch, cap)
    }
}

export! {
    /// Binds global `name` (`len` UTF-8 bytes) in `__main__` to the packed `value`.
    /// Returns 0, -1 or -2.
    ///
    /// Owns: nothing returned; `__main__` keeps its own reference to the value.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_set_global(name: *const c_char, len: i64, value: *const P4sValue) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        // SAFETY: `name` valid for `len` (caller's contract).
        let Some(n) = (unsafe { name_arg(name, len, "p4s_set_global") }) else {
            return P4S_ERROR;
        };
        if value.is_null() {
            set_last_error("p4s_set_global: NULL value");
            return P4S_ERROR;
        }
        // SAFETY: GIL held; `value` valid.
        let v = unsafe { from_value(api, &*value) };
        if v.is_null() {
            return take_python_error(&e);
        }
        // SAFETY: GIL held; SetItemString does not steal.
        let rc = unsafe { (api.PyDict_SetItemString)(main_dict(api), n.as_ptr().cast(), v) };
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(v) };
        if rc != 0 { take_python_error(&e) } else { P4S_OK }
    }
}

export! {
    /// Imports module `name` (`len` UTF-8 bytes, dotted allowed). New reference to that module
    /// (the leaf of a dotted name) or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_import(name: *const c_char, len: i64) -> *mut PyObject, on_panic = NULL, {
        let Some(e) = enter() else { return NULL };
        // SAFETY: `name` valid for `len` (caller's contract).
        let Some(n) = (unsafe { name_arg(name, len, "p4s_import") }) else {
            return NULL;
        };
        // SAFETY: GIL held.
        let m = unsafe { (e.api().PyImport_ImportModule)(n.as_ptr().cast()) };
        if m.is_null() {
            take_python_error(&e);
        }
        m
    }
}
