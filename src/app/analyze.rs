//! `analyze` and `flows`: one report per capture (or one for rotated files
//! read as one with `--merge`), printed as each finishes.

use super::{
    at_or_above, drop_in_background, exiting, output, progress, threshold, OutputError, Setup,
    Stopwatch,
};
use crate::cli::{AnalyzeArgs, By, CommonArgs, FlowsArgs, GlobalArgs, OutputFormat};
use anyhow::Result;
use kpcap::analysis::{display_name, in_capture_order, FileError};
use kpcap::capture::{archive, Input};
use kpcap::detect::verdict::Status;
use kpcap::detect::Evidence;
use kpcap::error::CaptureError;
use kpcap::nodes::{ClusterReport, NodeCapture};
use kpcap::report::Output;
use kpcap::report::{CaptureReport, Captures, FlowsReport, Grouping};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// One capture's outcome in a JSON document: its report or its error.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<T: Serialize> {
    Report(T),
    Failed { file: String, error: String },
}

/// The logical captures of a run: each file, or all of them as rotated
/// parts of one (`--merge`, ordered by their first packet).
fn logical_captures(
    paths: &[PathBuf],
    merge: bool,
    chunk_bytes: usize,
) -> Result<Vec<Vec<PathBuf>>> {
    if !merge || paths.len() < 2 {
        return Ok(paths.iter().map(|p| vec![p.clone()]).collect());
    }
    Ok(vec![in_capture_order(paths, chunk_bytes)?])
}

fn capture_name(parts: &[PathBuf]) -> String {
    parts
        .iter()
        .map(|p| display_name(p))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What one report is made of: files (rotated parts of one capture, or
/// one file), or a member of a tar archive, already opened.
enum Capture<'p> {
    Files(&'p [PathBuf]),
    Member(Box<Input>, &'p Path),
}

impl<'p> Capture<'p> {
    /// The files, for the header (none for a member).
    fn parts(&self) -> &'p [PathBuf] {
        match self {
            Capture::Files(parts) => parts,
            Capture::Member(..) => &[],
        }
    }

    /// The one file read, whose size progress is measured against (none
    /// for rotated parts read as one).
    fn input_file(&self) -> Option<&Path> {
        match self {
            Capture::Files([one]) => Some(one),
            Capture::Files(_) => None,
            Capture::Member(_, archive) => Some(archive),
        }
    }

    /// Reads the capture in `pool`, with `files` or, for a member, `once`,
    /// drawing progress (when `shown`) while it lasts.
    fn read<T: Send>(
        self,
        name: &str,
        pool: &rayon::ThreadPool,
        shown: bool,
        files: impl FnOnce(&[PathBuf]) -> Result<T, FileError> + Send,
        once: impl FnOnce(Input) -> Result<T, CaptureError> + Send,
    ) -> Result<T, FileError> {
        let _meter = progress::Meter::start(name, self.input_file(), shown);
        match self {
            Capture::Files(parts) => pool.install(|| files(parts)),
            Capture::Member(input, _) => pool.install(|| once(*input)).map_err(named(name)),
        }
    }
}

/// Analyzes each logical capture in turn, each capture member of a tar
/// archive as a capture of its own (`archive.tar.gz:member.pcap`), and
/// writes its report with `write`. A bad file is reported on stderr and
/// recorded, and the others go on; a failed write ends the run.
fn for_each_capture<T: Serialize>(
    paths: &[PathBuf],
    merge: bool,
    common: &CommonArgs,
    mut analyze: impl FnMut(&str, Capture<'_>) -> Result<T, FileError>,
    mut write: impl FnMut(&T) -> Result<(), OutputError>,
    mut write_error: impl FnMut(&str, &str) -> Result<(), OutputError>,
) -> Result<(Vec<Entry<T>>, bool)> {
    let mut entries = Vec::new();
    let mut ok = true;
    let mut record = |name: String, result: Result<T, FileError>| -> Result<(), OutputError> {
        match result {
            Ok(report) => {
                write(&report)?;
                entries.push(Entry::Report(report));
            }
            Err(e) => {
                let error = format!("{:#}", anyhow::Error::new(e));
                eprintln!("kpcap: error: {error}");
                // NDJSON has a line for every capture, failed ones too.
                write_error(&name, &error)?;
                entries.push(Entry::Failed { file: name, error });
                ok = false;
            }
        }
        Ok(())
    };
    for parts in logical_captures(paths, merge, common.chunk_bytes)? {
        let name = capture_name(&parts);
        if parts.len() == 1 && archive::is_tar(&parts[0]) {
            let failed = named(&name);
            let mut members = match archive::Members::open(&parts[0], common.chunk_bytes) {
                Ok(members) => members,
                Err(e) => {
                    record(name.clone(), Err(failed(e)))?;
                    continue;
                }
            };
            loop {
                let member = match members.next_member() {
                    Ok(Some(member)) => member,
                    Ok(None) => break,
                    Err(e) => {
                        record(name.clone(), Err(failed(e)))?;
                        break;
                    }
                };
                let member_name = format!("{name}:{}", member.name);
                let result = match member.input {
                    Ok(input) => analyze(&member_name, Capture::Member(Box::new(input), &parts[0])),
                    Err(CaptureError::NotACapture { .. } | CaptureError::Empty) => {
                        eprintln!("kpcap: warning: {member_name}: not a capture, skipped");
                        continue;
                    }
                    Err(source) => Err(named(&member_name)(source)),
                };
                record(member_name, result)?;
            }
            continue;
        }
        let result = analyze(&name, Capture::Files(&parts));
        record(name, result)?;
    }
    Ok((entries, ok))
}

/// An error of the capture (file, archive or member) called `name`.
fn named(name: &str) -> impl Fn(CaptureError) -> FileError + '_ {
    move |source| FileError {
        file: name.to_string(),
        source,
    }
}

/// The NDJSON line of a capture that could not be read: every capture
/// has a line.
fn failed_line<W: std::io::Write>(
    out: &mut Output<W>,
    file: &str,
    error: &str,
) -> Result<(), OutputError> {
    let line = serde_json::json!({"file": file, "type": "error", "error": error});
    Ok(out.stream(&line)?)
}

fn print_warnings(name: &str, warnings: &[String]) {
    for warning in warnings {
        eprintln!("kpcap: warning: {name}: {warning}");
    }
}

pub fn flows(args: FlowsArgs, global: &GlobalArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, None)?;
    let (analyzer, pool, topology) = (setup.analyzer(Evidence::All), &setup.pool, &setup.topology);
    let by = match args.by {
        By::Pair => Grouping::Pair,
        By::FiveTuple => Grouping::FiveTuple,
    };
    let out = RefCell::new(output(
        args.common.format,
        args.limit,
        args.common.output.as_deref(),
        global,
    )?);
    let shown = progress::wanted(global.quiet);
    let (entries, ok) = for_each_capture(
        &args.captures,
        args.merge,
        &args.common,
        |name, capture| {
            let parts = capture.parts();
            let (table, info) = capture.read(
                name,
                pool,
                shown,
                |parts| analyzer.flows(parts),
                |input| analyzer.flows_once(input),
            )?;
            print_warnings(name, &info.warnings);
            let names = analyzer.interface_names(&info, &table.summary);
            let header = analyzer.header(name, parts, &info, &table.summary, &names);
            let report = FlowsReport::new(header, &table, topology, &names, by);
            drop_in_background(table);
            Ok(report)
        },
        |report| {
            Ok(out.borrow_mut().report(&CaptureReport {
                of: report,
                topology,
            })?)
        },
        |file, error| failed_line(&mut out.borrow_mut(), file, error),
    )?;
    let body = Captures {
        topology,
        settings: None,
        captures: &entries,
        cluster: None,
    };
    let mut out = out.into_inner();
    out.document("kpcap.flows/2", &body).map_err(OutputError)?;
    out.into_inner().finish()?;
    exiting(entries);
    Ok(if ok { 0 } else { 2 })
}

pub fn analyze(args: AnalyzeArgs, global: &GlobalArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    // A table shows one flow per pod egress group and counts the queries
    // each DNS rcode answered.
    let evidence = match args.common.format {
        OutputFormat::Table | OutputFormat::Markdown => Evidence::Brief,
        OutputFormat::Json | OutputFormat::Ndjson | OutputFormat::Html => Evidence::All,
    };
    let (analyzer, pool, topology) = (setup.analyzer(evidence), &setup.pool, &setup.topology);
    let threshold = threshold(args.fail_on);
    let out = RefCell::new(output(
        args.common.format,
        args.limit,
        args.common.output.as_deref(),
        global,
    )?);
    let shown = progress::wanted(global.quiet);
    let mut failing = false;
    let mut inconclusive = false;
    let clock = Stopwatch::from_env();
    // Several nodes' captures with the cluster's files: compared at the
    // end, and read in name order so the report does not depend on the
    // order they were given in.
    let across_nodes = setup.names.is_some()
        && !args.merge
        && (args.captures.len() > 1
            || !setup.nodes.of_file.is_empty()
            || args.captures.iter().any(|p| archive::is_tar(p)));
    let mut captures = args.captures.clone();
    if across_nodes {
        captures.sort_by_key(|p| display_name(p));
        for (file, node) in setup.nodes.unmatched(&captures) {
            eprintln!(
                "kpcap: warning: --node {node}={}: no capture of that name",
                file.display()
            );
        }
    }
    let sightings = RefCell::new(Vec::new());
    let (entries, ok) = for_each_capture(
        &captures,
        args.merge,
        &args.common,
        |name, capture| {
            let parts = capture.parts();
            let (mut observations, info) = capture.read(
                name,
                pool,
                shown,
                |parts| analyzer.observe(parts),
                |input| analyzer.observe_once(input),
            )?;
            clock.lap("walk, decode, observe, merge");
            let outcome = if across_nodes {
                let assigned = setup.nodes.of(Path::new(name));
                let (outcome, seen) = pool.install(|| {
                    analyzer.node_outcome(name, parts, &mut observations, &info, assigned)
                });
                sightings.borrow_mut().push(seen);
                outcome
            } else {
                pool.install(|| analyzer.outcome(name, parts, &mut observations, &info))
            };
            print_warnings(name, &outcome.header.warnings);
            drop_in_background(observations);
            clock.lap("detectors");
            failing |= at_or_above(outcome.worst(), threshold);
            inconclusive |= outcome.verdict.status == Status::Inconclusive;
            Ok(outcome)
        },
        |outcome| {
            out.borrow_mut().report(&CaptureReport {
                of: outcome,
                topology,
            })?;
            clock.lap("report");
            Ok(())
        },
        |file, error| failed_line(&mut out.borrow_mut(), file, error),
    )?;
    let cluster = match (&setup.names, across_nodes) {
        (Some(directory), true) => {
            let sightings = sightings.into_inner();
            let outcomes = entries.iter().filter_map(|entry| match entry {
                Entry::Report(outcome) => Some(outcome),
                Entry::Failed { .. } => None,
            });
            let captures: Vec<NodeCapture<'_>> = (outcomes.zip(&sightings))
                .map(|(outcome, sightings)| NodeCapture {
                    file: &outcome.header.file,
                    outcome,
                    sightings,
                })
                .collect();
            let compare = captures.len() > 1 || !setup.nodes.of_file.is_empty();
            compare.then(|| ClusterReport::new(&captures, directory, &setup.settings))
        }
        _ => None,
    };
    if let Some(report) = &cluster {
        out.borrow_mut().report(report).map_err(OutputError)?;
        failing |= at_or_above(report.worst(), threshold);
        inconclusive |= report.status == Status::Inconclusive;
    }
    let body = Captures {
        topology,
        settings: Some(&setup.settings),
        captures: &entries,
        cluster: cluster.as_ref(),
    };
    let mut out = out.into_inner();
    out.document("kpcap.analyze/2", &body)
        .map_err(OutputError)?;
    out.into_inner().finish()?;
    exiting(entries);
    Ok(exit_code(ok, failing, inconclusive && threshold.is_some()))
}

/// `analyze`'s exit code (README, "Exit codes"): an unreadable capture
/// first, then a finding at `--fail-on`, then a verdict that could not
/// judge everything.
fn exit_code(ok: bool, failing: bool, inconclusive: bool) -> i32 {
    match (ok, failing, inconclusive) {
        (false, _, _) => 2,
        (true, true, _) => 1,
        (true, false, true) => 3,
        (true, false, false) => 0,
    }
}
