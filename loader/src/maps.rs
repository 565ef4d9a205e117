//! What files the process has mapped: `/proc/self/maps` on Linux, dyld's image list on macOS.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The set of files currently mapped into this process.
///
/// On Linux this reads `/proc/self/maps` and keeps every mapping backed by a real file
/// (pseudo-entries such as `[heap]` and deleted files are skipped). On other systems it
/// returns an empty set and unload verification reports nothing.
pub fn mapped_files() -> BTreeSet<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        linux::mapped_files()
    }
    #[cfg(target_os = "macos")]
    {
        crate::macos::loaded_images()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        BTreeSet::new()
    }
}

/// The address ranges at which `path` is mapped in this process (Linux; empty elsewhere).
pub fn ranges_of(path: &std::path::Path) -> Vec<std::ops::Range<usize>> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        linux::ranges(&text, path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Vec::new()
    }
}

/// Whether `path` looks like a shared object (`.so`, `.so.N…`, `.dylib`, or a framework binary).
pub fn is_shared_object(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".so")
        || name.contains(".so.")
        || name.ends_with(".dylib")
        || path.to_string_lossy().contains(".framework/")
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    pub(super) fn mapped_files() -> BTreeSet<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        parse(&text)
    }

    /// Parses the text of a `/proc/<pid>/maps` file into the set of backing files.
    pub(super) fn parse(text: &str) -> BTreeSet<PathBuf> {
        text.lines()
            .filter_map(|line| {
                // address perms offset dev inode pathname (pathname may contain spaces)
                let mut rest = line;
                for _ in 0..5 {
                    let (_, tail) = rest.trim_start().split_once(char::is_whitespace)?;
                    rest = tail;
                }
                let path = rest.trim();
                if path.starts_with('/') && !path.ends_with(" (deleted)") {
                    Some(PathBuf::from(path))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The address ranges of the mappings of `path` in a maps text.
    pub(super) fn ranges(text: &str, path: &std::path::Path) -> Vec<std::ops::Range<usize>> {
        let want = path.to_string_lossy();
        text.lines()
            .filter(|l| l.trim_end().ends_with(want.as_ref()))
            .filter_map(|l| {
                let (lo, hi) = l.split_whitespace().next()?.split_once('-')?;
                Some(usize::from_str_radix(lo, 16).ok()?..usize::from_str_radix(hi, 16).ok()?)
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ranges_of_a_path() {
            let text = "7f00-7f10 r--p 0 fe:01 1 /lib/a.so\n7f10-7f20 r-xp 0 fe:01 1 /lib/a.so\n7f20-7f30 r--p 0 fe:01 2 /lib/b.so\n";
            let r = ranges(text, std::path::Path::new("/lib/a.so"));
            assert_eq!(r, vec![0x7f00..0x7f10, 0x7f10..0x7f20]);
        }

        #[test]
        fn parses_file_backed_mappings_only() {
            let text = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1234   /usr/bin/cat
7f0000000000-7f0000001000 rw-p 00000000 00:00 0      [heap]
7f0000002000-7f0000003000 r-xp 00001000 fe:01 99     /opt/my libs/libx.so.1
7f0000004000-7f0000005000 r--p 00000000 fe:01 98     /tmp/gone.so (deleted)
7f0000006000-7f0000007000 rw-p 00000000 00:00 0
";
            let set = parse(text);
            let want: BTreeSet<PathBuf> = ["/usr/bin/cat", "/opt/my libs/libx.so.1"]
                .iter()
                .map(PathBuf::from)
                .collect();
            assert_eq!(set, want);
        }

        #[test]
        fn sees_libc_in_this_process() {
            let set = mapped_files();
            assert!(
                set.iter().any(|p| p.to_string_lossy().contains("libc.so")),
                "libc not among {set:?}"
            );
        }
    }
}

/// Paths that are mapped now but were not in `before`.
pub fn new_since(before: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    mapped_files().difference(before).cloned().collect()
}

/// Those of `candidates` that are still mapped.
pub fn still_mapped(candidates: &[PathBuf]) -> Vec<PathBuf> {
    let now = mapped_files();
    candidates
        .iter()
        .filter(|p| now.contains(*p))
        .cloned()
        .collect()
}
