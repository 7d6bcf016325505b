//! TCP connection attempts that got nowhere. A flow whose initiator sent
//! SYNs (retransmissions counted, not split off) and got no SYN back is:
//! `refused` if the responder sent RST, `unreachable` if an ICMP/ICMPv6
//! destination-unreachable quoted the SYN, `inconclusive` if its last SYN is
//! younger than `--syn-grace` at capture end, else `unanswered`. An
//! initiator that gave up (its own FIN or RST) is still unanswered.

use super::brief::{BriefBuilder, FindingKind, FindingSet};
use super::{old_enough, Context, FlowItem, Severity};
use crate::capture::Record;
use crate::decode::{Packet, Transport, PROTO_TCP};
use crate::flow::{
    merge_maps, min_option, partition_of, Endpoint, Flow, FlowKey, FlowTable, PARTITIONS,
};
use crate::time::{Histogram, Timestamp};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An ICMP destination-unreachable that quoted a TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UnreachableSeen {
    /// File position of the first one; its code and sender are reported.
    record: u64,
    code: u8,
    v6: bool,
    from: IpAddr,
    count: u64,
}

/// ICMP unreachables by the (source, destination) endpoints they quote.
#[derive(Debug, Clone, Default)]
pub struct Unreachables {
    by_quoted: FxHashMap<(Endpoint, Endpoint), UnreachableSeen>,
}

impl Unreachables {
    pub fn observe(&mut self, record: &Record<'_>, packet: &Packet<'_>) {
        let (Transport::Icmp(icmp), Some(ip)) = (packet.transport, packet.ip) else {
            return;
        };
        let Some(quoted) = icmp.quoted.filter(|q| q.protocol == PROTO_TCP) else {
            return;
        };
        if !icmp.is_unreachable() {
            return;
        }
        let key = (
            Endpoint {
                addr: quoted.src,
                port: quoted.src_port,
            },
            Endpoint {
                addr: quoted.dst,
                port: quoted.dst_port,
            },
        );
        let seen = UnreachableSeen {
            record: record.position,
            code: icmp.code,
            v6: icmp.v6,
            from: ip.src,
            count: 1,
        };
        self.by_quoted
            .entry(key)
            .and_modify(|s| s.merge(&seen))
            .or_insert(seen);
    }

    pub fn len(&self) -> usize {
        self.by_quoted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_quoted.is_empty()
    }

    /// Forgets the unreachables whose quoted flow is not in `flows` (it was
    /// judged when evicted, or never seen): what `--max-flows` keeps of an
    /// ICMP flood. Returns how many went.
    pub fn keep_for(&mut self, flows: &FlowTable) -> u64 {
        let before = self.by_quoted.len();
        self.by_quoted.retain(|&(src, dst), _| {
            let (key, _) = FlowKey::between(PROTO_TCP, src, dst);
            flows.flows.get(&key).is_some()
        });
        (before - self.by_quoted.len()) as u64
    }

    pub fn merge(mut self, mut other: Unreachables) -> Unreachables {
        if self.by_quoted.len() < other.by_quoted.len() {
            std::mem::swap(&mut self, &mut other);
        }
        merge_maps(&mut self.by_quoted, other.by_quoted, |s, other| {
            s.merge(&other)
        });
        self
    }
}

impl UnreachableSeen {
    fn merge(&mut self, other: &UnreachableSeen) {
        let count = self.count + other.count;
        if other.record < self.record {
            *self = *other;
        }
        self.count = count;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SynOutcome {
    Unanswered,
    Unreachable,
    Refused,
    Inconclusive,
}

impl SynOutcome {
    pub fn label(self) -> &'static str {
        match self {
            SynOutcome::Unanswered => "unanswered",
            SynOutcome::Unreachable => "unreachable",
            SynOutcome::Refused => "refused",
            SynOutcome::Inconclusive => "inconclusive",
        }
    }

    fn severity(self) -> Severity {
        match self {
            SynOutcome::Unanswered | SynOutcome::Unreachable => Severity::Failure,
            SynOutcome::Refused => Severity::Warning,
            SynOutcome::Inconclusive => Severity::Info,
        }
    }
}

/// The ICMP message that made a flow `unreachable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IcmpEvidence {
    pub v6: bool,
    pub code: u8,
    /// "port unreachable", "administratively prohibited", ...
    pub meaning: &'static str,
    /// The router or host that sent it.
    pub from: IpAddr,
    pub messages: u64,
}

/// One SYN-initiated flow that was not answered.
#[derive(Debug, Clone, Serialize)]
pub struct SynFlow {
    #[serde(flatten)]
    pub flow: FlowItem,
    pub syn_outcome: SynOutcome,
    /// SYNs the initiator sent; `retransmits` = syn_packets - 1.
    pub syn_packets: u32,
    pub retransmits: u32,
    pub last_syn: Timestamp,
    pub icmp: Option<IcmpEvidence>,
    /// The initiator sent FIN or RST after its SYNs (Zeek: SH, RSTOS0).
    pub initiator_gave_up: bool,
    /// The initiator sent ACKs or data without any SYN-ACK visible: the
    /// capture may see only one direction of this conversation.
    pub initiator_sent_data: bool,
}

/// Flows with the same source, destination and outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SynGroup {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub outcome: SynOutcome,
    pub severity: Severity,
    /// Destination ports, ascending.
    pub ports: Vec<u16>,
    pub flows: u64,
    pub syn_packets: u64,
    pub retransmits: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// ICMP code of the group's first unreachable (unreachable only).
    pub icmp_code: Option<u8>,
    /// Flows whose initiator sent ACKs or data without a SYN-ACK in sight.
    pub initiator_sent_data: u64,
    /// Flows judged when `--max-flows` evicted them: counted in `flows`,
    /// not listed in `items`.
    pub evicted: u64,
    /// The earliest `MAX_ITEMS` flows.
    pub items: Vec<SynFlow>,
    /// Flows past those: counted in `flows`, not listed in `items`.
    pub items_omitted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SynCounts {
    /// Flows whose initiator sent a pure SYN.
    pub syn_flows: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub refused: u64,
    pub unreachable: u64,
    pub inconclusive: u64,
    /// SYNs sent by initiators, retransmissions included.
    pub syn_packets: u64,
    /// Unanswered flows whose initiator sent data anyway (one-sided capture?).
    pub unanswered_with_initiator_data: u64,
    /// SYN flows left out of these counts as post-NAT copies of a pod's
    /// flow that is counted (`-i any` captures).
    pub post_nat_copies: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SynFindings {
    pub counts: SynCounts,
    /// Ordered by severity, then flows, then addresses: the first
    /// `MAX_GROUPS`.
    pub groups: Vec<SynGroup>,
    /// Groups and flows the list leaves out, by outcome (all are in
    /// `counts`).
    pub omitted: OmittedByOutcome,
    /// Unanswered and unreachable SYN flows by the second of their first
    /// packet, for the timeline (those `--max-flows` evicted are not in it).
    #[serde(skip)]
    pub failed_starts: Histogram,
}

impl FindingSet for SynFindings {
    fn worst(&self) -> Option<Severity> {
        self.groups.iter().map(|g| g.severity).max()
    }

    /// Subject: `source -> destination`; details: the ports.
    fn brief(&self, brief: &mut BriefBuilder) {
        let c = &self.counts;
        brief.counts.unanswered_syns = c.unanswered;
        brief.counts.unreachable_syns = c.unreachable;
        brief.counts.refused_syns = c.refused;
        for g in &self.groups {
            let kind = match g.outcome {
                SynOutcome::Unanswered => FindingKind::UnansweredSyn,
                SynOutcome::Unreachable => FindingKind::UnreachableSyn,
                SynOutcome::Refused => FindingKind::RefusedSyn,
                SynOutcome::Inconclusive => continue,
            };
            let subject = format!("{} -> {}", g.source, g.destination);
            let ports = g.ports.iter().map(|p| format!("tcp/{p}"));
            brief.add(kind, subject, g.severity, g.flows, ports);
        }
    }
}

impl SynCounts {
    fn add(&mut self, other: &SynCounts) {
        self.syn_flows += other.syn_flows;
        self.answered += other.answered;
        self.unanswered += other.unanswered;
        self.refused += other.refused;
        self.unreachable += other.unreachable;
        self.inconclusive += other.inconclusive;
        self.syn_packets += other.syn_packets;
        self.unanswered_with_initiator_data += other.unanswered_with_initiator_data;
        self.post_nat_copies += other.post_nat_copies;
    }
}

/// Groups a SYN finding lists per outcome, the largest first; the rest are
/// counted in `SynFindings::omitted`. A flood from a million spoofed sources is a
/// million groups: the counts say how big it was, a list of them all says
/// no more, and holding them cost 20 times the capture.
pub const MAX_GROUPS: usize = 10_000;
/// Flows a group lists as items, the earliest first; its counts hold all.
pub const MAX_ITEMS: usize = 1000;
/// Groups of evicted flows kept (`Retired`); past them, only counted.
const MAX_RETIRED_GROUPS: usize = 10_000;

/// What the lists left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// Groups past the first `MAX_GROUPS`.
    pub groups: u64,
    /// Their flows, and those of evicted flows' groups past the ones kept.
    pub flows: u64,
}

type GroupKey = (IpAddr, IpAddr, SynOutcome);

/// Where a group stands in the list: by severity, then flows, then its
/// key (the order of `SynFindings::groups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rank {
    severity: Severity,
    flows: u64,
    key: GroupKey,
}

impl Rank {
    fn order(&self) -> impl Ord {
        let (source, destination, outcome) = self.key;
        (
            std::cmp::Reverse(self.severity),
            std::cmp::Reverse(self.flows),
            outcome,
            source,
            destination,
        )
    }
}

/// What the lists left out, by outcome.
pub type OmittedByOutcome = BTreeMap<SynOutcome, Omitted>;

/// Keeps the first `max` of `ranks` of each outcome in list order; adds
/// what went to `omitted`.
fn keep_first(ranks: &mut Vec<Rank>, max: usize, omitted: &mut OmittedByOutcome) {
    let mut kept = Vec::with_capacity(ranks.len().min(4 * max));
    for outcome in [
        SynOutcome::Unanswered,
        SynOutcome::Unreachable,
        SynOutcome::Refused,
        SynOutcome::Inconclusive,
    ] {
        let mut of: Vec<Rank> = ranks
            .iter()
            .filter(|r| r.key.2 == outcome)
            .copied()
            .collect();
        if of.len() > max {
            of.select_nth_unstable_by(max, |a, b| a.order().cmp(&b.order()));
            let gone = of.split_off(max);
            let o = omitted.entry(outcome).or_default();
            o.groups += gone.len() as u64;
            o.flows += gone.iter().map(|r| r.flows).sum::<u64>();
        }
        kept.extend(of);
    }
    *ranks = kept;
}

/// Partitions of the flow table are judged in parallel: a group's flows
/// share both addresses, so they share a partition. Two passes: the first
/// counts each group's flows and picks the `MAX_GROUPS` the list shows, the
/// second builds those groups' items. Memory follows the groups listed,
/// not the flows judged.
pub fn find(
    flows: &FlowTable,
    unreachables: &Unreachables,
    retired: &Retired,
    capture_end: Option<Timestamp>,
    post_nat_copies: &FxHashSet<FlowKey>,
    context: &Context<'_>,
) -> SynFindings {
    let grace = context.settings.syn_grace_ns;
    let finding = |key: &FlowKey, flow: &Flow| {
        let judgment = judge(key, flow, unreachables, capture_end, grace)?;
        if post_nat_copies.contains(key) {
            let counts = SynCounts {
                post_nat_copies: 1,
                ..SynCounts::default()
            };
            return Some((counts, None));
        }
        let outcome = judgment.outcome;
        Some((judgment.counts.clone(), outcome.map(|o| (o, judgment))))
    };
    let group_key = |key: &FlowKey, flow: &Flow, outcome| {
        let (initiator, responder) = key.endpoints(flow.initiator());
        (initiator.addr, responder.addr, outcome)
    };
    let mut retired_by_partition: Vec<Vec<(&GroupKey, &RetiredGroup)>> =
        (0..PARTITIONS).map(|_| Vec::new()).collect();
    for (key, group) in &retired.groups {
        retired_by_partition[partition_of(&key.0, &key.1)].push((key, group));
    }
    let partitions = flows.flows.partitions();
    // Each worker's share is cut down to the groups it could contribute
    // to the list as it is merged, so the ranks held stay in proportion to
    // the list, not to the groups (the first of all is the first of the
    // firsts of each share).
    let (mut counts, mut ranks, mut omitted, failed_starts) = (partitions.par_iter())
        .zip(&retired_by_partition)
        .map(|(partition, retired_here)| {
            let mut counts = SynCounts::default();
            let mut tallies: FxHashMap<GroupKey, u64> = FxHashMap::default();
            let mut starts = Histogram::default();
            crate::ops::step(partition.len());
            for (key, flow) in partition {
                let Some((flow_counts, outcome)) = finding(key, flow) else {
                    continue;
                };
                counts.add(&flow_counts);
                if let Some((outcome, _)) = outcome {
                    *tallies.entry(group_key(key, flow, outcome)).or_default() += 1;
                    if outcome.severity() == Severity::Failure {
                        starts.add(flow.first_ts, 1);
                    }
                }
            }
            for (key, group) in retired_here {
                *tallies.entry(**key).or_default() += group.flows;
            }
            let mut ranks: Vec<Rank> = (tallies.into_iter())
                .map(|(key, flows)| Rank {
                    severity: key.2.severity(),
                    flows,
                    key,
                })
                .collect();
            let mut omitted = OmittedByOutcome::new();
            keep_first(&mut ranks, MAX_GROUPS, &mut omitted);
            (counts, ranks, omitted, starts)
        })
        .reduce(
            || {
                (
                    SynCounts::default(),
                    Vec::new(),
                    OmittedByOutcome::new(),
                    Histogram::default(),
                )
            },
            |(mut counts, mut ranks, mut omitted, mut starts), (c, r, o, s)| {
                counts.add(&c);
                ranks.extend(r);
                starts.merge(s);
                for (outcome, o) in o {
                    let into = omitted.entry(outcome).or_default();
                    into.groups += o.groups;
                    into.flows += o.flows;
                }
                keep_first(&mut ranks, MAX_GROUPS, &mut omitted);
                (counts, ranks, omitted, starts)
            },
        );
    counts.add(&retired.counts);
    for (outcome, o) in &retired.overflow {
        omitted.entry(*outcome).or_default().flows += o.flows;
    }
    keep_first(&mut ranks, MAX_GROUPS, &mut omitted);
    let listed: FxHashSet<GroupKey> = ranks.iter().map(|r| r.key).collect();
    let mut groups: Vec<SynGroup> = (partitions.par_iter())
        .zip(&retired_by_partition)
        .flat_map_iter(|(partition, retired_here)| {
            let mut items: FxHashMap<GroupKey, Vec<SynFlow>> = FxHashMap::default();
            crate::ops::step(partition.len());
            for (key, flow) in partition {
                let Some((_, Some((outcome, judgment)))) = finding(key, flow) else {
                    continue;
                };
                let group = group_key(key, flow, outcome);
                if listed.contains(&group) {
                    let item = syn_flow(key, flow, outcome, &judgment, context);
                    items.entry(group).or_default().push(item);
                }
            }
            let mut groups: FxHashMap<GroupKey, SynGroup> = (items.into_iter())
                .map(|((source, destination, outcome), items)| {
                    let key = (source, destination, outcome);
                    (key, group(source, destination, outcome, items))
                })
                .collect();
            for (key, r) in retired_here.iter().filter(|(key, _)| listed.contains(*key)) {
                let g = groups.entry(**key).or_insert_with(|| {
                    let mut g = group(key.0, key.1, key.2, Vec::new());
                    g.first = r.first.unwrap_or_default();
                    g.last = r.last;
                    g
                });
                g.first = g.first.min(r.first.unwrap_or(g.first));
                g.last = g.last.max(r.last);
                r.add_into(g);
            }
            groups.into_values()
        })
        .collect();
    groups.sort_unstable_by(|a, b| {
        (b.severity, b.flows)
            .cmp(&(a.severity, a.flows))
            .then_with(|| {
                (a.outcome, a.source, a.destination).cmp(&(b.outcome, b.source, b.destination))
            })
    });
    SynFindings {
        counts,
        groups,
        omitted,
        failed_starts,
    }
}

/// A SYN flow judged at `end`: what it adds to the counts, and its
/// outcome if it is not answered.
struct Judgment<'u> {
    counts: SynCounts,
    outcome: Option<SynOutcome>,
    quoted: Option<&'u UnreachableSeen>,
    last_syn: Timestamp,
}

/// None if `flow` is not a TCP flow whose initiator sent a SYN.
fn judge<'u>(
    key: &FlowKey,
    flow: &Flow,
    unreachables: &'u Unreachables,
    end: Option<Timestamp>,
    grace_ns: u64,
) -> Option<Judgment<'u>> {
    let (init, resp) = (flow.initiator_side(), flow.responder_side());
    if key.protocol != PROTO_TCP || init.syn == 0 {
        return None;
    }
    let mut counts = SynCounts {
        syn_flows: 1,
        syn_packets: u64::from(init.syn),
        ..SynCounts::default()
    };
    let last_syn = init.last_syn().unwrap_or(flow.first_ts);
    // Looked up only for flows neither answered nor refused: its only use.
    let mut quoted = None;
    let outcome = if resp.syn > 0 || resp.syn_ack > 0 {
        counts.answered += 1;
        None
    } else if resp.rst > 0 {
        counts.refused += 1;
        Some(SynOutcome::Refused)
    } else if let Some(seen) = (unreachables.by_quoted).get(&key.endpoints(flow.initiator())) {
        quoted = Some(seen);
        counts.unreachable += 1;
        Some(SynOutcome::Unreachable)
    } else if !old_enough(last_syn, end, grace_ns) {
        counts.inconclusive += 1;
        Some(SynOutcome::Inconclusive)
    } else {
        counts.unanswered += 1;
        if init.ack > 0 {
            counts.unanswered_with_initiator_data += 1;
        }
        Some(SynOutcome::Unanswered)
    };
    Some(Judgment {
        counts,
        outcome,
        quoted,
        last_syn,
    })
}

/// The evidence of a flow judged `outcome`.
fn syn_flow(
    key: &FlowKey,
    flow: &Flow,
    outcome: SynOutcome,
    judgment: &Judgment<'_>,
    context: &Context<'_>,
) -> SynFlow {
    let init = flow.initiator_side();
    SynFlow {
        syn_outcome: outcome,
        syn_packets: init.syn,
        retransmits: init.syn - 1,
        last_syn: judgment.last_syn,
        icmp: (judgment.quoted)
            .filter(|_| outcome == SynOutcome::Unreachable)
            .map(|q| IcmpEvidence {
                v6: q.v6,
                code: q.code,
                meaning: unreachable_meaning(q.v6, q.code),
                from: q.from,
                messages: q.count,
            }),
        initiator_gave_up: init.fin > 0 || init.rst > 0,
        initiator_sent_data: init.ack > 0,
        flow: FlowItem::new(key, flow, context),
    }
}

/// SYN flows judged when `--max-flows` evicted them, with what was known
/// then: their counts and groups, without the per-flow items.
#[derive(Debug, Clone, Default)]
pub struct Retired {
    counts: SynCounts,
    /// The `MAX_RETIRED_GROUPS` lowest keys: the same ones, each with all
    /// its flows, whatever order the flows are retired in (a key dropped
    /// from one part has that many lower ones in the whole).
    groups: BTreeMap<GroupKey, RetiredGroup>,
    /// Flows of the groups past those.
    overflow: OmittedByOutcome,
    /// SYN flows judged at eviction.
    pub judged: u64,
    /// Of those, flows whose last SYN was younger than the grace then.
    pub too_young: u64,
}

#[derive(Debug, Clone, Default)]
struct RetiredGroup {
    flows: u64,
    syn_packets: u64,
    retransmits: u64,
    first: Option<Timestamp>,
    last: Timestamp,
    /// Ascending, without repeats; in place for the usual one or two.
    ports: SmallVec<[u16; 2]>,
    /// The first unreachable's (flow start, code).
    icmp: Option<(Timestamp, u8)>,
    sent_data: u64,
}

impl RetiredGroup {
    fn merge(&mut self, other: RetiredGroup) {
        self.flows += other.flows;
        self.syn_packets += other.syn_packets;
        self.retransmits += other.retransmits;
        self.first = min_option(self.first, other.first);
        self.last = self.last.max(other.last);
        for port in other.ports {
            if let Err(at) = self.ports.binary_search(&port) {
                self.ports.insert(at, port);
            }
        }
        self.icmp = min_option(self.icmp, other.icmp);
        self.sent_data += other.sent_data;
    }

    /// Adds these flows' counts, ports and ICMP code to `g`'s.
    fn add_into(&self, g: &mut SynGroup) {
        g.flows += self.flows;
        g.evicted += self.flows;
        g.syn_packets += self.syn_packets;
        g.retransmits += self.retransmits;
        g.initiator_sent_data += self.sent_data;
        g.ports.extend(&self.ports);
        g.ports.sort_unstable();
        g.ports.dedup();
        if g.icmp_code.is_none() {
            g.icmp_code = self.icmp.map(|(_, code)| code);
        }
    }
}

impl Retired {
    /// Judges an evicted flow at `now` (the latest record read so far).
    pub fn retire(
        &mut self,
        key: &FlowKey,
        flow: &Flow,
        unreachables: &Unreachables,
        now: Option<Timestamp>,
        grace_ns: u64,
    ) {
        let Some(judgment) = judge(key, flow, unreachables, now, grace_ns) else {
            return;
        };
        self.judged += 1;
        self.counts.add(&judgment.counts);
        let Some(outcome) = judgment.outcome else {
            return;
        };
        self.too_young += u64::from(outcome == SynOutcome::Inconclusive);
        let (initiator, responder) = key.endpoints(flow.initiator());
        let syn = u64::from(flow.initiator_side().syn);
        let group = RetiredGroup {
            flows: 1,
            syn_packets: syn,
            retransmits: syn - 1,
            first: Some(flow.first_ts),
            last: flow.last_ts,
            ports: smallvec::smallvec![responder.port],
            icmp: (judgment.quoted)
                .filter(|_| outcome == SynOutcome::Unreachable)
                .map(|q| (flow.first_ts, q.code)),
            sent_data: u64::from(flow.initiator_side().ack > 0),
        };
        let key = (initiator.addr, responder.addr, outcome);
        self.add_group(key, group);
    }

    fn add_group(&mut self, key: GroupKey, group: RetiredGroup) {
        if self.groups.len() >= MAX_RETIRED_GROUPS && !self.groups.contains_key(&key) {
            if self
                .groups
                .last_key_value()
                .is_some_and(|(last, _)| *last < key)
            {
                self.overflow.entry(key.2).or_default().flows += group.flows;
                return;
            }
            if let Some((gone_key, gone)) = self.groups.pop_last() {
                self.overflow.entry(gone_key.2).or_default().flows += gone.flows;
            }
        }
        self.groups.entry(key).or_default().merge(group);
    }

    /// Associative and commutative; folds the smaller into the larger.
    pub fn merge(mut self, mut other: Retired) -> Retired {
        if self.groups.len() < other.groups.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.counts.add(&other.counts);
        for (key, group) in other.groups {
            self.add_group(key, group);
        }
        for (outcome, o) in other.overflow {
            self.overflow.entry(outcome).or_default().flows += o.flows;
        }
        self.judged += other.judged;
        self.too_young += other.too_young;
        self
    }
}

fn group(
    source: IpAddr,
    destination: IpAddr,
    outcome: SynOutcome,
    mut items: Vec<SynFlow>,
) -> SynGroup {
    items.sort_by_key(|i| (i.flow.first, i.flow.initiator, i.flow.responder));
    let listed = items.len().min(MAX_ITEMS);
    let mut ports: Vec<u16> = items.iter().map(|i| i.flow.responder.port).collect();
    ports.sort_unstable();
    ports.dedup();
    SynGroup {
        source,
        destination,
        outcome,
        severity: outcome.severity(),
        ports,
        flows: items.len() as u64,
        syn_packets: items.iter().map(|i| u64::from(i.syn_packets)).sum(),
        retransmits: items.iter().map(|i| u64::from(i.retransmits)).sum(),
        first: items.iter().map(|i| i.flow.first).min().unwrap_or_default(),
        last: items.iter().map(|i| i.flow.last).max().unwrap_or_default(),
        icmp_code: items.iter().find_map(|i| i.icmp.map(|e| e.code)),
        initiator_sent_data: items.iter().filter(|i| i.initiator_sent_data).count() as u64,
        evicted: 0,
        items_omitted: (items.len() - listed) as u64,
        items: {
            items.truncate(listed);
            items
        },
    }
}

/// RFC 792 / RFC 4443 names of destination-unreachable codes.
pub fn unreachable_meaning(v6: bool, code: u8) -> &'static str {
    match (v6, code) {
        (false, 0) => "net unreachable",
        (false, 1) => "host unreachable",
        (false, 2) => "protocol unreachable",
        (false, 3) => "port unreachable",
        (false, 4) => "fragmentation needed",
        (false, 5) => "source route failed",
        (false, 6) => "destination network unknown",
        (false, 7) => "destination host unknown",
        (false, 9) | (false, 10) | (false, 13) => "administratively prohibited",
        (false, 11) | (false, 12) => "unreachable for type of service",
        (true, 0) => "no route to destination",
        (true, 1) => "administratively prohibited",
        (true, 2) => "beyond scope of source address",
        (true, 3) => "address unreachable",
        (true, 4) => "port unreachable",
        (true, 5) => "source address failed policy",
        (true, 6) => "reject route to destination",
        _ => "unreachable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::Traffic;

    const POD: &str = "10.42.1.5:40000";

    /// The outcome of the one SYN flow to `dst`, and its severity.
    fn outcome(findings: &crate::detect::Findings, dst: &str) -> Option<(SynOutcome, Severity)> {
        let dst: std::net::SocketAddr = dst.parse().unwrap();
        let groups = &findings.tcp_syns.groups;
        let group = groups.iter().find(|g| g.destination == dst.ip())?;
        Some((group.outcome, group.severity))
    }

    #[test]
    fn each_outcome_of_a_syn() {
        let mut t = Traffic::default();
        t.syn(0, POD, "1.1.1.1:443").syn(1000, POD, "1.1.1.1:443");
        t.syn(0, "10.42.1.5:40001", "8.8.8.8:443")
            .syn_ack(12, "8.8.8.8:443", "10.42.1.5:40001");
        t.syn(0, "10.42.1.5:40002", "9.9.9.9:80")
            .rst(12, "9.9.9.9:80", "10.42.1.5:40002");
        // Younger than the 3 s grace at capture end (10 s).
        t.syn(8_000, "10.42.1.5:40003", "4.4.4.4:443");
        t.udp(10_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        let findings = t.findings();
        assert_eq!(
            outcome(&findings, "1.1.1.1:443"),
            Some((SynOutcome::Unanswered, Severity::Failure))
        );
        assert_eq!(
            outcome(&findings, "8.8.8.8:443"),
            None,
            "answered: no group"
        );
        assert_eq!(
            outcome(&findings, "9.9.9.9:80"),
            Some((SynOutcome::Refused, Severity::Warning))
        );
        assert_eq!(
            outcome(&findings, "4.4.4.4:443"),
            Some((SynOutcome::Inconclusive, Severity::Info))
        );
        let c = &findings.tcp_syns.counts;
        assert_eq!((c.syn_flows, c.answered, c.unanswered), (4, 1, 1));
        assert_eq!((c.refused, c.inconclusive, c.syn_packets), (1, 1, 5));
        let unanswered = &findings.tcp_syns.groups[0];
        assert_eq!((unanswered.syn_packets, unanswered.retransmits), (2, 1));
    }

    #[test]
    fn a_syn_exactly_the_grace_old_is_judged() {
        let mut t = Traffic::default();
        t.syn(0, POD, "1.1.1.1:443");
        t.udp(3_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        assert_eq!(
            outcome(&t.findings(), "1.1.1.1:443"),
            Some((SynOutcome::Unanswered, Severity::Failure))
        );
        let mut t = Traffic::default();
        t.syn(1, POD, "1.1.1.1:443");
        t.udp(3_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        assert_eq!(
            outcome(&t.findings(), "1.1.1.1:443"),
            Some((SynOutcome::Inconclusive, Severity::Info))
        );
    }
}
