//! One build, every interpreter: start each CPython 3.8–3.13 (and Debian's 3.11) in turn in
//! this one process, exercise every group of the C ABI as the Lisp side calls it, and stop.

mod common;
use common::*;
use py4cl2_cffi_shim::buffer::*;
use py4cl2_cffi_shim::call::*;
use py4cl2_cffi_shim::callback::*;
use py4cl2_cffi_shim::gil::*;
use py4cl2_cffi_shim::last_error::*;
use py4cl2_cffi_shim::lifecycle::*;
use py4cl2_cffi_shim::names::*;
use py4cl2_cffi_shim::objects::*;
use py4cl2_cffi_shim::output::*;
use py4cl2_cffi_shim::pyerr::*;
use py4cl2_cffi_shim::values::*;
use py4cl2_cffi_shim::PyObject;
use std::sync::Mutex;

static OUTPUT: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
static RELEASED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_output(stream: i32, data: *const u8, len: i64, route: i64) {
    assert_eq!(
        route, -1,
        "a write from the thread that called Python has route -1"
    );
    // SAFETY: the shim passes `len` valid UTF-8 bytes.
    let s = unsafe { std::slice::from_raw_parts(data, len as usize) };
    OUTPUT
        .lock()
        .unwrap()
        .push((stream, String::from_utf8_lossy(s).into_owned()));
}

/// The "Lisp" side of callbacks: handle 1 adds its positional ints and a `scale` keyword;
/// handle 2 fails with a Lisp error carrying handle 77; handle 3 calls back into Python.
unsafe extern "C" fn on_call(
    handle: i64,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: called with the GIL held, args a tuple, kwargs a dict or NULL.
    unsafe {
        match handle {
            1 => {
                let n = p4s_len(args);
                let mut vals = vec![P4sValue::default(); n as usize];
                assert_eq!(
                    p4s_items(args, vals.as_mut_ptr(), n, std::ptr::null_mut(), 0),
                    n
                );
                let mut sum: i64 = vals.iter().map(|v| v.a).sum();
                if !kwargs.is_null() {
                    let mut k = [P4sValue::default(); 4];
                    let mut v = [P4sValue::default(); 4];
                    let m = p4s_dict_items(
                        kwargs,
                        k.as_mut_ptr(),
                        v.as_mut_ptr(),
                        4,
                        std::ptr::null_mut(),
                        0,
                    );
                    for i in 0..m as usize {
                        assert_eq!(read_str(k[i].a as *mut PyObject), "scale");
                        sum *= v[i].a;
                        p4s_release_value(&k[i]);
                    }
                }
                p4s_from_value(&int(sum))
            }
            2 => {
                let msg = "lisp says no";
                p4s_error_set_lisp(77, msg.as_ptr().cast(), msg.len() as i64);
                std::ptr::null_mut()
            }
            3 => {
                // Re-entrancy: Python -> "Lisp" -> Python.
                let r = eval("len('nested')").unwrap();
                assert_eq!(r, Val::Int(6));
                p4s_from_value(&int(600))
            }
            _ => std::ptr::null_mut(),
        }
    }
}

unsafe extern "C" fn on_release(handle: i64) {
    RELEASED.lock().unwrap().push(handle);
}

fn exercise(label: &str, exe: &std::path::Path) {
    eprintln!("--- {label}: {}", exe.display());
    start(exe.to_str().unwrap()).unwrap_or_else(|e| panic!("{label}: start failed: {e}"));

    // Lifecycle and version.
    // SAFETY: plain calls; out pointers valid.
    unsafe {
        assert_eq!(p4s_is_started(), 1);
        let (mut a, mut b, mut c) = (0, 0, 0);
        assert_eq!(p4s_version_info(&mut a, &mut b, &mut c), 0);
        let want = eval("'%d.%d' % __import__('sys').version_info[:2]").unwrap();
        assert_eq!(want, Val::Str(format!("{a}.{b}")), "{label}");
        assert!(
            label.starts_with(&format!("{a}.{b}")),
            "{label} started {a}.{b}.{c}"
        );
        // The running interpreter again: nothing to do.
        let again = exe.to_string_lossy();
        assert_eq!(
            p4s_start(again.as_ptr().cast(), again.len() as i64),
            P4S_ALREADY_STARTED
        );
        // A spec that selects nothing is an error, not a silent "already started".
        let bogus = "no-such-python-spec";
        assert_eq!(p4s_start(bogus.as_ptr().cast(), bogus.len() as i64), -2);
        assert_eq!(p4s_last_error_code(), -2);
        assert_eq!(p4s_is_started(), 1, "the running Python is untouched");
    }
    // Another interpreter while this one runs: refused with its own code, this one untouched.
    if let Some((other, oexe)) = base_interpreters().into_iter().find(|(l, _)| l != label) {
        let e = start(oexe.to_str().unwrap()).unwrap_err();
        assert_eq!(last_error_code(), -5, "{label} running, {other} asked: {e}");
        assert!(e.contains("stop it first"), "{e}");
    }
    // SAFETY: plain query.
    unsafe {
        assert_eq!(p4s_is_started(), 1, "the running Python is untouched");
    }
    assert_eq!(
        eval("__import__('sys').executable").unwrap(),
        Val::Str(exe.to_string_lossy().into_owned()),
        "{label}: sys.executable"
    );

    // GIL: nested holds from this thread.
    // SAFETY: matched acquire/release.
    unsafe {
        assert_eq!(p4s_gil_depth(), 0);
        assert_eq!(p4s_gil_acquire(), 0);
        assert_eq!(p4s_gil_acquire(), 0);
        assert_eq!(p4s_gil_depth(), 2);
        assert_eq!(eval("1+1").unwrap(), Val::Int(2));
        assert_eq!(p4s_gil_release(), 0);
        assert_eq!(p4s_gil_release(), 0);
        assert_eq!(p4s_gil_depth(), 0);
        assert_eq!(p4s_gil_release(), -2, "release without acquire is an error");
    }

    // Constructors and accessors, round trips through Python.
    let s = "héllo wörld 😀";
    let utf32: Vec<u32> = s.chars().map(|c| c as u32).collect();
    let latin = [0x63u8, 0xe9, 0x74, 0xe9];
    let hex = "-123456789abcdef0123456789";
    let cases: Vec<(P4sValue, &str, Val)> = vec![
        (int(-42), "-42", Val::Int(-42)),
        (int(i64::MAX), "9223372036854775807", Val::Int(i64::MAX)),
        (float(2.5), "2.5", Val::Float(2.5)),
        (
            P4sValue {
                tag: P4S_COMPLEX,
                aux: 0,
                a: 1.5f64.to_bits() as i64,
                b: (-2.0f64).to_bits() as i64,
            },
            "(1.5-2j)",
            Val::Complex(1.5, -2.0),
        ),
        (
            P4sValue {
                tag: P4S_STR_UTF32,
                aux: 0,
                a: utf32.as_ptr() as i64,
                b: utf32.len() as i64,
            },
            "'héllo wörld 😀'",
            Val::Str(s.into()),
        ),
        (utf8(s), "'héllo wörld 😀'", Val::Str(s.into())),
        (
            P4sValue {
                tag: P4S_STR_LATIN1,
                aux: 0,
                a: latin.as_ptr() as i64,
                b: 4,
            },
            "'cété'",
            Val::Str("cété".into()),
        ),
        (
            P4sValue {
                tag: P4S_BOOL,
                aux: 0,
                a: 1,
                b: 0,
            },
            "True",
            Val::Bool(true),
        ),
        (
            P4sValue {
                tag: P4S_NONE,
                aux: 0,
                a: 0,
                b: 0,
            },
            "None",
            Val::None,
        ),
    ];
    let repr = lookup("repr");
    for (v, want_repr, want_back) in &cases {
        assert_eq!(
            call(repr, &[*v], std::ptr::null_mut()).unwrap(),
            Val::Str(want_repr.to_string()),
            "{label} repr"
        );
        // SAFETY: `v` valid.
        let o = unsafe { p4s_from_value(v) };
        assert!(!o.is_null());
        let mut out = P4sValue::default();
        let mut sc = [0u32; SCRATCH];
        // SAFETY: valid pointers.
        let st = unsafe { p4s_to_value(o, &mut out, sc.as_mut_ptr(), SCRATCH as i64) };
        assert_eq!(st, 0);
        assert_eq!(
            &val(&out, &sc),
            want_back,
            "{label} round trip of {want_repr}"
        );
        // SAFETY: ours.
        unsafe { p4s_decref(o) };
    }
    // Big integers both ways, exact.
    let big = P4sValue {
        tag: P4S_INT_HEX,
        aux: 0,
        a: hex.as_ptr() as i64,
        b: hex.len() as i64,
    };
    assert_eq!(
        call(lookup("str"), &[big], std::ptr::null_mut()).unwrap(),
        Val::Str(format!("{}", -0x123456789abcdef0123456789i128)),
        "{label} bigint in"
    );
    match eval("-0x123456789abcdef0123456789").unwrap() {
        Val::Obj(P4S_BIGINT, o, _) => {
            // SAFETY: live int.
            let h = unsafe { p4s_long_to_hex(o) };
            assert_eq!(read_str(h), "-0x123456789abcdef0123456789");
            // SAFETY: ours.
            unsafe {
                p4s_decref(h);
                p4s_decref(o)
            };
        }
        other => panic!("{label}: bigint out: {other:?}"),
    }
    // A long str does not fit the scratch buffer: it comes back as an object.
    let long = "x".repeat(1000);
    match eval(&format!("'{long}'")).unwrap() {
        Val::Str(s) => assert_eq!(s.len(), 1000),
        other => panic!("{other:?}"),
    }

    // Containers in and out.
    let vals = [int(1), float(2.0), utf8("three")];
    // SAFETY: arrays valid.
    unsafe {
        let t = p4s_tuple_from(vals.as_ptr(), 3);
        let l = p4s_list_from(vals.as_ptr(), 3);
        let st = p4s_set_from(vals.as_ptr(), 3);
        let keys = [utf8("a"), utf8("b")];
        let d = p4s_dict_from(keys.as_ptr(), vals.as_ptr(), 2);
        assert_eq!(
            call(repr, &[obj(t)], std::ptr::null_mut()).unwrap(),
            Val::Str("(1, 2.0, 'three')".into())
        );
        assert_eq!(
            call(repr, &[obj(l)], std::ptr::null_mut()).unwrap(),
            Val::Str("[1, 2.0, 'three']".into())
        );
        assert_eq!(
            call(repr, &[obj(d)], std::ptr::null_mut()).unwrap(),
            Val::Str("{'a': 1, 'b': 2.0}".into())
        );
        assert_eq!(p4s_len(st), 3);
        let mut items = [P4sValue::default(); 3];
        assert_eq!(
            p4s_items(l, items.as_mut_ptr(), 3, std::ptr::null_mut(), 0),
            3
        );
        assert_eq!(items[0], int(1));
        assert_eq!(items[1].tag, P4S_FLOAT);
        assert_eq!(items[2].tag, P4S_STR);
        assert_eq!(read_str(items[2].a as *mut PyObject), "three");
        p4s_release_value(&items[2]);
        let mut ks = [P4sValue::default(); 2];
        let mut vs = [P4sValue::default(); 2];
        assert_eq!(
            p4s_dict_items(
                d,
                ks.as_mut_ptr(),
                vs.as_mut_ptr(),
                2,
                std::ptr::null_mut(),
                0
            ),
            2
        );
        assert_eq!(read_str(ks[0].a as *mut PyObject), "a");
        assert_eq!(vs[0], int(1));
        for k in &ks {
            p4s_release_value(k)
        }
        // With a scratch buffer, strings are copied one after the other while they fit.
        match eval("['ab', '\\u00fc\\u20ac\\U0001f600', 'x' * 50, 7, '']").unwrap() {
            Val::Obj(P4S_LIST, o, 5) => {
                let mut it = [P4sValue::default(); 5];
                let mut scratch = [0u32; 10];
                assert_eq!(
                    p4s_items(o, it.as_mut_ptr(), 5, scratch.as_mut_ptr(), 10),
                    5
                );
                assert_eq!((it[0].tag, it[0].aux, it[0].a, it[0].b), (P4S_STR, 1, 0, 2));
                assert_eq!((it[1].tag, it[1].aux, it[1].a, it[1].b), (P4S_STR, 1, 2, 3));
                assert_eq!(&scratch[..5], &[0x61, 0x62, 0xfc, 0x20ac, 0x1f600]);
                assert_eq!(
                    (it[2].tag, it[2].aux, it[2].b),
                    (P4S_STR, 0, 50),
                    "too long: an object"
                );
                assert_eq!(read_str(it[2].a as *mut PyObject), "x".repeat(50));
                assert_eq!(it[3], int(7));
                assert_eq!((it[4].tag, it[4].aux, it[4].a, it[4].b), (P4S_STR, 1, 5, 0));
                for v in &it {
                    p4s_release_value(v)
                }
                p4s_decref(o);
            }
            other => panic!("{other:?}"),
        }
        match eval("{'key': 'value', 'n': 1}").unwrap() {
            Val::Obj(P4S_DICT, o, 2) => {
                let (mut k, mut v) = ([P4sValue::default(); 2], [P4sValue::default(); 2]);
                let mut scratch = [0u32; 16];
                assert_eq!(
                    p4s_dict_items(
                        o,
                        k.as_mut_ptr(),
                        v.as_mut_ptr(),
                        2,
                        scratch.as_mut_ptr(),
                        16
                    ),
                    2
                );
                assert_eq!((k[0].aux, k[0].a, k[0].b), (1, 0, 3));
                assert_eq!((v[0].aux, v[0].a, v[0].b), (1, 3, 5));
                assert_eq!((k[1].aux, k[1].a, k[1].b), (1, 8, 1));
                assert_eq!(v[1], int(1));
                let text: String = scratch[..9]
                    .iter()
                    .map(|&c| char::from_u32(c).unwrap())
                    .collect();
                assert_eq!(text, "keyvaluen");
                p4s_decref(o);
            }
            other => panic!("{other:?}"),
        }
        match eval("(1, [2], {'k': 3}, {4}, b'by')").unwrap() {
            Val::Obj(P4S_TUPLE, o, 5) => {
                let mut it = [P4sValue::default(); 5];
                assert_eq!(p4s_items(o, it.as_mut_ptr(), 5, std::ptr::null_mut(), 0), 5);
                let tags: Vec<i32> = it.iter().map(|v| v.tag).collect();
                assert_eq!(tags, vec![P4S_INT, P4S_LIST, P4S_DICT, P4S_SET, P4S_BYTES]);
                let mut n = 0;
                let p = p4s_bytes_data(it[4].a as *mut PyObject, &mut n);
                assert_eq!(
                    std::slice::from_raw_parts(p.cast::<u8>(), n as usize),
                    b"by"
                );
                for v in &it {
                    p4s_release_value(v)
                }
                p4s_decref(o);
            }
            other => panic!("{label}: {other:?}"),
        }
        for o in [t, l, st, d] {
            p4s_decref(o)
        }
    }

    // Attributes and items.
    exec("import types\nns = types.SimpleNamespace(a=1)\nd = {'k': [10, 20]}").unwrap();
    let ns = lookup("ns");
    // SAFETY: valid pointers and lengths.
    unsafe {
        let mut out = P4sValue::default();
        assert_eq!(
            p4s_getattr_value(
                ns,
                "a".as_ptr().cast(),
                1,
                &mut out,
                std::ptr::null_mut(),
                0
            ),
            0
        );
        assert_eq!(out, int(1));
        assert_eq!(p4s_setattr(ns, "b".as_ptr().cast(), 1, &float(0.5)), 0);
        assert_eq!(eval("ns.b").unwrap(), Val::Float(0.5));
        assert_eq!(p4s_setattr(ns, "b".as_ptr().cast(), 1, std::ptr::null()), 0);
        assert_eq!(eval("hasattr(ns, 'b')").unwrap(), Val::Bool(false));
        assert_eq!(
            p4s_getattr_value(
                ns,
                "zz".as_ptr().cast(),
                2,
                &mut out,
                std::ptr::null_mut(),
                0
            ),
            -1
        );
        assert!(py_error().starts_with("AttributeError"), "{}", py_error());
        p4s_error_clear();
        let d = lookup("d");
        assert_eq!(p4s_setitem(d, &utf8("n"), &int(5)), 0);
        assert_eq!(
            p4s_getitem(d, &utf8("n"), &mut out, std::ptr::null_mut(), 0),
            0
        );
        assert_eq!(out, int(5));
        assert_eq!(p4s_setitem(d, &utf8("n"), std::ptr::null()), 0);
        assert_eq!(
            p4s_getitem(d, &utf8("n"), &mut out, std::ptr::null_mut(), 0),
            -1
        );
        assert!(py_error().starts_with("KeyError"));
        assert_eq!(p4s_set_global("g".as_ptr().cast(), 1, &int(9)), 0);
        assert_eq!(eval("g * 2").unwrap(), Val::Int(18));
        p4s_decref(d);
        p4s_decref(ns);
    }

    // Calls: keywords, methods, objects.
    let int_fn = lookup("int");
    let kw = {
        let names = [utf8("base")];
        // SAFETY: array valid.
        unsafe { p4s_tuple_from(names.as_ptr(), 1) }
    };
    assert_eq!(
        call(int_fn, &[utf8("ff"), int(16)], kw).unwrap(),
        Val::Int(255),
        "{label} kwargs"
    );
    let upper = "upper";
    // SAFETY: valid pointers.
    unsafe {
        let name = p4s_from_value(&utf8(upper));
        let sv = utf8("abc");
        let so = p4s_from_value(&sv);
        let mut out = P4sValue::default();
        let mut sc = [0u32; SCRATCH];
        assert_eq!(
            p4s_call_method_packed(
                so,
                name,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                &mut out,
                sc.as_mut_ptr(),
                SCRATCH as i64
            ),
            0
        );
        assert_eq!(val(&out, &sc), Val::Str("ABC".into()));
        let args = [so];
        let r = p4s_call(lookup("len"), args.as_ptr(), 1, std::ptr::null_mut());
        let mut o2 = P4sValue::default();
        p4s_to_value(r, &mut o2, std::ptr::null_mut(), 0);
        assert_eq!(o2, int(3));
        p4s_decref(r);
        p4s_decref(so);
        p4s_decref(name);
        p4s_decref(kw);
        p4s_decref(int_fn);
    }
    let module = "json";
    // SAFETY: valid name.
    let json = unsafe { p4s_import(module.as_ptr().cast(), 4) };
    assert!(!json.is_null());
    // SAFETY: valid; new reference returned.
    unsafe { p4s_decref(json) };

    // Errors: type, message, traceback; Python stays usable.
    let e = eval("1/0").unwrap_err();
    assert!(
        e.starts_with("ZeroDivisionError: division by zero"),
        "{label}: {e}"
    );
    // SAFETY: plain calls.
    unsafe {
        let tb = std::ffi::CStr::from_ptr(p4s_error_text(2))
            .to_string_lossy()
            .into_owned();
        assert!(
            tb.contains("Traceback") && tb.contains("ZeroDivisionError"),
            "{tb}"
        );
        assert_eq!(p4s_error_pending(), 1);
        p4s_error_clear();
        assert_eq!(p4s_error_pending(), 0);
    }
    exec("class MyErr(Exception): pass").unwrap();
    let e = exec("raise MyErr('custom')").unwrap_err();
    assert_eq!(e, "__main__.MyErr: custom");
    let e = exec("def f(:\n  pass").unwrap_err();
    assert!(e.starts_with("SyntaxError"), "{e}");
    assert_eq!(eval("40 + 2").unwrap(), Val::Int(42));

    // Buffers: strided numpy-free views (array.array and memoryview slicing), and a memoryview
    // over Rust memory written by Python.
    exec("import array\narr = array.array('d', [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])\nm2 = memoryview(arr).cast('B').cast('d', [2, 3])\nstrided = memoryview(arr)[::2]").unwrap();
    // SAFETY: buffers held between get and release; destinations sized by `len`.
    unsafe {
        let mut b = std::mem::zeroed::<P4sBuffer>();
        let m2 = lookup("m2");
        assert_eq!(p4s_buffer_get(m2, 0, &mut b), 0);
        assert_eq!((b.ndim, b.itemsize, b.len), (2, 8, 48));
        assert_eq!(std::ffi::CStr::from_ptr(b.format).to_str().unwrap(), "d");
        assert_eq!(std::slice::from_raw_parts(b.shape, 2), &[2, 3]);
        let mut dest = vec![0f64; 6];
        assert_eq!(p4s_buffer_copy(&b, dest.as_mut_ptr().cast(), 48), 0);
        assert_eq!(dest, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        p4s_buffer_release(&mut b);
        p4s_decref(m2);
        let st = lookup("strided");
        assert_eq!(p4s_buffer_get(st, 0, &mut b), 0);
        assert_eq!(*b.strides, 16);
        let mut dest = vec![0f64; 3];
        assert_eq!(p4s_buffer_copy(&b, dest.as_mut_ptr().cast(), 24), 0);
        assert_eq!(dest, vec![1.0, 3.0, 5.0]);
        p4s_buffer_release(&mut b);
        p4s_decref(st);
        let mut mine = vec![0f64; 6];
        let shape = [2i64, 3];
        let mv = p4s_memoryview(
            mine.as_mut_ptr().cast(),
            48,
            c"d".as_ptr(),
            2,
            shape.as_ptr(),
            0,
        );
        assert!(!mv.is_null(), "{}", py_error());
        let setter = eval("lambda m: m.__setitem__((1, 2), 7.5)").unwrap();
        let Val::Obj(_, f, _) = setter else { panic!() };
        call(f, &[obj(mv)], std::ptr::null_mut()).unwrap();
        assert_eq!(mine[5], 7.5, "{label}: Python wrote through the memoryview");
        exec("def release(m): m.release()").unwrap();
        call(lookup("release"), &[obj(mv)], std::ptr::null_mut()).unwrap();
        p4s_decref(mv);
        p4s_decref(f);
    }

    // Callbacks: positional + keyword args, errors both ways, re-entrancy, release.
    // SAFETY: registering plain functions; names valid.
    unsafe {
        p4s_set_callback_handler(Some(on_call), Some(on_release));
        let adder = p4s_make_callable(1, "adder".as_ptr().cast(), 5);
        let failer = p4s_make_callable(2, std::ptr::null(), 0);
        let nested = p4s_make_callable(3, std::ptr::null(), 0);
        for (n, o) in [("adder", adder), ("failer", failer), ("nested", nested)] {
            assert_eq!(
                p4s_set_global(n.as_ptr().cast(), n.len() as i64, &obj(o)),
                0
            );
        }
        assert_eq!(eval("adder(1, 2, 3, scale=10)").unwrap(), Val::Int(60));
        assert_eq!(eval("adder.__name__").unwrap(), Val::Str("adder".into()));
        assert_eq!(
            eval("list(map(adder, [1, 2]))").map(|v| matches!(v, Val::Obj(P4S_LIST, _, 2))),
            Ok(true)
        );
        let e = eval("failer()").unwrap_err();
        assert_eq!(e, "py4cl2_cffi.LispError: lisp says no");
        assert_eq!(p4s_error_lisp_handle(), 77);
        p4s_error_clear();
        assert_eq!(
            eval("(lambda: (_ for _ in ()).throw(ValueError('x')) if False else failer())()")
                .unwrap_err(),
            "py4cl2_cffi.LispError: lisp says no"
        );
        assert_eq!(p4s_error_lisp_handle(), 77);
        assert_eq!(eval("nested()").unwrap(), Val::Int(600));
        RELEASED.lock().unwrap().retain(|h| *h != 77);
        exec("try:\n    failer()\nexcept Exception as e:\n    caught = type(e).__name__").unwrap();
        assert_eq!(eval("caught").unwrap(), Val::Str("LispError".into()));
        assert!(
            RELEASED.lock().unwrap().contains(&77),
            "{label}: a LispError swallowed by Python releases its condition handle"
        );
        p4s_decref(adder);
        exec("del adder").unwrap();
        assert!(
            RELEASED.lock().unwrap().contains(&1),
            "{label}: release of handle 1"
        );
        p4s_decref(failer);
        p4s_decref(nested);
    }

    // Output capture, in order, both streams.
    // SAFETY: registering a plain function.
    unsafe {
        p4s_set_output_handler(Some(on_output));
        assert_eq!(p4s_capture_output(1, 1), 0);
        assert_eq!(p4s_capture_output(2, 1), 0);
    }
    OUTPUT.lock().unwrap().clear();
    exec("import sys\nprint('out one')\nprint('err', file=sys.stderr)\nprint('out ü')").unwrap();
    let got: Vec<(i32, String)> = OUTPUT.lock().unwrap().clone();
    let joined: Vec<(i32, String)> = got.into_iter().filter(|(_, s)| s != "\n").collect();
    assert_eq!(
        joined,
        vec![
            (1, "out one".into()),
            (2, "err".into()),
            (1, "out ü".into())
        ],
        "{label}"
    );
    // SAFETY: plain calls.
    unsafe {
        assert_eq!(p4s_capture_output(1, 0), 0);
        assert_eq!(p4s_capture_output(2, 0), 0);
        assert_eq!(p4s_capture_output(3, 1), -2);
    }
    assert_eq!(
        eval("type(__import__('sys').stdout).__name__").unwrap(),
        Val::Str("TextIOWrapper".into())
    );

    // Floating point: Python's inf/nan arithmetic never traps, even with traps unmasked here.
    assert_eq!(
        eval("float('inf') - float('inf') != 0").unwrap(),
        Val::Bool(true)
    );

    // Decrefs queued from another thread, drained by the next entry.
    let o = lookup("ns");
    // SAFETY: plain query.
    let gen = unsafe { p4s_generation() };
    let addr = o as usize;
    std::thread::spawn(move || {
        // SAFETY: queueing needs no GIL.
        unsafe { p4s_decref_later(addr as *mut PyObject, gen) };
    })
    .join()
    .unwrap();
    // SAFETY: plain calls.
    unsafe {
        assert_eq!(p4s_decref_queue_length(), 1);
        assert_eq!(eval("1").unwrap(), Val::Int(1));
        assert_eq!(p4s_decref_queue_length(), 0);
    }

    // Bad input never crashes.
    // SAFETY: deliberately bad but non-dangling arguments.
    unsafe {
        let mut out = P4sValue::default();
        assert_eq!(
            p4s_call_packed(
                std::ptr::null_mut(),
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                0
            ),
            -2
        );
        assert!(last_error().contains("NULL"));
        let bad = P4sValue {
            tag: 99,
            aux: 0,
            a: 0,
            b: 0,
        };
        assert_eq!(
            call(repr, &[bad], std::ptr::null_mut()).unwrap_err(),
            "TypeError: unknown value tag passed to py4cl2-cffi"
        );
        let notfn = eval("3").unwrap();
        let three = P4sValue {
            tag: P4S_INT,
            aux: 0,
            a: 3,
            b: 0,
        };
        let three_o = p4s_from_value(&three);
        assert!(call(three_o, &[], std::ptr::null_mut())
            .unwrap_err()
            .starts_with("TypeError"));
        p4s_decref(three_o);
        assert_eq!(notfn, Val::Int(3));
        assert!(eval("undefined_name").unwrap_err().starts_with("NameError"));
        p4s_decref(repr);
    }

    assert!(
        !stop().unwrap(),
        "{label}: nothing pins libpython without numpy; {}",
        stop_report()
    );
    // SAFETY: plain calls after stop.
    unsafe {
        assert_eq!(p4s_is_started(), 0);
        assert!(p4s_pinned_libpython().is_null());
    }
}

#[test]
fn every_interpreter_through_the_abi() {
    // Before any start: clear errors, no crash.
    // SAFETY: calls without Python.
    unsafe {
        assert_eq!(p4s_gil_acquire(), -2);
        assert!(last_error().contains("not started"), "{}", last_error());
        assert!(p4s_lookup("x".as_ptr().cast(), 1).is_null());
        assert_eq!(p4s_stop(0, 0), -2);
        assert_eq!(p4s_last_error_code(), -3, "not started has its own code");
        assert_eq!(p4s_capture_output(1, 1), -2);
    }
    let all = base_interpreters();
    assert!(!all.is_empty(), "no interpreter found at all");
    for (label, exe) in &all {
        exercise(label, exe);
    }
    eprintln!(
        "exercised {} interpreters: {:?}",
        all.len(),
        all.iter().map(|a| a.0.clone()).collect::<Vec<_>>()
    );
}
