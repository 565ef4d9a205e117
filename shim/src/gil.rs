//! Taking and giving back the GIL from any thread, and the decref queue.
//!
//! Each OS thread that enters Python gets one thread state, kept for the life of the thread
//! (creating and deleting one per call, as a bare `PyGILState_Ensure`/`Release` pair does, is
//! slow and loses a pending exception). The outermost entry restores it and takes the GIL; the
//! outermost exit saves it and gives the GIL back; nested entries only count. A thread state
//! belongs to one start of Python: after a restart a stale one is dropped without being touched.

use crate::errors::set_last_error;
use crate::fp;
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::{PyObject, PyThreadState};
use py4cl2_cffi_loader::Runtime;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct ThreadGil {
    /// The caller's floating-point state at the latest entry (restored around Lisp callbacks).
    lisp_fp: Cell<Option<fp::FpState>>,
    generation: Cell<u64>,
    tstate: Cell<*mut PyThreadState>,
    depth: Cell<u32>,
}

impl Drop for ThreadGil {
    /// A thread that entered Python is ending: give its thread state back to Python (the one
    /// `PyGILState_Ensure` reference we kept). The starting thread's main state is only
    /// decremented, never deleted, by the same call.
    fn drop(&mut self) {
        // SAFETY: only the generation is compared; the runtime is not touched if it changed.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            return;
        };
        let ts = self.tstate.get();
        if self.generation.get() != rt.generation || ts.is_null() || self.depth.get() != 0 {
            return;
        }
        // SAFETY: the state belongs to this thread and this interpreter, and this thread does
        // not hold the GIL (depth 0). Release with PyGILState_UNLOCKED (1) undoes our Ensure:
        // the state is deleted (and the GIL dropped) when that was its last use.
        unsafe {
            (rt.api.PyEval_RestoreThread)(ts);
            (rt.api.PyGILState_Release)(1);
            if (rt.api.PyGILState_Check)() != 0 {
                (rt.api.PyEval_SaveThread)();
            }
        }
    }
}

thread_local! {
    static THREAD: ThreadGil = const { ThreadGil {
        lisp_fp: Cell::new(None),
        generation: Cell::new(0),
        tstate: Cell::new(std::ptr::null_mut()),
        depth: Cell::new(0),
    } };
}

/// An entry into Python: the GIL is held and traps are masked until it is dropped.
pub struct Entry {
    rt: &'static Runtime,
    fp: fp::FpState,
    /// This thread's GIL record (one TLS lookup per entry; also makes `Entry` !Send).
    thread: *const ThreadGil,
}

impl Entry {
    /// The C-API table of the running interpreter.
    #[inline(always)]
    pub fn api(&self) -> &'static Api {
        &self.rt.api
    }

    /// The running interpreter.
    #[inline(always)]
    pub fn runtime(&self) -> &'static Runtime {
        self.rt
    }
}

/// Enters Python from this thread, or records "python is not started" and returns `None`.
#[inline]
pub fn enter() -> Option<Entry> {
    // SAFETY: the runtime stays valid until `p4s_stop`, which refuses to run while this or any
    // thread is inside an entry (it requires depth 0 here, and the Lisp side serialises stop).
    let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
        set_last_error("python is not started");
        return None;
    };
    let fp = fp::mask_traps();
    let thread = THREAD.with(|t| {
        t.lisp_fp.set(Some(fp));
        let depth = t.depth.get();
        if depth > 0 && t.generation.get() == rt.generation {
            t.depth.set(depth + 1);
            return t as *const ThreadGil;
        }
        let api = &rt.api;
        if t.generation.get() == rt.generation && !t.tstate.get().is_null() {
            // SAFETY: the thread state was made for this interpreter on this thread and the GIL
            // is not held by this thread (depth 0).
            unsafe { (api.PyEval_RestoreThread)(t.tstate.get()) };
        } else {
            // First entry of this thread into this interpreter: PyGILState_Ensure makes (or, on
            // the starting thread, finds) its thread state and takes the GIL. We never call the
            // matching Release, so the state lives as long as the thread.
            // SAFETY: the interpreter is initialised.
            unsafe { (api.PyGILState_Ensure)() };
            // SAFETY: we hold the GIL; returns this thread's state.
            t.tstate
                .set(unsafe { (api.PyGILState_GetThisThreadState)() });
            t.generation.set(rt.generation);
            // SAFETY: we hold the GIL and the state is this thread's (3.14+: see loader::stack).
            unsafe { py4cl2_cffi_loader::stack::fit_stack_protection(api, t.tstate.get()) };
        }
        t.depth.set(1);
        t as *const ThreadGil
    });
    if PENDING.load(Ordering::Relaxed) != 0 {
        drain_decrefs(&rt.api, rt.generation);
    }
    Some(Entry { rt, fp, thread })
}

impl Drop for Entry {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the record is this thread's thread-local, alive while the thread runs, and
        // an `Entry` never leaves the thread that made it (it is !Send).
        let t = unsafe { &*self.thread };
        let depth = t.depth.get();
        if depth == 1 {
            crate::interrupt::clear_own_request(&self.rt.api);
            // SAFETY: this thread holds the GIL (depth 1 means our entry took it).
            let ts = unsafe { (self.rt.api.PyEval_SaveThread)() };
            t.tstate.set(ts);
        }
        t.depth.set(depth.saturating_sub(1));
        fp::restore(self.fp);
    }
}

/// How deep this thread is inside Python entries (0: it does not hold the GIL through us).
pub fn depth() -> u32 {
    THREAD.with(|t| t.depth.get())
}

/// Marks this thread as holding the GIL for the duration of a Lisp callback that Python called
/// (the GIL is already held by Python; nested entries must not take it again). Returns the
/// previous depth, to hand to [`callback_exit`].
fn callback_enter(rt: &'static Runtime) -> u32 {
    THREAD.with(|t| {
        let d = t.depth.get();
        if t.generation.get() != rt.generation || t.tstate.get().is_null() {
            // A thread Python made (threading.Thread) calling into Lisp: adopt its state.
            // SAFETY: the GIL is held by this thread (we are inside a Python call).
            t.tstate
                .set(unsafe { (rt.api.PyGILState_GetThisThreadState)() });
            t.generation.set(rt.generation);
        }
        t.depth.set(d + 1);
        d
    })
}

/// The floating-point state of the Lisp code that last entered Python on this thread, if any.
fn lisp_fp() -> Option<fp::FpState> {
    THREAD.with(|t| t.lisp_fp.get())
}

/// Undoes [`callback_enter`].
fn callback_exit(previous: u32) {
    THREAD.with(|t| t.depth.set(previous));
}

/// Runs Lisp code `f` that Python called (a callback, an output write, a release
/// notification): the thread counts as holding the GIL so `f` may call back into Python, and
/// `f` runs with the Lisp caller's floating-point traps, masked again afterwards.
pub(crate) fn in_lisp<R>(rt: &'static Runtime, f: impl FnOnce() -> R) -> R {
    let previous = callback_enter(rt);
    let r = match lisp_fp() {
        Some(state) => {
            fp::restore(state);
            let r = f();
            fp::remask();
            r
        }
        None => f(),
    };
    callback_exit(previous);
    r
}

// ---------------------------------------------------------------------------------------------
// The decref queue: finalizers on any thread hand objects here without touching the GIL.

struct Queued {
    obj: usize,
    generation: u64,
}

static QUEUE: Mutex<Vec<Queued>> = Mutex::new(Vec::new());
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn drain_decrefs(api: &Api, generation: u64) {
    let items = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
    PENDING.store(0, Ordering::Relaxed);
    for q in items {
        if q.generation == generation {
            // SAFETY: the GIL is held; the object belonged to this interpreter and the Lisp
            // side handed us its one reference.
            unsafe { (api.Py_DecRef)(q.obj as *mut PyObject) };
        }
    }
}

/// Forgets queued decrefs (at stop: their objects died with the interpreter).
pub(crate) fn clear_queue() {
    QUEUE.lock().unwrap_or_else(|e| e.into_inner()).clear();
    PENDING.store(0, Ordering::Relaxed);
}

/// Drains the queue now (GIL held by the caller's entry).
pub(crate) fn drain_now(e: &Entry) {
    drain_decrefs(e.api(), e.runtime().generation);
}

export! {
    /// Takes the GIL for this thread and keeps it until the matching [`p4s_gil_release`];
    /// nestable. Returns 0, or -2 if Python is not started.
    fn p4s_gil_acquire() -> i32, on_panic = crate::P4S_ERROR, {
        match enter() {
            Some(e) => {
                // Keep the entry's count: forget the guard, but give the caller's FP state back
                // (Lisp code between calls runs with its own traps).
                fp::restore(e.fp);
                std::mem::forget(e);
                crate::P4S_OK
            }
            None => crate::P4S_ERROR,
        }
    }
}

export! {
    /// Gives back one level taken by [`p4s_gil_acquire`]; the GIL is released when the count
    /// reaches zero. Returns 0, or -2 if this thread does not hold it through the shim.
    fn p4s_gil_release() -> i32, on_panic = crate::P4S_ERROR, {
        // SAFETY: see `enter`.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            set_last_error("python is not started");
            return crate::P4S_ERROR;
        };
        if depth() == 0 {
            set_last_error("p4s_gil_release without a matching p4s_gil_acquire on this thread");
            return crate::P4S_ERROR;
        }
        let fp = fp::mask_traps();
        let thread = THREAD.with(|t| t as *const ThreadGil);
        drop(Entry { rt, fp, thread });
        crate::P4S_OK
    }
}

export! {
    /// The number of nested GIL holds of this thread through the shim (0: not held).
    fn p4s_gil_depth() -> i32, on_panic = -1, {
        depth() as i32
    }
}

export! {
    /// Releases a reference later, from any thread, without taking the GIL: the object is
    /// queued and released by the next entry into Python. `generation` is the value of
    /// `p4s_generation()` when the reference was obtained; a reference from an earlier start
    /// is dropped silently (its interpreter is gone). NULL is ignored.
    fn p4s_decref_later(obj: *mut PyObject, generation: u64) -> (), on_panic = (), {
        if obj.is_null() || generation != py4cl2_cffi_loader::generation() {
            return;
        }
        QUEUE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Queued { obj: obj as usize, generation });
        PENDING.fetch_add(1, Ordering::Relaxed);
    }
}

export! {
    /// Releases a reference now (takes the GIL). NULL is ignored.
    fn p4s_decref(obj: *mut PyObject) -> (), on_panic = (), {
        if obj.is_null() {
            return;
        }
        if let Some(e) = enter() {
            // SAFETY: GIL held; the caller hands us its reference.
            unsafe { (e.api().Py_DecRef)(obj) };
        }
    }
}

export! {
    /// Takes a new reference to `obj` (takes the GIL). NULL is ignored.
    fn p4s_incref(obj: *mut PyObject) -> (), on_panic = (), {
        if obj.is_null() {
            return;
        }
        if let Some(e) = enter() {
            // SAFETY: GIL held; `obj` is live (the caller holds a reference).
            unsafe { (e.api().Py_IncRef)(obj) };
        }
    }
}

export! {
    /// The number of references waiting in the decref queue (for tests and diagnostics).
    fn p4s_decref_queue_length() -> i64, on_panic = -1, {
        QUEUE.lock().unwrap_or_else(|e| e.into_inner()).len() as i64
    }
}
