//! The conda source: the active `$CONDA_PREFIX`, the envs listed in
//! `~/.conda/environments.txt`, and the envs under conda roots (`$CONDA_EXE`'s installation,
//! `~/miniconda3`, `~/anaconda3`, `~/miniforge3`, `/opt/conda`, ...: the root itself and
//! `root/envs/*`). A conda env is a folder with `conda-meta/`.

use std::path::{Path, PathBuf};

use super::{python_in_prefix, Candidate};
use crate::Kind;

/// Whether `dir` is a conda env (it has a `conda-meta/` folder).
pub fn is_conda_env(dir: &Path) -> bool {
    dir.join("conda-meta").is_dir()
}

/// The env folders listed in an `environments.txt` (one path a line).
pub fn listed_envs(environments_txt: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(environments_txt)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect()
}

/// Where conda installations usually are; `conda_exe` is `$CONDA_EXE` (`<root>/bin/conda`).
pub fn default_roots(conda_exe: Option<&Path>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(root) = conda_exe.and_then(Path::parent).and_then(Path::parent) {
        roots.push(root.to_path_buf());
    }
    if let Some(home) = home {
        for name in [
            "miniconda3",
            "anaconda3",
            "miniforge3",
            "mambaforge",
            "micromamba",
            ".conda",
        ] {
            roots.push(home.join(name));
        }
    }
    roots.push(PathBuf::from("/opt/conda"));
    roots
}

/// The env folders of a conda root: the root itself (the `base` env) and `envs/*`.
pub fn envs_of_root(root: &Path) -> Vec<PathBuf> {
    let mut envs = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root.join("envs")) {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        more.sort();
        envs.extend(more);
    }
    envs
}

/// The candidate of one conda env folder, or `None` when it is not one or has no python.
pub(crate) fn candidate(dir: &Path) -> Option<Candidate> {
    if !is_conda_env(dir) {
        return None;
    }
    python_in_prefix(dir).map(|p| Candidate::new(p, Kind::Conda))
}

/// The candidates of the given env folders (other folders are skipped).
pub(crate) fn candidates(envs: &[PathBuf]) -> Vec<Candidate> {
    envs.iter().filter_map(|d| candidate(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_envs_of_a_root_and_a_list() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("miniconda3");
        for env in [root.clone(), root.join("envs/a"), root.join("envs/nometa")] {
            std::fs::create_dir_all(env.join("bin")).unwrap();
            let exe = env.join("bin/python");
            std::fs::write(&exe, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir_all(root.join("conda-meta")).unwrap();
        std::fs::create_dir_all(root.join("envs/a/conda-meta")).unwrap();

        let roots = default_roots(Some(&root.join("bin/conda")), Some(dir.path()));
        assert_eq!(roots[0], root);
        let envs = envs_of_root(&root);
        let found: Vec<PathBuf> = candidates(&envs).into_iter().map(|c| c.path).collect();
        assert_eq!(
            found,
            vec![root.join("bin/python"), root.join("envs/a/bin/python")]
        );

        let list = dir.path().join("environments.txt");
        std::fs::write(
            &list,
            format!("{}\n\n{}\n", root.display(), root.join("envs/a").display()),
        )
        .unwrap();
        assert_eq!(listed_envs(&list), vec![root.clone(), root.join("envs/a")]);
    }
}
