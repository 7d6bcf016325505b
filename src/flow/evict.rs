//! Eviction of the entries idle longest, for `--max-flows`.

use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// Removes the entries of `map` whose `last` activity is oldest (ties by
/// key, so the choice is deterministic) until `keep` remain; returns how
/// many went. Linear: a selection, not a sort.
pub fn evict_idle<K: Copy + Ord + Hash, V>(
    map: &mut FxHashMap<K, V>,
    keep: usize,
    last: impl Fn(&V) -> Timestamp,
) -> u64 {
    if map.len() <= keep {
        return 0;
    }
    let mut idle: Vec<(Timestamp, K)> = map.iter().map(|(k, v)| (last(v), *k)).collect();
    let evict = map.len() - keep;
    idle.select_nth_unstable(evict - 1);
    for (_, key) in &idle[..evict] {
        map.remove(key);
    }
    evict as u64
}
