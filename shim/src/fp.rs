//! Masking floating-point traps while Python runs.
//!
//! Lisp implementations (SBCL) run with overflow, invalid and divide-by-zero traps enabled;
//! numpy relies on IEEE semantics and produces inf/NaN freely. Every entry into Python saves
//! the control register, masks all traps, and restores the saved value (which also drops the
//! sticky flags Python raised) on the way out.

/// The saved floating-point control state of the caller.
#[derive(Clone, Copy, Debug)]
pub struct FpState(u64);

/// Saves the current control state and masks every floating-point trap.
#[inline(always)]
pub fn mask_traps() -> FpState {
    let saved = read();
    write(masked(saved));
    FpState(saved)
}

/// Restores a state saved by [`mask_traps`].
#[inline(always)]
pub fn restore(state: FpState) {
    write(state.0);
}

/// Masks every trap again (after a Lisp callback ran with the Lisp state).
#[inline(always)]
pub fn remask() {
    write(masked(read()));
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masked(v: u64) -> u64 {
    // MXCSR bits 7..12 are the exception masks (IM DM ZM OM UM PM); bits 0..5 the sticky flags.
    (v | 0x1f80) & !0x3f
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read() -> u64 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit MXCSR into a valid, aligned local.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    u64::from(v)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn write(v: u64) {
    let v = v as u32;
    // SAFETY: ldmxcsr loads a value whose reserved bits are zero (we only change mask and flag
    // bits of a value read from MXCSR).
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags)) };
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
fn write(v: u64) {
    // SAFETY: writing FPCR with a value derived from its current value only changes trap
    // enables, which is what we mean to do.
    unsafe { std::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack)) };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn masked(v: u64) -> u64 {
    v
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn read() -> u64 {
    0
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn write(_: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn masks_and_restores() {
        let orig = read();
        // Unmask divide-by-zero as SBCL does, then check mask/restore round-trips.
        write(orig & !0x200);
        let s = mask_traps();
        assert_eq!(read() & 0x1f80, 0x1f80);
        let x = std::hint::black_box(1.0f64) / std::hint::black_box(0.0f64);
        assert!(x.is_infinite());
        restore(s);
        assert_eq!(read() & 0x200, 0);
        write(orig);
    }
}
