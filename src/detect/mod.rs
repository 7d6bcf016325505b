//! The detectors. Per-chunk state is gathered by `Observations::observe`
//! and merged associatively (`Observations::merge`); findings are computed
//! once from the merged state, so they never depend on chunking or threads.
//!
//! Each detector owns its module: `egress` (pod traffic leaving without
//! SNAT), `syn` (unanswered, refused, unreachable SYNs), `dns` (timeouts,
//! rcodes, unsolicited responses), `service` (ClusterIPs on the wire);
//! `verdict` correlates their findings into ranked causes.

pub mod brief;
mod dnat;
pub mod dns;
pub mod egress;
mod item;
pub mod service;
pub mod syn;
#[cfg(test)]
mod testing;
pub mod verdict;

pub use brief::{Brief, BriefBuilder, FindingSet};
pub use dns::MESSAGES_PER_KEY;
pub use item::{CrossingItem, CrossingItems, FlowItem};

use crate::flow::FlowTable;
use crate::interface::InterfaceNames;
use crate::observe::{Seen, Settle};
use crate::time::Timestamp;
use crate::topology::{AddrClass, Topology};
use rayon::prelude::*;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// How serious a finding is; `--fail-on` compares against it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Failure,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Failure => "failure",
        }
    }
}

/// Detector thresholds (the CLI's `--syn-grace`, `--dns-timeout`,
/// `--dns-port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Settings {
    /// A SYN younger than this at capture end is inconclusive (ns).
    pub syn_grace_ns: u64,
    /// A DNS response later than this after its query does not answer it (ns).
    pub dns_timeout_ns: u64,
    pub dns_ports: Vec<u16>,
    /// `--max-flows`: flows (and DNS query keys) kept at once; the ones
    /// idle longest are evicted beyond it. None: unbounded.
    #[serde(default)]
    pub max_flows: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            syn_grace_ns: 3 * Timestamp::NANOS_PER_SEC,
            dns_timeout_ns: 5 * Timestamp::NANOS_PER_SEC,
            dns_ports: vec![53],
            max_flows: None,
        }
    }
}

/// What `--max-flows` evicted, and what became of its evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Evicted {
    pub flows: u64,
    pub pairs: u64,
    pub dns_keys: u64,
    /// SYN flows and DNS query keys judged when evicted; they count in
    /// the findings' counts and groups, not in their items.
    pub judged_syn_flows: u64,
    pub judged_dns_keys: u64,
    /// Of those, entries too young to judge then (a SYN younger than the
    /// grace, a query younger than the timeout): evidence lost.
    pub too_young: u64,
    /// Flows and address pairs the egress and ClusterIP checks needed
    /// (a pod and an external address, or a service address): evicted
    /// only when nothing else was left, and not judged by those checks.
    pub unjudged: u64,
    /// ICMP unreachables forgotten because the flow they quote was not in
    /// the table any more (an ICMP flood past the limit).
    pub icmp_unreachables: u64,
}

impl Evicted {
    pub fn any(&self) -> bool {
        self.flows + self.pairs + self.dns_keys > 0
    }

    fn add(&mut self, other: &Evicted) {
        self.flows += other.flows;
        self.pairs += other.pairs;
        self.dns_keys += other.dns_keys;
        self.judged_syn_flows += other.judged_syn_flows;
        self.judged_dns_keys += other.judged_dns_keys;
        self.too_young += other.too_young;
        self.unjudged += other.unjudged;
        self.icmp_unreachables += other.icmp_unreachables;
    }
}

/// `--max-flows` and what eviction needs to judge what it evicts.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub max: usize,
    pub syn_grace_ns: u64,
    pub dns_timeout_ns: u64,
    /// To spare the flows the egress and ClusterIP checks need.
    pub topology: Topology,
}

impl Bounds {
    /// None without `--max-flows`.
    pub fn new(settings: &Settings, topology: &Topology) -> Option<Arc<Bounds>> {
        settings.max_flows.map(|max| {
            Arc::new(Bounds {
                max,
                syn_grace_ns: settings.syn_grace_ns,
                dns_timeout_ns: settings.dns_timeout_ns,
                topology: topology.clone(),
            })
        })
    }

    /// Traffic between these addresses is evidence the egress or ClusterIP
    /// checks judge at the end only.
    fn needed(&self, a: IpAddr, b: IpAddr) -> bool {
        let (a, b) = (self.topology.classify(a), self.topology.classify(b));
        let pod_and_external = matches!(
            (a, b),
            (AddrClass::Pod, AddrClass::External) | (AddrClass::External, AddrClass::Pod)
        );
        pod_and_external || a == AddrClass::Service || b == AddrClass::Service
    }
}

/// Everything the detectors keep per chunk.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub flows: FlowTable,
    pub unreachables: syn::Unreachables,
    pub dns: dns::DnsLog,
    /// What `bound` evicted; what was judged of it is in `retired_syns`
    /// and the DNS log (`evicted()` has it all).
    evicted: Evicted,
    /// SYN flows judged at eviction.
    pub retired_syns: syn::Retired,
    /// `--max-flows`, as last observed: for `settle`.
    bounds: Option<Arc<Bounds>>,
}

impl Observations {
    pub fn observe(&mut self, seen: &Seen<'_>, settings: &Settings, bounds: &Option<Arc<Bounds>>) {
        self.flows.observe(seen);
        if self.bounds.is_none() && bounds.is_some() {
            self.bounds.clone_from(bounds);
        }
        if seen.duplicate {
            return; // its first copy was observed already
        }
        self.unreachables.observe(&seen.record, &seen.packet);
        self.dns
            .observe(&seen.record, &seen.packet, &settings.dns_ports);
    }

    /// What `--max-flows` evicted, and what was judged of it.
    pub fn evicted(&self) -> Evicted {
        let (judged_dns_keys, young_dns_keys) = self.dns.retired();
        Evicted {
            judged_syn_flows: self.retired_syns.judged,
            judged_dns_keys,
            too_young: self.retired_syns.too_young + young_dns_keys,
            ..self.evicted
        }
    }

    /// Evicts the flows and DNS keys idle longest down to 90% of `max`
    /// once either table is over it (the slack spares an eviction pass per
    /// new flow), judging what goes with what is known by now. Done when
    /// the state settles, after each window of chunks, whose bounds do not
    /// depend on threads.
    fn bound(&mut self, bounds: &Bounds) {
        let (max, keep) = (bounds.max, bounds.max - bounds.max / 10);
        let now = self.flows.summary.last_ts;
        if self.flows.flows.len() > max || self.flows.pairs.len() > max {
            let needed = |a, b| bounds.needed(a, b);
            let (flows, pairs) = self.flows.evict_idle(keep, needed);
            let unreachables = &self.unreachables;
            let retired = (flows.par_iter())
                .map(|partition| {
                    let mut retired = syn::Retired::default();
                    for (key, flow) in partition {
                        retired.retire(key, flow, unreachables, now, bounds.syn_grace_ns);
                    }
                    retired
                })
                .reduce(syn::Retired::default, syn::Retired::merge);
            let evicted_flows: usize = flows.iter().map(Vec::len).sum();
            let unjudged = (flows
                .par_iter()
                .flatten()
                .map(|(k, _)| (k.lo.addr, k.hi.addr)))
            .chain(pairs.par_iter().copied())
            .filter(|&(a, b)| needed(a, b))
            .count() as u64;
            let e = &mut self.evicted;
            e.flows += evicted_flows as u64;
            e.pairs += pairs.len() as u64;
            e.unjudged += unjudged;
            self.retired_syns = std::mem::take(&mut self.retired_syns).merge(retired);
        }
        if self.unreachables.len() > max {
            self.evicted.icmp_unreachables += self.unreachables.keep_for(&self.flows);
        }
        if self.dns.keys() > max {
            self.evicted.dns_keys += self.dns.evict_idle(keep, now, bounds.dns_timeout_ns);
        }
    }

    /// Associative and commutative, like each part.
    pub fn merge(self, other: Observations) -> Observations {
        let mut evicted = self.evicted;
        evicted.add(&other.evicted);
        Observations {
            flows: self.flows.merge(other.flows),
            unreachables: self.unreachables.merge(other.unreachables),
            dns: self.dns.merge(other.dns),
            evicted,
            retired_syns: self.retired_syns.merge(other.retired_syns),
            bounds: self.bounds.or(other.bounds),
        }
    }
}

impl Settle for Observations {
    /// Applies the flow table's queued events and files the queued DNS
    /// messages, then bounds the tables (`--max-flows`).
    fn settle(&mut self) {
        rayon::join(|| self.flows.settle(), || self.dns.settle(false));
        if let Some(bounds) = self.bounds.clone() {
            self.bound(&bounds);
        }
    }

    /// `settle`, with every TCP DNS stream that holds many bytes filed,
    /// including those whose start the capture did not see.
    fn settle_whole(&mut self) {
        rayon::join(|| self.flows.settle(), || self.dns.settle(true));
        if let Some(bounds) = self.bounds.clone() {
            self.bound(&bounds);
        }
    }
}

/// What the detectors need besides the observations.
pub struct Context<'a> {
    pub topology: &'a Topology,
    pub settings: &'a Settings,
    /// Interface names (pcapng `if_name`, `--ifname`), for evidence.
    pub interfaces: &'a InterfaceNames,
    pub evidence: Evidence,
}

/// How much evidence findings list. The lists the verdict reads (SYN
/// flows, timed-out and unsolicited DNS queries, service flows) are
/// always whole; the others only JSON and NDJSON show whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Every item: what JSON and NDJSON reports list.
    All,
    /// What a table shows, and all a scan or a diff needs: the first flow
    /// of each pod egress group, and none of the queries DNS rcodes
    /// answered (tables count them): a storm has hundreds of thousands of
    /// each, which a table would build only to drop.
    Brief,
}

#[derive(Debug, Serialize)]
pub struct Findings {
    pub unmasqueraded_egress: egress::EgressFindings,
    pub tcp_syns: syn::SynFindings,
    pub dns: dns::DnsFindings,
    pub service_vips: service::ServiceFindings,
}

/// Largest first-packet time difference between a flow before NAT (SNAT,
/// DNAT) and its copy after: one packet crossing two devices of a node,
/// stamped by one kernel microseconds apart (milliseconds when queues are
/// long). A wider window pairs coincidences: on a busy node's NIC, a pod's
/// DNS query and one of the node's to the same resolver with the same
/// random id and name (one in 65 536 per pair of queries), which made a
/// single-NIC capture where no pod is masqueraded say that SNAT happens
/// for some.
pub(crate) const NAT_PAIR_WINDOW_NS: u64 = 10_000_000;

impl Findings {
    /// DNS messages move from the observations into the findings. The
    /// other detectors need the NAT pairs egress finds first; they then
    /// run beside the rest of egress.
    pub fn new(observations: &mut Observations, context: &Context<'_>) -> Findings {
        let capture_end = observations.flows.summary.last_ts;
        let dns = std::mem::take(&mut observations.dns);
        let (flows, unreachables) = (&observations.flows, &observations.unreachables);
        // A connection seen before and after NAT is counted once.
        let (egress, mut copies) = egress::scan(flows, context);
        copies.extend(dnat::post_dnat_copies(flows, context));
        // DNS first on the other side: it takes longest, and what it leaves
        // to steal is split finer.
        let (unmasqueraded_egress, (dns, (tcp_syns, service_vips))) = rayon::join(
            || egress.findings(context),
            || {
                rayon::join(
                    || dns::find(dns, capture_end, &copies, context),
                    || {
                        rayon::join(
                            || {
                                let retired = &observations.retired_syns;
                                syn::find(
                                    flows,
                                    unreachables,
                                    retired,
                                    capture_end,
                                    &copies,
                                    context,
                                )
                            },
                            || service::find(flows, context),
                        )
                    },
                )
            },
        );
        Findings {
            unmasqueraded_egress,
            tcp_syns,
            dns,
            service_vips,
        }
    }

    /// Every detector's findings: where a new finding type is added.
    fn sets(&self) -> [&dyn FindingSet; 4] {
        [
            &self.unmasqueraded_egress,
            &self.tcp_syns,
            &self.dns,
            &self.service_vips,
        ]
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.sets().into_iter().filter_map(|s| s.worst()).max()
    }

    /// Counts and subjects of every finding (what a scan keeps).
    pub fn brief(&self) -> Brief {
        let mut brief = BriefBuilder::default();
        for set in self.sets() {
            set.brief(&mut brief);
        }
        brief.finish()
    }
}

/// `a` is at least `grace` before `end`; the boundary itself counts as old
/// enough (an age of exactly 3.000 s is not inconclusive).
pub(crate) fn old_enough(ts: Timestamp, end: Option<Timestamp>, grace_ns: u64) -> bool {
    match end {
        Some(end) => end.since(ts) >= grace_ns,
        None => true,
    }
}
