//! The pyenv source: `$PYENV_ROOT/versions/*` (default `~/.pyenv`), and the envs that the
//! pyenv-virtualenv plugin keeps under `versions/X/envs/*`.

use std::path::{Path, PathBuf};

use super::{python_in_prefix, version_key, Candidate};
use crate::Kind;

/// The pyenv root: `$PYENV_ROOT`, else `~/.pyenv`.
pub fn root(pyenv_root_var: Option<PathBuf>, home: Option<&Path>) -> Option<PathBuf> {
    pyenv_root_var
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| home.map(|h| h.join(".pyenv")))
}

fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort_by_key(|n| version_key(n));
    names
        .into_iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_dir())
        .collect()
}

/// The interpreters of every pyenv version, oldest first, then their envs.
pub(crate) fn candidates(root: &Path) -> Vec<Candidate> {
    let versions = sorted_subdirs(&root.join("versions"));
    let envs = versions
        .iter()
        .flat_map(|v| sorted_subdirs(&v.join("envs")));
    versions
        .iter()
        .cloned()
        .chain(envs)
        .filter_map(|prefix| python_in_prefix(&prefix))
        .map(|p| Candidate::new(p, Kind::Pyenv))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lists_versions_in_version_order() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["3.10.13", "3.9.18", "2.7.18", "broken"] {
            std::fs::create_dir_all(dir.path().join("versions").join(v).join("bin")).unwrap();
        }
        for v in ["3.10.13", "3.9.18", "2.7.18"] {
            let p = dir.path().join("versions").join(v).join("bin/python");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let found: Vec<String> = candidates(dir.path())
            .into_iter()
            .map(|c| {
                c.path
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(found, ["2.7.18", "3.9.18", "3.10.13"]);
        assert_eq!(
            root(None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.pyenv"))
        );
        assert_eq!(
            root(Some("/p".into()), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/p"))
        );
    }
}
