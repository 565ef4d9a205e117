//! Where interpreters are looked for: one module per source. Each lists candidate
//! executables without running them; `discover` runs them.

use std::path::{Path, PathBuf};

use crate::Kind;

pub mod conda;
pub mod framework;
pub mod path;
pub mod pyenv;
pub mod system;
pub mod venv;

/// An executable that may be a Python interpreter, and the source that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Absolute path as found (symlinks not resolved: a venv's `bin/python` is a link).
    pub path: PathBuf,
    /// The source that found it.
    pub source: Kind,
    /// Why it is unusable without even running it (a broken `pyvenv.cfg`).
    pub problem: Option<String>,
}

impl Candidate {
    pub(crate) fn new(path: PathBuf, source: Kind) -> Candidate {
        Candidate {
            path: std::path::absolute(&path).unwrap_or(path),
            source,
            problem: None,
        }
    }
}

/// Whether `name` is an interpreter name: `python`, `python3`, `python3.12`, `python2.7`.
pub(crate) fn is_python_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("python") else {
        return false;
    };
    rest.is_empty()
        || (rest
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && rest.split('.').count() <= 2)
}

/// A sort key ordering names like `3.9.18` < `3.10.13` (numbers compare as numbers).
pub(crate) fn version_key(name: &str) -> Vec<(u64, String)> {
    name.split(['.', '-'])
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            (
                digits.parse().unwrap_or(u64::MAX),
                part[digits.len()..].to_string(),
            )
        })
        .collect()
}

/// Whether `path` is a file that may be executed.
pub(crate) fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The interpreters named like Python in one folder, shortest name first (`python`,
/// `python3`, `python3.12`).
pub(crate) fn pythons_in_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_python_name(n))
        .collect();
    names.sort_by(|a, b| {
        a.len()
            .cmp(&b.len())
            .then_with(|| version_key(a).cmp(&version_key(b)))
    });
    names
        .into_iter()
        .map(|n| dir.join(n))
        .filter(|p| is_executable(p))
        .collect()
}

/// The interpreter of an installation or env folder: `bin/python`, `bin/python3`, or the
/// first `bin/python3.N`.
pub(crate) fn python_in_prefix(dir: &Path) -> Option<PathBuf> {
    let bin = dir.join("bin");
    ["python", "python3"]
        .iter()
        .map(|n| bin.join(n))
        .find(|p| is_executable(p))
        .or_else(|| pythons_in_dir(&bin).into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names() {
        for n in ["python", "python3", "python3.12", "python2.7"] {
            assert!(is_python_name(n), "{n}");
        }
        for n in [
            "python3-config",
            "python3.12-config",
            "python3.7m",
            "pythonw",
            "python3.",
            "ipython",
            "python3.1.2",
        ] {
            assert!(!is_python_name(n), "{n}");
        }
    }

    #[test]
    fn version_order() {
        let mut v = vec!["3.10.13", "3.9.18", "2.7.18", "3.13.0", "3.12.1"];
        v.sort_by_key(|n| version_key(n));
        assert_eq!(v, ["2.7.18", "3.9.18", "3.10.13", "3.12.1", "3.13.0"]);
    }
}
