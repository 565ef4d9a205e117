//! Bad configurations never crash `p4s_start`: a libpython that is gone, a libpython of another
//! version than recorded (Debian's and pyenv's 3.11 share a SONAME), a file that is not a shared
//! library, a config file that is not TOML, an unknown spec — each a clear error, and Python
//! starts normally afterwards.

mod common;
use common::*;
use py4cl2_cffi_shim::lifecycle::{p4s_is_started, p4s_start};

fn start_configured() -> Result<(), String> {
    // SAFETY: NULL spec means "the configured interpreter".
    match unsafe { p4s_start(std::ptr::null(), 0) } {
        0 => Ok(()),
        st => Err(format!("status {st}: {}", last_error())),
    }
}

#[test]
fn bad_configurations_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("PY4CL2_CFFI_CONFIG", &cfg) };
    let cli = env!("CARGO_MANIFEST_DIR").to_string() + "/../target/release/py4cl2-cffi-config";
    let cli = if std::path::Path::new(&cli).exists() {
        cli
    } else {
        env!("CARGO_MANIFEST_DIR").to_string() + "/../target/debug/py4cl2-cffi-config"
    };
    let ok = std::process::Command::new(&cli)
        .args(["use", "3.12"])
        .status();
    let Ok(status) = ok else {
        panic!("cannot run {cli}: build the workspace first");
    };
    assert!(status.success());
    let good = std::fs::read_to_string(&cfg).unwrap();
    let lib312 = good
        .lines()
        .find(|l| l.starts_with("libpython = "))
        .unwrap()
        .to_string();

    // 1. The recorded libpython is gone.
    let missing = good.replace(&lib312, "libpython = \"/nonexistent/libpython3.12.so.1.0\"");
    std::fs::write(&cfg, &missing).unwrap();
    let e = start_configured().unwrap_err();
    eprintln!("missing libpython: {e}");
    assert!(e.contains("/nonexistent/libpython3.12.so.1.0"), "{e}");

    // 2. A libpython of another version under the recorded facts.
    let other = base_interpreters()
        .into_iter()
        .find(|(l, _)| l == "3.11")
        .map(|(_, p)| {
            p.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("lib/libpython3.11.so.1.0")
        });
    if let Some(lib311) = other {
        let wrong = good.replace(&lib312, &format!("libpython = \"{}\"", lib311.display()));
        std::fs::write(&cfg, &wrong).unwrap();
        let e = start_configured().unwrap_err();
        eprintln!("wrong-version libpython: {e}");
        assert!(e.contains("3.11") && e.contains("3.12.1"), "{e}");
        // SAFETY: plain query.
        assert_eq!(unsafe { p4s_is_started() }, 0);
    }

    // 3. A file that is not a shared library.
    let not_lib = dir.path().join("libpython3.12.so.1.0");
    std::fs::write(&not_lib, "not an ELF file").unwrap();
    let bogus = good.replace(&lib312, &format!("libpython = \"{}\"", not_lib.display()));
    std::fs::write(&cfg, &bogus).unwrap();
    let e = start_configured().unwrap_err();
    eprintln!("not a library: {e}");
    assert!(e.contains("cannot open libpython"), "{e}");

    // 4. Not TOML: the error names the line.
    std::fs::write(&cfg, "schema = 1\n[interpreter\nversion = 3\n").unwrap();
    let e = start_configured().unwrap_err();
    eprintln!("broken TOML: {e}");
    assert!(e.contains("line 2") || e.contains(":2"), "{e}");

    // 5. An unknown spec.
    let spec = "9.99";
    // SAFETY: valid spec.
    let st = unsafe { p4s_start(spec.as_ptr().cast(), spec.len() as i64) };
    assert_eq!(st, -2);
    eprintln!("unknown spec: {}", last_error());
    assert!(last_error().contains("9.99"), "{}", last_error());

    // And then the good configuration starts and works.
    std::fs::write(&cfg, &good).unwrap();
    start_configured().unwrap();
    assert_eq!(eval("6 * 7").unwrap(), Val::Int(42));
    stop().unwrap();
}
