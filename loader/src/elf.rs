//! Just enough ELF reading to predict which extension modules glibc will never unload.
//!
//! glibc marks an object NODELETE when it defines `STB_GNU_UNIQUE` symbols, and C++ objects
//! bind to such symbols in libstdc++; an extension module of that kind keeps itself and
//! libpython mapped (docs/internals.md, "Stop: soft or hard"). Knowing it *before* unloading matters: if
//! libpython is going to stay, unloading the other extension modules would leave libpython's
//! static type state (CPython < 3.11) pointing into unmapped code. Only little-endian ELF64
//! files are read (x86_64, aarch64); anything else answers `None`.

use std::path::Path;

const STB_GNU_UNIQUE: u8 = 10;
const SHT_DYNSYM: u32 = 11;
const SHT_DYNAMIC: u32 = 6;
const DT_NEEDED: u64 = 1;

/// What an ELF file says about its unloadability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pinning {
    /// It defines `STB_GNU_UNIQUE` symbols.
    pub unique_symbols: bool,
    /// It needs libstdc++ (and so binds to libstdc++'s unique symbols).
    pub needs_libstdcxx: bool,
}

impl Pinning {
    /// Whether glibc will keep the object (and what it bound to) mapped for good.
    pub fn pins(&self) -> bool {
        self.unique_symbols || self.needs_libstdcxx
    }
}

/// Reads the pinning facts of the ELF64 file at `path`. Results are remembered per file (its
/// size and modification time), so that repeated stops do not read large libraries again.
pub fn pinning(path: &Path) -> Option<Pinning> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    static SEEN: Mutex<Option<HashMap<Key, Option<Pinning>>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).ok()?;
    let key: Key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(known) = SEEN
        .lock()
        .ok()
        .and_then(|g| g.as_ref().and_then(|m| m.get(&key).copied()))
    {
        return known;
    }
    let found = std::fs::read(path).ok().and_then(|data| scan(&data));
    if let Ok(mut g) = SEEN.lock() {
        g.get_or_insert_with(HashMap::new).insert(key, found);
    }
    found
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(d: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(o..o + 8)?.try_into().ok()?))
}
fn usize_at(d: &[u8], o: usize) -> Option<usize> {
    usize::try_from(u64_at(d, o)?).ok()
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    entsize: usize,
}

fn sections(d: &[u8]) -> Option<Vec<Section>> {
    if d.get(0..4)? != b"\x7fELF" || *d.get(4)? != 2 || *d.get(5)? != 1 {
        return None;
    }
    let shoff = usize_at(d, 0x28)?;
    let shentsize = usize::from(u16_at(d, 0x3a)?);
    let shnum = usize::from(u16_at(d, 0x3c)?);
    (0..shnum)
        .map(|i| {
            let sh = shoff.checked_add(i.checked_mul(shentsize)?)?;
            Some(Section {
                kind: u32_at(d, sh + 4)?,
                offset: usize_at(d, sh + 0x18)?,
                size: usize_at(d, sh + 0x20)?,
                link: u32_at(d, sh + 0x28)? as usize,
                entsize: usize_at(d, sh + 0x38)?,
            })
        })
        .collect()
}

fn scan(d: &[u8]) -> Option<Pinning> {
    let secs = sections(d)?;
    let mut p = Pinning::default();
    for s in &secs {
        if s.entsize == 0 {
            continue;
        }
        let count = s.size / s.entsize;
        if s.kind == SHT_DYNSYM {
            p.unique_symbols |= (0..count).any(|k| {
                d.get(s.offset + k * s.entsize + 4)
                    .is_some_and(|i| i >> 4 == STB_GNU_UNIQUE)
            });
        } else if s.kind == SHT_DYNAMIC {
            let strtab = secs.get(s.link)?;
            for k in 0..count {
                let e = s.offset + k * s.entsize;
                if u64_at(d, e)? == DT_NEEDED {
                    let at = strtab.offset + usize_at(d, e + 8)?;
                    let name = d.get(at..)?.split(|b| *b == 0).next()?;
                    p.needs_libstdcxx |= name.starts_with(b"libstdc++");
                }
            }
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_none() {
        assert_eq!(scan(b"#!/bin/sh\n"), None);
    }

    fn first_existing(paths: &[&str]) -> Option<&'static Path> {
        paths
            .iter()
            .map(|p| Path::new(*p))
            .find(|p| p.exists())
            .map(|p| Box::leak(p.to_path_buf().into_boxed_path()) as &Path)
    }

    #[test]
    fn libc_does_not_pin_libstdcxx_does() {
        let libc = crate::maps::mapped_files()
            .into_iter()
            .find(|p| p.to_string_lossy().contains("libc.so"))
            .expect("libc is mapped");
        assert_eq!(pinning(&libc), Some(Pinning::default()));
        let Some(cxx) = first_existing(&[
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        ]) else {
            eprintln!("SKIPPED: no libstdc++.so.6 here for the positive case");
            return;
        };
        let p = pinning(cxx).unwrap();
        assert!(p.unique_symbols, "libstdc++ defines STB_GNU_UNIQUE symbols");
    }

    #[test]
    fn a_cxx_consumer_needs_libstdcxx() {
        // The DT_NEEDED reader against readelf's, on C++ consumers where the system has them
        // (gdb and ICU on Debian 12; binutils' c++filt is plain C on Debian sid).
        let Some(readelf) = first_existing(&["/usr/bin/readelf"]) else {
            eprintln!("SKIPPED: no readelf to check DT_NEEDED reading against");
            return;
        };
        let mut positive = 0;
        for exe in [
            "/usr/bin/gdb",
            "/usr/bin/c++filt",
            "/usr/lib/x86_64-linux-gnu/libicuuc.so.72",
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/bin/sbcl",
        ]
        .iter()
        .map(Path::new)
        .filter(|p| p.exists())
        {
            let out = std::process::Command::new(readelf)
                .args(["-d", "-W"])
                .arg(exe)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let needs = text
                .lines()
                .any(|l| l.contains("(NEEDED)") && l.contains("[libstdc++"));
            assert_eq!(
                pinning(exe).unwrap().needs_libstdcxx,
                needs,
                "{}",
                exe.display()
            );
            positive += usize::from(needs);
        }
        if positive == 0 {
            eprintln!("SKIPPED: no C++ consumer found here for the positive case");
        }
    }
}
