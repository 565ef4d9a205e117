//! Starting, stopping and resuming Python in this process: the shared state and its queries.
//!
//! There is at most one interpreter. It is *running* while Lisp uses it (a session), *dormant*
//! after a soft stop (initialised, GIL released, unseen by Lisp until the next start of the
//! same interpreter resumes it), or gone after a hard stop (finalised, and unloaded when
//! nothing pins libpython). Which stop happens, and why, is decided in [`stop`]; the measured
//! facts behind it are in `docs/internals.md` ("Stop: soft or hard").

mod python;
mod start;
mod stop;
mod unload;

pub use start::{start, Started};
pub use stop::{stop, StopKind, StopMode, UnloadReport};

use crate::api::Api;
use crate::ffi_types::{PyObject, PyThreadState};
use py4cl2_cffi_config::Facts;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

/// An initialised interpreter: the C-API table and what is needed to resume or stop it.
pub struct Runtime {
    /// The resolved C-API table; valid while the interpreter is initialised.
    pub api: Api,
    /// The facts of the interpreter that was started.
    pub facts: Facts,
    /// The canonical path of the libpython that was opened.
    pub libpython: PathBuf,
    /// The generation of the fresh start that made this interpreter: objects of any session
    /// since then (a generation ≥ this) belong to it, even after soft stops.
    pub instance: u64,
    session: AtomicU64,
    /// The `_py4cl2_cffi` helper module (a reference kept for the life of the interpreter).
    helpers: *mut PyObject,
    lib: Option<libloading::os::unix::Library>,
    program_name: Vec<libc::wchar_t>,
    main_tstate: AtomicPtr<PyThreadState>,
    start_thread: ThreadId,
    mapped_before: BTreeSet<PathBuf>,
}

// SAFETY: the raw pointers are a module object, touched only with the GIL held, and the saved
// main thread state, an opaque token handed back to CPython only on the thread that saved it
// (see `python::HeldGil`). Everything else is plain data or atomics.
unsafe impl Send for Runtime {}
// SAFETY: shared access reads the table, the facts and atomics; see `Send`.
unsafe impl Sync for Runtime {}

impl Runtime {
    /// The generation of the current (or, when dormant, the last) session of this interpreter.
    /// Lisp objects of an earlier generation are stale for calls.
    pub fn generation(&self) -> u64 {
        self.session.load(Ordering::Acquire)
    }

    /// Whether objects obtained in session `generation` still live in this interpreter (true
    /// for every session since its fresh start: soft stops keep them alive).
    pub fn owns_generation(&self, generation: u64) -> bool {
        generation >= self.instance && generation <= self.generation()
    }

    /// The `_py4cl2_cffi` helper module (borrowed; GIL needed to use it).
    pub fn helpers(&self) -> *mut PyObject {
        self.helpers
    }
}

/// Why this process can only run one libpython, or none, from now on (after a hard stop that
/// left libpython mapped).
#[derive(Debug, Clone)]
struct Pin {
    libpython: PathBuf,
    version: String,
    files: Vec<PathBuf>,
    reason: String,
    /// Even the same interpreter must not start again (see `stop`).
    no_restart: bool,
}

struct State {
    /// The initialised interpreter, running or dormant.
    interpreter: Option<Box<Runtime>>,
    /// Whether it is running (a Lisp session is open).
    running: bool,
    /// When dormant: why the last stop was soft, and the files that made it so.
    dormancy: Option<(String, Vec<PathBuf>)>,
    pin: Option<Pin>,
}

static STATE: Mutex<State> = Mutex::new(State {
    interpreter: None,
    running: false,
    dormancy: None,
    pin: None,
});
/// The running interpreter (null when none runs).
static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
/// The initialised interpreter, running or dormant (null when none).
static INTERPRETER: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The running interpreter, if any.
///
/// # Safety
/// The returned reference is valid until [`stop`] runs; the caller must ensure that no use of
/// it (or of any function pointer in its table) overlaps or follows a stop.
pub unsafe fn current() -> Option<&'static Runtime> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null pointer points into a `Box<Runtime>` kept in STATE; a hard stop
    // clears CURRENT before freeing it, and the caller guarantees no overlap with a stop.
    unsafe { p.as_ref() }
}

/// The initialised interpreter, running or dormant, if any: for code that Python itself runs
/// (a Lisp callback called by a Python thread after a soft stop must be refused cleanly).
///
/// # Safety
/// As for [`current`]; in addition, only call it with the GIL held (Python is executing this
/// thread), which a hard stop never allows while it frees the interpreter.
pub unsafe fn interpreter() -> Option<&'static Runtime> {
    let p = INTERPRETER.load(Ordering::Acquire);
    // SAFETY: as in `current`: the box lives in STATE until a hard stop clears this first.
    unsafe { p.as_ref() }
}

/// The session counter: 0 before any start, incremented by each start or resume.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Whether an interpreter is running.
pub fn is_running() -> bool {
    !CURRENT.load(Ordering::Acquire).is_null()
}

/// If Python is dormant (soft-stopped): why, and the libpython it runs.
pub fn dormant() -> Option<(PathBuf, String)> {
    let st = lock();
    match (&st.interpreter, st.running, &st.dormancy) {
        (Some(rt), false, Some((why, _))) => Some((rt.libpython.clone(), why.clone())),
        _ => None,
    }
}

/// If an earlier stop left libpython mapped, or keeps it dormant: its path and the files that
/// keep it.
pub fn pinned() -> Option<(PathBuf, Vec<PathBuf>)> {
    let st = lock();
    if let Some(p) = &st.pin {
        return Some((p.libpython.clone(), p.files.clone()));
    }
    match (&st.interpreter, st.running, &st.dormancy) {
        (Some(rt), false, Some((_, files))) => Some((rt.libpython.clone(), files.clone())),
        _ => None,
    }
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// `X.Y.Z` of the facts.
fn version_of(facts: &Facts) -> String {
    format!(
        "{}.{}.{}",
        facts.version.major, facts.version.minor, facts.version.patch
    )
}

/// Whether `version` re-initialises safely over a libpython that stayed mapped after
/// finalisation, as measured (3.8–3.13 do; 3.14 and 3.15 die with a memory fault; a newer
/// version gets the newest known behaviour). The branch is `no-reinitialise-over-pin` of
/// [`py4cl2_cffi_config::versions::BRANCHES`].
fn reinitialises_over_pin(version: &py4cl2_cffi_config::Version) -> bool {
    use py4cl2_cffi_config::versions::{has, BRANCHES};
    BRANCHES
        .iter()
        .find(|b| b.name == "no-reinitialise-over-pin")
        .is_some_and(|b| !has(b, version))
}
