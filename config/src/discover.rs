//! Discovery: gather candidates from every source, run each unknown one once (in parallel,
//! answers cached), collapse duplicates and classify what was found.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::cache::{pyvenv_cfg_of, Cache, Stamp};
use crate::query::{self, Raw};
use crate::sources::{self, conda, framework, pyenv, system, venv, Candidate};
use crate::{Error, Facts};

/// What kind of installation an interpreter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A venv (`pyvenv.cfg`; `sys.prefix` differs from `sys.base_prefix`).
    Venv,
    /// A conda env (`conda-meta/` in its prefix).
    Conda,
    /// A pyenv version (`$PYENV_ROOT/versions/*`).
    Pyenv,
    /// A macOS `Python.framework/Versions/X.Y`.
    Framework,
    /// An OS or hand install in `/usr/bin` or `/usr/local/bin`.
    System,
    /// Anything else found on `PATH` or given by path.
    Path,
}

impl Kind {
    /// The lower-case name used in tables, TOML and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Venv => "venv",
            Kind::Conda => "conda",
            Kind::Pyenv => "pyenv",
            Kind::Framework => "framework",
            Kind::System => "system",
            Kind::Path => "path",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interpreter found, usable or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpreter {
    /// What kind of installation it belongs to.
    pub kind: Kind,
    /// The path it was found by and run by.
    pub path: PathBuf,
    /// What it said about itself; `None` when it could not be run.
    pub facts: Option<Facts>,
    /// Why it cannot be used (`older than 3.8`, `no shared libpython ...`); `None` if usable.
    pub problem: Option<String>,
}

impl Interpreter {
    /// Whether the loader can start it: it answered and nothing is wrong with it.
    pub fn is_usable(&self) -> bool {
        self.problem.is_none() && self.facts.is_some()
    }

    /// Its version, when it answered.
    pub fn version(&self) -> Option<&semver::Version> {
        self.facts.as_ref().map(|f| &f.version)
    }

    /// `sys.executable` when it answered, else the path it was found by.
    pub fn executable(&self) -> &Path {
        self.facts.as_ref().map_or(&self.path, |f| &f.executable)
    }
}

/// What to look at besides the standard places.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// More interpreters or venv/conda/installation folders to include (listed first).
    pub extra: Vec<PathBuf>,
    /// Reuse the answers in the facts cache (`PY4CL2_CFFI_CACHE_DIR`). Nothing is written
    /// unless [`Discovery::save_cache`] is called.
    pub use_cache: bool,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            extra: Vec::new(),
            use_cache: true,
        }
    }
}

/// The result of [`discover`]: every interpreter found, in source order.
#[derive(Debug)]
pub struct Discovery {
    /// The interpreters found, duplicates collapsed; usable and unusable ones.
    pub interpreters: Vec<Interpreter>,
    cache: Cache,
}

impl Discovery {
    /// Write the answers learnt in this discovery to the facts cache (atomically).
    pub fn save_cache(&mut self) -> std::io::Result<()> {
        self.cache.save()
    }
}

/// The environment the sources look at, read once.
struct Env {
    path_var: OsString,
    home: Option<PathBuf>,
    pyenv_root: Option<PathBuf>,
    virtual_env: Option<PathBuf>,
    conda_prefix: Option<PathBuf>,
    conda_exe: Option<PathBuf>,
    workon_home: Option<PathBuf>,
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Env {
    fn from_process() -> Env {
        let home = dirs::home_dir();
        Env {
            path_var: std::env::var_os("PATH").unwrap_or_default(),
            pyenv_root: pyenv::root(env_dir("PYENV_ROOT"), home.as_deref()),
            virtual_env: env_dir("VIRTUAL_ENV"),
            conda_prefix: env_dir("CONDA_PREFIX"),
            conda_exe: env_dir("CONDA_EXE"),
            workon_home: env_dir("WORKON_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".virtualenvs"))),
            home,
        }
    }
}

/// The candidate a user names: an interpreter file, or a venv, conda env, framework version
/// or installation folder. Errors say why it is not a Python.
pub(crate) fn given_candidate(path: &Path) -> Result<Candidate, Error> {
    let not_python = |reason: &str| Error::NotPython {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_python("it does not exist"),
        _ => not_python(&format!("it cannot be read ({e})")),
    })?;
    if meta.is_file() {
        if !sources::is_executable(path) {
            return Err(not_python("it is not an executable file"));
        }
        return Ok(Candidate::new(path.to_path_buf(), Kind::Path));
    }
    if venv::is_venv(path) {
        venv::read_pyvenv_cfg(path).map_err(|reason| Error::BrokenVenv {
            dir: path.to_path_buf(),
            reason,
        })?;
        return sources::python_in_prefix(path)
            .map(|p| Candidate::new(p, Kind::Venv))
            .ok_or_else(|| not_python("the venv has no bin/python"));
    }
    if conda::is_conda_env(path) {
        return conda::candidate(path).ok_or_else(|| not_python("the conda env has no bin/python"));
    }
    if let Some(layout) = framework::Layout::from_path(path) {
        return layout
            .executable()
            .map(|p| Candidate::new(p, Kind::Framework))
            .ok_or_else(|| not_python("the framework version has no bin/pythonX.Y"));
    }
    sources::python_in_prefix(path)
        .map(|p| Candidate::new(p, Kind::Path))
        .ok_or_else(|| {
            not_python("it is a folder without bin/python (not a venv, conda env or installation)")
        })
}

/// Every candidate of every source, in order of preference, before de-duplication.
fn all_candidates(env: &Env, extra: &[Candidate]) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = extra.to_vec();
    if let Some(dir) = &env.virtual_env {
        found.extend(venv::candidate(dir, Kind::Venv));
    }
    if let Some(dir) = &env.conda_prefix {
        found.extend(conda::candidate(dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        found.extend(venv::candidate(&cwd.join(".venv"), Kind::Venv));
    }
    found.extend(sources::path::candidates(&env.path_var));
    if let Some(root) = &env.pyenv_root {
        found.extend(pyenv::candidates(root));
    }
    found.extend(system::candidates(&system::system_dirs()));
    let mut conda_envs = Vec::new();
    if let Some(home) = &env.home {
        conda_envs.extend(conda::listed_envs(&home.join(".conda/environments.txt")));
    }
    for root in conda::default_roots(env.conda_exe.as_deref(), env.home.as_deref()) {
        conda_envs.extend(conda::envs_of_root(&root));
    }
    found.extend(conda::candidates(&conda_envs));
    if let Some(dir) = &env.workon_home {
        found.extend(venv::candidates(&venv::venvs_in(dir)));
    }
    found.extend(framework::candidates(&framework::default_frameworks(
        env.home.as_deref(),
    )));
    found
}

/// The identity of a candidate before running it: its real file, plus the venv it belongs
/// to (a venv's `bin/python` links to its base interpreter but is a different Python).
fn pre_key(c: &Candidate) -> (PathBuf, Option<PathBuf>) {
    let real = std::fs::canonicalize(&c.path).unwrap_or_else(|_| c.path.clone());
    let cfg = pyvenv_cfg_of(&c.path).map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    (real, cfg)
}

/// The identity of an interpreter after running it: its real executable and its prefix.
fn post_key(i: &Interpreter) -> Option<(PathBuf, PathBuf)> {
    let f = i.facts.as_ref()?;
    let real = std::fs::canonicalize(&f.executable).unwrap_or_else(|_| f.executable.clone());
    let prefix = std::fs::canonicalize(&f.prefix).unwrap_or_else(|_| f.prefix.clone());
    Some((real, prefix))
}

/// What kind of installation an interpreter belongs to, from what it said (or, when it did
/// not answer, from where it is).
fn classify(path: &Path, facts: Option<&Facts>, pyenv_root: Option<&Path>) -> Kind {
    let prefix = facts
        .map(|f| f.prefix.clone())
        .or_else(|| path.parent().and_then(Path::parent).map(Path::to_path_buf));
    if prefix.as_deref().is_some_and(conda::is_conda_env) {
        return Kind::Conda;
    }
    let is_venv = match facts {
        Some(f) => f.prefix != f.base_prefix,
        None => pyvenv_cfg_of(path).is_some(),
    };
    if is_venv {
        return Kind::Venv;
    }
    // Where it is: the path it was found by, and where it really is (a shim or a symlink
    // on PATH stands for an interpreter elsewhere).
    let exe = facts.map_or(path, |f| f.executable.as_path());
    let places: Vec<PathBuf> = [path, exe]
        .into_iter()
        .flat_map(|p| {
            [
                p.to_path_buf(),
                std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
            ]
        })
        .collect();
    if places
        .iter()
        .any(|p| framework::Layout::from_path(p).is_some())
    {
        return Kind::Framework;
    }
    if let Some(root) = pyenv_root {
        let versions = root.join("versions");
        let real_versions = std::fs::canonicalize(&versions).unwrap_or_else(|_| versions.clone());
        if places
            .iter()
            .any(|p| p.starts_with(&versions) || p.starts_with(&real_versions))
        {
            return Kind::Pyenv;
        }
    }
    if places.iter().any(|p| system::is_system_path(p)) {
        return Kind::System;
    }
    Kind::Path
}

/// A short reason for an interpreter that could not be run.
fn failure_reason(e: &Error) -> String {
    match e {
        Error::Query {
            status,
            source: Some(cause),
            ..
        } => format!("it did not answer ({status}: {cause})"),
        Error::Query { status, stderr, .. } if stderr.is_empty() => {
            format!("it did not answer ({status})")
        }
        Error::Query { status, stderr, .. } => format!("it did not answer ({status}): {stderr}"),
        other => other.to_string(),
    }
}

/// Turn an answer into an interpreter.
fn interpreter_of(path: &Path, raw: &Raw, pyenv_root: Option<&Path>) -> Interpreter {
    let mut raw = raw.clone();
    // A framework build names its library through PYTHONFRAMEWORKPREFIX; the layout on disk
    // is a second opinion when that is stale.
    if let Some(lib) = framework::Layout::from_path(&raw.executable).and_then(|l| l.libpython()) {
        raw.libpython_candidates.push(lib);
    }
    let (facts, problem) = query::evaluate(&raw);
    Interpreter {
        kind: classify(path, Some(&facts), pyenv_root),
        path: path.to_path_buf(),
        facts: Some(facts),
        problem,
    }
}

/// Run the candidates that the cache cannot answer for, a few at a time in parallel.
fn run_all(paths: &[PathBuf]) -> Vec<Result<Raw, Error>> {
    if paths.is_empty() {
        return Vec::new();
    }
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(2)
        .clamp(2, 8)
        .min(paths.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Raw, Error>>> = (0..paths.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            break done;
                        };
                        done.push((i, query::run(path)));
                    }
                })
            })
            .collect();
        for h in handles {
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
        }
    });
    results
        .into_iter()
        .zip(paths)
        .map(|(r, p)| {
            r.unwrap_or_else(|| {
                Err(Error::Query {
                    path: p.clone(),
                    status: "internal error".into(),
                    stderr: "the query thread panicked".into(),
                    source: None,
                })
            })
        })
        .collect()
}

/// Run the given candidates (answers from `cache` where it holds), in order.
fn evaluate_candidates(
    candidates: Vec<Candidate>,
    cache: &mut Cache,
    pyenv_root: Option<&Path>,
) -> Vec<Interpreter> {
    let mut stamps: Vec<Option<Stamp>> = Vec::with_capacity(candidates.len());
    let mut answers: Vec<Option<Result<Raw, Error>>> = Vec::with_capacity(candidates.len());
    let mut to_run = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let stamp = Stamp::of(&c.path);
        let cached = stamp.as_ref().and_then(|s| cache.get(&c.path, s));
        if c.problem.is_none() && cached.is_none() {
            to_run.push(i);
        }
        answers.push(cached.map(Ok));
        stamps.push(stamp);
    }
    let paths: Vec<PathBuf> = to_run.iter().map(|&i| candidates[i].path.clone()).collect();
    for (i, result) in to_run.into_iter().zip(run_all(&paths)) {
        if let (Ok(raw), Some(stamp)) = (&result, &stamps[i]) {
            cache.put(&candidates[i].path, stamp.clone(), raw.clone());
        }
        answers[i] = Some(result);
    }
    candidates
        .into_iter()
        .zip(answers)
        .map(|(c, answer)| match (c.problem, answer) {
            (Some(problem), _) => Interpreter {
                kind: c.source,
                path: c.path,
                facts: None,
                problem: Some(problem),
            },
            (None, None) => Interpreter {
                kind: c.source,
                path: c.path,
                facts: None,
                problem: Some("it was not run".into()),
            },
            (None, Some(Ok(raw))) => interpreter_of(&c.path, &raw, pyenv_root),
            (None, Some(Err(e))) => Interpreter {
                kind: classify(&c.path, None, pyenv_root),
                path: c.path,
                facts: None,
                problem: Some(failure_reason(&e)),
            },
        })
        .collect()
}

/// Find every interpreter on this machine: the `extra` ones of `options` first, then the
/// active venv and conda env, `PATH`, pyenv, system folders, conda envs, virtualenvwrapper
/// venvs and macOS frameworks. Each is run once (in parallel) unless the facts cache knows
/// its answer. Fails only for an `extra` path that is not a Python.
pub fn discover(options: &DiscoverOptions) -> Result<Discovery, Error> {
    let env = Env::from_process();
    let extra = options
        .extra
        .iter()
        .map(|p| given_candidate(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    let candidates: Vec<Candidate> = all_candidates(&env, &extra)
        .into_iter()
        .filter(|c| seen.insert(pre_key(c)))
        .collect();
    let mut cache = if options.use_cache {
        Cache::load(crate::paths::cache_path())
    } else {
        Cache::disabled()
    };
    let found = evaluate_candidates(candidates, &mut cache, env.pyenv_root.as_deref());
    let mut seen = HashSet::new();
    let interpreters = found
        .into_iter()
        .filter(|i| match post_key(i) {
            Some(k) => seen.insert(k),
            None => true,
        })
        .collect();
    Ok(Discovery {
        interpreters,
        cache,
    })
}

/// Run one interpreter (an executable, or a venv/conda/installation folder) and report what
/// it is. Errors when `path` is not a Python or could not be run; an interpreter that runs
/// but cannot be used is returned with its [`Interpreter::problem`].
pub fn inspect(path: &Path) -> Result<Interpreter, Error> {
    inspect_with(path, &mut Cache::disabled())
}

/// [`inspect`] through a cache.
pub(crate) fn inspect_with(path: &Path, cache: &mut Cache) -> Result<Interpreter, Error> {
    let candidate = given_candidate(path)?;
    let env = Env::from_process();
    let stamp = Stamp::of(&candidate.path);
    let raw = match stamp.as_ref().and_then(|s| cache.get(&candidate.path, s)) {
        Some(raw) => raw,
        None => {
            let raw = query::run(&candidate.path)?;
            if let Some(stamp) = stamp {
                cache.put(&candidate.path, stamp, raw.clone());
            }
            raw
        }
    };
    Ok(interpreter_of(
        &candidate.path,
        &raw,
        env.pyenv_root.as_deref(),
    ))
}

/// The interpreter a plain `python3` stands for when nothing else chose one: the first usable
/// `python3` on `PATH` (pyenv shims included: they stand for the version pyenv would run);
/// when none is usable, the newest usable `python3.N` on `PATH`. Returns it with a sentence
/// saying why, naming what was passed over; `None` when nothing on `PATH` is usable.
pub(crate) fn best_on_path(cache: &mut Cache) -> Option<(Interpreter, String)> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut passed: Vec<String> = Vec::new();
    let mut note = |p: &Path, why: String| passed.push(format!("{} ({why})", p.display()));
    for p in sources::path::search("python3", &path_var) {
        match inspect_with(&p, cache) {
            Ok(i) if i.is_usable() => {
                let mut why = format!("the first usable python3 on PATH ({})", p.display());
                if !passed.is_empty() {
                    why.push_str(&format!("; passed over: {}", passed.join(", ")));
                }
                return Some((i, why));
            }
            Ok(i) => note(&p, i.problem.unwrap_or_else(|| "it did not answer".into())),
            Err(e) => note(&p, failure_reason(&e)),
        }
    }
    let mut best: Option<Interpreter> = None;
    for dir in std::env::split_paths(&path_var) {
        for p in sources::pythons_in_dir(&dir) {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with("python3.") || sources::path::is_pyenv_shim(&p) {
                continue;
            }
            match inspect_with(&p, cache) {
                Ok(i) if i.is_usable() => {
                    if best.as_ref().map_or(true, |b| i.version() > b.version()) {
                        best = Some(i);
                    }
                }
                Ok(i) => note(&p, i.problem.unwrap_or_else(|| "it did not answer".into())),
                Err(e) => note(&p, failure_reason(&e)),
            }
        }
    }
    best.map(|i| {
        let mut why = format!(
            "no usable python3 on PATH, so the newest usable python3.N on PATH ({})",
            i.path.display()
        );
        if !passed.is_empty() {
            why.push_str(&format!("; passed over: {}", passed.join(", ")));
        }
        (i, why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_paths_without_facts() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("v");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        assert_eq!(classify(&venv.join("bin/python"), None, None), Kind::Venv);

        let conda = dir.path().join("c");
        std::fs::create_dir_all(conda.join("conda-meta")).unwrap();
        assert_eq!(classify(&conda.join("bin/python"), None, None), Kind::Conda);

        let pyenv = dir.path().join("pyenv");
        std::fs::create_dir_all(pyenv.join("versions/3.12.1/bin")).unwrap();
        assert_eq!(
            classify(
                &pyenv.join("versions/3.12.1/bin/python"),
                None,
                Some(&pyenv)
            ),
            Kind::Pyenv
        );
        assert_eq!(
            classify(
                Path::new("/Library/Frameworks/Python.framework/Versions/3.12/bin/python3"),
                None,
                None
            ),
            Kind::Framework
        );
        assert_eq!(
            classify(Path::new("/opt/x/bin/python3"), None, None),
            Kind::Path
        );
    }
}
