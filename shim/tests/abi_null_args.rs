//! Every export that takes pointers, called with NULL where it matters: the ones that refuse
//! it return their failure value with a last-error message naming the function (never a
//! crash inside CPython), and the ones whose docs allow NULL accept it.

mod common;

use common::*;
use py4cl2_cffi_shim::buffer::*;
use py4cl2_cffi_shim::call::*;
use py4cl2_cffi_shim::callback::*;
use py4cl2_cffi_shim::gil::*;
use py4cl2_cffi_shim::lifecycle::*;
use py4cl2_cffi_shim::names::*;
use py4cl2_cffi_shim::objects::*;
use py4cl2_cffi_shim::pyerr::*;
use py4cl2_cffi_shim::source::*;
use py4cl2_cffi_shim::values::*;
use py4cl2_cffi_shim::{PyObject, P4S_ERROR};
use std::ffi::c_char;
use std::ptr::{null, null_mut};

const N: *mut PyObject = null_mut();
const NV: *mut P4sValue = null_mut();

/// Asserts `st` is the shim-error status and the last error names `what`.
#[track_caller]
fn refused(st: i64, what: &str) {
    assert_eq!(
        st,
        i64::from(P4S_ERROR),
        "{what}: status {st} ({})",
        last_error()
    );
    let msg = last_error();
    assert!(msg.contains(what), "{what}: the last error is {msg:?}");
    assert!(
        msg.contains("NULL") || msg.contains("bad arguments") || msg.contains("invalid"),
        "{what}: {msg:?}"
    );
}

/// Asserts the returned pointer is NULL and the last error names `what`.
#[track_caller]
fn refused_ptr<T>(p: *const T, what: &str) {
    assert!(
        p.is_null(),
        "{what}: returned a pointer for a NULL argument"
    );
    refused(i64::from(P4S_ERROR), what);
}

fn empty_buffer() -> P4sBuffer {
    P4sBuffer {
        data: null_mut(),
        len: 0,
        itemsize: 0,
        ndim: 0,
        readonly: 0,
        format: null(),
        shape: null(),
        strides: null(),
        view: null_mut(),
    }
}

#[test]
fn null_arguments_are_refused_or_documented() {
    let Some((label, exe)) = base_interpreters().into_iter().last() else {
        return;
    };
    eprintln!("--- {label}: {}", exe.display());
    start(exe.to_str().unwrap()).unwrap_or_else(|e| panic!("{label}: start failed: {e}"));
    let s = lookup("str");
    let ns = eval("__import__('types').SimpleNamespace(a=1)").unwrap();
    let Val::Obj(_, ns, _) = ns else {
        panic!("a namespace object")
    };
    let name = "a".as_ptr().cast::<c_char>();
    let mut out = P4sValue::default();
    let mut scratch = [0u32; 8];
    let sc = scratch.as_mut_ptr();
    let key = int(1);

    // SAFETY: every pointer passed is NULL or valid; the shim must check the NULLs.
    unsafe {
        // Buffers (buffer.rs).
        let mut buf = empty_buffer();
        refused(p4s_buffer_get(N, 0, &mut buf).into(), "p4s_buffer_get");
        refused(p4s_buffer_get(ns, 0, null_mut()).into(), "p4s_buffer_get");
        let mut dest = [0u8; 8];
        refused(
            p4s_buffer_copy(null(), dest.as_mut_ptr().cast(), 8).into(),
            "p4s_buffer_copy",
        );
        refused(
            p4s_buffer_copy(&buf, null_mut(), 8).into(),
            "p4s_buffer_copy",
        );
        refused(p4s_buffer_objects(null(), NV, 0), "p4s_buffer_objects");
        refused_ptr(
            p4s_memoryview(null_mut(), 8, c"B".as_ptr(), 0, null(), 1),
            "p4s_memoryview",
        );
        refused_ptr(
            p4s_memoryview(dest.as_mut_ptr().cast(), 8, null(), 0, null(), 1),
            "p4s_memoryview",
        );
        refused_ptr(
            p4s_memoryview(dest.as_mut_ptr().cast(), 8, c"B".as_ptr(), 1, null(), 1),
            "p4s_memoryview",
        );
        p4s_buffer_release(null_mut()); // allowed: a no-op
        p4s_buffer_release(&mut buf); // allowed: never filled, nothing to release

        // Calls, names, attributes, items, code (call.rs, names.rs, objects.rs, source.rs).
        refused(
            p4s_call_packed(N, &key, 1, N, &mut out, sc, 8).into(),
            "p4s_call_packed",
        );
        refused(
            p4s_call_packed(s, null(), 1, N, &mut out, sc, 8).into(),
            "p4s_call_packed",
        );
        assert_eq!(
            p4s_call_packed(s, &key, 1, N, NV, null_mut(), 0),
            0,
            "out NULL discards the result"
        );
        let upper = p4s_from_value(&utf8("upper"));
        assert!(!upper.is_null(), "{}", py_error());
        refused(
            p4s_call_method_packed(N, upper, null(), 0, N, &mut out, sc, 8).into(),
            "p4s_call_method_packed",
        );
        refused(
            p4s_call_method_packed(ns, N, null(), 0, N, &mut out, sc, 8).into(),
            "p4s_call_method_packed",
        );
        refused(
            p4s_call_method_packed(ns, upper, null(), 2, N, &mut out, sc, 8).into(),
            "p4s_call_method_packed",
        );
        p4s_decref(upper);
        refused_ptr(p4s_call(N, null(), 0, N), "p4s_call");
        refused_ptr(p4s_call(s, null(), 1, N), "p4s_call");
        refused_ptr(p4s_lookup(null(), 3), "p4s_lookup");
        refused(
            p4s_lookup_value(null(), 3, &mut out, sc, 8).into(),
            "p4s_lookup_value",
        );
        refused(p4s_set_global(null(), 1, &key).into(), "p4s_set_global");
        refused(p4s_set_global(name, 1, null()).into(), "p4s_set_global");
        refused(
            p4s_getattr_value(N, name, 1, &mut out, sc, 8).into(),
            "p4s_getattr_value",
        );
        refused(
            p4s_getattr_value(ns, null(), 1, &mut out, sc, 8).into(),
            "p4s_getattr_value",
        );
        refused(p4s_setattr(N, name, 1, &key).into(), "p4s_setattr");
        refused(p4s_setattr(ns, null(), 1, &key).into(), "p4s_setattr");
        refused(p4s_getitem(N, &key, &mut out, sc, 8).into(), "p4s_getitem");
        refused(
            p4s_getitem(ns, null(), &mut out, sc, 8).into(),
            "p4s_getitem",
        );
        refused(p4s_setitem(N, &key, &key).into(), "p4s_setitem");
        refused(p4s_setitem(ns, null(), &key).into(), "p4s_setitem");
        assert_eq!(p4s_exec(null(), 3, N, N), P4S_ERROR);
        assert!(last_error().contains("NULL code"), "{}", last_error());
        assert_eq!(p4s_eval(null(), 3, N, N, &mut out, sc, 8), P4S_ERROR);
        assert!(last_error().contains("NULL code"), "{}", last_error());
        assert_eq!(
            p4s_exec("x = 1".as_ptr().cast(), 5, N, N),
            0,
            "NULL globals: __main__'s"
        );
        refused_ptr(p4s_import(null(), 4), "p4s_import");
        refused_ptr(p4s_type_name(N), "p4s_type_name");
        refused_ptr(p4s_type_of(N), "p4s_type_of");
        refused_ptr(p4s_str(N), "p4s_str");
        refused(p4s_len(N), "p4s_len");

        // Callbacks and errors (callback.rs, pyerr.rs, last_error.rs).
        let f = p4s_make_callable(7, null(), 0);
        assert!(!f.is_null(), "a NULL name is allowed: {}", last_error());
        p4s_decref(f);
        refused(
            p4s_error_set_lisp(7, null(), 5).into(),
            "p4s_error_set_lisp",
        );
        refused(p4s_error_set(N, null(), 5).into(), "p4s_error_set");
        refused(p4s_error_describe(null_mut()).into(), "p4s_error_describe");

        // References and lifecycle (gil.rs, lifecycle.rs): NULL is allowed and ignored.
        p4s_decref(N);
        p4s_incref(N);
        p4s_decref_later(N, p4s_generation());
        assert_eq!(p4s_version_info(null_mut(), null_mut(), null_mut()), 0);
        assert!(p4s_stop_busy_threads(null_mut(), 0) >= 0);

        // Values (values.rs).
        refused_ptr(p4s_from_value(null()), "p4s_from_value");
        let bad = P4sValue {
            tag: P4S_STR_UTF8,
            aux: 0,
            a: 0,
            b: 3,
        };
        assert!(p4s_from_value(&bad).is_null());
        assert!(py_error().contains("NULL data pointer"), "{}", py_error());
        p4s_error_clear();
        let bad_hex = P4sValue {
            tag: P4S_INT_HEX,
            aux: 0,
            a: 0,
            b: 0,
        };
        assert!(p4s_from_value(&bad_hex).is_null());
        assert!(py_error().contains("NULL data pointer"), "{}", py_error());
        p4s_error_clear();
        refused(p4s_to_value(N, &mut out, sc, 8).into(), "p4s_to_value");
        refused(p4s_to_value(s, NV, sc, 8).into(), "p4s_to_value");
        assert!(p4s_tuple_from(null(), 2).is_null());
        assert!(
            last_error().contains("invalid sequence arguments"),
            "{}",
            last_error()
        );
        assert!(p4s_list_from(null(), 2).is_null());
        assert!(
            last_error().contains("invalid sequence arguments"),
            "{}",
            last_error()
        );
        refused_ptr(p4s_dict_from(null(), &key, 1), "p4s_dict_from");
        refused_ptr(p4s_set_from(null(), 1), "p4s_set_from");
        let empty = p4s_tuple_from(null(), 0);
        assert!(!empty.is_null(), "NULL with n = 0 is an empty tuple");
        refused(p4s_items(N, &mut out, 1, null_mut(), 0), "p4s_items");
        refused(p4s_items(empty, NV, 1, null_mut(), 0), "p4s_items");
        refused(p4s_items(empty, &mut out, 1, null_mut(), 4), "p4s_items");
        refused(
            p4s_dict_items(N, &mut out, &mut out, 1, null_mut(), 0),
            "p4s_dict_items",
        );
        p4s_decref(empty);
        refused(p4s_str_utf32(N, sc, 8), "p4s_str_utf32");
        let hello = p4s_from_value(&utf8("hello"));
        assert_eq!(
            p4s_str_utf32(hello, null_mut(), 0),
            5,
            "NULL buf: the length only"
        );
        p4s_decref(hello);
        let mut len = 0i64;
        refused_ptr(p4s_bytes_data(N, &mut len), "p4s_bytes_data");
        refused_ptr(p4s_long_to_hex(N), "p4s_long_to_hex");
        p4s_release_value(null()); // allowed: a no-op

        p4s_decref(s);
        p4s_decref(ns);
    }
    stop().unwrap_or_else(|e| panic!("{label}: stop failed: {e}"));
}
