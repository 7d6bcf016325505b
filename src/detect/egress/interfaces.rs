//! Which interfaces carried traffic to external destinations, and from
//! which source classes: the answer to "which NIC did pod egress use?".

use super::{add_counts, EgressInterface};
use crate::detect::Context;
use crate::flow::{Direction, Flow, FlowKey, FlowTable, Partition};
use crate::interface::{InterfaceKind, Via};
use crate::topology::AddrClass;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Per interface: packets and flows to external destinations by source
/// class, NICs first.
pub(super) fn egress_interfaces(flows: &FlowTable, context: &Context<'_>) -> Vec<EgressInterface> {
    #[derive(Default)]
    struct Tally {
        packets: BTreeMap<AddrClass, u64>,
        flows: BTreeMap<AddrClass, u64>,
        pods: BTreeSet<IpAddr>,
        tunneled: u64,
    }
    type ByVia = BTreeMap<Via, Tally>;
    let classify = |addr| context.topology.classify(addr);
    let tally_partition = |mut by_via: ByVia, partition: &Partition<FlowKey, Flow>| {
        for (key, flow) in partition {
            for direction in [Direction::Lo, Direction::Hi] {
                let (from, to) = key.endpoints(direction);
                if classify(to.addr) != AddrClass::External {
                    continue;
                }
                let class = classify(from.addr);
                for crossing in &flow.crossings {
                    let packets = crossing.packets[direction.index()];
                    if packets == 0 {
                        continue;
                    }
                    let tally = by_via.entry(crossing.via).or_default();
                    if crossing.tunnel.is_some() {
                        tally.tunneled += packets;
                        continue;
                    }
                    *tally.packets.entry(class).or_default() += packets;
                    *tally.flows.entry(class).or_default() += 1;
                    if class == AddrClass::Pod {
                        tally.pods.insert(from.addr);
                    }
                }
            }
        }
        by_via
    };
    let merge = |mut a: ByVia, b: ByVia| {
        for (via, tally) in b {
            let into = a.entry(via).or_default();
            add_counts(&mut into.packets, tally.packets);
            add_counts(&mut into.flows, tally.flows);
            into.pods.extend(tally.pods);
            into.tunneled += tally.tunneled;
        }
        a
    };
    let by_via = (flows.flows.partitions().par_iter())
        .fold(ByVia::default, tally_partition)
        .reduce(ByVia::default, merge);
    let names = context.interfaces;
    let mut rows: Vec<EgressInterface> = by_via
        .into_iter()
        .map(|(via, tally)| {
            let kind = names.kind(&via);
            EgressInterface {
                interface: names.label(&via),
                kind,
                carries_pod_sources: !tally.pods.is_empty() && !kind.is_cluster_side(),
                packets_by_source: tally.packets,
                flows_by_source: tally.flows,
                pod_sources: tally.pods.into_iter().collect(),
                tunneled_packets: tally.tunneled,
            }
        })
        .collect();
    let nic_first = |r: &EgressInterface| (r.kind != InterfaceKind::Nic, r.kind);
    rows.sort_by(|a, b| (nic_first(a), &a.interface).cmp(&(nic_first(b), &b.interface)));
    rows
}
