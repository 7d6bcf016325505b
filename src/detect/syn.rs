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
use crate::flow::{merge_maps, min_option, Endpoint, Flow, FlowKey, FlowTable};
use crate::time::Timestamp;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use smallvec::SmallVec;
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
    pub items: Vec<SynFlow>,
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
    /// Ordered by severity, then flows, then addresses.
    pub groups: Vec<SynGroup>,
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

/// Partitions of the flow table are judged in parallel: a group's flows
/// share both addresses, so they share a partition.
pub fn find(
    flows: &FlowTable,
    unreachables: &Unreachables,
    retired: &Retired,
    capture_end: Option<Timestamp>,
    post_nat_copies: &FxHashSet<FlowKey>,
    context: &Context<'_>,
) -> SynFindings {
    let judged: Vec<(SynCounts, Vec<SynGroup>)> = (flows.flows.partitions().par_iter())
        .map(|partition| {
            let judge = |(key, flow)| {
                judge_flow(
                    key,
                    flow,
                    unreachables,
                    capture_end,
                    post_nat_copies,
                    context,
                )
            };
            let mut counts = SynCounts::default();
            let mut groups: FxHashMap<(IpAddr, IpAddr, SynOutcome), Vec<SynFlow>> =
                FxHashMap::default();
            for (flow_counts, syn_flow) in partition.iter().filter_map(judge) {
                counts.add(&flow_counts);
                if let Some(syn_flow) = syn_flow {
                    let (source, destination) =
                        (syn_flow.flow.initiator.addr, syn_flow.flow.responder.addr);
                    (groups.entry((source, destination, syn_flow.syn_outcome)))
                        .or_default()
                        .push(syn_flow);
                }
            }
            let groups = groups
                .into_iter()
                .map(|((source, destination, outcome), items)| {
                    group(source, destination, outcome, items)
                })
                .collect();
            (counts, groups)
        })
        .collect();
    let mut counts = SynCounts::default();
    let mut groups = Vec::with_capacity(judged.iter().map(|(_, g)| g.len()).sum());
    for (partition_counts, partition_groups) in judged {
        counts.add(&partition_counts);
        groups.extend(partition_groups);
    }
    retired.add_to(&mut counts, &mut groups);
    groups.sort_unstable_by(|a, b| {
        (b.severity, b.flows)
            .cmp(&(a.severity, a.flows))
            .then_with(|| {
                (a.outcome, a.source, a.destination).cmp(&(b.outcome, b.source, b.destination))
            })
    });
    SynFindings { counts, groups }
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
    let quoted = unreachables.by_quoted.get(&key.endpoints(flow.initiator()));
    let last_syn = init.last_syn().unwrap_or(flow.first_ts);
    let outcome = if resp.syn > 0 || resp.syn_ack > 0 {
        counts.answered += 1;
        None
    } else if resp.rst > 0 {
        counts.refused += 1;
        Some(SynOutcome::Refused)
    } else if quoted.is_some() {
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

/// What one flow adds to the counts, and its evidence if it is a finding;
/// None if it is not a TCP flow whose initiator sent a SYN.
fn judge_flow(
    key: &FlowKey,
    flow: &Flow,
    unreachables: &Unreachables,
    capture_end: Option<Timestamp>,
    post_nat_copies: &FxHashSet<FlowKey>,
    context: &Context<'_>,
) -> Option<(SynCounts, Option<SynFlow>)> {
    let grace = context.settings.syn_grace_ns;
    let judgment = judge(key, flow, unreachables, capture_end, grace)?;
    if post_nat_copies.contains(key) {
        let counts = SynCounts {
            post_nat_copies: 1,
            ..SynCounts::default()
        };
        return Some((counts, None));
    }
    let Some(outcome) = judgment.outcome else {
        return Some((judgment.counts, None));
    };
    let init = flow.initiator_side();
    let syn_flow = SynFlow {
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
    };
    Some((judgment.counts, Some(syn_flow)))
}

/// SYN flows judged when `--max-flows` evicted them, with what was known
/// then: their counts and groups, without the per-flow items.
#[derive(Debug, Clone, Default)]
pub struct Retired {
    counts: SynCounts,
    groups: FxHashMap<(IpAddr, IpAddr, SynOutcome), RetiredGroup>,
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
        (self.groups.entry((initiator.addr, responder.addr, outcome)))
            .or_default()
            .merge(group);
    }

    /// Associative and commutative; folds the smaller into the larger.
    pub fn merge(mut self, mut other: Retired) -> Retired {
        if self.groups.len() < other.groups.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.counts.add(&other.counts);
        merge_maps(&mut self.groups, other.groups, RetiredGroup::merge);
        self.judged += other.judged;
        self.too_young += other.too_young;
        self
    }

    /// Adds the retired flows to the counts and groups of the rest.
    fn add_to(&self, counts: &mut SynCounts, groups: &mut Vec<SynGroup>) {
        if self.groups.is_empty() && self.judged == 0 {
            return;
        }
        counts.add(&self.counts);
        let at: FxHashMap<(IpAddr, IpAddr, SynOutcome), usize> = (groups.iter().enumerate())
            .map(|(i, g)| ((g.source, g.destination, g.outcome), i))
            .collect();
        for (&(source, destination, outcome), r) in &self.groups {
            let Some(&i) = at.get(&(source, destination, outcome)) else {
                let mut g = group(source, destination, outcome, Vec::new());
                g.first = r.first.unwrap_or_default();
                g.last = r.last;
                r.add_into(&mut g);
                groups.push(g);
                continue;
            };
            let g = &mut groups[i];
            g.first = g.first.min(r.first.unwrap_or(g.first));
            g.last = g.last.max(r.last);
            r.add_into(g);
        }
    }
}

fn group(
    source: IpAddr,
    destination: IpAddr,
    outcome: SynOutcome,
    mut items: Vec<SynFlow>,
) -> SynGroup {
    items.sort_by_key(|i| (i.flow.first, i.flow.initiator, i.flow.responder));
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
        items,
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
