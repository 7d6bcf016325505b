//! One node's capture as the comparison reads it: its outcome and its
//! sightings.

use crate::analysis::{Outcome, Sightings};
use crate::time::Timestamp;

/// One analyzed capture, with what it saw for the comparison.
pub struct NodeCapture<'a> {
    /// How reports name it.
    pub file: &'a str,
    pub outcome: &'a Outcome,
    pub sightings: &'a Sightings,
}

impl NodeCapture<'_> {
    pub(super) fn node(&self) -> Option<&str> {
        self.outcome.header.node.as_ref().map(|n| n.name.as_str())
    }

    pub(super) fn span(&self) -> Option<(Timestamp, Timestamp)> {
        Some((self.outcome.header.first?, self.outcome.header.last?))
    }
}
