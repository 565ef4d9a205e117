//! Starting Python from a chosen libpython, stopping it, and unloading what it loaded.
//!
//! Policy (measured facts in `shared/notes/restart.md`):
//! - start: open the interpreter's own libpython by absolute path with
//!   `RTLD_NOW | RTLD_GLOBAL`, check its version banner, `Py_InitializeEx(0)`, release the GIL;
//! - stop: finalize, close every shared object that appeared since start (extension modules,
//!   their libraries, libpython), then read the process's mappings to see what really went;
//! - if libpython stayed mapped (numpy's `STB_GNU_UNIQUE` symbols make glibc pin it) the
//!   process is *pinned*: the same libpython may start again, with an import hook refusing the
//!   pinned extension modules; any other libpython is refused with [`Error::Pinned`].

use crate::api::Api;
use crate::ffi_types::{PyObject, PyThreadState};
use crate::{maps, tsd, Error};
use py4cl2_cffi_config::Facts;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

/// A running interpreter: the C-API table and what is needed to stop it.
pub struct Runtime {
    /// The resolved C-API table; valid until [`stop`].
    pub api: Api,
    /// The facts of the interpreter that was started.
    pub facts: Facts,
    /// The canonical path of the libpython that was opened.
    pub libpython: PathBuf,
    /// Counts starts in this process; changes on every start (caches key on it).
    pub generation: u64,
    lib: Option<libloading::os::unix::Library>,
    program_name: Vec<libc::wchar_t>,
    main_tstate: *mut PyThreadState,
    start_thread: ThreadId,
    mapped_before: BTreeSet<PathBuf>,
}

// SAFETY: the only non-Send field is the saved main thread state, an opaque token that is
// handed back to CPython only by `stop`, under the state lock, on the thread that saved it.
unsafe impl Send for Runtime {}
// SAFETY: shared access only reads the table and the facts; the token is not touched.
unsafe impl Sync for Runtime {}

/// What a stop left behind, read from the process's mappings afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadReport {
    /// The libpython that was stopped.
    pub libpython: PathBuf,
    /// Shared objects that appeared after start and are gone now.
    pub unloaded: Vec<PathBuf>,
    /// Files that appeared after start and are still mapped.
    pub remaining: Vec<PathBuf>,
    /// Whether libpython itself is still mapped (the process is pinned to it).
    pub pinned: bool,
    /// Why the process is pinned, when it is.
    pub pin_reason: Option<String>,
}

/// Why this process can only run one libpython from now on.
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
    running: Option<Box<Runtime>>,
    pin: Option<Pin>,
}

static STATE: Mutex<State> = Mutex::new(State {
    running: None,
    pin: None,
});
static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The running interpreter, if any.
///
/// # Safety
/// The returned reference is valid until [`stop`] runs; the caller must ensure that no use of
/// it (or of any function pointer in its table) overlaps or follows a stop.
pub unsafe fn current() -> Option<&'static Runtime> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null pointer was leaked from a live `Box<Runtime>` by `start` and is only
    // freed by `stop` after being swapped out; the caller guarantees no overlap with stop.
    unsafe { p.as_ref() }
}

/// The start counter: 0 before any start, incremented by each successful start.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Whether an interpreter is running.
pub fn is_running() -> bool {
    !CURRENT.load(Ordering::Acquire).is_null()
}

/// If an earlier stop left libpython mapped: its path and the files that pinned it.
pub fn pinned() -> Option<(PathBuf, Vec<PathBuf>)> {
    let st = lock();
    st.pin
        .as_ref()
        .map(|p| (p.libpython.clone(), p.files.clone()))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the interpreter described by `facts`.
///
/// On success the GIL is released and [`current`] returns the runtime. Fails with
/// [`Error::AlreadyStarted`] if one is running, [`Error::Pinned`] if an earlier stop left
/// another libpython mapped, or an error naming the file or symbol that was wrong.
pub fn start(facts: &Facts) -> Result<&'static Runtime, Error> {
    let mut st = lock();
    if st.running.is_some() {
        return Err(Error::AlreadyStarted);
    }
    let libpython = facts
        .libpython
        .clone()
        .ok_or_else(|| Error::NoSharedLibpython {
            executable: facts.executable.clone(),
        })?;
    let libpython = libpython
        .canonicalize()
        .map_err(|source| Error::LibpythonMissing {
            path: libpython.clone(),
            source,
        })?;
    let version = format!(
        "{}.{}.{}",
        facts.version.major, facts.version.minor, facts.version.patch
    );
    if let Some(pin) = &st.pin {
        if pin.no_restart {
            return Err(Error::CannotRestart {
                version: pin.version.clone(),
                reason: pin.reason.clone(),
            });
        }
        if pin.libpython != libpython {
            return Err(Error::Pinned {
                requested: libpython,
                requested_version: version,
                pinned: pin.libpython.clone(),
                pinned_version: pin.version.clone(),
                files: pin.files.clone(),
                reason: pin.reason.clone(),
            });
        }
    }
    let mapped_before = maps::mapped_files();
    // SAFETY: opening a shared library runs its initialisers; libpython's only set up static
    // data. RTLD_GLOBAL is required so extension modules resolve C-API symbols from it.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(&libpython),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
        )
    }
    .map_err(|source| Error::Open {
        path: libpython.clone(),
        source,
    })?;
    // SAFETY: the file is the libpython of a CPython the config layer queried (version ≥ 3.8);
    // its symbols have the C types declared in the table.
    let api = match unsafe { Api::resolve(&lib) } {
        Ok(api) => api,
        Err(e) => {
            drop(lib);
            return Err(e);
        }
    };
    // SAFETY: `Py_GetVersion` may be called before initialisation; it returns a static string.
    let banner = unsafe { CStr::from_ptr((api.Py_GetVersion)()) }
        .to_string_lossy()
        .into_owned();
    if !banner.starts_with(&version) || !version_follows(&banner, &version) {
        return Err(Error::VersionMismatch {
            path: libpython,
            expected: version,
            found: banner,
        });
    }

    if st.pin.is_none() {
        // A freshly loaded libpython: let us own pymalloc's arenas so stop can free them.
        // SAFETY: before initialisation; the allocator is a static that lives forever.
        unsafe {
            (api.PyObject_SetArenaAllocator)(std::ptr::addr_of_mut!(crate::arena::ALLOCATOR))
        };
    }
    let program_name = to_wide(&facts.executable);
    // SAFETY: the interpreter is not initialised; `program_name` is NUL-terminated and is kept
    // alive in the runtime until after finalisation (CPython may keep the pointer).
    unsafe { (api.Py_SetProgramName)(program_name.as_ptr()) };
    // SAFETY: not initialised yet (checked by `running.is_none()` under the state lock and by
    // stop's finalisation); `0` keeps Python's signal handlers out of the host process.
    unsafe { (api.Py_InitializeEx)(0) };
    // SAFETY: plain query.
    if unsafe { (api.Py_IsInitialized)() } == 0 {
        return Err(Error::InitFailed {
            path: libpython,
            message: "Py_IsInitialized() is 0 after Py_InitializeEx".into(),
        });
    }

    // From here the GIL is held by this thread.
    let setup = post_init(&api, facts, st.pin.as_ref());
    if let Err(message) = setup {
        // SAFETY: we hold the GIL from initialisation; finalising undoes the start.
        unsafe { (api.Py_FinalizeEx)() };
        return Err(Error::InitFailed {
            path: libpython,
            message,
        });
    }
    // SAFETY: we hold the GIL with the main thread state; this releases it and returns that
    // state, which `stop` restores when called from this thread.
    let main_tstate = unsafe { (api.PyEval_SaveThread)() };

    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    let runtime = Box::new(Runtime {
        api,
        facts: facts.clone(),
        libpython,
        generation,
        lib: Some(lib),
        program_name,
        main_tstate,
        start_thread: std::thread::current().id(),
        mapped_before,
    });
    let ptr: *const Runtime = &*runtime;
    st.running = Some(runtime);
    CURRENT.store(ptr as *mut Runtime, Ordering::Release);
    // SAFETY: the box lives in STATE until `stop` swaps CURRENT to null first.
    Ok(unsafe { &*ptr })
}

/// Whether the banner's version is exactly `version` (not `3.1` matching `3.12`).
fn version_follows(banner: &str, version: &str) -> bool {
    matches!(
        banner[version.len()..].chars().next(),
        None | Some(' ') | Some('+') | Some('a') | Some('b') | Some('r')
    )
}

fn to_wide(path: &Path) -> Vec<libc::wchar_t> {
    path.to_string_lossy()
        .chars()
        .map(|c| c as libc::wchar_t)
        .chain(std::iter::once(0))
        .collect()
}

/// Python code run once after initialisation, with the GIL held. `PY4CL2_PREFIX`,
/// `PY4CL2_SITE` and `PY4CL2_PINNED` are bound in its globals.
const POST_INIT: &str = r#"
import sys, os
if os.path.realpath(sys.prefix) != os.path.realpath(PY4CL2_PREFIX):
    # Python did not arrive at the requested prefix from the program name. This happens when a
    # pinned libpython is initialised again (it keeps the paths it computed the first time) or
    # for unusual layouts: put the venv/conda prefix and its site-packages in place by hand.
    import site
    _old = [p for p in sys.path if p.rstrip('/').endswith(('site-packages', 'dist-packages'))]
    sys.path[:] = [p for p in sys.path if p not in _old]
    sys.prefix = sys.exec_prefix = PY4CL2_PREFIX
    sys.executable = PY4CL2_EXECUTABLE
    for _p in PY4CL2_SITE:
        if os.path.isdir(_p):
            site.addsitedir(_p)
if PY4CL2_PINNED:
    class Py4cl2PinnedExtensionFinder:
        """Refuses to import extension modules that an earlier start left mapped."""
        pinned = {os.path.realpath(p) for p in PY4CL2_PINNED}
        names = {os.path.basename(p).split('.')[0] for p in PY4CL2_PINNED}
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.rpartition('.')[2] not in cls.names:
                return None
            import importlib.machinery
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
            if spec is not None and spec.origin and os.path.realpath(spec.origin) in cls.pinned:
                raise ImportError(
                    "py4cl2-cffi: cannot import %s again: its extension module %s stayed loaded "
                    "when Python was stopped earlier in this process and cannot be initialised "
                    "a second time; start a fresh process to import it" % (name, spec.origin),
                    name=name, path=spec.origin)
            return None
    sys.meta_path.insert(0, Py4cl2PinnedExtensionFinder)
"#;

fn post_init(api: &Api, facts: &Facts, pin: Option<&Pin>) -> Result<(), String> {
    let mut globals = Globals::new(api)?;
    globals.set_str("PY4CL2_PREFIX", &facts.prefix.to_string_lossy())?;
    globals.set_str("PY4CL2_EXECUTABLE", &facts.executable.to_string_lossy())?;
    let site: Vec<String> = facts
        .site_packages
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    globals.set_str_list("PY4CL2_SITE", &site)?;
    let pinned: Vec<String> = pin
        .map(|p| {
            p.files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "so"))
                .map(|f| f.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    globals.set_str_list("PY4CL2_PINNED", &pinned)?;
    globals.exec(POST_INIT)
}

/// A fresh globals dict for running loader code (GIL held by the caller throughout).
struct Globals<'a> {
    api: &'a Api,
    dict: *mut PyObject,
}

impl<'a> Globals<'a> {
    fn new(api: &'a Api) -> Result<Self, String> {
        // SAFETY: the GIL is held (callers run between init and release); new reference.
        let dict = unsafe { (api.PyDict_New)() };
        if dict.is_null() {
            return Err(fetch_error(api));
        }
        // SAFETY: `dict` is a live dict; builtins is a borrowed reference we do not keep.
        let ok = unsafe {
            (api.PyDict_SetItemString)(dict, c"__builtins__".as_ptr(), (api.PyEval_GetBuiltins)())
        };
        let g = Globals { api, dict };
        if ok != 0 {
            return Err(fetch_error(api));
        }
        Ok(g)
    }

    fn set(&mut self, name: &str, value: *mut PyObject) -> Result<(), String> {
        if value.is_null() {
            return Err(fetch_error(self.api));
        }
        let name = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: GIL held; `value` is a new reference we own and release after storing.
        let rc = unsafe { (self.api.PyDict_SetItemString)(self.dict, name.as_ptr(), value) };
        // SAFETY: we own `value`; the dict holds its own reference now.
        unsafe { (self.api.Py_DecRef)(value) };
        if rc != 0 {
            return Err(fetch_error(self.api));
        }
        Ok(())
    }

    fn new_str(&self, s: &str) -> *mut PyObject {
        // SAFETY: GIL held; valid UTF-8 pointer and length.
        unsafe { (self.api.PyUnicode_FromStringAndSize)(s.as_ptr().cast(), s.len() as isize) }
    }

    fn set_str(&mut self, name: &str, s: &str) -> Result<(), String> {
        let v = self.new_str(s);
        self.set(name, v)
    }

    fn set_str_list(&mut self, name: &str, items: &[String]) -> Result<(), String> {
        // SAFETY: GIL held; new reference.
        let list = unsafe { (self.api.PyList_New)(0) };
        if list.is_null() {
            return Err(fetch_error(self.api));
        }
        for item in items {
            let v = self.new_str(item);
            let rc = if v.is_null() {
                -1
            } else {
                // SAFETY: GIL held; `list` is a live list; Append does not steal `v`.
                unsafe { (self.api.PyList_Append)(list, v) }
            };
            // SAFETY: `v` is ours (or NULL, which Py_DecRef accepts).
            unsafe { (self.api.Py_DecRef)(v) };
            if rc != 0 {
                // SAFETY: release the partial list.
                unsafe { (self.api.Py_DecRef)(list) };
                return Err(fetch_error(self.api));
            }
        }
        self.set(name, list)
    }

    /// Runs `code` with `mode` (`Py_file_input` or `Py_eval_input`) in this dict: a new
    /// reference to the result, or the Python error as text.
    fn run(&self, code: &str, mode: std::os::raw::c_int) -> Result<*mut PyObject, String> {
        let code = CString::new(code).map_err(|e| e.to_string())?;
        // SAFETY: GIL held; `dict` serves as globals and locals.
        let r = unsafe {
            (self.api.PyRun_StringFlags)(
                code.as_ptr(),
                mode,
                self.dict,
                self.dict,
                std::ptr::null_mut(),
            )
        };
        if r.is_null() {
            Err(fetch_error(self.api))
        } else {
            Ok(r)
        }
    }

    fn exec(&self, code: &str) -> Result<(), String> {
        let r = self.run(code, crate::ffi_types::Py_file_input)?;
        // SAFETY: new reference returned by `run`.
        unsafe { (self.api.Py_DecRef)(r) };
        Ok(())
    }

    /// Evaluates an expression and returns its value's `str()`.
    fn eval_str(&self, expr: &str) -> Result<String, String> {
        let r = self.run(expr, crate::ffi_types::Py_eval_input)?;
        let s = object_str(self.api, r);
        // SAFETY: new reference returned by `run`.
        unsafe { (self.api.Py_DecRef)(r) };
        s
    }
}

impl Drop for Globals<'_> {
    fn drop(&mut self) {
        // SAFETY: GIL held; we own the dict.
        unsafe { (self.api.Py_DecRef)(self.dict) };
    }
}

/// `str(o)` as a Rust string (GIL held).
fn object_str(api: &Api, o: *mut PyObject) -> Result<String, String> {
    // SAFETY: GIL held; `o` live.
    let s = unsafe { (api.PyObject_Str)(o) };
    if s.is_null() {
        return Err(fetch_error(api));
    }
    let mut len = 0isize;
    // SAFETY: `s` is a str; the UTF-8 buffer lives as long as `s`.
    let p = unsafe { (api.PyUnicode_AsUTF8AndSize)(s, &mut len) };
    let out = if p.is_null() {
        Err(fetch_error(api))
    } else {
        // SAFETY: `p` points to `len` bytes of UTF-8 owned by `s`.
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) };
        Ok(String::from_utf8_lossy(bytes).into_owned())
    };
    // SAFETY: new reference.
    unsafe { (api.Py_DecRef)(s) };
    out
}

/// Takes the pending Python exception and formats it as `Type: message` (GIL held).
fn fetch_error(api: &Api) -> String {
    let (mut t, mut v, mut tb) = (
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    // SAFETY: GIL held; PyErr_Fetch hands us new references (possibly NULL).
    unsafe { (api.PyErr_Fetch)(&mut t, &mut v, &mut tb) };
    let text = if v.is_null() {
        "unknown Python error".to_string()
    } else {
        object_str(api, v).unwrap_or_else(|e| e)
    };
    let tname = if t.is_null() {
        String::new()
    } else {
        // SAFETY: GIL held; `t` is a type object.
        let n = unsafe { (api.PyObject_GetAttrString)(t, c"__name__".as_ptr()) };
        let s = if n.is_null() {
            // SAFETY: clear the attribute error.
            unsafe { (api.PyErr_Clear)() };
            String::new()
        } else {
            object_str(api, n).unwrap_or_default()
        };
        // SAFETY: `n` new reference or NULL.
        unsafe { (api.Py_DecRef)(n) };
        s
    };
    // SAFETY: release the fetched references (NULL allowed).
    unsafe {
        (api.Py_DecRef)(t);
        (api.Py_DecRef)(v);
        (api.Py_DecRef)(tb);
    }
    if tname.is_empty() {
        text
    } else {
        format!("{tname}: {text}")
    }
}

/// Stops the running interpreter and unloads what it loaded.
///
/// Finalizes Python, closes every shared object that appeared since start (extension modules,
/// their libraries, libpython), and reports what the process mappings still hold. If libpython
/// stayed, later starts of another libpython are refused. Fails with [`Error::NotStarted`] when
/// nothing runs. The caller must ensure no other thread is inside Python.
pub fn stop() -> Result<UnloadReport, Error> {
    let mut st = lock();
    let Some(mut rt) = st.running.take() else {
        return Err(Error::NotStarted);
    };
    CURRENT.store(std::ptr::null_mut(), Ordering::Release);
    let api = rt.api;

    // Take the GIL: the saved main thread state on the starting thread, else this thread's.
    // SAFETY: plain query, valid with or without the GIL.
    let held = unsafe { (api.PyGILState_Check)() } != 0;
    if !held {
        if std::thread::current().id() == rt.start_thread {
            // SAFETY: `main_tstate` was returned by PyEval_SaveThread on this thread.
            unsafe { (api.PyEval_RestoreThread)(rt.main_tstate) };
        } else {
            // SAFETY: the interpreter is initialised; gives this thread a state and the GIL.
            unsafe { (api.PyGILState_Ensure)() };
        }
    }
    let daemon_threads = live_foreign_threads(&api);
    let extension_files = extension_module_files(&api);
    // SAFETY: we hold the GIL and no other thread is inside Python (caller's contract).
    unsafe { (api.Py_FinalizeEx)() };

    let mut report = UnloadReport {
        libpython: rt.libpython.clone(),
        unloaded: Vec::new(),
        remaining: Vec::new(),
        pinned: false,
        pin_reason: None,
    };
    let appeared: Vec<PathBuf> = maps::new_since(&rt.mapped_before);
    if daemon_threads > 0 {
        // Their stacks are parked inside libpython: unmapping it would crash them.
        let why = Keep::DaemonThreads(daemon_threads);
        return Ok(keep_everything(
            &mut st,
            &mut rt,
            report,
            Vec::new(),
            &appeared,
            why,
        ));
    }
    let roots: Vec<PathBuf> = [&rt.facts.prefix, &rt.facts.base_prefix]
        .into_iter()
        .cloned()
        .chain(rt.facts.site_packages.iter().cloned())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut targets: Vec<PathBuf> = extension_files;
    for p in &appeared {
        if maps::is_shared_object(p) && under_any(p, &roots) && !targets.contains(p) {
            targets.push(p.clone());
        }
    }
    // An extension module that glibc will never unload keeps libpython mapped. What to do with
    // the other modules then depends on the version, as measured:
    // - CPython < 3.11 keeps static type state (e.g. `object`'s subclass list) that points into
    //   extension modules; unloading them under a surviving libpython crashes the next
    //   finalisation. So nothing is unloaded.
    // - CPython 3.11+ re-initialises cleanly over unloaded modules, but re-running the init of
    //   a single-phase module that stayed loaded (e.g. `_decimal` in 3.12) corrupts memory. So
    //   everything but the pinning modules is unloaded, and they are refused on re-import.
    let predicted: Vec<PathBuf> = targets
        .iter()
        .filter(|t| crate::elf::pinning(t).is_some_and(|p| p.pins()))
        .cloned()
        .collect();
    let will_pin = !predicted.is_empty() || st.pin.is_some();
    let v = &rt.facts.version;
    if will_pin && (v.major, v.minor) < (3, 11) {
        return Ok(keep_everything(
            &mut st,
            &mut rt,
            report,
            predicted,
            &appeared,
            Keep::Pinning,
        ));
    }
    // Thread-specific-data destructors inside what we unmap would crash threads at exit; a
    // libpython (and modules) that will stay keep their keys.
    let mut ranges = Vec::new();
    if !will_pin {
        ranges.extend(maps::ranges_of(&rt.libpython));
    }
    for t in targets.iter().filter(|t| !predicted.contains(t)) {
        ranges.extend(maps::ranges_of(t));
    }
    if tsd::delete_keys_with_destructors_in(&ranges).is_none() {
        // Cannot check this C library's keys: keep everything mapped rather than risk it.
        return Ok(keep_everything(
            &mut st,
            &mut rt,
            report,
            Vec::new(),
            &appeared,
            Keep::UncheckableKeys,
        ));
    }
    if let Some(lib) = rt.lib.take() {
        // A failed dlclose only means it stays mapped, which the sweep below reports.
        let _ = lib.close();
    }
    sweep_unload(&targets, &rt.libpython);
    let now = maps::mapped_files();
    for p in appeared {
        if now.contains(&p) {
            report.remaining.push(p);
        } else if maps::is_shared_object(&p) {
            report.unloaded.push(p);
        }
    }
    if now.contains(&rt.libpython) {
        // What pins it: objects Python loaded that are still mapped, including those an
        // earlier stop of this same libpython already left behind.
        let mut files: Vec<PathBuf> = report
            .remaining
            .iter()
            .filter(|p| **p != rt.libpython && targets.contains(p))
            .cloned()
            .collect();
        if let Some(old) = st.pin.take() {
            for f in old.files {
                if now.contains(&f) && !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        let reason = pin_reason(&files);
        report.pinned = true;
        report.pin_reason = Some(reason.clone());
        // Unpredicted: other extension modules were unloaded under a surviving libpython.
        // CPython 3.11+ re-initialises cleanly over that; older versions keep type state that
        // points into the unloaded modules, so they must not start again in this process.
        let v = &rt.facts.version;
        let no_restart = (v.major, v.minor) < (3, 11);
        st.pin = Some(Pin {
            libpython: rt.libpython.clone(),
            version: version_of(&rt.facts),
            files,
            reason,
            no_restart,
        });
        crate::arena::forget_all();
    } else {
        st.pin = None;
        // SAFETY: libpython is verified unmapped: nothing refers to its arenas.
        unsafe { crate::arena::release_all() };
    }
    // Keep the program name alive until here: CPython may read it during finalisation.
    drop(std::mem::take(&mut rt.program_name));
    Ok(report)
}

/// Why a stop keeps everything mapped.
enum Keep {
    /// An extension module glibc will never unload (predicted, or pinned by an earlier stop).
    Pinning,
    /// This C library's thread-specific-data keys cannot be checked.
    UncheckableKeys,
    /// Python daemon threads are parked inside libpython.
    DaemonThreads(usize),
}

/// Ends a stop that keeps libpython and everything Python loaded mapped, for the reason `why`.
fn keep_everything(
    st: &mut State,
    rt: &mut Runtime,
    mut report: UnloadReport,
    pinned_by: Vec<PathBuf>,
    appeared: &[PathBuf],
    why: Keep,
) -> UnloadReport {
    // Our handle stays open: nothing of this interpreter is unmapped.
    std::mem::forget(rt.lib.take());
    crate::arena::forget_all();
    let mut files = pinned_by;
    if let Some(old) = st.pin.take() {
        for f in old.files {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    let reason = match why {
        Keep::Pinning => format!(
            "{} cannot be unloaded (it uses STB_GNU_UNIQUE symbols or the C++ runtime, which glibc never unloads), so libpython and the modules bound to it stay loaded",
            files
                .iter()
                .filter_map(|f| f.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Keep::UncheckableKeys => "this C library's thread-specific-data keys cannot be inspected, \
             so unloading libpython could leave destructors pointing at unmapped code"
            .to_string(),
        Keep::DaemonThreads(n) => format!(
            "{n} Python daemon thread(s) were still running at stop and are parked inside libpython"
        ),
    };
    report.pinned = true;
    report.pin_reason = Some(reason.clone());
    report.remaining = appeared.to_vec();
    st.pin = Some(Pin {
        libpython: rt.libpython.clone(),
        version: version_of(&rt.facts),
        files,
        reason,
        no_restart: false,
    });
    drop(std::mem::take(&mut rt.program_name));
    report
}

fn version_of(facts: &Facts) -> String {
    format!(
        "{}.{}.{}",
        facts.version.major, facts.version.minor, facts.version.patch
    )
}

fn pin_reason(files: &[PathBuf]) -> String {
    if files.is_empty() {
        "libpython stayed mapped after every library Python loaded was closed (a library \
         loaded from Python code, e.g. through ctypes, may hold it)"
            .to_string()
    } else {
        "extension modules it loaded could not be unloaded (glibc keeps objects that define or \
         bind to STB_GNU_UNIQUE symbols, as C++ extensions such as numpy's do, for the life of \
         the process) and they are bound to libpython"
            .to_string()
    }
}

/// Counts live Python threads other than the current one (GIL held, before finalisation).
fn live_foreign_threads(api: &Api) -> usize {
    let Ok(g) = Globals::new(api) else {
        return 0;
    };
    let expr = "(lambda s: 0 if 'threading' not in s.modules else len([t for t in \
                s.modules['threading'].enumerate() if t.daemon and t.is_alive() and t is not \
                s.modules['threading'].current_thread()]))(__import__('sys'))";
    g.eval_str(expr)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Closes each of `targets` until the dynamic linker no longer has it, over several passes
/// (closing one may release another), libpython last.
///
/// Only objects that Python itself loaded are forced closed: its extension modules and files
/// under its prefixes. A library some other part of the host process opened meanwhile is left
/// alone (it shows up as remaining in the report, never unmapped under its owner's feet).
fn sweep_unload(targets: &[PathBuf], libpython: &Path) {
    let mut candidates: Vec<&Path> = targets
        .iter()
        .filter(|p| p.as_path() != libpython)
        .map(|p| p.as_path())
        .collect();
    candidates.push(libpython);
    for _pass in 0..8 {
        let mut progress = false;
        for path in &candidates {
            progress |= close_fully(path);
        }
        if !progress {
            break;
        }
    }
}

/// The shared objects Python loaded (GIL held, before finalisation): the files of extension
/// modules in `sys.modules`.
fn extension_module_files(api: &Api) -> Vec<PathBuf> {
    let Ok(g) = Globals::new(api) else {
        return Vec::new();
    };
    let expr = "'\\n'.join(sorted({__import__('os').path.realpath(f) for f in \
                (getattr(m, '__file__', None) for m in list(__import__('sys').modules.values())) \
                if isinstance(f, str) and (f.endswith('.so') or '.so.' in f or f.endswith('.dylib'))}))";
    g.eval_str(expr)
        .map(|s| s.lines().map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// Whether `path` lies under one of `roots`.
fn under_any(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

/// Drops every reference the dynamic linker holds on `path`; true if any was dropped.
fn close_fully(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().to_string_lossy().as_bytes()) else {
        return false;
    };
    let mut dropped = false;
    for _ in 0..64 {
        // SAFETY: RTLD_NOLOAD never loads anything: it returns a new reference to an object
        // that is already loaded, or NULL.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
        if h.is_null() {
            break;
        }
        // SAFETY: `h` is a valid handle; the first close drops our NOLOAD reference, the second
        // the one Python's importer (or a dependency load) took and never released. The
        // interpreter is finalized, so no code of this object runs any more.
        let rc = unsafe {
            libc::dlclose(h);
            libc::dlclose(h)
        };
        if rc != 0 {
            break;
        }
        dropped = true;
    }
    dropped
}
