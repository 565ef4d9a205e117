//! Errors: the shim's own last-error text, and the Python exception kept for each thread.
//!
//! When a call fails in Python, the shim takes the exception out of Python at once
//! ([`take_python_error`]) and keeps it for the calling thread; Lisp then reads its type name,
//! message and traceback, or gets the exception object itself, and finally clears it.

use crate::gil::{enter, Entry};
use crate::values::utf8_of;
use crate::{PyObject, P4S_ERROR, P4S_OK, P4S_PYERROR};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static EXC: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
}

/// Records a shim-level error message for this thread.
pub fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Takes the pending Python exception (GIL held) and keeps it for this thread; returns
/// [`P4S_PYERROR`]. If nothing is pending, records a shim error saying so and returns
/// [`P4S_ERROR`].
pub fn take_python_error(e: &Entry) -> i32 {
    let api = e.api();
    if let Some(get_raised) = api.PyErr_GetRaisedException {
        // 3.12+: the exception is one normalised object with its traceback attached.
        // SAFETY: GIL held; returns a new reference or NULL.
        let v = unsafe { get_raised() };
        if v.is_null() {
            set_last_error("a C-API call failed without setting a Python exception");
            return P4S_ERROR;
        }
        keep_exception(e, v);
        return P4S_PYERROR;
    }
    let (mut t, mut v, mut tb) = (
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    // SAFETY: GIL held; Fetch gives us the three references (possibly NULL).
    unsafe { (api.PyErr_Fetch)(&mut t, &mut v, &mut tb) };
    if t.is_null() {
        set_last_error("a C-API call failed without setting a Python exception");
        return P4S_ERROR;
    }
    // SAFETY: GIL held; normalisation turns `v` into an instance of `t`.
    unsafe { (api.PyErr_NormalizeException)(&mut t, &mut v, &mut tb) };
    if !v.is_null() && !tb.is_null() {
        // SAFETY: `v` is an exception instance after normalisation.
        unsafe { (api.PyException_SetTraceback)(v, tb) };
    }
    // SAFETY: we keep `v` only; drop the others (NULL allowed).
    unsafe {
        (api.Py_DecRef)(t);
        (api.Py_DecRef)(tb);
    }
    keep_exception(e, v);
    P4S_PYERROR
}

/// Replaces this thread's kept exception with `v` (a new reference, or NULL).
fn keep_exception(e: &Entry, v: *mut PyObject) {
    let (old, gen) = EXC.with(|c| c.replace((v as usize, e.runtime().generation)));
    if old != 0 && gen == e.runtime().generation {
        // SAFETY: GIL held; the old exception was ours.
        unsafe { (e.api().Py_DecRef)(old as *mut PyObject) };
    }
}

/// Releases this thread's kept exception (at stop).
pub(crate) fn p4s_forget_kept(e: &Entry) {
    keep_exception(e, std::ptr::null_mut());
}

/// This thread's kept exception (borrowed), if it belongs to the running interpreter.
pub(crate) fn kept_exception(e: &Entry) -> *mut PyObject {
    let (v, gen) = EXC.with(|c| c.get());
    if gen == e.runtime().generation {
        v as *mut PyObject
    } else {
        std::ptr::null_mut()
    }
}

fn text_out(s: &[u8]) -> *const c_char {
    TEXT.with(|t| {
        let mut t = t.borrow_mut();
        t.clear();
        t.extend_from_slice(s);
        t.push(0);
        t.as_ptr().cast()
    })
}

export! {
    /// This thread's last shim-level error message (UTF-8, NUL-terminated, borrowed until the
    /// next shim error on this thread). Empty if there was none.
    fn p4s_last_error() -> *const c_char, on_panic = std::ptr::null(), {
        LAST_ERROR.with(|e| e.borrow().as_ptr())
    }
}

export! {
    /// Whether this thread has a kept Python exception: 1 yes, 0 no.
    fn p4s_error_pending() -> i32, on_panic = 0, {
        match enter() {
            Some(e) => i32::from(!kept_exception(&e).is_null()),
            None => 0,
        }
    }
}

export! {
    /// Describes this thread's kept Python exception. `part`: 0 the type's qualified name
    /// (`module.Name` for non-builtins), 1 the message (`str(exc)`), 2 the formatted traceback
    /// with the final `Type: message` line (as `traceback.format_exception` prints it).
    /// Returns UTF-8 text borrowed until the next `p4s_error_text` call on this thread, or NULL
    /// if there is no kept exception or `part` is unknown.
    fn p4s_error_text(part: i32) -> *const c_char, on_panic = std::ptr::null(), {
        let Some(e) = enter() else { return std::ptr::null() };
        let v = kept_exception(&e);
        if v.is_null() {
            return std::ptr::null();
        }
        let code: &[u8] = match part {
            0 => crate::call::TYPE_NAME_OF_OBJ,
            1 => b"str(__p4s_obj)\0",
            2 => b"''.join(__import__('traceback').format_exception(type(__p4s_obj), __p4s_obj, __p4s_obj.__traceback__))\0",
            _ => return std::ptr::null(),
        };
        match crate::call::eval_with_obj(&e, code, v) {
            Some(bytes) => text_out(&bytes),
            None => std::ptr::null(),
        }
    }
}

export! {
    /// This thread's kept Python exception as a new reference (NULL if none). It stays kept.
    fn p4s_error_object() -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        let v = kept_exception(&e);
        if !v.is_null() {
            // SAFETY: GIL held; `v` is live (we hold a reference).
            unsafe { (e.api().Py_IncRef)(v) };
        }
        v
    }
}

export! {
    /// Forgets this thread's kept Python exception.
    fn p4s_error_clear() -> (), on_panic = (), {
        if let Some(e) = enter() {
            keep_exception(&e, std::ptr::null_mut());
        }
    }
}

export! {
    /// Sets the Python error indicator so that the Python code that called the current Lisp
    /// callback sees an exception: `exc_type` (borrowed; NULL means `RuntimeError`) with the
    /// UTF-8 `message` of `len` bytes. Use only inside a callback, then return NULL from it.
    fn p4s_error_set(exc_type: *mut PyObject, message: *const c_char, len: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        let t = if exc_type.is_null() {
            // SAFETY: interpreter initialised; the variable holds the RuntimeError type.
            unsafe { py4cl2_cffi_loader::api::Api::read_pointer(api.PyExc_RuntimeError) }
        } else {
            exc_type
        };
        // SAFETY: GIL held; `message` points to `len` bytes (caller's contract).
        let msg = unsafe { (api.PyUnicode_FromStringAndSize)(message, len as isize) };
        if msg.is_null() {
            return take_python_error(&e);
        }
        // SAFETY: GIL held; SetObject takes its own references.
        unsafe {
            (api.PyErr_SetObject)(t, msg);
            (api.Py_DecRef)(msg);
        }
        P4S_OK
    }
}

export! {
    /// Raises the kept exception of this thread again in Python (inside a callback, to let a
    /// Python error pass back through Lisp unchanged), and forgets it. Returns -2 if none.
    fn p4s_error_restore() -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let v = kept_exception(&e);
        if v.is_null() {
            set_last_error("no kept Python exception to restore");
            return P4S_ERROR;
        }
        let api = e.api();
        // SAFETY: GIL held; `v` is an exception instance; SetObject takes its own references.
        unsafe {
            let t = py4cl2_cffi_loader::ffi_types::ob_type(v);
            (api.PyErr_SetObject)(t, v);
        }
        keep_exception(&e, std::ptr::null_mut());
        P4S_OK
    }
}

/// UTF-8 bytes of `str(o)` (GIL held), or None with the error cleared.
pub(crate) fn str_bytes(e: &Entry, o: *mut PyObject) -> Option<Vec<u8>> {
    let api = e.api();
    // SAFETY: GIL held; `o` live.
    let s = unsafe { (api.PyObject_Str)(o) };
    if s.is_null() {
        // SAFETY: GIL held.
        unsafe { (api.PyErr_Clear)() };
        return None;
    }
    let out = utf8_of(e, s).map(|b| b.to_vec());
    // SAFETY: new reference.
    unsafe { (api.Py_DecRef)(s) };
    out
}
