//! Reading files that must be regular files (the config file, the facts cache, an environment's
//! manifest) without ever blocking: a FIFO, a device or a socket there is refused at once.

use std::io::Read;
use std::path::Path;

/// What a path is, when it is not a regular file (`a FIFO`, `a directory`, ...).
#[cfg(unix)]
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Why [`read_regular`] failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The path exists but is not a regular file; the text says what it is (`a FIFO ...`).
    NotRegular(&'static str),
    /// Opening or reading failed.
    Io(std::io::Error),
}

/// The text of the regular file at `path` (symlinks followed); `Ok(None)` when nothing is
/// there. The file is opened without blocking (a FIFO would otherwise wait for a writer
/// forever) and checked on the open descriptor, so it cannot be swapped in between.
pub(crate) fn read_regular(path: &Path) -> Result<Option<String>, ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // Opening a folder for reading fails on some systems: say what it is.
            return Err(match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => ReadError::NotRegular(kind_of(&meta)),
                _ => ReadError::Io(e),
            });
        }
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(ReadError::Io)?;
    Ok(Some(text))
}

/// `Some(what it is)` when something other than a regular file is at `path` (symlinks
/// followed); `None` when it is a regular file or nothing is there.
pub(crate) fn not_regular(path: &Path) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Some(kind_of(&meta)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let start = std::time::Instant::now();
        match read_regular(&fifo) {
            Err(ReadError::NotRegular(what)) => assert!(what.contains("FIFO"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed().as_secs() < 2);
        assert_eq!(not_regular(&fifo), Some("a FIFO (named pipe)"));
        match read_regular(dir.path()) {
            Err(ReadError::NotRegular(what)) => assert_eq!(what, "a directory"),
            other => panic!("{other:?}"),
        }
        assert!(read_regular(&dir.path().join("none")).unwrap().is_none());
        let file = dir.path().join("f");
        std::fs::write(&file, "x = 1\n").unwrap();
        assert_eq!(read_regular(&file).unwrap().as_deref(), Some("x = 1\n"));
        assert_eq!(not_regular(&file), None);
    }
}
