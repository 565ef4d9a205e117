//! The few CPython C types the loader and the shim need, declared by hand.
//!
//! We do not use `pyo3-ffi`: its build script needs a Python interpreter at build time and emits
//! link flags for libpython, and both are what this project avoids. Every layout below is the
//! same in CPython 3.8 to 3.13 (checked against each version's headers under the pyenv prefixes; those
//! read by [`ob_type`] and [`list_items`] also in 3.14 and 3.15);
//! the header each comes from is named so a reader can check it.

#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use std::os::raw::{c_char, c_int, c_void};

/// `Py_ssize_t` (pyport.h).
pub type Py_ssize_t = isize;

/// `PyObject` (object.h): opaque here. We only ever hold pointers to it, except that the
/// first two words of every object of a default (not free-threaded) build are the reference
/// count and the type pointer, which [`ob_type`] reads.
#[repr(C)]
pub struct PyObject {
    _private: [u8; 0],
}

/// `Py_TYPE(o)` (object.h, a macro): the type pointer at offset 8 of every object in a
/// default build of CPython 3.8–3.13.
///
/// # Safety
/// `o` must point to a live Python object of a default (not free-threaded) build.
#[inline(always)]
pub unsafe fn ob_type(o: *mut PyObject) -> *mut PyObject {
    // SAFETY: the caller guarantees `o` is a live object; `ob_type` follows `ob_refcnt`
    // (one pointer-sized word) in `PyObject` for every supported version.
    unsafe { *(o as *const *mut PyObject).add(1) }
}

/// The live items of a list (`PyListObject`, cpython/listobject.h): its `ob_item` vector and
/// its length `ob_size`, read from the object as `PyList_GET_ITEM`/`PyList_GET_SIZE` do. The
/// layout (a variable-size header of three words, then `PyObject **ob_item`) is the same in a
/// default build of CPython 3.8 to 3.15 (checked in each version's headers, Debian's
/// libpython3.14-dev and libpython3.15-dev for the two newest); tuples differ from 3.14 (a
/// cached hash precedes their items), so they are read through `PyTuple_GetItem`.
///
/// # Safety
/// `o` must point to a live list, or an instance of a subclass of list, of a default (not
/// free-threaded) build, and the GIL must be held. The pair is valid only until Python code
/// runs: a caller that may run any re-reads it before each use.
#[inline(always)]
pub unsafe fn list_items(o: *mut PyObject) -> (*const *mut PyObject, Py_ssize_t) {
    // SAFETY: the caller guarantees a live list: `ob_size` is the third word of its header and
    // `ob_item` the fourth.
    unsafe {
        let words = o as *const usize;
        (
            *words.add(3) as *const *mut PyObject,
            *words.add(2) as Py_ssize_t,
        )
    }
}

/// `PyGILState_STATE` (pystate.h): an enum passed back to `PyGILState_Release`.
pub type PyGILState_STATE = c_int;

/// `PyThreadState` (pystate.h): opaque.
#[repr(C)]
pub struct PyThreadState {
    _private: [u8; 0],
}

/// `Py_buffer` (object.h in 3.8–3.10, pybuffer.h from 3.11; same layout throughout).
#[repr(C)]
#[derive(Debug)]
pub struct Py_buffer {
    /// Start of the memory.
    pub buf: *mut c_void,
    /// The exporter, a new reference while the view is held.
    pub obj: *mut PyObject,
    /// Total length in bytes.
    pub len: Py_ssize_t,
    /// Size of one item in bytes.
    pub itemsize: Py_ssize_t,
    /// Non-zero for read-only memory.
    pub readonly: c_int,
    /// Number of dimensions.
    pub ndim: c_int,
    /// struct-module format string, or NULL for `"B"`.
    pub format: *mut c_char,
    /// `ndim` extents.
    pub shape: *mut Py_ssize_t,
    /// `ndim` byte strides.
    pub strides: *mut Py_ssize_t,
    /// PIL-style sub-offsets (NULL for numpy).
    pub suboffsets: *mut Py_ssize_t,
    /// Exporter's private pointer.
    pub internal: *mut c_void,
}

impl Py_buffer {
    /// An all-zero buffer to pass to `PyObject_GetBuffer`.
    pub const fn zeroed() -> Self {
        Py_buffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        }
    }
}

/// `PyCFunction` (methodobject.h) with `METH_VARARGS | METH_KEYWORDS`.
pub type PyCFunctionWithKeywords =
    unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> *mut PyObject;

/// `PyMethodDef` (methodobject.h).
#[repr(C)]
pub struct PyMethodDef {
    /// Name of the method.
    pub ml_name: *const c_char,
    /// The C function (cast per `ml_flags`).
    pub ml_meth: Option<PyCFunctionWithKeywords>,
    /// `METH_*` flags.
    pub ml_flags: c_int,
    /// Docstring or NULL.
    pub ml_doc: *const c_char,
}

/// `PyCapsule_Destructor` (pycapsule.h).
pub type PyCapsule_Destructor = unsafe extern "C" fn(*mut PyObject);

/// `METH_VARARGS` (methodobject.h).
pub const METH_VARARGS: c_int = 0x0001;
/// `METH_KEYWORDS` (methodobject.h).
pub const METH_KEYWORDS: c_int = 0x0002;
/// `PyBUF_SIMPLE` … (object.h / pybuffer.h).
pub const PyBUF_SIMPLE: c_int = 0;
/// Request a writable buffer.
pub const PyBUF_WRITABLE: c_int = 0x0001;
/// Request the format string.
pub const PyBUF_FORMAT: c_int = 0x0004;
/// Request the shape.
pub const PyBUF_ND: c_int = 0x0008;
/// Request shape and strides.
pub const PyBUF_STRIDES: c_int = 0x0010 | PyBUF_ND;
/// Read-only, strided, with format (`PyBUF_RECORDS_RO`).
pub const PyBUF_RECORDS_RO: c_int = PyBUF_STRIDES | PyBUF_FORMAT;
/// `PyBUF_READ` for `PyMemoryView_FromMemory`.
pub const PyBUF_READ: c_int = 0x100;
/// `PyBUF_WRITE` for `PyMemoryView_FromMemory`.
pub const PyBUF_WRITE: c_int = 0x200;
/// `Py_file_input` (compile.h / pythonrun.h).
pub const Py_file_input: c_int = 257;
/// `Py_eval_input` (compile.h / pythonrun.h).
pub const Py_eval_input: c_int = 258;
/// `Py_TPFLAGS_LONG_SUBCLASS` (object.h).
pub const Py_TPFLAGS_LONG_SUBCLASS: std::os::raw::c_ulong = 1 << 24;
/// `Py_TPFLAGS_LIST_SUBCLASS` (object.h).
pub const Py_TPFLAGS_LIST_SUBCLASS: std::os::raw::c_ulong = 1 << 25;
/// `Py_TPFLAGS_TUPLE_SUBCLASS` (object.h).
pub const Py_TPFLAGS_TUPLE_SUBCLASS: std::os::raw::c_ulong = 1 << 26;
/// `Py_TPFLAGS_BYTES_SUBCLASS` (object.h).
pub const Py_TPFLAGS_BYTES_SUBCLASS: std::os::raw::c_ulong = 1 << 27;
/// `Py_TPFLAGS_UNICODE_SUBCLASS` (object.h).
pub const Py_TPFLAGS_UNICODE_SUBCLASS: std::os::raw::c_ulong = 1 << 28;
/// `Py_TPFLAGS_DICT_SUBCLASS` (object.h).
pub const Py_TPFLAGS_DICT_SUBCLASS: std::os::raw::c_ulong = 1 << 29;
/// `Py_TPFLAGS_BASE_EXC_SUBCLASS` (object.h).
pub const Py_TPFLAGS_BASE_EXC_SUBCLASS: std::os::raw::c_ulong = 1 << 30;
/// `Py_TPFLAGS_TYPE_SUBCLASS` (object.h).
pub const Py_TPFLAGS_TYPE_SUBCLASS: std::os::raw::c_ulong = 1 << 31;
