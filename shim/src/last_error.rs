//! The shim's own last error, per thread: a status code (`P4S_ERROR` or one of the error codes
//! of lib.rs) and a message, for failures that are not Python exceptions (a bad argument,
//! Python not running, a stop refused). Needs no GIL and runs no Python.
//!
//! May depend on: nothing but lib's constants. Everything else may depend on it.

use crate::{P4S_ERROR, P4S_OK};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_CODE: Cell<i32> = const { Cell::new(P4S_OK) };
}

/// Records a shim-level error for this thread: its status code (one of the `P4S_*` error
/// codes, read back with `p4s_last_error_code`) and its message.
pub fn set_error(code: i32, msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
    LAST_CODE.with(|k| k.set(code));
}

/// Records a shim-level error message for this thread, with the generic code [`P4S_ERROR`].
pub fn set_last_error(msg: &str) {
    set_error(P4S_ERROR, msg);
}

export! {
    /// This thread's last shim-level error message (UTF-8, NUL-terminated, borrowed until the
    /// next shim error on this thread). Empty if there was none.
    ///
    /// Owns: a borrowed UTF-8 string, valid until this thread's next shim error.
    /// GIL: not needed.
    /// Fails: never (an empty string when there was no error).
    fn p4s_last_error() -> *const c_char, on_panic = std::ptr::null(), {
        LAST_ERROR.with(|e| e.borrow().as_ptr())
    }
}

export! {
    /// The status code of this thread's last shim-level error: `P4S_ERROR` (-2, a bad argument
    /// or an internal error), `P4S_NOT_STARTED` (-3), `P4S_PINNED` (-4), `P4S_OTHER_RUNNING`
    /// (-5), `P4S_BUSY` (-6) or `P4S_REFUSED` (-7); 0 if there was none.
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_last_error_code() -> i32, on_panic = P4S_ERROR, {
        LAST_CODE.with(|k| k.get())
    }
}
