//! The Rust floor: what the hot calls cost through the `p4s_` ABI, beside the same C-API calls
//! made directly (a plain C-style loop) and Python's own loop, per interpreter, in one run.
//!
//! The shim is loaded as the built cdylib (`libpy4cl2_cffi_shim.so` next to this binary, or
//! `$PY4CL2_CFFI_SHIM`), exactly as the Lisp side loads it; the bare C-API functions are then
//! looked up in the global scope, where the shim put libpython.
//!
//! Usage: `floor-bench [--json] [--calls N] [SPEC...]` (SPECs as for `py4cl2-cffi-config use`;
//! default: every pyenv CPython 3.8–3.13 found). Human table by default; `--json` prints one
//! object per interpreter for other benchmarks (the Lisp bench) to read.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void, CStr};
use std::time::Instant;

type PyObj = *mut c_void;

/// `{int32 tag; int32 aux; int64 a; int64 b}`, as in the shim's `values.rs`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct P4sValue {
    tag: i32,
    aux: i32,
    a: i64,
    b: i64,
}
const P4S_INT: i32 = 2;
const P4S_FLOAT: i32 = 3;

macro_rules! table {
    ($name:ident { $($f:ident : fn($($t:ty),*) $(-> $r:ty)?;)* }) => {
        #[allow(non_snake_case)]
        struct $name { $($f: unsafe extern "C" fn($($t),*) $(-> $r)?,)* }
        impl $name {
            fn load(lib: &libloading::Library) -> Result<Self, String> {
                Ok($name { $($f: {
                    // SAFETY: the symbol has this C signature (shim docs / CPython headers).
                    let s = unsafe { lib.get::<unsafe extern "C" fn($($t),*) $(-> $r)?>(concat!(stringify!($f), "\0").as_bytes()) };
                    *s.map_err(|e| format!("{}: {e}", stringify!($f)))?
                },)* })
            }
        }
    };
}

table!(Shim {
    p4s_start: fn(*const c_char, i64) -> i32;
    p4s_stop: fn() -> i32;
    p4s_last_error: fn() -> *const c_char;
    p4s_exec: fn(*const c_char, i64, PyObj, PyObj) -> i32;
    p4s_eval: fn(*const c_char, i64, PyObj, PyObj, *mut P4sValue, *mut u32, i64) -> i32;
    p4s_lookup: fn(*const c_char, i64) -> PyObj;
    p4s_call_packed: fn(PyObj, *const P4sValue, i64, PyObj, *mut P4sValue, *mut u32, i64) -> i32;
    p4s_gil_acquire: fn() -> i32;
    p4s_gil_release: fn() -> i32;
    p4s_decref: fn(PyObj);
});

table!(CApi {
    PyGILState_Ensure: fn() -> i32;
    PyGILState_Release: fn(i32);
    PyLong_FromLongLong: fn(i64) -> PyObj;
    PyFloat_FromDouble: fn(f64) -> PyObj;
    PyFloat_AsDouble: fn(PyObj) -> f64;
    PyTuple_New: fn(isize) -> PyObj;
    PyTuple_SetItem: fn(PyObj, isize, PyObj) -> i32;
    PyObject_Call: fn(PyObj, PyObj, PyObj) -> PyObj;
    PyUnicode_GetLength: fn(PyObj) -> isize;
    PyUnicode_AsUCS4: fn(PyObj, *mut u32, isize, i32) -> *mut u32;
    Py_IncRef: fn(PyObj);
    Py_DecRef: fn(PyObj);
});

type Vectorcall = unsafe extern "C" fn(PyObj, *const PyObj, usize, PyObj) -> PyObj;

struct Row {
    version: String,
    abi_str_per_call: f64,
    abi_str_held: f64,
    capi_str_per_call: f64,
    python_str: f64,
    abi_sin_per_call: f64,
    capi_sin_per_call: f64,
    python_sin: f64,
}

struct Bench {
    shim: Shim,
}

impl Bench {
    fn lookup(&self, name: &str) -> PyObj {
        // SAFETY: valid name and length.
        let o = unsafe { (self.shim.p4s_lookup)(name.as_ptr().cast(), name.len() as i64) };
        assert!(!o.is_null(), "lookup {name} failed");
        o
    }

    fn exec(&self, code: &str) {
        // SAFETY: valid code; NULL globals mean __main__.
        let st = unsafe {
            (self.shim.p4s_exec)(
                code.as_ptr().cast(),
                code.len() as i64,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, 0, "exec failed: {code}");
    }

    fn eval_float(&self, code: &str) -> f64 {
        let mut out = P4sValue::default();
        // SAFETY: valid arguments.
        let st = unsafe {
            (self.shim.p4s_eval)(
                code.as_ptr().cast(),
                code.len() as i64,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(st, 0);
        f64::from_bits(out.a as u64)
    }

    /// `str(i)` for `n` ints through the ABI, the result copied out as UTF-32 (as Lisp gets it).
    fn abi_str(&self, n: usize, f: PyObj) -> f64 {
        let mut out = P4sValue::default();
        let mut scratch = [0u32; 64];
        let t0 = Instant::now();
        for i in 0..n {
            let arg = P4sValue {
                tag: P4S_INT,
                aux: 0,
                a: i as i64,
                b: 0,
            };
            // SAFETY: valid pointers; one packed argument.
            let st = unsafe {
                (self.shim.p4s_call_packed)(
                    f,
                    &arg,
                    1,
                    std::ptr::null_mut(),
                    &mut out,
                    scratch.as_mut_ptr(),
                    64,
                )
            };
            debug_assert!(st == 0 && out.aux == 1);
            std::hint::black_box(&scratch[..out.b as usize]);
        }
        n as f64 / t0.elapsed().as_secs_f64()
    }

    fn abi_sin(&self, n: usize, f: PyObj) -> f64 {
        let mut out = P4sValue::default();
        let t0 = Instant::now();
        for i in 0..n {
            let x = i as f64 * 1e-3;
            let arg = P4sValue {
                tag: P4S_FLOAT,
                aux: 0,
                a: x.to_bits() as i64,
                b: 0,
            };
            // SAFETY: valid pointers; one packed argument.
            let st = unsafe {
                (self.shim.p4s_call_packed)(
                    f,
                    &arg,
                    1,
                    std::ptr::null_mut(),
                    &mut out,
                    std::ptr::null_mut(),
                    0,
                )
            };
            debug_assert_eq!(st, 0);
            std::hint::black_box(f64::from_bits(out.a as u64));
        }
        n as f64 / t0.elapsed().as_secs_f64()
    }

    /// Python's own loop over the same call, timed inside the same interpreter.
    fn python_loop(&self, n: usize, call: &str) -> f64 {
        self.exec(&format!(
            "import time, math\n_f = {call}\ndef _bench(n, f=_f):\n    t = time.perf_counter()\n    for i in range(n):\n        f(i)\n    return time.perf_counter() - t\n_elapsed = _bench({n})\n"
        ));
        n as f64 / self.eval_float("_elapsed")
    }
}

/// The same work as bare C-API calls, the GIL taken per call with `PyGILState_Ensure`/`Release`
/// (what a plain C loop embedding Python would write).
fn capi_loop(api: &CApi, vectorcall: Option<Vectorcall>, n: usize, f: PyObj, sin: bool) -> f64 {
    let mut scratch = [0u32; 64];
    let t0 = Instant::now();
    for i in 0..n {
        // SAFETY: the interpreter runs; every reference made is released.
        unsafe {
            let g = (api.PyGILState_Ensure)();
            let arg = if sin {
                (api.PyFloat_FromDouble)(i as f64 * 1e-3)
            } else {
                (api.PyLong_FromLongLong)(i as i64)
            };
            let r = match vectorcall {
                Some(vc) => vc(f, &arg, 1, std::ptr::null_mut()),
                None => {
                    let t = (api.PyTuple_New)(1);
                    (api.Py_IncRef)(arg);
                    (api.PyTuple_SetItem)(t, 0, arg);
                    let r = (api.PyObject_Call)(f, t, std::ptr::null_mut());
                    (api.Py_DecRef)(t);
                    r
                }
            };
            if sin {
                std::hint::black_box((api.PyFloat_AsDouble)(r));
            } else {
                let len = (api.PyUnicode_GetLength)(r);
                (api.PyUnicode_AsUCS4)(r, scratch.as_mut_ptr(), 64, 0);
                std::hint::black_box(&scratch[..len as usize]);
            }
            (api.Py_DecRef)(r);
            (api.Py_DecRef)(arg);
            (api.PyGILState_Release)(g);
        }
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn measure(b: &Bench, spec: &str, n: usize) -> Result<Row, String> {
    // SAFETY: valid spec.
    if unsafe { (b.shim.p4s_start)(spec.as_ptr().cast(), spec.len() as i64) } != 0 {
        // SAFETY: the shim returns a NUL-terminated message.
        return Err(unsafe { CStr::from_ptr((b.shim.p4s_last_error)()) }
            .to_string_lossy()
            .into_owned());
    }
    let result = run_all(b, n);
    // SAFETY: stop what we started.
    unsafe { (b.shim.p4s_stop)() };
    result
}

fn run_all(b: &Bench, n: usize) -> Result<Row, String> {
    // The shim opened libpython RTLD_GLOBAL: the bare C-API is in the global scope now.
    let this: libloading::Library = libloading::os::unix::Library::this().into();
    let api = CApi::load(&this)?;
    // PyObject_Vectorcall is exported from 3.11; VectorcallDict (same call shape without
    // keywords) from 3.9; 3.8 goes through a tuple.
    // SAFETY: both have the `Vectorcall` signature.
    let vectorcall: Option<Vectorcall> = unsafe {
        this.get::<Vectorcall>(b"PyObject_Vectorcall\0")
            .or_else(|_| this.get::<Vectorcall>(b"PyObject_VectorcallDict\0"))
            .ok()
            .map(|s| *s)
    };
    b.exec("import math, sys\n_v = sys.version_info");
    let version = format!(
        "{}.{}.{}",
        b.eval_float("float(_v[0])"),
        b.eval_float("float(_v[1])"),
        b.eval_float("float(_v[2])")
    );
    let f_str = b.lookup("str");
    let f_sin = b.lookup("math.sin");
    if let Ok(only) = std::env::var("FLOOR_ONLY") {
        // One loop only, for instruction counting under callgrind.
        match only.as_str() {
            "abi_str" => drop(b.abi_str(n, f_str)),
            "capi_str" => drop(capi_loop(&api, vectorcall, n, f_str, false)),
            "abi_sin" => drop(b.abi_sin(n, f_sin)),
            "capi_sin" => drop(capi_loop(&api, vectorcall, n, f_sin, true)),
            _ => {}
        }
        return Err(format!("ran {only} only"));
    }
    b.abi_str(n / 10, f_str);
    let best = |f: &dyn Fn() -> f64| (0..5).map(|_| f()).fold(0.0, f64::max);
    let row = Row {
        version,
        abi_str_per_call: best(&|| b.abi_str(n, f_str)),
        abi_str_held: best(&|| {
            // SAFETY: matched acquire/release around the held loop.
            unsafe { (b.shim.p4s_gil_acquire)() };
            let r = b.abi_str(n, f_str);
            // SAFETY: as above.
            unsafe { (b.shim.p4s_gil_release)() };
            r
        }),
        capi_str_per_call: best(&|| capi_loop(&api, vectorcall, n, f_str, false)),
        python_str: best(&|| b.python_loop(n, "str")),
        abi_sin_per_call: best(&|| b.abi_sin(n / 10, f_sin)),
        capi_sin_per_call: best(&|| capi_loop(&api, vectorcall, n / 10, f_sin, true)),
        python_sin: best(&|| b.python_loop(n / 10, "math.sin")),
    };
    // SAFETY: our references.
    unsafe {
        (b.shim.p4s_decref)(f_str);
        (b.shim.p4s_decref)(f_sin);
    }
    Ok(row)
}

fn shim_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("PY4CL2_CFFI_SHIM") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name("libpy4cl2_cffi_shim.so")
}

fn default_specs() -> Vec<String> {
    let root = std::env::var("PYENV_ROOT")
        .unwrap_or_else(|_| format!("{}/.pyenv", std::env::var("HOME").unwrap_or_default()));
    let mut v: Vec<String> = std::fs::read_dir(format!("{root}/versions"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy().to_string();
                    ["3.8.", "3.9.", "3.10.", "3.11.", "3.12.", "3.13."]
                        .iter()
                        .any(|x| n.starts_with(x))
                })
                .map(|p| p.join("bin/python3").to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| {
        let n: Vec<u32> = s
            .split("versions/")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .split('.')
            .filter_map(|x| x.parse().ok())
            .collect();
        n
    });
    v
}

fn main() {
    let mut json = false;
    let mut n = 1_000_000usize;
    let mut specs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--calls" => n = args.next().and_then(|s| s.parse().ok()).unwrap_or(n),
            "--help" | "-h" => {
                println!("usage: floor-bench [--json] [--calls N] [SPEC...]");
                return;
            }
            _ => specs.push(a),
        }
    }
    if specs.is_empty() {
        specs = default_specs();
    }
    let path = shim_path();
    // SAFETY: loading the shim runs no initialisers with preconditions.
    let lib = match unsafe { libloading::Library::new(&path) } {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor-bench: cannot load the shim {}: {e} (build it: cargo build --release -p py4cl2-cffi-shim)", path.display());
            std::process::exit(2);
        }
    };
    let bench = match Shim::load(&lib) {
        Ok(shim) => Bench { shim },
        Err(e) => {
            eprintln!("floor-bench: {}: missing {e}", path.display());
            std::process::exit(2);
        }
    };
    if !json {
        println!(
            "floor: {n} x str(i) and {} x math.sin(x) per interpreter, calls/s (M = million)",
            n / 10
        );
        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>7} {:>10} {:>9} | {:>10} {:>10} {:>7} {:>10} {:>9}",
            "python",
            "abi/call",
            "abi/held",
            "C-API",
            "abi/C",
            "py loop",
            "abi/py",
            "sin abi",
            "sin C-API",
            "abi/C",
            "sin py",
            "100k s"
        );
    }
    for spec in specs {
        match measure(&bench, &spec, n) {
            Ok(r) => {
                if json {
                    println!(
                        "{{\"version\":\"{}\",\"abi_str_per_call\":{:.0},\"abi_str_held\":{:.0},\"capi_str_per_call\":{:.0},\"python_str\":{:.0},\"abi_sin_per_call\":{:.0},\"capi_sin_per_call\":{:.0},\"python_sin\":{:.0}}}",
                        r.version, r.abi_str_per_call, r.abi_str_held, r.capi_str_per_call, r.python_str, r.abi_sin_per_call, r.capi_sin_per_call, r.python_sin
                    );
                } else {
                    let m = |x: f64| format!("{:.2}M", x / 1e6);
                    println!("{:<8} {:>10} {:>10} {:>10} {:>6.0}% {:>10} {:>8.2}x | {:>10} {:>10} {:>6.0}% {:>10} {:>9.4}",
                        r.version, m(r.abi_str_per_call), m(r.abi_str_held), m(r.capi_str_per_call),
                        100.0 * r.abi_str_per_call / r.capi_str_per_call, m(r.python_str), r.abi_str_per_call / r.python_str,
                        m(r.abi_sin_per_call), m(r.capi_sin_per_call), 100.0 * r.abi_sin_per_call / r.capi_sin_per_call,
                        m(r.python_sin), 100_000.0 / r.abi_sin_per_call);
                }
            }
            Err(e) => eprintln!("floor-bench: {spec}: {e}"),
        }
    }
}
