//! The `PATH` source: what a shell would find, searched with the standard library alone.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{is_executable, pythons_in_dir, Candidate};
use crate::Kind;

/// The folders of a `PATH` value, in order, without empty entries or repeats.
fn dirs_of(path_var: &OsStr) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in std::env::split_paths(path_var) {
        if !d.as_os_str().is_empty() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Every executable called `name` on `path_var`, in `PATH` order (like `which -a`).
pub fn search(name: &str, path_var: &OsStr) -> Vec<PathBuf> {
    dirs_of(path_var)
        .into_iter()
        .map(|d| d.join(name))
        .filter(|p| is_executable(p))
        .collect()
}

/// Whether `path` is a pyenv shim: a shell script that re-executes `pyenv exec`. Shims are
/// left to the pyenv source (running one costs a `pyenv` start-up and it answers with the
/// facts of a real interpreter that source finds anyway).
pub fn is_pyenv_shim(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    text.starts_with("#!") && (text.contains("libexec/pyenv\" exec") || text.contains("pyenv exec"))
}

/// Every interpreter named like Python on `path_var`, folder by folder, pyenv shims left out.
pub(crate) fn candidates(path_var: &OsStr) -> Vec<Candidate> {
    dirs_of(path_var)
        .into_iter()
        .flat_map(|d| pythons_in_dir(&d))
        .filter(|p| !is_pyenv_shim(p))
        .map(|p| Candidate::new(p, Kind::Path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn searches_in_order_and_skips_shims() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let shims = dir.path().join("shims");
        exe(&a.join("python3"), "#!/bin/sh\n");
        exe(&b.join("python3"), "#!/bin/sh\n");
        exe(&b.join("python3.12"), "#!/bin/sh\n");
        exe(
            &shims.join("python3"),
            "#!/usr/bin/env bash\nexec \"/x/libexec/pyenv\" exec \"$program\" \"$@\"\n",
        );
        std::fs::write(b.join("python"), "not executable").unwrap();

        let path_var = std::env::join_paths([&shims, &a, &b, &a]).unwrap();
        assert_eq!(
            search("python3", &path_var),
            vec![shims.join("python3"), a.join("python3"), b.join("python3")]
        );
        let found: Vec<PathBuf> = candidates(&path_var).into_iter().map(|c| c.path).collect();
        assert_eq!(
            found,
            vec![a.join("python3"), b.join("python3"), b.join("python3.12")]
        );
    }
}
