//! numpy pins libpython (docs/internals.md, "Stop: soft or hard"), so a stop after `import numpy` is soft:
//! Python is not finalised and the same interpreter resumes on the next start, with numpy
//! working again; another version (or another prefix of the same libpython) is refused with a
//! clear error naming the pinned files. `P4S_STOP_FINALIZE` finalises anyway: afterwards the
//! same interpreter may start again on 3.8–3.13 (numpy refused by our import hook), and no
//! start is allowed on 3.14+. numpy 1.x on 3.8 and 2.x on 3.9+.
//!
//! Each scenario runs in a child process (this test binary re-run with `--ignored pin_child`),
//! because a pinned process cannot host the other scenarios.

mod common;
use common::*;

fn run_child(scenario: &str, first: &str, other: &str) {
    if venv(first).is_none() || venv(other).is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "pin_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("P4S_PIN_SCENARIO", format!("{scenario}:{first}:{other}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "scenario {scenario} {first}:{other} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn numpy_1_on_3_8_soft_stops_and_resumes() {
    run_child("soft", "3.8", "3.12");
}

#[test]
fn numpy_on_3_9_soft_stops_and_resumes() {
    run_child("soft", "3.9", "3.13");
}

#[test]
fn numpy_on_3_10_soft_stops_and_resumes() {
    run_child("soft", "3.10", "3.8");
}

#[test]
fn numpy_on_3_11_soft_stops_and_resumes() {
    run_child("soft", "3.11", "3.12");
}

#[test]
fn numpy_2_on_3_12_soft_stops_and_resumes() {
    run_child("soft", "3.12", "3.10");
}

#[test]
fn numpy_on_3_13_soft_stops_and_resumes() {
    run_child("soft", "3.13", "3.11");
}

#[test]
fn numpy_on_3_8_finalized_restarts_without_numpy() {
    run_child("finalize", "3.8", "3.12");
}

#[test]
fn numpy_on_3_12_finalized_restarts_without_numpy() {
    run_child("finalize", "3.12", "3.10");
}

#[test]
fn numpy_on_3_13_finalized_restarts_without_numpy() {
    run_child("finalize", "3.13", "3.11");
}

fn numpy_works(label: &str) {
    exec("import numpy\na = numpy.arange(6.0).reshape(2, 3)\nassert a.sum() == 15.0\nassert (a @ a.T).shape == (2, 2)")
        .unwrap_or_else(|e| panic!("{label}: numpy does not work: {e}"));
}

fn refused_clearly(other: &str, other_venv: &std::path::Path) {
    let err = start(other_venv.to_str().unwrap()).unwrap_err();
    eprintln!("start {other} after the pin: {err}");
    assert_eq!(last_error_code(), -4, "the pin has its own code: {err}");
    assert!(
        err.contains(&format!("cannot start Python {other}")),
        "{err}"
    );
    assert!(err.contains("_multiarray_umath"), "{err}");
    assert!(err.contains("fresh process"), "{err}");
    // SAFETY: plain query.
    assert_eq!(unsafe { py4cl2_cffi_shim::lifecycle::p4s_is_started() }, 0);
}

#[test]
#[ignore = "run by the scenario tests in a child process"]
fn pin_child() {
    let scenario = std::env::var("P4S_PIN_SCENARIO").expect("run through the scenario tests");
    let mut parts = scenario.split(':');
    let (kind, first, other) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let first_venv = venv(first).unwrap();
    let other_venv = venv(other).unwrap();

    assert!(
        !start_kind(first_venv.to_str().unwrap()).unwrap(),
        "a fresh start"
    );
    numpy_works(first);
    let major = eval("int(numpy.__version__.split('.')[0])").unwrap();
    assert_eq!(
        major,
        Val::Int(if first == "3.8" { 1 } else { 2 }),
        "numpy major version on {first}"
    );
    exec("left_over = 1").unwrap();
    if kind == "finalize" {
        assert_eq!(
            stop_with(1).unwrap(),
            2,
            "finalised and pinned: {}",
            stop_report()
        );
        let report = stop_report();
        assert!(report.contains("\"kind\":\"finalized\""), "{report}");
        refused_clearly(other, &other_venv);
        let (_, minor) = first.split_once('.').unwrap();
        let minor: u32 = minor.parse().unwrap();
        let restarted = start(first_venv.to_str().unwrap());
        if minor >= 14 {
            let e = restarted.unwrap_err();
            assert!(e.contains("cannot start Python again"), "{e}");
            return;
        }
        restarted.unwrap();
        exec("import json, decimal\nassert json.dumps([1]) == '[1]'\nassert str(decimal.Decimal(1) / 8) == '0.125'").unwrap();
        let e = exec("import numpy").unwrap_err();
        assert!(e.starts_with("ImportError"), "{e}");
        // SAFETY: the kept exception exists (the import just failed); the text is NUL-terminated.
        let tb = unsafe { std::ffi::CStr::from_ptr(py4cl2_cffi_shim::pyerr::p4s_error_text(2)) }
            .to_string_lossy()
            .into_owned();
        assert!(
            tb.contains("py4cl2-cffi: cannot import") && tb.contains("fresh process"),
            "{tb}"
        );
        assert!(stop().unwrap(), "still pinned");
        return;
    }

    assert_eq!(
        stop_with(0).unwrap(),
        1,
        "numpy makes the stop soft: {}",
        stop_report()
    );
    let report = stop_report();
    eprintln!("stop report after numpy on {first}: {report}");
    assert!(report.contains("\"kind\":\"soft\""), "{report}");
    assert!(report.contains("_multiarray_umath"), "{report}");
    refused_clearly(other, &other_venv);

    // The same interpreter resumes, numpy included; the session's own state is gone.
    for round in 0..3 {
        assert!(
            start_kind(first_venv.to_str().unwrap())
                .unwrap_or_else(|e| panic!("resume {first} #{round}: {e}")),
            "resumed, not started afresh"
        );
        let e = eval("left_over").unwrap_err();
        assert!(e.starts_with("NameError"), "__main__ was reset: {e}");
        numpy_works(first);
        exec("import json, decimal, ssl, hashlib, sqlite3, ctypes\nassert json.dumps([1]) == '[1]'\nassert str(decimal.Decimal(1) / 8) == '0.125'").unwrap();
        exec("left_over = 2").unwrap();
        assert_eq!(stop_with(0).unwrap(), 1, "soft again");
    }
    // The base install of the same version shares the libpython but not the packages: refused.
    let base = base_interpreters()
        .into_iter()
        .find(|(l, _)| l == first)
        .map(|(_, p)| p)
        .unwrap();
    let e = start(base.to_str().unwrap()).unwrap_err();
    assert_eq!(last_error_code(), -4, "{e}");
    assert!(
        e.contains("stopped softly") && e.contains("fresh process"),
        "{e}"
    );
    start(first_venv.to_str().unwrap()).unwrap();
    numpy_works(first);
    assert!(stop().unwrap());
}
