//! The memory-read floor: the least any analysis of a capture can cost is
//! mapping it and reading every byte once. Benchmarks and
//! `bench/compare.sh` time kpcap against it (`kpcap floor FILE`).

use rayon::prelude::*;

/// Sums `bytes` as little-endian u64 words (and the tail bytes), in
/// parallel on the current rayon pool, 1 MiB per task.
pub fn sum_words(bytes: &[u8]) -> u64 {
    const TASK: usize = 1 << 20;
    bytes
        .par_chunks(TASK)
        .map(|task| {
            let mut words = task.chunks_exact(8);
            let sum = words
                .by_ref()
                .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
                .fold(0u64, u64::wrapping_add);
            words
                .remainder()
                .iter()
                .fold(sum, |s, b| s.wrapping_add(u64::from(*b)))
        })
        .reduce(|| 0, u64::wrapping_add)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_words_and_the_tail() {
        let bytes: Vec<u8> = (0..20u8).collect();
        let words = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7])
            .wrapping_add(u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]));
        assert_eq!(super::sum_words(&bytes), words + 16 + 17 + 18 + 19);
    }
}
