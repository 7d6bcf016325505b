//! The flow map: flows by key, split into shards by key hash. Merging two
//! maps goes shard by shard, each source shard freed as soon as it is
//! folded in, so the memory peak of a merge is the two maps plus one
//! shard's growth, not the two maps plus a rehash of the whole table.
//!
//! Each shard is an `IndexMap`: flows live densely in a vector and the hash
//! table holds only indices. A plain hash map spreads its (large) buckets
//! over the whole table, so all of it is resident however full it is; here
//! the table is small and the vector's unused capacity is never touched.

use super::key::FlowKey;
use super::table::Flow;
use indexmap::map::Entry;
use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHasher};
use std::hash::{Hash, Hasher};

const SHARDS: usize = 64;

type Shard = IndexMap<FlowKey, Flow, FxBuildHasher>;

#[derive(Debug, Clone)]
pub struct FlowMap {
    shards: Vec<Shard>,
}

impl Default for FlowMap {
    fn default() -> Self {
        FlowMap {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

fn shard_of(key: &FlowKey) -> usize {
    let mut hasher = FxHasher::default();
    key.hash(&mut hasher);
    // The top bits: hashbrown uses the low ones inside the shard.
    (hasher.finish() >> 58) as usize % SHARDS
}

impl FlowMap {
    pub fn entry(&mut self, key: FlowKey) -> Entry<'_, FlowKey, Flow> {
        self.shards[shard_of(&key)].entry(key)
    }

    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.shards[shard_of(key)].get(key)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// Evicts the flows idle longest (oldest last packet; ties by key)
    /// until `keep` remain; returns how many went.
    pub fn evict_idle(&mut self, keep: usize) -> u64 {
        let count = self.len().saturating_sub(keep);
        let idle = self.iter().map(|(key, flow)| (flow.last_ts, *key));
        for key in super::evict::idlest(idle, count) {
            self.shards[shard_of(&key)].swap_remove(&key);
        }
        count as u64
    }

    /// Every flow, in no particular order (sort for output).
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Folds `other` in, shard by shard; `combine` merges flows in both.
    pub fn merge(&mut self, other: FlowMap, combine: impl Fn(&mut Flow, Flow) + Copy) {
        for (into, mut from) in self.shards.iter_mut().zip(other.shards) {
            if into.len() < from.len() {
                std::mem::swap(into, &mut from);
            }
            for (key, flow) in from {
                match into.entry(key) {
                    Entry::Occupied(mut e) => combine(e.get_mut(), flow),
                    Entry::Vacant(e) => {
                        e.insert(flow);
                    }
                }
            }
        }
    }
}

impl<'a> IntoIterator for &'a FlowMap {
    type Item = (&'a FlowKey, &'a Flow);
    type IntoIter = Box<dyn Iterator<Item = (&'a FlowKey, &'a Flow)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
