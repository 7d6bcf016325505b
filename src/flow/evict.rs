//! Eviction of the entries idle longest, for `--max-flows`.

use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// The keys of the `count` entries whose last activity is oldest (ties by
/// key, so the choice is deterministic). Linear: a selection, not a sort.
pub fn idlest<K: Copy + Ord>(
    entries: impl Iterator<Item = (Timestamp, K)>,
    count: usize,
) -> Vec<K> {
    if count == 0 {
        return Vec::new();
    }
    let mut idle: Vec<(Timestamp, K)> = entries.collect();
    idle.select_nth_unstable(count - 1);
    idle.truncate(count);
    idle.into_iter().map(|(_, key)| key).collect()
}

/// Removes the entries of `map` idle longest (by `last`) until `keep`
/// remain; returns how many went.
pub fn evict_idle<K: Copy + Ord + Hash, V>(
    map: &mut FxHashMap<K, V>,
    keep: usize,
    last: impl Fn(&V) -> Timestamp,
) -> u64 {
    let count = map.len().saturating_sub(keep);
    let victims = idlest(map.iter().map(|(k, v)| (last(v), *k)), count);
    for key in &victims {
        map.remove(key);
    }
    count as u64
}
