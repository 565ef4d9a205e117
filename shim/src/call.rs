//! Calls, names, attributes, items, import and running code.
//!
//! The hot path is [`p4s_call_packed`]: the callable is a cached object, the arguments are
//! packed values, and the result comes back packed — one crossing and one GIL hold per call.
//! Calls use `PyObject_Vectorcall` (3.11+), `PyObject_VectorcallDict` (3.9, 3.10) or a tuple and
//! `PyObject_Call` (3.8).

use crate::errors::{set_last_error, take_python_error};
use crate::gil::{enter, Entry};
use crate::values::{from_value, to_value, P4sValue};
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::cell::RefCell;
use std::ffi::c_char;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// Calls `callable` with `args` (positional first, then the values of the keyword names in
/// `kwnames`, a tuple of str or NULL), vectorcall style. New reference or NULL (error set).
///
/// # Safety
/// GIL held; all objects live.
pub(crate) unsafe fn vectorcall(
    api: &Api,
    callable: PyObj,
    args: &[PyObj],
    kwnames: PyObj,
) -> PyObj {
    // SAFETY: (whole body) GIL held, objects live (caller's contract); each API returns a new
    // reference or NULL.
    unsafe {
        let nkw = if kwnames.is_null() {
            0
        } else {
            (api.PyTuple_Size)(kwnames) as usize
        };
        if nkw > args.len() {
            set_type_error_text(api, "more keyword names than argument values");
            return NULL;
        }
        let npos = args.len() - nkw;
        if let Some(vc) = api.PyObject_Vectorcall {
            return vc(callable, args.as_ptr(), npos, kwnames);
        }
        let kwargs = if nkw == 0 {
            NULL
        } else {
            let d = (api.PyDict_New)();
            if d.is_null() {
                return NULL;
            }
            for i in 0..nkw {
                if (api.PyDict_SetItem)(
                    d,
                    (api.PyTuple_GetItem)(kwnames, i as isize),
                    args[npos + i],
                ) != 0
                {
                    (api.Py_DecRef)(d);
                    return NULL;
                }
            }
            d
        };
        let r = if let Some(vd) = api.PyObject_VectorcallDict {
            vd(callable, args.as_ptr(), npos, kwargs)
        } else {
            let t = (api.PyTuple_New)(npos as isize);
            if t.is_null() {
                (api.Py_DecRef)(kwargs);
                return NULL;
            }
            for (i, &a) in args[..npos].iter().enumerate() {
                (api.Py_IncRef)(a);
                (api.PyTuple_SetItem)(t, i as isize, a);
            }
            let r = (api.PyObject_Call)(callable, t, kwargs);
            (api.Py_DecRef)(t);
            r
        };
        (api.Py_DecRef)(kwargs);
        r
    }
}

fn set_type_error_text(api: &Api, msg: &str) {
    let c = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: GIL held; the type variable is initialised after start.
    unsafe { (api.PyErr_SetString)(Api::read_pointer(api.PyExc_TypeError), c.as_ptr()) };
}

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

/// Finishes a call: converts `r` (new reference or NULL) into `out`.
fn finish(e: &Entry, r: PyObj, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32 {
    if r.is_null() {
        return take_python_error(e);
    }
    if out.is_null() {
        // SAFETY: GIL held; the caller does not want the result.
        unsafe { (e.api().Py_DecRef)(r) };
        return P4S_OK;
    }
    // SAFETY: GIL held; `out`/`scratch` valid (caller's contract).
    let st = unsafe { to_value(e, r, &mut *out, scratch, cap) };
    // SAFETY: `to_value` took its own reference where it keeps the object.
    unsafe { (e.api().Py_DecRef)(r) };
    st
}

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

/// A NUL-terminated copy of `len` bytes at `p`.
///
/// # Safety
/// `p` valid for `len` bytes.
unsafe fn cstring(p: *const c_char, len: i64) -> Option<Vec<u8>> {
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
unsafe fn obj_and_name(obj: PyObj, name: *const c_char, len: i64, what: &str) -> Option<Vec<u8>> {
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
unsafe fn name_arg(name: *const c_char, len: i64, what: &str) -> Option<Vec<u8>> {
    // SAFETY: caller's contract.
    let n = unsafe { cstring(name, len) };
    if n.is_none() {
        set_last_error(&format!("{what}: NULL name or NUL inside it"));
    }
    n
}

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
        match eval_with_obj(&e, TYPE_NAME_OF_OBJ, obj) {
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

/// A Python expression naming the type of `__p4s_obj`: `int`, `numpy.ndarray`, `mod.Class`.
pub(crate) const TYPE_NAME_OF_OBJ: &[u8] = b"(lambda t: t.__qualname__ if t.__module__ == 'builtins' else t.__module__ + '.' + t.__qualname__)(type(__p4s_obj))\0";

/// Evaluates `code` (NUL-terminated expression using `__p4s_obj`) with `obj` bound to it and
/// returns `str()` of the result as UTF-8 (GIL held). Errors are cleared, not kept.
pub(crate) fn eval_with_obj(e: &Entry, code: &[u8], obj: PyObj) -> Option<Vec<u8>> {
    let api = e.api();
    // SAFETY: GIL held throughout; every reference made here is released here.
    unsafe {
        let g = (api.PyDict_New)();
        if g.is_null() {
            (api.PyErr_Clear)();
            return None;
        }
        let ok =
            (api.PyDict_SetItemString)(g, c"__builtins__".as_ptr(), (api.PyEval_GetBuiltins)())
                == 0
                && (api.PyDict_SetItemString)(g, c"__p4s_obj".as_ptr(), obj) == 0;
        let r = if ok {
            (api.PyRun_StringFlags)(
                code.as_ptr().cast(),
                Py_eval_input,
                g,
                g,
                std::ptr::null_mut(),
            )
        } else {
            NULL
        };
        (api.Py_DecRef)(g);
        if r.is_null() {
            (api.PyErr_Clear)();
            return None;
        }
        let out = crate::errors::str_bytes(e, r);
        (api.Py_DecRef)(r);
        out
    }
}
