//! Interpreter discovery, the TOML configuration file and interpreter selection.
//!
//! This is the first layer of py4cl2-cffi: the loader and the Lisp side read what it records.
//! CONTRACT used by the `loader` crate (keep these signatures stable):
//! - [`Facts`]: what one interpreter says about itself.
//! - [`resolve`]: the facts of the interpreter to start for an optional SPEC, without writing.
//! - [`config_path`]: where the configuration file is.
//! - [`versions`]: the versions this build knows and every version-dependent code path.
//!
//! The rest serves the `py4cl2-cffi-config` CLI: [`discover`] finds every interpreter
//! (sources in [`sources`]), [`select`] picks one for a SPEC, [`Config`] reads and writes
//! the file.

#![warn(missing_docs)]

mod cache;
mod config_file;
mod discover;
mod error;
mod facts;
mod paths;
mod query;
pub mod sources;
mod spec;
pub mod versions;

pub use config_file::{Chosen, Config, Listed, SCHEMA};
pub use discover::{discover, inspect, DiscoverOptions, Discovery, Interpreter, Kind};
pub use error::Error;
pub use facts::Facts;
pub use paths::{cache_path, config_path, CACHE_ENV, CONFIG_ENV};
/// The version type of [`Facts::version`].
pub use semver::Version;
pub use spec::{select, Selection, Spec, VersionSpec};

use std::path::PathBuf;

/// Where the interpreter [`current`] reports comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file at this path.
    ConfigFile(PathBuf),
    /// No configuration file: the first usable `python3` on `PATH` (the file's would-be
    /// path is given).
    Path(PathBuf),
}

/// The interpreter that will be used when no SPEC is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// What kind of installation it belongs to.
    pub kind: Kind,
    /// Its facts.
    pub facts: Facts,
    /// Where the choice comes from.
    pub origin: Origin,
    /// Warnings about the configuration file (unknown keys).
    pub warnings: Vec<String>,
}

/// The interpreter recorded in the configuration file (checked to still exist), or, when
/// there is no file, the first usable `python3` on `PATH`. Reads the facts cache, writes
/// nothing.
pub fn current() -> Result<Current, Error> {
    let path = config_path();
    if let Some(config) = Config::load(&path)? {
        config.check(&path)?;
        return Ok(Current {
            kind: config.interpreter.kind,
            facts: config.interpreter.facts,
            origin: Origin::ConfigFile(path),
            warnings: config.warnings,
        });
    }
    let mut cache = cache::Cache::load(cache_path());
    let found = discover::first_usable_on_path(&mut cache).ok_or(Error::NoInterpreter)?;
    Ok(Current {
        kind: found.kind,
        facts: found.facts.ok_or(Error::NoInterpreter)?,
        origin: Origin::Path(path),
        warnings: Vec::new(),
    })
}

/// The facts of the interpreter py4cl2-cffi should start.
///
/// With `Some(spec)`, the interpreter SPEC selects (`3.12`, `>=3.10`, an executable path, a venv or
/// conda folder); with `None`, the one recorded in the configuration file, or if there is none,
/// the first usable `python3` on `PATH`. Nothing is written.
pub fn resolve(spec: Option<&str>) -> Result<Facts, Error> {
    let facts = match spec {
        Some(spec) => {
            let selection = select(spec, &DiscoverOptions::default())?;
            selection.chosen.facts.ok_or(Error::NoInterpreter)
        }
        None => current().map(|c| c.facts),
    }?;
    // A minor version newer than this build knows starts with the newest known behaviour.
    versions::warn_once_if_newer(&facts.version);
    Ok(facts)
}
