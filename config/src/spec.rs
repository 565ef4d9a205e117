//! SPEC, the way a user names an interpreter (`3.12`, `>=3.10`, a path, a venv or conda
//! folder, `python3.11`), and choosing the interpreter it selects.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::discover::{discover, inspect_with, DiscoverOptions, Discovery, Interpreter};
use crate::sources::{self, is_python_name};
use crate::Error;

/// A parsed SPEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A version or version range.
    Version(VersionSpec),
    /// An interpreter file, or a venv, conda env, framework version or installation folder.
    Path(PathBuf),
    /// An interpreter name looked up on `PATH` (`python3.11`).
    Command(String),
}

/// Which versions a version SPEC accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSpec {
    /// `3`, `3.12` or `3.12.1`: every version that starts with these numbers.
    Prefix(Vec<u64>),
    /// A range in semver syntax: `>=3.10`, `>=3.9, <3.12`, `=3.11` (`==` is accepted too).
    Range(semver::VersionReq),
}

impl VersionSpec {
    /// Whether `v` is accepted.
    pub fn matches(&self, v: &semver::Version) -> bool {
        match self {
            VersionSpec::Prefix(parts) => parts
                .iter()
                .zip([v.major, v.minor, v.patch])
                .all(|(want, have)| *want == have),
            VersionSpec::Range(req) => req.matches(v),
        }
    }
}

fn bad(spec: &str, reason: impl Into<String>) -> Error {
    Error::BadSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

impl Spec {
    /// Parse a SPEC. A leading digit means a version, a leading `<`, `>`, `=`, `~` or `^`
    /// a range; anything with a `/`, starting with `.` or `~`, or naming an existing folder or
    /// file is a path; `pythonX.Y` is looked up on `PATH`.
    pub fn parse(text: &str) -> Result<Spec, Error> {
        let s = text.trim();
        if s.is_empty() {
            return Err(bad(text, "it is empty"));
        }
        let first = s.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() {
            let parts: Result<Vec<u64>, _> = s.split('.').map(str::parse::<u64>).collect();
            return match parts {
                Ok(p) if (1..=3).contains(&p.len()) => Ok(Spec::Version(VersionSpec::Prefix(p))),
                _ => Err(bad(text, "a version is 1 to 3 numbers separated by dots")),
            };
        }
        if matches!(first, '<' | '>' | '=' | '~' | '^' | '!') {
            if s.contains("!=") || s.contains("~=") {
                return Err(bad(
                    text,
                    "`!=` and `~=` are not supported; use ranges like `>=3.9, <3.12`",
                ));
            }
            let req = s.replace("==", "=");
            return semver::VersionReq::parse(&req)
                .map(|r| Spec::Version(VersionSpec::Range(r)))
                .map_err(|e| bad(text, e.to_string()));
        }
        if s.contains('/') || s.starts_with('.') || s.starts_with('~') || Path::new(s).exists() {
            let path = match s.strip_prefix("~/") {
                Some(rest) => dirs::home_dir()
                    .ok_or_else(|| bad(text, "there is no home folder to expand `~` in"))?
                    .join(rest),
                None => PathBuf::from(s),
            };
            return Ok(Spec::Path(std::path::absolute(&path).unwrap_or(path)));
        }
        if is_python_name(s) {
            return Ok(Spec::Command(s.to_string()));
        }
        Err(bad(text, "no such file or folder either"))
    }
}

/// The interpreter a SPEC selected.
#[derive(Debug)]
pub struct Selection {
    /// The SPEC as given.
    pub spec: String,
    /// The chosen interpreter; always usable.
    pub chosen: Interpreter,
    /// The discovery made to choose it (version SPECs); `None` for a path SPEC.
    pub discovery: Option<Discovery>,
}

fn unusable_error(i: &Interpreter) -> Error {
    Error::Unusable {
        version: i.version().map_or("?".into(), ToString::to_string),
        path: i.path.clone(),
        reason: i
            .problem
            .clone()
            .unwrap_or_else(|| "it did not answer".into()),
    }
}

fn usable(i: Interpreter) -> Result<Interpreter, Error> {
    if i.is_usable() {
        Ok(i)
    } else {
        Err(unusable_error(&i))
    }
}

/// `3.12.1 (pyenv), 3.11.2 (system)`: the usable interpreters, newest first.
fn available(found: &[Interpreter]) -> String {
    let mut usable: Vec<&Interpreter> = found.iter().filter(|i| i.is_usable()).collect();
    usable.sort_by(|a, b| b.version().cmp(&a.version()));
    let mut names: Vec<String> = Vec::new();
    for i in usable {
        let name = format!(
            "{} ({})",
            i.version().map_or("?".into(), ToString::to_string),
            i.kind
        );
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        "none (run `py4cl2-cffi-config discover` to see why)".into()
    } else {
        names.join(", ")
    }
}

/// Run the interpreter a user named by path; a failure to answer means it is not a Python.
fn inspect_given(path: &Path, cache: &mut Cache) -> Result<Interpreter, Error> {
    inspect_with(path, cache).map_err(|e| match e {
        Error::Query {
            status,
            stderr,
            source,
            ..
        } => Error::NotPython {
            path: path.to_path_buf(),
            reason: match (source, stderr.is_empty()) {
                (Some(cause), _) => format!("running it failed ({status}: {cause})"),
                (None, true) => format!("running it failed ({status})"),
                (None, false) => format!("running it failed ({status}): {stderr}"),
            },
        },
        other => other,
    })
}

/// Choose the interpreter `spec` selects. A version SPEC takes the newest usable match
/// (the first found among equals: the active venv, then `PATH`, then the rest). Only the
/// facts cache is read; nothing is written.
pub fn select(spec: &str, options: &DiscoverOptions) -> Result<Selection, Error> {
    let parsed = Spec::parse(spec)?;
    let mut cache = if options.use_cache {
        Cache::load(crate::paths::cache_path())
    } else {
        Cache::disabled()
    };
    let path = match parsed {
        Spec::Path(p) => p,
        Spec::Command(name) => {
            let path_var = std::env::var_os("PATH").unwrap_or_default();
            match sources::path::search(&name, &path_var).into_iter().next() {
                Some(p) => p,
                None => {
                    let d = discover(options)?;
                    return Err(Error::NoMatch {
                        spec: spec.to_string(),
                        available: available(&d.interpreters),
                    });
                }
            }
        }
        Spec::Version(want) => {
            let d = discover(options)?;
            let matching = |usable_only: bool| {
                let mut best: Option<&Interpreter> = None;
                for i in &d.interpreters {
                    let Some(v) = i.version() else { continue };
                    if !want.matches(v) || (usable_only && !i.is_usable()) {
                        continue;
                    }
                    if best.and_then(Interpreter::version).map_or(true, |b| v > b) {
                        best = Some(i);
                    }
                }
                best.cloned()
            };
            return match (matching(true), matching(false)) {
                (Some(chosen), _) => Ok(Selection {
                    spec: spec.to_string(),
                    chosen,
                    discovery: Some(d),
                }),
                (None, Some(unusable)) => Err(unusable_error(&unusable)),
                (None, None) => Err(Error::NoMatch {
                    spec: spec.to_string(),
                    available: available(&d.interpreters),
                }),
            };
        }
    };
    let chosen = usable(inspect_given(&path, &mut cache)?)?;
    Ok(Selection {
        spec: spec.to_string(),
        chosen,
        discovery: None,
    })
}
