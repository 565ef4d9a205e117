//! Unloading what a finalised Python loaded, and keeping it all when that is unsafe.

use super::stop::{StopKind, UnloadReport};
use super::{reinitialises_over_pin, version_of, Pin, Runtime, State};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Why the thread-specific-data check makes a stop keep everything.
pub(super) const UNCHECKABLE_KEYS: &str = "this C library's thread-specific-data keys cannot be \
     inspected, so unloading libpython could leave destructors pointing at unmapped code";

/// Why `files` keep libpython mapped: they use symbols glibc never unloads.
pub(super) fn pinning_reason(files: &[PathBuf]) -> String {
    format!(
        "{} cannot be unloaded (it uses STB_GNU_UNIQUE symbols or the C++ runtime, which glibc \
         never unloads), so libpython stays loaded",
        files
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Why a hard stop keeps everything mapped.
pub(super) enum Keep {
    /// An extension module glibc will never unload (predicted, or pinned by an earlier stop).
    Pinning,
    /// This C library's thread-specific-data keys cannot be checked.
    UncheckableKeys,
}

/// Ends a hard stop that keeps libpython and everything Python loaded mapped, for `why`.
pub(super) fn keep_everything(
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
        Keep::Pinning => pinning_reason(&files),
        Keep::UncheckableKeys => UNCHECKABLE_KEYS.to_string(),
    };
    report.kind = StopKind::Finalized;
    report.pinned = true;
    report.pin_reason = Some(reason.clone());
    report.remaining = appeared.to_vec();
    let v = &rt.facts.version;
    st.pin = Some(Pin {
        libpython: rt.libpython.clone(),
        version: version_of(&rt.facts),
        files,
        reason,
        no_restart: !reinitialises_over_pin(v),
    });
    drop(std::mem::take(&mut rt.program_name));
    report
}

/// Closes each of `targets` until the dynamic linker no longer has it, over several passes
/// (closing one may release another), libpython last.
///
/// Only objects that Python itself loaded are forced closed: its extension modules and files
/// under its prefixes. A library some other part of the host process opened meanwhile is left
/// alone (it shows up as remaining in the report, never unmapped under its owner's feet).
pub(super) fn sweep_unload(targets: &[PathBuf], libpython: &Path) {
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

/// Whether `path` lies under one of `roots`.
pub(super) fn under_any(path: &Path, roots: &[PathBuf]) -> bool {
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
