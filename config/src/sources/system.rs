//! The system source: interpreters installed by the OS or by hand in `/usr/bin` and
//! `/usr/local/bin` (Debian's `python3.11`, a `make altinstall`).

use std::path::{Path, PathBuf};

use super::{pythons_in_dir, Candidate};
use crate::Kind;

/// The folders of system installs.
pub fn system_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")]
}

/// Whether `path` sits directly in one of the system folders.
pub(crate) fn is_system_path(path: &Path) -> bool {
    path.parent()
        .is_some_and(|d| system_dirs().iter().any(|s| s == d))
}

/// The interpreters named like Python in the given folders.
pub(crate) fn candidates(dirs: &[PathBuf]) -> Vec<Candidate> {
    dirs.iter()
        .flat_map(|d| pythons_in_dir(d))
        .map(|p| Candidate::new(p, Kind::System))
        .collect()
}
