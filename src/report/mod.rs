//! Reports: the only code that turns results into text. Human tables by
//! default, JSON for machines; nothing here prints.

pub mod analyze;
pub mod diff;
pub mod flows;
pub mod header;
pub mod scan;
mod table;

pub use analyze::AnalyzeReport;
pub use flows::{FlowsReport, Grouping};
pub use header::CaptureHeader;

use serde::Serialize;

/// The JSON document for a whole run.
#[derive(Debug, Serialize)]
pub struct JsonDocument<'a, T: Serialize> {
    pub schema: &'static str,
    pub kpcap_version: &'static str,
    pub topology: crate::topology::Topology,
    /// Detector thresholds (analyze only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::detect::Settings>,
    pub captures: &'a [T],
}
