//! Telling CPython 3.14+ where a thread's C stack really is, for Lisps that run on stacks of their own.
//!
//! From 3.14, CPython guards against C stack overflow by comparing the machine stack pointer
//! with bounds it computes once per thread state from `pthread_getattr_np`. SBCL runs its main
//! thread on a control stack it maps itself, so there the stack pointer lies outside those
//! bounds. CPython then believes the stack is exhausted at every deallocation and defers each
//! one to its "trash" list, which is emptied only by a deallocation with enough stack margin —
//! never, on that thread: no object dropped there was ever freed (the 3.14/3.15 failures of
//! FINALIZERS-RELEASE-OBJECTS, the lent-array check, the callback leak tests). Python exports
//! `PyUnstable_ThreadState_SetStackProtection` (3.14.1+, 3.15) to give it the real bounds;
//! [`fit_stack_protection`] calls it, once per thread state, when the stack pointer is not
//! where pthread says the stack is. Before 3.14 CPython counted C recursion instead and never
//! looked at addresses, so nothing is needed (the symbol is absent).

use crate::api::Api;
use crate::ffi_types::PyThreadState;
use std::ops::Range;

/// What [`fit_stack_protection`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackFit {
    /// This Python has no address-based stack protection (before 3.14): nothing to do.
    NotNeeded,
    /// The stack pointer lies inside the thread's pthread stack: CPython's own bounds are right.
    Native,
    /// The thread runs on another stack; CPython was given this address range.
    Set(Range<usize>),
    /// The stack pointer's stack could not be found (not Linux, or no readable memory map),
    /// or CPython refused the range: deallocations on this thread may be deferred.
    Unknown,
}

/// An address inside the current stack frame (the machine stack pointer, give or take a frame).
#[inline(never)]
pub fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The calling thread's stack as its pthread attributes describe it (`[low, high)`).
pub fn pthread_stack() -> Option<Range<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `attr` is initialised by pthread_getattr_np before it is read, and destroyed
        // once; the out-pointers are valid locals.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                return None;
            }
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
            libc::pthread_attr_destroy(&mut attr);
            ok.then(|| addr as usize..addr as usize + size)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The memory mapping (one line of a `/proc/<pid>/maps` text) that contains `addr`.
pub fn mapping_containing(maps: &str, addr: usize) -> Option<Range<usize>> {
    maps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        let (lo, hi) = range.split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        (lo <= addr && addr < hi).then_some(lo..hi)
    })
}

/// The stack range to give CPython for a thread whose stack pointer is `sp`: `None` when the
/// pthread stack `native` already holds it, else the mapping of `maps` that contains it.
pub fn foreign_stack(sp: usize, native: Option<Range<usize>>, maps: &str) -> Option<Range<usize>> {
    if native.is_some_and(|r| r.contains(&sp)) {
        return None;
    }
    mapping_containing(maps, sp)
}

/// Makes CPython's stack bounds for `tstate` match the stack the calling thread runs on.
///
/// # Safety
/// The GIL must be held by the calling thread and `tstate` must be its own, live thread state
/// of the interpreter that resolved `api`.
pub unsafe fn fit_stack_protection(api: &Api, tstate: *mut PyThreadState) -> StackFit {
    let Some(set) = api.PyUnstable_ThreadState_SetStackProtection else {
        return StackFit::NotNeeded;
    };
    if tstate.is_null() {
        return StackFit::Unknown;
    }
    let sp = stack_pointer();
    let native = pthread_stack();
    if native.as_ref().is_some_and(|r| r.contains(&sp)) {
        return StackFit::Native;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some(range) = foreign_stack(sp, native, &maps) else {
        return StackFit::Unknown;
    };
    // SAFETY: GIL held and `tstate` is this thread's state (caller's contract); the range is the
    // readable-writable mapping the thread's stack pointer is in.
    let status = unsafe {
        set(
            tstate,
            range.start as *mut libc::c_void,
            range.end - range.start,
        )
    };
    if status != 0 {
        // SAFETY: GIL held; the refusal (a ValueError for a too-small stack) is not for the user.
        unsafe { (api.PyErr_Clear)() };
        return StackFit::Unknown;
    }
    StackFit::Set(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d4c0000000-55d4c0021000 r-xp 00000000 fd:00 123 /usr/bin/sbcl
7f0000000000-7f0000001000 ---p 00000000 00:00 0
7f0000001000-7f0000200000 rw-p 00000000 00:00 0
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
";

    #[test]
    fn finds_the_mapping_of_an_address() {
        assert_eq!(
            mapping_containing(MAPS, 0x7f0000100000),
            Some(0x7f0000001000..0x7f0000200000)
        );
        assert_eq!(
            mapping_containing(MAPS, 0x7f0000200000),
            None,
            "end is exclusive"
        );
        assert_eq!(mapping_containing(MAPS, 0x10), None);
        assert_eq!(mapping_containing("garbage\n-\nzz-yy rw-p", 0x10), None);
    }

    #[test]
    fn a_stack_pointer_on_the_pthread_stack_needs_nothing() {
        let native = Some(0x7ffc00000000..0x7ffc00021000);
        assert_eq!(foreign_stack(0x7ffc00010000, native.clone(), MAPS), None);
        // A Lisp control stack elsewhere (SBCL's main thread): its own mapping.
        assert_eq!(
            foreign_stack(0x7f0000150000, native, MAPS),
            Some(0x7f0000001000..0x7f0000200000)
        );
        // Unknown pthread bounds: the mapping is still found.
        assert_eq!(
            foreign_stack(0x7ffc00010000, None, MAPS),
            Some(0x7ffc00000000..0x7ffc00021000)
        );
    }

    #[test]
    fn this_threads_stack_pointer_is_on_its_pthread_stack() {
        // Rust test threads run on stacks pthread knows about.
        if let Some(r) = pthread_stack() {
            assert!(
                r.contains(&stack_pointer()),
                "{r:x?} vs {:x}",
                stack_pointer()
            );
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        if !maps.is_empty() {
            assert!(mapping_containing(&maps, stack_pointer()).is_some());
        }
    }
}
