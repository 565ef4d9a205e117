//! Discovery and facts against the real interpreters of this machine (pyenv 2.7-3.13,
//! Debian's python3.11), a real venv and a conda-layout env made here, and a fake macOS
//! framework tree. Interpreters that are absent are skipped with a SKIPPED line.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use py4cl2_cffi_config::{discover, inspect, DiscoverOptions, Interpreter, Kind};

fn discover_all(extra: Vec<PathBuf>) -> Vec<Interpreter> {
    discover(&DiscoverOptions {
        extra,
        use_cache: false,
    })
    .unwrap()
    .interpreters
}

fn find<'a>(found: &'a [Interpreter], exe: &Path) -> &'a Interpreter {
    let want = canon(exe);
    found
        .iter()
        .find(|i| i.facts.is_some() && canon(i.executable()) == want && i.kind != Kind::Venv)
        .unwrap_or_else(|| panic!("{} was not discovered: {found:#?}", exe.display()))
}

/// Check one interpreter's facts against its own `python3.X-config` script.
fn check_facts(
    i: &Interpreter,
    version: &str,
    prefix: &Path,
    libpython: &Path,
    config_script: &Path,
) {
    assert!(i.is_usable(), "{}: {:?}", i.path.display(), i.problem);
    let f = i.facts.as_ref().unwrap();
    assert_eq!(f.version.to_string(), version);
    assert!(
        f.version_string.starts_with(version),
        "{}",
        f.version_string
    );
    assert_eq!(f.implementation, "cpython");
    assert_eq!(canon(&f.prefix), canon(prefix));
    assert_eq!(canon(&f.base_prefix), canon(prefix));
    assert_eq!(f.abiflags, "");
    assert_eq!(f.libpython.as_deref().map(canon), Some(canon(libpython)));
    assert!(libpython.is_absolute() && libpython.is_file());
    assert!(!f.site_packages.is_empty());
    if let Some(script) = real(config_script) {
        assert_eq!(
            f.ldflags,
            flags_of(&script, &["--ldflags", "--embed"]),
            "{}",
            script.display()
        );
        assert_eq!(
            f.includes,
            flags_of(&script, &["--includes"]),
            "{}",
            script.display()
        );
    }
}

#[test]
fn pyenv_and_debian_interpreters_have_the_facts_of_their_config_scripts() {
    let found = discover_all(vec![]);
    for version in &pyenv_versions() {
        let version = version.as_str();
        let Some(exe) = pyenv_python(version) else {
            continue;
        };
        let prefix = pyenv_root().join("versions").join(version);
        let i = find(&found, &exe);
        assert_eq!(i.kind, Kind::Pyenv, "{}", exe.display());
        let x_y = xy(version);
        check_facts(
            i,
            version,
            &prefix,
            &prefix.join(format!("lib/libpython{x_y}.so.1.0")),
            &prefix.join(format!("bin/python{x_y}-config")),
        );
    }
    if let Some(exe) = real("/usr/bin/python3.11") {
        let i = find(&found, &exe);
        assert_eq!(i.kind, Kind::System);
        assert_eq!(i.version().unwrap().major, 3);
        let version = i.version().unwrap().to_string();
        check_facts(
            i,
            &version,
            Path::new("/usr"),
            Path::new("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"),
            Path::new("/usr/bin/python3.11-config"),
        );
    }
}

#[test]
fn old_interpreters_are_listed_as_unusable() {
    let found = discover_all(vec![]);
    for series in ["2.7", "3.6", "3.7"] {
        let Some(version) = pyenv_version(series) else {
            continue;
        };
        let Some(exe) = pyenv_python(&version) else {
            continue;
        };
        let i = find(&found, &exe);
        assert_eq!(i.version().unwrap().to_string(), version);
        assert!(!i.is_usable());
        assert_eq!(i.problem.as_deref(), Some("older than 3.8"), "{version}");
    }
}

#[test]
fn symlinked_duplicates_are_collapsed() {
    let found = discover_all(vec![]);
    let mut seen = std::collections::HashSet::new();
    for i in found.iter().filter(|i| i.facts.is_some()) {
        let key = (
            canon(i.executable()),
            canon(&i.facts.as_ref().unwrap().prefix),
        );
        assert!(seen.insert(key.clone()), "listed twice: {key:?}");
    }
}

#[test]
fn a_venv_is_found_as_a_venv_with_its_base_libpython() {
    let Some(v312) = pyenv_version("3.12") else {
        return;
    };
    let python = pyenv_python(&v312).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    make_venv(&python, &venv);
    let base = canon(&pyenv_root().join("versions").join(&v312));

    let i = inspect(&venv).unwrap();
    assert_eq!(i.kind, Kind::Venv);
    assert!(i.is_usable(), "{:?}", i.problem);
    let f = i.facts.as_ref().unwrap();
    assert_eq!(
        f.executable,
        venv.join("bin/python"),
        "the venv's own path, not its target"
    );
    assert_eq!(canon(&f.prefix), canon(&venv));
    assert_eq!(canon(&f.base_prefix), base);
    assert_eq!(
        f.libpython.as_deref().map(canon),
        Some(base.join("lib/libpython3.12.so.1.0"))
    );
    assert_eq!(
        f.ldflags,
        flags_of(
            &base.join("bin/python3.12-config"),
            &["--ldflags", "--embed"]
        )
    );
    assert!(
        f.site_packages.iter().any(|p| p.starts_with(&venv)),
        "{:?}",
        f.site_packages
    );

    // Discovery lists the venv and, separately, its base interpreter.
    let found = discover_all(vec![venv.clone()]);
    let v = found
        .iter()
        .find(|i| i.facts.as_ref().is_some_and(|f| f.prefix == venv))
        .expect("venv discovered");
    assert_eq!(v.kind, Kind::Venv);
    assert_eq!(find(&found, &python).kind, Kind::Pyenv);
}

#[test]
fn a_conda_layout_env_is_found_as_conda() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("condaenv");
    make_venv(&python, &env);
    std::fs::create_dir_all(env.join("conda-meta")).unwrap();
    std::fs::write(env.join("conda-meta/history"), "==> 2024-01-01 <==\n").unwrap();

    let i = inspect(&env).unwrap();
    assert_eq!(i.kind, Kind::Conda);
    assert!(i.is_usable(), "{:?}", i.problem);
    assert_eq!(i.facts.as_ref().unwrap().prefix, env);
}

#[test]
fn a_framework_tree_is_classified_and_its_libpython_derived() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir
        .path()
        .join("Library/Frameworks/Python.framework/Versions/3.12");
    let exe = root.join("bin/python3.12");
    std::fs::create_dir_all(root.join("include/python3.12")).unwrap();
    std::fs::write(root.join("Python"), b"").unwrap();
    // A framework build whose sysconfig names no library that exists: the layout supplies it.
    let mut facts = canned_facts(&exe, &root, &[PathBuf::from("/gone/Python")]);
    facts["platform"] = "darwin".into();
    fake_python(&exe, &facts);

    let i = inspect(&root).unwrap();
    assert_eq!(i.kind, Kind::Framework);
    assert!(i.is_usable(), "{:?}", i.problem);
    let f = i.facts.unwrap();
    assert_eq!(f.libpython, Some(root.join("Python")));
    let inc = root.join("include/python3.12");
    assert_eq!(
        f.includes,
        format!("-I{} -I{}", inc.display(), inc.display())
    );
    assert_eq!(
        f.ldflags, "-lpython3.12 -ldl -lm",
        "macOS uses python-config.py's flags"
    );
}

#[test]
fn python2_is_run_without_dash_i_and_reported() {
    let Some(v27) = pyenv_version("2.7") else {
        return;
    };
    let exe = pyenv_python(&v27).unwrap();
    let i = inspect(&exe).unwrap();
    assert_eq!(i.version().unwrap().to_string(), v27);
    assert_eq!(i.problem.as_deref(), Some("older than 3.8"));
}
