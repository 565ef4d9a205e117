//! Threads: 8 threads call through the ABI at once (each taking the GIL per call), while
//! another thread hands references to the decref queue without the GIL; on every version.
//! Afterwards every call is accounted for and the queue is drained.

mod common;
use common::*;
use py4cl2_cffi_shim::gil::*;
use py4cl2_cffi_shim::lifecycle::p4s_generation;
use py4cl2_cffi_shim::values::*;
use py4cl2_cffi_shim::PyObject;
use std::sync::mpsc;

const THREADS: usize = 8;
const CALLS: usize = 5_000;

fn hammer(label: &str) {
    exec("import itertools, sys\ncounter = itertools.count()\ntick = counter.__next__\nsys.setswitchinterval(1e-5)").unwrap();
    let str_fn = lookup("str") as usize;
    let tick = lookup("tick") as usize;
    // SAFETY: plain query.
    let gen = unsafe { p4s_generation() };
    let (tx, rx) = mpsc::channel::<usize>();
    let decref_thread = std::thread::spawn(move || {
        let mut n = 0;
        for o in rx {
            // SAFETY: each object is a new reference handed over by a caller; no GIL needed.
            unsafe { p4s_decref_later(o as *mut PyObject, gen) };
            n += 1;
        }
        n
    });
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    let n = (t * CALLS + i) as i64;
                    let r = call(str_fn as *mut PyObject, &[int(n)], std::ptr::null_mut()).unwrap();
                    assert_eq!(r, Val::Str(n.to_string()));
                    call(tick as *mut PyObject, &[], std::ptr::null_mut()).unwrap();
                    // A new object for the decref thread to release later.
                    let f = float(n as f64);
                    // SAFETY: `f` is a valid packed value.
                    let o = unsafe { p4s_from_value(&f) };
                    assert!(!o.is_null());
                    tx.send(o as usize).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
    let queued = decref_thread.join().unwrap();
    assert_eq!(queued, THREADS * CALLS);
    assert_eq!(
        eval("next(counter)").unwrap(),
        Val::Int((THREADS * CALLS) as i64),
        "{label}: every call ran exactly once"
    );
    // SAFETY: plain query; the eval above drained the queue.
    let queued_now = unsafe { p4s_decref_queue_length() };
    assert_eq!(queued_now, 0, "{label}: queue drained");
    // SAFETY: our references.
    unsafe {
        p4s_decref(str_fn as *mut PyObject);
        p4s_decref(tick as *mut PyObject);
    }
}

#[test]
fn eight_threads_and_a_decref_thread_on_every_version() {
    for (label, exe) in base_interpreters() {
        start(exe.to_str().unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        hammer(&label);
        eprintln!(
            "{label}: {} calls from {THREADS} threads + {} queued decrefs in {:.2} s",
            2 * THREADS * CALLS,
            THREADS * CALLS,
            t0.elapsed().as_secs_f64()
        );
        stop().unwrap();
    }
}
