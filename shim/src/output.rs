//! Sending Python's `sys.stdout` and `sys.stderr` to Lisp.
//!
//! Lisp registers one handler `(stream, utf8, len)`. Capturing a stream replaces `sys.stdout`
//! (1) or `sys.stderr` (2) with a text stream whose `write` calls the handler at once, in the
//! calling thread, so output arrives in order and with no files or pipes in between.

use crate::errors::{set_last_error, take_python_error};
use crate::gil::{self, enter, Entry};
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The Lisp side's output entry: `(stream, utf8 bytes, byte length)`, GIL held.
pub type OutputFn = unsafe extern "C" fn(i32, *const u8, i64);

static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Per stream: the original `sys.stdout`/`sys.stderr` while captured, with its generation.
static SAVED: Mutex<[(usize, u64); 2]> = Mutex::new([(0, 0); 2]);

static mut WRITE_DEF: PyMethodDef = PyMethodDef {
    ml_name: c"write".as_ptr(),
    ml_meth: Some(write_trampoline),
    ml_flags: METH_VARARGS | METH_KEYWORDS,
    ml_doc: std::ptr::null(),
};

export! {
    /// Registers the Lisp function that receives captured output (NULL to unregister).
    fn p4s_set_output_handler(handler: Option<OutputFn>) -> (), on_panic = (), {
        HANDLER.store(handler.map_or(0, |f| f as usize), Ordering::Release);
    }
}

unsafe extern "C" fn write_trampoline(
    slf: *mut PyObject,
    args: *mut PyObject,
    _kw: *mut PyObject,
) -> *mut PyObject {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: Python calls us with the GIL held while the interpreter runs.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
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
            let h = HANDLER.load(Ordering::Acquire);
            if h != 0 && len > 0 {
                let f: OutputFn = std::mem::transmute::<usize, OutputFn>(h);
                gil::in_lisp(rt, || f(stream, p.cast(), len as i64));
            }
            (api.PyLong_FromLongLong)(len as i64)
        }
    });
    r.unwrap_or(std::ptr::null_mut())
}

const STREAM_CLASS: &str = r#"
import io
class LispStream(io.TextIOBase):
    """sys.stdout/sys.stderr replacement that hands each write to Lisp."""
    def __init__(self, write, name, fileno):
        self._write, self._name, self._fileno = write, name, fileno
    encoding = 'utf-8'
    errors = 'strict'
    @property
    def name(self):
        return self._name
    def writable(self):
        return True
    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('write() argument must be str, not %s' % type(s).__name__)
        if s:
            self._write(s)
        return len(s)
    def flush(self):
        pass
    def isatty(self):
        return False
    def fileno(self):
        return self._fileno
__p4s_stream = LispStream(__p4s_write, __p4s_name, __p4s_fileno)
"#;

fn sys_name(stream: i32) -> &'static std::ffi::CStr {
    if stream == 1 {
        c"stdout"
    } else {
        c"stderr"
    }
}

fn install(e: &Entry, stream: i32) -> i32 {
    let api = e.api();
    // SAFETY: (whole body) GIL held; every reference made is released or handed to Python.
    unsafe {
        let g = (api.PyDict_New)();
        if g.is_null() {
            return take_python_error(e);
        }
        (api.PyDict_SetItemString)(g, c"__builtins__".as_ptr(), (api.PyEval_GetBuiltins)());
        let num = (api.PyLong_FromLongLong)(i64::from(stream));
        let w =
            (api.PyCFunction_NewEx)(std::ptr::addr_of_mut!(WRITE_DEF), num, std::ptr::null_mut());
        (api.Py_DecRef)(num);
        if w.is_null() {
            (api.Py_DecRef)(g);
            return take_python_error(e);
        }
        (api.PyDict_SetItemString)(g, c"__p4s_write".as_ptr(), w);
        (api.Py_DecRef)(w);
        let name = (api.PyUnicode_FromString)(
            if stream == 1 {
                c"<stdout>"
            } else {
                c"<stderr>"
            }
            .as_ptr(),
        );
        (api.PyDict_SetItemString)(g, c"__p4s_name".as_ptr(), name);
        (api.Py_DecRef)(name);
        let fileno = (api.PyLong_FromLongLong)(i64::from(stream));
        (api.PyDict_SetItemString)(g, c"__p4s_fileno".as_ptr(), fileno);
        (api.Py_DecRef)(fileno);
        let code = CString::new(STREAM_CLASS).unwrap_or_default();
        let r = (api.PyRun_StringFlags)(code.as_ptr(), Py_file_input, g, g, std::ptr::null_mut());
        if r.is_null() {
            (api.Py_DecRef)(g);
            return take_python_error(e);
        }
        (api.Py_DecRef)(r);
        let obj = (api.PyDict_GetItemString)(g, c"__p4s_stream".as_ptr());
        let idx = (stream - 1) as usize;
        let mut saved = SAVED.lock().unwrap_or_else(|x| x.into_inner());
        let gen = e.runtime().generation;
        if saved[idx].1 != gen || saved[idx].0 == 0 {
            let old = (api.PySys_GetObject)(sys_name(stream).as_ptr());
            if !old.is_null() {
                (api.Py_IncRef)(old);
            }
            saved[idx] = (old as usize, gen);
        }
        let rc = (api.PySys_SetObject)(sys_name(stream).as_ptr(), obj);
        (api.Py_DecRef)(g);
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
    if gen != e.runtime().generation || old == 0 {
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
