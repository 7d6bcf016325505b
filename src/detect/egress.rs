//! Unmasqueraded pod egress: packets on the wire from a pod address to an
//! external one. Flows are keyed on the inner header, so tunnelled pod
//! traffic is judged on its inner addresses and the node-to-node underlay
//! never is. With no reply from the destination to the pod address it is a
//! failure (upstream cannot route replies to the pod CIDR); with replies, a
//! warning (pod addresses are routed upstream without SNAT).
//!
//! A `tcpdump -i any` capture holds a masqueraded packet twice: before NAT
//! (pod source) and after (node source). A pod flow whose first packet has
//! the same NAT-invariant fingerprint (TCP sequence number, UDP payload) as
//! a non-pod flow to the same destination within a second is such a
//! pre-NAT copy: proof that SNAT happened, not a finding.

use super::{Context, FlowItem, Severity};
use crate::flow::{Direction, Endpoint, Flow, FlowKey, FlowTable};
use crate::time::Timestamp;
use crate::topology::AddrClass;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Largest first-packet time difference between pre- and post-NAT copies.
const NAT_PAIR_WINDOW_NS: u64 = Timestamp::NANOS_PER_SEC;

/// Pod traffic to one external destination and port.
#[derive(Debug, Clone, Serialize)]
pub struct EgressGroup {
    pub pod: IpAddr,
    pub destination: IpAddr,
    pub protocol: String,
    /// The destination's port (for ICMP, the echo identifier).
    pub port: u16,
    pub severity: Severity,
    pub flows: u64,
    /// Packets from the pod address to the destination.
    pub packets: u64,
    pub bytes: u64,
    /// Packets from the destination back to the pod address, any protocol.
    pub replies: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub items: Vec<FlowItem>,
}

/// Pod flows whose post-NAT copy is in the capture too.
#[derive(Debug, Clone, Serialize)]
pub struct MasqueradedPod {
    pub pod: IpAddr,
    pub flows: u64,
    /// Source addresses of the post-NAT copies.
    pub translated_to: Vec<IpAddr>,
}

/// A non-pod source that reached the same external destinations as the
/// unmasqueraded pods and was answered: masquerading (or host networking)
/// works there.
#[derive(Debug, Clone, Serialize)]
pub struct AnsweredSource {
    pub source: IpAddr,
    pub class: AddrClass,
    pub flows: u64,
    pub answered_flows: u64,
}

/// Which pod networks leave unmasqueraded (per-node /24 or /64 slices of
/// the pod CIDR) and which sources get through: the "control plane works
/// by chance" picture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Contrast {
    pub unmasqueraded_pod_subnets: BTreeMap<IpNet, Vec<IpAddr>>,
    pub masqueraded_pods: Vec<MasqueradedPod>,
    pub answered_sources: Vec<AnsweredSource>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EgressFindings {
    /// Failures (no replies) first, then by flows.
    pub groups: Vec<EgressGroup>,
    pub contrast: Contrast,
}

impl EgressFindings {
    pub fn worst(&self) -> Option<Severity> {
        self.groups.iter().map(|g| g.severity).max()
    }

    /// Pod sources and external destinations of failing groups.
    pub fn failing(&self) -> impl Iterator<Item = &EgressGroup> {
        self.groups
            .iter()
            .filter(|g| g.severity == Severity::Failure)
    }
}

/// The endpoints of a flow as (pod side, external side), if it is one.
fn pod_and_external(key: &FlowKey, context: &Context<'_>) -> Option<(Direction, Endpoint)> {
    let classify = |e: &Endpoint| context.topology.classify(e.addr);
    match (classify(&key.lo), classify(&key.hi)) {
        (AddrClass::Pod, AddrClass::External) => Some((Direction::Lo, key.hi)),
        (AddrClass::External, AddrClass::Pod) => Some((Direction::Hi, key.lo)),
        _ => None,
    }
}

/// Non-pod flows indexed for pairing: (protocol, external endpoint,
/// fingerprint) -> (first packet time, non-pod source).
type PostNatIndex = FxHashMap<(u8, Endpoint, u64), Vec<(Timestamp, IpAddr)>>;

fn post_nat_index(flows: &FlowTable, context: &Context<'_>) -> PostNatIndex {
    let mut index = PostNatIndex::default();
    for (key, flow) in &flows.flows {
        if flow.fingerprint == 0 {
            continue;
        }
        let (from, to) = key.endpoints(flow.first_direction);
        if context.topology.classify(from.addr) != AddrClass::Pod
            && context.topology.classify(to.addr) == AddrClass::External
        {
            index
                .entry((key.protocol, to, flow.fingerprint))
                .or_default()
                .push((flow.first_ts, from.addr));
        }
    }
    index
}

/// The post-NAT copy's source, if `flow` (pod -> external) has one.
fn post_nat_source(key: &FlowKey, flow: &Flow, index: &PostNatIndex) -> Option<IpAddr> {
    if flow.fingerprint == 0 {
        return None;
    }
    let (_, to) = key.endpoints(flow.first_direction);
    index
        .get(&(key.protocol, to, flow.fingerprint))?
        .iter()
        .filter(|(ts, _)| ts.0.abs_diff(flow.first_ts.0) <= NAT_PAIR_WINDOW_NS)
        .map(|(_, src)| *src)
        .min()
}

/// (pod, destination, protocol, destination port).
type GroupKey = (IpAddr, IpAddr, u8, u16);

pub fn find(flows: &FlowTable, context: &Context<'_>) -> EgressFindings {
    let index = post_nat_index(flows, context);
    let mut groups: BTreeMap<GroupKey, Vec<(&FlowKey, &Flow)>> = BTreeMap::new();
    let mut masqueraded: BTreeMap<IpAddr, (u64, BTreeSet<IpAddr>)> = BTreeMap::new();
    for (key, flow) in &flows.flows {
        let Some((pod_direction, external)) = pod_and_external(key, context) else {
            continue;
        };
        let pod_side = &flow.sides[pod_direction.index()];
        if pod_side.packets == 0 {
            continue; // inbound only: nothing left with a pod source
        }
        let pod = key.sender(pod_direction).addr;
        if flow.first_direction == pod_direction {
            if let Some(source) = post_nat_source(key, flow, &index) {
                let entry = masqueraded.entry(pod).or_default();
                entry.0 += 1;
                entry.1.insert(source);
                continue;
            }
        }
        groups
            .entry((pod, external.addr, key.protocol, external.port))
            .or_default()
            .push((key, flow));
    }
    let mut groups: Vec<EgressGroup> = groups
        .into_iter()
        .map(|((pod, destination, protocol, port), members)| {
            let replies = flows
                .pairs
                .get(&(destination, pod))
                .map_or(0, |p| p.packets);
            group(pod, destination, protocol, port, replies, &members, context)
        })
        .collect();
    groups.sort_by(|a, b| {
        (b.severity, b.flows, b.packets)
            .cmp(&(a.severity, a.flows, a.packets))
            .then_with(|| (a.pod, a.destination, a.port).cmp(&(b.pod, b.destination, b.port)))
    });
    let contrast = Contrast {
        unmasqueraded_pod_subnets: pod_subnets(&groups),
        masqueraded_pods: masqueraded
            .into_iter()
            .map(|(pod, (flows, sources))| MasqueradedPod {
                pod,
                flows,
                translated_to: sources.into_iter().collect(),
            })
            .collect(),
        answered_sources: answered_sources(flows, &groups, context),
    };
    EgressFindings { groups, contrast }
}

fn group(
    pod: IpAddr,
    destination: IpAddr,
    protocol: u8,
    port: u16,
    replies: u64,
    members: &[(&FlowKey, &Flow)],
    context: &Context<'_>,
) -> EgressGroup {
    // Packets and bytes of the side of each flow that the pod sent.
    let (packets, bytes) = members
        .iter()
        .fold((0, 0), |(packets, bytes), (key, flow)| {
            let direction = if key.lo.addr == pod {
                Direction::Lo
            } else {
                Direction::Hi
            };
            let side = &flow.sides[direction.index()];
            (packets + side.packets, bytes + side.bytes)
        });
    let mut items: Vec<FlowItem> = members
        .iter()
        .map(|(key, flow)| FlowItem::new(key, flow, context))
        .collect();
    items.sort_by_key(|i| (i.first, i.initiator, i.responder));
    EgressGroup {
        pod,
        destination,
        protocol: crate::flow::protocol_name(protocol),
        port,
        severity: if replies == 0 {
            Severity::Failure
        } else {
            Severity::Warning
        },
        flows: members.len() as u64,
        packets,
        bytes,
        replies,
        first: members
            .iter()
            .map(|(_, f)| f.first_ts)
            .min()
            .unwrap_or_default(),
        last: members
            .iter()
            .map(|(_, f)| f.last_ts)
            .max()
            .unwrap_or_default(),
        items,
    }
}

/// The per-node slice of the pod CIDR an address belongs to: k3s and most
/// CNIs hand each node a /24 (IPv4) or /64 (IPv6).
pub fn node_slice(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() { 24 } else { 64 };
    IpNet::new(addr, prefix).expect("valid prefix").trunc()
}

fn pod_subnets(groups: &[EgressGroup]) -> BTreeMap<IpNet, Vec<IpAddr>> {
    let mut subnets: BTreeMap<IpNet, BTreeSet<IpAddr>> = BTreeMap::new();
    for g in groups {
        subnets.entry(node_slice(g.pod)).or_default().insert(g.pod);
    }
    subnets
        .into_iter()
        .map(|(net, pods)| (net, pods.into_iter().collect()))
        .collect()
}

/// Non-pod sources with flows to the destinations the pods failed to reach.
fn answered_sources(
    flows: &FlowTable,
    groups: &[EgressGroup],
    context: &Context<'_>,
) -> Vec<AnsweredSource> {
    let destinations: BTreeSet<IpAddr> = groups.iter().map(|g| g.destination).collect();
    let mut sources: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for (key, flow) in &flows.flows {
        let (from, to) = key.endpoints(flow.initiator());
        if !destinations.contains(&to.addr)
            || context.topology.classify(from.addr) == AddrClass::Pod
        {
            continue;
        }
        let entry = sources.entry(from.addr).or_default();
        entry.0 += 1;
        entry.1 += u64::from(flow.responder_side().packets > 0);
    }
    sources
        .into_iter()
        .filter(|(_, (_, answered))| *answered > 0)
        .map(|(source, (flows, answered_flows))| AnsweredSource {
            source,
            class: context.topology.classify(source),
            flows,
            answered_flows,
        })
        .collect()
}
