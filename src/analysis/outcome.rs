//! One capture's outcome: what every consumer reads (reports, the scan
//! digest, diff, the fuzzing entry points). Computed once, in
//! `Analyzer::outcome`; nothing above this module judges traffic.

use super::{CaptureHeader, Coverage, Timeline};
use crate::cluster::AddressName;
use crate::detect::verdict::Verdict;
use crate::detect::{Findings, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The analysis of one logical capture: its header, the detectors'
/// findings and the verdict correlated from them.
#[derive(Debug, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub header: CaptureHeader,
    /// What was judged and what was not.
    pub coverage: Coverage,
    pub verdict: Verdict,
    pub findings: Findings,
    /// The names `--cluster` gives the addresses the findings mention
    /// (absent without `--cluster`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<IpAddr, AddressName>,
    /// Per time bucket, packets and failures: when it broke.
    pub timeline: Timeline,
}

impl Outcome {
    /// The most severe finding, for `--fail-on`.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.worst()
    }
}
