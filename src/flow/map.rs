//! The flow map: flows by key, split into shards by key hash. Merging two
//! maps goes shard by shard, each source shard freed as soon as it is
//! folded in, so the memory peak of a merge is the two maps plus one
//! shard's growth, not the two maps plus a rehash of the whole table.

use super::key::FlowKey;
use super::table::merge_maps;
use super::table::Flow;
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

const SHARDS: usize = 64;

#[derive(Debug, Clone)]
pub struct FlowMap {
    shards: Vec<FxHashMap<FlowKey, Flow>>,
}

impl Default for FlowMap {
    fn default() -> Self {
        FlowMap {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
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
            merge_maps(into, from, combine);
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
