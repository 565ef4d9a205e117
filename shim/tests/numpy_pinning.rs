//! numpy pins libpython (`shared/notes/restart.md`). In one process per scenario: import numpy,
//! stop; then another version is refused with a clear error naming the pinned files, the same
//! interpreter starts again (its venv or its base install), and `import numpy` gives a clear
//! ImportError instead of numpy's crash. numpy 1.x on 3.8 and 2.x on 3.9–3.13.
//!
//! Each scenario runs in a child process (this test binary re-run with `--ignored pin_child`),
//! because a pinned process cannot host the other scenarios.

mod common;
use common::*;

fn run_child(first: &str, other: &str) {
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
        .env("P4S_PIN_SCENARIO", format!("{first}:{other}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "scenario {first}:{other} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn numpy_1_on_3_8_pins_and_is_refused_clearly() {
    run_child("3.8", "3.12");
}

#[test]
fn numpy_2_on_3_12_pins_and_is_refused_clearly() {
    run_child("3.12", "3.10");
}

#[test]
fn numpy_on_3_9_pins_and_restarts_safely() {
    run_child("3.9", "3.13");
}

#[test]
fn numpy_on_3_10_pins_and_restarts_safely() {
    run_child("3.10", "3.8");
}

#[test]
fn numpy_on_3_11_pins_and_restarts_safely() {
    run_child("3.11", "3.12");
}

#[test]
fn numpy_on_3_13_pins_and_restarts_safely() {
    run_child("3.13", "3.11");
}

#[test]
#[ignore = "run by the scenario tests in a child process"]
fn pin_child() {
    let scenario = std::env::var("P4S_PIN_SCENARIO").expect("run through the scenario tests");
    let (first, other) = scenario.split_once(':').unwrap();
    let first_venv = venv(first).unwrap();
    let other_venv = venv(other).unwrap();

    start(first_venv.to_str().unwrap()).unwrap();
    exec("import numpy, sys\na = numpy.arange(6.0).reshape(2, 3)\nassert a.sum() == 15.0").unwrap();
    let major = eval("int(numpy.__version__.split('.')[0])").unwrap();
    assert_eq!(
        major,
        Val::Int(if first == "3.8" { 1 } else { 2 }),
        "numpy major version on {first}"
    );
    assert!(
        stop().unwrap(),
        "numpy must pin libpython: {}",
        stop_report()
    );
    let report = stop_report();
    eprintln!("stop report after numpy on {first}: {report}");
    assert!(report.contains("_multiarray_umath"), "{report}");
    assert!(report.contains("\"pinned\":true"), "{report}");

    // Another version: refused, clearly, and nothing crashes.
    let err = start(other_venv.to_str().unwrap()).unwrap_err();
    eprintln!("start {other} after the pin: {err}");
    assert!(
        err.contains(&format!("cannot start Python {other}")),
        "{err}"
    );
    assert!(err.contains("_multiarray_umath"), "{err}");
    assert!(err.contains("fresh process"), "{err}");
    // SAFETY: plain query.
    assert_eq!(unsafe { py4cl2_cffi_shim::lifecycle::p4s_is_started() }, 0);

    // The same interpreter works again; numpy is refused with our ImportError.
    for round in 0..2 {
        start(first_venv.to_str().unwrap())
            .unwrap_or_else(|e| panic!("restart {first} #{round}: {e}"));
        exec("import json, decimal, ssl, hashlib, sqlite3, ctypes\nassert json.dumps([1]) == '[1]'\nassert str(decimal.Decimal(1) / 8) == '0.125'").unwrap();
        let e = exec("import numpy").unwrap_err();
        eprintln!(
            "import numpy after restart #{round}: {}",
            e.lines().next().unwrap_or("")
        );
        assert!(e.starts_with("ImportError"), "{e}");
        // numpy wraps our ImportError in its own; the full text keeps our explanation.
        // SAFETY: the kept exception exists (the import just failed); the text is NUL-terminated.
        let tb = unsafe { std::ffi::CStr::from_ptr(py4cl2_cffi_shim::errors::p4s_error_text(2)) }
            .to_string_lossy()
            .into_owned();
        assert!(
            tb.contains("py4cl2-cffi: cannot import") && tb.contains("fresh process"),
            "{tb}"
        );
        assert!(stop().unwrap(), "still pinned");
    }
    // The base install of the same version (same libpython file) is fine too.
    let base = base_interpreters()
        .into_iter()
        .find(|(l, _)| l == first)
        .map(|(_, p)| p)
        .unwrap();
    start(base.to_str().unwrap()).unwrap();
    let Val::Str(prefix) = eval("__import__('sys').prefix").unwrap() else {
        panic!()
    };
    assert!(
        !prefix.contains(".cache"),
        "base prefix expected, got {prefix}"
    );
    assert!(
        exec("import numpy").is_err(),
        "the base install has no numpy, or it is refused"
    );
    assert!(stop().unwrap());
}
