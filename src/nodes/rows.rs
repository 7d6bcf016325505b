//! A row per node: its role, its captures, and what the first one showed
//! (the NICs its egress left on, its pods seen leaving masqueraded or not,
//! its SYN and DNS failures, its verdict); nodes of the dump without a
//! capture too.

use super::facts::{Masquerading, NodeFacts, NodeSeen};
use crate::detect::verdict::Status;
use serde::Serialize;

/// A node: its captures and what the first one showed.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub name: String,
    /// `control-plane`, `worker`, or the node's role labels.
    pub role: String,
    /// Its captures; the first is the one compared.
    pub files: Vec<String>,
    /// Absent when it was not captured.
    #[serde(flatten)]
    pub seen: Option<NodeSeen>,
}

impl NodeRow {
    pub fn masquerading(&self) -> Masquerading {
        (self.seen.as_ref()).map_or(Masquerading::NotCaptured, |s| s.masquerading)
    }

    pub fn status(&self) -> Option<Status> {
        self.seen.as_ref().map(|s| s.status)
    }
}

/// A row per node with captures (`attributed`: node, files, the first
/// one's facts) and per node of the dump without one (`known`: name,
/// role), by name.
pub(super) fn rows(
    attributed: &[(String, Vec<String>, &NodeFacts)],
    known: &[(String, String)],
) -> Vec<NodeRow> {
    let mut rows: Vec<NodeRow> = (attributed.iter())
        .map(|(node, files, facts)| NodeRow {
            name: node.clone(),
            role: facts.role.clone(),
            files: files.clone(),
            seen: Some(facts.seen.clone()),
        })
        .collect();
    for (node, role) in known {
        if !attributed.iter().any(|a| &a.0 == node) {
            rows.push(NodeRow {
                name: node.clone(),
                role: role.clone(),
                files: Vec::new(),
                seen: None,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}
