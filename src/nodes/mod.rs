//! Captures of several nodes analyzed together: which capture is which
//! node, a row per node, the clock skew between the captures, the path of
//! connections seen in more than one capture, and the causes only a
//! comparison shows ("the control plane works by chance"). Reads outcomes
//! and sightings; judges no traffic of its own.

mod capture;
mod causes;
mod paths;
mod rows;
mod skew;

pub use capture::NodeCapture;
pub use causes::NodeCause;
pub use paths::{Conclusion, PathFlow, PathGroup, PathSighting, MAX_PATH_GROUPS};
pub use rows::{Masquerading, NodeRow};
pub use skew::Skew;

use crate::cluster::Directory;
use crate::detect::verdict::Status;
use crate::detect::{Settings, Severity};
use crate::time::Timestamp;
use capture::Attributed;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The cluster section of a report: the verdict across nodes.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub status: Status,
    /// The earliest packet of the captures compared, on the reference
    /// capture's clock (paths' times are relative to it in tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// A row per node of the dump and per node a capture was attributed
    /// to, by name.
    pub nodes: Vec<NodeRow>,
    /// Ranked, root causes first.
    pub causes: Vec<NodeCause>,
    /// Each capture's clock against the reference capture's.
    pub clocks: Vec<Skew>,
    /// Connections that failed, followed across the captures.
    pub paths: Vec<PathGroup>,
    /// Path groups past `MAX_PATH_GROUPS`, least severe first, left out.
    pub paths_left_out: u64,
    /// What could not be compared, and why.
    pub not_compared: Vec<String>,
}

impl ClusterReport {
    /// The cluster section of `captures` (any order: they are sorted by
    /// node, then file).
    pub fn new(
        captures: &[NodeCapture<'_>],
        directory: &Directory,
        settings: &Settings,
    ) -> ClusterReport {
        let mut sorted: Vec<&NodeCapture<'_>> = captures.iter().collect();
        sorted.sort_by(|a, b| (a.node(), a.file).cmp(&(b.node(), b.file)));
        let mut not_compared = Vec::new();
        let mut by_node: BTreeMap<&str, Vec<&NodeCapture<'_>>> = BTreeMap::new();
        for capture in &sorted {
            match capture.node() {
                Some(node) => by_node.entry(node).or_default().push(capture),
                None => not_compared.push(format!(
                    "{}: belongs to no node of the cluster files (none of their node addresses is in its traffic; --node NAME={} names it)",
                    capture.file, capture.file
                )),
            }
        }
        let known: Vec<&str> = directory.node_names().collect();
        for (node, list) in &by_node {
            if !known.contains(node) {
                not_compared.push(format!(
                    "{node} (given for {}) is not a node of the cluster files: its role and pods are unknown",
                    files(list)
                ));
            }
            if list.len() > 1 {
                not_compared.push(format!(
                    "{node} has {} captures ({}): the row and the comparisons use {}; the others are reported on their own above",
                    list.len(),
                    files(list),
                    list[0].file
                ));
            }
        }
        let attributed: Vec<Attributed<'_, '_>> = (by_node.into_iter())
            .map(|(node, captures)| Attributed {
                node: node.to_string(),
                captures,
            })
            .collect();
        let compared: Vec<&NodeCapture<'_>> = attributed.iter().map(|a| a.captures[0]).collect();
        let node_of = |addr: IpAddr| {
            (directory.node_of_pod(addr))
                .or_else(|| directory.node_of_address(addr))
                .map(str::to_string)
        };
        let clocks = skew::estimate(&compared, node_of);
        let start = (compared.iter().zip(&clocks))
            .filter_map(|(c, clock)| {
                let first = c.outcome.header.first?;
                let on_reference = first.0 as i64 - clock.offset_ns.unwrap_or(0);
                Some(Timestamp(on_reference.max(0) as u64))
            })
            .min();
        not_compared.extend(skew::not_overlapping(&compared, &clocks));
        let rows = rows::rows(&attributed, &known, directory);
        for row in rows.iter().filter(|r| r.files.is_empty()) {
            not_compared.push(format!("{}: no capture of this node", row.name));
        }
        let (paths, paths_left_out) = paths::trace(&compared, &clocks, directory, settings);
        let mut causes = causes::causes(&rows, &compared, &paths, directory, settings);
        if compared.len() < 2 {
            not_compared.push(format!(
                "{} of the captures belong to a node of the cluster files: nothing to compare across nodes",
                compared.len()
            ));
        }
        if !not_compared.is_empty() {
            causes.push(causes::not_compared(&not_compared));
        }
        for (i, cause) in causes.iter_mut().enumerate() {
            cause.rank = i + 1;
        }
        let status = status(&rows, &causes);
        ClusterReport {
            status,
            start,
            nodes: rows,
            causes,
            clocks,
            paths,
            paths_left_out,
            not_compared,
        }
    }

    /// The most severe cause or node verdict, for `--fail-on`.
    pub fn worst(&self) -> Option<Severity> {
        match self.status {
            Status::Failure => Some(Severity::Failure),
            Status::Warning => Some(Severity::Warning),
            Status::Clean | Status::Inconclusive => None,
        }
    }
}

fn files(list: &[&NodeCapture<'_>]) -> String {
    list.iter().map(|c| c.file).collect::<Vec<_>>().join(", ")
}

/// The worst of the nodes' verdicts and the causes; CLEAN only when every
/// node captured was judged clean and everything could be compared.
fn status(rows: &[NodeRow], causes: &[NodeCause]) -> Status {
    let worst_cause = causes.iter().map(|c| c.severity).max();
    let worst_row = rows.iter().filter_map(|r| r.status).max();
    let mut status = match worst_cause {
        Some(Severity::Failure) => Status::Failure,
        Some(Severity::Warning) => Status::Warning,
        _ => Status::Clean,
    };
    if let Some(row) = worst_row {
        status = status.max(row);
    }
    if status == Status::Clean && causes.iter().any(|c| c.id == causes::NOT_COMPARED) {
        status = Status::Inconclusive;
    }
    status
}
