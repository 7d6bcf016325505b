//! How far the capture being read has got, for a progress line: the
//! furthest byte of its input consumed (of the file as stored: compressed
//! bytes for a compressed file, the archive's bytes for a member), and the
//! records read so far.
//!
//! Counters for the process, written where input is consumed and read by
//! whoever draws progress (the binary, on a terminal). Relaxed atomics: a
//! progress line needs no ordering, and the walk pays one add a chunk.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

static POSITION: AtomicU64 = AtomicU64::new(0);
static RECORDS: AtomicU64 = AtomicU64::new(0);

/// A new capture is about to be read: back to 0.
pub fn restart() {
    POSITION.store(0, Ordering::Relaxed);
    RECORDS.store(0, Ordering::Relaxed);
}

/// `n` more records were read.
pub fn read_records(n: u64) {
    RECORDS.fetch_add(n, Ordering::Relaxed);
}

/// Records read of the current capture.
pub fn records() -> u64 {
    RECORDS.load(Ordering::Relaxed)
}

/// The records read since `records()` was `earlier` are read again (a
/// walk that found a wrong guess is redone): back to `earlier`.
pub fn rewind_records(earlier: u64) {
    RECORDS.store(earlier, Ordering::Relaxed);
}

/// The input has been consumed up to byte `at`.
pub fn reached(at: u64) {
    POSITION.fetch_max(at, Ordering::Relaxed);
}

/// How far the current input has been consumed.
pub fn position() -> u64 {
    POSITION.load(Ordering::Relaxed)
}

/// A reader that reports how much of it was read.
pub struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> Self {
        Counted { inner, read: 0 }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        reached(self.read);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_advances_the_position() {
        // Other tests read captures too: only growth is checked.
        let mut reader = Counted::new(&[7u8; 10_000_000][..]);
        let mut buf = vec![0; 1 << 16];
        let mut total = 0;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 10_000_000);
        assert!(position() >= 10_000_000 || position() > 0);
    }
}
