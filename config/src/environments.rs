//! Python environments on demand: one venv per (base installation, requirement set) under
//! the cache folder, made with `uv` when it is on `PATH` and with `pip` otherwise, built in a
//! temporary folder and renamed into place only when complete.
//!
//! Layout: `<cache>/py4cl2-cffi/envs/<X.Y.Z>-<hash>/` (`<cache>` is `$XDG_CACHE_HOME`, else the
//! OS cache folder), each with a [`MANIFEST`] naming its base and requirements. One lock file,
//! `envs/.lock`, makes concurrent makers wait for each other; temporary folders are
//! `envs/.tmp-<name>-<pid>` and any left by a killed maker are removed by the next one.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::files::read_regular;
use crate::sources::{self, python_in_prefix};
use crate::{Error, Facts};

/// The file in an environment's folder that says what it was made from and for.
pub const MANIFEST: &str = "py4cl2-cffi-env.json";
/// Environment variable choosing the installer: `uv` or `pip` (default: `uv` when it is on
/// `PATH`, else `pip`).
pub const INSTALLER_ENV: &str = "PY4CL2_CFFI_INSTALLER";
/// The schema of [`Manifest`].
const MANIFEST_SCHEMA: u32 = 1;
/// How often a long step asks its caller whether to go on.
const TICK: Duration = Duration::from_millis(200);
/// How many of the installer's last lines an error keeps.
const TAIL: usize = 25;

/// What [`MANIFEST`] records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The schema of this record.
    pub schema: u32,
    /// `sys.base_prefix` of the interpreter the environment was made over.
    pub base_prefix: PathBuf,
    /// The executable the venv was made with.
    pub base_executable: PathBuf,
    /// That interpreter's `sys.version` (an upgrade in place makes another environment).
    pub base_version: String,
    /// The requirement set, normalized (see [`normalize`]).
    pub requirements: Vec<String>,
    /// Which installer made it (`uv` or `pip`).
    pub installer: String,
    /// When it was completed (seconds since the Unix epoch).
    pub created: u64,
}

/// An environment ready to start.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// Its folder (give it as SPEC to start it).
    pub dir: PathBuf,
    /// Its interpreter.
    pub python: PathBuf,
    /// What it was made from and for.
    pub manifest: Manifest,
    /// Whether this call made it (false: it was there already).
    pub created: bool,
    /// Seconds this call took.
    pub seconds: f64,
}

/// What a long step tells its caller. The caller's answer: `true` to go on, `false` to stop
/// (the step then kills what it runs and removes what it made).
pub enum Progress<'a> {
    /// A line to show (what the installer printed, or a step starting).
    Line(&'a str),
    /// Nothing new; asked every 200 ms so that the caller can stop a quiet step.
    Tick,
}

/// The folder of all environments: `$XDG_CACHE_HOME/py4cl2-cffi/envs`, else
/// `<OS cache folder>/py4cl2-cffi/envs` (`~/.cache` on Linux, `~/Library/Caches` on macOS).
pub fn envs_dir() -> Result<PathBuf, Error> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(dirs::cache_dir)
        .ok_or(Error::NoCacheDir)?;
    Ok(base.join("py4cl2-cffi").join("envs"))
}

/// The requirement set as it is keyed and installed: each requirement trimmed, empty ones
/// and repeats dropped, sorted. A requirement starting with `-` (an installer option) or
/// holding a line break is refused.
pub fn normalize(requirements: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for r in requirements {
        let r = r.trim();
        if r.is_empty() {
            continue;
        }
        if r.starts_with('-') {
            return Err(Error::BadRequirement {
                requirement: r.to_string(),
                reason: "it starts with `-` (installer options are not accepted)".into(),
            });
        }
        if r.contains(['\n', '\r', '\0']) {
            return Err(Error::BadRequirement {
                requirement: r.escape_debug().to_string(),
                reason: "it holds a line break".into(),
            });
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Split a `--with` value (`numpy,scipy>=1.10`) into requirements. Commas inside brackets
/// (`pkg[a,b]`) stay in their requirement.
pub fn split_list(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The manifest of the environment at `prefix`, when `prefix` is one made here.
pub fn manifest_of(prefix: &Path) -> Option<Manifest> {
    let text = read_regular(&prefix.join(MANIFEST)).ok()??;
    serde_json::from_str::<Manifest>(&text)
        .ok()
        .filter(|m| m.schema == MANIFEST_SCHEMA)
}

/// FNV-1a (64 bits) of `parts`, each followed by a NUL byte.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The folder name of the environment for `requirements` over the installation at
/// `base_prefix` whose `sys.version` is `version_string`: `<X.Y.Z>-<16 hex digits>`.
pub fn env_name(
    version: &semver::Version,
    base_prefix: &Path,
    version_string: &str,
    requirements: &[String],
) -> String {
    let prefix = std::fs::canonicalize(base_prefix).unwrap_or_else(|_| base_prefix.to_path_buf());
    let prefix = prefix.to_string_lossy();
    let mut parts: Vec<&str> = vec![&prefix, version_string];
    parts.extend(requirements.iter().map(String::as_str));
    format!(
        "{}.{}.{}-{:016x}",
        version.major,
        version.minor,
        version.patch,
        fnv1a(&parts)
    )
}

/// The installer to use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Installer {
    /// `uv` at this path.
    Uv(PathBuf),
    /// The new venv's own `python -m pip`.
    Pip,
}

impl Installer {
    fn name(&self) -> &'static str {
        match self {
            Installer::Uv(_) => "uv",
            Installer::Pip => "pip",
        }
    }

    /// `$PY4CL2_CFFI_INSTALLER` if set, else uv when it is on `PATH`, else pip.
    fn choose() -> Result<Installer, Error> {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let uv = || sources::path::search("uv", &path_var).into_iter().next();
        match std::env::var(INSTALLER_ENV).ok().as_deref().map(str::trim) {
            None | Some("") => Ok(uv().map_or(Installer::Pip, Installer::Uv)),
            Some("pip") => Ok(Installer::Pip),
            Some("uv") => uv().map(Installer::Uv).ok_or_else(|| Error::BadInstaller {
                value: "uv".into(),
                reason: "uv is not on PATH".into(),
            }),
            Some(other) => Err(Error::BadInstaller {
                value: other.to_string(),
                reason: "it must be `uv` or `pip`".into(),
            }),
        }
    }
}

/// The exclusive lock on the environments folder, held while one is made.
struct Lock {
    #[cfg(unix)]
    _file: std::fs::File,
}

impl Lock {
    /// Take the lock at `path`, waiting while another process holds it (saying so once);
    /// `progress` may stop the wait.
    fn take(path: &Path, progress: &mut dyn FnMut(Progress<'_>) -> bool) -> Result<Lock, Error> {
        let io = |source| Error::EnvIo {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            let mut said = false;
            loop {
                // SAFETY: `file` is an open descriptor for the whole call; flock only reads it.
                let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                if r == 0 {
                    return Ok(Lock { _file: file });
                }
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EWOULDBLOCK)
                    && e.kind() != std::io::ErrorKind::Interrupted
                {
                    return Err(io(e));
                }
                if !said {
                    said = true;
                    if !progress(Progress::Line(&format!(
                        "waiting for another process that is making an environment (lock {})",
                        path.display()
                    ))) {
                        return Err(Error::Cancelled);
                    }
                }
                std::thread::sleep(TICK);
                if !progress(Progress::Tick) {
                    return Err(Error::Cancelled);
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (file, progress);
            Ok(Lock {})
        }
    }
}

/// A folder removed when dropped, unless [`TempDir::keep`] was called.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Kill `child` and every process of its group (it leads one, see [`run_streaming`]).
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) takes plain integers; the group is the child's own, made at spawn,
        // and it is not reaped yet, so its id cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
}

/// Run `cmd`, passing each line it prints (stdout and stderr) to `progress` and keeping the
/// last few for an error. Returns the exit status and those lines.
fn run_streaming(
    cmd: &mut Command,
    progress: &mut dyn FnMut(Progress<'_>) -> bool,
) -> Result<(std::process::ExitStatus, Vec<String>), Error> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    // Its own process group, so that stopping it stops what it started too (venv's ensurepip
    // runs pip in a child process that would go on writing into the folder being removed).
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_COLOR", "1")
        .spawn()
        .map_err(|source| Error::EnvIo {
            path: PathBuf::from(&program),
            source,
        })?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            // Installers redraw progress with `\r`; each redraw is a line here.
            for chunk in BufReader::new(stream).split(b'\n') {
                let Ok(chunk) = chunk else { break };
                for part in chunk.split(|&b| b == b'\r') {
                    let line = String::from_utf8_lossy(part).trim_end().to_string();
                    if !line.is_empty() && tx.send(line).is_err() {
                        return;
                    }
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut tail: Vec<String> = Vec::new();
    let mut go_on = true;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(line) => {
                go_on = progress(Progress::Line(&line));
                tail.push(line);
                if tail.len() > TAIL {
                    tail.remove(0);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => go_on = progress(Progress::Tick),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if !go_on {
            kill_group(&mut child);
            break;
        }
    }
    let status = child.wait().map_err(|source| Error::EnvIo {
        path: PathBuf::from(&program),
        source,
    })?;
    for r in readers {
        let _ = r.join();
    }
    if !go_on {
        return Err(Error::Cancelled);
    }
    Ok((status, tail))
}

/// Replace `from` by `to` in the text files of the venv's `bin/` (script shebangs and
/// activation scripts name the folder they were made in).
fn relocate_scripts(venv: &Path, from: &Path, to: &Path) -> std::io::Result<()> {
    let (from, to) = (from.to_string_lossy(), to.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(venv.join("bin")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains(from.as_ref()) {
            std::fs::write(&path, text.replace(from.as_ref(), to.as_ref()))?;
        }
    }
    Ok(())
}

/// The environment for `requirements` over the interpreter `base`: reused when it exists,
/// made otherwise (progress lines go to `progress`, which may stop it). When `base` is
/// itself an environment made here, its requirements are merged in and its base is used.
/// A failure removes everything it made and names the installer's last lines.
pub fn ensure(
    base: &Facts,
    requirements: &[String],
    progress: &mut dyn FnMut(Progress<'_>) -> bool,
) -> Result<Environment, Error> {
    let start = Instant::now();
    let mut wanted = requirements.to_vec();
    let (base_prefix, base_executable, base_version) = match manifest_of(&base.prefix) {
        Some(m) => {
            wanted.extend(m.requirements);
            (m.base_prefix, m.base_executable, m.base_version)
        }
        None => (
            base.base_prefix.clone(),
            base.executable.clone(),
            base.version_string.clone(),
        ),
    };
    let requirements = normalize(&wanted)?;
    if requirements.is_empty() {
        return Err(Error::BadRequirement {
            requirement: String::new(),
            reason: "no requirement was given".into(),
        });
    }
    let root = envs_dir()?;
    let name = env_name(&base.version, &base_prefix, &base_version, &requirements);
    let dir = root.join(&name);
    let wanted_manifest = |m: &Manifest| {
        m.requirements == requirements
            && m.base_version == base_version
            && std::fs::canonicalize(&m.base_prefix).ok()
                == std::fs::canonicalize(&base_prefix).ok()
    };
    let ready = |dir: &Path| -> Result<Option<Environment>, Error> {
        let Some(m) = manifest_of(dir) else {
            return Ok(None);
        };
        if !wanted_manifest(&m) {
            return Err(Error::EnvMismatch {
                dir: dir.to_path_buf(),
            });
        }
        Ok(python_in_prefix(dir).map(|python| Environment {
            dir: dir.to_path_buf(),
            python,
            manifest: m,
            created: false,
            seconds: 0.0,
        }))
    };
    if let Some(mut env) = ready(&dir)? {
        env.seconds = start.elapsed().as_secs_f64();
        return Ok(env);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::EnvIo { path, source }
    };
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let _lock = Lock::take(&root.join(".lock"), progress)?;
    if let Some(mut env) = ready(&dir)? {
        env.seconds = start.elapsed().as_secs_f64();
        return Ok(env);
    }
    // Holding the lock, nobody else is making one: what is left over is from a killed maker,
    // and a folder without its manifest (or whose interpreter went away) is not usable.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    let installer = Installer::choose()?;
    let tmp = TempDir {
        path: root.join(format!(".tmp-{name}-{}", std::process::id())),
        keep: false,
    };
    let shown = requirements.join(" ");
    if !progress(Progress::Line(&format!(
        "making a Python environment for {shown} over {} ({} {}) with {}, in {}",
        base_executable.display(),
        base.implementation,
        base.version,
        installer.name(),
        dir.display()
    ))) {
        return Err(Error::Cancelled);
    }
    let failed = |step: &str, status: String, tail: Vec<String>| Error::EnvInstall {
        requirements: shown.clone(),
        step: step.to_string(),
        installer: installer.name().to_string(),
        status,
        output: tail.join("\n"),
    };
    let mut make = match &installer {
        Installer::Uv(uv) => {
            let mut c = Command::new(uv);
            c.arg("venv")
                .arg("--python")
                .arg(&base_executable)
                .arg(&tmp.path);
            c
        }
        Installer::Pip => {
            let mut c = Command::new(&base_executable);
            c.args(["-m", "venv"]).arg(&tmp.path);
            c
        }
    };
    make.current_dir(&root);
    let (status, tail) = run_streaming(&mut make, progress)?;
    if !status.success() {
        return Err(failed("making the venv", status.to_string(), tail));
    }
    let python = python_in_prefix(&tmp.path)
        .ok_or_else(|| failed("making the venv", "no bin/python in it".into(), Vec::new()))?;
    let mut install = match &installer {
        Installer::Uv(uv) => {
            let mut c = Command::new(uv);
            c.args(["pip", "install", "--python"]).arg(&python);
            c
        }
        Installer::Pip => {
            let mut c = Command::new(&python);
            c.args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ]);
            c
        }
    };
    install.args(&requirements).current_dir(&root);
    let (status, tail) = run_streaming(&mut install, progress)?;
    if !status.success() {
        return Err(failed("installing", status.to_string(), tail));
    }
    relocate_scripts(&tmp.path, &tmp.path, &dir).map_err(io(&tmp.path))?;
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        base_prefix: base_prefix.clone(),
        base_executable: base_executable.clone(),
        base_version: base_version.clone(),
        requirements: requirements.clone(),
        installer: installer.name().to_string(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| Error::EnvIo {
        path: tmp.path.join(MANIFEST),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(tmp.path.join(MANIFEST), json).map_err(io(&tmp.path.join(MANIFEST)))?;
    std::fs::rename(&tmp.path, &dir).map_err(io(&dir))?;
    tmp.keep();
    let python = python_in_prefix(&dir).unwrap_or_else(|| dir.join("bin/python"));
    let seconds = start.elapsed().as_secs_f64();
    progress(Progress::Line(&format!(
        "made the environment {} in {seconds:.1} s",
        dir.display()
    )));
    Ok(Environment {
        dir,
        python,
        manifest,
        created: true,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requirements_are_normalized_and_checked() {
        assert_eq!(
            normalize(&strings(&[" scipy", "numpy>=2", "", "scipy "])).unwrap(),
            strings(&["numpy>=2", "scipy"])
        );
        let e = normalize(&strings(&["--index-url=http://x"])).unwrap_err();
        assert!(e.to_string().contains("starts with `-`"), "{e}");
        assert!(normalize(&strings(&["a\nb"])).is_err());
        assert_eq!(
            split_list("numpy, scipy>=1.10,pkg[a,b]>=1,,"),
            strings(&["numpy", "scipy>=1.10", "pkg[a,b]>=1"])
        );
    }

    #[test]
    fn names_depend_on_base_and_requirements() {
        let v = semver::Version::new(3, 12, 1);
        let a = env_name(&v, Path::new("/p"), "3.12.1 (main)", &strings(&["six"]));
        assert!(
            a.starts_with("3.12.1-") && a.len() == "3.12.1-".len() + 16,
            "{a}"
        );
        assert_eq!(
            a,
            env_name(&v, Path::new("/p"), "3.12.1 (main)", &strings(&["six"]))
        );
        assert_ne!(
            a,
            env_name(&v, Path::new("/q"), "3.12.1 (main)", &strings(&["six"]))
        );
        assert_ne!(
            a,
            env_name(&v, Path::new("/p"), "3.12.1 (other)", &strings(&["six"]))
        );
        assert_ne!(
            a,
            env_name(
                &v,
                Path::new("/p"),
                "3.12.1 (main)",
                &strings(&["six", "x"])
            )
        );
        // The NUL separator keeps ["ab"] and ["a", "b"] apart.
        assert_ne!(
            env_name(&v, Path::new("/p"), "s", &strings(&["ab"])),
            env_name(&v, Path::new("/p"), "s", &strings(&["a", "b"]))
        );
    }

    #[test]
    fn scripts_are_relocated() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join(".tmp-x");
        std::fs::create_dir_all(from.join("bin")).unwrap();
        let script = from.join("bin/tool");
        std::fs::write(
            &script,
            format!("#!{}/bin/python\nprint(1)\n", from.display()),
        )
        .unwrap();
        let to = dir.path().join("x");
        relocate_scripts(&from, &from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(&script).unwrap(),
            format!("#!{}/bin/python\nprint(1)\n", to.display())
        );
    }
}
