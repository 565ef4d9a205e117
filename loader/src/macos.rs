//! macOS: the images dyld has loaded, for verifying what a stop unloaded.
//!
//! dyld has no `/proc/self/maps`; `_dyld_image_count` and `_dyld_get_image_name` list the
//! loaded images instead. The loader's thread-specific-data check is glibc-only, so on macOS a
//! stop keeps libpython mapped and later starts are limited to the same interpreter: the same
//! refusal policy as a pinned Linux process, never an unsafe unload.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::path::PathBuf;

/// Every image dyld has loaded in this process.
pub fn loaded_images() -> BTreeSet<PathBuf> {
    // SAFETY: dyld's image list functions may be called at any time; names are NUL-terminated
    // strings owned by dyld, copied before returning.
    unsafe {
        (0..libc::_dyld_image_count())
            .filter_map(|i| {
                let p = libc::_dyld_get_image_name(i);
                (!p.is_null())
                    .then(|| PathBuf::from(CStr::from_ptr(p).to_string_lossy().into_owned()))
            })
            .collect()
    }
}
