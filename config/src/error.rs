//! The one error type of the config layer.

use std::path::PathBuf;

/// Everything that can go wrong while discovering, selecting or recording an interpreter.
///
/// Messages are one line, lower-case, and say what to do next. [`Error::is_bad_input`] tells
/// a mistake of the user (a wrong SPEC, a broken file) from a failure of the machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file exists but cannot be read.
    #[error("cannot read the config file {path}")]
    ReadConfig {
        /// The configuration file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },

    /// Something other than a regular file (a FIFO, a folder, a device) is where the
    /// configuration file should be; it is neither read nor replaced.
    #[error("config file {path} is {what}, not a regular file; remove it, or point PY4CL2_CFFI_CONFIG at a file")]
    ConfigNotAFile {
        /// The configuration file's path.
        path: PathBuf,
        /// What is there instead (`a FIFO (named pipe)`, `a directory`, ...).
        what: &'static str,
    },

    /// The configuration file (or its folder) cannot be written.
    #[error("cannot write the config file {path}")]
    WriteConfig {
        /// The configuration file.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },

    /// The configuration file is not valid TOML.
    #[error("config file {path} is not valid TOML (line {line}): {message}; fix it or delete it and run `py4cl2-cffi-config use SPEC`")]
    ConfigSyntax {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },

    /// The configuration file was written by an incompatible version.
    #[error("config file {path} has schema {found}, this program understands schema {expected}; run `py4cl2-cffi-config use SPEC` to rewrite it")]
    ConfigSchema {
        /// The configuration file.
        path: PathBuf,
        /// The `schema` value found (or `missing`).
        found: String,
        /// The schema this crate writes.
        expected: u32,
    },

    /// A required key is absent from the configuration file.
    #[error("config file {path} lacks the required key `{key}`; run `py4cl2-cffi-config use SPEC` to rewrite it")]
    ConfigMissingKey {
        /// The configuration file.
        path: PathBuf,
        /// The dotted name of the key (`interpreter.libpython`).
        key: String,
    },

    /// A key of the configuration file has a value of the wrong type.
    #[error("config file {path} has a bad value: {message}; run `py4cl2-cffi-config use SPEC` to rewrite it")]
    ConfigInvalid {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },

    /// The libpython recorded in the configuration file is gone.
    #[error("libpython {libpython} recorded in {config} no longer exists; run `py4cl2-cffi-config use SPEC` to choose an interpreter again")]
    LibpythonMissing {
        /// The recorded libpython path.
        libpython: PathBuf,
        /// The configuration file.
        config: PathBuf,
    },

    /// The interpreter executable recorded in the configuration file is gone.
    #[error("python {executable} recorded in {config} no longer exists; run `py4cl2-cffi-config use SPEC` to choose an interpreter again")]
    ExecutableMissing {
        /// The recorded executable.
        executable: PathBuf,
        /// The configuration file.
        config: PathBuf,
    },

    /// A SPEC that is neither a version, a version range, a path nor a command name.
    #[error("`{spec}` is not a version (3.12), a range (>=3.10), a python executable or a venv/conda folder: {reason}")]
    BadSpec {
        /// The SPEC as given.
        spec: String,
        /// What did not parse.
        reason: String,
    },

    /// No usable interpreter matches a version SPEC.
    #[error("no usable python matches `{spec}`; available: {available}")]
    NoMatch {
        /// The SPEC as given.
        spec: String,
        /// The usable interpreters found, as `3.12.1 (pyenv)`, or `none`.
        available: String,
    },

    /// The interpreter a SPEC selects cannot be used.
    #[error("python {version} at {path} cannot be used: {reason}")]
    Unusable {
        /// The interpreter.
        path: PathBuf,
        /// Its version, or `?`.
        version: String,
        /// Why it cannot be used (`older than 3.8`, `no shared libpython`).
        reason: String,
    },

    /// A path given as SPEC is not a Python interpreter.
    #[error("{path} is not a python interpreter: {reason}")]
    NotPython {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A venv whose `pyvenv.cfg` cannot be used.
    #[error("venv {dir} has a broken pyvenv.cfg: {reason}; recreate it with `python -m venv`")]
    BrokenVenv {
        /// The venv folder.
        dir: PathBuf,
        /// What is wrong with `pyvenv.cfg`.
        reason: String,
    },

    /// Running an interpreter to ask for its facts failed.
    #[error("running {path} to ask for its facts failed ({status}){}", colon(.stderr))]
    Query {
        /// The interpreter that was run.
        path: PathBuf,
        /// Its exit status (`exit status: 1`, `timed out`, `could not start`).
        status: String,
        /// The last lines of what it printed on stderr (or what was wrong with stdout).
        stderr: String,
        /// The cause, when the process could not be run at all.
        #[source]
        source: Option<std::io::Error>,
    },

    /// There is no cache folder to keep environments in.
    #[error("there is no cache folder for Python environments (set XDG_CACHE_HOME or HOME)")]
    NoCacheDir,

    /// A requirement that cannot be passed to an installer.
    #[error("requirement `{requirement}` cannot be used: {reason}")]
    BadRequirement {
        /// The requirement as given.
        requirement: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `PY4CL2_CFFI_INSTALLER` names no usable installer.
    #[error("PY4CL2_CFFI_INSTALLER={value} cannot be used: {reason}")]
    BadInstaller {
        /// The value of the variable.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// Making an environment failed in the file system (or a program could not be run).
    #[error("cannot make the Python environment at {path}")]
    EnvIo {
        /// The file or folder (or program) concerned.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// The folder an environment should be in holds another one (a hash collision).
    #[error("the environment folder {dir} was made for another interpreter or requirement set; remove it")]
    EnvMismatch {
        /// The environment's folder.
        dir: PathBuf,
    },

    /// The installer failed; nothing of the new environment was kept.
    #[error("{step} for {requirements} failed ({installer}, {status}); nothing was kept; the installer said:\n{output}")]
    EnvInstall {
        /// The requirement set, space-separated.
        requirements: String,
        /// Which step failed (`making the venv`, `installing`).
        step: String,
        /// `uv` or `pip`.
        installer: String,
        /// Its exit status.
        status: String,
        /// Its last lines of output.
        output: String,
    },

    /// Making an environment was stopped by its caller; nothing of it was kept.
    #[error("making the Python environment was interrupted; nothing was kept")]
    Cancelled,

    /// No usable interpreter at all was found (no config file and nothing on `PATH`).
    #[error("no usable python3 (3.8 or newer, with a shared libpython) found on PATH; install one or run `py4cl2-cffi-config use SPEC`")]
    NoInterpreter,
}

/// `: detail`, or nothing for an empty detail.
fn colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// Whether this error comes from bad input (a wrong SPEC or a broken file) rather than a
    /// failure of the machine; the CLI exits with 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::ConfigSyntax { .. }
                | Error::ConfigNotAFile { .. }
                | Error::ConfigSchema { .. }
                | Error::ConfigMissingKey { .. }
                | Error::ConfigInvalid { .. }
                | Error::LibpythonMissing { .. }
                | Error::ExecutableMissing { .. }
                | Error::BadSpec { .. }
                | Error::NoMatch { .. }
                | Error::Unusable { .. }
                | Error::NotPython { .. }
                | Error::BrokenVenv { .. }
                | Error::BadRequirement { .. }
                | Error::BadInstaller { .. }
        )
    }
}
