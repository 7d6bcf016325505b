//! Software prefetch: asking the processor to start loading a cache line
//! that will be needed soon, where its own prefetchers cannot guess which
//! (the records of a file whose headers say where the next one is, hash
//! table slots, the tails of many lists written in turn).

/// Cache line size of the processors kpcap runs on.
pub const LINE: usize = 64;

/// Starts loading the cache line holding `address` into the first-level
/// cache. Only a hint: it never faults, whatever the address, and does
/// nothing where the processor has no such instruction.
#[inline(always)]
pub fn line<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no visible effect and never faults.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Starts loading every cache line of `value`.
#[inline(always)]
pub fn lines_of<T>(value: &T) {
    lines_at(value as *const T);
}

/// Starts loading every cache line of the `T` at `address`, which may be
/// a slot not written yet.
#[inline(always)]
pub fn lines_at<T>(address: *const T) {
    let start = address.cast::<u8>();
    // From the start of the line holding the first byte to the last byte.
    let lead = start as usize % LINE;
    for offset in (0..lead + std::mem::size_of::<T>()).step_by(LINE) {
        line(start.wrapping_sub(lead).wrapping_add(offset));
    }
}
