//! Pairing a pod's pre-NAT flow with its post-NAT copy in captures that
//! see both (`-i any`): the same protocol, external endpoint and
//! NAT-invariant first-packet fingerprint (TCP initial sequence number,
//! UDP payload hash), starting within `NAT_PAIR_WINDOW_NS` of each other.

use crate::detect::{Context, NAT_PAIR_WINDOW_NS};
use crate::flow::{merge_maps, Endpoint, Flow, FlowKey, FlowTable};
use crate::time::Timestamp;
use crate::topology::AddrClass;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::IpAddr;

/// A post-NAT flow as the pairing sees it.
#[derive(Clone, Copy)]
pub(super) struct PostNat<'t> {
    pub(super) first_ts: Timestamp,
    pub(super) source: IpAddr,
    pub(super) key: &'t FlowKey,
    pub(super) flow: &'t Flow,
}

/// What pairs a pre-NAT flow with its post-NAT copy: (protocol,
/// external endpoint, fingerprint) of the first packet.
type PairingKey = (u8, Endpoint, u64);

/// Non-pod flows indexed for pairing: pairing key -> candidates.
pub(super) type PostNatIndex<'t> = FxHashMap<PairingKey, Vec<PostNat<'t>>>;

/// The pairing key of `flow` and the sender of its first packet, if it
/// went to an external address with a known fingerprint.
fn pairing_key(
    key: &FlowKey,
    flow: &Flow,
    context: &Context<'_>,
) -> Option<(PairingKey, Endpoint)> {
    if flow.fingerprint == 0 {
        return None;
    }
    let (from, to) = key.endpoints(flow.first_direction);
    (context.topology.classify(to.addr) == AddrClass::External)
        .then_some(((key.protocol, to, flow.fingerprint), from))
}

/// The non-pod flows that could be post-NAT copies of pod flows: only
/// those with the pairing key of a pod flow are indexed. On a node's NIC
/// most flows are the node's own to external addresses, and indexing them
/// all cost more than the rest of the detectors.
pub(super) fn post_nat_index<'t>(flows: &'t FlowTable, context: &Context<'_>) -> PostNatIndex<'t> {
    let is_pod = |e: &Endpoint| context.topology.classify(e.addr) == AddrClass::Pod;
    let partitions = flows.flows.partitions();
    let pod_keys: FxHashSet<PairingKey> = (partitions.par_iter())
        .flat_map_iter(|partition| {
            partition.iter().filter_map(|(key, flow)| {
                let (pairing, from) = pairing_key(key, flow, context)?;
                is_pod(&from).then_some(pairing)
            })
        })
        .collect();
    if pod_keys.is_empty() {
        return PostNatIndex::default();
    }
    let post_nat = |(key, flow): (&'t FlowKey, &'t Flow)| {
        let (pairing, from) = pairing_key(key, flow, context)?;
        (!is_pod(&from) && pod_keys.contains(&pairing)).then(|| {
            let candidate = PostNat {
                first_ts: flow.first_ts,
                source: from.addr,
                key,
                flow,
            };
            (pairing, candidate)
        })
    };
    (partitions.par_iter())
        .fold(PostNatIndex::default, |mut index, partition| {
            for (pairing, candidate) in partition.iter().filter_map(post_nat) {
                index.entry(pairing).or_default().push(candidate);
            }
            index
        })
        .reduce(PostNatIndex::default, |mut a, b| {
            merge_maps(&mut a, b, Vec::extend);
            a
        })
}

/// The post-NAT copy, if `flow` (pod -> external) has one.
pub(super) fn post_nat_copy<'t>(
    key: &FlowKey,
    flow: &Flow,
    index: &PostNatIndex<'t>,
) -> Option<PostNat<'t>> {
    if flow.fingerprint == 0 {
        return None;
    }
    let (_, to) = key.endpoints(flow.first_direction);
    index
        .get(&(key.protocol, to, flow.fingerprint))?
        .iter()
        .map(|c| (c.first_ts.0.abs_diff(flow.first_ts.0), c))
        .filter(|(apart, _)| *apart <= NAT_PAIR_WINDOW_NS)
        .min_by_key(|(apart, c)| (*apart, c.source, c.flow.first_record))
        .map(|(_, c)| c)
        .copied()
}
