//! The `py4cl2-cffi-config` binary: commands, output, the config file it writes, exit codes
//! and one-line errors on bad input. Each test has its own config file and cache.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use common::*;

fn config_of(dir: &Path) -> PathBuf {
    dir.join("config.toml")
}

#[test]
fn help_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["help"],
        &["help", "use"],
        &["discover", "--help"],
        &["use", "--help"],
        &["print-configuration", "--help"],
        &["path", "-h"],
    ] {
        let out = run(&mut cli(dir.path()), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            stdout(&out).contains("usage: py4cl2-cffi-config"),
            "{args:?}"
        );
    }
    assert!(!config_of(dir.path()).exists());
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_bad_input(
        &run(&mut cli(dir.path()), &["frobnicate"]),
        "unknown command `frobnicate`",
    );
    assert_bad_input(
        &run(&mut cli(dir.path()), &["discover", "--fast"]),
        "unknown option `--fast`",
    );
    assert_bad_input(&run(&mut cli(dir.path()), &["use"]), "exactly one SPEC");
    assert_bad_input(
        &run(&mut cli(dir.path()), &["path", "extra"]),
        "takes no argument",
    );
}

#[test]
fn path_prints_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut cli(dir.path()), &["path"]);
    assert_eq!(
        stdout(&out).trim(),
        config_of(dir.path()).display().to_string()
    );
    let out = run(&mut cli(dir.path()), &["path", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exists"], false);
}

#[test]
fn use_a_version_writes_the_config_and_print_configuration_shows_it() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let v312 = pyenv_version("3.12").unwrap();
    let prefix = pyenv_root().join("versions").join(&v312);
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut cli(dir.path()), &["use", "3.12"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("using python {v312} (pyenv)")),
        "{}",
        stdout(&out)
    );

    let text = std::fs::read_to_string(config_of(dir.path())).unwrap();
    assert!(text.contains("schema = 1"), "{text}");
    assert!(text.contains("[interpreter]"), "{text}");
    assert!(text.contains(&format!("version = \"{v312}\"")), "{text}");
    assert!(text.contains("[[discovered]]"), "{text}");
    if pyenv_version("3.7").is_some() || pyenv_version("2.7").is_some() {
        assert!(
            text.contains("reason = \"older than 3.8\""),
            "unusable ones are listed too: {text}"
        );
    }
    let table: toml::Table = text.parse().unwrap();
    assert_eq!(
        table["interpreter"]["libpython"].as_str(),
        Some(prefix.join("lib/libpython3.12.so.1.0").to_str().unwrap())
    );

    let out = run(&mut cli(dir.path()), &["print-configuration"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    for line in [
        format!("version:       {v312} (cpython, pyenv)"),
        format!("executable:    {}", python.display()),
        format!(
            "libpython:     {}",
            prefix.join("lib/libpython3.12.so.1.0").display()
        ),
        format!(
            "ldflags:       {}",
            flags_of(
                &prefix.join("bin/python3.12-config"),
                &["--ldflags", "--embed"]
            )
        ),
        format!(
            "includes:      {}",
            flags_of(&prefix.join("bin/python3.12-config"), &["--includes"])
        ),
        format!(
            "site-packages: {}",
            prefix.join("lib/python3.12/site-packages").display()
        ),
        format!("config file:   {}", config_of(dir.path()).display()),
    ] {
        assert!(shown.contains(&line), "`{line}` not in:\n{shown}");
    }

    let out = run(&mut cli(dir.path()), &["print-configuration", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], pyenv_version("3.12").unwrap());
    assert_eq!(v["kind"], "pyenv");
    assert_eq!(v["source"], "config file");
    assert_eq!(
        v["config_file"],
        config_of(dir.path()).display().to_string()
    );

    // discover marks the recorded interpreter.
    let out = run(&mut cli(dir.path()), &["discover"]);
    let marked: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('*'))
        .collect();
    assert_eq!(marked.len(), 1, "{}", stdout(&out));
    assert!(marked[0].contains(&pyenv_version("3.12").unwrap()));
}

#[test]
fn use_a_range_picks_the_newest_match() {
    if pyenv_python("3.11.7").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut cli(dir.path()), &["use", "--json", ">=3.10, <3.12"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["interpreter"]["version"], "3.11.7",
        "3.11.7 beats Debian's 3.11.2"
    );
}

#[test]
fn use_a_venv_folder_records_the_venv_python() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    make_venv(&python, &venv);
    let out = run(&mut cli(dir.path()), &["use", venv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table: toml::Table = std::fs::read_to_string(config_of(dir.path()))
        .unwrap()
        .parse()
        .unwrap();
    let i = &table["interpreter"];
    assert_eq!(i["kind"].as_str(), Some("venv"));
    assert_eq!(i["executable"].as_str(), venv.join("bin/python").to_str());
    assert_eq!(i["prefix"].as_str(), venv.to_str());
    let discovered = table["discovered"].as_array().unwrap();
    assert!(
        discovered
            .iter()
            .any(|d| d["kind"].as_str() == Some("venv")),
        "the chosen venv is in the list"
    );
}

#[test]
fn active_venv_and_conda_env_are_discovered() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("active");
    make_venv(&python, &venv);
    let conda = dir.path().join("condaenv");
    make_venv(&python, &conda);
    std::fs::create_dir_all(conda.join("conda-meta")).unwrap();
    std::fs::write(conda.join("conda-meta/history"), "").unwrap();
    let listed = dir.path().join("listed");
    make_venv(&python, &listed);
    std::fs::create_dir_all(listed.join("conda-meta")).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".conda")).unwrap();
    std::fs::write(
        home.join(".conda/environments.txt"),
        format!("{}\n", listed.display()),
    )
    .unwrap();

    let out = cli(dir.path())
        .env("VIRTUAL_ENV", &venv)
        .env("CONDA_PREFIX", &conda)
        .env("HOME", &home)
        .args(["discover", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kind_of = |prefix: &Path| {
        list.iter()
            .find(|i| i["facts"]["prefix"].as_str() == prefix.to_str())
            .map(|i| i["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind_of(&venv).as_deref(), Some("venv"));
    assert_eq!(kind_of(&conda).as_deref(), Some("conda"));
    assert_eq!(kind_of(&listed).as_deref(), Some("conda"));
    assert_eq!(
        list[0]["facts"]["prefix"].as_str(),
        venv.to_str(),
        "the active venv comes first"
    );
}

#[test]
fn bad_specs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = config_of(d);

    let out = run(&mut cli(d), &["use", "3.99"]);
    assert_bad_input(&out, "no usable python matches `3.99`; available: ");
    if let Some(v312) = pyenv_version("3.12") {
        assert!(
            stderr(&out).contains(&format!("{v312} (pyenv)")),
            "{}",
            stderr(&out)
        );
    }

    assert_bad_input(&run(&mut cli(d), &["use", "3.x"]), "is not a version");
    assert_bad_input(&run(&mut cli(d), &["use", "!=3.8"]), "not supported");
    assert_bad_input(&run(&mut cli(d), &["use", "nonsense"]), "is not a version");
    assert_bad_input(&run(&mut cli(d), &["use", "./missing"]), "does not exist");

    let text = d.join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    assert_bad_input(
        &run(&mut cli(d), &["use", text.to_str().unwrap()]),
        "is not a python interpreter: it is not an executable file",
    );
    let failing = d.join("bin/failing");
    write_exe(
        &failing,
        "#!/bin/sh\necho 'boom: no python here' >&2\nexit 3\n",
    );
    assert_bad_input(
        &run(&mut cli(d), &["use", failing.to_str().unwrap()]),
        "running it failed (exit status: 3): boom: no python here",
    );
    let chatty = d.join("bin/chatty");
    write_exe(&chatty, "#!/bin/sh\necho hello\n");
    assert_bad_input(
        &run(&mut cli(d), &["use", chatty.to_str().unwrap()]),
        "did not print the facts as JSON",
    );
    assert_bad_input(
        &run(&mut cli(d), &["use", "/bin/ls"]),
        "not a python interpreter",
    );

    let venv = d.join("brokenvenv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "version = 3.12.1\n").unwrap();
    assert_bad_input(
        &run(&mut cli(d), &["use", venv.to_str().unwrap()]),
        "has a broken pyvenv.cfg: it has no `home = ...` line",
    );
    std::fs::write(venv.join("pyvenv.cfg"), "home = /nowhere/bin\n").unwrap();
    assert_bad_input(
        &run(&mut cli(d), &["use", venv.to_str().unwrap()]),
        "its home /nowhere/bin does not exist",
    );

    if let Some(old) = pyenv_python("3.7") {
        assert_bad_input(
            &run(&mut cli(d), &["use", "3.7"]),
            "cannot be used: older than 3.8",
        );
        assert_bad_input(
            &run(&mut cli(d), &["use", old.to_str().unwrap()]),
            "older than 3.8",
        );
    }
    assert!(!config.exists(), "nothing may be written on bad input");
}

#[test]
fn a_broken_config_file_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_of(dir.path());
    std::fs::write(
        &config,
        "schema = 1\n\n[interpreter\nversion = \"3.12.1\"\n",
    )
    .unwrap();
    let before = std::fs::read(&config).unwrap();
    let out = run(&mut cli(dir.path()), &["print-configuration"]);
    assert_bad_input(&out, "is not valid TOML (line 3)");
    assert_eq!(
        std::fs::read(&config).unwrap(),
        before,
        "reading never modifies it"
    );

    std::fs::write(
        &config,
        "schema = 1\n[interpreter]\nkind = \"pyenv\"\nversion = \"3.12.1\"\n",
    )
    .unwrap();
    assert_bad_input(
        &run(&mut cli(dir.path()), &["print-configuration"]),
        "lacks the required key `interpreter.version_string`",
    );
    std::fs::write(&config, "schema = 7\n").unwrap();
    assert_bad_input(
        &run(&mut cli(dir.path()), &["print-configuration"]),
        "has schema 7",
    );
}

#[test]
fn a_vanished_libpython_is_reported_and_unknown_keys_warn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = d.join("fakeprefix");
    let exe = prefix.join("bin/python3");
    let lib = prefix.join("lib/libpython3.12.so.1.0");
    std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
    std::fs::write(&lib, b"").unwrap();
    fake_python(
        &exe,
        &canned_facts(&exe, &prefix, std::slice::from_ref(&lib)),
    );

    let out = run(&mut cli(d), &["use", exe.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&mut cli(d), &["print-configuration", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["ldflags"],
        format!("-L{}/lib -lpython3.12 -ldl -lm", prefix.display())
    );
    assert_eq!(v["libpython"], lib.display().to_string());

    // Unknown keys: a warning, and the file is left as it is.
    let config = config_of(d);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("schema = 1", "schema = 1\nfuture_key = true");
    std::fs::write(&config, &text).unwrap();
    let out = run(&mut cli(d), &["print-configuration"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("warning: unknown key `future_key` ignored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    std::fs::remove_file(&lib).unwrap();
    assert_bad_input(
        &run(&mut cli(d), &["print-configuration"]),
        &format!(
            "libpython {} recorded in {} no longer exists",
            lib.display(),
            config.display()
        ),
    );
}

#[test]
fn without_a_config_file_the_first_python3_on_path_is_shown() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&python, bin.join("python3")).unwrap();
    let out = cli(dir.path())
        .env("PATH", &bin)
        .arg("print-configuration")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    let v312 = pyenv_version("3.12").unwrap();
    assert!(shown.contains(&format!("version:       {v312}")), "{shown}");
    assert!(shown.contains("first usable python3 on PATH"), "{shown}");
    assert!(!config_of(dir.path()).exists());

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = cli(dir.path())
        .env("PATH", &empty)
        .arg("print-configuration")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "no interpreter is a failure, not bad input"
    );
    assert!(
        stderr(&out).contains("no usable python3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // `true` exits at once, so discover writes into a pipe nobody reads.
    for command in ["discover", "discover --json", "--help"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("\"$0\" {command} | true; exit ${{PIPESTATUS[0]}}"))
            .arg(cli(dir.path()).get_program())
            .envs(
                cli(dir.path())
                    .get_envs()
                    .filter_map(|(k, v)| Some((k, v?))),
            )
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{command}: {}", stderr(&out));
    }
}

#[test]
fn discover_is_fast_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let time = || {
        let start = Instant::now();
        let out = run(&mut cli(dir.path()), &["discover"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        (start.elapsed(), stdout(&out))
    };
    let (cold, first) = time();
    let (warm, second) = time();
    eprintln!("discover: cold {cold:?}, warm {warm:?}");
    assert_eq!(first, second, "the cache changes nothing");
    assert!(dir.path().join("cache/facts.json").is_file());
    assert!(warm.as_secs_f64() < 1.0, "warm discover took {warm:?}");
    // Cold runs share the 2 cores with the other tests; the budget is for a quiet machine.
    assert!(cold.as_secs_f64() < 5.0, "cold discover took {cold:?}");
}

#[test]
fn a_fifo_as_config_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [&["print-configuration"][..], &["use", "3.12"]] {
        let start = Instant::now();
        let out = cli(dir.path())
            .env("PY4CL2_CFFI_CONFIG", &fifo)
            .args(args)
            .output()
            .unwrap();
        assert!(start.elapsed().as_secs() < 20, "{args:?} blocked");
        assert_bad_input(&out, "is a FIFO (named pipe), not a regular file");
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO is left as it was"
    );
}

#[test]
fn an_active_venv_or_conda_env_comes_before_the_config_file() {
    let (Some(p312), Some(p311)) = (pyenv_python("3.12"), pyenv_python("3.11")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut cli(dir.path()), &["use", p312.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let venv = dir.path().join("active");
    make_venv(&p311, &venv);
    let conda = dir.path().join("condaenv");
    make_venv(&p311, &conda);
    std::fs::create_dir_all(conda.join("conda-meta")).unwrap();

    let show = |envs: &[(&str, &Path)]| {
        let mut cmd = cli(dir.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd
            .args(["print-configuration", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, stderr(&out))
    };
    let (v, _) = show(&[("VIRTUAL_ENV", &venv), ("CONDA_PREFIX", &conda)]);
    assert_eq!(v["source"], "VIRTUAL_ENV", "{v}");
    assert_eq!(v["prefix"].as_str(), venv.to_str());
    assert!(
        v["why"].as_str().unwrap().contains("the active venv"),
        "{v}"
    );
    let (v, _) = show(&[("CONDA_PREFIX", &conda)]);
    assert_eq!(v["source"], "CONDA_PREFIX", "{v}");
    assert_eq!(v["prefix"].as_str(), conda.to_str());
    let (v, _) = show(&[]);
    assert_eq!(v["source"], "config file", "{v}");
    assert_eq!(v["executable"].as_str(), p312.to_str());
    // An active venv that cannot be used is passed over, with a warning.
    let gone = dir.path().join("gone");
    let (v, err) = show(&[("VIRTUAL_ENV", &gone)]);
    assert_eq!(v["source"], "config file", "{v}");
    assert!(
        err.contains(&format!("VIRTUAL_ENV={}", gone.display())),
        "{err}"
    );
    // The human form says why too.
    let out = cli(dir.path())
        .env("VIRTUAL_ENV", &venv)
        .arg("print-configuration")
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(&format!(
            "chosen by:     the active venv (VIRTUAL_ENV={})",
            venv.display()
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn without_python3_on_path_the_newest_python3_n_is_taken() {
    let (Some(p311), Some(p312)) = (pyenv_python("3.11"), pyenv_python("3.12")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    // A python3 that answers but has no shared libpython: unusable.
    let prefix = dir.path().join("static");
    let exe = bin.join("python3");
    fake_python(&exe, &canned_facts(&exe, &prefix, &[]));
    std::os::unix::fs::symlink(&p311, bin.join("python3.11")).unwrap();
    std::os::unix::fs::symlink(&p312, bin.join("python3.12")).unwrap();
    let out = cli(dir.path())
        .env("PATH", &bin)
        .args(["print-configuration", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "PATH");
    assert_eq!(v["version"], pyenv_version("3.12").unwrap());
    let why = v["why"].as_str().unwrap();
    assert!(why.contains("no usable python3 on PATH"), "{why}");
    assert!(why.contains("newest usable python3.N"), "{why}");
    assert!(
        why.contains(&format!("passed over: {}", exe.display())),
        "{why}"
    );
}

#[test]
fn use_with_makes_reuses_and_records_an_environment() {
    let Some(python) = pyenv_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let envs = xdg.join("py4cl2-cffi/envs");
    let use_with = |list: &str| {
        cli(dir.path())
            .env("XDG_CACHE_HOME", &xdg)
            .env("PY4CL2_CFFI_INSTALLER", "pip")
            .args(["use", python.to_str().unwrap(), "--with", list])
            .output()
            .unwrap()
    };
    let out = use_with("six");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("making a Python environment for six"),
        "{}",
        stderr(&out)
    );
    let config = std::fs::read_to_string(config_of(dir.path())).unwrap();
    assert!(config.contains("requires = [\"six\"]"), "{config}");
    let table: toml::Table = config.parse().unwrap();
    let prefix = PathBuf::from(table["interpreter"]["prefix"].as_str().unwrap());
    assert!(prefix.starts_with(&envs), "{}", prefix.display());
    assert!(prefix.join("py4cl2-cffi-env.json").is_file());
    let import = std::process::Command::new(prefix.join("bin/python"))
        .args([
            "-c",
            "import six, sys; print(six.__file__.startswith(sys.prefix))",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&import.stdout).trim(), "True");

    let start = Instant::now();
    let out = use_with(" six ");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reusing the environment"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    let out = run(&mut cli(dir.path()), &["print-configuration"]);
    assert!(
        stdout(&out).contains("environment:   six (made with pip over"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("by `use ") && stdout(&out).contains("--with six`"),
        "{}",
        stdout(&out)
    );

    let before: Vec<_> = std::fs::read_dir(&envs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = use_with("six,py4cl2-cffi-no-such-package-zzz");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was kept"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("No matching distribution"),
        "{}",
        stderr(&out)
    );
    let after: Vec<_> = std::fs::read_dir(&envs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "{after:?}");
    assert_eq!(
        std::fs::read_to_string(config_of(dir.path())).unwrap(),
        config,
        "a failure writes nothing"
    );

    assert_bad_input(
        &run(&mut cli(dir.path()), &["use", "3.12", "--with", "-e ."]),
        "starts with `-`",
    );
    assert_bad_input(
        &run(&mut cli(dir.path()), &["use", "3.12", "--with"]),
        "`--with` needs a list",
    );
    assert_bad_input(
        &run(
            &mut cli(dir.path()),
            &["print-configuration", "--with", "six"],
        ),
        "unknown option `--with`",
    );
}

#[test]
fn check_starts_and_stops_the_interpreter_through_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let Some(python) = pyenv_python("3.12").or_else(|| pyenv_python("3.13")) else {
        eprintln!("SKIPPED: no pyenv 3.12 or 3.13 for `check`");
        return;
    };
    let out = run(&mut cli(dir.path()), &["check", python.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\nPython 3.1"), "{text}");
    assert!(text.contains("stopped: unloaded"), "{text}");
    let out = run(
        &mut cli(dir.path()),
        &["check", "--json", python.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop"], "unloaded", "{v}");
    assert!(v["version"].as_str().unwrap().starts_with("3.1"), "{v}");
    // Bad input: exit 2 with one line; too many arguments likewise.
    assert_bad_input(&run(&mut cli(dir.path()), &["check", "9.99"]), "9.99");
    assert_bad_input(
        &run(&mut cli(dir.path()), &["check", "3.12", "3.13"]),
        "at most one",
    );
}

#[test]
fn check_reports_an_interpreter_that_cannot_start() {
    // A fake interpreter whose libpython is not a library: the loader refuses it, exit 1.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("fake");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("lib")).unwrap();
    let lib = prefix.join("lib/libpython3.12.so.1.0");
    std::fs::write(&lib, b"not an ELF file").unwrap();
    let exe = prefix.join("bin/python3");
    fake_python(&exe, &canned_facts(&exe, &prefix, &[lib]));
    let out = run(&mut cli(dir.path()), &["check", exe.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("cannot open libpython"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}
