//! pymalloc's arenas, allocated by us so that a stop can give back what finalisation leaks.
//!
//! `Py_FinalizeEx` does not free every pymalloc arena (256 KiB–1 MiB `mmap`s); once libpython
//! is unmapped, nothing refers to them and each start/stop cycle would leak megabytes. Before
//! initialisation we install an arena allocator (`PyObject_SetArenaAllocator`, public API since
//! 3.4) that records each arena; after a stop that really unmapped libpython, the arenas still
//! recorded are unmapped too. When libpython stays mapped (pinned) they are kept, because the
//! pinned allocator's static state still points at them.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// `PyObjectArenaAllocator` (objimpl.h / cpython/objimpl.h; same layout in 3.8–3.13).
#[repr(C)]
pub struct PyObjectArenaAllocator {
    /// Passed back to the functions.
    pub ctx: *mut c_void,
    /// Allocates an arena of `size` bytes.
    pub alloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    /// Frees an arena.
    pub free: unsafe extern "C" fn(*mut c_void, *mut c_void, usize),
}

static LIVE: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

unsafe extern "C" fn arena_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    if let Ok(mut g) = LIVE.lock() {
        g.get_or_insert_with(HashMap::new).insert(p as usize, size);
    }
    p
}

unsafe extern "C" fn arena_free(_ctx: *mut c_void, p: *mut c_void, size: usize) {
    if p.is_null() {
        return;
    }
    if let Ok(mut g) = LIVE.lock() {
        if let Some(m) = g.as_mut() {
            m.remove(&(p as usize));
        }
    }
    // SAFETY: pymalloc frees only arenas it got from `arena_alloc`, with their size.
    unsafe { libc::munmap(p, size) };
}

/// The allocator to hand to `PyObject_SetArenaAllocator` (lives for the whole process).
pub static mut ALLOCATOR: PyObjectArenaAllocator = PyObjectArenaAllocator {
    ctx: std::ptr::null_mut(),
    alloc: arena_alloc,
    free: arena_free,
};

/// Forgets every recorded arena and unmaps it; returns how many bytes were given back.
///
/// # Safety
/// Only after a stop verified that the libpython which used them is unmapped: nothing may
/// refer to these arenas any more.
pub unsafe fn release_all() -> usize {
    let taken = LIVE
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .unwrap_or_default();
    let mut bytes = 0;
    for (p, size) in taken {
        // SAFETY: each entry is a live mapping made by `arena_alloc` (caller's contract).
        unsafe { libc::munmap(p as *mut c_void, size) };
        bytes += size;
    }
    bytes
}

/// Forgets the recorded arenas without unmapping them (a pinned libpython keeps using them).
pub fn forget_all() {
    if let Ok(mut g) = LIVE.lock() {
        g.take();
    }
}
