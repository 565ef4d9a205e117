//! The C ABI of py4cl2-cffi: every `p4s_*` function the Lisp side calls.
//!
//! # Conventions (they hold for every function unless its own doc says otherwise)
//! - **Objects** cross as opaque `PyObject *`. Each function says whether a returned object is
//!   a *new* reference (the caller must release it, with [`gil::p4s_decref`] or
//!   [`gil::p4s_decref_later`]) or *borrowed*. Object arguments are borrowed.
//! - **The GIL** is taken and given back inside every function (nestable, from any thread).
//!   [`gil::p4s_gil_acquire`]/[`gil::p4s_gil_release`] hold it across several calls; inside such a
//!   block each call skips the GIL entirely. Floating-point traps are masked while Python runs
//!   and restored on return (also around Lisp callbacks).
//! - **Failure**: functions returning an object return NULL; functions returning `int32_t`
//!   return `0` for success, [`P4S_PYERROR`] (`-1`) when Python raised, [`P4S_ERROR`] (`-2`) for
//!   a shim-level error (not started, bad argument). A Python exception is taken out of Python
//!   at once and kept for this thread: read it with the `p4s_error_*` functions. A shim error's
//!   text is [`last_error::p4s_last_error`].
//! - **Panics** never cross the boundary: each function is made by one macro that catches them
//!   and turns them into a shim error.
//! - **Each export's doc** ends with three lines: `Owns:` (who owns what it returns or fills
//!   in), `GIL:` (whether it needs the GIL or takes it itself) and `Fails:` (its failure value
//!   and where the error is kept). A pointer argument is checked: NULL is either documented as
//!   allowed or refused with a shim error naming the function, never passed on to CPython.
//! - **The contract** with the Lisp side is checked by `shim/tests/abi_contract.rs`: every
//!   `define-shim` against these signatures, the Lisp constants against the `P4S_*` ones below
//!   and in the modules, the `defcstruct`s against the structs' layouts, and the lines above.
//! - **Strings** in are UTF-8 with explicit byte length, or UTF-32/Latin-1 code units with a
//!   length in characters; strings out are copied into a caller buffer as UTF-32, or lent as
//!   UTF-8 valid while the object lives.

#![allow(clippy::missing_safety_doc)] // each export's safety contract is in its doc's "Arguments"

/// Every exported function is made by this macro: `#[no_mangle] extern "C"`, with panics
/// caught and turned into a shim error and the given failure value.
macro_rules! export {
    ($(#[$m:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty, on_panic = $fail:expr, $body:block) => {
        $(#[$m])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || -> $ret { $body })) {
                Ok(v) => v,
                Err(_) => {
                    $crate::last_error::set_last_error(concat!("internal error: panic in ", stringify!($name)));
                    $fail
                }
            }
        }
    };
}

// The modules in layers, each using only the ones above it (`shim/tests/module_layers.rs`
// fails on any import cycle); each module's `//!` doc says what it may depend on.
mod args; // checking and copying export arguments
pub mod buffer; // buffers and arrays
pub mod call; // calls: packed, methods, with objects
pub mod callback; // Lisp functions callable from Python
pub mod environments;
mod fp; // floating-point trap masking
pub mod gil; // entering Python: GIL, threads in flight, the stop gate
pub mod interrupt; // interrupt requests withdrawn at exit; signal observation
pub mod last_error; // the shim's own last error (code, text); the leaf
pub mod lifecycle; // start, stop
pub mod names; // name lookup, globals, import
pub mod objects; // attributes, items, type names, str, len
pub mod output; // Python's stdout/stderr to Lisp
pub mod pyerr; // Python exceptions kept per thread and described
pub mod source; // running Python source text (the one place)
pub mod values; // packed values in and out
mod vectorcall; // calling a callable from Rust // discovering interpreters

/// Status: success.
pub const P4S_OK: i32 = 0;
/// Status: Python raised; the exception is kept for this thread (`p4s_error_*`).
pub const P4S_PYERROR: i32 = -1;
/// Status: shim-level error; the message is in `p4s_last_error()` and the precise reason's code
/// (one of the codes below, or `P4S_ERROR` itself for a bad argument or an internal error) in
/// `p4s_last_error_code()`.
pub const P4S_ERROR: i32 = -2;
/// Error code: Python is not running (or was stopped while the call waited).
pub const P4S_NOT_STARTED: i32 = -3;
/// Error code: the process keeps another interpreter (dormant or pinned), or cannot start
/// Python again at all; a fresh process is needed for the one asked for.
pub const P4S_PINNED: i32 = -4;
/// Error code: another interpreter than the one asked for is running; stop it first.
pub const P4S_OTHER_RUNNING: i32 = -5;
/// Error code: a stop gave up because other threads stayed inside Python.
pub const P4S_BUSY: i32 = -6;
/// Error code: the request is not possible now (a stop from inside Python, during another
/// stop, or finalising while Python threads run).
pub const P4S_REFUSED: i32 = -7;

pub use py4cl2_cffi_loader::ffi_types::PyObject;
