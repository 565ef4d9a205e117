//! Running Python from loader code: the GIL taken by the loader, the `_py4cl2_cffi` helper
//! module (installed from helpers.py, its functions called with str arguments), and Python
//! errors as text.

use crate::api::Api;
use crate::ffi_types::{PyGILState_STATE, PyObject, PyThreadState, Py_file_input};
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::thread::ThreadId;

/// The Python source of the helper module, installed as `_py4cl2_cffi` at every fresh start.
pub(crate) const HELPERS_SOURCE: &str = include_str!("../helpers.py");

/// How the loader holds the GIL for a moment (at start, resume or stop), and gives it back.
pub(crate) enum HeldGil<'a> {
    /// Already held by this thread when the loader was called.
    Already,
    /// The saved main thread state, restored on the thread that started Python.
    Main(&'a AtomicPtr<PyThreadState>),
    /// Taken with `PyGILState_Ensure` on another thread.
    Ensured(PyGILState_STATE),
}

impl<'a> HeldGil<'a> {
    /// Takes the GIL on this thread.
    ///
    /// # Safety
    /// The interpreter is initialised and `main` holds the thread state that
    /// `PyEval_SaveThread` returned on `start_thread` (the thread that initialised Python).
    pub(crate) unsafe fn take(
        api: &Api,
        main: &'a AtomicPtr<PyThreadState>,
        start_thread: ThreadId,
    ) -> Self {
        // SAFETY: plain query, valid with or without the GIL.
        if unsafe { (api.PyGILState_Check)() } != 0 {
            return HeldGil::Already;
        }
        if std::thread::current().id() == start_thread {
            // SAFETY: the state was saved by PyEval_SaveThread on this very thread.
            unsafe { (api.PyEval_RestoreThread)(main.load(Ordering::Acquire)) };
            HeldGil::Main(main)
        } else {
            // SAFETY: the interpreter is initialised (caller's contract).
            HeldGil::Ensured(unsafe { (api.PyGILState_Ensure)() })
        }
    }

    /// Gives the GIL back as it was taken.
    ///
    /// # Safety
    /// The GIL is still held by this thread through this value.
    pub(crate) unsafe fn give_back(self, api: &Api) {
        match self {
            HeldGil::Already => {}
            HeldGil::Main(slot) => {
                // SAFETY: this thread holds the GIL with the main state; the state saved now
                // is what the next `take` on this thread restores.
                let ts = unsafe { (api.PyEval_SaveThread)() };
                slot.store(ts, Ordering::Release);
            }
            // SAFETY: undoes our own Ensure.
            HeldGil::Ensured(s) => unsafe { (api.PyGILState_Release)(s) },
        }
    }
}

/// Runs `code` in `dict` (globals and locals) with `mode`: a new reference or the error text.
fn run_in(
    api: &Api,
    code: &str,
    mode: std::os::raw::c_int,
    dict: *mut PyObject,
) -> Result<*mut PyObject, String> {
    let code = CString::new(code).map_err(|e| e.to_string())?;
    // SAFETY: GIL held (callers' contract); `dict` is a live dict.
    let r =
        unsafe { (api.PyRun_StringFlags)(code.as_ptr(), mode, dict, dict, std::ptr::null_mut()) };
    if r.is_null() {
        Err(fetch_error(api))
    } else {
        Ok(r)
    }
}

/// Installs the helper module `_py4cl2_cffi` (GIL held, right after a fresh initialisation).
/// Returns a new reference to the module.
pub(crate) fn install_helpers(api: &Api) -> Result<*mut PyObject, String> {
    // SAFETY: GIL held; AddModule creates the module, registers it in sys.modules and returns
    // a borrowed reference, which we make our own.
    let module = unsafe { (api.PyImport_AddModule)(c"_py4cl2_cffi".as_ptr()) };
    if module.is_null() {
        return Err(fetch_error(api));
    }
    // SAFETY: GIL held; the module is live (sys.modules holds it).
    unsafe { (api.Py_IncRef)(module) };
    // SAFETY: GIL held; GetDict returns the module's dict, borrowed.
    let dict = unsafe { (api.PyModule_GetDict)(module) };
    // SAFETY: GIL held; the dict is live; builtins is borrowed and stored with a new reference.
    let ok = unsafe {
        (api.PyDict_SetItemString)(dict, c"__builtins__".as_ptr(), (api.PyEval_GetBuiltins)())
    } == 0;
    let r = if ok {
        run_in(api, HELPERS_SOURCE, Py_file_input, dict)
    } else {
        Err(fetch_error(api))
    };
    match r {
        Ok(v) => {
            // SAFETY: the result of running a module body (None), a new reference.
            unsafe { (api.Py_DecRef)(v) };
            Ok(module)
        }
        Err(e) => {
            // SAFETY: our reference.
            unsafe { (api.Py_DecRef)(module) };
            Err(e)
        }
    }
}

/// An argument of a helper call.
pub(crate) enum Arg<'a> {
    /// A str.
    Str(&'a str),
    /// A list of str.
    StrList(&'a [String]),
}

/// A new str (GIL held), or NULL with the error set.
fn new_str(api: &Api, s: &str) -> *mut PyObject {
    // SAFETY: GIL held (callers' contract); valid UTF-8 pointer and length.
    unsafe { (api.PyUnicode_FromStringAndSize)(s.as_ptr().cast(), s.len() as isize) }
}

/// The object of `arg` (GIL held): a new reference, or NULL with the error set.
fn arg_object(api: &Api, arg: &Arg) -> *mut PyObject {
    match arg {
        Arg::Str(s) => new_str(api, s),
        Arg::StrList(items) => {
            // SAFETY: GIL held; a new reference or NULL.
            let list = unsafe { (api.PyList_New)(0) };
            if list.is_null() {
                return list;
            }
            for item in items.iter() {
                let v = new_str(api, item);
                let rc = if v.is_null() {
                    -1
                } else {
                    // SAFETY: GIL held; `list` is a live list; Append does not steal `v`.
                    unsafe { (api.PyList_Append)(list, v) }
                };
                // SAFETY: `v` is ours (or NULL, which Py_DecRef accepts).
                unsafe { (api.Py_DecRef)(v) };
                if rc != 0 {
                    // SAFETY: release the partial list; the error stays set.
                    unsafe { (api.Py_DecRef)(list) };
                    return std::ptr::null_mut();
                }
            }
            list
        }
    }
}

/// Calls `name()` of the helper module `helpers` (GIL held): a new reference to the result.
pub(crate) fn call_helper(
    api: &Api,
    helpers: *mut PyObject,
    name: &str,
) -> Result<*mut PyObject, String> {
    call_helper_with(api, helpers, name, &[])
}

/// Calls `name(*args)` of the helper module `helpers` (GIL held): a new reference to the
/// result, or the Python error as text.
pub(crate) fn call_helper_with(
    api: &Api,
    helpers: *mut PyObject,
    name: &str,
    args: &[Arg],
) -> Result<*mut PyObject, String> {
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: GIL held; `helpers` is the live helper module; new reference or NULL.
    let f = unsafe { (api.PyObject_GetAttrString)(helpers, cname.as_ptr()) };
    if f.is_null() {
        return Err(fetch_error(api));
    }
    // SAFETY: GIL held; `f` is callable; SetItem steals the argument objects, each checked.
    let r = unsafe {
        let t = (api.PyTuple_New)(args.len() as isize);
        let mut ok = !t.is_null();
        for (i, a) in args.iter().enumerate() {
            if !ok {
                break;
            }
            let o = arg_object(api, a);
            ok = !o.is_null() && (api.PyTuple_SetItem)(t, i as isize, o) == 0;
        }
        let r = if ok {
            (api.PyObject_Call)(f, t, std::ptr::null_mut())
        } else {
            std::ptr::null_mut()
        };
        (api.Py_DecRef)(t);
        (api.Py_DecRef)(f);
        r
    };
    if r.is_null() {
        Err(fetch_error(api))
    } else {
        Ok(r)
    }
}

/// Calls `name()` of the helper module (GIL held) and returns the `str()` of each item of the
/// sequence it returns.
pub(crate) fn call_helper_strings(
    api: &Api,
    helpers: *mut PyObject,
    name: &str,
) -> Result<Vec<String>, String> {
    let r = call_helper(api, helpers, name)?;
    // SAFETY: GIL held; PySequence_Fast gives a list or tuple (new reference) or NULL.
    let seq = unsafe { (api.PySequence_Fast)(r, c"a helper returned no sequence".as_ptr()) };
    // SAFETY: our reference to the result.
    unsafe { (api.Py_DecRef)(r) };
    if seq.is_null() {
        return Err(fetch_error(api));
    }
    let mut out = Vec::new();
    // SAFETY: GIL held; `seq` is a live list or tuple.
    let n = unsafe { (api.PyObject_Size)(seq) };
    let mut failed = None;
    for i in 0..n.max(0) {
        // SAFETY: GIL held; PySequence_Fast's result supports PyTuple/PyList-style access
        // through the generic GetItem, which returns a new reference.
        let item = unsafe {
            let k = (api.PyLong_FromLongLong)(i as i64);
            let item = (api.PyObject_GetItem)(seq, k);
            (api.Py_DecRef)(k);
            item
        };
        if item.is_null() {
            failed = Some(fetch_error(api));
            break;
        }
        let s = object_str(api, item);
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(item) };
        match s {
            Ok(s) => out.push(s),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // SAFETY: our reference.
    unsafe { (api.Py_DecRef)(seq) };
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `str(o)` as a Rust string (GIL held).
pub(crate) fn object_str(api: &Api, o: *mut PyObject) -> Result<String, String> {
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
pub(crate) fn fetch_error(api: &Api) -> String {
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
