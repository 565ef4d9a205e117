//! Helpers shared by the integration tests: real interpreters (skipped loudly when absent),
//! fake interpreters, venvs, and running the CLI against a private config and cache.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The pyenv root of this machine (`$PYENV_ROOT`, else `~/.pyenv`).
pub fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv")
        })
}

/// `path` if it exists; otherwise say loudly that the check depending on it is skipped.
pub fn real(path: impl Into<PathBuf>) -> Option<PathBuf> {
    let path = path.into();
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIPPED: {} is absent on this machine", path.display());
        None
    }
}

/// The newest installed pyenv version of series `X.Y` (`3.12` → `3.12.1`), or the exact
/// `X.Y.Z` given; `None`, said loudly, when there is none.
pub fn pyenv_version(series: &str) -> Option<String> {
    let dir = pyenv_root().join("versions");
    let mut found: Vec<(Vec<u32>, String)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n == series || n.starts_with(&format!("{series}.")))
                .filter_map(|n| {
                    let parts: Option<Vec<u32>> = n.split('.').map(|x| x.parse().ok()).collect();
                    parts.map(|p| (p, n))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let v = found.pop().map(|(_, n)| n);
    if v.is_none() {
        let msg = format!("SKIPPED: no pyenv Python {series} under {}", dir.display());
        if std::env::var_os("PY4CL2_CFFI_REQUIRE_ALL").is_some()
            && !system_pythons()
            && expected_series().iter().any(|s| s == series)
        {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    v
}

/// The python of a pyenv version (`3.12` for the newest 3.12.x, or `3.12.1`), if installed.
pub fn pyenv_python(series: &str) -> Option<PathBuf> {
    let version = pyenv_version(series)?;
    real(
        pyenv_root()
            .join("versions")
            .join(version)
            .join("bin/python"),
    )
}

/// The Python series this run must cover: `PY4CL2_CFFI_VERSIONS` (space-separated; "3.14 3.15"
/// inside the Debian sid root), else 3.8–3.13.
pub fn expected_series() -> Vec<String> {
    match std::env::var("PY4CL2_CFFI_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(String::from).collect(),
        _ => ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// Whether this run's interpreters are the distribution's `/usr/bin/pythonX.Y` rather than
/// pyenv's (`PY4CL2_CFFI_PYTHONS=system`, set inside the Debian sid root): pyenv's absence is
/// then a loud skip, and the distribution tests require those interpreters instead.
pub fn system_pythons() -> bool {
    std::env::var("PY4CL2_CFFI_PYTHONS").is_ok_and(|v| v == "system")
}

/// The full pyenv versions of the series the run requires (see [`expected_series`]) that are
/// installed.
pub fn pyenv_versions() -> Vec<String> {
    expected_series()
        .iter()
        .filter_map(|s| pyenv_version(s))
        .collect()
}

/// `X.Y` of `X.Y.Z`.
pub fn xy(version: &str) -> &str {
    version.rsplit_once('.').unwrap().0
}

/// Write an executable file.
pub fn write_exe(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake interpreter: a shell script printing `json` whatever it is asked.
pub fn fake_python(path: &Path, json: &serde_json::Value) {
    write_exe(path, &format!("#!/bin/sh\ncat <<'JSON'\n{json}\nJSON\n"));
}

/// The answer a real CPython 3.12 at `prefix` would give, with `libpython` as its library.
pub fn canned_facts(exe: &Path, prefix: &Path, libpython: &[PathBuf]) -> serde_json::Value {
    let p = prefix.display();
    serde_json::json!({
        "version_info": [3, 12, 1, "final", 0],
        "version_string": "3.12.1 (fake)",
        "implementation": "cpython",
        "executable": exe,
        "prefix": prefix,
        "base_prefix": prefix,
        "abiflags": "",
        "platform": "linux",
        "problems": [],
        "sh": {"ldflags": format!(" -L{p}/lib -lpython3.12 -ldl  -lm "), "includes": format!("-I{p}/include/python3.12 -I{p}/include/python3.12")},
        "py": {"ldflags": "-lpython3.12 -ldl -lm", "includes": format!("-I{p}/include/python3.12 -I{p}/include/python3.12")},
        "py_enable_shared": true,
        "mapped_libpython": [],
        "libpython_candidates": libpython,
        "site_packages": [format!("{p}/lib/python3.12/site-packages")],
    })
}

/// Make a venv at `dir` with `python` (fast: no pip).
pub fn make_venv(python: &Path, dir: &Path) {
    let out = Command::new(python)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a command and return its output, normalized like the facts (white space collapsed).
pub fn flags_of(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{} {args:?} failed", cmd.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `path` with symlinks resolved.
pub fn canon(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The CLI, with its config file and cache inside `dir` and no active venv or conda env.
pub fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_py4cl2-cffi-config"));
    cmd.env("PY4CL2_CFFI_CONFIG", dir.join("config.toml"))
        .env("PY4CL2_CFFI_CACHE_DIR", dir.join("cache"))
        .env("PYENV_ROOT", pyenv_root())
        .env_remove("VIRTUAL_ENV")
        .env_remove("CONDA_PREFIX")
        .env_remove("CONDA_EXE")
        .current_dir(dir);
    cmd
}

/// Run `cmd` with `args`.
pub fn run(cmd: &mut Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Assert a bad-input failure: exit 2, one line on stderr with the program's prefix,
/// containing `needle`.
pub fn assert_bad_input(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("py4cl2-cffi-config: error: "), "{err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
}
