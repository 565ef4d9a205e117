//! Arrays without numpy's C API: the buffer protocol out of Python, memoryviews into it.
//!
//! [`p4s_buffer_get`] exposes any buffer exporter (a numpy array of any dtype, order or
//! strides; bytes; array.array) as data pointer, format, shape and strides;
//! [`p4s_buffer_copy`] copies its elements in C (row-major) order into Lisp memory, with one
//! `memcpy` when the source is C-contiguous; [`p4s_buffer_objects`] converts the elements of an
//! object array instead. [`p4s_memoryview`] wraps Lisp memory as a memoryview of a given format
//! and shape, which `numpy.asarray` turns into an array sharing it.
//!
//! May depend on: last_error, gil, pyerr, values, vectorcall (and lib).

use crate::gil::enter;
use crate::last_error::set_last_error;
use crate::pyerr::take_python_error;
use crate::values::{release_value, to_value, P4sValue};
use crate::vectorcall::vectorcall;
use crate::{PyObject, P4S_ERROR, P4S_OK};
use py4cl2_cffi_loader::ffi_types::*;
use std::ffi::{c_char, c_void};

/// A held buffer. Layout: `{void *data; int64 len, itemsize; int32 ndim, readonly;
/// const char *format; const int64 *shape, *strides; void *view;}`.
#[repr(C)]
#[derive(Debug)]
pub struct P4sBuffer {
    /// Start of the memory.
    pub data: *mut c_void,
    /// Total bytes.
    pub len: i64,
    /// Bytes per element.
    pub itemsize: i64,
    /// Number of dimensions (0 for a scalar-like buffer).
    pub ndim: i32,
    /// 1 if read-only.
    pub readonly: i32,
    /// struct-module format (`d`, `<f`, `Zd`, `?`, `q`…), NUL-terminated.
    pub format: *const c_char,
    /// `ndim` extents.
    pub shape: *const i64,
    /// `ndim` byte strides.
    pub strides: *const i64,
    /// The shim's `Py_buffer` (released by `p4s_buffer_release`).
    pub view: *mut c_void,
}

export! {
    /// Gets the buffer of `obj` (read-only unless `writable` ≠ 0) into `out`, which must later
    /// be given to `p4s_buffer_release`. Returns 0, -1 (e.g. `TypeError`: not a buffer) or -2.
    ///
    /// Owns: the caller's `out`, holding a buffer view: give it to `p4s_buffer_release` exactly
    ///   once; `data`, `format`, `shape`, `strides` are borrowed until then.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); `out` untouched on failure.
    fn p4s_buffer_get(obj: *mut PyObject, writable: i32, out: *mut P4sBuffer) -> i32, on_panic = P4S_ERROR, {
        let Some(e) = enter() else { return P4S_ERROR };
        if obj.is_null() || out.is_null() {
            set_last_error("p4s_buffer_get: NULL argument");
            return P4S_ERROR;
        }
        let mut view = Box::new(Py_buffer::zeroed());
        let flags = PyBUF_RECORDS_RO | if writable != 0 { PyBUF_WRITABLE } else { 0 };
        // SAFETY: GIL held; `view` is a zeroed Py_buffer we own.
        if unsafe { (e.api().PyObject_GetBuffer)(obj, &mut *view, flags) } != 0 {
            return take_python_error(&e);
        }
        let v = Box::into_raw(view);
        // SAFETY: `v` was filled by GetBuffer; `out` is the caller's struct.
        unsafe {
            let b = &*v;
            *out = P4sBuffer {
                data: b.buf,
                len: b.len as i64,
                itemsize: b.itemsize as i64,
                ndim: b.ndim,
                readonly: b.readonly,
                format: if b.format.is_null() { c"B".as_ptr() } else { b.format },
                shape: b.shape as *const i64,
                strides: b.strides as *const i64,
                view: v.cast(),
            };
        }
        P4S_OK
    }
}

export! {
    /// Releases a buffer from `p4s_buffer_get` (and clears `view`); a second call is a no-op.
    ///
    /// Owns: releases the view held in `buf` and clears `buf.view`; NULL `buf` or a released one is
    ///   a no-op.
    /// GIL: takes it itself (nestable, any thread); Python must be running; when Python is not
    ///   running the view is left (it died with the interpreter).
    /// Fails: never; returns nothing.
    fn p4s_buffer_release(buf: *mut P4sBuffer) -> (), on_panic = (), {
        if buf.is_null() {
            return;
        }
        // SAFETY: `buf` is the caller's struct, filled by `p4s_buffer_get`.
        let v = unsafe { (*buf).view } as *mut Py_buffer;
        if v.is_null() {
            return;
        }
        if let Some(e) = enter() {
            // SAFETY: GIL held; `v` was filled by GetBuffer and not released yet.
            unsafe {
                (e.api().PyBuffer_Release)(v);
                drop(Box::from_raw(v));
                (*buf).view = std::ptr::null_mut();
            }
        }
    }
}

/// Copies the elements of an `ndim`-dimensional strided block into `dest` in C order.
///
/// # Safety
/// `src` with `shape`/`strides` must address valid memory; `dest` must have room for
/// `product(shape) * itemsize` bytes.
unsafe fn copy_strided(
    src: *const u8,
    shape: &[i64],
    strides: &[i64],
    itemsize: usize,
    dest: *mut u8,
) -> *mut u8 {
    if shape.is_empty() {
        // SAFETY: one element at `src`, room at `dest` (caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(src, dest, itemsize) };
        // SAFETY: stays within the destination.
        return unsafe { dest.add(itemsize) };
    }
    let n = shape[0].max(0) as usize;
    if shape.len() == 1 && strides[0] == itemsize as i64 {
        // SAFETY: a contiguous run of `n` elements.
        unsafe { std::ptr::copy_nonoverlapping(src, dest, n * itemsize) };
        // SAFETY: stays within the destination.
        return unsafe { dest.add(n * itemsize) };
    }
    let mut d = dest;
    for i in 0..n {
        // SAFETY: element `i` along this axis is within the exporter's memory.
        let s = unsafe { src.offset((i as i64 * strides[0]) as isize) };
        if shape.len() == 1 {
            // SAFETY: one element.
            unsafe { std::ptr::copy_nonoverlapping(s, d, itemsize) };
            // SAFETY: stays within the destination.
            d = unsafe { d.add(itemsize) };
        } else {
            // SAFETY: recursion over the remaining axes, same contract.
            d = unsafe { copy_strided(s, &shape[1..], &strides[1..], itemsize, d) };
        }
    }
    d
}

export! {
    /// Copies the elements of a held buffer in C (row-major) order into `dest`, which has room
    /// for `dest_len` bytes (it must be at least `len`). Works for any strides; one memcpy when
    /// the buffer is C-contiguous. Does not need the GIL. Returns 0 or -2.
    ///
    /// Owns: nothing: copies into the caller's `dest`.
    /// GIL: not needed (the held view keeps the memory alive).
    /// Fails: -2 (`p4s_last_error`) for NULL `buf`/`dest`, a released buffer or a too small `dest`.
    fn p4s_buffer_copy(buf: *const P4sBuffer, dest: *mut c_void, dest_len: i64) -> i32, on_panic = P4S_ERROR, {
        if buf.is_null() || dest.is_null() {
            set_last_error("p4s_buffer_copy: NULL argument");
            return P4S_ERROR;
        }
        // SAFETY: the caller's buffer, filled by `p4s_buffer_get` and not released.
        let b = unsafe { &*buf };
        if b.view.is_null() {
            set_last_error("p4s_buffer_copy: the buffer was released");
            return P4S_ERROR;
        }
        if dest_len < b.len {
            set_last_error("p4s_buffer_copy: destination too small");
            return P4S_ERROR;
        }
        let nd = b.ndim.max(0) as usize;
        // SAFETY: shape/strides have `ndim` entries while the buffer is held.
        let (shape, strides) = unsafe {
            if nd == 0 || b.shape.is_null() {
                (&[][..], &[][..])
            } else {
                (std::slice::from_raw_parts(b.shape, nd), std::slice::from_raw_parts(b.strides, nd))
            }
        };
        let itemsize = b.itemsize as usize;
        let mut expect = itemsize as i64;
        let mut contiguous = true;
        for k in (0..nd).rev() {
            if shape[k] > 1 && strides[k] != expect {
                contiguous = false;
                break;
            }
            expect *= shape[k];
        }
        if contiguous || nd == 0 {
            // SAFETY: `len` bytes at `data`; `dest` has room (checked above).
            unsafe { std::ptr::copy_nonoverlapping(b.data as *const u8, dest as *mut u8, b.len as usize) };
        } else {
            // SAFETY: strides address the exporter's memory; `dest` has room for every element.
            unsafe { copy_strided(b.data as *const u8, shape, strides, itemsize, dest as *mut u8) };
        }
        P4S_OK
    }
}

export! {
    /// A memoryview over foreign memory: `nbytes` bytes at `data`, cast to the one-character
    /// native `format` (`d f b B h H i I l L q Q ?`) and `ndim` extents in `shape` (C order), or
    /// one dimension if `ndim` is 0. Writable unless `readonly` ≠ 0. The memory must stay valid
    /// and unmoved while Python uses the view. New reference or NULL.
    ///
    /// Owns: a new reference (release it with `p4s_decref`/`p4s_decref_later`) to a memoryview that
    ///   borrows the caller's memory: it must stay valid and unmoved while Python uses the view.
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: NULL, with a shim error for NULL `format`, NULL `data` with `nbytes` > 0, negative
    ///   sizes or NULL `shape` with `ndim` > 0, or a kept Python exception.
    fn p4s_memoryview(data: *mut c_void, nbytes: i64, format: *const c_char, ndim: i32,
                      shape: *const i64, readonly: i32) -> *mut PyObject, on_panic = std::ptr::null_mut(), {
        let Some(e) = enter() else { return std::ptr::null_mut() };
        let api = e.api();
        if (data.is_null() && nbytes > 0) || format.is_null() || nbytes < 0 || ndim < 0 || (ndim > 0 && shape.is_null()) {
            set_last_error("p4s_memoryview: bad arguments");
            return std::ptr::null_mut();
        }
        // An empty array still needs a valid pointer for Python.
        static EMPTY: u64 = 0;
        let data = if data.is_null() { std::ptr::addr_of!(EMPTY) as *mut c_void } else { data };
        let flags = if readonly != 0 { PyBUF_READ } else { PyBUF_WRITE };
        // SAFETY: (whole block) GIL held; `data` valid for `nbytes` (caller's contract); every
        // reference made is released here or returned.
        unsafe {
            let raw = (api.PyMemoryView_FromMemory)(data.cast(), nbytes as isize, flags);
            if raw.is_null() {
                take_python_error(&e);
                return std::ptr::null_mut();
            }
            let fmt = (api.PyUnicode_FromString)(format);
            let shp = if ndim == 0 {
                std::ptr::null_mut()
            } else {
                let t = (api.PyTuple_New)(ndim as isize);
                for k in 0..ndim as usize {
                    (api.PyTuple_SetItem)(t, k as isize, (api.PyLong_FromLongLong)(*shape.add(k)));
                }
                t
            };
            let cast = (api.PyUnicode_FromString)(c"cast".as_ptr());
            let args: Vec<*mut PyObject> = if shp.is_null() { vec![fmt] } else { vec![fmt, shp] };
            let m = (api.PyObject_GetAttr)(raw, cast);
            let r = if m.is_null() { std::ptr::null_mut() } else { vectorcall(api, m, &args, std::ptr::null_mut()) };
            for o in [m, cast, fmt, shp, raw] {
                (api.Py_DecRef)(o);
            }
            if r.is_null() {
                take_python_error(&e);
            }
            r
        }
    }
}

export! {
    /// Converts the elements of a held buffer of Python objects (struct format `O`: a numpy
    /// object array of any shape and strides) into `out`, in C (row-major) order, as
    /// [`crate::values::p4s_items`] converts a list's items with no scratch buffer: scalars
    /// inline, other objects (strings too) as new references. `out` has room for `n` values, which must be at least the element count.
    /// Returns the element count, or -1 (Python error kept) / -2 (not such a buffer, too little
    /// room); on failure nothing is left owned in `out`.
    ///
    /// Owns: the caller's `out` values: new references for the non-scalar elements (release each
    ///   with `p4s_release_value`).
    /// GIL: takes it itself (nestable, any thread); Python must be running.
    /// Fails: -1 when Python raised (the exception kept for this thread: `p4s_error_*`), -2 for a
    ///   shim error (message in `p4s_last_error`, code in `p4s_last_error_code`: `P4S_NOT_STARTED`
    ///   if Python is not running); nothing is left owned in `out`.
    fn p4s_buffer_objects(buf: *const P4sBuffer, out: *mut P4sValue, n: i64) -> i64, on_panic = i64::from(P4S_ERROR), {
        let Some(e) = enter() else { return i64::from(P4S_ERROR) };
        if buf.is_null() || (out.is_null() && n > 0) {
            set_last_error("p4s_buffer_objects: NULL argument");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: the caller's buffer, filled by `p4s_buffer_get`.
        let b = unsafe { &*buf };
        if b.view.is_null() {
            set_last_error("p4s_buffer_objects: the buffer was released");
            return i64::from(P4S_ERROR);
        }
        // SAFETY: `format` is NUL-terminated while the buffer is held.
        let format = unsafe { std::ffi::CStr::from_ptr(b.format) }.to_bytes();
        let format = format.strip_prefix(b"@").or_else(|| format.strip_prefix(b"=")).unwrap_or(format);
        if format != b"O" || b.itemsize as usize != std::mem::size_of::<*mut PyObject>() {
            set_last_error("p4s_buffer_objects: not a buffer of Python objects");
            return i64::from(P4S_ERROR);
        }
        let nd = b.ndim.max(0) as usize;
        // SAFETY: shape/strides have `ndim` entries while the buffer is held.
        let (shape, strides) = unsafe {
            if nd == 0 || b.shape.is_null() {
                (&[][..], &[][..])
            } else {
                (std::slice::from_raw_parts(b.shape, nd), std::slice::from_raw_parts(b.strides, nd))
            }
        };
        let count: i64 = shape.iter().map(|&d| d.max(0)).product();
        if count > n {
            set_last_error("p4s_buffer_objects: too little room for the elements");
            return i64::from(P4S_ERROR);
        }
        let api = e.api();
        let mut index = vec![0i64; nd];
        for k in 0..count as usize {
            let offset: i64 = index.iter().zip(strides).map(|(i, s)| i * s).sum();
            // SAFETY: the index is within the shape, so the slot lies in the exporter's memory;
            // each slot of an object buffer holds a PyObject* (numpy fills empty ones with None).
            let item = unsafe { *(b.data as *const u8).offset(offset as isize).cast::<*mut PyObject>() };
            let item = if item.is_null() { api._Py_NoneStruct } else { item };
            // SAFETY: GIL held; `item` is kept alive by the array; `out` has room for `count`.
            let status = unsafe { to_value(&e, item, &mut *out.add(k), std::ptr::null_mut(), 0) };
            if status != P4S_OK {
                for j in 0..k {
                    // SAFETY: the values written so far hold new references (or nothing).
                    unsafe { release_value(api, &*out.add(j)) };
                }
                return i64::from(status);
            }
            for axis in (0..nd).rev() {
                index[axis] += 1;
                if index[axis] < shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        count
    }
}
