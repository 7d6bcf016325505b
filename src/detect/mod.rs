//! The detectors. Per-chunk state is gathered by `Observations::observe`
//! and merged associatively (`Observations::merge`); findings are computed
//! once from the merged state, so they never depend on chunking or threads.
//!
//! Each detector owns its module: `egress` (pod traffic leaving without
//! SNAT), `syn` (unanswered, refused, unreachable SYNs), `dns` (timeouts,
//! rcodes, unsolicited responses), `service` (ClusterIPs on the wire);
//! `verdict` correlates their findings into ranked causes.

pub mod brief;
pub mod dns;
pub mod egress;
mod item;
pub mod service;
pub mod syn;
#[cfg(test)]
mod testing;
pub mod verdict;

pub use brief::{Brief, BriefBuilder, FindingSet};
pub use item::{CrossingItem, CrossingItems, FlowItem};

use crate::flow::FlowTable;
use crate::interface::InterfaceNames;
use crate::observe::{Seen, Settle};
use crate::time::Timestamp;
use crate::topology::Topology;
use serde::Serialize;

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

/// What `--max-flows` evicted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    pub flows: u64,
    pub pairs: u64,
    pub dns_keys: u64,
}

/// Everything the detectors keep per chunk.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub flows: FlowTable,
    pub unreachables: syn::Unreachables,
    pub dns: dns::DnsLog,
    pub evicted: Evicted,
    /// `--max-flows`, as last observed: for `settle`.
    limit: Option<usize>,
}

impl Observations {
    pub fn observe(&mut self, seen: &Seen<'_>, settings: &Settings) {
        self.flows.observe(seen);
        self.limit = settings.max_flows;
        if seen.duplicate {
            return; // its first copy was observed already
        }
        self.unreachables.observe(&seen.record, &seen.packet);
        self.dns
            .observe(&seen.record, &seen.packet, &settings.dns_ports);
    }

    /// Evicts the flows and DNS keys idle longest down to 90% of `max`
    /// once either table is over it (the slack spares an eviction pass per
    /// new flow). Done when the state settles, after each window of
    /// chunks, whose bounds do not depend on threads.
    fn bound(&mut self, max: usize) {
        let keep = max - max / 10;
        if self.flows.flows.len() > max || self.flows.pairs.len() > max {
            let (flows, pairs) = self.flows.evict_idle(keep);
            self.evicted.flows += flows;
            self.evicted.pairs += pairs;
        }
        if self.dns.keys() > max {
            self.evicted.dns_keys += self.dns.evict_idle(keep);
        }
    }

    /// Associative and commutative, like each part.
    pub fn merge(self, other: Observations) -> Observations {
        Observations {
            flows: self.flows.merge(other.flows),
            unreachables: self.unreachables.merge(other.unreachables),
            dns: self.dns.merge(other.dns),
            evicted: Evicted {
                flows: self.evicted.flows + other.evicted.flows,
                pairs: self.evicted.pairs + other.evicted.pairs,
                dns_keys: self.evicted.dns_keys + other.evicted.dns_keys,
            },
            limit: self.limit.or(other.limit),
        }
    }
}

impl Settle for Observations {
    /// Applies the flow table's queued events and files the queued DNS
    /// messages, then bounds the tables (`--max-flows`).
    fn settle(&mut self) {
        rayon::join(|| self.flows.settle(), || self.dns.settle());
        if let Some(max) = self.limit {
            self.bound(max);
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

impl Findings {
    /// DNS messages move from the observations into the findings. The
    /// other detectors need the NAT pairs egress finds first; they then
    /// run beside the rest of egress.
    pub fn new(observations: &mut Observations, context: &Context<'_>) -> Findings {
        let capture_end = observations.flows.summary.last_ts;
        let dns = std::mem::take(&mut observations.dns);
        let (flows, unreachables) = (&observations.flows, &observations.unreachables);
        // A connection seen before and after NAT is counted once.
        let (egress, copies) = egress::scan(flows, context);
        // DNS first on the other side: it takes longest, and what it leaves
        // to steal is split finer.
        let (unmasqueraded_egress, (dns, (tcp_syns, service_vips))) = rayon::join(
            || egress.findings(context),
            || {
                rayon::join(
                    || dns::find(dns, capture_end, &copies, context),
                    || {
                        rayon::join(
                            || syn::find(flows, unreachables, capture_end, &copies, context),
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
