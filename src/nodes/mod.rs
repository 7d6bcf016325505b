//! Captures of several nodes analyzed together: which capture is which
//! node, a row per node, the clock skew between the captures, the path of
//! connections seen in more than one capture, and the causes only a
//! comparison shows ("the control plane works by chance"). Reads outcomes
//! and sightings; judges no traffic of its own.

mod capture;
mod causes;
mod facts;
mod paths;
mod rows;
mod skew;

pub use capture::NodeCapture;
pub use causes::NodeCause;
pub use facts::{Masquerading, NodeFacts, NodeSeen};
pub use paths::{Conclusion, PathFlow, PathGroup, PathSighting, MAX_PATH_GROUPS};
pub use rows::NodeRow;
pub use skew::Skew;

use crate::cluster::Directory;
use crate::detect::verdict::Status;
use crate::detect::{Settings, Severity};
use crate::time::Timestamp;
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
    /// Whether paths and clocks were followed (the captures read
    /// together, not a scan's digests).
    pub paths_followed: bool,
    /// Path groups past `MAX_PATH_GROUPS`, least severe first, left out.
    pub paths_left_out: u64,
    /// What could not be compared, and why.
    pub not_compared: Vec<String>,
    /// What this section does not cover, by design.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One capture as the comparison reads it: its file and, if it belongs
/// to a node, that node's facts.
pub struct FileFacts<'a> {
    pub file: &'a str,
    pub facts: Option<&'a NodeFacts>,
}

/// The nodes of the dump: (name, role).
pub fn known_nodes(directory: &Directory) -> Vec<(String, String)> {
    (directory.node_names())
        .map(|n| (n.to_string(), facts::role(&directory.roles(n))))
        .collect()
}

impl ClusterReport {
    /// The cluster section of `captures` read together (any order: they
    /// are sorted by node, then file): rows, clocks, paths and causes.
    pub fn new(
        captures: &[NodeCapture<'_>],
        directory: &Directory,
        settings: &Settings,
    ) -> ClusterReport {
        let facts: Vec<Option<NodeFacts>> = (captures.iter())
            .map(|c| NodeFacts::of(c, directory, settings))
            .collect();
        let files: Vec<FileFacts<'_>> = (captures.iter().zip(&facts))
            .map(|(c, facts)| FileFacts {
                file: c.file,
                facts: facts.as_ref(),
            })
            .collect();
        let known = known_nodes(directory);
        let attributed = attribute(&files);
        // The first capture of each node, by file name, is compared.
        let compared: Vec<&NodeCapture<'_>> = (attributed.values())
            .filter_map(|list| captures.iter().find(|c| c.file == list[0].file))
            .collect();
        let node_of = |addr: IpAddr| directory.node_of(addr).map(str::to_string);
        let clocks = skew::estimate(&compared, node_of);
        let start = (compared.iter().zip(&clocks))
            .filter_map(|(c, clock)| {
                let first = c.outcome.header.first?;
                let on_reference = first.0 as i64 - clock.offset_ns.unwrap_or(0);
                Some(Timestamp(on_reference.max(0) as u64))
            })
            .min();
        let (paths, paths_left_out) = paths::trace(&compared, &clocks, directory, settings);
        let mut extra = skew::not_overlapping(&compared, &clocks);
        if compared.len() < 2 {
            extra.push(format!(
                "captures of {} node{} only: nothing to compare across nodes",
                compared.len(),
                if compared.len() == 1 { "" } else { "s" }
            ));
        }
        let mut report = assemble(&files, &known, Some(directory), paths, extra);
        report.start = start;
        report.clocks = clocks;
        report.paths_followed = true;
        report.paths_left_out = paths_left_out;
        report
    }

    /// The cluster section of a scan: its files' node facts compared
    /// (rows and causes; clocks and paths need the captures read
    /// together). `directory` adds the dump's nodes and CNI settings.
    pub fn of_scan(files: &[FileFacts<'_>], directory: Option<&Directory>) -> ClusterReport {
        let known = directory.map(known_nodes).unwrap_or_default();
        let mut report = assemble(files, &known, directory, Vec::new(), Vec::new());
        report.notes.push(
            "clocks and paths between nodes are followed by `kpcap analyze --cluster DIR` of the nodes' captures together, not by scan".into(),
        );
        report
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

/// The files of each node, by node; each node's files by name.
fn attribute<'f, 'a>(files: &'f [FileFacts<'a>]) -> BTreeMap<&'f str, Vec<&'f FileFacts<'a>>> {
    let mut by_node: BTreeMap<&str, Vec<&FileFacts<'_>>> = BTreeMap::new();
    for file in files {
        if let Some(facts) = file.facts {
            by_node.entry(facts.node.as_str()).or_default().push(file);
        }
    }
    for list in by_node.values_mut() {
        list.sort_by_key(|f| f.file);
    }
    by_node
}

/// Rows, causes and what could not be compared, from the files' facts,
/// `paths` (if the captures were read together) and `extra` lines.
fn assemble(
    files: &[FileFacts<'_>],
    known: &[(String, String)],
    directory: Option<&Directory>,
    paths: Vec<PathGroup>,
    extra: Vec<String>,
) -> ClusterReport {
    let mut not_compared = Vec::new();
    let mut unattributed: Vec<&str> = (files.iter())
        .filter(|f| f.facts.is_none())
        .map(|f| f.file)
        .collect();
    unattributed.sort_unstable();
    for file in unattributed {
        not_compared.push(format!(
            "{file}: belongs to no node of the cluster files (none of their node addresses is in its traffic; --node NAME={file} names it)"
        ));
    }
    let by_node = attribute(files);
    for (node, list) in &by_node {
        if !known.is_empty() && !known.iter().any(|(name, _)| name == node) {
            not_compared.push(format!(
                "{node} (given for {}) is not a node of the cluster files: its role and pods are unknown",
                names(list)
            ));
        }
        if list.len() > 1 {
            not_compared.push(format!(
                "{node} has {} captures ({}): the row and the comparisons use {}; the others are reported on their own",
                list.len(),
                names(list),
                list[0].file
            ));
        }
    }
    not_compared.extend(extra);
    let attributed: Vec<(String, Vec<String>, &NodeFacts)> = (by_node.iter())
        .filter_map(|(node, list)| {
            let facts = list[0].facts?;
            let files = list.iter().map(|f| f.file.to_string()).collect();
            Some((node.to_string(), files, facts))
        })
        .collect();
    let rows = rows::rows(&attributed, known);
    for row in rows.iter().filter(|r| r.files.is_empty()) {
        not_compared.push(format!("{}: no capture of this node", row.name));
    }
    let mut causes = causes::causes(&rows, &paths, directory);
    if !not_compared.is_empty() {
        causes.push(causes::not_compared(&not_compared));
    }
    for (i, cause) in causes.iter_mut().enumerate() {
        cause.rank = i + 1;
    }
    ClusterReport {
        status: status(&rows, &causes),
        start: None,
        nodes: rows,
        causes,
        clocks: Vec::new(),
        paths,
        paths_followed: false,
        paths_left_out: 0,
        not_compared,
        notes: Vec::new(),
    }
}

fn names(list: &[&FileFacts<'_>]) -> String {
    list.iter().map(|f| f.file).collect::<Vec<_>>().join(", ")
}

/// The worst of the nodes' verdicts and the causes; CLEAN only when every
/// node captured was judged clean and everything could be compared.
fn status(rows: &[NodeRow], causes: &[NodeCause]) -> Status {
    let worst_cause = causes.iter().map(|c| c.severity).max();
    let worst_row = rows.iter().filter_map(|r| r.status()).max();
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
