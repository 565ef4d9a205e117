//! Calling a Python callable from Rust with a slice of objects: `PyObject_Vectorcall` (3.11+),
//! `PyObject_VectorcallDict` (3.9, 3.10) or a tuple and `PyObject_Call` (3.8).
//!
//! The primitive every module that calls Python uses (values, pyerr, callback, output, buffer,
//! the call-side modules). May depend on: nothing of the crate but `PyObject` (lib); the
//! loader's C-API table.

use crate::PyObject;
use py4cl2_cffi_loader::api::Api;

type PyObj = *mut PyObject;
const NULL: PyObj = std::ptr::null_mut();

/// Calls `callable` with `args` (positional first, then the values of the keyword names in
/// `kwnames`, a tuple of str or NULL), vectorcall style. New reference or NULL (error set).
///
/// # Safety
/// GIL held; all objects live.
pub(crate) unsafe fn vectorcall(
    api: &Api,
    callable: PyObj,
    args: &[PyObj],
    kwnames: PyObj,
) -> PyObj {
    // SAFETY: (whole body) GIL held, objects live (caller's contract); each API returns a new
    // reference or NULL.
    unsafe {
        let nkw = if kwnames.is_null() {
            0
        } else {
            (api.PyTuple_Size)(kwnames) as usize
        };
        if nkw > args.len() {
            set_type_error_text(api, "more keyword names than argument values");
            return NULL;
        }
        let npos = args.len() - nkw;
        if let Some(vc) = api.PyObject_Vectorcall {
            return vc(callable, args.as_ptr(), npos, kwnames);
        }
        let kwargs = if nkw == 0 {
            NULL
        } else {
            let d = (api.PyDict_New)();
            if d.is_null() {
                return NULL;
            }
            for i in 0..nkw {
                if (api.PyDict_SetItem)(
                    d,
                    (api.PyTuple_GetItem)(kwnames, i as isize),
                    args[npos + i],
                ) != 0
                {
                    (api.Py_DecRef)(d);
                    return NULL;
                }
            }
            d
        };
        let r = if let Some(vd) = api.PyObject_VectorcallDict {
            vd(callable, args.as_ptr(), npos, kwargs)
        } else {
            let t = (api.PyTuple_New)(npos as isize);
            if t.is_null() {
                (api.Py_DecRef)(kwargs);
                return NULL;
            }
            for (i, &a) in args[..npos].iter().enumerate() {
                (api.Py_IncRef)(a);
                (api.PyTuple_SetItem)(t, i as isize, a);
            }
            let r = (api.PyObject_Call)(callable, t, kwargs);
            (api.Py_DecRef)(t);
            r
        };
        (api.Py_DecRef)(kwargs);
        r
    }
}

/// Sets a `TypeError` with `msg` (GIL held).
pub(crate) fn set_type_error_text(api: &Api, msg: &str) {
    let c = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: GIL held; the type variable is initialised after start.
    unsafe { (api.PyErr_SetString)(Api::read_pointer(api.PyExc_TypeError), c.as_ptr()) };
}
