//! Leaks: 1,000,000 calls through the ABI that create and drop objects (ints, floats, strings
//! copied out, tuples and lists converted and released, objects queued for a later decref)
//! grow RSS by less than 2 MB after warm-up (DESIGN §1).

mod common;
use common::*;
use py4cl2_cffi_shim::gil::{p4s_decref, p4s_decref_later};
use py4cl2_cffi_shim::lifecycle::p4s_generation;
use py4cl2_cffi_shim::values::*;
use py4cl2_cffi_shim::PyObject;

fn churn(n: usize, f_str: *mut PyObject, f_pair: *mut PyObject, gen: u64) {
    let mut items = [P4sValue::default(); 2];
    for i in 0..n {
        let k = i as i64;
        match i % 4 {
            0 => {
                let r = call(f_str, &[int(k)], std::ptr::null_mut()).unwrap();
                assert!(matches!(r, Val::Str(_)));
            }
            1 => {
                // A tuple result, read back item by item and released.
                let Val::Obj(P4S_TUPLE, t, 2) =
                    call(f_pair, &[float(k as f64)], std::ptr::null_mut()).unwrap()
                else {
                    panic!("tuple expected")
                };
                // SAFETY: `t` is a live tuple of 2; items released after reading.
                unsafe {
                    assert_eq!(
                        p4s_items(t, items.as_mut_ptr(), 2, std::ptr::null_mut(), 0),
                        2
                    );
                    p4s_release_value(&items[0]);
                    p4s_release_value(&items[1]);
                    p4s_decref(t);
                }
            }
            2 => {
                // An object handed to the finalizer queue, as Lisp's GC does.
                let s = format!("string number {k}");
                // SAFETY: valid packed string.
                let o = unsafe { p4s_from_value(&utf8(&s)) };
                // SAFETY: we hand over our reference.
                unsafe { p4s_decref_later(o, gen) };
            }
            _ => {
                let vals = [int(k), float(0.5), utf8("x")];
                // SAFETY: valid values; the list is ours to release.
                unsafe {
                    let l = p4s_list_from(vals.as_ptr(), 3);
                    assert!(!l.is_null());
                    p4s_decref(l);
                }
            }
        }
    }
}

#[test]
fn a_million_calls_do_not_grow_rss() {
    // 3.12 on this machine; the newest of the run's versions elsewhere (3.15 in the sid root).
    let want = if std::env::var_os("PY4CL2_CFFI_VERSIONS").is_some() {
        expected_versions().pop().unwrap_or_default()
    } else {
        "3.12".to_string()
    };
    let Some((label, exe)) = base_interpreters().into_iter().find(|(l, _)| *l == want) else {
        eprintln!("SKIPPED: the leak soak runs on CPython {want}, which is not installed");
        return;
    };
    start(exe.to_str().unwrap()).unwrap();
    exec("def pair(x):\n    return (x, str(x))").unwrap();
    let f_str = lookup("str");
    let f_pair = lookup("pair");
    // SAFETY: plain query.
    let gen = unsafe { p4s_generation() };
    churn(200_000, f_str, f_pair, gen);
    let before = rss_kb();
    let t0 = std::time::Instant::now();
    churn(1_000_000, f_str, f_pair, gen);
    let after = rss_kb();
    eprintln!(
        "{label}: 1,000,000 calls in {:.2} s; RSS after warm-up {before} KB, after {after} KB, growth {} KB",
        t0.elapsed().as_secs_f64(),
        after - before
    );
    assert!(
        after - before < 2048,
        "RSS grew by {} KB over 1,000,000 calls",
        after - before
    );
    // SAFETY: our references.
    unsafe {
        p4s_decref(f_str);
        p4s_decref(f_pair);
    }
    stop().unwrap();
}
