//! Masking floating-point traps while Python runs.
//!
//! Lisp implementations (SBCL) run with overflow, invalid and divide-by-zero traps enabled;
//! numpy relies on IEEE semantics and produces inf/NaN freely. Every entry into Python saves
//! the control register, masks all traps, and restores the saved value (which also drops the
//! sticky flags Python raised) on the way out. On x86-64 that is both MXCSR (SSE) and the x87
//! control word: SBCL unmasks x87 traps too, and numpy's long-double code (e.g. at import on
//! numpy 1.24) runs on the x87 unit.
//!
//! Only the parts that change are written: loading a *different* x87 control word costs about
//! 75 ns on the AMD EPYC machine this was measured on (a different MXCSR about 15 ns, the same
//! value 1–2 ns), which made the x87 round trip the largest single cost of a call from SBCL.
//! A Lisp that does no x87 arithmetic (SBCL on x86-64: every float is SSE, and it reads only
//! MXCSR) says so with [`p4s_set_fp_policy`]; its x87 control word is then masked once and
//! left masked (the x87 sticky flags are still cleared on every way out, so that a later
//! unmasking by the Lisp cannot fault). ECL keeps the exact restore: its long-floats are x87.
//!
//! May depend on: nothing but lib's constants.

use std::sync::atomic::{AtomicBool, Ordering};

/// The saved floating-point control state of the caller.
#[derive(Clone, Copy, Debug)]
pub struct FpState(u64);

/// Set by [`p4s_set_fp_policy`]: the caller's x87 control word is left masked on the way out.
static X87_STAYS_MASKED: AtomicBool = AtomicBool::new(false);

/// `p4s_set_fp_policy` flag: this Lisp does no x87 arithmetic, so its x87 traps may stay
/// masked once Python has been entered (SBCL on x86-64).
pub const P4S_FP_X87_STAYS_MASKED: i32 = 1;

export! {
    /// Tells the shim how the calling Lisp uses the floating-point unit. `flags` is 0 (restore
    /// the whole control state after every call, the default) or
    /// [`P4S_FP_X87_STAYS_MASKED`]. Needs no running Python. Returns 0.
    ///
    /// Owns: nothing.
    /// GIL: not needed (a process-wide setting).
    /// Fails: never: returns 0.
    fn p4s_set_fp_policy(flags: i32) -> i32, on_panic = crate::P4S_ERROR, {
        X87_STAYS_MASKED.store(flags & P4S_FP_X87_STAYS_MASKED != 0, Ordering::Relaxed);
        crate::P4S_OK
    }
}

/// Saves the current control state and masks every floating-point trap.
#[inline(always)]
pub fn mask_traps() -> FpState {
    let saved = read();
    write_changed(saved, masked(saved));
    FpState(saved)
}

/// Restores a state saved by [`mask_traps`], dropping the x87 sticky flags raised meanwhile
/// (the x87 control word stays masked under [`P4S_FP_X87_STAYS_MASKED`]).
#[inline(always)]
pub fn restore(state: FpState) {
    restore_with(state, X87_STAYS_MASKED.load(Ordering::Relaxed));
}

#[inline(always)]
fn restore_with(state: FpState, x87_stays_masked: bool) {
    clear_x87_flags();
    // Written without reading first: Python code may have changed the registers, and reading
    // MXCSR costs as much as loading an unchanged value.
    if x87_stays_masked {
        write_sse(state.0);
    } else {
        write_changed(!state.0, state.0);
    }
}

/// Masks every trap again (after a Lisp callback ran with the Lisp state).
#[inline(always)]
pub fn remask() {
    let now = read();
    write_changed(now, masked(now));
}

// x86-64 state word: MXCSR in the low 32 bits, the x87 control word in bits 32..48.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masked(v: u64) -> u64 {
    // MXCSR bits 7..12 are the exception masks (IM DM ZM OM UM PM); bits 0..5 the sticky flags.
    let mxcsr = (v as u32 | 0x1f80) & !0x3f;
    // x87 control word bits 0..5 are the same six masks.
    let fcw = ((v >> 32) as u16) | 0x3f;
    u64::from(mxcsr) | (u64::from(fcw) << 32)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read() -> u64 {
    let mut mxcsr: u32 = 0;
    let mut fcw: u16 = 0;
    // SAFETY: stmxcsr and fnstcw store into valid, aligned locals and change no state.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack, preserves_flags));
        std::arch::asm!("fnstcw [{}]", in(reg) &mut fcw, options(nostack, preserves_flags));
    }
    u64::from(mxcsr) | (u64::from(fcw) << 32)
}

/// Writes the state `v`, given the current state `now`: each register only if it differs.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn write_changed(now: u64, v: u64) {
    let mxcsr = v as u32;
    let fcw = (v >> 32) as u16;
    // SAFETY: both values were read from the registers and only their mask and flag bits were
    // changed, so reserved bits stay as the CPU had them.
    unsafe {
        if mxcsr != now as u32 {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, preserves_flags));
        }
        if fcw != (now >> 32) as u16 {
            std::arch::asm!("fldcw [{}]", in(reg) &fcw, options(nostack, preserves_flags));
        }
    }
}

/// Writes the MXCSR part of `v` (the x87 control word is left as it is).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn write_sse(v: u64) {
    let mxcsr = v as u32;
    // SAFETY: the value was read from MXCSR and only its mask and flag bits were changed.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, preserves_flags)) };
}

/// Writes the state `v` unconditionally (tests).
#[cfg(all(test, target_arch = "x86_64"))]
fn write(v: u64) {
    write_changed(!v, v);
}

/// Clears the x87 exception flags if any is set. Code that ran with traps masked (numpy's
/// long-double casts, for one) leaves them set; with the caller's unmasked control word back,
/// the next waiting x87 instruction (the fldcw of the next entry) would then fault. MXCSR needs
/// nothing: restoring it replaces its flags, and SSE flags never fault later. The status word
/// is read first (fnstsw, about 5 ns a call) because fnclex alone costs twice that.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn clear_x87_flags() {
    let status: u16;
    // SAFETY: fnstsw only reads the status word (it does not wait for pending exceptions).
    unsafe {
        std::arch::asm!("fnstsw ax", out("ax") status, options(nomem, nostack, preserves_flags))
    };
    if status & 0x3f != 0 {
        // SAFETY: fnclex only clears the exception flags (it does not wait either).
        unsafe { std::arch::asm!("fnclex", options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn masked(v: u64) -> u64 {
    // FPCR bits 8..12 (IOE DZE OFE UFE IXE) and 15 (IDE) enable traps: clear them.
    v & !((0x1f << 8) | (1 << 15))
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn read() -> u64 {
    let v: u64;
    // SAFETY: reading FPCR has no side effects.
    unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack)) };
    v
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn write_sse(v: u64) {
    write_changed(!v, v);
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn write_changed(now: u64, v: u64) {
    if now != v {
        // SAFETY: writing FPCR with a value derived from its current value only changes trap
        // enables, which is what we mean to do.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack)) };
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn clear_x87_flags() {}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn masked(v: u64) -> u64 {
    v
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn read() -> u64 {
    0
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn write_changed(_: u64, _: u64) {}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn write_sse(_: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn masks_and_restores() {
        let orig = read();
        // Unmask divide-by-zero in SSE and x87 as SBCL does, then check mask/restore.
        write(orig & !0x200 & !(0x4u64 << 32));
        let s = mask_traps();
        assert_eq!(read() & 0x1f80, 0x1f80);
        assert_eq!((read() >> 32) & 0x3f, 0x3f, "x87 masks set");
        let x = std::hint::black_box(1.0f64) / std::hint::black_box(0.0f64);
        assert!(x.is_infinite());
        restore(s);
        assert_eq!(read() & 0x200, 0);
        assert_eq!((read() >> 32) & 0x4, 0, "x87 divide-by-zero unmasked again");
        write(orig);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x87_may_stay_masked_while_mxcsr_is_restored() {
        let orig = read();
        // SBCL's state: invalid, divide-by-zero and overflow unmasked in both units.
        let lisp = orig & !(0x680 | (0xdu64 << 32));
        write(lisp);
        let s = mask_traps();
        assert_eq!((read() >> 32) & 0x3f, 0x3f, "x87 masks set");
        restore_with(s, true);
        assert_eq!(
            read() as u32 & 0x1f80,
            lisp as u32 & 0x1f80,
            "MXCSR traps back"
        );
        assert_eq!((read() >> 32) & 0x3f, 0x3f, "x87 left masked");
        // The next entry finds the x87 already masked; the exact restore brings it back.
        let s2 = mask_traps();
        restore_with(s2, false);
        assert_eq!((read() >> 32) & 0x3f, 0x3f);
        restore_with(s, false);
        assert_eq!(read() >> 32 & 0xffff, lisp >> 32 & 0xffff, "exact restore");
        write(orig);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x87_flags_raised_while_masked_do_not_fault_later() {
        let orig = read();
        // Unmask x87 invalid-operation, as SBCL does; then raise it while masked (sqrt(-1)).
        write(orig & !(0x1u64 << 32));
        let s = mask_traps();
        // SAFETY: pushes 1, negates it, takes its square root (a masked invalid operation
        // giving NaN) and pops it again: the x87 stack is left as it was.
        unsafe { std::arch::asm!("fld1", "fchs", "fsqrt", "fstp st(0)", options(nostack)) };
        restore(s);
        let s = mask_traps(); // the next entry: fldcw waits, and used to fault here (SIGFPE)
        restore(s);
        // SAFETY: waits for pending unmasked x87 exceptions; there must be none.
        unsafe { std::arch::asm!("fwait", options(nostack)) };
        write(orig);
    }
}
