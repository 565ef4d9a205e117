//! `py4cl2-cffi-config`: discover Python interpreters, choose the one py4cl2-cffi starts, and
//! show what is recorded. Exit status: 0 ok, 1 failure, 2 bad input.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use py4cl2_cffi_config::environments::{self, Progress};
use py4cl2_cffi_config::{
    config_path, current, discover, inspect, select, Config, DiscoverOptions, Error, Interpreter,
    Origin,
};

const NAME: &str = "py4cl2-cffi-config";

const HELP: &str = "\
py4cl2-cffi-config: discover Python interpreters and record the one py4cl2-cffi uses

usage: py4cl2-cffi-config COMMAND [--json] [ARGS]

commands:
  discover [FOLDER...]   list every interpreter found, usable or not
  use SPEC [--with REQS] choose the interpreter SPEC selects (or an environment made over it
                         with the packages REQS) and write the config file
  print-configuration    show the interpreter that will be used, why, and its build flags
  check [SPEC]           start that interpreter (or SPEC's) through the loader, as Lisp would,
                         print its version, and stop it again
  path                   print the config file's path
  help [COMMAND]         show this help, or a command's

SPEC is a version (3.12, 3.12.1), a range (>=3.10, \">=3.9, <3.12\"), the path of a python
executable, a venv, conda env or installation folder, or a name on PATH (python3.11).

Without a config file, or with an active venv or conda env, the interpreter is chosen as
reticulate does: $VIRTUAL_ENV, then $CONDA_PREFIX, then the config file, then the first
usable python3 on PATH (else the newest usable python3.N there).

Every command takes --json (output for tools) and --help.
environment: PY4CL2_CFFI_CONFIG (config file), PY4CL2_CFFI_CACHE_DIR (facts cache folder),
XDG_CACHE_HOME (environments go in its py4cl2-cffi/envs), PY4CL2_CFFI_INSTALLER (uv or pip)
exit status: 0 ok, 1 failure, 2 bad input
";

const HELP_DISCOVER: &str = "\
usage: py4cl2-cffi-config discover [--json] [FOLDER...]

List every Python interpreter found: the FOLDERs or executables given, the active venv
($VIRTUAL_ENV) and conda env ($CONDA_PREFIX), ./.venv, PATH, pyenv ($PYENV_ROOT or ~/.pyenv),
/usr/bin and /usr/local/bin, conda envs (~/.conda/environments.txt, conda roots), venvs in
$WORKON_HOME, and macOS Python.framework versions. Symlinked duplicates are shown once.
Columns: kind, version, usable or unusable (reason), executable, libpython; `*` marks the
interpreter recorded in the config file. Answers are cached by executable path and mtime.
";

const HELP_USE: &str = "\
usage: py4cl2-cffi-config use [--json] SPEC [--with REQ,REQ...]

Choose the interpreter SPEC selects and record it, with the list of interpreters found, in the
config file. SPEC: a version (3.12: the newest 3.12.x), a range (>=3.10), a python executable,
a venv, conda env or installation folder, or a name on PATH (python3.11). Nothing is written
when SPEC selects nothing usable.

--with numpy,scipy>=1.10 records instead a venv made over that interpreter's installation with
those packages (pip requirement strings, comma-separated; --with may be repeated). It is kept
in $XDG_CACHE_HOME/py4cl2-cffi/envs (else ~/.cache/...) and reused by every later request for
the same interpreter and packages. uv makes it when uv is on PATH, pip otherwise (force one
with PY4CL2_CFFI_INSTALLER=uv|pip). The installer's progress goes to stderr; when it fails,
nothing is kept and nothing is written.
";

const HELP_PRINT: &str = "\
usage: py4cl2-cffi-config print-configuration [--json]

Show the interpreter py4cl2-cffi will start and why: version, executable, libpython, ldflags,
includes, site-packages, the config file, and which rule chose it ($VIRTUAL_ENV, then
$CONDA_PREFIX, then the config file, then the best usable python3 on PATH).
";

const HELP_CHECK: &str = "\
usage: py4cl2-cffi-config check [--json] [SPEC]

Start the interpreter py4cl2-cffi will use (or the one SPEC selects) in this process through
the loader, exactly as the Lisp side does (libpython opened by its path, the C API resolved,
Python initialised), print the version the running library reports, then stop it and say how
(unloaded, or soft when an extension keeps libpython). Exit 1 when it cannot be started.
";

const HELP_PATH: &str = "\
usage: py4cl2-cffi-config path [--json]

Print the config file's path ($PY4CL2_CFFI_CONFIG, else <config dir>/py4cl2-cffi/config.toml).
";

/// Why a run did not succeed.
enum Failure {
    /// Bad command line: exit 2.
    Usage(String),
    /// An error of the library: exit 2 for bad input, 1 otherwise.
    Lib(Error),
    /// Writing the output failed (a closed pipe is not an error).
    Output(std::io::Error),
    /// The interpreter could not be started or stopped (`check`): exit 1.
    Loader(Box<py4cl2_cffi_loader::Error>),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Lib(e)
    }
}

/// The parsed command line of one command.
struct Args {
    json: bool,
    help: bool,
    positional: Vec<String>,
    /// Requirements given with `--with` (`use` only).
    with: Vec<String>,
}

fn parse_args(command: &str, rest: &[String]) -> Result<Args, Failure> {
    let mut args = Args {
        json: false,
        help: false,
        positional: Vec::new(),
        with: Vec::new(),
    };
    let mut options_done = false;
    let mut rest = rest.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            _ if options_done => args.positional.push(a.clone()),
            "--" => options_done = true,
            "--json" => args.json = true,
            "--help" | "-h" => args.help = true,
            "--with" if command == "use" => match rest.next() {
                Some(list) => args.with.extend(environments::split_list(list)),
                None => {
                    return Err(Failure::Usage(
                        "`--with` needs a list of packages, e.g. `--with numpy,scipy`".into(),
                    ))
                }
            },
            s if command == "use" && s.starts_with("--with=") => {
                args.with
                    .extend(environments::split_list(&s["--with=".len()..]));
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Failure::Usage(format!(
                    "unknown option `{s}` for `{command}` (see `{NAME} {command} --help`)"
                )))
            }
            _ => args.positional.push(a.clone()),
        }
    }
    Ok(args)
}

fn to_json(value: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""));
    s.push('\n');
    s
}

fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "{NAME}: warning: {message}");
}

fn or_dash(p: Option<&std::path::Path>) -> String {
    p.map_or_else(|| "-".to_string(), |p| p.display().to_string())
}

/// Whether `a` and `b` are the same interpreter (same executable and prefix).
fn same(a: &Interpreter, b: &Interpreter) -> bool {
    match (&a.facts, &b.facts) {
        (Some(x), Some(y)) => x.executable == y.executable && x.prefix == y.prefix,
        _ => a.path == b.path,
    }
}

fn interpreter_json(i: &Interpreter, chosen: bool) -> serde_json::Value {
    serde_json::json!({
        "kind": i.kind,
        "path": i.path,
        "usable": i.is_usable(),
        "reason": i.problem,
        "chosen": chosen,
        "facts": i.facts,
    })
}

fn cmd_discover(args: &Args) -> Result<String, Failure> {
    let options = DiscoverOptions {
        extra: args.positional.iter().map(PathBuf::from).collect(),
        use_cache: true,
    };
    let mut found = discover(&options)?;
    if let Err(e) = found.save_cache() {
        warn(&format!("cannot write the facts cache: {e}"));
    }
    let config = Config::load(&config_path()).ok().flatten();
    let is_chosen = |i: &Interpreter| {
        config.as_ref().is_some_and(|c| {
            i.facts.as_ref().is_some_and(|f| {
                f.executable == c.interpreter.facts.executable
                    && f.prefix == c.interpreter.facts.prefix
            })
        })
    };
    if args.json {
        let list: Vec<_> = found
            .interpreters
            .iter()
            .map(|i| interpreter_json(i, is_chosen(i)))
            .collect();
        return Ok(to_json(&list));
    }
    let mut rows = vec![[
        String::new(),
        "KIND".to_string(),
        "VERSION".to_string(),
        "STATUS".to_string(),
        "EXECUTABLE".to_string(),
        "LIBPYTHON".to_string(),
    ]];
    for i in &found.interpreters {
        rows.push([
            if is_chosen(i) { "*" } else { " " }.to_string(),
            i.kind.to_string(),
            i.version().map_or("?".into(), ToString::to_string),
            match &i.problem {
                None if i.version().is_some_and(|v| {
                    py4cl2_cffi_config::versions::newer_than_known(v).is_some()
                }) =>
                {
                    let (x, y) = py4cl2_cffi_config::versions::NEWEST_KNOWN;
                    format!("usable (newer than {x}.{y}: run as {x}.{y})")
                }
                None => "usable".to_string(),
                Some(p) => format!("unusable ({p})"),
            },
            i.executable().display().to_string(),
            or_dash(i.facts.as_ref().and_then(|f| f.libpython.as_deref())),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i == 0 {
                line.push_str(cell);
            } else if i == row.len() - 1 {
                let _ = write!(line, " {cell}");
            } else {
                let _ = write!(line, " {cell:<w$} ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let usable = found.interpreters.iter().filter(|i| i.is_usable()).count();
    let _ = writeln!(
        out,
        "{} found, {usable} usable{}",
        found.interpreters.len(),
        if config.is_some() {
            format!("; * = recorded in {}", config_path().display())
        } else {
            String::new()
        }
    );
    Ok(out)
}

/// Set by SIGINT (C-c) while an environment is being made.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Make or reuse the environment for `requirements` over `base`, the installer's lines
/// going to stderr. C-c stops the installer and removes what it made.
fn environment_over(base: &Interpreter, requirements: &[String]) -> Result<Interpreter, Failure> {
    let facts = base
        .facts
        .as_ref()
        .ok_or(Failure::Lib(Error::NoInterpreter))?;
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, handler) };
    let mut show = |p: Progress<'_>| {
        if let Progress::Line(line) = p {
            let _ = writeln!(std::io::stderr(), "  {line}");
        }
        !INTERRUPTED.load(Ordering::SeqCst)
    };
    let env = environments::ensure(facts, requirements, &mut show)?;
    if !env.created {
        let _ = writeln!(
            std::io::stderr(),
            "{NAME}: reusing the environment {} ({})",
            env.dir.display(),
            env.manifest.requirements.join(" ")
        );
    }
    let chosen = inspect(&env.dir)?;
    if !chosen.is_usable() {
        return Err(Failure::Lib(Error::Unusable {
            path: chosen.path.clone(),
            version: chosen.version().map_or("?".into(), ToString::to_string),
            reason: chosen.problem.unwrap_or_else(|| "it did not answer".into()),
        }));
    }
    Ok(chosen)
}

fn cmd_use(args: &Args) -> Result<String, Failure> {
    let [spec] = args.positional.as_slice() else {
        return Err(Failure::Usage(format!(
            "`use` takes exactly one SPEC (see `{NAME} use --help`)"
        )));
    };
    let path = config_path();
    // Refused before any work: nothing else would replace it.
    Config::load(&path).map(|_| ()).or_else(|e| match e {
        Error::ConfigNotAFile { .. } => Err(e),
        _ => Ok(()),
    })?;
    let requirements = environments::normalize(&args.with)?;
    let selection = select(spec, &DiscoverOptions::default())?;
    let mut found = match selection.discovery {
        Some(d) => d,
        None => discover(&DiscoverOptions::default())?,
    };
    let chosen = if requirements.is_empty() {
        selection.chosen
    } else {
        environment_over(&selection.chosen, &requirements)?
    };
    let mut list = found.interpreters.clone();
    if !list.iter().any(|i| same(i, &chosen)) {
        list.insert(0, chosen.clone());
    }
    let facts = chosen
        .facts
        .clone()
        .ok_or(Failure::Lib(Error::NoInterpreter))?;
    if let Some(w) = py4cl2_cffi_config::versions::newer_than_known(&facts.version) {
        warn(&w);
    }
    let mut config = Config::new(Some(spec.clone()), chosen.kind, facts, &list);
    config.requires = requirements;
    config.save(&path)?;
    if let Err(e) = found.save_cache() {
        warn(&format!("cannot write the facts cache: {e}"));
    }
    if args.json {
        return Ok(to_json(&serde_json::json!({
            "config_file": path,
            "spec": spec,
            "requires": config.requires,
            "interpreter": config.interpreter,
        })));
    }
    let f = &config.interpreter.facts;
    Ok(format!(
        "using python {} ({}) at {}\n{}libpython {}\nwrote {}\n",
        f.version,
        chosen.kind,
        f.executable.display(),
        if config.requires.is_empty() {
            String::new()
        } else {
            format!("with {}\n", config.requires.join(" "))
        },
        or_dash(f.libpython.as_deref()),
        path.display()
    ))
}

fn cmd_print(args: &Args) -> Result<String, Failure> {
    if let Some(extra) = args.positional.first() {
        return Err(Failure::Usage(format!(
            "`print-configuration` takes no argument, got `{extra}`"
        )));
    }
    let c = current()?;
    for w in &c.warnings {
        warn(w);
    }
    let f = &c.facts;
    let env = environments::manifest_of(&f.prefix);
    if args.json {
        return Ok(to_json(&serde_json::json!({
            "version": f.version,
            "version_string": f.version_string,
            "implementation": f.implementation,
            "kind": c.kind,
            "executable": f.executable,
            "prefix": f.prefix,
            "base_prefix": f.base_prefix,
            "libpython": f.libpython,
            "ldflags": f.ldflags,
            "includes": f.includes,
            "site_packages": f.site_packages,
            "abiflags": f.abiflags,
            "free_threaded": f.free_threaded,
            "externally_managed": f.externally_managed,
            "multiarch": f.multiarch,
            "platlibdir": f.platlibdir,
            "config_script": f.config_script,
            "config_file": c.config_file,
            "config_file_exists": c.config_file.is_file(),
            "source": c.origin.source(),
            "why": c.why,
            "warnings": c.warnings,
            "environment": env,
        })));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "version:       {} ({}, {})",
        f.version, f.implementation, c.kind
    );
    let _ = writeln!(out, "executable:    {}", f.executable.display());
    let _ = writeln!(out, "libpython:     {}", or_dash(f.libpython.as_deref()));
    let _ = writeln!(out, "ldflags:       {}", f.ldflags);
    let _ = writeln!(out, "includes:      {}", f.includes);
    if f.externally_managed {
        let _ = writeln!(
            out,
            "managed by:    the distribution (EXTERNALLY-MANAGED: install packages into a venv made from it)"
        );
    }
    let sites: Vec<String> = f
        .site_packages
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let _ = writeln!(
        out,
        "site-packages: {}",
        if sites.is_empty() {
            "-".to_string()
        } else {
            sites.join("\n               ")
        }
    );
    if let Some(m) = &env {
        let _ = writeln!(
            out,
            "environment:   {} (made with {} over {})",
            m.requirements.join(" "),
            m.installer,
            m.base_executable.display()
        );
    }
    let exists = if c.config_file.is_file() {
        ""
    } else {
        " (none yet)"
    };
    let _ = writeln!(out, "config file:   {}{exists}", c.config_file.display());
    let _ = writeln!(out, "chosen by:     {}", c.why);
    if matches!(c.origin, Origin::ActiveVenv(_) | Origin::ActiveConda(_)) {
        let _ = writeln!(
            out,
            "               (deactivate it, or give a SPEC, to use another interpreter)"
        );
    }
    Ok(out)
}

fn cmd_path(args: &Args) -> Result<String, Failure> {
    if let Some(extra) = args.positional.first() {
        return Err(Failure::Usage(format!(
            "`path` takes no argument, got `{extra}`"
        )));
    }
    let path = config_path();
    if args.json {
        return Ok(to_json(&serde_json::json!({
            "config_file": path,
            "exists": path.is_file(),
        })));
    }
    Ok(format!("{}\n", path.display()))
}

fn cmd_check(args: &Args) -> Result<String, Failure> {
    if args.positional.len() > 1 {
        return Err(Failure::Usage(format!(
            "`check` takes at most one SPEC, got {}",
            args.positional.len()
        )));
    }
    let facts = py4cl2_cffi_config::resolve(args.positional.first().map(String::as_str))?;
    let started = py4cl2_cffi_loader::start(&facts).map_err(|e| Failure::Loader(Box::new(e)))?;
    // SAFETY: `Py_GetVersion` returns a static NUL-terminated string; it needs no GIL.
    let banner = unsafe { std::ffi::CStr::from_ptr((started.runtime.api.Py_GetVersion)()) }
        .to_string_lossy()
        .into_owned();
    let report = py4cl2_cffi_loader::stop(py4cl2_cffi_loader::StopMode::Auto)
        .map_err(|e| Failure::Loader(Box::new(e)))?;
    let kind = match report.kind {
        py4cl2_cffi_loader::StopKind::Unloaded => "unloaded",
        py4cl2_cffi_loader::StopKind::Soft => "soft",
        py4cl2_cffi_loader::StopKind::Finalized => "finalized",
    };
    if args.json {
        return Ok(to_json(&serde_json::json!({
            "version": banner,
            "executable": facts.executable,
            "libpython": report.libpython,
            "stop": kind,
            "unloaded": report.unloaded.len(),
            "reason": report.pin_reason,
        })));
    }
    Ok(format!(
        "started {} ({})\nPython {banner}\nstopped: {kind}{}\n",
        facts.executable.display(),
        report.libpython.display(),
        match (&report.pin_reason, report.kind) {
            (Some(r), _) => format!(" ({r})"),
            (None, py4cl2_cffi_loader::StopKind::Unloaded) => {
                format!(" ({} shared objects unloaded)", report.unloaded.len() + 1)
            }
            _ => String::new(),
        }
    ))
}

fn run(argv: &[String]) -> Result<String, Failure> {
    let Some((command, rest)) = argv.split_first() else {
        return Ok(HELP.to_string());
    };
    let (text, help, command) = match command.as_str() {
        "--help" | "-h" => return Ok(HELP.to_string()),
        "--version" | "-V" => return Ok(format!("{NAME} {}\n", env!("CARGO_PKG_VERSION"))),
        "help" => {
            return match rest.first().map(String::as_str) {
                None => Ok(HELP.to_string()),
                Some(c) => run(&[c.to_string(), "--help".to_string()]),
            }
        }
        "discover" => (HELP_DISCOVER, cmd_discover as fn(&Args) -> _, "discover"),
        "use" => (HELP_USE, cmd_use as fn(&Args) -> _, "use"),
        "print-configuration" => (HELP_PRINT, cmd_print as fn(&Args) -> _, "print-configuration"),
        "path" => (HELP_PATH, cmd_path as fn(&Args) -> _, "path"),
        "check" => (HELP_CHECK, cmd_check as fn(&Args) -> _, "check"),
        other => {
            return Err(Failure::Usage(format!(
                "unknown command `{other}` (commands: discover, use, print-configuration, check, path; see `{NAME} --help`)"
            )))
        }
    };
    let args = parse_args(command, rest)?;
    if args.help {
        return Ok(text.to_string());
    }
    help(&args)
}

fn main() -> ExitCode {
    let argv: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let result = match argv {
        Ok(argv) => run(&argv),
        Err(bad) => Err(Failure::Usage(format!(
            "argument {} is not valid UTF-8",
            bad.to_string_lossy()
        ))),
    };
    let result = result.and_then(|text| {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(Failure::Output)
    });
    let (message, code) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return ExitCode::SUCCESS
        }
        Err(Failure::Output(e)) => (format!("cannot write the output: {e}"), 1),
        Err(Failure::Usage(m)) => (m, 2),
        Err(Failure::Loader(e)) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let t = cause.to_string();
                if !message.contains(&t) {
                    let _ = write!(message, ": {t}");
                }
                source = cause.source();
            }
            (message, 1)
        }
        Err(Failure::Lib(e)) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let _ = write!(message, ": {cause}");
                source = cause.source();
            }
            (message, if e.is_bad_input() { 2 } else { 1 })
        }
    };
    let _ = writeln!(std::io::stderr(), "{NAME}: error: {message}");
    ExitCode::from(code)
}
