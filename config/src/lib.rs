//! Interpreter discovery, the TOML configuration file and interpreter selection.
//!
//! This is the first layer of py4cl2-cffi: the loader and the Lisp side read what it records.
//! CONTRACT used by the `loader` crate (keep these signatures stable):
//! - [`Facts`]: what one interpreter says about itself.
//! - [`resolve`]: the facts of the interpreter to start for an optional SPEC, without writing.
//! - [`config_path`]: where the configuration file is.
//! - [`versions`]: the versions this build knows and every version-dependent code path.
//!
//! [`explain`] is [`resolve`] with the reason for the choice (what `print-configuration`
//! shows), and [`environments`] makes the venvs that `--with` / `:requires` ask for.
//!
//! The rest serves the `py4cl2-cffi-config` CLI: [`discover`] finds every interpreter
//! (sources in [`sources`]), [`select`] picks one for a SPEC, [`Config`] reads and writes
//! the file.

#![warn(missing_docs)]

mod cache;
mod config_file;
mod discover;
pub mod environments;
mod error;
mod facts;
mod files;
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

/// Where the interpreter [`current`] reports comes from, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The active venv named by `VIRTUAL_ENV` (it comes before the config file).
    ActiveVenv(PathBuf),
    /// The active conda env named by `CONDA_PREFIX` (it comes before the config file).
    ActiveConda(PathBuf),
    /// The configuration file at this path.
    ConfigFile(PathBuf),
    /// No configuration file: the best usable `python3` on `PATH`.
    Path,
}

impl Origin {
    /// A one-word name of the origin for tools: `VIRTUAL_ENV`, `CONDA_PREFIX`,
    /// `config file` or `PATH`.
    pub fn source(&self) -> &'static str {
        match self {
            Origin::ActiveVenv(_) => "VIRTUAL_ENV",
            Origin::ActiveConda(_) => "CONDA_PREFIX",
            Origin::ConfigFile(_) => "config file",
            Origin::Path => "PATH",
        }
    }
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
    /// Why it was chosen, as a sentence for people.
    pub why: String,
    /// The configuration file's path (it may not exist).
    pub config_file: PathBuf,
    /// Warnings: unknown keys of the configuration file, an active env that cannot be used.
    pub warnings: Vec<String>,
}

/// The interpreter of an active env folder (`VIRTUAL_ENV`, `CONDA_PREFIX`), or why not.
fn active_env(
    var: &str,
    cache: &mut cache::Cache,
) -> Option<Result<(PathBuf, Interpreter), String>> {
    let dir = PathBuf::from(std::env::var_os(var).filter(|v| !v.is_empty())?);
    Some(match discover::inspect_with(&dir, cache) {
        Ok(i) if i.is_usable() => Ok((dir, i)),
        Ok(i) => Err(format!(
            "{var}={} is not usable ({}); it was passed over",
            dir.display(),
            i.problem.as_deref().unwrap_or("it did not answer")
        )),
        Err(e) => Err(format!("{var}={} is passed over: {e}", dir.display())),
    })
}

/// The interpreter to use when no SPEC is given, chosen the way reticulate (R) does: an active
/// venv (`VIRTUAL_ENV`) or conda env (`CONDA_PREFIX`) first, then the interpreter recorded in
/// the configuration file (checked to still exist), then the best usable `python3` on `PATH`
/// (the first usable `python3`, else the newest usable `python3.N`). Writes nothing but the
/// facts cache.
pub fn current() -> Result<Current, Error> {
    let path = config_path();
    let mut cache = cache::Cache::load(cache_path());
    let mut warnings = Vec::new();
    let result = (|| {
        for (var, origin) in [
            ("VIRTUAL_ENV", Origin::ActiveVenv as fn(PathBuf) -> Origin),
            ("CONDA_PREFIX", Origin::ActiveConda),
        ] {
            match active_env(var, &mut cache) {
                None => {}
                Some(Err(w)) => warnings.push(w),
                Some(Ok((dir, i))) => {
                    let why = format!(
                        "the active {} ({var}={}), which comes before the config file",
                        if var == "VIRTUAL_ENV" {
                            "venv"
                        } else {
                            "conda env"
                        },
                        dir.display()
                    );
                    return Ok(Current {
                        kind: i.kind,
                        facts: i.facts.ok_or(Error::NoInterpreter)?,
                        origin: origin(dir),
                        why,
                        config_file: path.clone(),
                        warnings: std::mem::take(&mut warnings),
                    });
                }
            }
        }
        if let Some(config) = Config::load(&path)? {
            config.check(&path)?;
            warnings.extend(config.warnings);
            let why = match (&config.spec, config.requires.is_empty()) {
                (Some(spec), true) => format!("recorded in {} by `use {spec}`", path.display()),
                (Some(spec), false) => format!(
                    "recorded in {} by `use {spec} --with {}`",
                    path.display(),
                    config.requires.join(",")
                ),
                (None, _) => format!("recorded in {}", path.display()),
            };
            return Ok(Current {
                kind: config.interpreter.kind,
                facts: config.interpreter.facts,
                origin: Origin::ConfigFile(path.clone()),
                why,
                config_file: path.clone(),
                warnings: std::mem::take(&mut warnings),
            });
        }
        let (found, why) = discover::best_on_path(&mut cache).ok_or(Error::NoInterpreter)?;
        Ok(Current {
            kind: found.kind,
            facts: found.facts.ok_or(Error::NoInterpreter)?,
            origin: Origin::Path,
            why: format!(
                "no config file yet ({}), so {why}; `py4cl2-cffi-config use SPEC` records a choice",
                path.display()
            ),
            config_file: path.clone(),
            warnings: std::mem::take(&mut warnings),
        })
    })();
    // Later starts need not run the interpreter again; a cache that cannot be written only
    // costs time.
    let _ = cache.save();
    result
}

/// The facts of the interpreter py4cl2-cffi should start.
///
/// With `Some(spec)`, the interpreter SPEC selects (`3.12`, `>=3.10`, an executable path, a venv or
/// conda folder); with `None`, the one [`current`] chooses. Nothing is written but the facts
/// cache.
pub fn resolve(spec: Option<&str>) -> Result<Facts, Error> {
    explain(spec).map(|r| r.facts)
}

/// What [`explain`] reports: the interpreter to start, and why (serialized flat, as the
/// shim's `p4s_config_json` returns it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolution {
    /// The interpreter's facts.
    #[serde(flatten)]
    pub facts: Facts,
    /// What kind of installation it belongs to.
    pub kind: Kind,
    /// `spec`, `VIRTUAL_ENV`, `CONDA_PREFIX`, `config file` or `PATH`.
    pub source: &'static str,
    /// Why it was chosen, as a sentence for people.
    pub why: String,
    /// The configuration file's path (it may not exist).
    pub config_file: PathBuf,
    /// Whether the configuration file exists.
    pub config_file_exists: bool,
    /// Warnings worth showing (unknown keys, an active env passed over).
    pub warnings: Vec<String>,
    /// When the interpreter is an environment made by py4cl2-cffi: what it was made for.
    pub environment: Option<environments::Manifest>,
}

/// The interpreter to start for an optional SPEC (see [`resolve`]) with the reason it was
/// chosen.
pub fn explain(spec: Option<&str>) -> Result<Resolution, Error> {
    let config_file = config_path();
    let (kind, facts, source, why, warnings) = match spec {
        Some(spec) => {
            let selection = select(spec, &DiscoverOptions::default())?;
            let kind = selection.chosen.kind;
            let facts = selection.chosen.facts.ok_or(Error::NoInterpreter)?;
            (
                kind,
                facts,
                "spec",
                format!("selected by the spec `{spec}`"),
                Vec::new(),
            )
        }
        None => {
            let c = current()?;
            (c.kind, c.facts, c.origin.source(), c.why, c.warnings)
        }
    };
    // A minor version newer than this build knows starts with the newest known behaviour.
    versions::warn_once_if_newer(&facts.version);
    Ok(Resolution {
        environment: environments::manifest_of(&facts.prefix),
        config_file_exists: config_file.is_file(),
        facts,
        kind,
        source,
        why,
        config_file,
        warnings,
    })
}
