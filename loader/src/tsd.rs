//! Forgetting thread-specific-data keys whose destructors live in a library about to go.
//!
//! A library can register a `pthread_key_create` destructor and never delete the key: CPython
//! 3.13's bundled mimalloc does (`mi_pthread_done`). Once libpython is unmapped, every thread
//! that holds a value for that key would jump into unmapped memory when it exits. Before
//! unloading, we delete each key whose destructor points into the address ranges being
//! unloaded; deleting a key never runs destructors, and the values left behind are a few bytes.
//!
//! glibc keeps the keys in `__pthread_keys`, an array whose shape it publishes for debuggers in
//! `_thread_db___pthread_keys` (`{element bits, element count, offset}`). We read the array only
//! when that description matches `{seq: uintptr_t, destr: fn}` × `PTHREAD_KEYS_MAX`; otherwise
//! nothing is done and the caller keeps the library mapped.

use std::ops::Range;

/// Whether this C library's key table can be read, so that [`delete_keys_with_destructors_in`]
/// will work. A stop checks this before deciding to unload anything (it fails closed).
pub fn can_inspect() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::can_inspect()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Deletes the keys whose destructor lies in one of `ranges`. Returns how many were deleted, or
/// `None` if this C library's key table cannot be read safely (then nothing was done).
pub fn delete_keys_with_destructors_in(ranges: &[Range<usize>]) -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::delete_keys(ranges)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = ranges;
        None
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ops::Range;

    #[repr(C)]
    struct KeyEntry {
        seq: usize,
        destr: usize,
    }

    /// glibc's key table, when its published description matches the layout we read.
    fn table() -> Option<&'static [KeyEntry]> {
        // SAFETY: dlsym with RTLD_DEFAULT only looks symbols up.
        let (keys, desc) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"__pthread_keys".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db___pthread_keys".as_ptr()),
            )
        };
        if keys.is_null() || desc.is_null() {
            return None;
        }
        // SAFETY: glibc defines `_thread_db___pthread_keys` as `const uint32_t[3]`.
        let d = unsafe { std::slice::from_raw_parts(desc as *const u32, 3) };
        let entry_bits = (std::mem::size_of::<KeyEntry>() * 8) as u32;
        // SAFETY: plain query of a POSIX limit.
        let max = unsafe { libc::sysconf(libc::_SC_THREAD_KEYS_MAX) };
        if d[0] != entry_bits || i64::from(d[1]) != max as i64 || d[2] != 0 || max <= 0 {
            return None;
        }
        // SAFETY: the descriptor confirms `__pthread_keys` is `max` entries of this layout, a
        // static array of glibc that lives as long as the process. We only read; concurrent
        // key creation in another thread could race, which at worst makes us miss or see a
        // just-created key.
        Some(unsafe { std::slice::from_raw_parts(keys as *const KeyEntry, max as usize) })
    }

    pub(super) fn can_inspect() -> bool {
        table().is_some()
    }

    pub(super) fn delete_keys(ranges: &[Range<usize>]) -> Option<usize> {
        let table = table()?;
        let mut deleted = 0;
        for (k, e) in table.iter().enumerate() {
            let in_use = e.seq & 1 == 1;
            if in_use && e.destr != 0 && ranges.iter().any(|r| r.contains(&e.destr)) {
                // SAFETY: the key is in use and owned by a library that is being unloaded;
                // deleting it runs no destructor and only frees the slot.
                if unsafe { libc::pthread_key_delete(k as libc::pthread_key_t) } == 0 {
                    deleted += 1;
                }
            }
        }
        Some(deleted)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::{AtomicUsize, Ordering};

        static CALLS: AtomicUsize = AtomicUsize::new(0);
        extern "C" fn destructor(_: *mut libc::c_void) {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }

        #[test]
        fn deletes_only_keys_in_range() {
            let mut k1: libc::pthread_key_t = 0;
            // SAFETY: creating a key with our own destructor.
            let rc = unsafe { libc::pthread_key_create(&mut k1, Some(destructor)) };
            assert_eq!(rc, 0);
            let addr = destructor as extern "C" fn(*mut libc::c_void) as usize;
            // A range that does not contain it: nothing deleted, thread exit runs it.
            assert_eq!(delete_keys(&[0..16, 32..48]), Some(0));
            let h = std::thread::spawn(move || {
                // SAFETY: setting a non-null value for our key.
                unsafe { libc::pthread_setspecific(k1, std::ptr::dangling::<libc::c_void>()) };
            });
            h.join().unwrap();
            assert_eq!(CALLS.load(Ordering::SeqCst), 1);
            // The range containing it: deleted, thread exit no longer runs it.
            assert_eq!(delete_keys(&[addr..addr + 1, 0..16]), Some(1));
            let h = std::thread::spawn(move || {
                // SAFETY: setting a value for a deleted key is harmless (EINVAL or ignored).
                unsafe { libc::pthread_setspecific(k1, std::ptr::dangling::<libc::c_void>()) };
            });
            h.join().unwrap();
            assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        }
    }
}
