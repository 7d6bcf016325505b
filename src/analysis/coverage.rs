//! What an analysis judged and what it did not: the ground a verdict
//! stands on. A verdict is CLEAN only if the detectors ran on the traffic
//! and found nothing; whatever kept them from it is `not_judged`, and
//! makes the verdict inconclusive (docs/findings.md, "Coverage").

use crate::capture::{CaptureInfo, Skipped};
use crate::detect::verdict::{plural, Unjudged};
use crate::detect::MESSAGES_PER_KEY;
use crate::detect::{Evicted, Findings, Observations, Settings};
use crate::flow::{Flow, FlowKey, MAX_CROSSINGS};
use crate::topology::{AddrClass, Topology};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// One detector: whether it ran, and why not.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorRun {
    pub detector: &'static str,
    pub ran: bool,
    /// Why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off: Option<String>,
    /// The check in words, and what would turn it on.
    #[serde(skip)]
    check: &'static str,
    #[serde(skip)]
    hint: &'static str,
}

/// An interface whose packets could not be decoded.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadInterface {
    pub id: u32,
    pub name: Option<String>,
    pub reason: String,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Records read, copies on a second interface included.
    pub packets: u64,
    /// IP packets the detectors judged (a packet seen twice counts once).
    pub ip_packets: u64,
    /// Frames without IP (ARP, LLDP, ...).
    pub non_ip_packets: u64,
    /// Frames whose decoding stopped early or that kpcap cannot decode,
    /// by layer and reason ("link_unsupported", "ipv4_truncated").
    pub undecodable: BTreeMap<String, u64>,
    /// Packets sent from a pod address (flows kept at the end).
    pub pod_source_packets: u64,
    pub syn_flows: u64,
    pub dns_query_keys: u64,
    pub span_seconds: f64,
    /// Corrupt stretches skipped: rejected records and blocks.
    pub skipped: Skipped,
    pub unread_interfaces: Vec<UnreadInterface>,
    pub evicted: Evicted,
    /// What the bounds on a hostile capture left out.
    pub capped: Capped,
    pub detectors: Vec<DetectorRun>,
    /// What kept the verdict from judging everything; empty: nothing did.
    pub not_judged: Vec<String>,
    /// For each of `not_judged`, what would let kpcap judge it.
    #[serde(skip)]
    pub unjudged: Vec<Unjudged>,
}

/// What the bounds that keep memory and time in proportion to the capture
/// (docs/findings.md, "Bounds") left out, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capped {
    /// Flows seen on more interfaces than one flow records
    /// (`MAX_CROSSINGS`, the lowest-numbered kept).
    pub flows_over_interface_cap: u64,
    /// DNS messages past the first `MESSAGES_PER_KEY` of a query key.
    pub dns_messages: u64,
    /// TCP DNS payload bytes after bytes that are not DNS, or before a gap.
    pub tcp_dns_bytes: u64,
}

/// What coverage is computed from.
pub struct Ground<'a> {
    pub info: &'a CaptureInfo,
    pub observations: &'a Observations,
    /// `observations.evicted()`, taken before the findings took the DNS log.
    pub evicted: Evicted,
    pub findings: &'a Findings,
    pub topology: &'a Topology,
    pub settings: &'a Settings,
    pub span_seconds: f64,
    pub unread_interfaces: Vec<UnreadInterface>,
}

impl Coverage {
    pub fn new(ground: Ground<'_>) -> Coverage {
        let Ground {
            info,
            observations,
            evicted,
            findings,
            topology,
            settings,
            span_seconds,
            unread_interfaces,
        } = ground;
        let summary = &observations.flows.summary;
        let pod_source_packets = pod_source_packets(observations, topology);
        let detectors = vec![
            DetectorRun::new(
                "unmasqueraded_egress",
                topology.pod.is_empty().then_some("no pod CIDR"),
                "the unmasqueraded pod egress check",
                "give the cluster's pod CIDR (--pod-cidr) or a --preset",
            ),
            DetectorRun::new("tcp_syns", None, "the SYN check", ""),
            DetectorRun::new(
                "dns",
                settings.dns_ports.is_empty().then_some("no DNS port"),
                "the DNS check",
                "give --dns-port",
            ),
            DetectorRun::new(
                "service_vips",
                topology.service.is_empty().then_some("no service CIDR"),
                "the ClusterIP-on-the-wire check",
                "give the cluster's service CIDR (--service-cidr) or a --preset",
            ),
        ];
        let syns = &findings.tcp_syns.counts;
        let dns = &findings.dns.counts;
        let capped = Capped {
            flows_over_interface_cap: (observations.flows.flows.partitions().par_iter())
                .map(|p| p.values().filter(|f| f.crossings_capped).count() as u64)
                .sum(),
            dns_messages: findings.dns.capped.messages,
            tcp_dns_bytes: findings.dns.capped.tcp_bytes,
        };
        let mut coverage = Coverage {
            packets: summary.packets,
            ip_packets: summary.ip_packets,
            non_ip_packets: summary.non_ip.values().sum(),
            undecodable: summary
                .problems
                .iter()
                .map(|(k, v)| (k.label(), *v))
                .collect(),
            pod_source_packets,
            syn_flows: syns.syn_flows,
            dns_query_keys: dns.query_keys,
            span_seconds,
            skipped: info.skipped,
            unread_interfaces,
            evicted,
            capped,
            detectors,
            not_judged: Vec::new(),
            unjudged: Vec::new(),
        };
        coverage.unjudged = coverage.what_was_not_judged(findings, settings);
        coverage.not_judged = coverage.unjudged.iter().map(|u| u.what.clone()).collect();
        coverage
    }

    fn what_was_not_judged(&self, findings: &Findings, settings: &Settings) -> Vec<Unjudged> {
        let mut unjudged = Vec::new();
        let mut add = |what: String, hint: &str| {
            unjudged.push(Unjudged {
                what,
                hint: hint.to_string(),
            })
        };
        if self.ip_packets == 0 {
            let mut what = format!(
                "no IP packet was judged: {} read",
                plural(self.packets, "record", "records")
            );
            if self.skipped.stretches > 0 {
                what += &format!(
                    ", {} rejected in {} skipped",
                    plural(self.skipped.bytes, "byte", "bytes"),
                    plural(self.skipped.stretches, "stretch", "stretches")
                );
            }
            add(
                what,
                "check the capture filter and --interface, and that the file holds the \
                 incident's traffic",
            );
        }
        let unread: u64 = self.unread_interfaces.iter().map(|i| i.packets).sum();
        if unread > 0 {
            let names: Vec<String> = (self.unread_interfaces.iter())
                .filter(|i| i.packets > 0)
                .map(|i| match &i.name {
                    Some(name) => format!("{} ({name}): {}", i.id, i.reason),
                    None => format!("{}: {}", i.id, i.reason),
                })
                .collect();
            add(
                format!(
                    "{} on interfaces kpcap cannot read were not judged (interface {})",
                    plural(unread, "packet", "packets"),
                    names.join("; ")
                ),
                "capture on an Ethernet, raw IP or Linux cooked interface",
            );
        }
        for d in self.detectors.iter().filter(|d| !d.ran) {
            let off = d.off.as_deref().unwrap_or("off");
            add(format!("{off}: {} did not run", d.check), d.hint);
        }
        let e = &self.evicted;
        if e.too_young > 0 {
            add(
                format!(
                    "{} evicted by --max-flows were too young to judge then",
                    plural(
                        e.too_young,
                        "SYN flow or DNS query",
                        "SYN flows or DNS queries"
                    )
                ),
                "raise --max-flows",
            );
        }
        if e.unjudged > 0 {
            add(
                format!(
                    "{} with pod or service addresses evicted by --max-flows were not judged \
                     by the egress and ClusterIP checks",
                    plural(e.unjudged, "flow or address pair", "flows or address pairs")
                ),
                "raise --max-flows",
            );
        }
        let c = &self.capped;
        if c.flows_over_interface_cap > 0 {
            add(
                format!(
                    "{} seen on more than {MAX_CROSSINGS} interfaces: only the lowest-numbered \
                     {MAX_CROSSINGS} are recorded, so the egress view may miss where the rest went",
                    plural(c.flows_over_interface_cap, "flow was", "flows were"),
                ),
                "capture on the node's NICs (tcpdump -i ens19) rather than on every device",
            );
        }
        if c.dns_messages > 0 {
            add(
                format!(
                    "{} past the first {MESSAGES_PER_KEY} of their query key (same client, \
                     port, server and id) were not kept: those keys were judged on their first \
                     messages",
                    plural(c.dns_messages, "DNS message", "DNS messages"),
                ),
                "a client that repeats one query id and port this often is itself the fault",
            );
        }
        if c.tcp_dns_bytes > 0 {
            add(
                format!(
                    "{} of TCP DNS streams after bytes that are not DNS, or before a gap, were \
                     not read as messages",
                    plural(c.tcp_dns_bytes, "byte", "bytes"),
                ),
                "check that the port given to --dns-port carries DNS",
            );
        }
        let (syns, dns) = (&findings.tcp_syns.counts, &findings.dns.counts);
        let attempts = syns.syn_flows + dns.query_keys;
        let young = syns.inconclusive + dns.inconclusive;
        if attempts > 0 && young == attempts {
            add(
                format!(
                    "all {} were younger than --syn-grace ({} ms) or --dns-timeout ({} ms) at \
                     the end of a {:.3} s capture",
                    plural(
                        attempts,
                        "SYN flow and DNS query",
                        "SYN flows and DNS queries"
                    ),
                    settings.syn_grace_ns / 1_000_000,
                    settings.dns_timeout_ns / 1_000_000,
                    self.span_seconds
                ),
                "capture for longer than --syn-grace and --dns-timeout after the failure",
            );
        }
        unjudged
    }
}

impl DetectorRun {
    /// `off`: why it cannot run, if it cannot.
    fn new(
        detector: &'static str,
        off: Option<&str>,
        check: &'static str,
        hint: &'static str,
    ) -> DetectorRun {
        DetectorRun {
            detector,
            ran: off.is_none(),
            off: off.map(str::to_string),
            check,
            hint,
        }
    }
}

/// Packets sent from pod addresses, in the flows kept.
fn pod_source_packets(observations: &Observations, topology: &Topology) -> u64 {
    if topology.pod.is_empty() {
        return 0;
    }
    let is_pod = |addr| topology.classify(addr) == AddrClass::Pod;
    let sent = |(key, flow): (&FlowKey, &Flow)| {
        let lo = if is_pod(key.lo.addr) {
            flow.sides[0].packets
        } else {
            0
        };
        let hi = if is_pod(key.hi.addr) {
            flow.sides[1].packets
        } else {
            0
        };
        lo + hi
    };
    (observations.flows.flows.partitions().par_iter())
        .map(|partition| partition.iter().map(sent).sum::<u64>())
        .sum()
}
