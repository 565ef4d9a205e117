//! Calls: the hot path [`p4s_call_packed`], method calls and calls with objects.
//!
//! [`p4s_call_packed`]: the callable is a cached object, the arguments are packed values, and
//! the result comes back packed — one crossing and one GIL hold per call. Calls go through
//! [`vectorcall`] (or `PyObject_Vectorcall` directly on 3.11+).
//!
//! May depend on: last_error, gil, pyerr, values, vectorcall (and lib).

use crate::gil::enter;
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::values::{finish, from_value, P4sValue};
use crate::vectorcall::{set_type_error_text, vectorcall};
use crate::{PyObject, P4S_ERROR};
use py4cl2_cffi_loader::api::Api;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// Makes the argument objects for `n` packed values (after an optional `first`, e.g. `self`)
/// and runs `f` on them: borrowed objects are used as they are, others are made new and
/// released after `f`. Up to [`INLINE_ARGS`] live in a stack array. Returns `None` (Python
/// error set) when a value cannot be made.
///
/// # Safety
/// GIL held; `vals` valid for `n` values.
#[inline(always)]
unsafe fn with_args<R>(
    api: &Api,
    first: PyObj,
    vals: *const P4sValue,
    n: usize,
    f: impl FnOnce(&[PyObj]) -> R,
) -> Option<R> {
    let total = n + usize::from(!first.is_null());
    if total > INLINE_ARGS {
        // SAFETY: same contract.
        return unsafe { with_args_heap(api, first, vals, n, f) };
    }
    let mut objs = [std::mem::MaybeUninit::<PyObj>::uninit(); INLINE_ARGS];
    let mut owned: u32 = 0;
    let mut len = 0;
    if !first.is_null() {
        objs[0].write(first);
        len = 1;
    }
    for i in 0..n {
        // SAFETY: `vals` valid for `n` (caller's contract).
        let v = unsafe { &*vals.add(i) };
        let o = if v.tag == crate::values::P4S_OBJECT && v.a != 0 {
            v.a as PyObj
        } else {
            // SAFETY: GIL held; pointers in `v` valid (caller's contract).
            let o = unsafe { from_value(api, v) };
            if o.is_null() {
                release_owned(api, &objs, owned);
                return None;
            }
            owned |= 1 << len;
            o
        };
        objs[len].write(o);
        len += 1;
    }
    // SAFETY: the first `len` slots were written above.
    let slice = unsafe { std::slice::from_raw_parts(objs.as_ptr() as *const PyObj, len) };
    let r = f(slice);
    release_owned(api, &objs, owned);
    Some(r)
}

/// Releases the references marked in `owned` (GIL held).
#[inline(always)]
fn release_owned(api: &Api, objs: &[std::mem::MaybeUninit<PyObj>], mut owned: u32) {
    while owned != 0 {
        let i = owned.trailing_zeros() as usize;
        // SAFETY: slot `i` was written with a reference we made; the GIL is held.
        unsafe { (api.Py_DecRef)(objs[i].assume_init()) };
        owned &= owned - 1;
    }
}

/// [`with_args`] for many arguments, on the heap.
///
/// # Safety
/// As for [`with_args`].
#[inline(never)]
unsafe fn with_args_heap<R>(
    api: &Api,
    first: PyObj,
    vals: *const P4sValue,
    n: usize,
    f: impl FnOnce(&[PyObj]) -> R,
) -> Option<R> {
    let mut objs: Vec<PyObj> = Vec::with_capacity(n + 1);
    let mut mine: Vec<bool> = Vec::with_capacity(n + 1);
    if !first.is_null() {
        objs.push(first);
        mine.push(false);
    }
    let release = |objs: &[PyObj], mine: &[bool]| {
        for (o, m) in objs.iter().zip(mine) {
            if *m {
                // SAFETY: GIL held; a reference we made.
                unsafe { (api.Py_DecRef)(*o) };
            }
        }
    };
    for i in 0..n {
        // SAFETY: `vals` valid for `n` (caller's contract).
        let v = unsafe { &*vals.add(i) };
        if v.tag == crate::values::P4S_OBJECT && v.a != 0 {
            objs.push(v.a as PyObj);
            mine.push(false);
        } else {
            // SAFETY: GIL held; pointers in `v` valid.
            let o = unsafe { from_value(api, v) };
            if o.is_null() {
                release(&objs, &mine);
                return None;
            }
            objs.push(o);
            mine.push(true);
        }
    }
    let r = f(&objs);
    release(&objs, &mine);
    Some(r)
}

const INLINE_ARGS: usize = 16;

export! {
    /// Calls `callable` (borrowed) with `nargs` packed values: positional ones first, then one
    /// value per name in `kwnames` (a tuple of str, borrowed, or NULL). The result is packed
    /// into `out` as by `p4s_to_value` (strings copied into `scratch`, `cap` UTF-32 characters,
    /// when they fit); `out` may be NULL to discard it. Returns 0, -1 (Python error kept) or -2.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits; arguments are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_call_packed(callable: *mut PyObject, args: *const P4sValue, nargs: i64, kwnames: *mut PyObject,
                       out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        if callable.is_null() || nargs < 0 || (args.is_null() && nargs > 0) {
            set_last_error("p4s_call_packed: NULL callable or bad arguments");
            return P4S_ERROR;
        }
        let api = e.api();
        // SAFETY: GIL held; `args` valid for `nargs` values (caller's contract); the objects
        // are live for the call.
        let r = unsafe {
            with_args(api, NULL, args, nargs as usize, |objs| {
                match api.PyObject_Vectorcall {
                    Some(vc) if kwnames.is_null() => vc(callable, objs.as_ptr(), objs.len(), NULL),
                    _ => vectorcall(api, callable, objs, kwnames),
                }
            })
        };
        match r {
            Some(r) => finish(&e, r, out, scratch, cap),
            None => take_python_error(&e),
        }
    }
}

export! {
    /// Calls method `name` (a str object, borrowed — intern it once) of `obj` with packed
    /// arguments, like [`p4s_call_packed`].
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits; arguments and `name` are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_call_method_packed(obj: *mut PyObject, name: *mut PyObject, args: *const P4sValue, nargs: i64,
                              kwnames: *mut PyObject, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        if obj.is_null() || name.is_null() || nargs < 0 || (args.is_null() && nargs > 0) {
            set_last_error("p4s_call_method_packed: NULL argument");
            return P4S_ERROR;
        }
        let api = e.api();
        if let Some(vm) = api.PyObject_VectorcallMethod {
            // SAFETY: GIL held.
            let nkw = if kwnames.is_null() { 0 } else { unsafe { (api.PyTuple_Size)(kwnames) as usize } };
            if nkw > nargs as usize {
                set_type_error_text(api, "more keyword names than argument values");
                return take_python_error(&e);
            }
            // SAFETY: GIL held; `args` valid; objs[0] is self, as VectorcallMethod expects, and
            // the count given is the positional ones (self included).
            let r = unsafe { with_args(api, obj, args, nargs as usize, |objs| vm(name, objs.as_ptr(), objs.len() - nkw, kwnames)) };
            return match r {
                Some(r) => finish(&e, r, out, scratch, cap),
                None => take_python_error(&e),
            };
        }
        // SAFETY: GIL held.
        let m = unsafe { (api.PyObject_GetAttr)(obj, name) };
        if m.is_null() {
            return take_python_error(&e);
        }
        // SAFETY: GIL held; `args` valid; objects live for the call.
        let r = unsafe { with_args(api, NULL, args, nargs as usize, |objs| vectorcall(api, m, objs, kwnames)) }.unwrap_or(NULL);
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(m) };
        finish(&e, r, out, scratch, cap)
    }
}

export! {
    /// Calls `callable` with objects: `args` (`nargs` borrowed objects: positional, then the
    /// keyword values for `kwnames`, a tuple of str or NULL). New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); arguments are
    ///   borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_call(callable: *mut PyObject, args: *const *mut PyObject, nargs: i64, kwnames: *mut PyObject) -> *mut PyObject, on_panic = NULL, {
        let Some(e) = enter() else { return NULL };
        if callable.is_null() || nargs < 0 || (args.is_null() && nargs > 0) {
            set_last_error("p4s_call: NULL callable or bad arguments");
            return NULL;
        }
        let slice: &[PyObj] = if nargs == 0 { &[] } else {
            // SAFETY: `args` valid for `nargs` (caller's contract).
            unsafe { std::slice::from_raw_parts(args, nargs as usize) }
        };
        // SAFETY: GIL held; objects live.
        let r = unsafe { vectorcall(e.api(), callable, slice, kwnames) };
        if r.is_null() {
            take_python_error(&e);
        }
        r
    }
}
