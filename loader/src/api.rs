//! The table of CPython C-API functions and data, resolved by name from the loaded libpython.
//!
//! One field per C symbol, named exactly as CPython names it; the `c_api!` macro turns each
//! field name into the symbol string, so the two cannot drift. Only real exported functions
//! and data are bound, never header macros (`Py_INCREF` is a macro, `Py_IncRef` the function).
//! Required symbols exist in every CPython 3.8–3.13; a missing one fails the start with its
//! name. Optional ones carry the first version that exports them. Groups follow the headers.

#![allow(non_snake_case)]

use crate::ffi_types::*;
use crate::Error;
use libloading::os::unix::Library;
use std::os::raw::{c_char, c_double, c_int, c_long, c_longlong, c_ulong, c_ulonglong, c_void};

type PyObj = *mut PyObject;

macro_rules! c_api {
    (
        required { $( $(#[$rm:meta])* $rname:ident : fn($($rarg:ty),* $(,)?) $(-> $rret:ty)? ; )* }
        optional { $( $(#[$om:meta])* $oname:ident : fn($($oarg:ty),* $(,)?) $(-> $oret:ty)? ; )* }
        data { $( $(#[$dm:meta])* $dname:ident ; )* }
        pointers { $( $(#[$pm:meta])* $pname:ident ; )* }
    ) => {
        /// Every C-API entry point and datum the loader and the shim use, resolved at start.
        ///
        /// Function pointers point into the mapped libpython: the table must not be used after
        /// the interpreter that resolved it has been stopped (the loader drops it first). It is
        /// neither `Copy` nor `Clone`, so that no copy of a function pointer can outlive the
        /// `Runtime` that owns the table together with its library.
        pub struct Api {
            $( $(#[$rm])* pub $rname: unsafe extern "C" fn($($rarg),*) $(-> $rret)?, )*
            $( $(#[$om])* pub $oname: Option<unsafe extern "C" fn($($oarg),*) $(-> $oret)?>, )*
            $( $(#[$dm])* pub $dname: PyObj, )*
            $( $(#[$pm])* pub $pname: PyObj, )*
        }

        // SAFETY: the table holds plain function and data addresses inside libpython, which
        // are valid from any thread while the library stays mapped; CPython itself serialises
        // their use through the GIL, which callers must hold per the C-API rules.
        unsafe impl Send for Api {}
        // SAFETY: as for `Send`: the table is never mutated after resolution.
        unsafe impl Sync for Api {}

        impl Api {
            /// Resolves every symbol from `lib`.
            ///
            /// # Safety
            /// `lib` must be a CPython 3.8–3.13 shared library, so that each symbol found has
            /// the C type declared here; `pointers` entries must already be initialised data
            /// (they are read only after `Py_Initialize`, see [`Api::read_pointer`]).
            pub(crate) unsafe fn resolve(lib: &Library) -> Result<Self, Error> {
                Ok(Api {
                    $( $rname: {
                        // SAFETY: the caller guarantees `lib` is a libpython whose exported
                        // symbol of this name has the declared C signature.
                        let sym = unsafe { lib.get::<unsafe extern "C" fn($($rarg),*) $(-> $rret)?>(
                            concat!(stringify!($rname), "\0").as_bytes()) };
                        *sym.map_err(|source| Error::MissingSymbol {
                            name: stringify!($rname), source })?
                    }, )*
                    $( $oname: {
                        // SAFETY: as above; a missing optional symbol is simply `None`.
                        let sym = unsafe { lib.get::<unsafe extern "C" fn($($oarg),*) $(-> $oret)?>(
                            concat!(stringify!($oname), "\0").as_bytes()) };
                        sym.ok().map(|s| *s)
                    }, )*
                    $( $dname: {
                        // SAFETY: data symbols are static objects inside libpython; we take
                        // their address only.
                        let sym = unsafe { lib.get::<*mut PyObject>(
                            concat!(stringify!($dname), "\0").as_bytes()) };
                        let sym = sym.map_err(|source| Error::MissingSymbol {
                            name: stringify!($dname), source })?;
                        // `Symbol<*mut T>` derefs to the symbol's address itself.
                        *sym
                    }, )*
                    $( $pname: {
                        // SAFETY: as above: `PyExc_*` are `PyObject *` variables; we keep the
                        // variable's address and read it after initialisation.
                        let sym = unsafe { lib.get::<*mut PyObject>(
                            concat!(stringify!($pname), "\0").as_bytes()) };
                        let sym = sym.map_err(|source| Error::MissingSymbol {
                            name: stringify!($pname), source })?;
                        *sym
                    }, )*
                })
            }

            /// Reads the `PyObject *` stored in a `pointers` entry (e.g. `PyExc_TypeError`).
            ///
            /// # Safety
            /// The interpreter must be initialised and `slot` must be one of this table's
            /// `pointers` fields.
            pub unsafe fn read_pointer(slot: PyObj) -> PyObj {
                // SAFETY: `slot` is the address of a `PyObject *` variable in libpython.
                unsafe { *(slot as *const PyObj) }
            }
        }
    };
}

c_api! {
    required {
        // --- pylifecycle.h ---
        Py_InitializeEx: fn(c_int);
        Py_FinalizeEx: fn() -> c_int;
        Py_IsInitialized: fn() -> c_int;
        /// Deprecated in 3.11 but exported through 3.13; sets the program name so that a
        /// venv's `pyvenv.cfg` next to the executable is honoured.
        Py_SetProgramName: fn(*const libc::wchar_t);
        Py_GetVersion: fn() -> *const c_char;
        Py_DecodeLocale: fn(*const c_char, *mut usize) -> *mut libc::wchar_t;
        PyMem_RawFree: fn(*mut c_void);
        // --- objimpl.h ---
        PyObject_SetArenaAllocator: fn(*mut crate::arena::PyObjectArenaAllocator);

        // --- ceval.h / pystate.h ---
        PyEval_SaveThread: fn() -> *mut PyThreadState;
        PyEval_RestoreThread: fn(*mut PyThreadState);
        PyGILState_Ensure: fn() -> PyGILState_STATE;
        PyGILState_Release: fn(PyGILState_STATE);
        PyGILState_Check: fn() -> c_int;
        PyGILState_GetThisThreadState: fn() -> *mut PyThreadState;
        PyThreadState_SetAsyncExc: fn(c_ulong, PyObj) -> c_int;
        Py_GetRecursionLimit: fn() -> c_int;
        Py_SetRecursionLimit: fn(c_int);
        // --- pythread.h ---
        PyThread_get_thread_ident: fn() -> c_ulong;

        // --- object.h ---
        Py_IncRef: fn(PyObj);
        Py_DecRef: fn(PyObj);
        PyObject_Repr: fn(PyObj) -> PyObj;
        PyObject_Str: fn(PyObj) -> PyObj;
        PyObject_GetAttr: fn(PyObj, PyObj) -> PyObj;
        PyObject_GetAttrString: fn(PyObj, *const c_char) -> PyObj;
        PyObject_SetAttr: fn(PyObj, PyObj, PyObj) -> c_int;
        PyObject_SetAttrString: fn(PyObj, *const c_char, PyObj) -> c_int;
        PyObject_HasAttrString: fn(PyObj, *const c_char) -> c_int;
        PyObject_IsTrue: fn(PyObj) -> c_int;
        PyObject_IsInstance: fn(PyObj, PyObj) -> c_int;
        PyObject_RichCompareBool: fn(PyObj, PyObj, c_int) -> c_int;
        PyObject_Hash: fn(PyObj) -> isize;
        PyObject_Dir: fn(PyObj) -> PyObj;
        PyCallable_Check: fn(PyObj) -> c_int;
        PyType_GetFlags: fn(PyObj) -> c_ulong;
        PyType_IsSubtype: fn(PyObj, PyObj) -> c_int;

        // --- abstract.h ---
        PyObject_Call: fn(PyObj, PyObj, PyObj) -> PyObj;
        PyObject_CallObject: fn(PyObj, PyObj) -> PyObj;
        PyObject_GetItem: fn(PyObj, PyObj) -> PyObj;
        PyObject_SetItem: fn(PyObj, PyObj, PyObj) -> c_int;
        PyObject_DelItem: fn(PyObj, PyObj) -> c_int;
        PyObject_Size: fn(PyObj) -> Py_ssize_t;
        PyObject_GetIter: fn(PyObj) -> PyObj;
        PyIter_Next: fn(PyObj) -> PyObj;
        PyObject_GetBuffer: fn(PyObj, *mut Py_buffer, c_int) -> c_int;
        PyBuffer_Release: fn(*mut Py_buffer);
        PyNumber_ToBase: fn(PyObj, c_int) -> PyObj;
        PySequence_Fast: fn(PyObj, *const c_char) -> PyObj;

        // --- longobject.h ---
        PyLong_FromLong: fn(c_long) -> PyObj;
        PyLong_FromLongLong: fn(c_longlong) -> PyObj;
        PyLong_FromUnsignedLongLong: fn(c_ulonglong) -> PyObj;
        PyLong_FromString: fn(*const c_char, *mut *mut c_char, c_int) -> PyObj;
        PyLong_AsLongLongAndOverflow: fn(PyObj, *mut c_int) -> c_longlong;
        PyLong_AsDouble: fn(PyObj) -> c_double;

        // --- floatobject.h / complexobject.h / boolobject.h ---
        PyFloat_FromDouble: fn(c_double) -> PyObj;
        PyFloat_AsDouble: fn(PyObj) -> c_double;
        PyComplex_FromDoubles: fn(c_double, c_double) -> PyObj;
        PyComplex_RealAsDouble: fn(PyObj) -> c_double;
        PyComplex_ImagAsDouble: fn(PyObj) -> c_double;
        PyBool_FromLong: fn(c_long) -> PyObj;

        // --- unicodeobject.h ---
        PyUnicode_FromStringAndSize: fn(*const c_char, Py_ssize_t) -> PyObj;
        PyUnicode_FromString: fn(*const c_char) -> PyObj;
        PyUnicode_FromKindAndData: fn(c_int, *const c_void, Py_ssize_t) -> PyObj;
        PyUnicode_AsUTF8AndSize: fn(PyObj, *mut Py_ssize_t) -> *const c_char;
        PyUnicode_AsUCS4: fn(PyObj, *mut u32, Py_ssize_t, c_int) -> *mut u32;
        PyUnicode_GetLength: fn(PyObj) -> Py_ssize_t;
        PyUnicode_InternFromString: fn(*const c_char) -> PyObj;

        // --- bytesobject.h ---
        PyBytes_FromStringAndSize: fn(*const c_char, Py_ssize_t) -> PyObj;
        PyBytes_AsStringAndSize: fn(PyObj, *mut *mut c_char, *mut Py_ssize_t) -> c_int;

        // --- tupleobject.h / listobject.h / dictobject.h / setobject.h ---
        PyTuple_New: fn(Py_ssize_t) -> PyObj;
        PyTuple_Size: fn(PyObj) -> Py_ssize_t;
        PyTuple_GetItem: fn(PyObj, Py_ssize_t) -> PyObj;
        PyTuple_SetItem: fn(PyObj, Py_ssize_t, PyObj) -> c_int;
        PyList_New: fn(Py_ssize_t) -> PyObj;
        PyList_Size: fn(PyObj) -> Py_ssize_t;
        PyList_GetItem: fn(PyObj, Py_ssize_t) -> PyObj;
        PyList_SetItem: fn(PyObj, Py_ssize_t, PyObj) -> c_int;
        PyList_Append: fn(PyObj, PyObj) -> c_int;
        PyDict_New: fn() -> PyObj;
        PyDict_SetItem: fn(PyObj, PyObj, PyObj) -> c_int;
        PyDict_SetItemString: fn(PyObj, *const c_char, PyObj) -> c_int;
        PyDict_GetItemWithError: fn(PyObj, PyObj) -> PyObj;
        PyDict_GetItemString: fn(PyObj, *const c_char) -> PyObj;
        PyDict_Next: fn(PyObj, *mut Py_ssize_t, *mut PyObj, *mut PyObj) -> c_int;
        PyDict_Size: fn(PyObj) -> Py_ssize_t;
        PyDict_Keys: fn(PyObj) -> PyObj;
        PySet_New: fn(PyObj) -> PyObj;
        PySet_Add: fn(PyObj, PyObj) -> c_int;

        // --- import.h / pythonrun.h / modsupport.h ---
        PyImport_ImportModule: fn(*const c_char) -> PyObj;
        PyImport_AddModule: fn(*const c_char) -> PyObj;
        PyImport_GetModuleDict: fn() -> PyObj;
        PyModule_GetDict: fn(PyObj) -> PyObj;
        PyEval_GetBuiltins: fn() -> PyObj;
        PyRun_StringFlags: fn(*const c_char, c_int, PyObj, PyObj, *mut c_void) -> PyObj;
        PyRun_SimpleStringFlags: fn(*const c_char, *mut c_void) -> c_int;
        Py_CompileString: fn(*const c_char, *const c_char, c_int) -> PyObj;
        PyEval_EvalCode: fn(PyObj, PyObj, PyObj) -> PyObj;

        // --- pyerrors.h ---
        PyErr_Occurred: fn() -> PyObj;
        PyErr_Fetch: fn(*mut PyObj, *mut PyObj, *mut PyObj);
        PyErr_Restore: fn(PyObj, PyObj, PyObj);
        PyErr_NormalizeException: fn(*mut PyObj, *mut PyObj, *mut PyObj);
        PyErr_Clear: fn();
        PyErr_SetString: fn(PyObj, *const c_char);
        PyErr_SetObject: fn(PyObj, PyObj);
        PyErr_ExceptionMatches: fn(PyObj) -> c_int;
        PyErr_GivenExceptionMatches: fn(PyObj, PyObj) -> c_int;
        PyErr_Print: fn();
        PyException_SetTraceback: fn(PyObj, PyObj) -> c_int;
        PyException_GetTraceback: fn(PyObj) -> PyObj;
        PyErr_NewException: fn(*const c_char, PyObj, PyObj) -> PyObj;

        // --- methodobject.h / pycapsule.h / memoryobject.h ---
        PyCFunction_NewEx: fn(*mut PyMethodDef, PyObj, PyObj) -> PyObj;
        PyCapsule_New: fn(*mut c_void, *const c_char, Option<PyCapsule_Destructor>) -> PyObj;
        PyCapsule_GetPointer: fn(PyObj, *const c_char) -> *mut c_void;
        PyMemoryView_FromMemory: fn(*mut c_char, Py_ssize_t, c_int) -> PyObj;
        PyMemoryView_FromBuffer: fn(*const Py_buffer) -> PyObj;
        PyMemoryView_FromObject: fn(PyObj) -> PyObj;

        // --- sysmodule.h ---
        PySys_GetObject: fn(*const c_char) -> PyObj;
        PySys_SetObject: fn(*const c_char, PyObj) -> c_int;
    }
    optional {
        /// 3.9+
        PyObject_VectorcallDict: fn(PyObj, *const PyObj, usize, PyObj) -> PyObj;
        /// 3.9+
        PyObject_VectorcallMethod: fn(PyObj, *const PyObj, usize, PyObj) -> PyObj;
        /// 3.9+
        PyObject_CallNoArgs: fn(PyObj) -> PyObj;
        /// 3.11+ (an inline function in 3.9 and 3.10)
        PyObject_Vectorcall: fn(PyObj, *const PyObj, usize, PyObj) -> PyObj;
        /// 3.11+ (an inline function before)
        PyObject_CallOneArg: fn(PyObj, PyObj) -> PyObj;
        /// 3.12+
        PyErr_GetRaisedException: fn() -> PyObj;
        /// 3.12+
        PyErr_SetRaisedException: fn(PyObj);
        /// 3.14.1+ and 3.15 (unstable API): the C stack range CPython checks the stack pointer
        /// against; see `stack.rs` for why a Lisp's own stacks need it.
        PyUnstable_ThreadState_SetStackProtection: fn(*mut PyThreadState, *mut c_void, usize) -> c_int;
    }
    data {
        /// `Py_None` is the address of this struct.
        _Py_NoneStruct;
        /// `Py_True`.
        _Py_TrueStruct;
        /// `Py_False`.
        _Py_FalseStruct;
        /// `Py_NotImplemented`.
        _Py_NotImplementedStruct;
        PyLong_Type;
        PyFloat_Type;
        PyComplex_Type;
        PyBool_Type;
        PyUnicode_Type;
        PyBytes_Type;
        PyTuple_Type;
        PyList_Type;
        PyDict_Type;
        PySet_Type;
        PyFrozenSet_Type;
        PyType_Type;
        PyCapsule_Type;
        PyMemoryView_Type;
    }
    pointers {
        PyExc_BaseException;
        PyExc_Exception;
        PyExc_TypeError;
        PyExc_ValueError;
        PyExc_KeyError;
        PyExc_IndexError;
        PyExc_AttributeError;
        PyExc_ImportError;
        PyExc_RuntimeError;
        PyExc_OverflowError;
        PyExc_MemoryError;
        PyExc_NameError;
        PyExc_StopIteration;
        PyExc_SystemExit;
        PyExc_KeyboardInterrupt;
    }
}

#[cfg(test)]
mod tests {
    // Resolution against every real libpython is exercised by the integration tests in
    // `loader/tests/`, which need interpreters on the machine.
}
