//! Starting Python: a fresh initialisation from a chosen libpython, or resuming the dormant
//! interpreter that a soft stop left.
//!
//! A fresh start opens the interpreter's own libpython by absolute path with
//! `RTLD_NOW | RTLD_GLOBAL`, checks its version banner, runs `Py_InitializeEx(0)`, installs the
//! `_py4cl2_cffi` helper module, lets its `post_init` fix the prefix for venvs, opens a session
//! and releases the GIL. A resume only opens a new session. Either is all-or-nothing: a failure after
//! initialisation stops Python again (see `stop::finish_hard`), so the next start retries.

use super::python::{call_helper, call_helper_with, install_helpers, Arg, HeldGil};
use super::{lock, version_of, Pin, Runtime, State};
use super::{CURRENT, GENERATION, INTERPRETER};
use crate::api::Api;
use crate::{maps, Error};
use py4cl2_cffi_config::Facts;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// What a successful [`start`] did.
pub struct Started {
    /// The running interpreter.
    pub runtime: &'static Runtime,
    /// True when a dormant interpreter was resumed instead of initialised anew.
    pub resumed: bool,
}

/// Starts the interpreter described by `facts`, or resumes it if a soft stop left it dormant.
///
/// On success the GIL is released and [`super::current`] returns the runtime. Fails with
/// [`Error::AlreadyStarted`] if that interpreter runs, [`Error::OtherRunning`] if another one
/// does, [`Error::Pinned`] if the process keeps another libpython (dormant or pinned),
/// [`Error::CannotRestart`] when no start is safe any more, or an error naming the file or
/// symbol that was wrong.
pub fn start(facts: &Facts) -> Result<Started, Error> {
    let mut st = lock();
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
    let version = version_of(facts);
    if let Some(rt) = st.interpreter.as_deref() {
        let same = same_interpreter(rt, &libpython, facts);
        if st.running {
            return Err(if same {
                Error::AlreadyStarted
            } else {
                Error::OtherRunning {
                    running: rt.facts.executable.clone(),
                    running_version: version_of(&rt.facts),
                    requested: facts.executable.clone(),
                    requested_version: version,
                }
            });
        }
        if !same {
            let (reason, files) = st.dormancy.clone().unwrap_or_default();
            return Err(Error::Pinned {
                requested: facts.executable.clone(),
                requested_version: version,
                pinned: rt.facts.executable.clone(),
                pinned_version: version_of(&rt.facts),
                files,
                reason: format!("it was stopped softly (kept initialised) because {reason}"),
            });
        }
        return resume(&mut st);
    }
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
    fresh(&mut st, facts, libpython, version)
}

/// Whether `rt` is the interpreter `facts` describe: the same libpython and the same prefix
/// (a venv and its base share a libpython but not their packages).
fn same_interpreter(rt: &Runtime, libpython: &Path, facts: &Facts) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    rt.libpython == libpython && canon(&rt.facts.prefix) == canon(&facts.prefix)
}

/// Opens a new session of the dormant interpreter (state lock held).
fn resume(st: &mut State) -> Result<Started, Error> {
    let Some(rt) = st.interpreter.as_deref() else {
        return Err(Error::NotStarted);
    };
    let api = &rt.api;
    // SAFETY: the interpreter is initialised (dormant) and `main_tstate` was saved on
    // `start_thread` by the start or the soft stop that left it dormant.
    let gil = unsafe { HeldGil::take(api, &rt.main_tstate, rt.start_thread) };
    let begun = begin_session(api, rt.helpers);
    // SAFETY: taken just above on this thread.
    unsafe { gil.give_back(api) };
    if let Err(message) = begun {
        return Err(Error::InitFailed {
            path: rt.libpython.clone(),
            message,
        });
    }
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    rt.session.store(generation, Ordering::Release);
    st.running = true;
    st.dormancy = None;
    let ptr: *const Runtime = rt;
    CURRENT.store(ptr as *mut Runtime, Ordering::Release);
    // SAFETY: the box lives in STATE until a hard stop clears CURRENT first.
    let runtime = unsafe { &*ptr };
    Ok(Started {
        runtime,
        resumed: true,
    })
}

/// `_py4cl2_cffi.begin_session()` (GIL held).
fn begin_session(api: &Api, helpers: *mut crate::ffi_types::PyObject) -> Result<(), String> {
    let r = call_helper(api, helpers, "begin_session")?;
    // SAFETY: a new reference (None).
    unsafe { (api.Py_DecRef)(r) };
    Ok(())
}

/// A fresh initialisation (state lock held, no interpreter).
fn fresh(
    st: &mut State,
    facts: &Facts,
    libpython: PathBuf,
    version: String,
) -> Result<Started, Error> {
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
    let api = unsafe { Api::resolve(&lib) }?;
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
    // SAFETY: the interpreter is not initialised (no interpreter in STATE, checked under the
    // lock); `program_name` is NUL-terminated and is kept alive in the runtime until after
    // finalisation (CPython may keep the pointer).
    unsafe { (api.Py_SetProgramName)(program_name.as_ptr()) };
    // SAFETY: as above; `0` keeps Python's signal handlers out of the host process.
    unsafe { (api.Py_InitializeEx)(0) };
    // SAFETY: plain query.
    if unsafe { (api.Py_IsInitialized)() } == 0 {
        return Err(Error::InitFailed {
            path: libpython,
            message: "Py_IsInitialized() is 0 after Py_InitializeEx".into(),
        });
    }
    // From here the GIL is held by this thread, with the main thread state.
    // The helper module first (its body imports only the stdlib), then the paths and import
    // hook it sets up, then the session, which records them.
    let helpers = install_helpers(&api)
        .and_then(|m| post_init(&api, m, facts, st.pin.as_ref()).map(|()| m))
        .and_then(|m| begin_session(&api, m).map(|()| m));
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    let mut runtime = Box::new(Runtime {
        api,
        facts: facts.clone(),
        libpython: libpython.clone(),
        instance: generation,
        session: AtomicU64::new(generation),
        helpers: *helpers.as_ref().unwrap_or(&std::ptr::null_mut()),
        lib: Some(lib),
        program_name,
        main_tstate: AtomicPtr::new(std::ptr::null_mut()),
        start_thread: std::thread::current().id(),
        mapped_before,
    });
    if let Err(message) = helpers {
        // Undo the start: finalise and unload as a hard stop does, so the next start retries.
        // SAFETY: this thread holds the GIL from initialisation; no other thread has seen this
        // interpreter.
        unsafe { super::stop::finish_hard(st, &mut runtime, None) };
        return Err(Error::InitFailed {
            path: libpython,
            message,
        });
    }
    // SAFETY: we hold the GIL with the main thread state; this releases it and returns that
    // state, which the loader restores when it needs the GIL on this thread.
    let main_tstate = unsafe { (runtime.api.PyEval_SaveThread)() };
    runtime.main_tstate.store(main_tstate, Ordering::Release);
    let ptr: *const Runtime = &*runtime;
    st.interpreter = Some(runtime);
    st.running = true;
    st.dormancy = None;
    INTERPRETER.store(ptr as *mut Runtime, Ordering::Release);
    CURRENT.store(ptr as *mut Runtime, Ordering::Release);
    // SAFETY: the box lives in STATE until a hard stop clears CURRENT and INTERPRETER first.
    let runtime = unsafe { &*ptr };
    Ok(Started {
        runtime,
        resumed: false,
    })
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

/// `_py4cl2_cffi.post_init(prefix, executable, site_dirs, pinned)`, once after a fresh
/// initialisation (GIL held, the helper module installed): the paths a venv or a pinned
/// libpython needs, and the import hook that refuses pinned extension modules.
fn post_init(
    api: &Api,
    helpers: *mut crate::ffi_types::PyObject,
    facts: &Facts,
    pin: Option<&Pin>,
) -> Result<(), String> {
    let site: Vec<String> = facts
        .site_packages
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let pinned: Vec<String> = pin
        .map(|p| {
            p.files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "so"))
                .map(|f| f.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let r = call_helper_with(
        api,
        helpers,
        "post_init",
        &[
            Arg::Str(&facts.prefix.to_string_lossy()),
            Arg::Str(&facts.executable.to_string_lossy()),
            Arg::StrList(&site),
            Arg::StrList(&pinned),
        ],
    )?;
    // SAFETY: GIL held; the result (None) is ours.
    unsafe { (api.Py_DecRef)(r) };
    Ok(())
}
