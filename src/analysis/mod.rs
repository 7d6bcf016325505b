//! One logical capture from files to outcome: what `analyze`, `scan` and
//! `diff` all do. A logical capture is one file, or rotated files of one
//! incident (`tcpdump -C` / `-G`) read in order as if they were one.
//!
//! This is where the parallel engine (`pipeline`) meets what it folds: the
//! flow table (`flow`) and the detectors' observations (`detect`).

mod coverage;
mod header;
#[cfg(test)]
mod hostile_steps;
mod locality;
mod names;
mod outcome;
mod pod_side;
mod sightings;
mod timeline;

pub use coverage::{Coverage, DetectorRun, UnreadInterface};
pub use header::{CaptureHeader, InterfaceInfo, InterfaceUse};
pub use locality::{locality, Locality, WINDOW};
pub use names::cni_hint;
pub use outcome::Outcome;
pub use sightings::{FlowSighting, Reach, SeenOn, Sightings, MAX_FLOW_SIGHTINGS};
pub use timeline::{Timeline, MAX_BUCKETS};

use crate::capture::{CaptureInfo, Input};
use crate::cluster::Directory;
use crate::detect::{verdict, Bounds, Context, Evidence, Findings, Observations, Settings};
use crate::error::CaptureError;
use crate::flow::{FlowTable, Summary};
use crate::interface::{InterfaceNames, Via};
use crate::observe::Seen;
use crate::pipeline::{Folder, Reading};
use crate::time::Timestamp;
use crate::topology::Topology;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A capture error and the file it happened in.
#[derive(Debug, Error)]
#[error("{file}")]
pub struct FileError {
    pub file: String,
    #[source]
    pub source: CaptureError,
}

impl FileError {
    fn new(path: &Path, source: CaptureError) -> FileError {
        FileError {
            file: display_name(path),
            source,
        }
    }
}

/// How a path is named in reports: `-` is stdin; otherwise the path
/// exactly, so two files never share a name: bytes that are not UTF-8 as
/// `\xNN`, and so a backslash as `\\`.
pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "<stdin>".into();
    }
    #[cfg(unix)]
    {
        use std::fmt::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut name = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            name.push_str(&chunk.valid().replace('\\', "\\\\"));
            for byte in chunk.invalid() {
                let _ = write!(name, "\\x{byte:02x}");
            }
        }
        name
    }
    #[cfg(not(unix))]
    {
        path.display().to_string()
    }
}

/// Everything an analysis needs besides the capture.
#[derive(Clone, Copy)]
pub struct Analyzer<'a> {
    pub topology: &'a Topology,
    pub settings: &'a Settings,
    pub reading: &'a Reading,
    /// Bytes of records per unit of parallel work.
    pub chunk_bytes: usize,
    /// How much evidence the findings list (what the report will show).
    pub evidence: Evidence,
    /// The names `--cluster` gives addresses, for the outcome's `names`.
    pub names: Option<&'a Directory>,
}

/// How observations merge, named so the folder's type can be written.
type Merge = fn(Observations, Observations) -> Observations;

impl<'a> Analyzer<'a> {
    /// Reads `parts` in order as one capture and folds what the detectors
    /// need; on the current rayon pool.
    pub fn observe(&self, parts: &[PathBuf]) -> Result<(Observations, CaptureInfo), FileError> {
        let mut folder = self.observer();
        let info = self.fold_parts(parts, |input| folder.fold(input))?;
        let observations = folder.finish();
        check_readable(parts, &info, observations.flows.summary.packets)?;
        self.check_interfaces(parts, observations.flows.summary.packets)?;
        Ok((observations, info))
    }

    /// `observe` of one opened input.
    pub fn observe_input(&self, input: Input) -> Result<(Observations, CaptureInfo), CaptureError> {
        let mut folder = self.observer();
        let info = folder.fold(input)?;
        Ok((folder.finish(), info))
    }

    /// `observe` of a capture that cannot be opened twice (a member of an
    /// archive, read in one pass): `--interface` that kept nothing is an
    /// error that cannot list the interfaces there were.
    pub fn observe_once(&self, input: Input) -> Result<(Observations, CaptureInfo), CaptureError> {
        let (observations, info) = self.observe_input(input)?;
        let packets = observations.flows.summary.packets;
        readable(&info, packets)?;
        self.kept_something(packets)?;
        Ok((observations, info))
    }

    /// `analyze` of a capture that cannot be opened twice (`observe_once`).
    pub fn analyze_once(&self, name: &str, input: Input) -> Result<Outcome, CaptureError> {
        let (mut observations, info) = self.observe_once(input)?;
        Ok(self.outcome(name, &[], &mut observations, &info))
    }

    /// `flows` of a capture that cannot be opened twice (`observe_once`).
    pub fn flows_once(&self, input: Input) -> Result<(FlowTable, CaptureInfo), CaptureError> {
        let (table, info) = flow_table(input, self.reading)?;
        readable(&info, table.summary.packets)?;
        self.kept_something(table.summary.packets)?;
        Ok((table, info))
    }

    fn kept_something(&self, kept: u64) -> Result<(), CaptureError> {
        let wanted = &self.reading.only_interfaces;
        if wanted.is_empty() || kept > 0 {
            return Ok(());
        }
        Err(CaptureError::NoSuchInterface {
            wanted: wanted.join(", "),
            available: "others (an archive member is read once: see `kpcap flows` of it extracted)"
                .into(),
        })
    }

    /// The flow table of `parts` read in order as one capture.
    pub fn flows(&self, parts: &[PathBuf]) -> Result<(FlowTable, CaptureInfo), FileError> {
        let mut folder = Folder::new(self.reading, FlowTable::observe, FlowTable::merge);
        let info = self.fold_parts(parts, |input| folder.fold(input))?;
        let table = folder.finish();
        check_readable(parts, &info, table.summary.packets)?;
        self.check_interfaces(parts, table.summary.packets)?;
        Ok((table, info))
    }

    /// `--interface` that kept no record of a capture that has records is
    /// an error naming the interfaces it has (read again, unfiltered).
    fn check_interfaces(&self, parts: &[PathBuf], kept: u64) -> Result<(), FileError> {
        let wanted = &self.reading.only_interfaces;
        if wanted.is_empty() || kept > 0 {
            return Ok(());
        }
        let reading = Reading {
            only_interfaces: Vec::new(),
            ..self.reading.clone()
        };
        let all = Analyzer {
            reading: &reading,
            ..*self
        };
        let (table, info) = all.flows(parts)?;
        if table.summary.packets == 0 {
            return Ok(());
        }
        let names = all.interface_names(&info, &table.summary);
        let mut busiest: Vec<(&Via, &u64)> = table.summary.per_interface.iter().collect();
        busiest.sort_by_key(|(via, packets)| (std::cmp::Reverse(**packets), **via));
        let mut available: Vec<String> = (busiest.iter().take(8))
            .map(|(via, packets)| format!("{} ({packets} packets)", names.label(via)))
            .collect();
        if busiest.len() > 8 {
            available.push(format!("and {} more", busiest.len() - 8));
        }
        let error = CaptureError::NoSuchInterface {
            wanted: wanted.join(", "),
            available: available.join(", "),
        };
        Err(FileError::new(&parts[0], error))
    }

    /// The engine folding observations with these settings.
    fn observer(
        &self,
    ) -> Folder<'a, Observations, impl Fn(&mut Observations, &Seen<'_>) + Sync + Send + 'a, Merge>
    {
        let settings = self.settings;
        let bounds = Bounds::new(settings, self.topology);
        Folder::new(
            self.reading,
            move |state: &mut Observations, seen: &Seen<'_>| state.observe(seen, settings, &bounds),
            Observations::merge as Merge,
        )
    }

    /// Opens each part in turn (one open file at a time) and folds it in.
    fn fold_parts(
        &self,
        parts: &[PathBuf],
        mut fold: impl FnMut(Input) -> Result<CaptureInfo, CaptureError>,
    ) -> Result<CaptureInfo, FileError> {
        let mut whole: Option<CaptureInfo> = None;
        for path in parts {
            let info = Input::open(path, self.chunk_bytes)
                .and_then(&mut fold)
                .map_err(|e| FileError::new(path, e))?;
            let mut info = info;
            if parts.len() > 1 {
                let name = display_name(path);
                for warning in &mut info.warnings {
                    *warning = format!("{name}: {warning}");
                }
            }
            whole = Some(match whole {
                None => info,
                Some(earlier) => earlier
                    .then(info)
                    .map_err(|reason| FileError::new(path, CaptureError::Mismatch { reason }))?,
            });
        }
        whole.ok_or_else(|| FileError {
            file: String::new(),
            source: CaptureError::Empty,
        })
    }

    /// `analyze` of a capture of a node, with its sightings (`node_outcome`).
    pub fn analyze_node(
        &self,
        name: &str,
        parts: &[PathBuf],
        assigned: Option<&str>,
    ) -> Result<(Outcome, Sightings), FileError> {
        let (mut observations, info) = self.observe(parts)?;
        Ok(self.node_outcome(name, parts, &mut observations, &info, assigned))
    }

    /// `analyze_node` of a capture that cannot be opened twice.
    pub fn analyze_node_once(
        &self,
        name: &str,
        input: Input,
        assigned: Option<&str>,
    ) -> Result<(Outcome, Sightings), CaptureError> {
        let (mut observations, info) = self.observe_once(input)?;
        Ok(self.node_outcome(name, &[], &mut observations, &info, assigned))
    }

    /// The whole analysis of one logical capture: findings and verdict.
    /// `name` is how reports name it.
    pub fn analyze(&self, name: &str, parts: &[PathBuf]) -> Result<Outcome, FileError> {
        let (mut observations, info) = self.observe(parts)?;
        Ok(self.outcome(name, parts, &mut observations, &info))
    }

    /// Findings and verdict from folded observations (which lose their
    /// DNS messages to the findings).
    pub fn outcome(
        &self,
        name: &str,
        parts: &[PathBuf],
        observations: &mut Observations,
        info: &CaptureInfo,
    ) -> Outcome {
        self.outcome_of(name, parts, observations, info, None, false)
            .0
    }

    /// `outcome` of a capture of a node analyzed with other nodes'
    /// captures: `assigned` names its node (`--node NAME=FILE`; else
    /// `--node` or its traffic), and what it saw that the others' captures
    /// can be compared with comes with it.
    pub fn node_outcome(
        &self,
        name: &str,
        parts: &[PathBuf],
        observations: &mut Observations,
        info: &CaptureInfo,
        assigned: Option<&str>,
    ) -> (Outcome, Sightings) {
        let (outcome, sightings) = self.outcome_of(name, parts, observations, info, assigned, true);
        (outcome, sightings.unwrap_or_default())
    }

    fn outcome_of(
        &self,
        name: &str,
        parts: &[PathBuf],
        observations: &mut Observations,
        info: &CaptureInfo,
        assigned: Option<&str>,
        with_sightings: bool,
    ) -> (Outcome, Option<Sightings>) {
        let node = self.names.and_then(|directory| {
            let pairs = observations.flows.pairs.iter();
            let pairs = pairs.map(|(pair, stats)| (*pair, stats.packets));
            directory.capture_node_given(assigned, pairs)
        });
        let mut names = match &node {
            Some(node) => {
                self.interface_names_with(info, &observations.flows.summary, &node.devices)
            }
            None => self.interface_names(info, &observations.flows.summary),
        };
        let flows = &observations.flows;
        names.take_as_pod_side(pod_side::pod_side_devices(flows, self.topology, &names));
        let context = Context {
            topology: self.topology,
            settings: self.settings,
            interfaces: &names,
            evidence: self.evidence,
        };
        let mut header = self.header(name, parts, info, &observations.flows.summary, &names);
        header.node = node.map(|n| header::NodeOfCapture {
            name: n.name,
            how: n.how,
        });
        // Before the findings take the DNS log, which knows what it judged.
        let evicted = observations.evicted();
        if evicted.any() {
            header.warnings.push(format!(
                "--max-flows {}: the tables were full; {} flows, {} address pairs and {} DNS \
                 query keys idle the longest were evicted ({} SYN flows and {} query keys judged \
                 then, {} of them too young to judge; {} needed by the egress and ClusterIP \
                 checks); their packets count in the totals",
                self.settings.max_flows.unwrap_or_default(),
                evicted.flows,
                evicted.pairs,
                evicted.dns_keys,
                evicted.judged_syn_flows,
                evicted.judged_dns_keys,
                evicted.too_young,
                evicted.unjudged,
            ));
        }
        let sightings =
            with_sightings.then(|| Sightings::new(&observations.flows, self.topology, &names));
        let findings = Findings::new(observations, &context);
        let coverage = Coverage::new(coverage::Ground {
            info,
            observations,
            evicted,
            findings: &findings,
            topology: self.topology,
            settings: self.settings,
            span_seconds: header.duration_seconds,
            unread_interfaces: unread_interfaces(info, &observations.flows.summary),
        });
        let timeline = Timeline::new(&observations.flows.summary, &findings);
        let mut verdict = verdict::correlate(&findings);
        verdict::qualify(&mut verdict, &coverage.unjudged);
        let names = match self.names {
            Some(directory) => {
                let names = names::of_mentioned(directory, &findings, header.last);
                names::annotate(&mut verdict, &names, directory, &findings);
                names
            }
            None => Default::default(),
        };
        let outcome = Outcome {
            header,
            coverage,
            verdict,
            findings,
            names,
            timeline,
        };
        (outcome, sightings)
    }

    /// The header of a logical capture made of `parts`.
    pub fn header(
        &self,
        name: &str,
        parts: &[PathBuf],
        info: &CaptureInfo,
        summary: &Summary,
        names: &InterfaceNames,
    ) -> CaptureHeader {
        let mut header = CaptureHeader::new(name, info, summary, names);
        for unread in unread_interfaces(info, summary)
            .iter()
            .filter(|i| i.packets > 0)
        {
            header.warnings.push(format!(
                "{} packets on interface {}{} not decoded: {}",
                unread.packets,
                unread.id,
                unread
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                unread.reason
            ));
        }
        if parts.len() > 1 {
            header.parts = parts.iter().map(|p| display_name(p)).collect();
        }
        header
    }

    /// The interface names of a capture, with the interfaces its records
    /// came on learnt, for reports that name one per flow.
    pub fn interface_names(&self, info: &CaptureInfo, summary: &Summary) -> InterfaceNames {
        let mut names = self.reading.names(&info.interfaces);
        names.learn(summary.per_interface.keys().copied());
        names
    }

    /// The interface names, with `devices` naming what the flags and the
    /// reading left unnamed (the capture's node's `ip -j` output).
    fn interface_names_with(
        &self,
        info: &CaptureInfo,
        summary: &Summary,
        devices: &std::collections::BTreeMap<crate::interface::DeviceKey, String>,
    ) -> InterfaceNames {
        let mut all = self.reading.device_names.clone();
        for (key, name) in devices {
            all.entry(key.clone()).or_insert_with(|| name.clone());
        }
        let mut names = InterfaceNames::new(&info.interfaces, all);
        names.learn(summary.per_interface.keys().copied());
        names
    }
}

/// The interfaces whose records cannot be decoded, and how many they had.
fn unread_interfaces(info: &CaptureInfo, summary: &Summary) -> Vec<UnreadInterface> {
    let packets = summary.packets_per_interface();
    (info.interfaces.iter())
        .filter_map(|i| {
            let reason = i.unreadable_because()?;
            let packets = packets.get(&i.id).copied().unwrap_or(0);
            Some(UnreadInterface {
                id: i.id,
                name: i.name.clone(),
                reason,
                packets,
            })
        })
        .collect()
}

/// A capture with records, none of whose interfaces kpcap can decode, is
/// an error, as a classic pcap of such a link type is.
fn check_readable(parts: &[PathBuf], info: &CaptureInfo, packets: u64) -> Result<(), FileError> {
    readable(info, packets).map_err(|error| FileError::new(&parts[0], error))
}

fn readable(info: &CaptureInfo, packets: u64) -> Result<(), CaptureError> {
    if packets == 0 || info.interfaces.is_empty() || info.interfaces.iter().any(|i| i.readable()) {
        return Ok(());
    }
    let types: Vec<String> = (info.interfaces.iter())
        .map(|i| {
            format!(
                "interface {}: {}",
                i.id,
                i.unreadable_because().unwrap_or_default()
            )
        })
        .collect();
    Err(CaptureError::NoReadableInterface {
        offset: info.interfaces[0].declared_at,
        types: types.join("; "),
    })
}

/// The merged flow table of one capture (what `kpcap flows` reports).
pub fn flow_table(
    input: Input,
    reading: &Reading,
) -> Result<(FlowTable, CaptureInfo), CaptureError> {
    let mut folder = Folder::new(reading, FlowTable::observe, FlowTable::merge);
    let info = folder.fold(input)?;
    Ok((folder.finish(), info))
}

/// Rotated captures in the order they were written: by the timestamp of
/// their first record (names like `capture.pcap10` do not sort), then by
/// name. Files without records go last.
pub fn in_capture_order(parts: &[PathBuf], chunk_bytes: usize) -> Result<Vec<PathBuf>, FileError> {
    let mut keyed: Vec<(Option<Timestamp>, &PathBuf)> = Vec::with_capacity(parts.len());
    for path in parts {
        let first = Input::open(path, chunk_bytes)
            .and_then(Input::first_timestamp)
            .map_err(|e| FileError::new(path, e))?;
        keyed.push((first, path));
    }
    keyed.sort_by(|(a, pa), (b, pb)| {
        let rank = |t: &Option<Timestamp>| (t.is_none(), *t);
        rank(a).cmp(&rank(b)).then(pa.cmp(pb))
    });
    Ok(keyed.into_iter().map(|(_, p)| p.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::display_name;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    #[test]
    fn names_are_exact_and_never_shared() {
        let name = |bytes: &[u8]| display_name(Path::new(std::ffi::OsStr::from_bytes(bytes)));
        assert_eq!(name(b"a.pcap"), "a.pcap");
        assert_eq!(name(b"-"), "<stdin>");
        assert_eq!(name(b"bad\xff.pcap"), r"bad\xff.pcap");
        assert_ne!(name(b"bad\xff.pcap"), name(b"bad\xfe.pcap"));
        assert_ne!(name(b"bad\xff.pcap"), name(br"bad\xff.pcap"));
        assert_eq!(name(br"a\b"), r"a\\b");
    }
}
