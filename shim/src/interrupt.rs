//! Interrupting Python code that a Lisp thread is running.
//!
//! A Lisp interrupt (C-c at the REPL, SLIME's interrupt, a timeout) must never unwind through
//! Python's C frames: the thread state would keep pointers into the abandoned stack and the
//! next call would crash. The Lisp side therefore defers interrupts while a thread is inside
//! Python. A watcher thread sees the deferred interrupt and calls [`p4s_interrupt_thread`],
//! which makes Python raise `KeyboardInterrupt` in that thread at its next bytecode. The call
//! then returns with that error, and the deferred interrupt runs in Lisp.
//!
//! If the call finishes before Python gets to raise it, the request must not linger and hit
//! a later, unrelated call. The outermost exit of the thread ([`clear_own_request`], called
//! from `gil`) therefore withdraws any request still recorded for it.

use crate::gil::enter;
use py4cl2_cffi_loader::api::Api;
use std::os::raw::c_ulong;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Thread idents with a `KeyboardInterrupt` requested and not yet withdrawn.
static REQUESTED: Mutex<Vec<c_ulong>> = Mutex::new(Vec::new());
/// Whether `REQUESTED` may be non-empty: the one load on every outermost exit.
static ANY_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Withdraws a pending interrupt request for the calling thread, if there is one. Called with
/// the GIL held, at the thread's outermost exit from Python.
#[inline]
pub(crate) fn clear_own_request(api: &Api) {
    if !ANY_REQUESTED.load(Ordering::Acquire) {
        return;
    }
    let mut requested = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: plain query of the calling thread's identifier.
    let me = unsafe { (api.PyThread_get_thread_ident)() };
    if let Some(i) = requested.iter().position(|&t| t == me) {
        requested.swap_remove(i);
        // SAFETY: GIL held; a NULL exception withdraws a pending asynchronous exception.
        unsafe { (api.PyThreadState_SetAsyncExc)(me, std::ptr::null_mut()) };
    }
    ANY_REQUESTED.store(!requested.is_empty(), Ordering::Release);
}

/// Asks Python to raise `exc` (an exception class) in each thread of `idents` at its next
/// bytecode, recording the requests so that any still pending when a thread leaves Python is
/// withdrawn then (GIL held). Returns how many threads were found.
pub(crate) fn request(
    api: &Api,
    exc: *mut py4cl2_cffi_loader::ffi_types::PyObject,
    idents: &[u64],
) -> usize {
    let mut requested = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    let mut found = 0;
    for &ident in idents {
        let ident = ident as c_ulong;
        // SAFETY: GIL held (caller's contract); `exc` is a live exception class.
        if unsafe { (api.PyThreadState_SetAsyncExc)(ident, exc) } > 0 {
            found += 1;
            if !requested.contains(&ident) {
                requested.push(ident);
            }
        }
    }
    if found > 0 {
        ANY_REQUESTED.store(true, Ordering::Release);
    }
    found
}

export! {
    /// Asks Python to raise `KeyboardInterrupt` in the thread whose identifier (pthread_self,
    /// as `threading.get_ident()` reports it) is `ident`, at that thread's next bytecode. Call
    /// it from another thread: it takes the GIL, so it waits while the target holds it (Python
    /// hands it over within the switch interval). Returns 1 when the request was placed, 0
    /// when no Python thread state has that identifier, or `P4S_ERROR` when Python is not
    /// started. A request still pending when the target leaves Python is withdrawn then.
    fn p4s_interrupt_thread(ident: u64) -> i32, on_panic = crate::P4S_ERROR, {
        let Some(e) = enter() else { return crate::P4S_ERROR };
        let api = e.api();
        // SAFETY: PyExc_KeyboardInterrupt is read after initialisation.
        let found = request(api, unsafe { Api::read_pointer(api.PyExc_KeyboardInterrupt) }, &[ident]);
        found.min(1) as i32
    }
}
