//! Python exceptions: the exception kept for each thread and its description.
//!
//! When a call fails in Python, the shim takes the exception out of Python at once
//! ([`take_python_error`]) and keeps it for the calling thread; Lisp then reads its type name,
//! message, traceback and Lisp handle in one call ([`p4s_error_describe`]), or gets the
//! exception object itself, and finally clears it. Describing runs no Python source: the type
//! and message come from C-API calls, the traceback from the helper module's formatter, so a
//! `RecursionError` raised deep in a recursion is still described.
//!
//! May depend on: last_error, gil, vectorcall (and lib). The shim's own error (a status code and
//! a text, no Python involved) is in `last_error`, below `gil`.

use crate::gil::{enter, Entry};
use crate::last_error::set_last_error;
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK, P4S_PYERROR};
use std::cell::{Cell, RefCell};
use std::ffi::c_char;

thread_local! {
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DESCRIPTION: RefCell<[Vec<u8>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    static EXC: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
    static HANDLE: Cell<i64> = const { Cell::new(-1) };
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

/// Replaces this thread's kept exception with `v` (a new reference, or NULL). Its type name,
/// message and Lisp handle are read at once (they are cheap, and a stop by another thread
/// before Lisp reads them must not lose them); the traceback is formatted when asked for.
fn keep_exception(e: &Entry, v: *mut PyObject) {
    let (old, gen) = EXC.with(|c| c.replace((v as usize, e.runtime().generation())));
    if old != 0 && e.runtime().owns_generation(gen) {
        // SAFETY: GIL held; the old exception was ours.
        unsafe { (e.api().Py_DecRef)(old as *mut PyObject) };
    }
    let (type_name, message, handle) = if v.is_null() {
        (Vec::new(), Vec::new(), -1)
    } else {
        with_recursion_headroom(e, || {
            (
                type_name_of(e, v).unwrap_or_else(|| b"<unknown type>".to_vec()),
                str_bytes(e, v).unwrap_or_else(|| b"<str() of the exception failed>".to_vec()),
                lisp_handle_of(e, v),
            )
        })
    };
    DESCRIPTION.with(|d| {
        let mut d = d.borrow_mut();
        d[0] = type_name;
        d[1] = message;
        d[2].clear();
    });
    HANDLE.with(|h| h.set(handle));
}

/// Runs `f` with Python's recursion limit raised for the moment (GIL held): an exception
/// kept at the bottom of a deep recursion (a `RecursionError`) must still be described, and
/// `str()` checks the recursion depth on 3.9–3.11.
pub(crate) fn with_recursion_headroom<R>(e: &Entry, f: impl FnOnce() -> R) -> R {
    let api = e.api();
    // SAFETY: GIL held; plain queries and settings of the interpreter's recursion limit.
    let limit = unsafe { (api.Py_GetRecursionLimit)() };
    // SAFETY: as above.
    unsafe { (api.Py_SetRecursionLimit)(limit.saturating_add(200)) };
    let r = f();
    // SAFETY: as above.
    unsafe { (api.Py_SetRecursionLimit)(limit) };
    r
}

/// The `Type: message` line of the kept description.
fn summary_line(d: &[Vec<u8>; 3]) -> Vec<u8> {
    let mut t = d[0].clone();
    t.extend_from_slice(b": ");
    t.extend_from_slice(&d[1]);
    t.push(b'\n');
    t
}

/// Releases this thread's kept exception (at stop).
pub(crate) fn p4s_forget_kept(e: &Entry) {
    keep_exception(e, std::ptr::null_mut());
}

/// This thread's kept exception (borrowed), if it belongs to the running interpreter.
pub(crate) fn kept_exception(e: &Entry) -> *mut PyObject {
    let (v, gen) = EXC.with(|c| c.get());
    if gen == e.runtime().generation() {
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

/// What `p4s_error_describe` fills in: UTF-8 texts (not NUL-terminated, borrowed until this
/// thread keeps or describes another exception) and the Lisp handle of a `LispError`.
#[repr(C)]
pub struct P4sErrorInfo {
    /// The type's qualified name, `module.Name` for non-builtins.
    pub type_name: *const u8,
    /// Its length in bytes.
    pub type_len: i64,
    /// `str()` of the exception.
    pub message: *const u8,
    /// Its length in bytes.
    pub message_len: i64,
    /// The formatted traceback ending with the `Type: message` line.
    pub traceback: *const u8,
    /// Its length in bytes.
    pub traceback_len: i64,
    /// The Lisp handle carried by the exception (or the first `LispError` of its context
    /// chain), else -1.
    pub lisp_handle: i64,
}

export! {
    /// Describes this thread's kept Python exception into `out` in one call (see
    /// [`P4sErrorInfo`]). Returns 0, 1 when no exception is kept (`out` untouched), or -2.
    /// Runs no Python source, so it works at any recursion depth; a part that cannot be had
    /// (a failing `__str__`) is replaced by a note saying so.
    ///
    /// Owns: the caller's `out`: its texts are borrowed until this thread keeps or describes
    ///   another exception.
    /// GIL: takes it itself (nestable, any thread); Python must be running; when Python was stopped
    ///   meanwhile it describes the exception from what was read when it was kept.
    /// Fails: -2 (`p4s_last_error`) for a NULL `out`; 1 (not a failure) when no exception is kept.
    fn p4s_error_describe(out: *mut P4sErrorInfo) -> i32, on_panic = P4S_ERROR, {
        if out.is_null() {
            set_last_error("p4s_error_describe: NULL out");
            return P4S_ERROR;
        }
        let Some(e) = enter() else {
            // Python was stopped (by another thread) since the exception was kept: describe
            // it from what was read when it was kept, and forget it (its session is over).
            let (v, _) = EXC.with(|c| c.replace((0, 0)));
            if v == 0 {
                return 1;
            }
            DESCRIPTION.with(|d| {
                let mut d = d.borrow_mut();
                let mut tb = summary_line(&d);
                tb.extend_from_slice(b"(the traceback is not available: Python was stopped before it was read)\n");
                d[2] = tb;
            });
            HANDLE.with(|h| h.set(-1));
            return fill_description(out);
        };
        let v = kept_exception(&e);
        if v.is_null() {
            return 1;
        }
        let traceback = formatted_traceback(&e, v);
        DESCRIPTION.with(|d| {
            let mut d = d.borrow_mut();
            d[2] = traceback.unwrap_or_else(|| summary_line(&d));
        });
        fill_description(out)
    }
}

/// Writes the kept description into `out` (valid for writing, caller's contract). Returns 0.
fn fill_description(out: *mut P4sErrorInfo) -> i32 {
    let handle = HANDLE.with(|h| h.get());
    DESCRIPTION.with(|d| {
        let d = d.borrow();
        // SAFETY: `out` is valid for writing (caller's contract); the texts live in this
        // thread's buffers until the next exception is kept or described.
        unsafe {
            *out = P4sErrorInfo {
                type_name: d[0].as_ptr(),
                type_len: d[0].len() as i64,
                message: d[1].as_ptr(),
                message_len: d[1].len() as i64,
                traceback: d[2].as_ptr(),
                traceback_len: d[2].len() as i64,
                lisp_handle: handle,
            };
        }
    });
    P4S_OK
}

/// `module.Qualname` of `o`'s type (just `Qualname` for builtins), from C-level attribute reads
/// (GIL held). Errors are cleared.
pub(crate) fn type_name_of(e: &Entry, o: *mut PyObject) -> Option<Vec<u8>> {
    let api = e.api();
    // SAFETY: GIL held; `o` live; reading the type needs no reference.
    let t = unsafe { py4cl2_cffi_loader::ffi_types::ob_type(o) };
    let attr = |name: &std::ffi::CStr| -> Option<Vec<u8>> {
        // SAFETY: GIL held; `t` is a type object; new reference or NULL.
        let a = unsafe { (api.PyObject_GetAttrString)(t, name.as_ptr()) };
        if a.is_null() {
            // SAFETY: GIL held.
            unsafe { (api.PyErr_Clear)() };
            return None;
        }
        let s = utf8_of(e, a);
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(a) };
        s
    };
    let qualname = attr(c"__qualname__")?;
    match attr(c"__module__") {
        Some(m) if m != b"builtins" => {
            let mut full = m;
            full.push(b'.');
            full.extend_from_slice(&qualname);
            Some(full)
        }
        _ => Some(qualname),
    }
}

/// The traceback of exception `v` formatted by the helper module (GIL held). The recursion
/// limit is raised for the moment so that an exception from the bottom of a deep recursion
/// (a `RecursionError`) can still be formatted. Errors are cleared.
fn formatted_traceback(e: &Entry, v: *mut PyObject) -> Option<Vec<u8>> {
    let api = e.api();
    let helpers = e.runtime().helpers();
    if helpers.is_null() {
        return None;
    }
    // SAFETY: GIL held; `helpers` is the live helper module; `v` an exception instance.
    let r = with_recursion_headroom(e, || unsafe {
        let f = (api.PyObject_GetAttrString)(helpers, c"format_exception".as_ptr());
        if f.is_null() {
            std::ptr::null_mut()
        } else {
            let r = vectorcall(api, f, &[v], std::ptr::null_mut());
            (api.Py_DecRef)(f);
            r
        }
    });
    if r.is_null() {
        // SAFETY: GIL held.
        unsafe { (api.PyErr_Clear)() };
        return None;
    }
    let s = utf8_of(e, r);
    // SAFETY: our reference.
    unsafe { (api.Py_DecRef)(r) };
    s
}

export! {
    /// Whether this thread has a kept Python exception: 1 yes, 0 no.
    ///
    /// Owns: nothing.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: never: 0 also when Python is not running.
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
    ///
    /// Owns: a borrowed UTF-8 string, valid until this thread's next `p4s_error_text`.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL when no exception is kept, `part` is unknown, the text cannot be had, or Python
    ///   is not running.
    fn p4s_error_text(part: i32) -> *const c_char, on_panic = std::ptr::null(), {
        let Some(e) = enter() else { return std::ptr::null() };
        let v = kept_exception(&e);
        if v.is_null() {
            return std::ptr::null();
        }
        let text = match part {
            0 => type_name_of(&e, v),
            1 => str_bytes(&e, v),
            2 => formatted_traceback(&e, v),
            _ => return std::ptr::null(),
        };
        match text {
            Some(bytes) => text_out(&bytes),
            None => std::ptr::null(),
        }
    }
}

export! {
    /// Forgets this thread's kept Python exception.
    ///
    /// Owns: drops this thread's kept exception (the shim's reference to it).
    /// GIL: takes it itself (nestable, any thread); Python must be running; a no-op when Python is
    ///   not running.
    /// Fails: never; returns nothing.
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
    ///
    /// Owns: nothing returned; Python owns the exception it sets; `exc_type` is borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running; meant for a Lisp
    ///   callback's thread, inside the callback.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); -2 also for a NULL `message` with `len` > 0 or a negative
    ///   `len`.
    fn p4s_error_set(exc_type: *mut PyObject, message: *const c_char, len: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        let api = e.api();
        if len < 0 || (message.is_null() && len > 0) {
            set_last_error("p4s_error_set: NULL message or negative length");
            return P4S_ERROR;
        }
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
    let out = utf8_of(e, s);
    // SAFETY: new reference.
    unsafe { (api.Py_DecRef)(s) };
    out
}

/// A copy of the UTF-8 bytes of a str object (GIL held); None (error cleared) if `o` is not a
/// str or cannot be encoded. Copied, since the buffer Python lends lives only as long as `o`.
pub(crate) fn utf8_of(e: &Entry, o: *mut PyObject) -> Option<Vec<u8>> {
    let api = e.api();
    let mut len = 0isize;
    // SAFETY: GIL held; `o` live (caller's contract); the returned buffer is cached in the str
    // and lives as long as it does, and it is copied below before this function returns.
    let p = unsafe { (api.PyUnicode_AsUTF8AndSize)(o, &mut len) };
    if p.is_null() {
        // SAFETY: GIL held.
        unsafe { (api.PyErr_Clear)() };
        return None;
    }
    // SAFETY: `p` points to `len` bytes owned by `o`, which the caller keeps alive.
    Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }.to_vec())
}

/// The `py4cl2_cffi.LispError` class of the running interpreter (borrowed: the helper module
/// keeps it), or NULL with the error set.
pub(crate) fn lisp_error_type(e: &Entry) -> *mut PyObject {
    let api = e.api();
    // SAFETY: GIL held; the helper module is live; a new reference or NULL.
    let t = unsafe { (api.PyObject_GetAttrString)(e.runtime().helpers(), c"LispError".as_ptr()) };
    if !t.is_null() {
        // SAFETY: the helper module keeps the class alive for the life of the interpreter.
        unsafe { (api.Py_DecRef)(t) };
    }
    t
}

/// The Lisp handle carried by exception `v` or the first `LispError` of its context chain,
/// else -1 (GIL held; errors are cleared).
pub(crate) fn lisp_handle_of(e: &Entry, mut v: *mut PyObject) -> i64 {
    let api = e.api();
    let t = lisp_error_type(e);
    for _ in 0..16 {
        if v.is_null() || t.is_null() {
            break;
        }
        // SAFETY: GIL held; `v` an exception instance; attribute lookups return new refs.
        unsafe {
            if (api.PyObject_IsInstance)(v, t) == 1 {
                let h = (api.PyObject_GetAttrString)(v, c"lisp_handle".as_ptr());
                if h.is_null() {
                    (api.PyErr_Clear)();
                    return -1;
                }
                let mut of = 0;
                let n = (api.PyLong_AsLongLongAndOverflow)(h, &mut of);
                (api.Py_DecRef)(h);
                (api.PyErr_Clear)();
                return n;
            }
            let next = (api.PyObject_GetAttrString)(v, c"__context__".as_ptr());
            if next.is_null() {
                (api.PyErr_Clear)();
                return -1;
            }
            // Borrow: the chain is kept alive by the exception we were given.
            (api.Py_DecRef)(next);
            v = if next == api._Py_NoneStruct {
                std::ptr::null_mut()
            } else {
                next
            };
        }
    }
    -1
}
