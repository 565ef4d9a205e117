//! Opens libpython at run time, resolves the C-API table, starts, stops and unloads Python.
//!
//! Nothing here links libpython: [`start`] opens the file the config layer names, resolves
//! [`api::Api`] from it, initialises Python and releases the GIL; [`stop`] ends the session,
//! softly (the interpreter stays dormant, to be resumed) or by finalising and unloading.

// Errors are returned only from start and stop, never on a hot path; a rich `Pinned` variant
// is worth its size.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod arena;
pub mod elf;
pub mod ffi_types;
mod lifecycle;
#[cfg(target_os = "macos")]
mod macos;
pub mod maps;
pub mod stack;
pub mod tsd;

pub use lifecycle::{
    current, dormant, generation, interpreter, is_running, pinned, start, stop, Runtime, Started,
    StopKind, StopMode, UnloadReport,
};
pub use py4cl2_cffi_config as config;

/// The facts of the interpreter `spec` selects (`None`: the configured one), as the config
/// crate resolves it: what [`start`] is then given. Fails with [`Error::Config`].
pub fn resolve(spec: Option<&str>) -> Result<py4cl2_cffi_config::Facts, Error> {
    Ok(py4cl2_cffi_config::resolve(spec)?)
}

use std::path::PathBuf;

/// Errors of the loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required C-API symbol is not exported by the libpython that was opened.
    #[error("libpython does not export the required symbol `{name}`")]
    MissingSymbol {
        /// The C symbol.
        name: &'static str,
        /// What the dynamic linker said.
        #[source]
        source: libloading::Error,
    },
    /// Python is already running in this process.
    #[error("python is already started; stop it first to start another")]
    AlreadyStarted,
    /// Another interpreter than the one asked for is running.
    #[error("cannot start Python {requested_version} ({}): Python {running_version} ({}) is running; stop it first (pystop)", requested.display(), running.display())]
    OtherRunning {
        /// The executable of the running interpreter.
        running: PathBuf,
        /// Its version.
        running_version: String,
        /// The executable asked for.
        requested: PathBuf,
        /// Its version.
        requested_version: String,
    },
    /// A finalising stop was refused because Python threads are still running.
    #[error("cannot finalize Python while its threads are still running: {threads}; end them first, or stop without finalizing (a soft stop keeps them running)")]
    ThreadsRunning {
        /// The running threads, as `name (daemon)`.
        threads: String,
    },
    /// No interpreter is running.
    #[error("python is not started")]
    NotStarted,
    /// The interpreter has no shared libpython to load.
    #[error("{} has no shared libpython (built without --enable-shared?); pick another interpreter", executable.display())]
    NoSharedLibpython {
        /// The interpreter's executable.
        executable: PathBuf,
    },
    /// The libpython file the configuration names is gone.
    #[error("libpython {} does not exist any more; run `py4cl2-cffi-config use` again", path.display())]
    LibpythonMissing {
        /// The recorded path.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
    /// The dynamic linker refused the file.
    #[error("cannot open libpython {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the dynamic linker said.
        #[source]
        source: libloading::Error,
    },
    /// The library reports another version than the configuration recorded.
    #[error("{} is Python {found}, but the configuration recorded {expected}; run `py4cl2-cffi-config use` again", path.display())]
    VersionMismatch {
        /// The file.
        path: PathBuf,
        /// The recorded version.
        expected: String,
        /// `Py_GetVersion()` of the file.
        found: String,
    },
    /// Initialisation failed.
    #[error("python {} failed to initialise: {message}", path.display())]
    InitFailed {
        /// The libpython file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An earlier stop left another libpython mapped; only that one can start in this process.
    #[error(
        "cannot start Python {requested_version} ({}): this process still has Python {pinned_version} ({}) loaded, because {reason}{}; only that same interpreter can be started again here; start a fresh process to use Python {requested_version}",
        requested.display(), pinned.display(),
        if files.is_empty() { String::new() } else { format!(" (pinned by: {})", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")) }
    )]
    Pinned {
        /// The libpython asked for.
        requested: PathBuf,
        /// Its version.
        requested_version: String,
        /// The libpython still mapped.
        pinned: PathBuf,
        /// Its version.
        pinned_version: String,
        /// The files that keep it mapped.
        files: Vec<PathBuf>,
        /// Why they keep it mapped.
        reason: String,
    },
    /// An earlier stop left this process unable to start Python again at all.
    #[error("cannot start Python again in this process: Python {version} was stopped after {reason}, and this version cannot be initialised again safely; start a fresh process")]
    CannotRestart {
        /// The version that was stopped.
        version: String,
        /// Why it stayed loaded.
        reason: String,
    },
    /// The config layer failed to resolve an interpreter.
    #[error(transparent)]
    Config(#[from] py4cl2_cffi_config::Error),
}
