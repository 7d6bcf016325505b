//! Sweeping archives of captures: every file found under the given paths
//! gets a line (its digest, or why it could not be read), and findings are
//! aggregated across files. A scan report is built by merging one-file
//! reports, and `kpcap merge` merges shard reports with the same
//! associative merge, so a sweep split over machines gives the report one
//! machine would have.

pub mod digest;

pub use digest::{Counts, Digest, Finding, FindingKind};

use crate::cluster::Directory;
use crate::detect::Severity;
use crate::nodes::{ClusterReport, FileFacts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The JSON schema name of scan reports.
pub const SCHEMA: &str = "kpcap.scan/2";

/// How a file fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Analyzed,
    /// Empty, or neither pcap nor pcapng (compressed or not): not an error.
    NotACapture,
    /// A capture that could not be read.
    Error,
}

/// One file's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileLine {
    pub file: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<Digest>,
    /// Why it was not analyzed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl FileLine {
    pub fn worst(&self) -> Option<Severity> {
        self.digest.as_ref().and_then(|d| d.worst)
    }

    /// The line of a path that was not analyzed.
    pub fn failed(file: String, status: Status, error: String) -> FileLine {
        FileLine {
            file,
            status,
            digest: None,
            error: Some(error),
        }
    }
}

/// A finding across files: one line however many files show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateFinding {
    pub kind: FindingKind,
    pub subject: String,
    pub severity: Severity,
    /// Summed over the files.
    pub count: u64,
    /// The files it was found in, sorted.
    pub files: Vec<String>,
    pub details: Vec<String>,
}

/// A verdict cause across files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateCause {
    pub id: String,
    pub files: Vec<String>,
}

/// Everything summed or unioned over the files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub files: u64,
    pub analyzed: u64,
    pub not_captures: u64,
    pub errors: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Analyzed files with a finding at warning or failure severity.
    pub files_with_findings: u64,
    /// Analyzed files whose verdict could not judge everything.
    pub inconclusive: u64,
    pub worst: Option<Severity>,
    pub counts: Counts,
    /// Most files first.
    pub causes: Vec<AggregateCause>,
    /// Most severe first, then most files.
    pub findings: Vec<AggregateFinding>,
}

impl Aggregate {
    fn of(line: &FileLine) -> Aggregate {
        let mut aggregate = Aggregate {
            files: 1,
            ..Default::default()
        };
        match line.status {
            Status::Analyzed => aggregate.analyzed = 1,
            Status::NotACapture => aggregate.not_captures = 1,
            Status::Error => aggregate.errors = 1,
        }
        let Some(digest) = &line.digest else {
            return aggregate;
        };
        aggregate.packets = digest.packets;
        aggregate.bytes = digest.bytes;
        aggregate.files_with_findings = u64::from(!digest.findings.is_empty());
        aggregate.inconclusive =
            u64::from(digest.status == crate::detect::verdict::Status::Inconclusive);
        aggregate.worst = digest.worst;
        aggregate.counts = digest.counts.clone();
        aggregate.causes = digest
            .causes
            .iter()
            .map(|id| AggregateCause {
                id: id.clone(),
                files: vec![line.file.clone()],
            })
            .collect();
        aggregate.findings = digest
            .findings
            .iter()
            .map(|f| AggregateFinding {
                kind: f.kind,
                subject: f.subject.clone(),
                severity: f.severity,
                count: f.count,
                files: vec![line.file.clone()],
                details: f.details.clone(),
            })
            .collect();
        aggregate
    }

    /// Associative and commutative: sums, maxima and sorted unions.
    pub fn merge(mut self, other: Aggregate) -> Aggregate {
        self.files += other.files;
        self.analyzed += other.analyzed;
        self.not_captures += other.not_captures;
        self.errors += other.errors;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.files_with_findings += other.files_with_findings;
        self.inconclusive += other.inconclusive;
        self.worst = self.worst.max(other.worst);
        self.counts.add(&other.counts);

        let mut causes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for cause in self.causes.into_iter().chain(other.causes) {
            causes.entry(cause.id).or_default().extend(cause.files);
        }
        self.causes = causes
            .into_iter()
            .map(|(id, files)| AggregateCause {
                id,
                files: sorted_union(files),
            })
            .collect();
        self.causes
            .sort_by(|a, b| b.files.len().cmp(&a.files.len()).then(a.id.cmp(&b.id)));

        let mut findings: BTreeMap<(FindingKind, String), AggregateFinding> = BTreeMap::new();
        for f in self.findings.into_iter().chain(other.findings) {
            match findings.entry((f.kind, f.subject.clone())) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(f);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let into = e.get_mut();
                    into.severity = into.severity.max(f.severity);
                    into.count += f.count;
                    into.files = sorted_union([std::mem::take(&mut into.files), f.files].concat());
                    into.details =
                        sorted_union([std::mem::take(&mut into.details), f.details].concat());
                }
            }
        }
        self.findings = findings.into_values().collect();
        self.findings.sort_by(|a, b| {
            (b.severity, b.files.len())
                .cmp(&(a.severity, a.files.len()))
                .then((a.kind, &a.subject).cmp(&(b.kind, &b.subject)))
        });
        self
    }
}

impl Aggregate {
    /// The verdict across files: the worst finding; else INCOMPLETE if a
    /// file could not be read, INCONCLUSIVE if nothing was analyzed or a
    /// file's verdict was; CLEAN only if every file was judged clean.
    pub fn verdict(&self) -> &'static str {
        match self.worst {
            Some(Severity::Failure) => "failure",
            Some(Severity::Warning) => "warning",
            _ if self.errors > 0 => "incomplete",
            _ if self.analyzed == 0 || self.inconclusive > 0 => "inconclusive",
            _ => "clean",
        }
    }
}

fn sorted_union(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

/// A scan: one line per file, sorted by file name, and the aggregate.
/// Written in the envelope of every JSON document (`report::Document`),
/// read back by `kpcap merge` as a `ScanDocument`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The CIDRs and detector settings in force, in words: shards merge
    /// only if they agree.
    pub cidrs: String,
    pub settings: crate::detect::Settings,
    pub files: Vec<FileLine>,
    pub aggregate: Aggregate,
    /// The shards of the file list this report covers (`--shard`): none
    /// for a whole scan. `kpcap merge` refuses a shard twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<Shard>,
}

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ScanReport {
    /// A report with no files yet: the identity of `merge`.
    pub fn empty(cidrs: String, settings: crate::detect::Settings) -> ScanReport {
        ScanReport {
            cidrs,
            settings,
            files: Vec::new(),
            aggregate: Aggregate::default(),
            shards: Vec::new(),
        }
    }

    /// The report of one file.
    pub fn of(line: FileLine, cidrs: String, settings: crate::detect::Settings) -> ScanReport {
        let mut report = ScanReport::empty(cidrs, settings);
        report.aggregate = Aggregate::of(&line);
        report.files.push(line);
        report
    }

    /// Associative: files are kept sorted by name, aggregates merged.
    /// Reports made under different CIDRs or settings do not merge.
    pub fn merge(mut self, other: ScanReport) -> Result<ScanReport, String> {
        if self.cidrs != other.cidrs || self.settings != other.settings {
            return Err(format!(
                "reports made with different CIDRs or settings: '{}' vs '{}'",
                self.cidrs, other.cidrs
            ));
        }
        self.files.extend(other.files);
        self.files.sort_by(|a, b| a.file.cmp(&b.file));
        self.shards.extend(other.shards);
        self.shards.sort();
        self.aggregate = self.aggregate.merge(other.aggregate);
        Ok(self)
    }
}

impl ScanReport {
    /// The verdict across nodes of its analyzed files, when at least two
    /// of them were and one belongs to a node (`--cluster`).
    pub fn nodes(&self, directory: Option<&Directory>) -> Option<ClusterReport> {
        let analyzed: Vec<FileFacts<'_>> = (self.files.iter())
            .filter_map(|line| {
                let digest = line.digest.as_ref()?;
                Some(FileFacts {
                    file: &line.file,
                    facts: digest.node.as_ref(),
                })
            })
            .collect();
        let any_node = analyzed.iter().any(|f| f.facts.is_some());
        (any_node && analyzed.len() > 1).then(|| ClusterReport::of_scan(&analyzed, directory))
    }
}

/// A scan report as `kpcap scan --format json` wrote it: the envelope,
/// then the report.
#[derive(Debug, Deserialize)]
pub struct ScanDocument {
    pub schema: String,
    pub kpcap_version: String,
    #[serde(flatten)]
    pub report: ScanReport,
}

/// What `discover` found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// A regular file, to analyze.
    File(PathBuf),
    /// A path that will not be analyzed, and why: its line as it is.
    Line(Box<FileLine>),
}

impl Found {
    /// How the report names it: the order of the list.
    pub fn name(&self) -> String {
        match self {
            Found::File(path) => file_name(path),
            Found::Line(line) => line.file.clone(),
        }
    }
}

/// Every regular file under `paths` (directories are walked recursively,
/// symbolic links are not followed), sorted by name and without repeats:
/// the same list whatever order the file system lists entries in.
///
/// Nothing is lost: a path that cannot be walked (missing, permission
/// denied, a symbolic link loop) is a line with status `error`, and the
/// walk goes on. FIFOs, sockets and devices are never opened: given, they
/// are errors; found in a directory, lines that say what they are.
pub fn discover(paths: &[PathBuf]) -> Vec<Found> {
    let mut found = Vec::new();
    for path in paths {
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let at = e.path().unwrap_or(path);
                    let error = match e.io_error() {
                        Some(io) => io.to_string(),
                        // walkdir's own message repeats the path.
                        None => "a symbolic link loop".to_string(),
                    };
                    found.push(Found::Line(Box::new(FileLine::failed(
                        file_name(at),
                        Status::Error,
                        format!("cannot be walked: {error}"),
                    ))));
                    continue;
                }
            };
            let kind = entry.file_type();
            if kind.is_file() {
                found.push(Found::File(entry.into_path()));
            } else if let Some(special) = special_file(&kind) {
                let given = entry.depth() == 0;
                let status = if given {
                    Status::Error
                } else {
                    Status::NotACapture
                };
                found.push(Found::Line(Box::new(FileLine::failed(
                    file_name(entry.path()),
                    status,
                    format!("a {special}, not a regular file: not read"),
                ))));
            }
        }
    }
    let mut named: Vec<(String, Found)> = found.into_iter().map(|f| (f.name(), f)).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.dedup_by(|a, b| a.0 == b.0);
    named.into_iter().map(|(_, found)| found).collect()
}

/// What a file that is neither regular, a directory nor a link is.
fn special_file(kind: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("FIFO");
        }
        if kind.is_socket() {
            return Some("socket");
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some("device");
        }
    }
    let _ = kind;
    None
}

/// Shard `index` (1-based) of `count`: every `count`-th file of the
/// sorted list, starting at the `index`-th. Shards are disjoint, cover the
/// list, and differ in size by at most one file.
pub fn shard<T>(files: Vec<T>, index: usize, count: usize) -> Vec<T> {
    files
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % count == index - 1)
        .map(|(_, f)| f)
        .collect()
}

/// Parses `I/N` (1 <= I <= N).
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if i >= 1 && i <= n => Ok((i, n)),
        _ => Err(format!(
            "--shard: '{text}' is not I/N with 1 <= I <= N (e.g. 2/8)"
        )),
    }
}

/// A path as the report names it: exactly, bytes that are not UTF-8
/// escaped (`analysis::display_name`).
pub fn file_name(path: &Path) -> String {
    crate::analysis::display_name(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_analyzed_is_inconclusive_never_clean() {
        let none = Aggregate::default();
        assert_eq!(none.verdict(), "inconclusive");
        let one = Aggregate {
            files: 1,
            analyzed: 1,
            ..Aggregate::default()
        };
        assert_eq!(one.verdict(), "clean");
        let unsure = Aggregate {
            inconclusive: 1,
            ..one.clone()
        };
        assert_eq!(unsure.verdict(), "inconclusive");
        let broken = Aggregate { errors: 1, ..one };
        assert_eq!(broken.verdict(), "incomplete");
    }

    #[test]
    fn shards_partition_the_list() {
        let files: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("f{i}"))).collect();
        let mut all: Vec<PathBuf> = (1..=3).flat_map(|i| shard(files.clone(), i, 3)).collect();
        all.sort();
        assert_eq!(all, files);
        assert_eq!(shard(files.clone(), 2, 3).len(), 3);
        assert_eq!(parse_shard("2/8"), Ok((2, 8)));
        assert!(parse_shard("0/8").is_err() && parse_shard("9/8").is_err());
        assert!(parse_shard("x").is_err());
    }
}
