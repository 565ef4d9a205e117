//! Asking one interpreter for its facts: run it once, without a shell, with an embedded script.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Facts};

/// The script run as `python -I -c SCRIPT`; valid Python 2 and 3, prints one JSON object.
pub(crate) const SCRIPT: &str = include_str!("query.py");

/// The oldest version the loader supports.
pub(crate) const MIN_VERSION: (u64, u64) = crate::versions::OLDEST;

/// Why a free-threaded build is refused (the facts' `free_threaded`; docs/internals.md says
/// what supporting one would take).
pub(crate) const FREE_THREADED: &str = "a free-threaded build (Py_GIL_DISABLED, `t` in its abiflags), which py4cl2-cffi does not support yet: use the default (GIL) build of the same version";

/// How long one interpreter may take to answer.
const TIMEOUT: Duration = Duration::from_secs(20);

/// What a `pythonX.Y-config` script would print, as computed inside the interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Emulated {
    pub ldflags: String,
    pub includes: String,
}

/// The JSON the embedded script prints. Cached as is; [`evaluate`] turns it into [`Facts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Raw {
    pub version_info: (u64, u64, u64, String, u64),
    pub version_string: String,
    #[serde(default)]
    pub implementation: String,
    pub executable: PathBuf,
    pub prefix: PathBuf,
    pub base_prefix: PathBuf,
    #[serde(default)]
    pub abiflags: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub problems: Vec<String>,
    /// Emulation of `python-config.sh` (installed as `pythonX.Y-config` except on macOS).
    #[serde(default)]
    pub sh: Option<Emulated>,
    /// Emulation of `python-config.py` (installed as `pythonX.Y-config` on macOS).
    #[serde(default)]
    pub py: Option<Emulated>,
    #[serde(default)]
    pub py_enable_shared: Option<bool>,
    #[serde(default)]
    pub mapped_libpython: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub libpython_candidates: Vec<PathBuf>,
    #[serde(default)]
    pub site_packages: Vec<PathBuf>,
    #[serde(default)]
    pub gil_disabled: bool,
    #[serde(default)]
    pub multiarch: String,
    #[serde(default)]
    pub platlibdir: String,
    #[serde(default)]
    pub externally_managed: bool,
}

/// Collapse runs of white space: the config scripts' `echo` leaves stray spaces around
/// empty variables (`-ldl  -lm`, a trailing space) that carry no meaning.
pub(crate) fn normalize_flags(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `sys.version_info` as a semantic version: `3.13.0`, `3.13.0-rc.1`, `3.14.0-alpha.2`.
pub(crate) fn semver_of(info: &(u64, u64, u64, String, u64)) -> semver::Version {
    let (major, minor, patch, level, serial) = info;
    let mut v = semver::Version::new(*major, *minor, *patch);
    let tag = match level.as_str() {
        "alpha" => Some("alpha"),
        "beta" => Some("beta"),
        "candidate" => Some("rc"),
        _ => None,
    };
    if let Some(tag) = tag {
        if let Ok(pre) = semver::Prerelease::new(&format!("{tag}.{serial}")) {
            v.pre = pre;
        }
    }
    v
}

/// The installation's `pythonX.Y[abiflags]-config` script, if installed: beside the real
/// executable, or in the base installation's `bin/` (a venv has none of its own).
fn config_script(raw: &Raw) -> Option<PathBuf> {
    let (major, minor, ..) = raw.version_info;
    let name = format!("python{major}.{minor}{}-config", raw.abiflags);
    let real = std::fs::canonicalize(&raw.executable).ok();
    let dirs = [
        real.as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf),
        Some(raw.base_prefix.join("bin")),
    ];
    dirs.into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// Turn the script's answer into facts, plus the reason the interpreter cannot be used.
pub(crate) fn evaluate(raw: &Raw) -> (Facts, Option<String>) {
    let emulated = if raw.platform == "darwin" {
        raw.py.as_ref().or(raw.sh.as_ref())
    } else {
        raw.sh.as_ref().or(raw.py.as_ref())
    };
    let libpython = raw
        .libpython_candidates
        .iter()
        .find(|p| p.is_absolute() && p.is_file())
        .cloned();
    let facts = Facts {
        version: semver_of(&raw.version_info),
        version_string: raw.version_string.clone(),
        implementation: raw.implementation.clone(),
        executable: raw.executable.clone(),
        prefix: raw.prefix.clone(),
        base_prefix: raw.base_prefix.clone(),
        libpython,
        ldflags: emulated
            .map(|e| normalize_flags(&e.ldflags))
            .unwrap_or_default(),
        includes: emulated
            .map(|e| normalize_flags(&e.includes))
            .unwrap_or_default(),
        site_packages: raw.site_packages.clone(),
        abiflags: raw.abiflags.clone(),
        free_threaded: raw.gil_disabled || raw.abiflags.contains('t'),
        externally_managed: raw.externally_managed,
        multiarch: raw.multiarch.clone(),
        platlibdir: if raw.platlibdir.is_empty() {
            "lib".to_string()
        } else {
            raw.platlibdir.clone()
        },
        config_script: config_script(raw),
    };
    let mut problems = Vec::new();
    let (major, minor, ..) = raw.version_info;
    if (major, minor) < MIN_VERSION {
        problems.push(format!("older than {}.{}", MIN_VERSION.0, MIN_VERSION.1));
    }
    if facts.free_threaded {
        problems.push(FREE_THREADED.to_string());
    }
    if facts.implementation != "cpython" {
        problems.push(format!("not CPython ({})", facts.implementation));
    }
    problems.extend(raw.problems.iter().cloned());
    if facts.libpython.is_none() {
        problems.push(match raw.libpython_candidates.first() {
            None => "no shared libpython (built without --enable-shared)".to_string(),
            Some(p) => format!("shared libpython {} does not exist", p.display()),
        });
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    (facts, problem)
}

/// What running the interpreter produced.
struct Ran {
    status: Option<std::process::ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Read a pipe to its end on a thread of its own and send what came, tagged with `which`.
fn read_on_thread<R: Read + Send + 'static>(
    pipe: Option<R>,
    which: usize,
    done: mpsc::Sender<(usize, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = done.send((which, buf));
    });
}

/// `ETXTBSY` ("text file busy"): 26 on Linux and macOS alike. (`ErrorKind::ExecutableFileBusy`
/// is newer than this crate's minimum Rust.)
const ETXTBSY: i32 = 26;

/// Run `path FLAGS -c SCRIPT` and collect its output, killing it after `timeout`.
///
/// The pipes are read on their own threads, and the end of both (the process is exiting)
/// is what is waited for, so a quick interpreter costs no polling delay. The readers are
/// detached: a grandchild holding a pipe open cannot make this hang past the deadline.
fn run_with(path: &Path, flags: &[&str], timeout: Duration) -> std::io::Result<Ran> {
    let spawn = || {
        Command::new(path)
            .args(flags)
            .arg("-c")
            .arg(SCRIPT)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    // An executable written a moment ago is "busy" (ETXTBSY) while any process forked in the
    // meantime still holds the writer's descriptor, until that child execs: an installer or a
    // test that just made the interpreter in another thread. That lasts microseconds; retry.
    let mut tries = 0;
    let mut child = loop {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel();
    read_on_thread(child.stdout.take(), 0, tx.clone());
    read_on_thread(child.stderr.take(), 1, tx);
    let mut outputs: [Option<Vec<u8>>; 2] = [None, None];
    let mut timed_out = false;
    while outputs.iter().any(Option::is_none) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((which, bytes)) => outputs[which] = Some(bytes),
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    let status = loop {
        if timed_out {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        timed_out = Instant::now() >= deadline;
        std::thread::sleep(Duration::from_millis(1));
    };
    let [stdout, stderr] = outputs;
    Ok(Ran {
        status,
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// The last non-empty line of some output, which for Python is the exception, cut short.
/// A program that echoes its arguments back (it is not Python) would print the script.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if let Some(first) = SCRIPT.lines().next() {
        if text.contains(first) {
            return "it does not run python code given as `-I -c CODE`".into();
        }
    }
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 200 {
        format!("{}...", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    }
}

/// Run `path` once and parse what the embedded script printed.
///
/// `path` is run as `path -I -c SCRIPT`; interpreters without `-I` (Python 2) are run again
/// as `path -E -s -c SCRIPT`.
pub(crate) fn run(path: &Path) -> Result<Raw, Error> {
    let fail = |status: String, stderr: String, source: Option<std::io::Error>| Error::Query {
        path: path.to_path_buf(),
        status,
        stderr,
        source,
    };
    let mut ran = run_with(path, &["-I"], TIMEOUT)
        .map_err(|e| fail("could not start".into(), String::new(), Some(e)))?;
    let unknown_option = |r: &Ran| {
        r.status.is_some_and(|s| !s.success())
            && String::from_utf8_lossy(&r.stderr).contains("Unknown option")
    };
    if unknown_option(&ran) {
        ran = run_with(path, &["-E", "-s"], TIMEOUT)
            .map_err(|e| fail("could not start".into(), String::new(), Some(e)))?;
    }
    match ran.status {
        None => {
            return Err(fail(
                format!("timed out after {} s", TIMEOUT.as_secs()),
                last_line(&ran.stderr),
                None,
            ))
        }
        Some(s) if !s.success() => {
            let mut stderr = last_line(&ran.stderr);
            if stderr.is_empty() {
                stderr = "it printed nothing on stderr".into();
            }
            return Err(fail(s.to_string(), stderr, None));
        }
        Some(_) => {}
    }
    serde_json::from_slice::<Raw>(&ran.stdout).map_err(|e| {
        let shown = last_line(&ran.stdout);
        fail(
            "exit status: 0".into(),
            format!(
                "it did not print the facts as JSON ({e}){}",
                if shown.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it printed `{}`",
                        shown.chars().take(80).collect::<String>()
                    )
                }
            ),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_semver() {
        let v = |l: &str, s| semver_of(&(3, 13, 0, l.to_string(), s)).to_string();
        assert_eq!(v("final", 0), "3.13.0");
        assert_eq!(v("candidate", 1), "3.13.0-rc.1");
        assert_eq!(v("alpha", 2), "3.13.0-alpha.2");
        assert_eq!(v("beta", 4), "3.13.0-beta.4");
    }

    #[test]
    fn flags_are_normalized() {
        assert_eq!(normalize_flags(" -L/x  -ldl  -lm "), "-L/x -ldl -lm");
    }

    fn raw(info: (u64, u64, u64), candidates: Vec<PathBuf>) -> Raw {
        Raw {
            version_info: (info.0, info.1, info.2, "final".into(), 0),
            version_string: "x".into(),
            implementation: "cpython".into(),
            executable: "/x/bin/python".into(),
            prefix: "/x".into(),
            base_prefix: "/x".into(),
            abiflags: String::new(),
            platform: "linux".into(),
            problems: vec![],
            sh: Some(Emulated {
                ldflags: " -L/x/lib  -lpython3.12 ".into(),
                includes: "-I/x/include/python3.12 -I/x/include/python3.12".into(),
            }),
            py: Some(Emulated {
                ldflags: "-lpython3.12".into(),
                includes: "-I/py".into(),
            }),
            py_enable_shared: Some(true),
            mapped_libpython: None,
            libpython_candidates: candidates,
            site_packages: vec![],
            gil_disabled: false,
            multiarch: String::new(),
            platlibdir: String::new(),
            externally_managed: false,
        }
    }

    #[test]
    fn a_hanging_interpreter_is_killed_at_the_deadline() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("python");
        // The shell's `sleep` child keeps the pipes open after the shell is killed.
        std::fs::write(&exe, "#!/bin/sh\necho started >&2\nsleep 5\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = Instant::now();
        let ran = run_with(&exe, &["-I"], Duration::from_millis(300)).unwrap();
        assert!(ran.status.is_none(), "timed out");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn usability_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libpython3.12.so.1.0");
        std::fs::write(&lib, b"").unwrap();

        let (facts, problem) =
            evaluate(&raw((3, 12, 1), vec![dir.path().join("nope"), lib.clone()]));
        assert_eq!(problem, None);
        assert_eq!(facts.libpython.as_deref(), Some(lib.as_path()));
        assert_eq!(facts.ldflags, "-L/x/lib -lpython3.12");

        let (_, problem) = evaluate(&raw((3, 7, 16), vec![lib.clone()]));
        assert_eq!(problem.as_deref(), Some("older than 3.8"));

        let (facts, problem) = evaluate(&raw((3, 12, 1), vec![]));
        assert_eq!(facts.libpython, None);
        assert_eq!(
            problem.as_deref(),
            Some("no shared libpython (built without --enable-shared)")
        );

        let (_, problem) = evaluate(&raw(
            (3, 12, 1),
            vec![PathBuf::from("/gone/libpython3.12.so")],
        ));
        assert_eq!(
            problem.as_deref(),
            Some("shared libpython /gone/libpython3.12.so does not exist")
        );

        let mut mac = raw((3, 12, 1), vec![lib]);
        mac.platform = "darwin".into();
        assert_eq!(evaluate(&mac).0.includes, "-I/py");
    }
}

/// Against the interpreters on this machine: both emulations equal the real scripts.
#[cfg(test)]
mod real_tests {
    use super::*;

    /// pyenv 3.8-3.13 and Debian's 3.11, with their `X.Y`; absent ones are skipped loudly.
    fn interpreters() -> Vec<(PathBuf, String)> {
        let root = std::env::var_os("PYENV_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs::home_dir().unwrap_or_default().join(".pyenv"));
        let mut found = Vec::new();
        for v in ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"] {
            let exe = root.join("versions").join(v).join("bin/python");
            let xy = v.rsplit_once('.').unwrap().0.to_string();
            if exe.exists() {
                found.push((exe, xy));
            } else {
                eprintln!("SKIPPED: {} is absent", exe.display());
            }
        }
        let debian = PathBuf::from("/usr/bin/python3.11");
        if debian.exists() {
            found.push((debian, "3.11".into()));
        } else {
            eprintln!("SKIPPED: /usr/bin/python3.11 is absent");
        }
        found
    }

    fn output(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `python-config.py`, the macOS flavour, ships in LIBPL on every POSIX install: run it
    /// with its interpreter and compare with the emulation that macOS will use.
    #[test]
    fn python_config_py_emulation_matches() {
        for (exe, _) in interpreters() {
            let raw = run(&exe).unwrap();
            let libpl = output(Command::new(&exe).args([
                "-c",
                "import sysconfig; print(sysconfig.get_config_var('LIBPL'))",
            ]));
            let script = PathBuf::from(libpl.trim()).join("python-config.py");
            if !script.exists() {
                eprintln!("SKIPPED: {} is absent", script.display());
                continue;
            }
            let py = raw.py.as_ref().unwrap();
            let ldflags = output(
                Command::new(&exe)
                    .arg(&script)
                    .args(["--ldflags", "--embed"]),
            );
            let includes = output(Command::new(&exe).arg(&script).arg("--includes"));
            assert_eq!(
                normalize_flags(&py.ldflags),
                normalize_flags(&ldflags),
                "{}",
                exe.display()
            );
            assert_eq!(
                normalize_flags(&py.includes),
                normalize_flags(&includes),
                "{}",
                exe.display()
            );
        }
    }
}
