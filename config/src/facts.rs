//! What one interpreter reports about itself.

use std::path::PathBuf;

/// The facts one interpreter reports about itself when run once with an embedded script.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    /// `sys.version_info` as a semantic version (`3.12.1`; pre-releases as `3.13.0-rc.1`).
    pub version: semver::Version,
    /// `sys.version`, the full banner string; the loader checks it after start.
    pub version_string: String,
    /// `sys.implementation.name` (`cpython`).
    pub implementation: String,
    /// `sys.executable`, absolute.
    pub executable: PathBuf,
    /// `sys.prefix` (the venv or conda env folder for those).
    pub prefix: PathBuf,
    /// `sys.base_prefix` (the installation a venv was made from).
    pub base_prefix: PathBuf,
    /// The real shared libpython file (absolute, exists), or `None` for a static build.
    pub libpython: Option<PathBuf>,
    /// What `pythonX.Y-config --ldflags --embed` prints, with runs of white space collapsed
    /// to one space (the script's `echo` leaves stray spaces around empty variables), computed
    /// inside the interpreter from `sysconfig` the way that script computes it.
    pub ldflags: String,
    /// What `pythonX.Y-config --includes` prints, white space collapsed likewise.
    pub includes: String,
    /// The site-packages folders of this interpreter (`site.getsitepackages()`).
    pub site_packages: Vec<PathBuf>,
    /// `sys.abiflags` (empty on most builds).
    pub abiflags: String,
}
