//! A capture's analysis in brief: counts per finding, and each finding as
//! a (kind, subject) key with its severity and size. Small, comparable
//! across files and runs, and readable back from JSON: what a scan keeps
//! per file, what `kpcap merge` reads, what `kpcap diff` compares.

use crate::analysis::Outcome;
use crate::detect::syn::SynOutcome;
use crate::detect::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Subject: the pod source address.
    UnmasqueradedEgress,
    /// Subject: `source -> destination`.
    UnansweredSyn,
    UnreachableSyn,
    RefusedSyn,
    /// Subject: `client -> server`.
    DnsTimeout,
    /// Subject: `name rcode` (SERVFAIL, REFUSED, ...; not NXDOMAIN).
    DnsError,
    /// Subject: `source -> service VIP`.
    ServiceVip,
}

impl FindingKind {
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::UnmasqueradedEgress => "unmasqueraded egress",
            FindingKind::UnansweredSyn => "unanswered SYNs",
            FindingKind::UnreachableSyn => "unreachable SYNs",
            FindingKind::RefusedSyn => "refused SYNs",
            FindingKind::DnsTimeout => "DNS timeouts",
            FindingKind::DnsError => "DNS errors",
            FindingKind::ServiceVip => "ClusterIP on the wire",
        }
    }

    /// What `count` counts.
    pub fn unit(self) -> &'static str {
        match self {
            FindingKind::DnsTimeout => "queries",
            FindingKind::DnsError => "responses",
            _ => "flows",
        }
    }
}

/// One finding of one capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub subject: String,
    pub severity: Severity,
    /// Flows, queries or responses (`FindingKind::unit`).
    pub count: u64,
    /// What varies under the subject: destinations and ports of an
    /// egress, ports of SYNs, names of timed-out queries, servers.
    pub details: Vec<String>,
}

/// Counts per finding kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub unmasqueraded_flows: u64,
    pub unanswered_syns: u64,
    pub unreachable_syns: u64,
    pub refused_syns: u64,
    pub dns_timeouts: u64,
    pub dns_errors: u64,
    pub service_vip_flows: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.unmasqueraded_flows += other.unmasqueraded_flows;
        self.unanswered_syns += other.unanswered_syns;
        self.unreachable_syns += other.unreachable_syns;
        self.refused_syns += other.refused_syns;
        self.dns_timeouts += other.dns_timeouts;
        self.dns_errors += other.dns_errors;
        self.service_vip_flows += other.service_vip_flows;
    }

    /// (label, value) pairs in table order.
    pub fn labelled(&self) -> [(&'static str, u64); 7] {
        [
            ("unmasqueraded flows", self.unmasqueraded_flows),
            ("unanswered SYNs", self.unanswered_syns),
            ("unreachable SYNs", self.unreachable_syns),
            ("refused SYNs", self.refused_syns),
            ("DNS timeouts", self.dns_timeouts),
            ("DNS errors", self.dns_errors),
            ("ClusterIP flows", self.service_vip_flows),
        ]
    }
}

/// A capture's analysis in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub format: String,
    pub compression: Option<String>,
    pub bytes: u64,
    pub packets: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub duration_seconds: f64,
    pub counts: Counts,
    /// The most severe finding, if any.
    pub worst: Option<Severity>,
    /// The verdict's causes (ids), most likely first.
    pub causes: Vec<String>,
    /// Findings at warning or failure severity, by kind and subject.
    pub findings: Vec<Finding>,
    /// Pods seen both before and after SNAT: what each was translated to.
    pub masqueraded: BTreeMap<IpAddr, Vec<IpAddr>>,
    pub warnings: Vec<String>,
}

/// Subjects of one kind while a digest is built: severity, count, details.
type Tally = BTreeMap<String, (Severity, u64, BTreeSet<String>)>;

fn tally(tally: &mut Tally, subject: String, severity: Severity, count: u64, detail: String) {
    let entry = tally
        .entry(subject)
        .or_insert((severity, 0, BTreeSet::new()));
    entry.0 = entry.0.max(severity);
    entry.1 += count;
    entry.2.insert(detail);
}

impl Digest {
    pub fn of(report: &Outcome) -> Digest {
        let header = &report.header;
        let f = &report.findings;
        let mut kinds: BTreeMap<FindingKind, Tally> = BTreeMap::new();
        let mut counts = Counts::default();

        for g in &f.unmasqueraded_egress.groups {
            counts.unmasqueraded_flows += g.flows;
            let detail = format!("{} {}/{}", g.destination, g.protocol, g.port);
            let t = kinds.entry(FindingKind::UnmasqueradedEgress).or_default();
            tally(t, g.pod.to_string(), g.severity, g.flows, detail);
        }
        let syn = &f.tcp_syns.counts;
        counts.unanswered_syns = syn.unanswered;
        counts.unreachable_syns = syn.unreachable;
        counts.refused_syns = syn.refused;
        for g in &f.tcp_syns.groups {
            let kind = match g.outcome {
                SynOutcome::Unanswered => FindingKind::UnansweredSyn,
                SynOutcome::Unreachable => FindingKind::UnreachableSyn,
                SynOutcome::Refused => FindingKind::RefusedSyn,
                SynOutcome::Inconclusive => continue,
            };
            let subject = format!("{} -> {}", g.source, g.destination);
            let ports = g.ports.iter().map(|p| format!("tcp/{p}"));
            let t = kinds.entry(kind).or_default();
            for (i, port) in ports.enumerate() {
                // The flows count once, with the first port.
                let flows = if i == 0 { g.flows } else { 0 };
                tally(t, subject.clone(), g.severity, flows, port);
            }
        }
        counts.dns_timeouts = f.dns.counts.timed_out;
        for g in &f.dns.groups {
            if g.severity < Severity::Warning {
                continue;
            }
            let subject = format!("{} -> {}", g.client, g.server);
            let t = kinds.entry(FindingKind::DnsTimeout).or_default();
            for (i, name) in g.names.iter().enumerate() {
                let count = if i == 0 { g.count } else { 0 };
                tally(t, subject.clone(), g.severity, count, name.clone());
            }
            if g.names.is_empty() {
                tally(t, subject, g.severity, g.count, "(no name)".into());
            }
        }
        for r in &f.dns.rcodes {
            if r.severity < Severity::Warning {
                continue;
            }
            counts.dns_errors += r.responses;
            let subject = format!("{} {}", r.name, r.rcode);
            let t = kinds.entry(FindingKind::DnsError).or_default();
            for (i, server) in r.servers.iter().enumerate() {
                let count = if i == 0 { r.responses } else { 0 };
                tally(t, subject.clone(), r.severity, count, server.to_string());
            }
        }
        for g in &f.service_vips.groups {
            counts.service_vip_flows += g.flows;
            let subject = format!("{} -> {}", g.source, g.service);
            let t = kinds.entry(FindingKind::ServiceVip).or_default();
            for (i, port) in g.ports.iter().enumerate() {
                let flows = if i == 0 { g.flows } else { 0 };
                tally(t, subject.clone(), g.severity, flows, port.clone());
            }
        }

        let findings = kinds
            .into_iter()
            .flat_map(|(kind, subjects)| {
                subjects
                    .into_iter()
                    .filter(|(_, (severity, _, _))| *severity >= Severity::Warning)
                    .map(move |(subject, (severity, count, details))| Finding {
                        kind,
                        subject,
                        severity,
                        count,
                        details: details.into_iter().collect(),
                    })
            })
            .collect();
        let masqueraded = f
            .unmasqueraded_egress
            .contrast
            .masqueraded_pods
            .iter()
            .map(|m| (m.pod, m.translated_to.clone()))
            .collect();
        Digest {
            format: header.format.label().to_string(),
            compression: header.compression.map(|c| c.label().to_string()),
            bytes: header.file_bytes,
            packets: header.packets,
            first: header.first.map(|t| t.to_string()),
            last: header.last.map(|t| t.to_string()),
            duration_seconds: header.duration_seconds,
            counts,
            worst: report.worst(),
            causes: report
                .verdict
                .causes
                .iter()
                .map(|c| c.id.to_string())
                .collect(),
            findings,
            masqueraded,
            warnings: header.warnings.clone(),
        }
    }
}
