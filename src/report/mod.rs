//! Reports: the only code that turns outcomes into text. Human tables by
//! default, JSON for machines; nothing here prints, and nothing here
//! judges: findings and the verdict come from `analysis::Outcome`.

pub mod analyze;
pub mod diff;
pub mod flows;
pub mod header;
pub mod html;
pub mod nodes;
pub mod output;
mod pretty;
pub mod scan;
mod table;

pub use flows::{FlowsReport, Grouping};
pub use output::{Document, Format, Layout, Output, Report};

use crate::detect::Settings;
use crate::topology::Topology;
use serde::Serialize;

/// A report of one capture, with the CIDRs its header names.
pub struct CaptureReport<'a, T> {
    pub of: &'a T,
    pub topology: &'a Topology,
}

/// The body of the JSON document of `analyze` and `flows`: the CIDRs and
/// settings of the run, and one entry per capture.
#[derive(Debug, Serialize)]
pub struct Captures<'a, T: Serialize> {
    pub topology: &'a Topology,
    /// Detector thresholds (analyze only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<&'a Settings>,
    pub captures: &'a [T],
    /// The verdict across nodes, when several nodes' captures were
    /// analyzed together (analyze with `--cluster`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<&'a crate::nodes::ClusterReport>,
}
