//! Interrupting Python code that a Lisp thread is running.
//!
//! A Lisp interrupt (C-c at the REPL, SLIME's interrupt, a timeout) must never unwind through
//! Python's C frames: the thread state would keep pointers into the abandoned stack and the
//! next call would crash. The Lisp side therefore defers interrupts while a thread is inside
//! Python. A watcher thread sees the deferred interrupt and calls `gil::p4s_interrupt_thread`,
//! which makes Python raise `KeyboardInterrupt` in that thread at its next bytecode. The call
//! then returns with that error, and the deferred interrupt runs in Lisp.
//!
//! If the call finishes before Python gets to raise it, the request must not linger and hit
//! a later, unrelated call. The outermost exit of the thread ([`clear_own_request`], called
//! from `gil`) therefore withdraws any request still recorded for it.
//!
//! May depend on: last_error (and lib); it sits below `gil`, which calls it at every outermost
//! exit, so the export that takes the GIL to place a request, `p4s_interrupt_thread`, is in
//! `gil`.

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

/// Withdraws the still pending requests of the threads `idents` (GIL held).
pub(crate) fn withdraw(api: &Api, idents: &[u64]) {
    let mut requested = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    for &ident in idents {
        let ident = ident as c_ulong;
        if let Some(i) = requested.iter().position(|&t| t == ident) {
            requested.swap_remove(i);
            // SAFETY: GIL held (caller's contract); NULL withdraws a pending exception.
            unsafe { (api.PyThreadState_SetAsyncExc)(ident, std::ptr::null_mut()) };
        }
    }
    ANY_REQUESTED.store(!requested.is_empty(), Ordering::Release);
}

// ---------------------------------------------------------------------------------------------
// Observing signals that the Lisp runtime defers. A Lisp handles C-c (SIGINT) and timers
// (SIGALRM) in the thread that receives them, usually the main thread; while that thread is
// inside Python its Lisp handler is deferred until the call returns, so no Lisp code can see
// that the signal came. An observer installed in front of the Lisp runtime's handler counts
// each signal and then calls that handler unchanged, so the Lisp side's watcher can ask Python
// to raise KeyboardInterrupt in the thread that will run the deferred handler.

use std::sync::atomic::AtomicU64;

const OBSERVED: usize = 32;
static COUNTS: [AtomicU64; OBSERVED] = [const { AtomicU64::new(0) }; OBSERVED];
/// Which signals have the observer installed (installation is serialised by this lock).
static INSTALLED: Mutex<[bool; OBSERVED]> = Mutex::new([false; OBSERVED]);
/// The previous handlers, readable from signal context without a lock: written once per signal
/// before the observer is installed, never changed afterwards.
static PREVIOUS_FN: [std::sync::atomic::AtomicUsize; OBSERVED] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; OBSERVED];
static PREVIOUS_SIGINFO: [AtomicBool; OBSERVED] = [const { AtomicBool::new(false) }; OBSERVED];

extern "C" fn observer(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Ok(i) = usize::try_from(sig) else { return };
    if i >= OBSERVED {
        return;
    }
    // Only async-signal-safe work here: an atomic increment and a call of the old handler.
    COUNTS[i].fetch_add(1, Ordering::SeqCst);
    let prev = PREVIOUS_FN[i].load(Ordering::Acquire);
    if prev == libc::SIG_DFL || prev == libc::SIG_IGN {
        return;
    }
    if PREVIOUS_SIGINFO[i].load(Ordering::Acquire) {
        // SAFETY: the address was the `sa_sigaction` of a handler installed with SA_SIGINFO;
        // it is called with the arguments the kernel gave us, as it would have been.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(prev) };
        f(sig, info, context);
    } else {
        // SAFETY: the address was a plain `sa_handler`.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
        f(sig);
    }
}

export! {
    /// Starts counting deliveries of signal `sig` (1–31) in front of the handler installed now
    /// (the Lisp runtime's), which still runs for each of them. Idempotent. Returns 0, or -2 for
    /// a signal number out of range or when the handler cannot be read or set.
    ///
    /// Owns: nothing: the shim's handler stays installed for the process.
    /// GIL: not needed.
    /// Fails: -2 (`p4s_last_error`) for a signal number out of range or a handler that cannot be
    ///   read or set.
    fn p4s_observe_signal(sig: i32) -> i32, on_panic = crate::P4S_ERROR, {
        let Some(i) = usize::try_from(sig).ok().filter(|i| (1..OBSERVED).contains(i)) else {
            crate::last_error::set_last_error("p4s_observe_signal: signal number out of range");
            return crate::P4S_ERROR;
        };
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if installed[i] {
            return crate::P4S_OK;
        }
        // SAFETY: an all-zero sigaction is a valid value of the plain C struct.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction with a NULL new action only reads the current one into `old`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            crate::last_error::set_last_error("p4s_observe_signal: cannot read the handler");
            return crate::P4S_ERROR;
        }
        PREVIOUS_FN[i].store(old.sa_sigaction, Ordering::Release);
        PREVIOUS_SIGINFO[i].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
        let mut new = old;
        new.sa_sigaction = observer as *const () as usize;
        new.sa_flags |= libc::SA_SIGINFO;
        // SAFETY: installs our observer with the old mask and flags (plus SA_SIGINFO); the old
        // handler is recorded above and called by the observer.
        if unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) } != 0 {
            crate::last_error::set_last_error("p4s_observe_signal: cannot install the observer");
            return crate::P4S_ERROR;
        }
        installed[i] = true;
        crate::P4S_OK
    }
}

export! {
    /// How many times signal `sig` was delivered since `p4s_observe_signal(sig)` (0 if not
    /// observed).
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never: 0 for a signal not observed.
    fn p4s_signal_count(sig: i32) -> u64, on_panic = 0, {
        usize::try_from(sig).ok().filter(|i| *i < OBSERVED).map_or(0, |i| COUNTS[i].load(Ordering::SeqCst))
    }
}
