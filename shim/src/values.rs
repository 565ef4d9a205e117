//! Packed values: scalars and strings cross in one 24-byte struct instead of one call each.
//!
//! A [`P4sValue`] carries a tag and two words. Lisp fills them to pass arguments (an integer, a
//! float, a string's code units, a borrowed object…) and the shim fills them with a result: a
//! scalar inline, a string copied into the caller's UTF-32 scratch buffer when it fits, and any
//! other object as a new reference with its kind in the tag, so Lisp dispatches without asking.
//!
//! May depend on: last_error, gil, pyerr, vectorcall (and lib).

use crate::gil::{enter, Entry};
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::ffi_types::*;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One value crossing the boundary. Layout: `{int32 tag; int32 aux; int64 a; int64 b;}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct P4sValue {
    /// What the value is: one of the `P4S_*` tags.
    pub tag: i32,
    /// Tag-specific: for a result string, 1 when copied into the scratch buffer.
    pub aux: i32,
    /// First word: the integer, the float's bits, an object pointer or a data pointer.
    pub a: i64,
    /// Second word: a length, or the imaginary part's bits.
    pub b: i64,
}

/// `None` (in and out).
pub const P4S_NONE: i32 = 0;
/// A bool: `a` is 0 or 1 (in and out).
pub const P4S_BOOL: i32 = 1;
/// An int that fits 64 bits: `a` (in and out).
pub const P4S_INT: i32 = 2;
/// A float: `a` holds the IEEE-754 double bits (in and out).
pub const P4S_FLOAT: i32 = 3;
/// A complex: `a` real bits, `b` imaginary bits (in and out).
pub const P4S_COMPLEX: i32 = 4;
/// Out: a str of `b` characters; copied into the scratch buffer when `aux` = 1 (then `a` = 0),
/// else `a` is a new reference to it.
pub const P4S_STR: i32 = 5;
/// Out: bytes, `a` a new reference, `b` the length. In: `a` pointer to `b` bytes.
pub const P4S_BYTES: i32 = 6;
/// Out: a tuple (exactly: subclasses such as namedtuples are [`P4S_OBJECT`]), `a` new
/// reference, `b` its length.
pub const P4S_TUPLE: i32 = 7;
/// Out: a list (exactly; subclasses are [`P4S_OBJECT`]), `a` new reference, `b` its length.
pub const P4S_LIST: i32 = 8;
/// Out: a dict (exactly: `Counter`, `OrderedDict`, `defaultdict`… are [`P4S_OBJECT`]), `a` new
/// reference, `b` its length.
pub const P4S_DICT: i32 = 9;
/// Out: a set or frozenset, `a` new reference, `b` its length.
pub const P4S_SET: i32 = 10;
/// Out: an int beyond 64 bits, `a` new reference (read it with `p4s_long_to_hex`).
pub const P4S_BIGINT: i32 = 11;
/// Out: any other object, `a` new reference. In: `a` a borrowed object.
pub const P4S_OBJECT: i32 = 12;
/// A Lisp character (in and out): `a` is its code point; no reference is held. In Python it is
/// a `py4cl2_cffi.LispCharacter` (see [`char_type`]), which converts back to a character.
pub const P4S_CHAR: i32 = 13;
/// In: a string of `b` UTF-32 code units at `a`.
pub const P4S_STR_UTF32: i32 = 20;
/// In: a string of `b` UTF-8 bytes at `a`.
pub const P4S_STR_UTF8: i32 = 21;
/// In: a string of `b` Latin-1 code units (one byte each) at `a`.
pub const P4S_STR_LATIN1: i32 = 22;
/// In: an integer written in hexadecimal (`-1f`, no `0x`), `b` ASCII bytes at `a`.
pub const P4S_INT_HEX: i32 = 23;

impl P4sValue {
    fn obj(tag: i32, o: *mut PyObject, len: i64) -> Self {
        P4sValue {
            tag,
            aux: 0,
            a: o as i64,
            b: len,
        }
    }
}

/// Makes a new Python object from a packed value (GIL held). NULL with a Python error set on
/// failure (for an unknown tag, or a NULL data pointer with a length: a `TypeError`).
///
/// # Safety
/// Pointers inside `v` must be valid for the lengths it gives.
pub(crate) unsafe fn from_value(api: &Api, v: &P4sValue) -> *mut PyObject {
    // SAFETY: (for the whole body) the GIL is held by the caller; data pointers are valid for
    // their lengths (caller's contract); every constructor returns a new reference or NULL.
    unsafe {
        if matches!(
            v.tag,
            P4S_STR_UTF32 | P4S_STR_LATIN1 | P4S_STR_UTF8 | P4S_BYTES | P4S_INT_HEX
        ) && v.a == 0
            && (v.b != 0 || v.tag == P4S_INT_HEX)
        {
            set_type_error(api, "NULL data pointer in a value passed to py4cl2-cffi");
            return std::ptr::null_mut();
        }
        match v.tag {
            P4S_NONE => {
                (api.Py_IncRef)(api._Py_NoneStruct);
                api._Py_NoneStruct
            }
            P4S_BOOL => (api.PyBool_FromLong)(std::os::raw::c_long::from(v.a != 0)),
            P4S_INT => (api.PyLong_FromLongLong)(v.a),
            P4S_FLOAT => (api.PyFloat_FromDouble)(f64::from_bits(v.a as u64)),
            P4S_COMPLEX => {
                (api.PyComplex_FromDoubles)(f64::from_bits(v.a as u64), f64::from_bits(v.b as u64))
            }
            P4S_STR_UTF32 => (api.PyUnicode_FromKindAndData)(4, v.a as *const _, v.b as isize),
            P4S_STR_LATIN1 => (api.PyUnicode_FromKindAndData)(1, v.a as *const _, v.b as isize),
            P4S_STR_UTF8 => (api.PyUnicode_FromStringAndSize)(v.a as *const c_char, v.b as isize),
            P4S_BYTES => (api.PyBytes_FromStringAndSize)(v.a as *const c_char, v.b as isize),
            P4S_OBJECT => {
                let o = v.a as *mut PyObject;
                if o.is_null() {
                    set_type_error(api, "NULL object passed to py4cl2-cffi");
                    return std::ptr::null_mut();
                }
                (api.Py_IncRef)(o);
                o
            }
            P4S_CHAR => char_object(api, v.a),
            P4S_INT_HEX => {
                let bytes = std::slice::from_raw_parts(v.a as *const u8, v.b as usize);
                let mut text = Vec::with_capacity(bytes.len() + 1);
                text.extend_from_slice(bytes);
                text.push(0);
                (api.PyLong_FromString)(text.as_ptr().cast(), std::ptr::null_mut(), 16)
            }
            _ => {
                set_type_error(api, "unknown value tag passed to py4cl2-cffi");
                std::ptr::null_mut()
            }
        }
    }
}

fn set_type_error(api: &Api, msg: &str) {
    let c = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: GIL held; the type variable is initialised after start.
    unsafe {
        (api.PyErr_SetString)(Api::read_pointer(api.PyExc_TypeError), c.as_ptr());
    }
}

/// The bits of a float result, with a signalling NaN made quiet (same sign and payload, the
/// quiet bit set). Python's arithmetic never makes one, but bytes can (`struct.unpack`), and a
/// Lisp that traps invalid operations (ECL) signals as soon as it boxes one; so every Lisp
/// gets the quiet NaN. Other values keep their exact bits (-0.0, infinities, NaN payloads).
#[inline(always)]
fn float_bits(x: f64) -> i64 {
    const EXP: u64 = 0x7FF0_0000_0000_0000;
    const QUIET: u64 = 0x0008_0000_0000_0000;
    let b = x.to_bits();
    let nan = b & EXP == EXP && b & !(EXP | (1 << 63)) != 0;
    (if nan { b | QUIET } else { b }) as i64
}

/// Whether `t`'s flags have `flag` (GIL held, `t` a type).
#[inline(always)]
fn has_flag(api: &Api, t: *mut PyObject, flag: std::os::raw::c_ulong) -> bool {
    // SAFETY: `t` is a live type object.
    unsafe { (api.PyType_GetFlags)(t) & flag != 0 }
}

/// Converts `o` (borrowed) into a packed value (GIL held). Scalars come inline; a str is copied
/// into `scratch` when it has at most `cap` characters; anything else is a new reference.
/// Returns `P4S_OK` or `P4S_PYERROR` (exception kept).
///
/// # Safety
/// `o` must be live; `scratch` must be valid for `cap` `u32`s (or NULL with `cap` 0).
pub(crate) unsafe fn to_value(
    e: &Entry,
    o: *mut PyObject,
    out: &mut P4sValue,
    scratch: *mut u32,
    cap: i64,
) -> i32 {
    let api = e.api();
    // SAFETY: `o` live, default build layout.
    let t = unsafe { ob_type(o) };
    *out = P4sValue::default();
    // SAFETY: (for the calls below) GIL held; `o` is live and of the type we test.
    unsafe {
        if o == api._Py_NoneStruct {
            out.tag = P4S_NONE;
        } else if t == api.PyFloat_Type {
            out.tag = P4S_FLOAT;
            out.a = float_bits((api.PyFloat_AsDouble)(o));
        } else if t == api.PyUnicode_Type {
            return str_value(e, o, out, scratch, cap);
        } else if t == api.PyBool_Type {
            out.tag = P4S_BOOL;
            out.a = i64::from(o == api._Py_TrueStruct);
        } else if t == api.PyLong_Type || has_flag(api, t, Py_TPFLAGS_LONG_SUBCLASS) {
            let mut overflow = 0;
            let i = (api.PyLong_AsLongLongAndOverflow)(o, &mut overflow);
            if overflow != 0 {
                (api.Py_IncRef)(o);
                *out = P4sValue::obj(P4S_BIGINT, o, 0);
            } else if i == -1 && !(api.PyErr_Occurred)().is_null() {
                return take_python_error(e);
            } else {
                out.tag = P4S_INT;
                out.a = i;
            }
        } else if has_flag(api, t, Py_TPFLAGS_UNICODE_SUBCLASS) {
            if is_char_type(e, t) && (api.PyUnicode_GetLength)(o) == 1 {
                let mut cp = 0u32;
                if (api.PyUnicode_AsUCS4)(o, &mut cp, 1, 0).is_null() {
                    return take_python_error(e);
                }
                out.tag = P4S_CHAR;
                out.a = i64::from(cp);
                return P4S_OK;
            }
            return str_value(e, o, out, scratch, cap);
        } else if t == api.PyComplex_Type || (api.PyType_IsSubtype)(t, api.PyComplex_Type) != 0 {
            out.tag = P4S_COMPLEX;
            out.a = float_bits((api.PyComplex_RealAsDouble)(o));
            out.b = float_bits((api.PyComplex_ImagAsDouble)(o));
        } else if (api.PyType_IsSubtype)(t, api.PyFloat_Type) != 0 {
            out.tag = P4S_FLOAT;
            out.a = float_bits((api.PyFloat_AsDouble)(o));
        } else {
            // Only the exact container types convert: a subclass (a namedtuple, Counter,
            // OrderedDict...) carries behaviour a Lisp list or hash table would lose, so it stays
            // an object unless Lisp defines a lispifier for its type.
            let tag = if t == api.PyTuple_Type {
                P4S_TUPLE
            } else if t == api.PyList_Type {
                P4S_LIST
            } else if t == api.PyDict_Type {
                P4S_DICT
            } else if has_flag(api, t, Py_TPFLAGS_BYTES_SUBCLASS) {
                P4S_BYTES
            } else if t == api.PySet_Type
                || t == api.PyFrozenSet_Type
                || (api.PyType_IsSubtype)(t, api.PySet_Type) != 0
                || (api.PyType_IsSubtype)(t, api.PyFrozenSet_Type) != 0
            {
                P4S_SET
            } else {
                P4S_OBJECT
            };
            let len = if tag == P4S_OBJECT {
                0
            } else {
                (api.PyObject_Size)(o) as i64
            };
            if len < 0 {
                return take_python_error(e);
            }
            (api.Py_IncRef)(o);
            *out = P4sValue::obj(tag, o, len);
        }
    }
    P4S_OK
}

/// Finishes a call: converts `r` (new reference or NULL) into `out`.
#[inline]
pub(crate) fn finish(
    e: &Entry,
    r: *mut PyObject,
    out: *mut P4sValue,
    scratch: *mut u32,
    cap: i64,
) -> i32 {
    if r.is_null() {
        return take_python_error(e);
    }
    if out.is_null() {
        // SAFETY: GIL held; the caller does not want the result.
        unsafe { (e.api().Py_DecRef)(r) };
        return P4S_OK;
    }
    // SAFETY: GIL held; `out`/`scratch` valid (caller's contract).
    let st = unsafe { to_value(e, r, &mut *out, scratch, cap) };
    // SAFETY: `to_value` took its own reference where it keeps the object.
    unsafe { (e.api().Py_DecRef)(r) };
    st
}

/// The address of `py4cl2_cffi.LispCharacter` in the interpreter of generation
/// [`CHAR_TYPE_GENERATION`] (0: not made yet). Written under [`CHAR_TYPE_LOCK`] with the GIL
/// held; read without a lock (a stale address is never compared: its generation differs).
static CHAR_TYPE: AtomicUsize = AtomicUsize::new(0);
static CHAR_TYPE_GENERATION: AtomicU64 = AtomicU64::new(0);
static CHAR_TYPE_LOCK: Mutex<()> = Mutex::new(());
/// The `LispCharacter`s of code points 0..256, made on first use and shared (as Python shares
/// its one-character strs), so sending an ASCII or Latin-1 character allocates nothing. Each
/// holds one reference; emptied when the class is made anew (at the first use after a start).
/// Read and written with the GIL held.
static CHAR_CACHE: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

/// Whether `t` is the `LispCharacter` class of the running interpreter.
#[inline]
fn is_char_type(e: &Entry, t: *mut PyObject) -> bool {
    CHAR_TYPE_GENERATION.load(Ordering::Acquire) == e.runtime().generation()
        && CHAR_TYPE.load(Ordering::Acquire) == t as usize
}

/// The class `py4cl2_cffi.LispCharacter` of the running interpreter (borrowed: the helper
/// module keeps it), fetched from the helper module on first use in each session. It is
/// `class LispCharacter(str): __slots__ = ()` of loader/src/helpers.py, also bound in the
/// public module `py4cl2_cffi` so that pickle finds it. A Lisp character becomes an instance of
/// it holding that one character, which behaves as a str in Python (`==`, hashing,
/// `json.dumps`, concatenation give what the plain str would) and converts back to a Lisp
/// character. NULL with a Python error set on failure (GIL held).
pub(crate) fn char_type(api: &Api) -> *mut PyObject {
    let generation = py4cl2_cffi_loader::generation();
    if CHAR_TYPE_GENERATION.load(Ordering::Acquire) == generation {
        let t = CHAR_TYPE.load(Ordering::Acquire);
        if t != 0 {
            return t as *mut PyObject;
        }
    }
    let _guard = CHAR_TYPE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if CHAR_TYPE_GENERATION.load(Ordering::Acquire) == generation {
        let t = CHAR_TYPE.load(Ordering::Acquire);
        if t != 0 {
            return t as *mut PyObject;
        }
    }
    // SAFETY: GIL held (caller's contract), so the interpreter cannot be freed meanwhile.
    let Some(rt) = (unsafe { py4cl2_cffi_loader::interpreter() }) else {
        set_type_error(api, "py4cl2-cffi: Python is not running");
        return std::ptr::null_mut();
    };
    // SAFETY: GIL held; the helper module is live; a new reference or NULL (error set).
    let t = unsafe { (api.PyObject_GetAttrString)(rt.helpers(), c"LispCharacter".as_ptr()) };
    if !t.is_null() {
        // SAFETY: the helper module keeps the class alive for the life of the interpreter.
        unsafe { (api.Py_DecRef)(t) };
        // The cached instances belong to an earlier session: forget them (not released).
        for slot in &CHAR_CACHE {
            slot.store(0, Ordering::Release);
        }
        CHAR_TYPE.store(t as usize, Ordering::Release);
        CHAR_TYPE_GENERATION.store(generation, Ordering::Release);
    }
    t
}

/// A new `LispCharacter` holding the character of code point `code` (GIL held). NULL with a
/// Python error set when `code` is not a Unicode code point.
fn char_object(api: &Api, code: i64) -> *mut PyObject {
    let Ok(cp) = u32::try_from(code) else {
        set_value_error(
            api,
            "a character code outside Unicode's range passed to py4cl2-cffi",
        );
        return std::ptr::null_mut();
    };
    let t = char_type(api);
    if t.is_null() {
        return t;
    }
    let slot = CHAR_CACHE.get(cp as usize);
    if let Some(slot) = slot {
        let c = slot.load(Ordering::Acquire) as *mut PyObject;
        if !c.is_null() {
            // SAFETY: GIL held; the cache keeps the instance alive.
            unsafe { (api.Py_IncRef)(c) };
            return c;
        }
    }
    // SAFETY: GIL held; `cp` is one UCS-4 code unit (FromKindAndData rejects > 0x10FFFF).
    unsafe {
        let s = (api.PyUnicode_FromKindAndData)(4, std::ptr::addr_of!(cp).cast(), 1);
        if s.is_null() {
            return s;
        }
        let c = vectorcall(api, t, &[s], std::ptr::null_mut());
        (api.Py_DecRef)(s);
        if let (Some(slot), false) = (slot, c.is_null()) {
            (api.Py_IncRef)(c);
            slot.store(c as usize, Ordering::Release);
        }
        c
    }
}

fn set_value_error(api: &Api, msg: &str) {
    let c = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: GIL held; the type variable is initialised after start.
    unsafe {
        (api.PyErr_SetString)(Api::read_pointer(api.PyExc_ValueError), c.as_ptr());
    }
}

/// Packs a str: copied into `scratch` when it fits, else a new reference (GIL held).
///
/// # Safety
/// As for [`to_value`]; `o` is a str.
#[inline]
unsafe fn str_value(
    e: &Entry,
    o: *mut PyObject,
    out: &mut P4sValue,
    scratch: *mut u32,
    cap: i64,
) -> i32 {
    let api = e.api();
    // SAFETY: GIL held; `o` is a live str; `scratch` has room for `cap` code points.
    unsafe {
        let len = (api.PyUnicode_GetLength)(o) as i64;
        if len >= 0 && len <= cap && !scratch.is_null() {
            if len > 0 && (api.PyUnicode_AsUCS4)(o, scratch, cap as isize, 0).is_null() {
                return take_python_error(e);
            }
            *out = P4sValue {
                tag: P4S_STR,
                aux: 1,
                a: 0,
                b: len,
            };
        } else {
            (api.Py_IncRef)(o);
            *out = P4sValue::obj(P4S_STR, o, len);
        }
    }
    P4S_OK
}

export! {
    /// Makes a new object from one packed value. Arguments: `v` points to a value whose data
    /// pointers are valid for their lengths. Returns a new reference, or NULL (Python error
    /// kept, or -2 style shim error if not started).
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); an object inside
    ///   `v` is borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_from_value(v: *const P4sValue) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        if v.is_null() {
            set_last_error("p4s_from_value: NULL value");
            return std::ptr::null_mut();
        }
        // SAFETY: GIL held; `v` valid (caller's contract).
        let o = unsafe { from_value(e.api(), &*v) };
        if o.is_null() {
            take_python_error(&e);
        }
        o
    }
}

export! {
    /// Converts `obj` (borrowed) to a packed value in `out`: scalars inline, a str copied into
    /// `scratch` (UTF-32, `cap` characters) when it fits, other objects as a new reference in
    /// `out.a` with their kind in `out.tag`. Returns 0, -1 (Python error kept) or -2.
    ///
    /// Owns: the caller's `out` value (a new reference in it for non-scalar results: release it
    ///   with `p4s_release_value` or `p4s_decref` of `out.a`); a str copied into the caller's
    ///   `scratch` instead when it fits; `obj` is borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_to_value(obj: *mut PyObject, out: *mut P4sValue, scratch: *mut u32, cap: i64) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        if obj.is_null() || out.is_null() {
            set_last_error("p4s_to_value: NULL argument");
            return P4S_ERROR;
        }
        // SAFETY: GIL held; arguments valid (caller's contract).
        unsafe { to_value(&e, obj, &mut *out, scratch, cap) }
    }
}

/// Builds a tuple or list from packed values.
fn build_sequence(vals: *const P4sValue, n: i64, list: bool) -> *mut PyObject {
    let Some(e) = enter() else {
        return std::ptr::null_mut();
    };
    let api = e.api();
    if n < 0 || (vals.is_null() && n > 0) {
        set_last_error("invalid sequence arguments");
        return std::ptr::null_mut();
    }
    // SAFETY: GIL held.
    let seq = unsafe {
        if list {
            (api.PyList_New)(n as isize)
        } else {
            (api.PyTuple_New)(n as isize)
        }
    };
    if seq.is_null() {
        take_python_error(&e);
        return seq;
    }
    for i in 0..n as usize {
        // SAFETY: `vals` valid for `n` values (caller's contract); GIL held.
        let o = unsafe { from_value(api, &*vals.add(i)) };
        if o.is_null() {
            // SAFETY: GIL held; unset slots are NULL, which dealloc tolerates.
            unsafe { (api.Py_DecRef)(seq) };
            take_python_error(&e);
            return std::ptr::null_mut();
        }
        // SAFETY: `seq` is a fresh tuple/list of length n; SetItem steals `o`.
        unsafe {
            if list {
                (api.PyList_SetItem)(seq, i as isize, o);
            } else {
                (api.PyTuple_SetItem)(seq, i as isize, o);
            }
        }
    }
    seq
}

export! {
    /// A new tuple of `n` packed values (objects in them are borrowed). New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); objects inside the
    ///   values are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_tuple_from(vals: *const P4sValue, n: i64) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        build_sequence(vals, n, false)
    }
}

export! {
    /// A new list of `n` packed values (objects in them are borrowed). New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); objects inside the
    ///   values are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_list_from(vals: *const P4sValue, n: i64) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        build_sequence(vals, n, true)
    }
}

export! {
    /// A new dict from `n` key and value pairs of packed values. New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); objects inside the
    ///   values are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_dict_from(keys: *const P4sValue, vals: *const P4sValue, n: i64) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        let api = e.api();
        if n < 0 || ((keys.is_null() || vals.is_null()) && n > 0) {
            set_last_error("p4s_dict_from: invalid arguments");
            return std::ptr::null_mut();
        }
        // SAFETY: GIL held.
        let d = unsafe { (api.PyDict_New)() };
        if d.is_null() {
            take_python_error(&e);
            return d;
        }
        for i in 0..n as usize {
            // SAFETY: arrays valid for `n` values (caller's contract); GIL held.
            let (k, v) = unsafe { (from_value(api, &*keys.add(i)), from_value(api, &*vals.add(i))) };
            // SAFETY: GIL held; SetItem does not steal; NULLs are checked first.
            let rc = if k.is_null() || v.is_null() { -1 } else { unsafe { (api.PyDict_SetItem)(d, k, v) } };
            // SAFETY: our references (NULL allowed).
            unsafe {
                (api.Py_DecRef)(k);
                (api.Py_DecRef)(v);
            }
            if rc != 0 {
                // SAFETY: release the partial dict.
                unsafe { (api.Py_DecRef)(d) };
                take_python_error(&e);
                return std::ptr::null_mut();
            }
        }
        d
    }
}

export! {
    /// A new set of `n` packed values. New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`); objects inside the
    ///   values are borrowed.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_set_from(vals: *const P4sValue, n: i64) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        let api = e.api();
        if n < 0 || (vals.is_null() && n > 0) {
            set_last_error("p4s_set_from: invalid arguments");
            return std::ptr::null_mut();
        }
        // SAFETY: GIL held; NULL makes an empty set.
        let s = unsafe { (api.PySet_New)(std::ptr::null_mut()) };
        if s.is_null() {
            take_python_error(&e);
            return s;
        }
        for i in 0..n as usize {
            // SAFETY: `vals` valid for `n` (caller's contract); GIL held.
            let o = unsafe { from_value(api, &*vals.add(i)) };
            // SAFETY: GIL held; Add does not steal.
            let rc = if o.is_null() { -1 } else { unsafe { (api.PySet_Add)(s, o) } };
            // SAFETY: ours (NULL allowed).
            unsafe { (api.Py_DecRef)(o) };
            if rc != 0 {
                // SAFETY: release the partial set.
                unsafe { (api.Py_DecRef)(s) };
                take_python_error(&e);
                return std::ptr::null_mut();
            }
        }
        s
    }
}

export! {
    /// Converts the items of a tuple, list or set `obj` into `out` (room for `n` values), like
    /// [`p4s_to_value`]. Strings are copied one after the other into `scratch` (room for `cap`
    /// UTF-32 characters; NULL with `cap` 0 for none) while they fit: such a value has aux 1,
    /// `a` its offset in `scratch` (characters) and `b` its length; the others come as new
    /// references. So a list of short strings converts in this one crossing. Returns the number
    /// of items written (at most `n`), or -1 (Python error kept) / -2. Needs a started Python
    /// (takes the GIL itself); on an error nothing is left owned in `out`.
    ///
    /// Owns: the caller's `out` values: new references for the items not inline or in `scratch`
    ///   (release each with `p4s_release_value`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); nothing is left owned in `out`.
    fn p4s_items(obj: *mut PyObject, out: *mut P4sValue, n: i64, scratch: *mut u32, cap: i64) -> i64, on_panic = i64::from(P4S_ERROR), {
        let Some(e) = enter() else { return i64::from(P4S_ERROR) };
        let api = e.api();
        if obj.is_null() || (out.is_null() && n > 0) || (scratch.is_null() && cap > 0) {
            set_last_error("p4s_items: NULL argument");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: GIL held; PySequence_Fast returns a new list or tuple (or NULL).
        let seq = unsafe { (api.PySequence_Fast)(obj, c"expected a sequence".as_ptr()) };
        if seq.is_null() {
            return i64::from(take_python_error(&e));
        }
        // SAFETY: `seq` is a list or tuple.
        let (is_list, len) = unsafe {
            let t = ob_type(seq);
            let is_list = (api.PyType_GetFlags)(t) & Py_TPFLAGS_LIST_SUBCLASS != 0;
            (is_list, if is_list { (api.PyList_Size)(seq) } else { (api.PyTuple_Size)(seq) })
        };
        let count = (len as i64).min(n);
        let mut status = P4S_OK;
        let mut written = 0;
        let mut used = 0i64;
        for i in 0..count {
            // SAFETY: GIL held, `seq` a live list or tuple; a borrowed item. A list's vector and
            // length are read again for each item, and the index checked against that length,
            // as PyList_GetItem would (converting an item runs no Python code, but this does
            // not depend on it).
            let item = unsafe {
                if is_list {
                    let (items, len) = list_items(seq);
                    if i as isize >= len {
                        break;
                    }
                    *items.add(i as usize)
                } else {
                    (api.PyTuple_GetItem)(seq, i as isize)
                }
            };
            // SAFETY: `out` has room for `n` ≥ `count` values; `scratch` for `cap` characters.
            status = unsafe { item_value(&e, item, &mut *out.add(i as usize), scratch, cap, &mut used) };
            if status != P4S_OK {
                break;
            }
            written += 1;
        }
        if status != P4S_OK {
            for i in 0..written {
                // SAFETY: release the new references written so far.
                unsafe { release_value(api, &*out.add(i as usize)) };
            }
        }
        // SAFETY: our reference.
        unsafe { (api.Py_DecRef)(seq) };
        if status != P4S_OK { i64::from(status) } else { written }
    }
}

/// Converts one item of a container like [`to_value`], a string into `scratch` after the
/// `used` characters already taken there (its offset goes in `a`, and `used` grows by its
/// length).
///
/// # Safety
/// As for [`to_value`]; `scratch` is valid for `cap` characters (or NULL with `cap` 0) and
/// `used` ≤ `cap`.
#[inline(always)]
unsafe fn item_value(
    e: &Entry,
    o: *mut PyObject,
    out: &mut P4sValue,
    scratch: *mut u32,
    cap: i64,
    used: &mut i64,
) -> i32 {
    let rest = if scratch.is_null() {
        std::ptr::null_mut()
    } else {
        // SAFETY: `used` ≤ `cap`, so the pointer stays within (or one past) the buffer.
        unsafe { scratch.add(*used as usize) }
    };
    // SAFETY: the caller's contract; `rest` has room for `cap - used` characters.
    let status = unsafe { to_value(e, o, out, rest, cap - *used) };
    if status == P4S_OK && out.tag == P4S_STR && out.aux == 1 {
        out.a = *used;
        *used += out.b;
    }
    status
}

/// Releases the object a result value owns, if any (GIL held).
///
/// # Safety
/// `v` must have been filled by [`to_value`].
pub(crate) unsafe fn release_value(api: &Api, v: &P4sValue) {
    let owns = matches!(
        v.tag,
        P4S_BYTES | P4S_TUPLE | P4S_LIST | P4S_DICT | P4S_SET | P4S_BIGINT | P4S_OBJECT
    ) || (v.tag == P4S_STR && v.aux == 0);
    if owns && v.a != 0 {
        // SAFETY: the value holds a new reference (see `to_value`).
        unsafe { (api.Py_DecRef)(v.a as *mut PyObject) };
    }
}

export! {
    /// Converts the pairs of dict `obj` into `keys` and `vals` (room for `n` each), like
    /// [`p4s_items`], keys' and values' strings sharing `scratch` (room for `cap` characters).
    /// Returns the number of pairs written, or -1 / -2; on an error nothing is left owned.
    ///
    /// Owns: the caller's `keys` and `vals` values: new references for those not inline or in
    ///   `scratch` (release each with `p4s_release_value`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); nothing is left owned in `keys`/`vals`.
    fn p4s_dict_items(obj: *mut PyObject, keys: *mut P4sValue, vals: *mut P4sValue, n: i64, scratch: *mut u32, cap: i64) -> i64, on_panic = i64::from(P4S_ERROR), {
        let Some(e) = enter() else { return i64::from(P4S_ERROR) };
        let api = e.api();
        if obj.is_null() || ((keys.is_null() || vals.is_null()) && n > 0) || (scratch.is_null() && cap > 0) {
            set_last_error("p4s_dict_items: NULL argument");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: `obj` live.
        if !has_flag(api, unsafe { ob_type(obj) }, Py_TPFLAGS_DICT_SUBCLASS) {
            set_type_error(api, "expected a dict");
            return i64::from(take_python_error(&e));
        }
        let mut pos: isize = 0;
        let mut written: i64 = 0;
        let mut used = 0i64;
        let (mut k, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: GIL held; PyDict_Next yields borrowed references.
        while written < n && unsafe { (api.PyDict_Next)(obj, &mut pos, &mut k, &mut v) } != 0 {
            let i = written as usize;
            // SAFETY: room for `n` values in each array and for `cap` characters in `scratch`.
            let st = unsafe {
                let s1 = item_value(&e, k, &mut *keys.add(i), scratch, cap, &mut used);
                if s1 != P4S_OK { s1 } else {
                    let s2 = item_value(&e, v, &mut *vals.add(i), scratch, cap, &mut used);
                    if s2 != P4S_OK { release_value(api, &*keys.add(i)); }
                    s2
                }
            };
            if st != P4S_OK {
                for j in 0..i {
                    // SAFETY: release what was written.
                    unsafe {
                        release_value(api, &*keys.add(j));
                        release_value(api, &*vals.add(j));
                    }
                }
                return i64::from(st);
            }
            written += 1;
        }
        written
    }
}

export! {
    /// Copies str `obj` as UTF-32 into `buf` (room for `cap` characters). Returns its length in
    /// characters (copied only if ≤ `cap`), or -1 / -2.
    ///
    /// Owns: nothing: copies into the caller's `buf` (NULL, or too small, to get the length only).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running).
    fn p4s_str_utf32(obj: *mut PyObject, buf: *mut u32, cap: i64) -> i64, on_panic = i64::from(P4S_ERROR), {
        let Some(e) = enter() else { return i64::from(P4S_ERROR) };
        let api = e.api();
        if obj.is_null() {
            set_last_error("p4s_str_utf32: NULL object");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: GIL held; `obj` live.
        let len = unsafe { (api.PyUnicode_GetLength)(obj) } as i64;
        if len < 0 {
            return i64::from(take_python_error(&e));
        }
        if len > 0 && len <= cap && !buf.is_null() {
            // SAFETY: `buf` has room for `cap` ≥ `len` code points; no NUL appended.
            if unsafe { (api.PyUnicode_AsUCS4)(obj, buf, cap as isize, 0) }.is_null() {
                return i64::from(take_python_error(&e));
            }
        }
        len
    }
}

export! {
    /// The bytes of a bytes object `obj`, borrowed (valid while it lives); length to `len`.
    ///
    /// Owns: a pointer borrowed from `obj`, valid while `obj` lives; `len` (may be NULL) gets the
    ///   length.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_bytes_data(obj: *mut PyObject, len: *mut i64) -> *const c_char, on_panic = std::ptr::null(), {
        let Some(e) = enter() else { return std::ptr::null() };
        let api = e.api();
        if obj.is_null() {
            set_last_error("p4s_bytes_data: NULL object");
            return std::ptr::null();
        }
        let mut p: *mut c_char = std::ptr::null_mut();
        let mut n = 0isize;
        // SAFETY: GIL held; borrowed buffer.
        if unsafe { (api.PyBytes_AsStringAndSize)(obj, &mut p, &mut n) } != 0 {
            take_python_error(&e);
            return std::ptr::null();
        }
        if !len.is_null() {
            // SAFETY: caller's out parameter.
            unsafe { *len = n as i64 };
        }
        p
    }
}

export! {
    /// A new str holding int `obj` in hexadecimal (`-0x1f` style). New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with the Python exception kept for this thread (`p4s_error_*`) or a shim error
    ///   (`p4s_last_error`; code `P4S_NOT_STARTED` if Python is not running).
    fn p4s_long_to_hex(obj: *mut PyObject) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        if obj.is_null() {
            set_last_error("p4s_long_to_hex: NULL object");
            return std::ptr::null_mut();
        }
        // SAFETY: GIL held.
        let s = unsafe { (e.api().PyNumber_ToBase)(obj, 16) };
        if s.is_null() {
            take_python_error(&e);
        }
        s
    }
}

export! {
    /// Releases the reference a result value owns (strings not copied, containers, objects);
    /// scalars are left alone. Use it to drop values from `p4s_items` you do not keep.
    ///
    /// Owns: releases the reference `v` owns, if any (`v` itself stays the caller's).
    /// GIL: takes it itself (nestable, any thread); Python must be running; a no-op when Python is
    ///   not running.
    /// Fails: never; NULL is ignored.
    fn p4s_release_value(v: *const P4sValue) -> (), on_panic = (), {
        if v.is_null() {
            return;
        }
        if let Some(e) = enter() {
            // SAFETY: `v` was filled by the shim (caller's contract).
            unsafe { release_value(e.api(), &*v) };
        }
    }
}
