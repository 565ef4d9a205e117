//! The venv source: the active `$VIRTUAL_ENV`, virtualenvwrapper's `$WORKON_HOME`
//! (default `~/.virtualenvs`), `./.venv`, and folders named by the user. A venv is a folder
//! with a `pyvenv.cfg` naming the `home` of its base interpreter.

use std::path::{Path, PathBuf};

use super::{python_in_prefix, Candidate};
use crate::Kind;

/// What `pyvenv.cfg` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyvenvCfg {
    /// `home`: the folder of the base interpreter's executable.
    pub home: PathBuf,
    /// `version` (or `version_info`), when present.
    pub version: Option<String>,
}

/// Whether `dir` is a venv (it has a `pyvenv.cfg`).
pub fn is_venv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

/// Read `dir/pyvenv.cfg` the way CPython does (`key = value` lines, other lines ignored),
/// and check that its `home` exists. The error says what is wrong.
pub fn read_pyvenv_cfg(dir: &Path) -> Result<PyvenvCfg, String> {
    let path = dir.join("pyvenv.cfg");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read it ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut home = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "home" => home = Some(value.trim().to_string()),
            "version" | "version_info" => version = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let home = home.ok_or_else(|| "it has no `home = ...` line".to_string())?;
    if home.is_empty() {
        return Err("its `home` is empty".into());
    }
    let home = PathBuf::from(home);
    if !home.is_dir() {
        return Err(format!("its home {} does not exist", home.display()));
    }
    Ok(PyvenvCfg { home, version })
}

/// The candidate of one venv folder, or `None` if `dir` is not a venv. A venv whose
/// `pyvenv.cfg` is broken is a candidate that carries the problem and is not run.
pub(crate) fn candidate(dir: &Path, kind: Kind) -> Option<Candidate> {
    if !is_venv(dir) {
        return None;
    }
    let exe = python_in_prefix(dir).unwrap_or_else(|| dir.join("bin").join("python"));
    let mut c = Candidate::new(exe, kind);
    match read_pyvenv_cfg(dir) {
        Err(reason) => c.problem = Some(format!("broken pyvenv.cfg: {reason}")),
        Ok(_) if !super::is_executable(&c.path) => {
            c.problem = Some("the venv has no bin/python".to_string());
        }
        Ok(_) => {}
    }
    Some(c)
}

/// The venv folders inside a folder of venvs (`$WORKON_HOME`), in name order.
pub fn venvs_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| is_venv(p))
        .collect();
    dirs.sort();
    dirs
}

/// The candidates of the given venv folders (folders that are not venvs are skipped).
pub(crate) fn candidates(dirs: &[PathBuf]) -> Vec<Candidate> {
    dirs.iter()
        .filter_map(|d| candidate(d, Kind::Venv))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rejects_pyvenv_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("v");
        std::fs::create_dir_all(&venv).unwrap();
        let cfg = venv.join("pyvenv.cfg");

        std::fs::write(
            &cfg,
            format!(
                "home = {}\ninclude-system-site-packages = false\nversion = 3.12.1\njunk line\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let read = read_pyvenv_cfg(&venv).unwrap();
        assert_eq!(read.home, dir.path());
        assert_eq!(read.version.as_deref(), Some("3.12.1"));

        std::fs::write(&cfg, "version = 3.12.1\n").unwrap();
        assert_eq!(
            read_pyvenv_cfg(&venv).unwrap_err(),
            "it has no `home = ...` line"
        );
        let c = candidate(&venv, Kind::Venv).unwrap();
        assert_eq!(
            c.problem.as_deref(),
            Some("broken pyvenv.cfg: it has no `home = ...` line")
        );

        std::fs::write(&cfg, "home = /nonexistent/bin\n").unwrap();
        assert_eq!(
            read_pyvenv_cfg(&venv).unwrap_err(),
            "its home /nonexistent/bin does not exist"
        );

        std::fs::write(&cfg, b"home = \xff\xfe\n").unwrap();
        assert_eq!(read_pyvenv_cfg(&venv).unwrap_err(), "it is not UTF-8 text");

        assert!(candidate(dir.path(), Kind::Venv).is_none());
        assert_eq!(venvs_in(dir.path()), vec![venv]);
    }
}
