//! The facts cache: what each interpreter answered, keyed by the path it was run by and
//! stamped with its real file's identity, so an unchanged interpreter is not run again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::query::{Raw, SCRIPT};

/// Bumped when the layout of the cache file changes.
const FORMAT: u32 = 1;

/// What must be unchanged for a cached answer to hold.
///
/// The key is the path as run, not the canonical one: a venv's `bin/python` is a symlink to
/// its base interpreter but answers differently, so the venv's `pyvenv.cfg` is stamped too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    canonical: PathBuf,
    mtime: (u64, u32),
    size: u64,
    pyvenv_cfg: Option<(u64, u32)>,
}

fn mtime_of(meta: &std::fs::Metadata) -> Option<(u64, u32)> {
    let d = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((d.as_secs(), d.subsec_nanos()))
}

/// The `pyvenv.cfg` that makes `exe` a venv interpreter: beside it or one folder up, as
/// CPython's own start-up looks for it (without resolving symlinks).
pub(crate) fn pyvenv_cfg_of(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("pyvenv.cfg"))
        .find(|p| p.is_file())
}

impl Stamp {
    /// The stamp of `exe` now, or `None` when it does not exist or is a script: a script
    /// (a pyenv shim, a wrapper) may run a different interpreter each time, so its answer is
    /// never cached.
    pub(crate) fn of(exe: &Path) -> Option<Stamp> {
        let canonical = std::fs::canonicalize(exe).ok()?;
        let meta = std::fs::metadata(&canonical).ok()?;
        let mut head = [0u8; 2];
        let n = std::fs::File::open(&canonical)
            .and_then(|mut f| f.read(&mut head))
            .ok()?;
        if &head[..n] == b"#!" {
            return None;
        }
        let pyvenv_cfg = pyvenv_cfg_of(exe)
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| mtime_of(&m));
        Some(Stamp {
            canonical,
            mtime: mtime_of(&meta)?,
            size: meta.len(),
            pyvenv_cfg,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    raw: Raw,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    /// Answers of another script version are not reused.
    script: String,
    entries: BTreeMap<PathBuf, Entry>,
}

/// FNV-1a of the embedded script and the crate version.
fn script_id() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in SCRIPT.bytes().chain(env!("CARGO_PKG_VERSION").bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The facts cache, loaded once; [`Cache::save`] writes it back atomically if it changed.
#[derive(Debug)]
pub(crate) struct Cache {
    path: Option<PathBuf>,
    file: CacheFile,
    dirty: bool,
}

impl Cache {
    /// A cache that remembers nothing and writes nothing.
    pub(crate) fn disabled() -> Cache {
        Cache {
            path: None,
            file: CacheFile::default(),
            dirty: false,
        }
    }

    /// Load the cache at `path`; a missing, unreadable or outdated file, or anything but a
    /// regular file (never waited on), is an empty cache.
    pub(crate) fn load(path: Option<PathBuf>) -> Cache {
        let want = script_id();
        let file = path
            .as_deref()
            .and_then(|p| crate::files::read_regular(p).ok().flatten())
            .and_then(|text| serde_json::from_str::<CacheFile>(&text).ok())
            .filter(|f| f.format == FORMAT && f.script == want)
            .unwrap_or(CacheFile {
                format: FORMAT,
                script: want,
                entries: BTreeMap::new(),
            });
        Cache {
            path,
            file,
            dirty: false,
        }
    }

    /// The cached answer of `exe` if its stamp is still `stamp`.
    pub(crate) fn get(&self, exe: &Path, stamp: &Stamp) -> Option<Raw> {
        self.file
            .entries
            .get(exe)
            .filter(|e| &e.stamp == stamp)
            .map(|e| e.raw.clone())
    }

    /// Remember the answer of `exe`, stamped before it was run.
    pub(crate) fn put(&mut self, exe: &Path, stamp: Stamp, raw: Raw) {
        if self.path.is_some() {
            self.file
                .entries
                .insert(exe.to_path_buf(), Entry { stamp, raw });
            self.dirty = true;
        }
    }

    /// Write the cache back if it changed (atomically: a temporary file renamed over it),
    /// dropping interpreters that no longer exist.
    pub(crate) fn save(&mut self) -> std::io::Result<()> {
        let Some(path) = self.path.as_deref() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        self.file.entries.retain(|exe, _| exe.exists());
        let json = serde_json::to_vec(&self.file).map_err(std::io::Error::other)?;
        write_atomically(path, &json)?;
        self.dirty = false;
        Ok(())
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder renamed over it, so a
/// reader sees the old or the new content, never a mix. Creates the folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".py4cl2-cffi-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Emulated;

    fn raw() -> Raw {
        Raw {
            version_info: (3, 12, 1, "final".into(), 0),
            version_string: "3.12.1".into(),
            implementation: "cpython".into(),
            executable: "/x/bin/python".into(),
            prefix: "/x".into(),
            base_prefix: "/x".into(),
            abiflags: String::new(),
            platform: "linux".into(),
            problems: vec![],
            sh: Some(Emulated {
                ldflags: String::new(),
                includes: String::new(),
            }),
            py: None,
            py_enable_shared: Some(true),
            mapped_libpython: None,
            libpython_candidates: vec![],
            site_packages: vec![],
            gil_disabled: false,
            multiarch: String::new(),
            platlibdir: String::new(),
            externally_managed: false,
        }
    }

    #[test]
    fn round_trip_and_stamp_change() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("python");
        std::fs::write(&exe, b"one").unwrap();
        let script = dir.path().join("wrapper");
        std::fs::write(&script, b"#!/bin/sh\nexec python3 \"$@\"\n").unwrap();
        assert_eq!(Stamp::of(&script), None, "scripts are never cached");
        let file = dir.path().join("cache").join("facts.json");

        let mut cache = Cache::load(Some(file.clone()));
        let stamp = Stamp::of(&exe).unwrap();
        assert!(cache.get(&exe, &stamp).is_none());
        cache.put(&exe, stamp.clone(), raw());
        cache.save().unwrap();

        let cache = Cache::load(Some(file.clone()));
        assert_eq!(cache.get(&exe, &stamp), Some(raw()));

        std::fs::write(&exe, b"longer").unwrap();
        let changed = Stamp::of(&exe).unwrap();
        assert_ne!(changed, stamp);
        assert!(cache.get(&exe, &changed).is_none());

        // A venv made beside it changes the stamp too.
        std::fs::write(dir.path().join("pyvenv.cfg"), b"home = /x\n").unwrap();
        assert_ne!(Stamp::of(&exe).unwrap(), changed);
    }

    #[test]
    fn garbage_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("facts.json");
        std::fs::write(&file, b"{not json").unwrap();
        let cache = Cache::load(Some(file));
        assert!(cache.file.entries.is_empty());
    }
}
