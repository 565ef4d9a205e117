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
    /// `sys.abiflags` (empty on most builds; `t` on a free-threaded one).
    pub abiflags: String,
    /// A free-threaded build (`Py_GIL_DISABLED`, 3.13t/3.14t): its object header and refcount
    /// functions differ and it has no GIL to take, so it cannot be used yet (see
    /// docs/internals.md).
    #[serde(default)]
    pub free_threaded: bool,
    /// The distribution marked this installation as managed by its package manager (PEP 668's
    /// `EXTERNALLY-MANAGED` in the standard library folder, as on Debian and Ubuntu): pip
    /// refuses to install into it, so packages go into a venv made from it. Never true for a
    /// venv itself.
    #[serde(default)]
    pub externally_managed: bool,
    /// `sysconfig`'s `MULTIARCH` (`x86_64-linux-gnu` on Debian and Ubuntu, where libpython is
    /// in `/usr/lib/<multiarch>/`), empty where there is none.
    #[serde(default)]
    pub multiarch: String,
    /// `sys.platlibdir`: `lib`, or `lib64` on Fedora, RHEL and openSUSE (3.9+; `lib` before).
    #[serde(default)]
    pub platlibdir: String,
    /// The `pythonX.Y-config` script of this installation, when installed (Debian and Ubuntu
    /// ship it only in `pythonX.Y-dev`; nothing here needs it: `ldflags` and `includes` are
    /// computed the way it computes them).
    #[serde(default)]
    pub config_script: Option<PathBuf>,
}
