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
//!
//! Where the capture names its interfaces, a pod flow is only a finding if
//! it was seen with its pod source on the wire: on a NIC or an unnamed
//! interface. Seen only on the pod's lxc/veth device or an overlay device,
//! it never left the node unmasqueraded. The
//! per-interface table says which NICs carried what to external
//! destinations, which answers "which NIC did pod egress actually use?".

mod interfaces;
mod nat;

use super::brief::{BriefBuilder, FindingKind, FindingSet};
use super::{Context, Evidence, FlowItem, Severity};
use crate::decode::Tunnel;
use crate::flow::{Crossing, Direction, Endpoint, Flow, FlowKey, FlowTable, Partition};
use crate::interface::{InterfaceKind, InterfaceNames, Label, Via};
use crate::time::{Histogram, Timestamp};
use crate::topology::AddrClass;
use interfaces::egress_interfaces;
use ipnet::IpNet;
use nat::{post_nat_copy, post_nat_index, PostNatIndex};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Pod traffic to one external destination and port.
#[derive(Debug, Clone, Serialize)]
pub struct EgressGroup {
    pub pod: IpAddr,
    pub destination: IpAddr,
    pub protocol: Cow<'static, str>,
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
    /// The wire interfaces the pod-source packets left on.
    pub left_on: Vec<Label>,
    /// The flows, in time order: all of them, or the first (`Evidence`).
    pub items: Vec<FlowItem>,
}

/// Pod flows whose post-NAT copy is in the capture too.
#[derive(Debug, Clone, Serialize)]
pub struct MasqueradedPod {
    pub pod: IpAddr,
    pub flows: u64,
    /// Source addresses of the post-NAT copies.
    pub translated_to: Vec<IpAddr>,
    /// Where the pre-NAT copies were seen (the pod's device).
    pub seen_on: Vec<Label>,
    /// Where the post-NAT copies were seen (the egress NIC).
    pub translated_on: Vec<Label>,
}

/// Traffic to external destinations seen on one interface, by the class
/// of its source address: which NIC carried pod sources, which the node's.
#[derive(Debug, Clone, Serialize)]
pub struct EgressInterface {
    pub interface: String,
    pub kind: InterfaceKind,
    /// Packets to external destinations outside tunnels, by source class.
    pub packets_by_source: BTreeMap<AddrClass, u64>,
    pub flows_by_source: BTreeMap<AddrClass, u64>,
    /// Pod addresses among those sources.
    pub pod_sources: Vec<IpAddr>,
    /// Packets to external destinations carried inside a tunnel here.
    pub tunneled_packets: u64,
    /// Pod sources on a NIC (or unnamed interface), outside a tunnel: the
    /// interface where masquerading is missing.
    pub carries_pod_sources: bool,
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
    /// Pod flows to external destinations seen only on pod-side or overlay
    /// interfaces or inside a tunnel, with no post-NAT copy: they did not
    /// leave this node with a pod source (dropped, or SNATed elsewhere).
    pub not_on_the_wire: Vec<StayedInside>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StayedInside {
    pub pod: IpAddr,
    pub flows: u64,
    pub seen_on: Vec<Label>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EgressFindings {
    /// Failures (no replies) first, then by flows.
    pub groups: Vec<EgressGroup>,
    pub contrast: Contrast,
    /// Per interface, what went to external destinations.
    pub interfaces: Vec<EgressInterface>,
    /// Unmasqueraded pod packets by the second of their flow's first
    /// packet, for the timeline.
    #[serde(skip)]
    pub pod_packet_starts: Histogram,
}

impl FindingSet for EgressFindings {
    fn worst(&self) -> Option<Severity> {
        self.groups.iter().map(|g| g.severity).max()
    }

    /// Subject: the pod; details: destination and port.
    fn brief(&self, brief: &mut BriefBuilder) {
        for g in &self.groups {
            brief.counts.unmasqueraded_flows += g.flows;
            let detail = format!("{} {}/{}", g.destination, g.protocol, g.port);
            let kind = FindingKind::UnmasqueradedEgress;
            brief.add(kind, g.pod.to_string(), g.severity, g.flows, [detail]);
        }
        let masqueraded = self.contrast.masqueraded_pods.iter();
        (brief.masqueraded).extend(masqueraded.map(|m| (m.pod, m.translated_to.clone())));
    }
}

impl EgressFindings {
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

/// If `flow` is pod traffic that started towards an external destination:
/// the side the pod sent on, and the external endpoint.
fn pod_egress(key: &FlowKey, flow: &Flow, context: &Context<'_>) -> Option<(Direction, Endpoint)> {
    let (pod_direction, external) = pod_and_external(key, context)?;
    (flow.sides[pod_direction.index()].packets > 0).then_some((pod_direction, external))
}

/// A crossing on the wire: a NIC or unnamed interface. Tunnelled packets
/// count too: they are judged on their inner header (docs/findings.md).
fn on_the_wire(crossing: &Crossing, names: &InterfaceNames) -> bool {
    !names.kind(&crossing.via).is_cluster_side()
}

/// Where `direction`'s packets of `flow` were seen (interface and
/// tunnel), filtered by `keep`. Callers gather these in sets and label
/// each distinct one once: formatting per flow is slow on big captures.
fn crossed<'f>(
    flow: &'f Flow,
    direction: Direction,
    keep: impl Fn(&Crossing) -> bool + 'f,
) -> impl Iterator<Item = Place> + 'f {
    flow.crossings
        .iter()
        .filter(move |c| c.packets[direction.index()] > 0 && keep(c))
        .map(|c| (c.via, c.tunnel.as_deref().copied()))
}

/// An interface, and the tunnel packets crossed it in.
type Place = (Via, Option<Tunnel>);

/// The sorted, distinct labels of `places`. A group's flows cross few
/// places, so they are told apart by a linear search.
fn labels(places: impl IntoIterator<Item = Place>, names: &InterfaceNames) -> Vec<Label> {
    let mut distinct: SmallVec<[Place; 4]> = SmallVec::new();
    for place in places {
        if !distinct.contains(&place) {
            distinct.push(place);
        }
    }
    let mut labels: Vec<Label> = distinct
        .into_iter()
        .map(|(via, tunnel)| match tunnel {
            Some(tunnel) => names.shared_label(&via).inside(tunnel),
            None => names.shared_label(&via),
        })
        .collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

/// (pod, destination, protocol, destination port).
type GroupKey = (IpAddr, IpAddr, u8, u16);

/// Sets of what a pod's flows had in common, for the contrast lists.
#[derive(Default)]
struct PodTally {
    flows: u64,
    sources: BTreeSet<IpAddr>,
    seen_on: FxHashSet<Place>,
    translated_on: FxHashSet<Place>,
}

impl PodTally {
    fn merge(&mut self, other: PodTally) {
        self.flows += other.flows;
        self.sources.extend(other.sources);
        self.seen_on.extend(other.seen_on);
        self.translated_on.extend(other.translated_on);
    }
}

/// Pod egress in some partitions of the flow table. A group's flows share
/// both addresses, so they share a partition and each group is complete in
/// one; the per-pod tallies and the copies merge across partitions.
#[derive(Default)]
struct Scan {
    /// Taken out, in report order, by `in_report_order`.
    groups: Vec<Option<(GroupKey, EgressGroup)>>,
    masqueraded: BTreeMap<IpAddr, PodTally>,
    stayed_inside: BTreeMap<IpAddr, PodTally>,
    copies: FxHashSet<FlowKey>,
    /// Packets from the pod of each unmasqueraded flow, by the second of
    /// the flow's first packet.
    starts: Histogram,
}

impl Scan {
    /// The tallies of all `scans` in one (not their groups or copies).
    fn concat(scans: Vec<Scan>) -> Scan {
        let mut all = Scan::default();
        for scan in scans {
            all.starts.merge(scan.starts);
            for (into, from) in [
                (&mut all.masqueraded, scan.masqueraded),
                (&mut all.stayed_inside, scan.stayed_inside),
            ] {
                for (pod, tally) in from {
                    into.entry(pod).or_default().merge(tally);
                }
            }
        }
        all
    }
}

/// The groups of all `scans`: failures first, then by flows and packets,
/// ties in key order. The order is worked out on small keys and each group
/// is moved once: groups are large, and a storm of short flows makes
/// hundreds of thousands of them.
fn in_report_order(scans: &mut [Scan]) -> Vec<EgressGroup> {
    type Rank = (Reverse<(Severity, u64, u64)>, IpAddr, IpAddr, u16, u8);
    let rank = |((pod, destination, protocol, port), group): &(GroupKey, EgressGroup)| -> Rank {
        let size = Reverse((group.severity, group.flows, group.packets));
        (size, *pod, *destination, *port, *protocol)
    };
    let mut order: Vec<(Rank, usize, usize)> = Vec::new();
    for (s, scan) in scans.iter().enumerate() {
        let ranked = scan.groups.iter().enumerate();
        order.extend(ranked.filter_map(|(g, slot)| Some((rank(slot.as_ref()?), s, g))));
    }
    // Keys are distinct, so an unstable sort is deterministic.
    order.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    order
        .into_iter()
        .filter_map(|(_, s, g)| scans[s].groups[g].take().map(|(_, group)| group))
        .collect()
}

/// Addresses in a node CIDR that talk with node addresses: with
/// `--node-cidr` covering a node's whole network, its router and LAN hosts
/// are among them. One that answers nodes and never a pod is a neighbour
/// the pod reached unmasqueraded, not a node (docs/findings.md).
fn neighbours(flows: &FlowTable, context: &Context<'_>) -> FxHashSet<IpAddr> {
    if context.topology.node.is_empty() {
        return FxHashSet::default();
    }
    let is_node = |a: &IpAddr| context.topology.classify(*a) == AddrClass::Node;
    (flows.pairs.iter())
        .filter(|((from, to), pair)| pair.packets > 0 && is_node(from) && is_node(to))
        .filter(|((from, to), _)| {
            flows
                .pairs
                .get(&(*to, *from))
                .is_some_and(|p| p.packets > 0)
        })
        .map(|((from, _), _)| *from)
        .collect()
}

/// A pod's flow to a node-CIDR address that answers nodes and never
/// answered this pod: the pod's side and the neighbour.
fn pod_to_neighbour(
    key: &FlowKey,
    flow: &Flow,
    neighbours: &FxHashSet<IpAddr>,
    flows: &FlowTable,
    context: &Context<'_>,
) -> Option<(Direction, Endpoint)> {
    if neighbours.is_empty() {
        return None;
    }
    let classify = |e: &Endpoint| context.topology.classify(e.addr);
    let (direction, pod, other) = match (classify(&key.lo), classify(&key.hi)) {
        (AddrClass::Pod, AddrClass::Node) => (Direction::Lo, key.lo, key.hi),
        (AddrClass::Node, AddrClass::Pod) => (Direction::Hi, key.hi, key.lo),
        _ => return None,
    };
    let answered = flows
        .pairs
        .get(&(other.addr, pod.addr))
        .is_some_and(|p| p.packets > 0);
    let sent = flow.sides[direction.index()].packets > 0;
    (sent && !answered && neighbours.contains(&other.addr)).then_some((direction, other))
}

/// Pod egress in one partition of the flow table.
fn scan_partition(
    partition: &Partition<FlowKey, Flow>,
    index: &PostNatIndex<'_>,
    neighbours: &FxHashSet<IpAddr>,
    flows: &FlowTable,
    context: &Context<'_>,
) -> Scan {
    let names = context.interfaces;
    let mut scan = Scan::default();
    let mut groups: FxHashMap<GroupKey, Vec<(&FlowKey, &Flow)>> = FxHashMap::default();
    // Replies to the pod's own address that did not come from upstream:
    // those of its translated flows, which `-i any` sees again on the
    // pod's device once conntrack has restored its address, and of flows
    // that never left the node. By (destination, pod), as the pairs; both
    // directions of an address pair are in one partition.
    let mut not_from_upstream: FxHashMap<(IpAddr, IpAddr), u64> = FxHashMap::default();
    for (key, flow) in partition {
        let egress = pod_egress(key, flow, context)
            .or_else(|| pod_to_neighbour(key, flow, neighbours, flows, context));
        let Some((pod_direction, external)) = egress else {
            continue;
        };
        let pod = key.sender(pod_direction).addr;
        let mut not_upstream = || {
            let replies = flow.sides[pod_direction.other().index()].packets;
            *not_from_upstream.entry((external.addr, pod)).or_default() += replies;
        };
        if flow.first_direction == pod_direction {
            if let Some(copy) = post_nat_copy(key, flow, index) {
                not_upstream();
                scan.copies.insert(*copy.key);
                let translated = copy.flow;
                let tally = scan.masqueraded.entry(pod).or_default();
                tally.flows += 1;
                tally.sources.insert(copy.source);
                tally.seen_on.extend(crossed(flow, pod_direction, |_| true));
                tally
                    .translated_on
                    .extend(crossed(translated, translated.first_direction, |_| true));
                continue;
            }
        }
        let wire = |c: &Crossing| on_the_wire(c, names);
        if !flow
            .crossings
            .iter()
            .any(|c| c.packets[pod_direction.index()] > 0 && wire(c))
        {
            not_upstream();
            let tally = scan.stayed_inside.entry(pod).or_default();
            tally.flows += 1;
            tally.seen_on.extend(crossed(flow, pod_direction, |_| true));
            continue;
        }
        let sent = flow.sides[pod_direction.index()].packets;
        scan.starts.add(flow.first_ts, sent);
        groups
            .entry((pod, external.addr, key.protocol, external.port))
            .or_default()
            .push((key, flow));
    }
    scan.groups = groups
        .into_iter()
        .map(|(group_key, members)| {
            let (pod, destination, protocol, port) = group_key;
            let replies = flows
                .pairs
                .get(&(destination, pod))
                .map_or(0, |p| p.packets)
                .saturating_sub(
                    not_from_upstream
                        .get(&(destination, pod))
                        .copied()
                        .unwrap_or(0),
                );
            let mut group = group(pod, destination, protocol, port, replies, &members, context);
            let left_on = members.iter().flat_map(|(key, flow)| {
                let direction = if key.lo.addr == pod {
                    Direction::Lo
                } else {
                    Direction::Hi
                };
                crossed(flow, direction, |c| on_the_wire(c, names))
            });
            group.left_on = labels(left_on, names);
            Some((group_key, group))
        })
        .collect();
    scan
}

/// The post-NAT copies of pod flows (`-i any` captures): the same
/// connections as their pre-NAT flows, so SYN and DNS totals skip them;
/// and the scan that found them, for `Scanned::findings`. Partitions of
/// the flow table are scanned in parallel.
pub fn scan<'t>(flows: &'t FlowTable, context: &Context<'_>) -> (Scanned<'t>, FxHashSet<FlowKey>) {
    let index = post_nat_index(flows, context);
    let neighbours = neighbours(flows, context);
    let mut scans: Vec<Scan> = (flows.flows.partitions().par_iter())
        .map(|partition| scan_partition(partition, &index, &neighbours, flows, context))
        .collect();
    let copies = scans
        .iter_mut()
        .flat_map(|scan| std::mem::take(&mut scan.copies))
        .collect();
    (Scanned { flows, scans }, copies)
}

/// Pod egress as the partitions' scans found it: the copies are known,
/// the findings not yet put together. Split so that the detectors that
/// need only the copies run beside the rest of this one, much of which
/// (ordering groups, tallies across partitions) runs on one thread.
pub struct Scanned<'t> {
    flows: &'t FlowTable,
    scans: Vec<Scan>,
}

impl Scanned<'_> {
    pub fn findings(self, context: &Context<'_>) -> EgressFindings {
        let (flows, mut scans) = (self.flows, self.scans);
        let names = context.interfaces;
        let groups = in_report_order(&mut scans);
        let scan = Scan::concat(scans);
        let contrast = Contrast {
            unmasqueraded_pod_subnets: pod_subnets(&groups),
            masqueraded_pods: scan
                .masqueraded
                .into_iter()
                .map(|(pod, tally)| MasqueradedPod {
                    pod,
                    flows: tally.flows,
                    translated_to: tally.sources.into_iter().collect(),
                    seen_on: labels(tally.seen_on, names),
                    translated_on: labels(tally.translated_on, names),
                })
                .collect(),
            answered_sources: answered_sources(flows, &groups, context),
            not_on_the_wire: scan
                .stayed_inside
                .into_iter()
                .map(|(pod, tally)| StayedInside {
                    pod,
                    flows: tally.flows,
                    seen_on: labels(tally.seen_on, names),
                })
                .collect(),
        };
        EgressFindings {
            groups,
            contrast,
            interfaces: egress_interfaces(flows, context),
            pod_packet_starts: scan.starts,
        }
    }
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
    let item = |(key, flow): &(&FlowKey, &Flow)| FlowItem::new(key, flow, context);
    let items: Vec<FlowItem> = match context.evidence {
        Evidence::All => {
            let mut items: Vec<FlowItem> = members.iter().map(item).collect();
            items.sort_by_key(|i| (i.first, i.initiator, i.responder));
            items
        }
        // The first in that order, found on the flows' own fields unbuilt.
        Evidence::Brief => (members.iter())
            .min_by_key(|(key, flow)| (flow.first_ts, key.endpoints(flow.initiator())))
            .map(item)
            .into_iter()
            .collect(),
    };
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
        left_on: Vec::new(),
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
    // Asked once per flow of the capture: a hash set, not a tree.
    let destinations: FxHashSet<IpAddr> = groups.iter().map(|g| g.destination).collect();
    if destinations.is_empty() {
        return Vec::new();
    }
    type BySource = BTreeMap<IpAddr, (u64, u64)>;
    let tally_partition = |mut sources: BySource, partition: &Partition<FlowKey, Flow>| {
        for (key, flow) in partition {
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
    };
    let merge = |mut a: BySource, b: BySource| {
        for (source, (flows, answered)) in b {
            let into = a.entry(source).or_default();
            into.0 += flows;
            into.1 += answered;
        }
        a
    };
    let sources = (flows.flows.partitions().par_iter())
        .fold(BySource::default, tally_partition)
        .reduce(BySource::default, merge);
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

/// Adds `from`'s counts into `into`.
fn add_counts<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
    for (key, count) in from {
        *into.entry(key).or_default() += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::Traffic;

    #[test]
    fn pod_sources_to_external_destinations_without_replies_fail() {
        let mut t = Traffic::default();
        t.syn(0, "10.42.1.5:40000", "1.1.1.1:443")
            .syn(1000, "10.42.1.5:40000", "1.1.1.1:443");
        t.syn(0, "10.42.1.5:40001", "1.1.1.1:443");
        let egress = t.findings().unmasqueraded_egress;
        assert_eq!(egress.groups.len(), 1, "one (pod, destination, port)");
        let group = &egress.groups[0];
        assert_eq!(group.pod.to_string(), "10.42.1.5");
        assert_eq!(group.destination.to_string(), "1.1.1.1");
        assert_eq!((group.protocol.as_ref(), group.port), ("tcp", 443));
        assert_eq!((group.flows, group.packets, group.replies), (2, 3, 0));
        assert_eq!(group.severity, Severity::Failure);
        assert_eq!(egress.failing().count(), 1);
        let subnets: Vec<String> = (egress.contrast.unmasqueraded_pod_subnets.keys())
            .map(|n| n.to_string())
            .collect();
        assert_eq!(subnets, ["10.42.1.0/24"]);
    }

    #[test]
    fn replies_from_the_destination_make_it_a_warning() {
        let mut t = Traffic::default();
        t.syn(0, "10.42.1.5:40000", "1.1.1.1:443");
        // Any packet from the destination to the pod counts as a reply,
        // on any port; it is not pod egress itself.
        t.udp(5, "1.1.1.1:53", "10.42.1.5:40009", b"x");
        let egress = t.findings().unmasqueraded_egress;
        let severities: Vec<(u16, Severity, u64)> = (egress.groups.iter())
            .map(|g| (g.port, g.severity, g.replies))
            .collect();
        assert_eq!(severities, [(443, Severity::Warning, 1)]);
        assert_eq!(egress.failing().count(), 0);
    }

    #[test]
    fn node_sources_and_cluster_internal_destinations_are_not_pod_egress() {
        let mut t = Traffic::default();
        t.syn(0, "10.50.10.21:40000", "1.1.1.1:443");
        t.syn(0, "10.42.1.5:40000", "10.42.2.7:8080");
        t.syn(0, "10.42.1.5:40001", "10.50.10.22:10250");
        t.udp(0, "10.42.1.5:40002", "10.43.0.10:53", b"x");
        let egress = t.findings().unmasqueraded_egress;
        assert!(egress.groups.is_empty(), "{:?}", egress.groups);
        // The node's traffic is what the egress interface view shows.
        let interfaces = &egress.interfaces;
        assert_eq!(interfaces.len(), 1);
        assert_eq!(
            interfaces[0].packets_by_source.get(&AddrClass::Node),
            Some(&1)
        );
        assert!(!interfaces[0].carries_pod_sources);
    }

    #[test]
    fn node_slices_are_per_node_subnets() {
        assert_eq!(
            node_slice("10.42.1.77".parse().unwrap()).to_string(),
            "10.42.1.0/24"
        );
        assert_eq!(
            node_slice("fd00::1:2".parse().unwrap()).to_string(),
            "fd00::/64"
        );
    }
}
