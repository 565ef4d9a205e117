//! Distribution Pythons: Debian/Ubuntu's real interpreters (multiarch libpython, dist-packages,
//! EXTERNALLY-MANAGED, no -config script without -dev), venvs made from them, and fake
//! interpreters for what this machine cannot have: Fedora's lib64 layout, free-threaded builds
//! and a minor version newer than this build knows.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use py4cl2_cffi_config::{inspect, Kind};

/// Debian's `/usr/bin/python3.X` of this run: 3.11 on the Debian 12 host (tools/setup.sh
/// installs it), the run's versions inside the Debian sid root (`PY4CL2_CFFI_PYTHONS=system`,
/// where a missing one fails under `PY4CL2_CFFI_REQUIRE_ALL`).
fn debian_pythons() -> Vec<PathBuf> {
    let series = if system_pythons() {
        expected_series()
    } else {
        vec!["3.11".to_string()]
    };
    let mut out = Vec::new();
    for xy in series {
        let exe = PathBuf::from(format!("/usr/bin/python{xy}"));
        if exe.is_file() {
            // Elsewhere than Debian hosts (a CI runner's Ubuntu) the interpreter may lack its
            // shared library package: nothing to test there, said loudly.
            let usable = inspect(&exe).map(|i| i.problem);
            match usable {
                Ok(Some(problem)) if !system_pythons() => {
                    eprintln!("SKIPPED: {} cannot be used here: {problem}", exe.display())
                }
                _ => out.push(exe),
            }
        } else {
            let msg = format!("SKIPPED: no distribution Python {}", exe.display());
            if system_pythons() && std::env::var_os("PY4CL2_CFFI_REQUIRE_ALL").is_some() {
                panic!("{msg}");
            }
            eprintln!("{msg}");
        }
    }
    out
}

#[test]
fn debian_interpreters_have_their_layout_in_the_facts() {
    for exe in debian_pythons() {
        let i = inspect(&exe).unwrap();
        assert_eq!(i.kind, Kind::System, "{}", exe.display());
        assert!(i.is_usable(), "{}: {:?}", exe.display(), i.problem);
        let f = i.facts.as_ref().unwrap();
        let xy = format!("{}.{}", f.version.major, f.version.minor);
        // Multiarch: the library is in /usr/lib/<triple>/, not in LIBDIR's plain /usr/lib.
        assert!(!f.multiarch.is_empty(), "{}: no MULTIARCH", exe.display());
        assert_eq!(
            f.libpython.as_deref(),
            Some(Path::new(&format!(
                "/usr/lib/{}/libpython{xy}.so.1.0",
                f.multiarch
            ))),
            "{}",
            exe.display()
        );
        assert!(
            f.site_packages.iter().any(|p| p.ends_with("dist-packages")),
            "{}: {:?}",
            exe.display(),
            f.site_packages
        );
        assert_eq!(f.platlibdir, "lib");
        assert!(!f.free_threaded);
        assert_eq!(
            f.externally_managed,
            Path::new(&format!("/usr/lib/python{xy}/EXTERNALLY-MANAGED")).is_file(),
            "{}",
            exe.display()
        );
        // The -config script only with pythonX.Y-dev; the flags are known either way.
        let script = PathBuf::from(format!("/usr/bin/python{xy}-config"));
        assert_eq!(f.config_script, script.is_file().then_some(script.clone()));
        assert!(
            f.ldflags.contains(&format!("-lpython{xy}")),
            "{}",
            f.ldflags
        );
        if script.is_file() {
            assert_eq!(f.ldflags, flags_of(&script, &["--ldflags", "--embed"]));
        }
    }
}

#[test]
fn debian_interpreters_and_venvs_over_them_can_be_used() {
    for exe in debian_pythons() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = run(&mut cli(d), &["use", exe.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value =
            serde_json::from_slice(&run(&mut cli(d), &["print-configuration", "--json"]).stdout)
                .unwrap();
        let lib = v["libpython"].as_str().unwrap().to_string();
        assert!(
            lib.starts_with("/usr/lib/") && lib.contains("-linux-gnu/libpython"),
            "{lib}"
        );
        let version = v["version"].as_str().unwrap().to_string();
        let xy = version.rsplit_once('.').unwrap().0;
        let marker = Path::new(&format!("/usr/lib/python{xy}/EXTERNALLY-MANAGED")).is_file();
        assert_eq!(
            v["externally_managed"],
            serde_json::Value::Bool(marker),
            "{xy}"
        );
        if marker {
            let text = stdout(&run(&mut cli(d), &["print-configuration"]));
            assert!(text.contains("EXTERNALLY-MANAGED"), "{text}");
        }

        // A venv made from it: its own executable, the base's multiarch libpython, and not
        // externally managed (PEP 668 does not apply inside a venv).
        let venv = d.join("venv");
        make_venv(&exe, &venv);
        let i = inspect(&venv).unwrap();
        assert_eq!(i.kind, Kind::Venv);
        assert!(i.is_usable(), "{:?}", i.problem);
        let f = i.facts.as_ref().unwrap();
        assert_eq!(f.executable, venv.join("bin/python"));
        assert_eq!(canon(&f.base_prefix), PathBuf::from("/usr"));
        assert_eq!(
            f.libpython.as_deref().map(|p| p.display().to_string()),
            Some(lib.clone())
        );
        assert!(!f.externally_managed, "a venv is never externally managed");
        assert!(f.site_packages.iter().any(|p| p.starts_with(&venv)));
        let out = run(&mut cli(d), &["use", venv.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value =
            serde_json::from_slice(&run(&mut cli(d), &["print-configuration", "--json"]).stdout)
                .unwrap();
        assert_eq!(v["kind"], "venv");
        assert_eq!(v["libpython"], lib.as_str());
    }
}

/// A fake interpreter at `prefix/bin/python3.X` answering like a real one, with `edit`
/// applied to the canned answer.
fn fake(
    prefix: &Path,
    lib_rel: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (PathBuf, PathBuf) {
    let exe = prefix.join("bin/python3");
    let lib = prefix.join(lib_rel);
    std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
    std::fs::write(&lib, b"").unwrap();
    let mut facts = canned_facts(&exe, prefix, std::slice::from_ref(&lib));
    edit(&mut facts);
    fake_python(&exe, &facts);
    (exe, lib)
}

#[test]
fn a_fedora_lib64_layout_is_discovered_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = d.join("usr");
    let p = prefix.display().to_string();
    let (exe, lib) = fake(&prefix, "lib64/libpython3.12.so.1.0", |f| {
        f["platlibdir"] = "lib64".into();
        f["multiarch"] = "".into();
        f["sh"]["ldflags"] = format!("-L{p}/lib64 -lpython3.12 -ldl -lm").into();
        f["site_packages"] = serde_json::json!([
            format!("{p}/lib64/python3.12/site-packages"),
            format!("{p}/lib/python3.12/site-packages")
        ]);
    });
    let i = inspect(&exe).unwrap();
    assert!(i.is_usable(), "{:?}", i.problem);
    let f = i.facts.as_ref().unwrap();
    assert_eq!(f.platlibdir, "lib64");
    assert_eq!(f.libpython.as_deref(), Some(lib.as_path()));
    assert_eq!(f.site_packages.len(), 2);

    let out = run(&mut cli(d), &["use", exe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&run(&mut cli(d), &["print-configuration", "--json"]).stdout)
            .unwrap();
    assert_eq!(v["libpython"], lib.display().to_string());
    assert_eq!(v["platlibdir"], "lib64");
    assert_eq!(v["ldflags"], format!("-L{p}/lib64 -lpython3.12 -ldl -lm"));
    let listed = stdout(&run(&mut cli(d), &["discover", exe.to_str().unwrap()]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&lib.display().to_string())),
        "{listed}"
    );
}

#[test]
fn a_free_threaded_build_is_reported_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (exe, _) = fake(&d.join("ft"), "lib/libpython3.14t.so.1.0", |f| {
        f["version_info"] = serde_json::json!([3, 14, 0, "final", 0]);
        f["version_string"] = "3.14.0 free-threading build (fake)".into();
        f["abiflags"] = "t".into();
        f["gil_disabled"] = true.into();
    });
    let i = inspect(&exe).unwrap();
    assert!(i.facts.as_ref().unwrap().free_threaded, "the facts say so");
    assert!(!i.is_usable());
    assert!(
        i.problem.as_deref().unwrap().contains("free-threaded"),
        "{:?}",
        i.problem
    );

    // `use` refuses it (bad input, exit 2, one line naming the reason) and writes nothing.
    let out = run(&mut cli(d), &["use", exe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("free-threaded"), "{}", stderr(&out));
    assert!(!d.join("config.toml").exists());
    // Listed as unusable, with the reason.
    let listed = stdout(&run(&mut cli(d), &["discover", exe.to_str().unwrap()]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains("unusable (a free-threaded build") && l.contains("3.14.0")),
        "{listed}"
    );
    // Only the abiflags (an interpreter whose sysconfig lacks Py_GIL_DISABLED): still refused.
    let (exe2, _) = fake(&d.join("ft2"), "lib/libpython3.13t.so.1.0", |f| {
        f["version_info"] = serde_json::json!([3, 13, 1, "final", 0]);
        f["abiflags"] = "t".into();
    });
    assert!(inspect(&exe2).unwrap().facts.unwrap().free_threaded);
}

#[test]
fn a_newer_minor_is_used_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (exe, lib) = fake(&d.join("p316"), "lib/libpython3.16.so.1.0", |f| {
        f["version_info"] = serde_json::json!([3, 16, 0, "final", 0]);
        f["version_string"] = "3.16.0 (fake)".into();
    });
    let i = inspect(&exe).unwrap();
    assert!(i.is_usable(), "newer is not unusable: {:?}", i.problem);
    let out = run(&mut cli(d), &["use", exe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("newer than the newest version").count(),
        1,
        "one warning: {err}"
    );
    assert!(err.contains("3.16") && err.contains("3.15"), "{err}");
    let v: serde_json::Value =
        serde_json::from_slice(&run(&mut cli(d), &["print-configuration", "--json"]).stdout)
            .unwrap();
    assert_eq!(v["version"], "3.16.0");
    assert_eq!(v["libpython"], lib.display().to_string());
    let listed = stdout(&run(&mut cli(d), &["discover", exe.to_str().unwrap()]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains("3.16.0") && l.contains("newer than 3.15")),
        "{listed}"
    );
}

#[test]
fn an_interpreter_still_open_for_writing_is_started_once_it_is_closed() {
    // The reproducer of an ETXTBSY flake: an executable that some process still holds open for
    // writing (here this test, in the sid run a child forked by another test thread) cannot be
    // executed. Inspecting it must wait for the writer instead of failing.
    let dir = tempfile::tempdir().unwrap();
    let (exe, _) = fake(&dir.path().join("busy"), "lib/libpython3.12.so.1.0", |_| {});
    let writer = std::fs::OpenOptions::new().append(true).open(&exe).unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(80));
        drop(writer);
    });
    let i = inspect(&exe).expect("inspected once the writer closed the file");
    released.join().unwrap();
    assert!(i.facts.is_some(), "the facts were read");
}
