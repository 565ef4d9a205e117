//! Taking and giving back the GIL from any thread, the threads in flight, and the decref queue.
//!
//! Each OS thread that enters Python from Lisp gets one thread state, kept for the life of the
//! thread (creating and deleting one per call, as a bare `PyGILState_Ensure`/`Release` pair
//! does, is slow and loses a pending exception). The outermost entry restores it and takes the
//! GIL; the outermost exit saves it and gives the GIL back; nested entries only count. A thread
//! state belongs to one interpreter: after a hard stop a stale one is dropped untouched; soft
//! stops keep the interpreter, and so the thread states.
//!
//! **Threads in flight.** Every thread that entered has a [`ThreadRecord`] in a registry; its
//! `active` flag is set from the outermost entry to the outermost exit (also while Python runs
//! a Lisp callback on a thread Python made). [`StopGate`] closes the gate for `p4s_stop`: new
//! outermost entries wait until the stop is over, and the stopper waits, for a bounded time,
//! until no other thread is active — so a stop never frees or resets anything under a thread
//! that is in a call. The protocol is a store-then-load on each side with sequentially
//! consistent atomics: an entering thread sets `active` and then reads the gate; the stopper
//! closes the gate and then reads every `active`. At least one of the two sees the other.
//!
//! **Threads that Python made** (`threading.Thread`) run Lisp code only when Python calls a
//! Lisp callback or writes output; [`in_lisp`] then marks them as holding the GIL for the
//! duration without adopting their thread state, which Python deletes when such a thread ends.
//!
//! May depend on: last_error, fp, interrupt (and lib).

use crate::fp;
use crate::last_error::{set_error, set_last_error};
use crate::{P4S_NOT_STARTED, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::{PyObject, PyThreadState};
use py4cl2_cffi_loader::Runtime;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the stopper can see of a thread that entered Python.
pub(crate) struct ThreadRecord {
    /// Inside a call into Python (outermost entry to outermost exit), or inside a callback.
    active: AtomicBool,
    /// Python's identifier of the thread (`threading.get_ident()`), 0 before the first entry.
    ident: AtomicU64,
}

/// Every thread that has entered Python and is still alive.
static REGISTRY: Mutex<Vec<Arc<ThreadRecord>>> = Mutex::new(Vec::new());

struct ThreadGil {
    /// The caller's floating-point state at the latest entry (restored around Lisp callbacks).
    lisp_fp: Cell<Option<fp::FpState>>,
    /// The interpreter (its `instance`) the thread state belongs to; 0 for none.
    instance: Cell<u64>,
    tstate: Cell<*mut PyThreadState>,
    depth: Cell<u32>,
    /// The current depth was opened by Python calling Lisp on a thread that Python made.
    foreign: Cell<bool>,
    /// This thread's entry in [`REGISTRY`] (null until the first entry).
    record: Cell<*const ThreadRecord>,
    /// This thread is the one stopping Python (it passes the closed gate).
    stopper: Cell<bool>,
}

impl ThreadGil {
    /// This thread's record, registered on first use.
    #[inline(always)]
    fn record(&self) -> &ThreadRecord {
        let p = self.record.get();
        if p.is_null() {
            return self.register();
        }
        // SAFETY: the registry holds an Arc to the record until this thread's `Drop` removes it.
        unsafe { &*p }
    }

    /// Makes and registers this thread's record (its first entry).
    #[cold]
    #[inline(never)]
    fn register(&self) -> &ThreadRecord {
        let r = Arc::new(ThreadRecord {
            active: AtomicBool::new(false),
            ident: AtomicU64::new(0),
        });
        let p = Arc::as_ptr(&r);
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).push(r);
        self.record.set(p);
        // SAFETY: as in `record`: the registry now holds the Arc.
        unsafe { &*p }
    }
}

impl Drop for ThreadGil {
    /// A thread that entered Python is ending: give the thread state it made back to Python
    /// (the one `PyGILState_Ensure` reference we kept; the starting thread's main state is
    /// only decremented, never deleted, by the same call), and leave the registry. A thread
    /// Python made has no state of ours: Python deletes its own.
    fn drop(&mut self) {
        let rec = self.record.get();
        let ts = self.tstate.get();
        if !rec.is_null() && !ts.is_null() && self.depth.get() == 0 && !self.foreign.get() {
            // SAFETY: the registry keeps the record alive until it is removed below.
            let record = unsafe { &*rec };
            record.active.store(true, Ordering::SeqCst);
            if GATE.load(Ordering::SeqCst) == GATE_OPEN {
                // SAFETY: this thread is marked in flight and the gate is open, so no stop
                // frees the runtime meanwhile; only the instance is compared before use.
                if let Some(rt) = unsafe { py4cl2_cffi_loader::current() } {
                    if self.instance.get() == rt.instance {
                        // SAFETY: the state belongs to this thread and this interpreter, and
                        // this thread does not hold the GIL (depth 0). Release with
                        // PyGILState_UNLOCKED (1) undoes our Ensure: the state is deleted (and
                        // the GIL dropped) when that was its last use.
                        unsafe {
                            (rt.api.PyEval_RestoreThread)(ts);
                            (rt.api.PyGILState_Release)(1);
                            if (rt.api.PyGILState_Check)() != 0 {
                                (rt.api.PyEval_SaveThread)();
                            }
                        }
                    }
                }
            }
            leave_flight(record);
        }
        if !rec.is_null() {
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            reg.retain(|r| Arc::as_ptr(r) != rec);
        }
    }
}

thread_local! {
    static THREAD: ThreadGil = const { ThreadGil {
        lisp_fp: Cell::new(None),
        instance: Cell::new(0),
        tstate: Cell::new(std::ptr::null_mut()),
        depth: Cell::new(0),
        foreign: Cell::new(false),
        record: Cell::new(std::ptr::null()),
        stopper: Cell::new(false),
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

// ---------------------------------------------------------------------------------------------
// The gate that stops close.

const GATE_OPEN: u32 = 0;
const GATE_STOPPING: u32 = 1;
static GATE: AtomicU32 = AtomicU32::new(GATE_OPEN);
/// Counts stop attempts (an interrupt request of an abandoned attempt is not placed).
static ATTEMPT: AtomicU64 = AtomicU64::new(0);
static GATE_LOCK: Mutex<()> = Mutex::new(());
static GATE_CHANGED: Condvar = Condvar::new();

fn notify_gate() {
    let _g = GATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    GATE_CHANGED.notify_all();
}

/// Waits (outside the GIL) until no stop is in progress. Returns false when a stop completed
/// meanwhile, i.e. the session this call belonged to has ended.
#[cold]
fn wait_for_gate() -> bool {
    let generation = py4cl2_cffi_loader::generation();
    let mut g = GATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    while GATE.load(Ordering::SeqCst) != GATE_OPEN {
        g = GATE_CHANGED
            .wait_timeout(g, Duration::from_millis(50))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    py4cl2_cffi_loader::generation() == generation && py4cl2_cffi_loader::is_running()
}

/// A closed gate: held by the thread that stops Python; reopens it when dropped.
pub(crate) struct StopGate {
    _closed: (),
}

/// A thread still inside Python when a stop gave up waiting.
pub(crate) struct Busy {
    /// Python's identifier of each thread that is still inside Python.
    pub idents: Vec<u64>,
}

impl StopGate {
    /// Closes the gate and waits up to `timeout` for every other thread to leave Python. Once
    /// `grace` has passed, `interrupt` is called once with the identifiers of the threads
    /// still inside (to ask them to leave). Fails when another stop is in progress (empty
    /// `Busy`) or when threads are still inside at the deadline; the gate is open again then.
    pub(crate) fn close(
        timeout: Duration,
        grace: Duration,
        mut interrupt: impl FnMut(u64, &[u64]),
    ) -> Result<StopGate, Busy> {
        if GATE
            .compare_exchange(GATE_OPEN, GATE_STOPPING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(Busy { idents: Vec::new() });
        }
        let attempt = ATTEMPT.fetch_add(1, Ordering::SeqCst) + 1;
        THREAD.with(|t| t.stopper.set(true));
        let gate = StopGate { _closed: () };
        let me = THREAD.with(|t| t.record.get());
        let started = Instant::now();
        let mut interrupted = false;
        loop {
            let busy: Vec<u64> = {
                let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
                reg.iter()
                    .filter(|r| Arc::as_ptr(r) != me && r.active.load(Ordering::SeqCst))
                    .map(|r| r.ident.load(Ordering::Relaxed))
                    .collect()
            };
            if busy.is_empty() {
                return Ok(gate);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                drop(gate);
                return Err(Busy { idents: busy });
            }
            if !interrupted && waited >= grace {
                interrupted = true;
                interrupt(attempt, &busy);
            }
            let g = GATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let _ = GATE_CHANGED
                .wait_timeout(g, Duration::from_millis(5))
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Whether stop attempt `attempt` still holds the gate.
pub(crate) fn attempt_in_progress(attempt: u64) -> bool {
    GATE.load(Ordering::SeqCst) == GATE_STOPPING && ATTEMPT.load(Ordering::SeqCst) == attempt
}

impl Drop for StopGate {
    fn drop(&mut self) {
        THREAD.with(|t| t.stopper.set(false));
        GATE.store(GATE_OPEN, Ordering::SeqCst);
        notify_gate();
    }
}

// ---------------------------------------------------------------------------------------------
// Entering and leaving.

/// Enters Python from this thread, or records why not (status [`P4S_NOT_STARTED`]) and
/// returns `None`.
///
/// Inlined into every export, so that the [`Entry`] lives in registers (returned through memory
/// it cost a store-forwarding stall per call); the outermost entry is out of line.
#[inline(always)]
pub fn enter() -> Option<Entry> {
    let fp = fp::mask_traps();
    let thread = THREAD.with(|t| t as *const ThreadGil);
    // SAFETY: this thread's thread-local, alive while the thread runs.
    let t = unsafe { &*thread };
    t.lisp_fp.set(Some(fp));
    let depth = t.depth.get();
    let entered = if depth > 0 {
        // SAFETY: this thread is inside an entry (or a callback), which a stop waits for.
        match unsafe { py4cl2_cffi_loader::current() } {
            Some(rt) if t.instance.get() == rt.instance => {
                t.depth.set(depth + 1);
                Ok(rt)
            }
            _ => Err("python is not started"),
        }
    } else {
        outermost_entry(t)
    };
    match entered {
        Ok(rt) => {
            if PENDING.load(Ordering::Relaxed) != 0 {
                drain_decrefs(rt);
            }
            Some(Entry { rt, fp, thread })
        }
        Err(why) => not_entered(fp, why),
    }
}

/// Records why [`enter`] failed and gives the caller's floating-point state back.
#[cold]
#[inline(never)]
fn not_entered(fp: fp::FpState, why: &'static str) -> Option<Entry> {
    set_error(P4S_NOT_STARTED, why);
    fp::restore(fp);
    None
}

/// The outermost entry of this thread: marks it in flight, passes the gate, takes the GIL.
#[inline(never)]
fn outermost_entry(t: &ThreadGil) -> Result<&'static Runtime, &'static str> {
    let rec = t.record();
    loop {
        rec.active.store(true, Ordering::SeqCst);
        if GATE.load(Ordering::SeqCst) == GATE_OPEN || t.stopper.get() {
            break;
        }
        rec.active.store(false, Ordering::SeqCst);
        notify_gate();
        if !wait_for_gate() {
            return Err("python was stopped by another thread while this call waited");
        }
    }
    // SAFETY: this thread is marked in flight and the gate is open (or this is the stopper), so
    // no stop can free the runtime until the outermost exit clears the mark.
    let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
        leave_flight(rec);
        return Err("python is not started");
    };
    let api = &rt.api;
    if t.instance.get() == rt.instance && !t.tstate.get().is_null() {
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
        t.instance.set(rt.instance);
        // SAFETY: we hold the GIL and the state is this thread's (3.14+: see loader::stack).
        unsafe { py4cl2_cffi_loader::stack::fit_stack_protection(api, t.tstate.get()) };
        rec.ident.store(thread_ident(api), Ordering::Relaxed);
    }
    t.depth.set(1);
    Ok(rt)
}

/// Python's identifier of the calling thread (`threading.get_ident()`).
#[allow(clippy::unnecessary_cast)] // `c_ulong` is not `u64` everywhere
fn thread_ident(api: &Api) -> u64 {
    // SAFETY: a plain query of the calling thread's identifier, valid with or without the GIL.
    unsafe { (api.PyThread_get_thread_ident)() as u64 }
}

/// Clears this thread's in-flight mark and wakes a stopper that may be waiting for it.
#[inline]
fn leave_flight(rec: &ThreadRecord) {
    rec.active.store(false, Ordering::SeqCst);
    if GATE.load(Ordering::SeqCst) != GATE_OPEN {
        notify_gate();
    }
}

impl Drop for Entry {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the record is this thread's thread-local, alive while the thread runs, and
        // an `Entry` never leaves the thread that made it (it is !Send).
        let t = unsafe { &*self.thread };
        let depth = t.depth.get();
        if depth == 1 && !t.foreign.get() {
            outermost_exit(self.rt, t);
        } else {
            t.depth.set(depth.saturating_sub(1));
        }
        fp::restore(self.fp);
    }
}

/// The outermost exit of this thread: withdraws an unused interrupt request, gives the GIL
/// back, and clears the in-flight mark.
#[inline(never)]
fn outermost_exit(rt: &'static Runtime, t: &ThreadGil) {
    crate::interrupt::clear_own_request(&rt.api);
    // SAFETY: this thread holds the GIL (depth 1 means our entry took it).
    let ts = unsafe { (rt.api.PyEval_SaveThread)() };
    t.tstate.set(ts);
    t.depth.set(0);
    leave_flight(t.record());
}

/// How deep this thread is inside Python entries (0: it does not hold the GIL through us).
pub fn depth() -> u32 {
    THREAD.with(|t| t.depth.get())
}

/// Lisp's hooks that make a thread Python made known to the Lisp runtime while it runs Lisp
/// code, and forget it afterwards (ECL needs them; SBCL attaches foreign threads by itself).
pub type AttachFn = unsafe extern "C" fn() -> i32;
/// See [`AttachFn`].
pub type DetachFn = unsafe extern "C" fn();
static ATTACH: AtomicUsize = AtomicUsize::new(0);
static DETACH: AtomicUsize = AtomicUsize::new(0);

export! {
    /// Registers the functions that attach a thread Python made to the Lisp runtime before
    /// Python calls Lisp on it (`attach` returns nonzero on success) and detach it afterwards;
    /// NULL for none (the Lisp runtime attaches foreign threads itself, as SBCL does).
    ///
    /// Owns: nothing: the shim keeps the two function pointers.
    /// GIL: not needed.
    /// Fails: never; returns nothing.
    fn p4s_set_thread_hooks(attach: Option<AttachFn>, detach: Option<DetachFn>) -> (), on_panic = (), {
        ATTACH.store(attach.map_or(0, |f| f as usize), Ordering::Release);
        DETACH.store(detach.map_or(0, |f| f as usize), Ordering::Release);
    }
}

/// Why Lisp was not called for Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotInLisp {
    /// A stop is in progress and this thread, one Python made, is not in a call.
    Stopping,
    /// The Lisp runtime refused to attach this thread.
    NoLisp,
}

/// Marks this thread as holding the GIL for the duration of Lisp code that Python called
/// (the GIL is already held by Python; nested entries must not take it again). Returns the
/// previous depth, to hand to [`callback_exit`], or why Lisp must not run now.
fn callback_enter(rt: &'static Runtime) -> Result<u32, NotInLisp> {
    THREAD.with(|t| {
        let d = t.depth.get();
        if d == 0 {
            // A thread Python made (threading.Thread): Python owns its thread state and
            // deletes it when the thread ends, so it is not adopted; the thread is in flight
            // while Lisp runs.
            let rec = t.record();
            rec.active.store(true, Ordering::SeqCst);
            if GATE.load(Ordering::SeqCst) != GATE_OPEN {
                leave_flight(rec);
                return Err(NotInLisp::Stopping);
            }
            let attach = ATTACH.load(Ordering::Acquire);
            if attach != 0 {
                // SAFETY: registered as an `AttachFn` by `p4s_set_thread_hooks`.
                let f: AttachFn = unsafe { std::mem::transmute::<usize, AttachFn>(attach) };
                // SAFETY: the hook's contract: callable from any thread, no arguments.
                if unsafe { f() } == 0 {
                    leave_flight(rec);
                    return Err(NotInLisp::NoLisp);
                }
            }
            rec.ident.store(thread_ident(&rt.api), Ordering::Relaxed);
            t.foreign.set(true);
            t.instance.set(rt.instance);
        }
        t.depth.set(d + 1);
        Ok(d)
    })
}

/// The floating-point state of the Lisp code that last entered Python on this thread, if any.
fn lisp_fp() -> Option<fp::FpState> {
    THREAD.with(|t| t.lisp_fp.get())
}

/// Undoes [`callback_enter`].
fn callback_exit(previous: u32) {
    THREAD.with(|t| {
        t.depth.set(previous);
        if previous == 0 && t.foreign.get() {
            t.foreign.set(false);
            t.instance.set(0);
            let detach = DETACH.load(Ordering::Acquire);
            if detach != 0 && ATTACH.load(Ordering::Acquire) != 0 {
                // SAFETY: registered as a `DetachFn` by `p4s_set_thread_hooks`.
                let f: DetachFn = unsafe { std::mem::transmute::<usize, DetachFn>(detach) };
                // SAFETY: the hook's contract; this thread was attached by `callback_enter`.
                unsafe { f() };
            }
            leave_flight(t.record());
        }
    })
}

/// Whether this thread is one that Python made, currently running Lisp code for Python.
pub(crate) fn in_foreign_thread() -> bool {
    THREAD.with(|t| t.foreign.get() || t.depth.get() == 0)
}

/// Runs Lisp code `f` that Python called (a callback, an output write, a release
/// notification): the thread counts as holding the GIL so `f` may call back into Python, and
/// `f` runs with the Lisp caller's floating-point traps, masked again afterwards. Returns why
/// `f` was not run when Lisp must not be called now (see [`NotInLisp`]).
pub(crate) fn in_lisp<R>(rt: &'static Runtime, f: impl FnOnce() -> R) -> Result<R, NotInLisp> {
    let previous = callback_enter(rt)?;
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
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// The decref queue: finalizers on any thread hand objects here without touching the GIL.

struct Queued {
    obj: usize,
    generation: u64,
}

static QUEUE: Mutex<Vec<Queued>> = Mutex::new(Vec::new());
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn drain_decrefs(rt: &Runtime) {
    let items = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
    PENDING.store(0, Ordering::Relaxed);
    for q in items {
        if rt.owns_generation(q.generation) {
            // SAFETY: the GIL is held; the object belongs to this interpreter (its session is
            // this one or an earlier one of the same interpreter) and the Lisp side handed us
            // its one reference.
            unsafe { (rt.api.Py_DecRef)(q.obj as *mut PyObject) };
        }
    }
}

/// Forgets queued decrefs whose interpreter is gone (at a hard stop).
pub(crate) fn clear_queue() {
    QUEUE.lock().unwrap_or_else(|e| e.into_inner()).clear();
    PENDING.store(0, Ordering::Relaxed);
}

/// Drains the queue now (GIL held by the caller's entry).
pub(crate) fn drain_now(e: &Entry) {
    drain_decrefs(e.runtime());
}

export! {
    /// Takes the GIL for this thread and keeps it until the matching [`p4s_gil_release`];
    /// nestable. Returns 0, or -2 if Python is not started.
    ///
    /// Owns: one level of this thread's GIL hold: give it back with `p4s_gil_release`.
    /// GIL: takes it and keeps it (nestable).
    /// Fails: -2 with code `P4S_NOT_STARTED` when Python is not running.
    fn p4s_gil_acquire() -> i32, on_panic = crate::P4S_ERROR, {
        match enter() {
            Some(e) => {
                // Keep the entry's count: forget the guard, but give the caller's FP state back
                // (Lisp code between calls runs with its own traps).
                fp::restore(e.fp);
                std::mem::forget(e);
                P4S_OK
            }
            None => crate::P4S_ERROR,
        }
    }
}

export! {
    /// Gives back one level taken by [`p4s_gil_acquire`]; the GIL is released when the count
    /// reaches zero. Returns 0, or -2 if this thread does not hold it through the shim.
    ///
    /// Owns: gives back one level taken by `p4s_gil_acquire`.
    /// GIL: releases it when the count reaches zero.
    /// Fails: -2 (`p4s_last_error`) when this thread holds no level, or Python is not running.
    fn p4s_gil_release() -> i32, on_panic = crate::P4S_ERROR, {
        // SAFETY: this thread holds an entry (checked next), which a stop waits for.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            set_error(P4S_NOT_STARTED, "python is not started");
            return crate::P4S_ERROR;
        };
        if depth() == 0 {
            set_last_error("p4s_gil_release without a matching p4s_gil_acquire on this thread");
            return crate::P4S_ERROR;
        }
        let fp = fp::mask_traps();
        let thread = THREAD.with(|t| t as *const ThreadGil);
        drop(Entry { rt, fp, thread });
        P4S_OK
    }
}

export! {
    /// The number of nested GIL holds of this thread through the shim (0: not held).
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_gil_depth() -> i32, on_panic = -1, {
        depth() as i32
    }
}

export! {
    /// Releases a reference later, from any thread, without taking the GIL: the object is
    /// queued and released by the next entry into Python. `generation` is the value of
    /// `p4s_generation()` when the reference was obtained; a reference whose interpreter was
    /// finalised is dropped silently (it died with it). NULL is ignored.
    ///
    /// Owns: takes over the caller's reference to `obj` (released by the next entry into Python).
    /// GIL: not needed: safe from any thread (a Lisp finalizer), never blocks on the GIL.
    /// Fails: never; a NULL `obj`, or one from a finalised interpreter, is ignored.
    fn p4s_decref_later(obj: *mut PyObject, generation: u64) -> (), on_panic = (), {
        if obj.is_null() || generation == 0 || generation > py4cl2_cffi_loader::generation() {
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
    ///
    /// Owns: takes over the caller's reference to `obj` and releases it.
    /// GIL: takes it itself (nestable, any thread); Python must be running; a no-op when Python is
    ///   not running.
    /// Fails: never; NULL is ignored.
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
    ///
    /// Owns: gives the caller a new reference to `obj`.
    /// GIL: takes it itself (nestable, any thread); Python must be running; a no-op when Python is
    ///   not running.
    /// Fails: never; NULL is ignored.
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
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_decref_queue_length() -> i64, on_panic = -1, {
        QUEUE.lock().unwrap_or_else(|e| e.into_inner()).len() as i64
    }
}

export! {
    /// The number of threads other than the caller that are inside a call into Python now
    /// (for tests and diagnostics).
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_threads_in_python() -> i64, on_panic = -1, {
        let me = THREAD.with(|t| t.record.get());
        REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| Arc::as_ptr(r) != me && r.active.load(Ordering::SeqCst))
            .count() as i64
    }
}

export! {
    /// Asks Python to raise `KeyboardInterrupt` in the thread whose identifier (pthread_self,
    /// as `threading.get_ident()` reports it) is `ident`, at that thread's next bytecode. Call
    /// it from another thread: it takes the GIL, so it waits while the target holds it (Python
    /// hands it over within the switch interval). Returns 1 when the request was placed, 0
    /// when no Python thread state has that identifier, or `P4S_ERROR` when Python is not
    /// started. A request still pending when the target leaves Python is withdrawn then.
    ///
    /// Owns: nothing.
    /// GIL: takes it itself (nestable, any thread); Python must be running (so it waits while the
    ///   target holds it); call it from another thread.
    /// Fails: -2 (code `P4S_NOT_STARTED`) when Python is not running; 0 (not a failure) when no
    ///   thread has that identifier.
    fn p4s_interrupt_thread(ident: u64) -> i32, on_panic = crate::P4S_ERROR, {
        let Some(e) = enter() else { return crate::P4S_ERROR };
        let api = e.api();
        // SAFETY: PyExc_KeyboardInterrupt is read after initialisation.
        let found = crate::interrupt::request(api, unsafe { py4cl2_cffi_loader::api::Api::read_pointer(api.PyExc_KeyboardInterrupt) }, &[ident]);
        found.min(1) as i32
    }
}
