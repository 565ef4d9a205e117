//! Shared helpers for the shim's integration tests: finding the interpreters and venvs of this
//! machine, and thin safe wrappers over the `p4s_*` functions, called exactly as Lisp calls them.
#![allow(dead_code)]

use py4cl2_cffi_shim::call::*;
use py4cl2_cffi_shim::gil::p4s_decref;
use py4cl2_cffi_shim::last_error::*;
use py4cl2_cffi_shim::lifecycle::*;
use py4cl2_cffi_shim::names::*;
use py4cl2_cffi_shim::pyerr::*;
use py4cl2_cffi_shim::source::*;
use py4cl2_cffi_shim::values::*;
use py4cl2_cffi_shim::PyObject;
use std::ffi::CStr;
use std::path::PathBuf;

/// The venv cache made by `tools/make-venvs.sh`.
pub fn venv_root() -> PathBuf {
    if let Some(p) = std::env::var_os("PY4CL2_CFFI_VENVS") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    base.join("py4cl2-cffi").join("venvs")
}

/// When set (the test command sets it), a missing interpreter or venv fails instead of skipping.
pub fn require_all() -> bool {
    std::env::var_os("PY4CL2_CFFI_REQUIRE_ALL").is_some()
}

/// The venv (with numpy) of version `xy`, if made.
pub fn venv(xy: &str) -> Option<PathBuf> {
    let v = venv_root().join(xy);
    if v.join(".complete").exists() {
        Some(v)
    } else {
        let msg = format!(
            "SKIPPED: no venv for Python {xy} under {} (run tools/make-venvs.sh)",
            venv_root().display()
        );
        if require_all() {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        None
    }
}

/// The Python series this run must cover: `PY4CL2_CFFI_VERSIONS` (space-separated; inside the
/// Debian sid root matrix/sid.sh sets "3.14 3.15"), else pyenv's 3.8–3.13 of this machine.
pub fn expected_versions() -> Vec<String> {
    match std::env::var("PY4CL2_CFFI_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(String::from).collect(),
        _ => ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// Whether this run's interpreters are the distribution's `/usr/bin/pythonX.Y` rather than
/// pyenv's: `PY4CL2_CFFI_PYTHONS=system` (set by matrix/sid.sh inside the Debian sid root).
pub fn system_pythons() -> bool {
    std::env::var("PY4CL2_CFFI_PYTHONS").is_ok_and(|v| v == "system")
}

/// Every base interpreter this run should have, one per [`expected_versions`]: pyenv's (or the
/// distribution's, see [`system_pythons`]), plus Debian's 3.11 on a pyenv machine.
pub fn base_interpreters() -> Vec<(String, PathBuf)> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv")
        });
    let mut out = Vec::new();
    for xy in expected_versions() {
        let xy = xy.as_str();
        if system_pythons() {
            let exe = PathBuf::from(format!("/usr/bin/python{xy}"));
            if exe.exists() {
                out.push((xy.to_string(), exe));
            } else {
                let msg = format!("SKIPPED: no distribution CPython {xy} ({})", exe.display());
                if require_all() {
                    panic!("{msg}");
                }
                eprintln!("{msg}");
            }
            continue;
        }
        let found = std::fs::read_dir(root.join("versions"))
            .ok()
            .and_then(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p.file_name().unwrap().to_string_lossy().to_string();
                        n.starts_with(&format!("{xy}."))
                            && n[xy.len() + 1..].chars().all(|c| c.is_ascii_digit())
                    })
                    .max()
            });
        match found {
            Some(p) if p.join("bin/python3").exists() => {
                out.push((xy.to_string(), p.join("bin/python3")))
            }
            _ => {
                let msg = format!("SKIPPED: no pyenv CPython {xy} on this machine");
                if require_all() {
                    panic!("{msg}");
                }
                eprintln!("{msg}");
            }
        }
    }
    if system_pythons() {
        return out;
    }
    let debian = PathBuf::from("/usr/bin/python3.11");
    if debian.exists() && PathBuf::from("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0").exists() {
        out.push(("3.11 (Debian)".to_string(), debian));
    } else {
        eprintln!("SKIPPED: Debian's /usr/bin/python3.11 with libpython3.11 is not installed");
    }
    out
}

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the shim returns NUL-terminated strings valid until the next call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// The last shim error of this thread.
pub fn last_error() -> String {
    // SAFETY: no arguments.
    cstr(unsafe { p4s_last_error() })
}

/// The kept Python exception as `Type: message`.
pub fn py_error() -> String {
    // SAFETY: no pointer arguments.
    unsafe { format!("{}: {}", cstr(p4s_error_text(0)), cstr(p4s_error_text(1))) }
}

/// The last shim error's code (`p4s_last_error_code`).
pub fn last_error_code() -> i32 {
    // SAFETY: no arguments.
    unsafe { p4s_last_error_code() }
}

/// Starts Python for `spec` (a path or version spec): Ok(true) when a dormant interpreter was
/// resumed, Ok(false) for a fresh start.
pub fn start_kind(spec: &str) -> Result<bool, String> {
    // SAFETY: `spec` valid for its length.
    match unsafe { p4s_start(spec.as_ptr().cast(), spec.len() as i64) } {
        0 => Ok(false),
        2 => Ok(true),
        st => Err(format!(
            "status {st} (code {}): {}",
            last_error_code(),
            last_error()
        )),
    }
}

/// Starts Python for `spec` (a path or version spec), fresh or resumed.
pub fn start(spec: &str) -> Result<(), String> {
    start_kind(spec).map(|_| ())
}

/// Stops Python with `flags` (1: finalize); Ok(status: 0 unloaded, 1 soft, 2 finalized and
/// pinned) or the error.
pub fn stop_with(flags: i32) -> Result<i32, String> {
    // SAFETY: no pointer arguments.
    match unsafe { p4s_stop(flags, 0) } {
        st @ 0..=2 => Ok(st),
        st => Err(format!(
            "status {st} (code {}): {}",
            last_error_code(),
            last_error()
        )),
    }
}

/// Stops Python; Ok(true) when libpython stays loaded (a soft stop or a pinned finalisation).
pub fn stop() -> Result<bool, String> {
    stop_with(0).map(|st| st != 0)
}

/// The JSON report of the last stop.
pub fn stop_report() -> String {
    // SAFETY: no arguments.
    cstr(unsafe { p4s_stop_report() })
}

/// A shim status as a result: the Python error (`Type: message`) for -1, the shim's message
/// for other failures.
pub fn status(st: i32) -> Result<(), String> {
    match st {
        0 => Ok(()),
        -1 => Err(py_error()),
        st => Err(format!("status {st}: {}", last_error())),
    }
}

/// Runs statements in `__main__`.
pub fn exec(code: &str) -> Result<(), String> {
    // SAFETY: `code` valid for its length; NULL dicts mean `__main__`.
    let st = unsafe {
        p4s_exec(
            code.as_ptr().cast(),
            code.len() as i64,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    status(st)
}

/// A Rust view of a packed result.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    /// Any other object (new reference) with its tag.
    Obj(i32, *mut PyObject, i64),
}

pub const SCRATCH: usize = 256;

/// Turns a packed value plus the scratch buffer into a [`Val`].
pub fn val(v: &P4sValue, scratch: &[u32]) -> Val {
    match v.tag {
        P4S_NONE => Val::None,
        P4S_BOOL => Val::Bool(v.a != 0),
        P4S_INT => Val::Int(v.a),
        P4S_FLOAT => Val::Float(f64::from_bits(v.a as u64)),
        P4S_COMPLEX => Val::Complex(f64::from_bits(v.a as u64), f64::from_bits(v.b as u64)),
        P4S_STR if v.aux == 1 => Val::Str(
            scratch[..v.b as usize]
                .iter()
                .map(|c| char::from_u32(*c).unwrap())
                .collect(),
        ),
        P4S_STR => {
            let o = v.a as *mut PyObject;
            let s = read_str(o);
            // SAFETY: the value owned this reference.
            unsafe { p4s_decref(o) };
            Val::Str(s)
        }
        t => Val::Obj(t, v.a as *mut PyObject, v.b),
    }
}

/// Reads a str object through the UTF-32 accessor.
pub fn read_str(o: *mut PyObject) -> String {
    // SAFETY: `o` is a live str; the buffer has room for `n` characters.
    unsafe {
        let n = p4s_str_utf32(o, std::ptr::null_mut(), 0);
        assert!(n >= 0, "p4s_str_utf32 failed: {}", py_error());
        let mut buf = vec![0u32; n as usize];
        assert_eq!(p4s_str_utf32(o, buf.as_mut_ptr(), n), n);
        buf.iter().map(|c| char::from_u32(*c).unwrap()).collect()
    }
}

/// Evaluates an expression in `__main__`.
pub fn eval(code: &str) -> Result<Val, String> {
    let mut out = P4sValue::default();
    let mut scratch = [0u32; SCRATCH];
    // SAFETY: arguments valid for their lengths.
    let st = unsafe {
        p4s_eval(
            code.as_ptr().cast(),
            code.len() as i64,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut out,
            scratch.as_mut_ptr(),
            SCRATCH as i64,
        )
    };
    status(st).map(|()| val(&out, &scratch))
}

/// Resolves a dotted name to a new reference.
pub fn lookup(name: &str) -> *mut PyObject {
    // SAFETY: `name` valid for its length.
    let o = unsafe { p4s_lookup(name.as_ptr().cast(), name.len() as i64) };
    assert!(!o.is_null(), "lookup {name}: {}", py_error());
    o
}

/// Packs an i64.
pub fn int(i: i64) -> P4sValue {
    P4sValue {
        tag: P4S_INT,
        aux: 0,
        a: i,
        b: 0,
    }
}

/// Packs an f64.
pub fn float(x: f64) -> P4sValue {
    P4sValue {
        tag: P4S_FLOAT,
        aux: 0,
        a: x.to_bits() as i64,
        b: 0,
    }
}

/// Packs a UTF-8 string (the bytes must outlive the call).
pub fn utf8(s: &str) -> P4sValue {
    P4sValue {
        tag: P4S_STR_UTF8,
        aux: 0,
        a: s.as_ptr() as i64,
        b: s.len() as i64,
    }
}

/// Packs a borrowed object.
pub fn obj(o: *mut PyObject) -> P4sValue {
    P4sValue {
        tag: P4S_OBJECT,
        aux: 0,
        a: o as i64,
        b: 0,
    }
}

/// Calls with packed arguments and keyword names.
pub fn call(f: *mut PyObject, args: &[P4sValue], kwnames: *mut PyObject) -> Result<Val, String> {
    let mut out = P4sValue::default();
    let mut scratch = [0u32; SCRATCH];
    // SAFETY: arrays valid for their lengths.
    let st = unsafe {
        p4s_call_packed(
            f,
            args.as_ptr(),
            args.len() as i64,
            kwnames,
            &mut out,
            scratch.as_mut_ptr(),
            SCRATCH as i64,
        )
    };
    status(st).map(|()| val(&out, &scratch))
}

/// This process's resident set size in KB (Linux `/proc/self/status`; 0 elsewhere).
pub fn rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
