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

use super::dense::{hash_of, DenseMap};
use super::key::FlowKey;
use crate::time::Timestamp;
use rayon::prelude::*;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::OnceLock;

/// Enough for every worker of a large node to have several partitions to
/// apply; few enough that while a run of records is read, the tails of all
/// its event lists (one per partition, written in turn) stay in the
/// first-level cache, and that each run allocates few lists.
pub const PARTITIONS: usize = 64;

const _: () = assert!(PARTITIONS.is_power_of_two());

/// The partition of the addresses `a` and `b`, in either order: each
/// address is mixed on its own and the two are added, so neither has to be
/// put first (two addresses compared per packet, as an ordered hash did).
/// Seeded at random once per process, so that no capture can be crafted
/// to put every flow into one partition (one worker doing all the work).
#[inline]
pub fn partition_of(a: &IpAddr, b: &IpAddr) -> usize {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| hash_of(&"kpcap partitions") | 1);
    let sum = mix(a, seed).wrapping_add(mix(b, seed));
    (sum >> (64 - PARTITIONS.trailing_zeros())) as usize
}

/// An address's bits, folded to a word and mixed (multiply, shift, xor)
/// so that every bit reaches the top ones, which pick the partition.
#[inline]
fn mix(addr: &IpAddr, seed: u64) -> u64 {
    let folded = match addr {
        IpAddr::V4(a) => u64::from(a.to_bits()),
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29)
        }
    };
    let mut x = (folded ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 32;
    x.wrapping_mul(0xD6E8_FEB8_6659_FD93)
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

#[cfg(test)]
mod tests {
    use super::{partition_of, PARTITIONS};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Both directions of a conversation share a partition, and address
    /// pairs spread evenly over the partitions, even the regular ones a
    /// node sees (one pod subnet to one resolver; consecutive addresses,
    /// both families): no partition gets twice its share or under half.
    #[test]
    fn pairs_share_a_partition_both_ways_and_spread_evenly() {
        let resolver = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10));
        let pods = (0..32_768u32).map(|i| IpAddr::V4(Ipv4Addr::from(0x0a2a_0000 + i)));
        let v6 = (0..32_768u128).map(|i| IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | i)));
        let mut counts = [0usize; PARTITIONS];
        let mut total = 0;
        for pod in pods.chain(v6) {
            let partition = partition_of(&pod, &resolver);
            assert_eq!(partition, partition_of(&resolver, &pod));
            counts[partition] += 1;
            total += 1;
        }
        let share = total / PARTITIONS;
        for (partition, &count) in counts.iter().enumerate() {
            assert!(
                count > share / 2 && count < share * 2,
                "partition {partition}: {count} pairs, a share is {share}"
            );
        }
    }
}
