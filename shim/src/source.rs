//! Running Python source text: [`run`], the one place in the shim that compiles and evaluates
//! source (used by [`p4s_exec`] and [`p4s_eval`]). Everything else the shim runs in Python is a
//! function of the helper module `_py4cl2_cffi` (loader/src/helpers.py).
//!
//! May depend on: last_error, gil, pyerr, values, args, names (and lib).

use crate::args::cstring;
use crate::gil::{enter, Entry};
use crate::last_error::set_last_error;
use crate::names::main_dict;
use crate::pyerr::take_python_error;
use crate::values::{finish, P4sValue};
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::ffi_types::*;
use std::ffi::c_char;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// Compiles and runs `code` in `globals`/`locals` (NULL: `__main__`'s dict) with `mode`.
/// `Err(P4S_ERROR)` for bad input; `Ok(NULL)` with a Python error set when Python raised.
fn run(
    e: &Entry,
    code: *const c_char,
    len: i64,
    mode: i32,
    globals: PyObj,
    locals: PyObj,
) -> Result<PyObj, i32> {
    let api = e.api();
    // SAFETY: `code` valid for `len` (caller's contract).
    let Some(c) = (unsafe { cstring(code, len) }) else {
        set_last_error("NULL code or a NUL byte inside it");
        return Err(P4S_ERROR);
    };
    let g = if globals.is_null() {
        main_dict(api)
    } else {
        globals
    };
    let l = if locals.is_null() { g } else { locals };
    // SAFETY: GIL held; `c` is NUL-terminated; dicts live.
    unsafe {
        let compiled = (api.Py_CompileString)(c.as_ptr().cast(), c"<py4cl2-cffi>".as_ptr(), mode);
        if compiled.is_null() {
            return Ok(NULL);
        }
        let r = (api.PyEval_EvalCode)(compiled, g, l);
        (api.Py_DecRef)(compiled);
        Ok(r)
    }
}

export! {
    /// Runs statements (`len` UTF-8 bytes) in `globals`/`locals` (NULL: `__main__`'s dict).
    /// Returns 0, -1 or -2.
    ///
    /// Owns: nothing returned; `globals`/`locals` are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_exec(code: *const c_char, len: i64, globals: *mut PyObject, locals: *mut PyObject) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let r = match run(&e, code, len, Py_file_input, globals, locals) {
            Ok(r) => r,
            Err(st) => return st,
        };
        if r.is_null() {
            return take_python_error(&e);
        }
        // SAFETY: our reference.
        unsafe { (e.api().Py_DecRef)(r) };
        P4S_OK
    }
}

export! {
    /// Evaluates an expression (`len` UTF-8 bytes) in `globals`/`locals` (NULL: `__main__`'s
    /// dict), the value packed into `out`. Returns 0, -1 or -2.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits; `globals`/`locals` are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_eval(code: *const c_char, len: i64, globals: *mut PyObject, locals: *mut PyObject,
                out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let r = match run(&e, code, len, Py_eval_input, globals, locals) {
            Ok(r) => r,
            Err(st) => return st,
        };
        finish(&e, r, out, scratch, cap)
    }
}
