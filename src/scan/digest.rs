//! A capture's analysis in brief: counts per finding, and each finding as
//! a (kind, subject) key with its severity and size. Small, comparable
//! across files and runs, and readable back from JSON: what a scan keeps
//! per file, what `kpcap merge` reads, what `kpcap diff` compares.

pub use crate::detect::brief::{Counts, Finding, FindingKind};

use crate::analysis::Outcome;
use crate::detect::verdict::Status;
use crate::detect::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

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
            worst: outcome.worst(),
            causes: (outcome.verdict.causes.iter())
                .map(|c| c.id.to_string())
                .collect(),
            findings: brief.findings,
            masqueraded: brief.masqueraded,
            warnings: header.warnings.clone(),
        }
    }
}
