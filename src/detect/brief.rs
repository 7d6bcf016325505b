//! A capture's findings in brief: counts per finding kind, and each
//! finding as a (kind, subject) key with its severity and size. Each
//! detector writes its own part (`FindingSet::brief`, beside its judging);
//! the scan digest, `kpcap merge` and `kpcap diff` read the result.

use super::Severity;
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

/// What every detector's findings offer the rest of kpcap.
pub trait FindingSet {
    /// The most severe finding, if any.
    fn worst(&self) -> Option<Severity>;
    /// Adds the findings' counts and subjects to `brief`.
    fn brief(&self, brief: &mut BriefBuilder);
}

/// The findings of a capture in brief.
#[derive(Debug, Clone, Default)]
pub struct Brief {
    pub counts: Counts,
    /// Findings at warning or failure severity, by kind and subject.
    pub findings: Vec<Finding>,
    /// Pods seen both before and after SNAT: what each was translated to.
    pub masqueraded: BTreeMap<IpAddr, Vec<IpAddr>>,
}

/// Subjects of one kind while a brief is built: severity, count, details.
type Tally = BTreeMap<String, (Severity, u64, BTreeSet<String>)>;

/// A brief while the detectors write their parts into it.
#[derive(Default)]
pub struct BriefBuilder {
    pub counts: Counts,
    pub masqueraded: BTreeMap<IpAddr, Vec<IpAddr>>,
    kinds: BTreeMap<FindingKind, Tally>,
}

impl BriefBuilder {
    /// `count` more of `kind` about `subject`, with what varies under it
    /// (a subject without details is not added). A subject's severity is
    /// the highest it was given.
    pub fn add(
        &mut self,
        kind: FindingKind,
        subject: String,
        severity: Severity,
        count: u64,
        details: impl IntoIterator<Item = String>,
    ) {
        let mut details = details.into_iter().peekable();
        if details.peek().is_none() {
            return;
        }
        let tally = self.kinds.entry(kind).or_default();
        let entry = tally
            .entry(subject)
            .or_insert((severity, 0, BTreeSet::new()));
        entry.0 = entry.0.max(severity);
        entry.1 += count;
        entry.2.extend(details);
    }

    /// Each subject at warning or failure severity, by kind, then subject.
    pub fn finish(self) -> Brief {
        let findings = self
            .kinds
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
        Brief {
            counts: self.counts,
            findings,
            masqueraded: self.masqueraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_merge_and_only_warnings_and_failures_are_kept() {
        let mut brief = BriefBuilder::default();
        let kind = FindingKind::UnansweredSyn;
        brief.add(
            kind,
            "a -> b".into(),
            Severity::Warning,
            2,
            ["tcp/80".into()],
        );
        brief.add(
            kind,
            "a -> b".into(),
            Severity::Failure,
            3,
            ["tcp/443".into()],
        );
        brief.add(kind, "c -> d".into(), Severity::Info, 9, ["tcp/1".into()]);
        brief.add(
            FindingKind::UnmasqueradedEgress,
            "p".into(),
            Severity::Failure,
            1,
            ["x".into()],
        );
        let findings = brief.finish().findings;
        let keys: Vec<(FindingKind, &str, Severity, u64)> = findings
            .iter()
            .map(|f| (f.kind, f.subject.as_str(), f.severity, f.count))
            .collect();
        assert_eq!(
            keys,
            [
                (FindingKind::UnmasqueradedEgress, "p", Severity::Failure, 1),
                (kind, "a -> b", Severity::Failure, 5)
            ]
        );
        assert_eq!(findings[1].details, ["tcp/443", "tcp/80"]);
    }
}
