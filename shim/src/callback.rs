//! Lisp functions callable from Python, and Lisp errors passing through Python.
//!
//! Lisp registers one handler, a C function pointer. [`p4s_make_callable`] makes a Python
//! builtin function whose `self` is a capsule holding a Lisp handle (an integer the Lisp side
//! maps to a function). Calling it runs the trampoline: it marks the thread as holding the GIL
//! (so Lisp may call back into Python), gives Lisp its own floating-point traps, calls the
//! handler with `(handle, args tuple, kwargs dict or NULL)`, and masks traps again. When Python
//! drops the function, the capsule's destructor tells Lisp to forget the handle.
//!
//! May depend on: last_error, gil, pyerr, vectorcall (and lib).

use crate::gil::{self, enter};
use crate::last_error::set_last_error;
use crate::pyerr::{kept_exception, lisp_error_type, lisp_handle_of, take_python_error};
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The Lisp side's callback entry: `(handle, args, kwargs) -> new reference or NULL`, called
/// with the GIL held; on failure it sets a Python exception (`p4s_error_set*`) and returns NULL.
pub type CallbackFn = unsafe extern "C" fn(i64, *mut PyObject, *mut PyObject) -> *mut PyObject;
/// Called with a handle when Python no longer references its function (GIL held).
pub type ReleaseFn = unsafe extern "C" fn(i64);

static CALL: AtomicUsize = AtomicUsize::new(0);
static RELEASE: AtomicUsize = AtomicUsize::new(0);

const CAPSULE_NAME: &std::ffi::CStr = c"py4cl2_cffi.callback";

/// What a callable's capsule owns: the method definition (which must outlive the function
/// object, and does: the capsule is the function's `self`) and the Lisp handle.
struct CallbackData {
    def: PyMethodDef,
    _name: CString,
    handle: i64,
    generation: u64,
}

export! {
    /// Registers the Lisp functions that run callbacks and forget handles (either may be NULL
    /// to unregister). Valid across restarts.
    ///
    /// Owns: nothing: the shim keeps the two function pointers, valid across restarts.
    /// GIL: not needed.
    /// Fails: never; returns nothing.
    fn p4s_set_callback_handler(call: Option<CallbackFn>, release: Option<ReleaseFn>) -> (), on_panic = (), {
        CALL.store(call.map_or(0, |f| f as usize), Ordering::Release);
        RELEASE.store(release.map_or(0, |f| f as usize), Ordering::Release);
    }
}

unsafe extern "C" fn capsule_destructor(capsule: *mut PyObject) {
    // SAFETY: called by Python with the GIL held for our capsule; the pointer was made by
    // `Box::into_raw` in `p4s_make_callable` and is freed only here.
    unsafe {
        let Some(rt) = py4cl2_cffi_loader::interpreter() else {
            return;
        };
        let p = (rt.api.PyCapsule_GetPointer)(capsule, CAPSULE_NAME.as_ptr()) as *mut CallbackData;
        if p.is_null() {
            (rt.api.PyErr_Clear)();
            return;
        }
        let data = Box::from_raw(p);
        release_handle(rt, data.handle, data.generation);
    }
}

const CONDITION_CAPSULE: &std::ffi::CStr = c"py4cl2_cffi.lisp_condition";

/// Destructor of the capsule a `LispError` carries: Python dropped the exception, so the Lisp
/// side may forget the condition stored under the handle.
unsafe extern "C" fn condition_destructor(capsule: *mut PyObject) {
    // SAFETY: called by Python with the GIL held for our capsule, whose pointer was made by
    // `Box::into_raw` in `p4s_error_set_lisp` and is freed only here.
    unsafe {
        let Some(rt) = py4cl2_cffi_loader::interpreter() else {
            return;
        };
        let p =
            (rt.api.PyCapsule_GetPointer)(capsule, CONDITION_CAPSULE.as_ptr()) as *mut (i64, u64);
        if p.is_null() {
            (rt.api.PyErr_Clear)();
            return;
        }
        let (handle, generation) = *Box::from_raw(p);
        release_handle(rt, handle, generation);
    }
}

/// Tells Lisp's release handler that Python no longer references `handle`, if the handle
/// belongs to the running session (GIL held). Handles of an ended session are forgotten by
/// Lisp at the stop; a release that arrives while Lisp must not run is dropped the same way.
fn release_handle(rt: &'static py4cl2_cffi_loader::Runtime, handle: i64, generation: u64) {
    let release = RELEASE.load(Ordering::Acquire);
    // SAFETY: a query; the GIL is held, so no hard stop runs.
    let running = unsafe { py4cl2_cffi_loader::current() }.is_some();
    if release != 0 && running && generation == rt.generation() {
        // SAFETY: the address was registered as a `ReleaseFn` by `p4s_set_callback_handler`.
        let f: ReleaseFn = unsafe { std::mem::transmute::<usize, ReleaseFn>(release) };
        // SAFETY: the Lisp handler follows the ReleaseFn contract (GIL held, any handle).
        let _ = gil::in_lisp(rt, || unsafe { f(handle) });
    }
}

unsafe extern "C" fn trampoline(
    slf: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: Python calls us with the GIL held while the interpreter is initialised.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::interpreter() }) else {
            return std::ptr::null_mut();
        };
        let api = &rt.api;
        // SAFETY: `slf` is our capsule (the function's self).
        let p = unsafe { (api.PyCapsule_GetPointer)(slf, CAPSULE_NAME.as_ptr()) }
            as *const CallbackData;
        if p.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: the capsule owns the data while the function (and so this call) lives.
        let (handle, generation) = unsafe { ((*p).handle, (*p).generation) };
        // SAFETY: a query; the GIL is held, so no hard stop runs.
        let running = unsafe { py4cl2_cffi_loader::current() }.is_some();
        if !running || generation != rt.generation() {
            set_runtime_error(
                api,
                "py4cl2-cffi: this Lisp function belongs to a Lisp session of Python that has \
                 ended (pystop); Lisp functions handed to Python cannot be called after pystop",
            );
            return std::ptr::null_mut();
        }
        let call = CALL.load(Ordering::Acquire);
        if call == 0 {
            set_runtime_error(api, "no Lisp callback handler is registered");
            return std::ptr::null_mut();
        }
        // SAFETY: the address was registered as a `CallbackFn`.
        let f: CallbackFn = unsafe { std::mem::transmute::<usize, CallbackFn>(call) };
        // SAFETY: the Lisp handler follows the CallbackFn contract; args/kwargs are borrowed.
        let r = match gil::in_lisp(rt, || unsafe { f(handle, args, kwargs) }) {
            Ok(r) => r,
            Err(gil::NotInLisp::Stopping) => {
                raise_stopping(rt);
                return std::ptr::null_mut();
            }
            Err(gil::NotInLisp::NoLisp) => {
                set_runtime_error(api, "py4cl2-cffi: the Lisp runtime could not take this thread in, so the Lisp function was not called");
                return std::ptr::null_mut();
            }
        };
        // SAFETY: GIL held.
        if r.is_null() && unsafe { (api.PyErr_Occurred)() }.is_null() {
            set_runtime_error(
                api,
                "the Lisp callback failed without setting a Python exception",
            );
        }
        r
    });
    r.unwrap_or(std::ptr::null_mut())
}

/// Raises `py4cl2_cffi.PythonStopping` in Python: Lisp was not called because pystop is
/// stopping Python (GIL held).
pub(crate) fn raise_stopping(rt: &py4cl2_cffi_loader::Runtime) {
    let api = &rt.api;
    // SAFETY: GIL held; the helper module is live; a new reference or NULL.
    let t = unsafe { (api.PyObject_GetAttrString)(rt.helpers(), c"PythonStopping".as_ptr()) };
    if t.is_null() {
        set_runtime_error(api, "py4cl2-cffi: Python is being stopped");
        return;
    }
    // SAFETY: GIL held; `t` is an exception class; SetString takes its own reference.
    unsafe {
        (api.PyErr_SetString)(
            t,
            c"py4cl2-cffi: Lisp was not called because Python is being stopped (pystop)".as_ptr(),
        );
        (api.Py_DecRef)(t);
    }
}

fn set_runtime_error(api: &Api, msg: &str) {
    let c = CString::new(msg).unwrap_or_default();
    // SAFETY: GIL held; the variable is initialised after start.
    unsafe { (api.PyErr_SetString)(Api::read_pointer(api.PyExc_RuntimeError), c.as_ptr()) };
}

export! {
    /// Makes a Python function that calls the registered Lisp handler with `handle`. `name`
    /// (`len` UTF-8 bytes, may be NULL) becomes its `__name__`. New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`) to a function that
    ///   keeps `handle` (the registered release handler is called with it when the function dies).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_make_callable(handle: i64, name: *const c_char, len: i64) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        let api = e.api();
        let nm = if name.is_null() || len <= 0 {
            CString::new("lisp_function").unwrap_or_default()
        } else {
            // SAFETY: `name` valid for `len` bytes (caller's contract).
            let b = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), len as usize) };
            CString::new(b.iter().copied().filter(|c| *c != 0).collect::<Vec<u8>>()).unwrap_or_default()
        };
        let mut data = Box::new(CallbackData {
            def: PyMethodDef {
                ml_name: std::ptr::null(),
                ml_meth: Some(trampoline),
                ml_flags: METH_VARARGS | METH_KEYWORDS,
                ml_doc: std::ptr::null(),
            },
            _name: nm,
            handle,
            generation: e.runtime().generation(),
        });
        data.def.ml_name = data._name.as_ptr();
        let raw = Box::into_raw(data);
        // SAFETY: GIL held; the capsule owns `raw` and frees it in its destructor.
        let capsule = unsafe { (api.PyCapsule_New)(raw.cast(), CAPSULE_NAME.as_ptr(), Some(capsule_destructor)) };
        if capsule.is_null() {
            // SAFETY: not handed to Python; we still own it.
            drop(unsafe { Box::from_raw(raw) });
            take_python_error(&e);
            return std::ptr::null_mut();
        }
        // SAFETY: `def` lives inside the capsule, which the function keeps as its self.
        let f = unsafe { (api.PyCFunction_NewEx)(&mut (*raw).def, capsule, std::ptr::null_mut()) };
        // SAFETY: the function holds its own reference to the capsule.
        unsafe { (api.Py_DecRef)(capsule) };
        if f.is_null() {
            take_python_error(&e);
        }
        f
    }
}

export! {
    /// Inside a callback: raises `py4cl2_cffi.LispError(message)` in Python carrying the Lisp
    /// `handle` of the condition (attribute `lisp_handle`), then the callback returns NULL.
    /// When that exception comes back to Lisp, `p4s_error_lisp_handle` returns the handle; when
    /// Python drops the exception (swallowed, or cleared after Lisp read it), the registered
    /// release handler is called with `handle`, so Lisp can forget the condition.
    ///
    /// Owns: nothing returned; Python owns the exception it sets.
    /// GIL: takes it itself (nestable, any thread); Python must be running; meant for a Lisp
    ///   callback's thread, inside the callback.
    /// Fails: -2 (`p4s_last_error`) when Python is not running or `message` is NULL with `len` > 0;
    ///   when Python itself cannot make the exception, 0 with that error set in Python instead (the
    ///   caller returns NULL either way).
    fn p4s_error_set_lisp(handle: i64, message: *const c_char, len: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        if len < 0 || (message.is_null() && len > 0) {
            set_last_error("p4s_error_set_lisp: NULL message or negative length");
            return P4S_ERROR;
        }
        let t = lisp_error_type(&e);
        if t.is_null() {
            // The error of the failed lookup stays set: Python sees that instead.
            return P4S_OK;
        }
        // SAFETY: GIL held; `message` valid for `len` bytes (caller's contract). The recursion
        // limit is raised for the moment: a callback that fails at the bottom of a deep
        // recursion must still be able to make its exception.
        unsafe {
            let msg = (api.PyUnicode_FromStringAndSize)(message, len as isize);
            if msg.is_null() {
                return P4S_OK;
            }
            let limit = (api.Py_GetRecursionLimit)();
            (api.Py_SetRecursionLimit)(limit.saturating_add(50));
            let exc = vectorcall(api, t, &[msg], std::ptr::null_mut());
            (api.Py_SetRecursionLimit)(limit);
            (api.Py_DecRef)(msg);
            if exc.is_null() {
                // Python could not make the exception; its own error stays set.
                return P4S_OK;
            }
            let h = (api.PyLong_FromLongLong)(handle);
            (api.PyObject_SetAttrString)(exc, c"lisp_handle".as_ptr(), h);
            (api.Py_DecRef)(h);
            // When Python drops the exception, the release handler hears of `handle`.
            let data = Box::into_raw(Box::new((handle, e.runtime().generation())));
            let cap = (api.PyCapsule_New)(data.cast(), CONDITION_CAPSULE.as_ptr(), Some(condition_destructor));
            if cap.is_null() {
                drop(Box::from_raw(data));
                (api.PyErr_Clear)();
            } else {
                (api.PyObject_SetAttrString)(exc, c"_lisp_condition_ref".as_ptr(), cap);
                (api.Py_DecRef)(cap);
            }
            (api.PyErr_SetObject)(t, exc);
            (api.Py_DecRef)(exc);
        }
        P4S_OK
    }
}

export! {
    /// The Lisp handle carried by this thread's kept exception if it is a `LispError` raised by
    /// `p4s_error_set_lisp` (directly, or as the `__cause__`/`__context__` chain's first such
    /// error), else -1.
    ///
    /// Owns: nothing.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when there is no kept `LispError` or Python is not running.
    fn p4s_error_lisp_handle() -> i64, on_panic = -1, {
        let Some(e) = enter() else { return -1 };
        let v = kept_exception(&e);
        lisp_handle_of(&e, v)
    }
}
