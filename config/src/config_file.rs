//! The TOML configuration file: a schema version, the chosen interpreter's facts and the
//! list discovered when it was chosen. Reading never modifies it; writing is atomic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::write_atomically;
use crate::files::{not_regular, read_regular, ReadError};
use crate::{Error, Facts, Interpreter, Kind};

/// The schema version this crate writes and reads.
pub const SCHEMA: u32 = 1;

/// The keys of [`Facts`] as written in the `[interpreter]` table (checked by a test).
const FACT_KEYS: &[&str] = &[
    "version",
    "version_string",
    "implementation",
    "executable",
    "prefix",
    "base_prefix",
    "libpython",
    "ldflags",
    "includes",
    "site_packages",
    "abiflags",
];
/// Keys of [`Facts`] added later: read when present, their defaults when a file written by an
/// earlier build lacks them.
const OPTIONAL_FACT_KEYS: &[&str] = &[
    "free_threaded",
    "externally_managed",
    "multiarch",
    "platlibdir",
    "config_script",
];
const TOP_KEYS: &[&str] = &["schema", "spec", "requires", "interpreter", "discovered"];
const LISTED_KEYS: &[&str] = &[
    "kind",
    "path",
    "usable",
    "reason",
    "version",
    "executable",
    "libpython",
];

/// The chosen interpreter: its kind and every fact (the `[interpreter]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chosen {
    /// What kind of installation it belongs to.
    pub kind: Kind,
    /// What it said about itself; `libpython` is always present here.
    #[serde(flatten)]
    pub facts: Facts,
}

/// One entry of the discovered list (a `[[discovered]]` table): a summary, not every fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// What kind of installation it belongs to.
    pub kind: Kind,
    /// The path it was found by.
    pub path: PathBuf,
    /// Whether the loader can start it.
    pub usable: bool,
    /// Why it cannot be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its version, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<semver::Version>,
    /// `sys.executable`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<PathBuf>,
    /// Its shared libpython, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libpython: Option<PathBuf>,
}

impl From<&Interpreter> for Listed {
    fn from(i: &Interpreter) -> Listed {
        Listed {
            kind: i.kind,
            path: i.path.clone(),
            usable: i.is_usable(),
            reason: i.problem.clone(),
            version: i.version().cloned(),
            executable: i.facts.as_ref().map(|f| f.executable.clone()),
            libpython: i.facts.as_ref().and_then(|f| f.libpython.clone()),
        }
    }
}

/// The file as serialized.
#[derive(Serialize, Deserialize)]
struct File {
    schema: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    requires: Vec<String>,
    interpreter: Chosen,
    #[serde(default)]
    discovered: Vec<Listed>,
}

/// The contents of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The SPEC the interpreter was chosen with.
    pub spec: Option<String>,
    /// The requirements (`use SPEC --with ...`) whose environment is the chosen interpreter.
    pub requires: Vec<String>,
    /// The chosen interpreter.
    pub interpreter: Chosen,
    /// Every interpreter found when it was chosen.
    pub discovered: Vec<Listed>,
    /// Keys of the file this version does not know (not written back).
    pub warnings: Vec<String>,
}

/// `message` on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Config {
    /// A configuration choosing the interpreter of `kind` with `facts`, found among
    /// `discovered`, as `spec` asked.
    pub fn new(
        spec: Option<String>,
        kind: Kind,
        facts: Facts,
        discovered: &[Interpreter],
    ) -> Config {
        Config {
            spec,
            requires: Vec::new(),
            interpreter: Chosen { kind, facts },
            discovered: discovered.iter().map(Listed::from).collect(),
            warnings: Vec::new(),
        }
    }

    /// Read the file at `path`; `Ok(None)` when there is none. Unknown keys become
    /// [`Config::warnings`]; a missing required key, a bad value or bad TOML is an error, and
    /// so is anything but a regular file there (a FIFO is refused at once, never waited on).
    pub fn load(path: &Path) -> Result<Option<Config>, Error> {
        let text = match read_regular(path) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(ReadError::NotRegular(what)) => {
                return Err(Error::ConfigNotAFile {
                    path: path.to_path_buf(),
                    what,
                })
            }
            Err(ReadError::Io(source)) => {
                return Err(Error::ReadConfig {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(&text, path).map(Some)
    }

    /// Parse the text of a configuration file read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            Error::ConfigSyntax {
                path: path.to_path_buf(),
                line,
                message: one_line(e.message()),
            }
        })?;
        let missing = |key: &str| Error::ConfigMissingKey {
            path: path.to_path_buf(),
            key: key.to_string(),
        };
        let invalid = |message: String| Error::ConfigInvalid {
            path: path.to_path_buf(),
            message,
        };
        match table.get("schema") {
            None => return Err(missing("schema")),
            Some(toml::Value::Integer(n)) if *n == i64::from(SCHEMA) => {}
            Some(other) => {
                return Err(Error::ConfigSchema {
                    path: path.to_path_buf(),
                    found: other.to_string(),
                    expected: SCHEMA,
                })
            }
        }
        let mut warnings = Vec::new();
        let mut unknown = |key: String| warnings.push(format!("unknown key `{key}` ignored"));
        for key in table.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
            unknown(key.clone());
        }
        let interpreter = match table.get("interpreter") {
            None => return Err(missing("interpreter")),
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(invalid("`interpreter` must be a table".into())),
        };
        for key in std::iter::once(&"kind").chain(FACT_KEYS) {
            if !interpreter.contains_key(*key) {
                return Err(missing(&format!("interpreter.{key}")));
            }
        }
        for key in interpreter.keys() {
            if key != "kind"
                && !FACT_KEYS.contains(&key.as_str())
                && !OPTIONAL_FACT_KEYS.contains(&key.as_str())
            {
                unknown(format!("interpreter.{key}"));
            }
        }
        if let Some(toml::Value::Array(list)) = table.get("discovered") {
            for (i, entry) in list.iter().enumerate() {
                if let toml::Value::Table(t) = entry {
                    for key in t.keys().filter(|k| !LISTED_KEYS.contains(&k.as_str())) {
                        unknown(format!("discovered[{i}].{key}"));
                    }
                }
            }
        }
        let file: File = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(one_line(&e.to_string())))?;
        Ok(Config {
            spec: file.spec,
            requires: file.requires,
            interpreter: file.interpreter,
            discovered: file.discovered,
            warnings,
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let file = File {
            schema: SCHEMA,
            spec: self.spec.clone(),
            requires: self.requires.clone(),
            interpreter: self.interpreter.clone(),
            discovered: self.discovered.clone(),
        };
        let body = toml::to_string(&file).unwrap_or_else(|e| format!("# cannot serialize: {e}\n"));
        format!(
            "# The Python interpreter py4cl2-cffi uses; written by `py4cl2-cffi-config use SPEC`.\n\
             # Run that command again rather than editing the facts below.\n\n{body}"
        )
    }

    /// Write the file at `path` atomically (a temporary file renamed over it), creating its
    /// folder. Refuses to replace anything but a regular file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        if let Some(what) = not_regular(path) {
            return Err(Error::ConfigNotAFile {
                path: path.to_path_buf(),
                what,
            });
        }
        write_atomically(path, self.to_toml().as_bytes()).map_err(|source| Error::WriteConfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Check that the chosen executable and libpython still exist (`path` is the file they
    /// were read from, named in the error).
    pub fn check(&self, path: &Path) -> Result<(), Error> {
        let facts = &self.interpreter.facts;
        if facts.free_threaded {
            // Recorded by hand or by an older build: refuse it as `use` would.
            return Err(Error::Unusable {
                path: facts.executable.clone(),
                version: facts.version.to_string(),
                reason: crate::query::FREE_THREADED.to_string(),
            });
        }
        if !facts.executable.exists() {
            return Err(Error::ExecutableMissing {
                executable: facts.executable.clone(),
                config: path.to_path_buf(),
            });
        }
        match &facts.libpython {
            Some(lib) if lib.is_file() => Ok(()),
            Some(lib) => Err(Error::LibpythonMissing {
                libpython: lib.clone(),
                config: path.to_path_buf(),
            }),
            None => Err(Error::ConfigMissingKey {
                path: path.to_path_buf(),
                key: "interpreter.libpython".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(lib: &Path) -> Facts {
        Facts {
            version: semver::Version::new(3, 12, 1),
            version_string: "3.12.1 (main) [GCC]".into(),
            implementation: "cpython".into(),
            executable: "/p/bin/python".into(),
            prefix: "/p".into(),
            base_prefix: "/p".into(),
            libpython: Some(lib.to_path_buf()),
            ldflags: "-L/p/lib -lpython3.12".into(),
            includes: "-I/p/include/python3.12 -I/p/include/python3.12".into(),
            site_packages: vec!["/p/lib/python3.12/site-packages".into()],
            abiflags: String::new(),
            free_threaded: false,
            externally_managed: false,
            multiarch: String::new(),
            platlibdir: "lib".into(),
            config_script: None,
        }
    }

    fn config(lib: &Path) -> Config {
        let i = Interpreter {
            kind: Kind::Pyenv,
            path: "/p/bin/python".into(),
            facts: Some(facts(lib)),
            problem: None,
        };
        let old = Interpreter {
            kind: Kind::System,
            path: "/usr/bin/python2.7".into(),
            facts: None,
            problem: Some("older than 3.8".into()),
        };
        Config::new(Some("3.12".into()), i.kind, facts(lib), &[i.clone(), old])
    }

    #[test]
    fn fact_keys_match_facts() {
        let mut f = facts(Path::new("/l"));
        f.config_script = Some("/p/bin/python3.12-config".into());
        let value = toml::Value::try_from(f).unwrap();
        let mut keys: Vec<&str> = value
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = FACT_KEYS.to_vec();
        want.extend(OPTIONAL_FACT_KEYS);
        keys.sort();
        want.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let c = config(Path::new("/l/libpython3.12.so.1.0"));
        c.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("schema = 1"), "{text}");
        assert_eq!(Config::load(&path).unwrap(), Some(c));
        assert_eq!(Config::load(&dir.path().join("none.toml")).unwrap(), None);
    }

    #[test]
    fn bad_files() {
        let p = Path::new("/c.toml");
        let good = config(Path::new("/l")).to_toml();

        let e = Config::parse("schema = 1\n[interpreter\n", p).unwrap_err();
        assert!(matches!(e, Error::ConfigSyntax { line: 2, .. }), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");

        let e = Config::parse(&good.replace("schema = 1", "schema = 2"), p).unwrap_err();
        assert!(matches!(e, Error::ConfigSchema { .. }), "{e}");

        let e = Config::parse(&good.replace("schema = 1", ""), p).unwrap_err();
        assert_eq!(e.to_string(), "config file /c.toml lacks the required key `schema`; run `py4cl2-cffi-config use SPEC` to rewrite it");

        let no_lib: String = good
            .lines()
            .filter(|l| !l.starts_with("libpython = \"/l\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = Config::parse(&no_lib, p).unwrap_err();
        assert!(
            matches!(&e, Error::ConfigMissingKey { key, .. } if key == "interpreter.libpython"),
            "{e}"
        );

        let e = Config::parse(&good.replace("version = \"3.12.1\"", "version = 3"), p).unwrap_err();
        assert!(matches!(e, Error::ConfigInvalid { .. }), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");

        let extra = good
            .replace("schema = 1", "schema = 1\nfuture = true")
            .replace("[interpreter]", "[interpreter]\ncolour = \"blue\"");
        let c = Config::parse(&extra, p).unwrap();
        assert_eq!(
            c.warnings,
            [
                "unknown key `future` ignored",
                "unknown key `interpreter.colour` ignored"
            ]
        );
    }

    #[test]
    fn check_finds_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libpython3.12.so.1.0");
        let mut c = config(&lib);
        c.interpreter.facts.executable = std::env::current_exe().unwrap();
        let e = c.check(Path::new("/c.toml")).unwrap_err();
        assert!(matches!(e, Error::LibpythonMissing { .. }), "{e}");
        std::fs::write(&lib, b"").unwrap();
        c.check(Path::new("/c.toml")).unwrap();
    }
}
