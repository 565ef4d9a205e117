//! The version data against real interpreters: every version-dependent path that the code
//! detects by a symbol (config's `versions::BRANCHES`) must find that symbol exactly on the
//! versions the table says, on each interpreter of the run (3.8–3.13 here, 3.14/3.15 in the
//! Debian sid root) — so both sides of each branch are exercised somewhere in the matrix.

mod common;
use common::*;
use py4cl2_cffi_loader::api::Api;
use py4cl2_cffi_loader::config::versions::{self, Detect, BRANCHES};

/// Whether the loader's table resolved `symbol` (an `Option` field). Every symbol the version
/// table names must be listed here, so the table cannot name one the loader does not bind.
fn resolved(api: &Api, symbol: &str) -> bool {
    match symbol {
        "PyObject_VectorcallDict" => api.PyObject_VectorcallDict.is_some(),
        "PyObject_VectorcallMethod" => api.PyObject_VectorcallMethod.is_some(),
        "PyObject_Vectorcall" => api.PyObject_Vectorcall.is_some(),
        "PyErr_GetRaisedException" => api.PyErr_GetRaisedException.is_some(),
        "PyUnstable_ThreadState_SetStackProtection" => {
            api.PyUnstable_ThreadState_SetStackProtection.is_some()
        }
        other => panic!("versions::BRANCHES names {other}, which the loader's Api does not bind"),
    }
}

#[test]
fn symbol_branches_match_every_interpreter() {
    let mut sides = std::collections::BTreeMap::<&str, (bool, bool)>::new();
    for (label, exe) in base_interpreters() {
        start(exe.to_str().unwrap()).unwrap_or_else(|e| panic!("start {label}: {e}"));
        // SAFETY: Python is running and is stopped only after the last use of `rt` below.
        let rt = unsafe { py4cl2_cffi_loader::current() }.expect("started");
        let v = &rt.facts.version;
        assert_eq!(
            versions::newer_than_known(v),
            None,
            "{label} is a known version"
        );
        for b in BRANCHES {
            let Detect::Symbol(symbol) = b.detect else {
                continue;
            };
            let want = versions::has(b, v);
            assert_eq!(
                resolved(&rt.api, symbol),
                want,
                "{label} ({v}): {} ({symbol}, since {:?})",
                b.name,
                b.since
            );
            let e = sides.entry(b.name).or_default();
            if want {
                e.1 = true
            } else {
                e.0 = true
            }
        }
        stop().unwrap();
    }
    for (name, (old, new)) in sides {
        eprintln!(
            "version data: {name}: old side {}, new side {}",
            if old { "seen" } else { "not in this run" },
            if new { "seen" } else { "not in this run" }
        );
    }
}
