//! Starting, resuming and stopping Python; version information and the stop report.
//!
//! Starts and stops are serialised by one lock. A stop first closes the gate of `gil` and
//! waits (bounded) for every other thread to leave Python, asking the ones still inside to
//! leave with `py4cl2_cffi.PythonStopping` (a `KeyboardInterrupt`); only then does the loader
//! end the session (softly, or by finalising). Status codes are distinct so that Lisp picks
//! its condition from the code, never from the message.
//!
//! May depend on: last_error, gil, interrupt, pyerr, output (and lib).

use crate::gil::{self, StopGate};
use crate::last_error::{set_error, set_last_error};
use crate::{
    P4S_BUSY, P4S_ERROR, P4S_NOT_STARTED, P4S_OK, P4S_OTHER_RUNNING, P4S_PINNED, P4S_REFUSED,
};
use py4cl2_cffi_loader::{Error as LoaderError, StopKind, StopMode};
use std::ffi::{c_char, CString};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

static REPORT: Mutex<Option<CString>> = Mutex::new(None);
/// Serialises starts and stops.
static LIFECYCLE: Mutex<()> = Mutex::new(());
thread_local! {
    /// The threads a refused stop found inside Python (read by `p4s_stop_busy_threads`).
    static BUSY: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The threads that place or withdraw a stop's interrupt requests, until they are joined.
static INTERRUPTERS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// `p4s_start`: the interpreter was started (the same value as `P4S_OK`).
pub const P4S_STARTED: i32 = 0;
/// `p4s_start`: Python was already running that interpreter; nothing was done.
pub const P4S_ALREADY_STARTED: i32 = 1;
/// `p4s_start`: a dormant interpreter (soft-stopped) was resumed.
pub const P4S_RESUMED: i32 = 2;
/// `p4s_stop`: finalised and libpython unloaded; any version can start next (the same value
/// as `P4S_OK`).
pub const P4S_STOPPED_UNLOADED: i32 = 0;
/// `p4s_stop`: soft stop; the interpreter is dormant and the same one resumes on start.
pub const P4S_STOPPED_SOFT: i32 = 1;
/// `p4s_stop`: finalised, but libpython stayed mapped (see the report).
pub const P4S_STOPPED_PINNED: i32 = 2;
/// `p4s_stop` flag: finalise even when libpython cannot be unloaded afterwards.
pub const P4S_STOP_FINALIZE: i32 = 1;

/// How long a stop lets in-flight calls finish by themselves before asking them to leave.
const STOP_GRACE: Duration = Duration::from_millis(100);
/// The default bound on waiting for other threads to leave Python.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

fn spec_of(spec: *const c_char, len: i64) -> Result<Option<String>, String> {
    if spec.is_null() || len <= 0 {
        return Ok(None);
    }
    // SAFETY: `spec` valid for `len` bytes (caller's contract).
    let bytes = unsafe { std::slice::from_raw_parts(spec.cast::<u8>(), len as usize) };
    let s =
        std::str::from_utf8(bytes).map_err(|_| "the interpreter spec is not UTF-8".to_string())?;
    let s = s.trim();
    Ok(if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    })
}

/// Joins an error and its causes into one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// The status code for a loader error of a start.
fn start_error_code(e: &LoaderError) -> i32 {
    match e {
        LoaderError::Pinned { .. } | LoaderError::CannotRestart { .. } => P4S_PINNED,
        LoaderError::OtherRunning { .. } => P4S_OTHER_RUNNING,
        _ => P4S_ERROR,
    }
}

export! {
    /// Starts Python. `spec` (`len` UTF-8 bytes; NULL or empty for the configured interpreter)
    /// selects one as `py4cl2-cffi-config use` does: `3.12`, `>=3.10`, an executable, a venv or
    /// conda folder. Returns 0 when started, 2 when the dormant interpreter a soft stop left was
    /// resumed, 1 when that interpreter was already running (nothing done). Fails with -2 and a
    /// reason in `p4s_last_error()`, whose code (`p4s_last_error_code()`) is `P4S_PINNED` when
    /// the process keeps another interpreter (a fresh process is needed), `P4S_OTHER_RUNNING`
    /// when another interpreter is running, else `P4S_ERROR` (a missing or wrong libpython, an
    /// unknown spec...). A failed start leaves Python stopped.
    ///
    /// Owns: the process's interpreter (stop it with `p4s_stop`).
    /// GIL: not needed; serialised with other starts and stops.
    /// Fails: -2, the reason in `p4s_last_error` and its code in `p4s_last_error_code` (see above).
    fn p4s_start(spec: *const c_char, len: i64) -> i32, on_panic = P4S_ERROR, {
        let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
        let spec = match spec_of(spec, len) {
            Ok(s) => s,
            Err(m) => {
                set_last_error(&m);
                return P4S_ERROR;
            }
        };
        if py4cl2_cffi_loader::is_running() && spec.is_none() {
            return P4S_ALREADY_STARTED;
        }
        let facts = match py4cl2_cffi_loader::resolve(spec.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                set_last_error(&chain(&e));
                return P4S_ERROR;
            }
        };
        match py4cl2_cffi_loader::start(&facts) {
            Ok(started) => {
                if started.resumed { P4S_RESUMED } else { P4S_STARTED }
            }
            Err(LoaderError::AlreadyStarted) => P4S_ALREADY_STARTED,
            Err(e) => {
                set_error(start_error_code(&e), &chain(&e));
                P4S_ERROR
            }
        }
    }
}

/// Runs `work` with the GIL on a helper thread (a stop's waiting thread must not block on the
/// GIL, which a thread inside `with-python-gil` may hold). The thread is joined before Python
/// is stopped (see [`join_interrupters`]), so the runtime it uses stays valid.
fn on_helper_thread(work: impl FnOnce(&py4cl2_cffi_loader::Runtime) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("py4cl2-cffi stop".into())
        .spawn(move || {
            // SAFETY: the runtime stays valid: no stop proceeds before joining this thread.
            let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
                return;
            };
            let api = &rt.api;
            // SAFETY: the interpreter is initialised; this thread has no Python state yet, so
            // Ensure makes one and the matching Release below deletes it.
            let state = unsafe { (api.PyGILState_Ensure)() };
            work(rt);
            // SAFETY: undoes the Ensure above on this thread.
            unsafe { (api.PyGILState_Release)(state) };
        });
    if let Ok(h) = spawned {
        INTERRUPTERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
    }
}

/// Asks the threads `idents` to leave Python (`PythonStopping`), if stop attempt `attempt` is
/// still waiting when the helper thread gets the GIL.
fn spawn_interrupter(attempt: u64, idents: &[u64]) {
    let idents = idents.to_vec();
    on_helper_thread(move |rt| {
        if !gil::attempt_in_progress(attempt) {
            return;
        }
        let api = &rt.api;
        // SAFETY: GIL held; the helper module is live; a new reference or NULL.
        let exc = unsafe { (api.PyObject_GetAttrString)(rt.helpers(), c"PythonStopping".as_ptr()) };
        if exc.is_null() {
            // SAFETY: GIL held.
            unsafe { (api.PyErr_Clear)() };
        } else {
            crate::interrupt::request(api, exc, &idents);
            // SAFETY: our reference.
            unsafe { (api.Py_DecRef)(exc) };
        }
    });
}

/// After a stop gave up: withdraws the requests it placed that are still pending, so that the
/// threads it waited for do not get `PythonStopping` later in a call that was not stopped.
fn spawn_withdrawer(idents: &[u64]) {
    let idents = idents.to_vec();
    on_helper_thread(move |rt| crate::interrupt::withdraw(&rt.api, &idents));
}

/// Waits for the helper threads of earlier stop attempts to finish. Called once no Lisp thread
/// is inside Python, so they get the GIL as soon as Python's own threads let go of it.
fn join_interrupters() {
    let hs = std::mem::take(&mut *INTERRUPTERS.lock().unwrap_or_else(|e| e.into_inner()));
    for h in hs {
        let _ = h.join();
    }
}

export! {
    /// Stops Python. Returns 0 when it was finalised and everything it loaded is unmapped (any
    /// version may start next), 1 for a soft stop (not finalised: the interpreter stays
    /// initialised and the next start of it resumes it; the report says why), 2 when it was
    /// finalised but libpython stayed mapped. `flags`: `P4S_STOP_FINALIZE` (1) finalises even
    /// when libpython cannot be unloaded afterwards. `timeout_ms` (≤ 0: 5000) bounds the wait
    /// for other threads to leave Python; after 100 ms the ones still inside are asked to
    /// leave (`py4cl2_cffi.PythonStopping` is raised in them). Fails with -2, the code saying
    /// why: `P4S_NOT_STARTED`; `P4S_BUSY` when threads are still inside Python at the
    /// deadline (their identifiers are in the message; nothing was stopped); `P4S_REFUSED`
    /// when called while this thread holds the GIL (inside `with-python-gil` or a Lisp function
    /// Python called), during another stop, or to finalise while Python threads run.
    ///
    /// Owns: ends the interpreter; references from before it are stale (see `p4s_generation`).
    /// GIL: must be called without holding the GIL (else `P4S_REFUSED`); serialised with starts.
    /// Fails: -2, the reason in `p4s_last_error` and its code in `p4s_last_error_code` (see above).
    fn p4s_stop(flags: i32, timeout_ms: i64) -> i32, on_panic = P4S_ERROR, {
        let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
        if !py4cl2_cffi_loader::is_running() {
            set_error(P4S_NOT_STARTED, "python is not started");
            return P4S_ERROR;
        }
        if gil::depth() > 0 {
            set_error(P4S_REFUSED, "cannot stop python while this thread is inside it (inside with-python-gil, or in a Lisp function that Python called)");
            return P4S_ERROR;
        }
        let timeout = if timeout_ms > 0 { Duration::from_millis(timeout_ms as u64) } else { STOP_TIMEOUT };
        let gate = match StopGate::close(timeout, STOP_GRACE.min(timeout / 2), spawn_interrupter) {
            Ok(g) => g,
            Err(busy) if busy.idents.is_empty() => {
                set_error(P4S_REFUSED, "another thread is stopping python");
                return P4S_ERROR;
            }
            Err(busy) => {
                spawn_withdrawer(&busy.idents);
                BUSY.with(|b| *b.borrow_mut() = busy.idents.clone());
                let list = busy.idents.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
                set_error(P4S_BUSY, &format!(
                    "{} other thread(s) still inside Python after {:.1} s (thread idents: {list}); nothing was stopped",
                    busy.idents.len(), timeout.as_secs_f64()));
                return P4S_ERROR;
            }
        };
        join_interrupters();
        if let Some(e) = gil::enter() {
            crate::output::forget(&e);
            crate::pyerr::p4s_forget_kept(&e);
            gil::drain_now(&e);
        }
        let mode = if flags & P4S_STOP_FINALIZE != 0 { StopMode::Finalize } else { StopMode::Auto };
        let result = py4cl2_cffi_loader::stop(mode);
        drop(gate);
        match result {
            Ok(r) => {
                if r.kind != StopKind::Soft {
                    gil::clear_queue();
                }
                let list = |v: &[String]| {
                    v.iter()
                        .map(|p| format!("\"{}\"", json_escape(p)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let paths = |v: &[std::path::PathBuf]| {
                    list(&v.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>())
                };
                let kind = match r.kind {
                    StopKind::Unloaded => "unloaded",
                    StopKind::Soft => "soft",
                    StopKind::Finalized => "finalized",
                };
                let json = format!(
                    "{{\"libpython\":\"{}\",\"kind\":\"{kind}\",\"pinned\":{},\"reason\":{},\"unloaded\":[{}],\"remaining\":[{}],\"dropped_modules\":[{}]}}",
                    json_escape(&r.libpython.to_string_lossy()),
                    r.pinned,
                    r.pin_reason.as_deref().map(|s| format!("\"{}\"", json_escape(s))).unwrap_or_else(|| "null".into()),
                    paths(&r.unloaded),
                    paths(&r.remaining),
                    list(&r.dropped_modules),
                );
                *REPORT.lock().unwrap_or_else(|e| e.into_inner()) = CString::new(json).ok();
                match r.kind {
                    StopKind::Unloaded => P4S_STOPPED_UNLOADED,
                    StopKind::Soft => P4S_STOPPED_SOFT,
                    StopKind::Finalized => P4S_STOPPED_PINNED,
                }
            }
            Err(e @ LoaderError::ThreadsRunning { .. }) => {
                set_error(P4S_REFUSED, &chain(&e));
                P4S_ERROR
            }
            Err(e) => {
                set_last_error(&chain(&e));
                P4S_ERROR
            }
        }
    }
}

export! {
    /// After `p4s_stop` failed with `P4S_BUSY` on this thread: copies the Python identifiers of
    /// the threads that were still inside Python into `out` (room for `cap`) and returns how
    /// many there were.
    ///
    /// Owns: nothing: copies into the caller's `out` (NULL to get the count only).
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_stop_busy_threads(out: *mut u64, cap: i64) -> i64, on_panic = -1, {
        BUSY.with(|b| {
            let b = b.borrow();
            if !out.is_null() {
                for (i, id) in b.iter().take(cap.max(0) as usize).enumerate() {
                    // SAFETY: `out` has room for `cap` values (caller's contract).
                    unsafe { *out.add(i) = *id };
                }
            }
            b.len() as i64
        })
    }
}

export! {
    /// The facts of the running interpreter as one JSON object (the keys of
    /// `p4s_config_json`): what the Lisp side's configuration variables then describe.
    /// Borrowed until the next call on any thread; NULL (code `P4S_NOT_STARTED`) when Python
    /// is not running.
    ///
    /// Owns: a borrowed UTF-8 JSON string, valid until the next call on any thread.
    /// GIL: not needed (reads the facts kept at start).
    /// Fails: NULL with code `P4S_NOT_STARTED` when Python is not running.
    fn p4s_running_json() -> *const c_char, on_panic = std::ptr::null(), {
        static JSON: Mutex<Option<CString>> = Mutex::new(None);
        let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only the facts are read, under the lifecycle lock, so no stop overlaps.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            set_error(P4S_NOT_STARTED, "python is not started");
            return std::ptr::null();
        };
        let Ok(json) = serde_json::to_string(&rt.facts) else {
            set_last_error("the running interpreter's facts could not be written as JSON");
            return std::ptr::null();
        };
        let mut g = JSON.lock().unwrap_or_else(|e| e.into_inner());
        *g = CString::new(json).ok();
        g.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null())
    }
}

/// The pointer to a kept C string, or NULL.
fn ptr_of(slot: &Mutex<Option<CString>>) -> *const c_char {
    slot.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|c| c.as_ptr())
        .unwrap_or(std::ptr::null())
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

export! {
    /// The report of the last `p4s_stop` as JSON: `libpython`, `kind` (`unloaded`, `soft` or
    /// `finalized`), `pinned`, `reason`, `unloaded` and `remaining` (file lists) and
    /// `dropped_modules` (what a soft stop removed from `sys.modules`). Borrowed until the next
    /// stop; NULL before any stop.
    ///
    /// Owns: a borrowed UTF-8 JSON string, valid until the next stop.
    /// GIL: not needed.
    /// Fails: NULL before any stop.
    fn p4s_stop_report() -> *const c_char, on_panic = std::ptr::null(), {
        ptr_of(&REPORT)
    }
}

export! {
    /// 1 if Python is running, else 0.
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_is_started() -> i32, on_panic = 0, {
        i32::from(py4cl2_cffi_loader::is_running())
    }
}

export! {
    /// Counts starts in this process (0 before the first): references and cached lookups from
    /// an earlier start are stale when it changed.
    ///
    /// Owns: nothing.
    /// GIL: not needed.
    /// Fails: never.
    fn p4s_generation() -> u64, on_panic = 0, {
        py4cl2_cffi_loader::generation()
    }
}

export! {
    /// The running Python's `sys.version_info` parts into the three pointers (any may be
    /// NULL). Returns 0, or -2 if Python is not running.
    ///
    /// Owns: nothing: writes the caller's integers (any pointer may be NULL).
    /// GIL: not needed (reads the facts kept at start).
    /// Fails: -2 with code `P4S_NOT_STARTED` when Python is not running.
    fn p4s_version_info(major: *mut i32, minor: *mut i32, micro: *mut i32) -> i32, on_panic = P4S_ERROR, {
        // SAFETY: only the facts are read, under the lifecycle lock, so no stop overlaps.
        let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: (see above) the lifecycle lock is held.
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            set_error(P4S_NOT_STARTED, "python is not started");
            return P4S_ERROR;
        };
        let v = &rt.facts.version;
        for (p, x) in [(major, v.major), (minor, v.minor), (micro, v.patch)] {
            if !p.is_null() {
                // SAFETY: caller's out parameter.
                unsafe { *p = x as i32 };
            }
        }
        P4S_OK
    }
}

export! {
    /// If an earlier stop left libpython mapped, or a soft stop keeps it dormant: its path
    /// (UTF-8, borrowed until the next call); NULL when the process can start any version.
    ///
    /// Owns: a borrowed UTF-8 path, valid until the next call on any thread.
    /// GIL: not needed.
    /// Fails: never: NULL means nothing is pinned.
    fn p4s_pinned_libpython() -> *const c_char, on_panic = std::ptr::null(), {
        static PINNED: Mutex<Option<CString>> = Mutex::new(None);
        let mut g = PINNED.lock().unwrap_or_else(|e| e.into_inner());
        *g = py4cl2_cffi_loader::pinned().and_then(|(p, _)| CString::new(p.to_string_lossy().into_owned()).ok());
        g.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null())
    }
}

export! {
    /// The facts of the interpreter `spec` selects (`len` UTF-8 bytes; NULL or empty: the
    /// configured one) as one JSON object — `version`, `version_string`, `executable`, `prefix`,
    /// `base_prefix`, `libpython`, `ldflags`, `includes`, `site_packages`, `abiflags` — plus
    /// `kind`, `source` and `why` (which rule chose it), `config_file`, `config_file_exists`,
    /// `warnings`, and `environment` (what an environment made by py4cl2-cffi was made for, or
    /// null). Does not start Python and writes nothing but the facts cache. Borrowed until the next call on
    /// any thread; NULL on failure with the reason in `p4s_last_error()`.
    ///
    /// Owns: a borrowed UTF-8 JSON string, valid until the next call on any thread.
    /// GIL: not needed: Python is not started.
    /// Fails: NULL, with the reason in `p4s_last_error`.
    fn p4s_config_json(spec: *const c_char, len: i64) -> *const c_char, on_panic = std::ptr::null(), {
        static JSON: Mutex<Option<CString>> = Mutex::new(None);
        let spec = match spec_of(spec, len) {
            Ok(s) => s,
            Err(m) => {
                set_last_error(&m);
                return std::ptr::null();
            }
        };
        let value = match py4cl2_cffi_loader::config::explain(spec.as_deref()).map(|r| serde_json::to_value(&r)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                set_last_error(&e.to_string());
                return std::ptr::null();
            }
            Err(e) => {
                set_last_error(&chain(&e));
                return std::ptr::null();
            }
        };
        let mut g = JSON.lock().unwrap_or_else(|e| e.into_inner());
        *g = CString::new(value.to_string()).ok();
        g.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null())
    }
}
