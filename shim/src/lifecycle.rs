//! Starting and stopping Python, version information and the unload report.

use crate::errors::set_last_error;
use crate::gil;
use crate::{P4S_ERROR, P4S_OK};
use std::ffi::{c_char, CString};
use std::sync::Mutex;

static REPORT: Mutex<Option<CString>> = Mutex::new(None);
static VERSION: Mutex<Option<CString>> = Mutex::new(None);

/// `P4S_ALREADY_STARTED`: `p4s_start` found Python running and did nothing.
pub const P4S_ALREADY_STARTED: i32 = 1;
/// `P4S_PINNED`: `p4s_stop` finished, but libpython stayed mapped (see the report).
pub const P4S_PINNED: i32 = 1;

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

export! {
    /// Starts Python. `spec` (`len` UTF-8 bytes; NULL or empty for the configured interpreter)
    /// selects one as `py4cl2-cffi-config use` does: `3.12`, `>=3.10`, an executable, a venv or
    /// conda folder. Returns 0 when started, 1 when Python was already running (nothing done),
    /// -2 on failure with the reason in `p4s_last_error()` (a missing or wrong libpython, a
    /// process pinned to another version, an unknown spec...).
    fn p4s_start(spec: *const c_char, len: i64) -> i32, on_panic = P4S_ERROR, {
        if py4cl2_cffi_loader::is_running() {
            set_last_error("python is already started");
            return P4S_ALREADY_STARTED;
        }
        let spec = match spec_of(spec, len) {
            Ok(s) => s,
            Err(m) => {
                set_last_error(&m);
                return P4S_ERROR;
            }
        };
        let facts = match py4cl2_cffi_config::resolve(spec.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                set_last_error(&chain(&e));
                return P4S_ERROR;
            }
        };
        match py4cl2_cffi_loader::start(&facts) {
            Ok(rt) => {
                let v = &rt.facts.version;
                *VERSION.lock().unwrap_or_else(|e| e.into_inner()) =
                    CString::new(format!("{}.{}.{}", v.major, v.minor, v.patch)).ok();
                P4S_OK
            }
            Err(py4cl2_cffi_loader::Error::AlreadyStarted) => {
                set_last_error("python is already started");
                P4S_ALREADY_STARTED
            }
            Err(e) => {
                set_last_error(&chain(&e));
                P4S_ERROR
            }
        }
    }
}

export! {
    /// Stops Python: finalizes it and unloads libpython and everything it loaded. Returns 0
    /// when all of it was unmapped (any version may start next), 1 when libpython stayed
    /// mapped (only the same interpreter may start again; `p4s_stop_report()` says why), -2 when
    /// Python was not running or this thread still holds the GIL through `p4s_gil_acquire`.
    /// No other thread may be inside Python meanwhile.
    fn p4s_stop() -> i32, on_panic = P4S_ERROR, {
        if !py4cl2_cffi_loader::is_running() {
            set_last_error("python is not started");
            return P4S_ERROR;
        }
        if gil::depth() > 0 {
            set_last_error("cannot stop python while this thread holds the GIL (inside with-python-gil)");
            return P4S_ERROR;
        }
        if let Some(e) = gil::enter() {
            crate::output::forget(&e);
            crate::callback::forget(&e);
            crate::errors::p4s_forget_kept(&e);
            gil::drain_now(&e);
        }
        gil::clear_queue();
        match py4cl2_cffi_loader::stop() {
            Ok(r) => {
                let list = |v: &[std::path::PathBuf]| {
                    v.iter()
                        .map(|p| format!("\"{}\"", json_escape(&p.to_string_lossy())))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let json = format!(
                    "{{\"libpython\":\"{}\",\"pinned\":{},\"reason\":{},\"unloaded\":[{}],\"remaining\":[{}]}}",
                    json_escape(&r.libpython.to_string_lossy()),
                    r.pinned,
                    r.pin_reason.as_deref().map(|s| format!("\"{}\"", json_escape(s))).unwrap_or_else(|| "null".into()),
                    list(&r.unloaded),
                    list(&r.remaining),
                );
                *REPORT.lock().unwrap_or_else(|e| e.into_inner()) = CString::new(json).ok();
                if r.pinned { P4S_PINNED } else { P4S_OK }
            }
            Err(e) => {
                set_last_error(&chain(&e));
                P4S_ERROR
            }
        }
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
    /// The report of the last `p4s_stop` as JSON: `libpython`, `pinned`, `reason`, `unloaded`
    /// and `remaining` (file lists). Borrowed until the next stop; NULL before any stop.
    fn p4s_stop_report() -> *const c_char, on_panic = std::ptr::null(), {
        ptr_of(&REPORT)
    }
}

export! {
    /// 1 if Python is running, else 0.
    fn p4s_is_started() -> i32, on_panic = 0, {
        i32::from(py4cl2_cffi_loader::is_running())
    }
}

export! {
    /// Counts starts in this process (0 before the first): references and cached lookups from
    /// an earlier start are stale when it changed.
    fn p4s_generation() -> u64, on_panic = 0, {
        py4cl2_cffi_loader::generation()
    }
}

export! {
    /// The running (or last started) Python's version as `X.Y.Z` (borrowed, static until the
    /// next start); NULL before any start.
    fn p4s_version() -> *const c_char, on_panic = std::ptr::null(), {
        ptr_of(&VERSION)
    }
}

export! {
    /// The running Python's `sys.version_info` parts into the three pointers (any may be
    /// NULL). Returns 0, or -2 if Python is not running.
    fn p4s_version_info(major: *mut i32, minor: *mut i32, micro: *mut i32) -> i32, on_panic = P4S_ERROR, {
        // SAFETY: only the facts are read; stop cannot overlap (caller's contract for all p4s_).
        let Some(rt) = (unsafe { py4cl2_cffi_loader::current() }) else {
            set_last_error("python is not started");
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
    /// If an earlier stop left libpython mapped: its path (UTF-8, borrowed until the next call);
    /// NULL when the process can start any version.
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
    fn p4s_config_json(spec: *const c_char, len: i64) -> *const c_char, on_panic = std::ptr::null(), {
        static JSON: Mutex<Option<CString>> = Mutex::new(None);
        let spec = match spec_of(spec, len) {
            Ok(s) => s,
            Err(m) => {
                set_last_error(&m);
                return std::ptr::null();
            }
        };
        let value = match py4cl2_cffi_config::explain(spec.as_deref()).map(|r| serde_json::to_value(&r)) {
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
