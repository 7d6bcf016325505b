//! Flows and address pairs by key, split into partitions by the hash of
//! the key's two addresses (in either order), so a conversation's flows and
//! both directions of its address pair share a partition.
//!
//! Partitions are what makes the table fast: records are first sorted into
//! per-partition event lists, then each partition is updated by one worker
//! (`FlowTable::apply_pending`). A partition's tables are a small fraction
//! of the whole and stay in cache, where one big table would miss on every
//! probe. Merging two maps goes partition by partition, each source freed
//! once folded in, so a merge's memory peak is the two maps plus one
//! partition's growth.
//!
//! Each partition is a `DenseMap`: entries live densely in a vector and
//! the hash index holds only positions. A plain hash map spreads its
//! (large) buckets over the whole table, so all of it is resident however
//! full it is; here the index is small and the vector's unused capacity is
//! never touched.

use super::dense::DenseMap;
use super::key::FlowKey;
use crate::time::Timestamp;
use rayon::prelude::*;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Enough for every worker of a large node to have several partitions to
/// apply; few enough that while a run of records is read, the tails of all
/// its event lists (one per partition, written in turn) stay in the
/// first-level cache, and that each run allocates few lists.
pub const PARTITIONS: usize = 64;

/// The partition of the addresses `a` and `b`, in either order.
#[inline]
pub fn partition_of(a: &IpAddr, b: &IpAddr) -> usize {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut hasher = FxHasher::default();
    lo.hash(&mut hasher);
    hi.hash(&mut hasher);
    // The top bits: hashbrown uses the low ones inside the partition.
    (hasher.finish() >> 56) as usize % PARTITIONS
}

/// A key that belongs to one partition.
pub trait Partitioned: Hash + Eq + Copy + Ord {
    fn partition(&self) -> usize;
}

impl Partitioned for FlowKey {
    #[inline]
    fn partition(&self) -> usize {
        partition_of(&self.lo.addr, &self.hi.addr)
    }
}

/// (source, destination)
impl Partitioned for (IpAddr, IpAddr) {
    #[inline]
    fn partition(&self) -> usize {
        partition_of(&self.0, &self.1)
    }
}

pub type Partition<K, V> = DenseMap<K, V>;

#[derive(Debug, Clone)]
pub struct PartitionedMap<K, V> {
    partitions: Vec<Partition<K, V>>,
}

impl<K, V> Default for PartitionedMap<K, V> {
    fn default() -> Self {
        PartitionedMap {
            partitions: (0..PARTITIONS).map(|_| Partition::default()).collect(),
        }
    }
}

impl<K: Partitioned, V> PartitionedMap<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.partitions[key.partition()].get(key)
    }

    pub fn len(&self) -> usize {
        self.partitions.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.iter().all(|s| s.is_empty())
    }

    /// Every entry, in no particular order (sort for output).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.partitions.iter().flat_map(|s| s.iter())
    }

    /// The partitions, indexed by `Partitioned::partition`: entries whose
    /// keys share both addresses share a partition, so per-pair work can
    /// go partition by partition in parallel.
    pub fn partitions(&self) -> &[Partition<K, V>] {
        &self.partitions
    }

    /// The partitions, consumed: each can be worked through (and freed)
    /// on its own.
    pub fn into_partitions(self) -> Vec<Partition<K, V>> {
        self.partitions
    }

    /// The partitions, indexed by `Partitioned::partition`.
    pub fn partitions_mut(&mut self) -> &mut [Partition<K, V>] {
        &mut self.partitions
    }

    /// Removes the entries idle longest until `keep` remain and returns
    /// them, a list per partition: entries `spare` says to spare go only
    /// once no other is left (oldest `last` first, ties by key). Each
    /// partition is ranked and thinned on its own worker.
    pub fn evict_idle(
        &mut self,
        keep: usize,
        last: impl Fn(&V) -> Timestamp + Sync,
        spare: impl Fn(&K, &V) -> bool + Sync,
    ) -> Vec<Vec<(K, V)>>
    where
        K: Send + Sync,
        V: Send + Sync,
    {
        let count = self.len().saturating_sub(keep);
        if count == 0 {
            return Vec::new();
        }
        let rank = |(key, value): (&K, &V)| ((spare(key, value), last(value)), *key);
        let ranked: Vec<Vec<((bool, Timestamp), K)>> = (self.partitions.par_iter())
            .map(|p| p.iter().map(rank).collect())
            .collect();
        let mut by_partition: Vec<Vec<K>> = (0..PARTITIONS).map(|_| Vec::new()).collect();
        for key in super::evict::idlest(ranked.into_iter().flatten(), count) {
            by_partition[key.partition()].push(key);
        }
        (self.partitions.par_iter_mut())
            .zip(by_partition)
            .map(|(partition, keys)| {
                let mut removed = Vec::with_capacity(keys.len());
                for key in keys {
                    if let Some(value) = partition.swap_remove(&key) {
                        removed.push((key, value));
                    }
                }
                removed
            })
            .collect()
    }

    /// Folds `other` in, partition by partition; `combine` merges the
    /// values of keys in both.
    pub fn merge(&mut self, other: Self, combine: impl Fn(&mut V, V) + Copy) {
        for (into, mut from) in self.partitions.iter_mut().zip(other.partitions) {
            if into.len() < from.len() {
                std::mem::swap(into, &mut from);
            }
            for (key, value) in from {
                into.insert_or_combine(key, value, combine);
            }
        }
    }
}

impl<'a, K: Partitioned, V> IntoIterator for &'a PartitionedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
