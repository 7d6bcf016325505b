//! A capture's analysis in brief: counts per finding, and each finding as
//! a (kind, subject) key with its severity and size. Small, comparable
//! across files and runs, and readable back from JSON: what a scan keeps
//! per file, what `kpcap merge` reads, what `kpcap diff` compares.

pub use crate::detect::brief::{Counts, Finding, FindingKind};

use crate::analysis::Outcome;
use crate::detect::verdict::Status;
use crate::detect::Severity;
use crate::nodes::NodeFacts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A capture's coverage in brief (`analysis::Coverage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub ip_packets: u64,
    pub pod_source_packets: u64,
    pub syn_flows: u64,
    pub dns_query_keys: u64,
    /// Bytes of damaged stretches skipped.
    pub skipped_bytes: u64,
    /// Flows and DNS keys `--max-flows` evicted.
    pub evicted: u64,
    /// Detectors that did not run, with why: `service_vips (no service CIDR)`.
    pub detectors_off: Vec<String>,
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
    /// The verdict's status: `inconclusive` when not everything was judged.
    pub status: Status,
    /// What the verdict could not judge (`coverage.not_judged`).
    pub not_judged: Vec<String>,
    /// What it judged, in brief.
    pub coverage: Judged,
    /// The most severe finding, if any.
    pub worst: Option<Severity>,
    /// The verdict's causes (ids), most likely first.
    pub causes: Vec<String>,
    /// Findings at warning or failure severity, by kind and subject.
    pub findings: Vec<Finding>,
    /// Pods seen both before and after SNAT: what each was translated to.
    pub masqueraded: BTreeMap<IpAddr, Vec<IpAddr>>,
    pub warnings: Vec<String>,
    /// With `--cluster`: the node it was captured on, and what the
    /// comparison of nodes needs of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeFacts>,
}

impl Digest {
    pub fn of(outcome: &Outcome) -> Digest {
        let header = &outcome.header;
        let brief = outcome.findings.brief();
        Digest {
            format: header.format.label().to_string(),
            compression: header.compression.map(|c| c.label().to_string()),
            bytes: header.file_bytes,
            packets: header.packets,
            first: header.first.map(|t| t.to_string()),
            last: header.last.map(|t| t.to_string()),
            duration_seconds: header.duration_seconds,
            counts: brief.counts,
            status: outcome.verdict.status,
            not_judged: outcome.coverage.not_judged.clone(),
            coverage: Judged::of(&outcome.coverage),
            worst: outcome.worst(),
            causes: (outcome.verdict.causes.iter())
                .map(|c| c.id.to_string())
                .collect(),
            findings: brief.findings,
            masqueraded: brief.masqueraded,
            warnings: header.warnings.clone(),
            node: None,
        }
    }
}

impl Judged {
    fn of(c: &crate::analysis::Coverage) -> Judged {
        Judged {
            ip_packets: c.ip_packets,
            pod_source_packets: c.pod_source_packets,
            syn_flows: c.syn_flows,
            dns_query_keys: c.dns_query_keys,
            skipped_bytes: c.skipped.bytes,
            evicted: c.evicted.flows + c.evicted.dns_keys,
            detectors_off: (c.detectors.iter())
                .filter(|d| !d.ran)
                .map(|d| format!("{} ({})", d.detector, d.off.as_deref().unwrap_or("off")))
                .collect(),
        }
    }
}
