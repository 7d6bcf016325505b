//! A map whose entries sit densely in a vector, in insertion order, found
//! through an open-addressed index of hashes that the caller can compute
//! once and prefetch by.
//!
//! Like `IndexMap`, the index holds only entry positions and the entries'
//! vector grows at its end, so a small index and the used part of the
//! vector are all that is ever touched. Unlike it, where a key's slot lies
//! follows from its hash alone: on a busy node's capture thousands of
//! flows interleave and every lookup would miss the cache, so the flow
//! table hashes a packet's key a few packets ahead and prefetches the slot,
//! then the entry it names (`prefetch_slot`, `hint`, `prefetch_entry`).
//!
//! Iteration order is insertion order, and `swap_remove` moves the last
//! entry into the hole, as `IndexMap::swap_remove` does.

use foldhash::fast::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;

/// A slot is empty (0), or the low 32 bits of its key's hash above the
/// entry's position plus one. The hash's bits say where the key's probe
/// starts, so deleting can shift later slots back without rehashing.
type Slot = u64;

const EMPTY: Slot = 0;

/// The fewest slots an index has once it holds anything.
const MIN_SLOTS: usize = 8;

#[derive(Debug, Clone)]
pub struct DenseMap<K, V> {
    entries: Vec<(K, V)>,
    /// A power of two in length, at most half full (linear probing stays
    /// short), or empty before the first insert.
    slots: Vec<Slot>,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        DenseMap {
            entries: Vec::new(),
            slots: Vec::new(),
        }
    }
}

/// The hash a `DenseMap` files `key` by: foldhash, seeded at random once
/// per process. With a fixed hash such as FxHash, keys whose hashes are
/// equal are easy to compute, and a capture of such flows would turn each
/// probe into a walk over all of them (quadratic time). Nothing the maps
/// give out depends on the hash: their order is insertion order.
#[inline]
pub fn hash_of<K: Hash>(key: &K) -> u64 {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE.get_or_init(RandomState::default).hash_one(key)
}

#[inline]
fn slot(hash: u64, index: usize) -> Slot {
    (hash << 32) | (index as u64 + 1)
}

#[inline]
fn slot_hash(slot: Slot) -> u64 {
    slot >> 32
}

#[inline]
fn slot_index(slot: Slot) -> usize {
    (slot & u64::from(u32::MAX)) as usize - 1
}

impl<K, V> DenseMap<K, V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in insertion order (as moved by `swap_remove`).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn get_index(&self, index: usize) -> Option<(&K, &V)> {
        self.entries.get(index).map(|(k, v)| (k, v))
    }

    pub fn get_index_mut(&mut self, index: usize) -> Option<(&K, &mut V)> {
        self.entries.get_mut(index).map(|(k, v)| (&*k, v))
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Asks the processor to start loading the slot where a key of `hash`
    /// is probed first.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.slots.get(hash as usize & self.mask()) {
            crate::prefetch::line(slot);
        }
    }

    /// Asks the processor to start loading entry `index`, all its lines.
    #[inline]
    pub fn prefetch_entry(&self, index: usize) {
        if let Some(entry) = self.entries.get(index) {
            crate::prefetch::lines_of(entry);
        }
    }

    /// The position of the first entry whose hash looks like `hash`,
    /// without comparing keys: where the key probably is, to prefetch.
    #[inline]
    pub fn hint(&self, hash: u64) -> Option<usize> {
        self.probe(hash, |_| true).ok().map(|(_, index)| index)
    }

    /// Walks the probe of `hash` from its first slot: the first slot whose
    /// hash bits match and whose entry `is_match` accepts, as (slot,
    /// position); else the empty slot the probe ends at (0 while the index
    /// is not built).
    #[inline]
    fn probe(&self, hash: u64, is_match: impl Fn(usize) -> bool) -> Result<(usize, usize), usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let tag = hash & u64::from(u32::MAX);
        loop {
            crate::ops::step(1);
            let slot = self.slots[at];
            if slot == EMPTY {
                return Err(at);
            }
            if slot_hash(slot) == tag && is_match(slot_index(slot)) {
                return Ok((at, slot_index(slot)));
            }
            at = (at + 1) & mask;
        }
    }
}

/// What a key is looked up by: the key itself, or something that stands
/// for it (hashing as it does) and makes it only when it is inserted.
pub trait Query<K> {
    fn is(&self, key: &K) -> bool;
    fn into_key(self) -> K;
}

impl<K: Eq> Query<K> for K {
    #[inline]
    fn is(&self, key: &K) -> bool {
        self == key
    }

    fn into_key(self) -> K {
        self
    }
}

impl<K: Hash + Eq, V> DenseMap<K, V> {
    /// Where `key`, whose hash is `hash`, sits: (its slot, its position);
    /// else the empty slot where it would go.
    #[inline]
    fn find_slot(&self, hash: u64, key: &K) -> Result<(usize, usize), usize> {
        self.probe(hash, |index| self.entries[index].0 == *key)
    }

    /// The position of `key`, whose hash is `hash`.
    #[inline]
    pub fn find(&self, hash: u64, key: &K) -> Option<usize> {
        self.find_slot(hash, key).ok().map(|(_, index)| index)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let index = self.find(hash_of(key), key)?;
        Some(&self.entries[index].1)
    }

    /// The position of the key `query` stands for (whose hash is `hash`),
    /// inserted with `first()` at the end if it is not there, and whether
    /// it was.
    #[inline]
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        query: impl Query<K>,
        first: impl FnOnce() -> V,
    ) -> (usize, bool) {
        match self.probe(hash, |index| query.is(&self.entries[index].0)) {
            Ok((_, index)) => (index, false),
            Err(at) => (self.insert_at(at, hash, query.into_key(), first()), true),
        }
    }

    /// Adds `value` under `key`, or folds it into the value already there
    /// with `combine`.
    pub fn insert_or_combine(&mut self, key: K, value: V, combine: impl FnOnce(&mut V, V)) {
        let hash = hash_of(&key);
        match self.find_slot(hash, &key) {
            Ok((_, index)) => combine(&mut self.entries[index].1, value),
            Err(at) => {
                self.insert_at(at, hash, key, value);
            }
        }
    }

    /// The value of `key`, inserted with `first()` if it is not there.
    pub fn get_or_insert_with(&mut self, key: K, first: impl FnOnce() -> V) -> &mut V {
        let (index, _) = self.find_or_insert(hash_of(&key), key, first);
        &mut self.entries[index].1
    }

    /// Adds `key` at the end, its slot being `at` (empty, where its probe
    /// ended), and returns its position.
    fn insert_at(&mut self, at: usize, hash: u64, key: K, value: V) -> usize {
        let index = self.entries.len();
        assert!(
            index < (u32::MAX / 2) as usize,
            "a partition holds < 2^31 entries (its index at most 2^32 slots)"
        );
        self.entries.push((key, value));
        let at = if (index + 1) * 2 > self.slots.len() {
            self.grow();
            self.vacant(hash)
        } else {
            at
        };
        self.slots[at] = slot(hash, index);
        index
    }

    /// Doubles the index and files its slots again, by the hash bits each
    /// slot keeps: the entries themselves (hundreds of bytes apart) are
    /// not read, nor their keys hashed again. An index has at most 2^32
    /// slots, so those low 32 bits of a hash say where its probe starts.
    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        for filed in old.into_iter().filter(|&s| s != EMPTY) {
            let at = self.vacant(slot_hash(filed));
            self.slots[at] = filed;
        }
    }

    /// The empty slot where the probe of `hash` ends, for a key not in the
    /// map (keys are distinct, so no slot is taken for it).
    fn vacant(&self, hash: u64) -> usize {
        match self.probe(hash, |_| false) {
            Ok(_) => unreachable!("a probe that accepts no entry ends at an empty slot"),
            Err(at) => at,
        }
    }

    /// Removes `key` and returns its value; the last entry takes its place.
    pub fn swap_remove(&mut self, key: &K) -> Option<V> {
        let (at, index) = self.find_slot(hash_of(key), key).ok()?;
        self.clear_slot(at);
        let last = self.entries.len() - 1;
        if index != last {
            let hash = hash_of(&self.entries[last].0);
            let (moved, _) =
                (self.find_slot(hash, &self.entries[last].0)).expect("every entry has a slot");
            self.slots[moved] = slot(hash, index);
        }
        Some(self.entries.swap_remove(index).1)
    }

    /// Empties slot `at`, shifting back the slots after it whose probes
    /// would otherwise stop at the hole (linear probing's deletion).
    fn clear_slot(&mut self, mut at: usize) {
        let mask = self.mask();
        let mut next = at;
        loop {
            next = (next + 1) & mask;
            let slot = self.slots[next];
            if slot == EMPTY {
                break;
            }
            let home = slot_hash(slot) as usize & mask;
            // The slot may move to the hole if its probe passes the hole:
            // its home is not in (at, next], cyclically.
            let passes = if at <= next {
                home <= at || home > next
            } else {
                home <= at && home > next
            };
            if passes {
                self.slots[at] = slot;
                at = next;
            }
        }
        self.slots[at] = EMPTY;
    }
}

impl<K, V> std::ops::Index<usize> for DenseMap<K, V> {
    type Output = V;
    fn index(&self, index: usize) -> &V {
        &self.entries[index].1
    }
}

impl<K, V> std::ops::IndexMut<usize> for DenseMap<K, V> {
    fn index_mut(&mut self, index: usize) -> &mut V {
        &mut self.entries[index].1
    }
}

impl<K, V> IntoIterator for DenseMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a DenseMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use std::hash::Hasher;

    /// A key whose hash is chosen, to make long probes and wrap-arounds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Colliding(u32);

    impl Hash for Colliding {
        fn hash<H: Hasher>(&self, state: &mut H) {
            (self.0 % 5).hash(state);
        }
    }

    /// Inserts and removals in a pseudo-random order leave the same
    /// entries, in the same order, as `IndexMap` with `swap_remove`, and
    /// every key is found where it is.
    fn matches_indexmap<K: Hash + Eq + Copy + std::fmt::Debug>(key: impl Fn(u32) -> K) {
        let mut ours: DenseMap<K, u32> = DenseMap::default();
        let mut theirs: IndexMap<K, u32> = IndexMap::new();
        let mut state = 12345u32;
        for step in 0..20_000u32 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let k = key(state % 700);
            if state.is_multiple_of(3) {
                assert_eq!(ours.swap_remove(&k), theirs.swap_remove(&k), "{step}");
            } else {
                let (index, inserted) = ours.find_or_insert(hash_of(&k), k, || step);
                *theirs.entry(k).or_insert(step) += 0;
                assert_eq!(Some(index), theirs.get_index_of(&k));
                assert_eq!(inserted, theirs[&k] == step);
            }
            assert_eq!(ours.len(), theirs.len());
        }
        let listed: Vec<(K, u32)> = ours.iter().map(|(k, v)| (*k, *v)).collect();
        let expected: Vec<(K, u32)> = theirs.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(listed, expected);
        for (index, (k, _)) in theirs.iter().enumerate() {
            assert_eq!(ours.find(hash_of(k), k), Some(index));
            assert!(ours.hint(hash_of(k)).is_some());
        }
        assert_eq!(ours.get(&key(100_000)), None);
    }

    #[test]
    fn keeps_the_order_and_positions_of_an_indexmap() {
        matches_indexmap(|n| n);
    }

    /// With five hash values for 700 keys, probes run long and wrap
    /// around the index, and deleting must shift them back correctly.
    #[test]
    fn colliding_hashes_probe_and_delete_correctly() {
        matches_indexmap(Colliding);
    }

    #[test]
    fn a_hint_names_the_entry_of_a_distinct_hash() {
        let mut map = DenseMap::default();
        for n in 0..1000u64 {
            map.get_or_insert_with(n, || n * 2);
        }
        for n in 0..1000u64 {
            let index = map.hint(hash_of(&n)).expect("present");
            assert_eq!(map[index], n * 2);
            map.prefetch_entry(index);
            map.prefetch_slot(hash_of(&n));
        }
        assert_eq!(DenseMap::<u64, u64>::default().hint(7), None);
    }

    /// Flow keys whose FxHash values are all equal (computed the way an
    /// attacker would: for each pair of ports, the addresses that cancel
    /// them out) are filed in linear time: probes stay short.
    #[test]
    fn keys_crafted_to_collide_under_fxhash_cost_linear_time() {
        use crate::flow::{Endpoint, FlowKey};
        use std::net::{IpAddr, Ipv4Addr};
        const K: u64 = 0xf1357aea2e62a9c5;
        // K is odd, so it has an inverse modulo 2^64 (Newton's iteration).
        let mut inverse: u64 = 1;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inverse)));
        }
        assert_eq!(K.wrapping_mul(inverse), 1);
        let keys: Vec<FlowKey> = (0..20_000u64)
            .map(|n| {
                let (lo_port, hi_port) = (1024 + n % 40_000, 80 + n / 40_000);
                let ports = lo_port << 32 | hi_port << 16 | 6;
                // FlowKey's hash writes the addresses, then the ports: under
                // FxHash equal whenever addresses * K + ports is.
                let addresses = 12345u64.wrapping_sub(ports).wrapping_mul(inverse);
                let endpoint = |bits: u64, port: u64| Endpoint {
                    addr: IpAddr::V4(Ipv4Addr::from_bits(bits as u32)),
                    port: port as u16,
                };
                FlowKey {
                    protocol: 6,
                    lo: endpoint(addresses >> 32, lo_port),
                    hi: endpoint(addresses, hi_port),
                }
            })
            .collect();
        let fx = |key: &FlowKey| {
            let mut hasher = rustc_hash::FxHasher::default();
            key.hash(&mut hasher);
            hasher.finish()
        };
        assert!(
            keys.iter().all(|k| fx(k) == fx(&keys[0])),
            "the keys collide"
        );
        crate::ops::take();
        let mut map = DenseMap::default();
        for (n, key) in keys.iter().enumerate() {
            map.find_or_insert(hash_of(key), *key, || n);
        }
        let steps = crate::ops::take();
        assert_eq!(map.len(), keys.len());
        assert!(steps < 4 * keys.len() as u64, "{steps} probes");
    }
}
