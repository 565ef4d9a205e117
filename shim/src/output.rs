//! Sending Python's `sys.stdout` and `sys.stderr` to Lisp.
//!
//! Lisp registers one handler `(stream, utf8, len, route)`. Capturing a stream replaces
//! `sys.stdout` (1) or `sys.stderr` (2) with a `_py4cl2_cffi.LispStream` whose `write` calls the
//! handler at once, in the writing thread, so output arrives in order and with no files or
//! pipes in between.
//!
//! Where output goes: text written by a Lisp thread's call goes to that thread's current Lisp
//! streams (route 0: the handler uses the dynamic bindings). A thread that Python made has no
//! Lisp bindings; `threading.Thread.start` records the *route* of the code that started it (a
//! handle the Lisp side gives for its current streams, see [`p4s_set_route_handler`]), and
//! that thread's writes carry it, so they reach the `with-python-output` that was active when
//! the thread started (or, without one, the streams the Lisp side chose as default). Writes
//! that reach a stream object after its session ended (a soft stop) go to the process's file
//! descriptor 1 or 2.
//!
//! May depend on: last_error, gil, pyerr, vectorcall (and lib).

use crate::gil::{self, enter, Entry};
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The Lisp side's output entry: `(stream, utf8 bytes, byte length, route)`, GIL held. The
/// route is -1 for a Lisp thread (use its dynamic bindings), else the route a thread Python made
/// carries (0: none recorded).
pub type OutputFn = unsafe extern "C" fn(i32, *const u8, i64, i64);
/// The Lisp side's route entry: the handle of the calling Lisp thread's current output streams.
pub type RouteFn = unsafe extern "C" fn() -> i64;

static HANDLER: AtomicUsize = AtomicUsize::new(0);
static ROUTE: AtomicUsize = AtomicUsize::new(0);

/// Per stream: the original `sys.stdout`/`sys.stderr` while captured, with its generation.
static SAVED: Mutex<[(usize, u64); 2]> = Mutex::new([(0, 0); 2]);

static mut WRITE_DEF: PyMethodDef = PyMethodDef {
    ml_name: c"write".as_ptr(),
    ml_meth: Some(write_trampoline),
    ml_flags: METH_VARARGS | METH_KEYWORDS,
    ml_doc: std::ptr::null(),
};

static mut ROUTE_DEF: PyMethodDef = PyMethodDef {
    ml_name: c"route_of_caller".as_ptr(),
    ml_meth: Some(route_trampoline),
    ml_flags: METH_VARARGS | METH_KEYWORDS,
    ml_doc: c"The output route of the calling Lisp code (None in a thread Python made).".as_ptr(),
};

export! {
    /// Registers the Lisp function that receives captured output (NULL to unregister).
    ///
    /// Owns: nothing: the shim keeps the function pointer.
    /// GIL: not needed.
    /// Fails: never; returns nothing.
    fn p4s_set_output_handler(handler: Option<OutputFn>) -> (), on_panic = (), {
        HANDLER.store(handler.map_or(0, |f| f as usize), Ordering::Release);
    }
}

export! {
    /// Registers the Lisp function that names the calling Lisp thread's current output
    /// streams with a route handle (NULL to unregister: threads then get route 0).
    ///
    /// Owns: nothing: the shim keeps the function pointer.
    /// GIL: not needed.
    /// Fails: never; returns nothing.
    fn p4s_set_route_handler(handler: Option<RouteFn>) -> (), on_panic = (), {
        ROUTE.store(handler.map_or(0, |f| f as usize), Ordering::Release);
    }
}

/// Writes `bytes` to file descriptor `fd` directly (output with no Lisp to receive it).
fn write_fd(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer; write(2) reads at most its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
}

/// The route recorded for the calling thread, a thread Python made (GIL held): the
/// `_py4cl2_cffi_route` its `Thread.start` recorded, or 0.
fn route_of_this_python_thread(rt: &py4cl2_cffi_loader::Runtime) -> i64 {
    let api = &rt.api;
    // SAFETY: GIL held; the helper module is live; every reference made here is released.
    unsafe {
        let f = (api.PyObject_GetAttrString)(rt.helpers(), c"route_of_current_thread".as_ptr());
        if f.is_null() {
            (api.PyErr_Clear)();
            return 0;
        }
        let r = vectorcall(api, f, &[], std::ptr::null_mut());
        (api.Py_DecRef)(f);
        if r.is_null() {
            (api.PyErr_Clear)();
            return 0;
        }
        let mut overflow = 0;
        let n = (api.PyLong_AsLongLongAndOverflow)(r, &mut overflow);
        (api.Py_DecRef)(r);
        (api.PyErr_Clear)();
        if overflow != 0 {
            0
        } else {
            n
        }
    }
}

unsafe extern "C" fn write_trampoline(
    slf: *mut PyObject,
    args: *mut PyObject,
    _kw: *mut PyObject,
) -> *mut PyObject {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: Python calls us with the GIL held while the interpreter is initialised.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::interpreter() }) else {
            return std::ptr::null_mut();
        };
        let api = &rt.api;
        // SAFETY: GIL held; `slf` is the int stream number we bound; `args` a tuple.
        unsafe {
            let stream = (api.PyLong_AsLongLongAndOverflow)(slf, &mut 0) as i32;
            if (api.PyTuple_Size)(args) != 1 {
                (api.PyErr_SetString)(
                    Api::read_pointer(api.PyExc_TypeError),
                    c"write() takes one str".as_ptr(),
                );
                return std::ptr::null_mut();
            }
            let s = (api.PyTuple_GetItem)(args, 0);
            let mut len = 0isize;
            let p = (api.PyUnicode_AsUTF8AndSize)(s, &mut len);
            if p.is_null() {
                return std::ptr::null_mut();
            }
            let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len as usize);
            let h = HANDLER.load(Ordering::Acquire);
            let running = py4cl2_cffi_loader::current().is_some();
            if h != 0 && len > 0 && running {
                let route = if gil::in_foreign_thread() {
                    route_of_this_python_thread(rt)
                } else {
                    -1
                };
                let f: OutputFn = std::mem::transmute::<usize, OutputFn>(h);
                if gil::in_lisp(rt, || f(stream, p.cast(), len as i64, route)).is_err() {
                    write_fd(stream, bytes);
                }
            } else if len > 0 {
                write_fd(stream, bytes);
            }
            (api.PyLong_FromLongLong)(len as i64)
        }
    });
    r.unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn route_trampoline(
    _slf: *mut PyObject,
    _args: *mut PyObject,
    _kw: *mut PyObject,
) -> *mut PyObject {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: Python calls us with the GIL held while the interpreter is initialised.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::interpreter() }) else {
            return std::ptr::null_mut();
        };
        let api = &rt.api;
        let h = ROUTE.load(Ordering::Acquire);
        // SAFETY: a query; the GIL is held, so no hard stop runs.
        let running = unsafe { py4cl2_cffi_loader::current() }.is_some();
        if gil::in_foreign_thread() || h == 0 || !running {
            // SAFETY: GIL held; None is immortal or kept alive by the interpreter.
            unsafe { (api.Py_IncRef)(api._Py_NoneStruct) };
            return api._Py_NoneStruct;
        }
        // SAFETY: the address was registered as a `RouteFn`.
        let f: RouteFn = unsafe { std::mem::transmute::<usize, RouteFn>(h) };
        // SAFETY: the Lisp handler follows the RouteFn contract (GIL held, no arguments).
        let route = gil::in_lisp(rt, || unsafe { f() }).unwrap_or(0);
        // SAFETY: GIL held; a new int.
        unsafe { (api.PyLong_FromLongLong)(route) }
    });
    r.unwrap_or(std::ptr::null_mut())
}

fn sys_name(stream: i32) -> &'static std::ffi::CStr {
    if stream == 1 {
        c"stdout"
    } else {
        c"stderr"
    }
}

fn install(e: &Entry, stream: i32) -> i32 {
    let api = e.api();
    let helpers = e.runtime().helpers();
    // SAFETY: (whole body) GIL held; every reference made is released or handed to Python.
    unsafe {
        let route = (api.PyCFunction_NewEx)(
            std::ptr::addr_of_mut!(ROUTE_DEF),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if route.is_null()
            || (api.PyObject_SetAttrString)(helpers, c"route_of_caller".as_ptr(), route) != 0
        {
            (api.Py_DecRef)(route);
            return take_python_error(e);
        }
        (api.Py_DecRef)(route);
        let class = (api.PyObject_GetAttrString)(helpers, c"LispStream".as_ptr());
        if class.is_null() {
            return take_python_error(e);
        }
        let num = (api.PyLong_FromLongLong)(i64::from(stream));
        let w =
            (api.PyCFunction_NewEx)(std::ptr::addr_of_mut!(WRITE_DEF), num, std::ptr::null_mut());
        (api.Py_DecRef)(num);
        let name = (api.PyUnicode_FromString)(
            if stream == 1 {
                c"<stdout>"
            } else {
                c"<stderr>"
            }
            .as_ptr(),
        );
        let fileno = (api.PyLong_FromLongLong)(i64::from(stream));
        let obj = if w.is_null() || name.is_null() || fileno.is_null() {
            std::ptr::null_mut()
        } else {
            vectorcall(api, class, &[w, name, fileno], std::ptr::null_mut())
        };
        (api.Py_DecRef)(w);
        (api.Py_DecRef)(name);
        (api.Py_DecRef)(fileno);
        (api.Py_DecRef)(class);
        if obj.is_null() {
            return take_python_error(e);
        }
        let idx = (stream - 1) as usize;
        let mut saved = SAVED.lock().unwrap_or_else(|x| x.into_inner());
        let gen = e.runtime().generation();
        if saved[idx].1 != gen || saved[idx].0 == 0 {
            let old = (api.PySys_GetObject)(sys_name(stream).as_ptr());
            if !old.is_null() {
                (api.Py_IncRef)(old);
            }
            saved[idx] = (old as usize, gen);
        }
        let rc = (api.PySys_SetObject)(sys_name(stream).as_ptr(), obj);
        (api.Py_DecRef)(obj);
        if rc != 0 {
            return take_python_error(e);
        }
    }
    P4S_OK
}

fn uninstall(e: &Entry, stream: i32) -> i32 {
    let api = e.api();
    let idx = (stream - 1) as usize;
    let mut saved = SAVED.lock().unwrap_or_else(|x| x.into_inner());
    let (old, gen) = saved[idx];
    if old == 0 || !e.runtime().owns_generation(gen) {
        saved[idx] = (0, 0);
        return P4S_OK;
    }
    saved[idx] = (0, 0);
    // SAFETY: GIL held; `old` is our reference to the original stream.
    unsafe {
        let rc = (api.PySys_SetObject)(sys_name(stream).as_ptr(), old as *mut PyObject);
        (api.Py_DecRef)(old as *mut PyObject);
        if rc != 0 {
            return take_python_error(e);
        }
    }
    P4S_OK
}

export! {
    /// Starts (`on` ≠ 0) or stops capturing `stream` (1: `sys.stdout`, 2: `sys.stderr`) into the
    /// registered handler. Stopping puts the original stream back. Returns 0, -1 or -2.
    ///
    /// Owns: nothing: the capturing stream lives in Python's `sys` until stopped.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); -2 also for a `stream` other than 1 or 2.
    fn p4s_capture_output(stream: i32, on: i32) -> i32, on_panic = P4S_ERROR, {
        if stream != 1 && stream != 2 {
            set_last_error("p4s_capture_output: stream must be 1 (stdout) or 2 (stderr)");
            return P4S_ERROR;
        }
        let Some(e) = enter() else { return P4S_ERROR };
        if on != 0 { install(&e, stream) } else { uninstall(&e, stream) }
    }
}

/// Puts the original streams back and forgets them (at stop).
pub(crate) fn forget(e: &Entry) {
    uninstall(e, 1);
    uninstall(e, 2);
}
