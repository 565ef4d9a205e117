//! Python environments on demand for the Lisp side: `p4s_env_ensure` makes or reuses the venv
//! for a requirement set (the work is the config crate's `environments::ensure`).
//!
//! May depend on: last_error, lifecycle (and lib).

use crate::last_error::set_last_error;
use crate::lifecycle::chain;
use py4cl2_cffi_loader::config::environments::{self, Progress};
use std::ffi::{c_char, CString};
use std::sync::Mutex;

/// The progress callback: `line` (`len` UTF-8 bytes) is a line to show, or NULL when there is
/// nothing new (called every 200 ms). Returns non-zero to go on, 0 to stop.
pub type ProgressFn = unsafe extern "C" fn(line: *const c_char, len: i64) -> i32;

/// `len` bytes at `p` as UTF-8 text; NULL or a non-positive length is empty.
///
/// # Safety
/// `p` must be valid for `len` bytes when it is not NULL.
unsafe fn text_of<'a>(p: *const c_char, len: i64) -> Result<&'a str, String> {
    if p.is_null() || len <= 0 {
        return Ok("");
    }
    // SAFETY: valid for `len` bytes (this function's contract).
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) };
    std::str::from_utf8(bytes).map_err(|_| "the text is not UTF-8".to_string())
}

export! {
    /// Makes, or reuses, the Python environment for a requirement set, without starting
    /// Python. `spec` (`spec_len` UTF-8 bytes; NULL or empty for the configured interpreter)
    /// selects the base interpreter as `p4s_start` does; `requirements` (`req_len` bytes) are
    /// pip requirement strings, one per line. `progress` (may be NULL) is called on this
    /// thread with each line the installer prints, and with NULL every 200 ms; when it returns
    /// 0 the installer is stopped and nothing is kept. Returns JSON (`dir`, `python`,
    /// `manifest`, `created`, `seconds`), borrowed until the next call on any thread; NULL on
    /// failure with the reason in `p4s_last_error()`.
    ///
    /// Owns: a borrowed UTF-8 JSON string, valid until the next `p4s_env_ensure` on any thread.
    /// GIL: not needed: Python is not started (the installer is a child process); `progress` runs
    ///   on the calling thread.
    /// Fails: NULL, with the reason in `p4s_last_error` (texts not UTF-8, no interpreter, an
    ///   installer failure, stopped by `progress`).
    fn p4s_env_ensure(spec: *const c_char, spec_len: i64, requirements: *const c_char, req_len: i64, progress: Option<ProgressFn>) -> *const c_char, on_panic = std::ptr::null(), {
        static JSON: Mutex<Option<CString>> = Mutex::new(None);
        // SAFETY: the caller passes valid (pointer, length) pairs.
        let texts = unsafe { (text_of(spec, spec_len), text_of(requirements, req_len)) };
        let (spec, requirements) = match texts {
            (Ok(s), Ok(r)) => (s.trim(), r),
            (Err(m), _) | (_, Err(m)) => {
                set_last_error(&m);
                return std::ptr::null();
            }
        };
        let requirements: Vec<String> = requirements.lines().map(str::to_string).collect();
        let spec = if spec.is_empty() { None } else { Some(spec) };
        let mut report = |p: Progress<'_>| match (progress, p) {
            (None, _) => true,
            // SAFETY: the callback was given by the caller for this call, on this thread.
            (Some(f), Progress::Tick) => (unsafe { f(std::ptr::null(), 0) }) != 0,
            // SAFETY: as above; `line` outlives the call.
            (Some(f), Progress::Line(line)) => (unsafe { f(line.as_ptr().cast(), line.len() as i64) }) != 0,
        };
        let result = py4cl2_cffi_loader::config::resolve(spec)
            .and_then(|base| environments::ensure(&base, &requirements, &mut report));
        match result.map(|env| serde_json::to_string(&env)) {
            Ok(Ok(json)) => {
                let mut g = JSON.lock().unwrap_or_else(|e| e.into_inner());
                *g = CString::new(json).ok();
                g.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null())
            }
            Ok(Err(e)) => {
                set_last_error(&e.to_string());
                std::ptr::null()
            }
            Err(e) => {
                set_last_error(&chain(&e));
                std::ptr::null()
            }
        }
    }
}
