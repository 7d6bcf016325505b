//! Eviction of the entries idle longest, for `--max-flows`.

use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// The keys of the `count` entries that rank lowest (their last activity,
/// or what the caller ranks by; ties by key, so the choice is
/// deterministic). Linear: a selection, not a sort.
pub fn idlest<T: Copy + Ord, K: Copy + Ord>(
    entries: impl Iterator<Item = (T, K)>,
    count: usize,
) -> Vec<K> {
    if count == 0 {
        return Vec::new();
    }
    let mut idle: Vec<(T, K)> = entries.collect();
    idle.select_nth_unstable(count - 1);
    idle.truncate(count);
    idle.into_iter().map(|(_, key)| key).collect()
}

/// Removes the entries of `map` idle longest (by `last`) until `keep`
/// remain; returns them.
pub fn evict_idle<K: Copy + Ord + Hash, V>(
    map: &mut FxHashMap<K, V>,
    keep: usize,
    last: impl Fn(&V) -> Timestamp,
) -> Vec<(K, V)> {
    let count = map.len().saturating_sub(keep);
    let victims = idlest(map.iter().map(|(k, v)| (last(v), *k)), count);
    victims
        .into_iter()
        .filter_map(|key| Some((key, map.remove(&key)?)))
        .collect()
}
