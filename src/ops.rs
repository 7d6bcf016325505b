//! Step counts for tests: the inner loops that could turn quadratic on a
//! crafted capture (a resynchronisation's search, a flow's interfaces, a
//! DNS key's messages, a TCP stream's reassembly, the SYN judge) count
//! their steps, so a test can check that twice the input costs about twice
//! the steps (`synth::hostile` tests). Counted per thread; nothing is
//! counted outside tests.

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` steps of work on this thread (tests only).
#[inline(always)]
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn step(n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + n as u64));
}

/// The steps counted on this thread since the last call.
#[cfg(test)]
pub(crate) fn take() -> u64 {
    STEPS.with(|s| s.replace(0))
}
