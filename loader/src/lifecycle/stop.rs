//! Stopping Python: a soft stop that keeps the interpreter dormant, or a hard stop that
//! finalises it and unloads what it loaded.
//!
//! The policy, decided before anything irreversible happens:
//! - **Soft** (the default whenever unloading is impossible or cannot be checked): when an
//!   extension module will never be unloaded (numpy's `STB_GNU_UNIQUE` symbols pin libpython),
//!   when Python threads are still running, when an earlier stop already left libpython
//!   mapped, or when the thread list, the module list or this C library's thread-specific-data
//!   keys cannot be read. Python is not finalised: the session ends (`_py4cl2_cffi.end_session`
//!   resets `__main__`, `sys.path` and user modules) and the interpreter stays initialised; the
//!   next start of the same interpreter resumes it, with numpy still working. Re-initialising
//!   a libpython that cannot be unmapped is unsafe (a memory fault on 3.14 and 3.15; numpy
//!   cannot be imported again on any version), so it is avoided.
//! - **Hard** otherwise, or when asked for with [`StopMode::Finalize`]: `Py_FinalizeEx`, then
//!   every shared object that appeared since start is closed and the process mappings are
//!   read to see what really went. If libpython stayed mapped, the process is *pinned*.
//!
//! The caller (the shim) guarantees that no other thread is inside a call into Python.

use super::python::{call_helper_strings, HeldGil};
use super::unload::{
    keep_everything, pinning_reason, sweep_unload, under_any, Keep, UNCHECKABLE_KEYS,
};
use super::{lock, reinitialises_over_pin, version_of, Pin, Runtime, State};
use super::{CURRENT, INTERPRETER};
use crate::{maps, tsd, Error};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// How [`stop`] may end the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopMode {
    /// Unload when it is possible and safe; otherwise a soft stop.
    #[default]
    Auto,
    /// Always finalise (run atexit handlers, free the interpreter), even when libpython cannot
    /// be unmapped afterwards. Refused while Python threads run (finalising would wait for
    /// them). After a finalisation that leaves libpython mapped, only versions measured to
    /// re-initialise safely (3.8–3.13) may start again in this process, without the pinned
    /// extension modules; 3.14 and newer cannot start again at all.
    Finalize,
}

/// What kind of stop happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Finalised, and libpython with everything it loaded is gone: any version may start.
    Unloaded,
    /// Soft: not finalised; the interpreter is dormant and the same one resumes on start.
    Soft,
    /// Finalised, but libpython stayed mapped (the process is pinned).
    Finalized,
}

/// What a stop did and left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadReport {
    /// The libpython that was stopped.
    pub libpython: PathBuf,
    /// The kind of stop.
    pub kind: StopKind,
    /// Shared objects that appeared after start and are gone now.
    pub unloaded: Vec<PathBuf>,
    /// Files that appeared after start and are still mapped.
    pub remaining: Vec<PathBuf>,
    /// Whether libpython is still mapped (only the same interpreter may start again).
    pub pinned: bool,
    /// Why libpython stays, when it does (for a soft stop: why the stop was soft).
    pub pin_reason: Option<String>,
    /// Modules of user code that a soft stop dropped from `sys.modules`.
    pub dropped_modules: Vec<String>,
}

/// Stops the running interpreter (see the module's policy).
///
/// Fails with [`Error::NotStarted`] when nothing runs, and with [`Error::ThreadsRunning`]
/// when [`StopMode::Finalize`] meets Python threads (nothing is changed then).
pub fn stop(mode: StopMode) -> Result<UnloadReport, Error> {
    let mut st = lock();
    if !st.running {
        return Err(Error::NotStarted);
    }
    let Some(rt) = st.interpreter.as_deref() else {
        return Err(Error::NotStarted);
    };
    let api = &rt.api;
    // SAFETY: the interpreter is initialised; `main_tstate` was saved on `start_thread`.
    let gil = unsafe { HeldGil::take(api, &rt.main_tstate, rt.start_thread) };
    let threads = call_helper_strings(api, rt.helpers, "live_threads");
    let extensions: Result<Vec<PathBuf>, String> =
        call_helper_strings(api, rt.helpers, "extension_files")
            .map(|v| v.into_iter().map(PathBuf::from).collect());
    let targets = unload_targets(rt, extensions.as_deref().unwrap_or(&[]));
    let predicted: Vec<PathBuf> = targets
        .iter()
        .filter(|t| crate::elf::pinning(t).is_none_or(|p| p.pins()))
        .cloned()
        .collect();

    if mode == StopMode::Finalize {
        let busy = match &threads {
            Ok(t) if t.is_empty() => None,
            Ok(t) => Some(t.join(", ")),
            Err(e) => Some(format!("(the thread list could not be read: {e})")),
        };
        if let Some(threads) = busy {
            // SAFETY: taken above on this thread.
            unsafe { gil.give_back(api) };
            return Err(Error::ThreadsRunning { threads });
        }
    }
    let soft_because: Option<(String, Vec<PathBuf>)> = if mode == StopMode::Finalize {
        None
    } else if let Err(e) = &threads {
        Some((
            format!("the running Python threads could not be listed ({e})"),
            vec![],
        ))
    } else if let Some(t) = threads.as_ref().ok().filter(|t| !t.is_empty()) {
        Some((
            format!("Python threads are still running ({})", t.join(", ")),
            vec![],
        ))
    } else if let Err(e) = &extensions {
        Some((
            format!("the loaded extension modules could not be listed ({e})"),
            vec![],
        ))
    } else if !predicted.is_empty() {
        Some((pinning_reason(&predicted), predicted.clone()))
    } else if let Some(pin) = &st.pin {
        Some((
            format!("an earlier stop left libpython loaded ({})", pin.reason),
            pin.files.clone(),
        ))
    } else if !tsd::can_inspect() {
        Some((UNCHECKABLE_KEYS.to_string(), vec![]))
    } else {
        None
    };

    CURRENT.store(std::ptr::null_mut(), Ordering::Release);
    if let Some((reason, files)) = soft_because {
        let dropped = call_helper_strings(api, rt.helpers, "end_session");
        // SAFETY: taken above on this thread; the interpreter stays initialised.
        unsafe { gil.give_back(api) };
        let report = UnloadReport {
            libpython: rt.libpython.clone(),
            kind: StopKind::Soft,
            unloaded: Vec::new(),
            remaining: Vec::new(),
            pinned: true,
            pin_reason: Some(match &dropped {
                Ok(_) => reason.clone(),
                Err(e) => format!("{reason}; resetting the session failed: {e}"),
            }),
            dropped_modules: dropped.unwrap_or_default(),
        };
        st.running = false;
        st.dormancy = Some((reason, files));
        return Ok(report);
    }
    // A hard stop: the GIL stays held by this thread into finalisation (it is not given back).
    let _held_into_finalisation = gil;
    INTERPRETER.store(std::ptr::null_mut(), Ordering::Release);
    let Some(mut rt) = st.interpreter.take() else {
        return Err(Error::NotStarted);
    };
    st.running = false;
    st.dormancy = None;
    // SAFETY: this thread holds the GIL, no other thread is inside a call (caller's contract)
    // and no Python thread runs (checked above, or refused in Finalize mode).
    let report = unsafe { finish_hard(&mut st, &mut rt, extensions.ok()) };
    Ok(report)
}

/// The shared objects a hard stop closes: the files of extension modules, and every shared
/// object that appeared since start under the interpreter's prefixes and site-packages.
fn unload_targets(rt: &Runtime, extension_files: &[PathBuf]) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = [&rt.facts.prefix, &rt.facts.base_prefix]
        .into_iter()
        .cloned()
        .chain(rt.facts.site_packages.iter().cloned())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut targets: Vec<PathBuf> = extension_files.to_vec();
    for p in maps::new_since(&rt.mapped_before) {
        if p != rt.libpython
            && maps::is_shared_object(&p)
            && under_any(&p, &roots)
            && !targets.contains(&p)
        {
            targets.push(p);
        }
    }
    targets.retain(|p| *p != rt.libpython);
    targets
}

/// Finalises the interpreter and unloads what it loaded; records a pin when libpython stays.
///
/// # Safety
/// This thread holds the GIL; no other thread runs Python code or is inside a call; `rt` is no
/// longer reachable through `CURRENT` or `INTERPRETER`.
pub(super) unsafe fn finish_hard(
    st: &mut State,
    rt: &mut Runtime,
    extension_files: Option<Vec<PathBuf>>,
) -> UnloadReport {
    let targets = unload_targets(rt, extension_files.as_deref().unwrap_or(&[]));
    if !rt.helpers.is_null() {
        // SAFETY: GIL held; our reference to the helper module.
        unsafe { (rt.api.Py_DecRef)(rt.helpers) };
        rt.helpers = std::ptr::null_mut();
    }
    // SAFETY: GIL held; nothing else runs Python (caller's contract). The table is not used
    // after this: libpython may be unmapped below.
    unsafe { (rt.api.Py_FinalizeEx)() };

    let mut report = UnloadReport {
        libpython: rt.libpython.clone(),
        kind: StopKind::Unloaded,
        unloaded: Vec::new(),
        remaining: Vec::new(),
        pinned: false,
        pin_reason: None,
        dropped_modules: Vec::new(),
    };
    let appeared: Vec<PathBuf> = maps::new_since(&rt.mapped_before);
    let v = &rt.facts.version;
    // An extension module that glibc will never unload keeps libpython mapped (only reachable
    // in Finalize mode, or when an earlier stop left it). What to do with the other modules
    // then depends on the version, as measured:
    // - CPython < 3.11 keeps static type state (e.g. `object`'s subclass list) that points into
    //   extension modules; unloading them under a surviving libpython crashes the next
    //   finalisation. So nothing is unloaded.
    // - CPython 3.11–3.13 re-initialise cleanly over unloaded modules, but re-running the init
    //   of a single-phase module that stayed loaded (e.g. `_decimal` in 3.12) corrupts memory.
    //   So everything but the pinning modules is unloaded, and they are refused on re-import.
    // - CPython 3.14+ cannot be initialised again over a libpython that stayed (measured: a
    //   memory fault), so the pin forbids any restart.
    let predicted: Vec<PathBuf> = targets
        .iter()
        .filter(|t| crate::elf::pinning(t).is_none_or(|p| p.pins()))
        .cloned()
        .collect();
    let will_pin = !predicted.is_empty() || st.pin.is_some();
    if will_pin && (v.major, v.minor) < (3, 11) {
        return keep_everything(st, rt, report, predicted, &appeared, Keep::Pinning);
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
        return keep_everything(st, rt, report, Vec::new(), &appeared, Keep::UncheckableKeys);
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
        let reason = stayed_reason(&files);
        report.kind = StopKind::Finalized;
        report.pinned = true;
        report.pin_reason = Some(reason.clone());
        // Unpredicted: other extension modules were unloaded under a surviving libpython.
        // Versions before 3.11 keep type state that points into the unloaded modules; 3.14+
        // do not re-initialise over a libpython that stayed. Neither may start again here.
        let no_restart = (v.major, v.minor) < (3, 11) || !reinitialises_over_pin(v);
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
    report
}

fn stayed_reason(files: &[PathBuf]) -> String {
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
