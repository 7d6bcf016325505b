//! `scan` (files and directories in parallel, one line each, findings
//! across files) and `merge` (shard reports into one).

use super::cluster::NodeFlags;
use super::{at_or_above, output, threshold, OutputError, Setup};
use crate::cli::{FailOn, GlobalArgs, MergeArgs, ScanArgs};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpcap::analysis::Analyzer;
use kpcap::capture::archive;
use kpcap::detect::Evidence;
use kpcap::error::CaptureError;
use kpcap::nodes::{ClusterReport, NodeCapture, NodeFacts};
use kpcap::report::scan::{file_value, ScanBody, ScanOutput};
use kpcap::scan::{self, Digest, FileLine, Found, ScanDocument, ScanReport, Shard, Status};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn scan(args: ScanArgs, global: &GlobalArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let (analyzer, pool, settings) = (
        setup.analyzer(Evidence::Brief),
        &setup.pool,
        &setup.settings,
    );
    let mut files = scan::discover(&args.paths);
    let shard = shard(&args)?;
    if let Some(shard) = shard {
        files = scan::shard(files, shard.index, shard.count);
    }
    let cidrs = setup.topology.describe();
    let bytes = ScanBytes {
        total: files.iter().map(file_size).sum(),
        ..ScanBytes::default()
    };
    let progress = progress_bar(files.len() as u64, global.quiet);
    let bytes = Arc::new(bytes);
    follow_bytes(&progress, &bytes);
    let out = Mutex::new(output(
        args.common.format,
        args.limit,
        args.common.output.as_deref(),
        global,
    )?);
    // The first failed write: the files not started yet are skipped.
    let failed_write: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let stopped = || failed_write.lock().expect("write error lock").is_some();
    let one_file = |found: &Found| {
        if stopped() {
            return ScanReport::empty(cidrs.clone(), settings.clone());
        }
        let lines = match found {
            Found::File(path) => scan_path(&analyzer, path, &setup.nodes),
            Found::Line(line) => vec![(**line).clone()],
        };
        let mut reports = Vec::with_capacity(lines.len());
        for line in lines {
            progress.suspend(|| {
                for warning in line.digest.iter().flat_map(|d| &d.warnings) {
                    eprintln!("kpcap: warning: {}: {warning}", line.file);
                }
                if let Some(error) = line.error.as_ref().filter(|_| line.status == Status::Error) {
                    eprintln!("kpcap: error: {}: {error}", line.file);
                }
            });
            // NDJSON: as each file finishes, in completion order.
            if let Err(e) = out.lock().expect("stdout lock").stream(&file_value(&line)) {
                failed_write
                    .lock()
                    .expect("write error lock")
                    .get_or_insert(e);
            }
            reports.push(ScanReport::of(line, cidrs.clone(), settings.clone()));
        }
        progress.inc(1);
        bytes.done.fetch_add(file_size(found), Ordering::Relaxed);
        merge_all(reports).unwrap_or_else(|| ScanReport::empty(cidrs.clone(), settings.clone()))
    };
    let merge = |a: ScanReport, b: ScanReport| a.merge(b).expect("one scan, one setting");
    let empty = || ScanReport::empty(cidrs.clone(), settings.clone());
    // Large files one at a time, each with every thread on its chunks;
    // then the small ones side by side, one per thread. Memory then holds
    // one large file's state, or a few small ones', never several large.
    let (large, small): (Vec<Found>, Vec<Found>) =
        (files.into_iter()).partition(|found| matches!(found, Found::File(path) if is_large(path)));
    let report = pool.install(|| {
        bytes.in_large_file.store(true, Ordering::Relaxed);
        let large = (large.iter())
            .map(|found| {
                kpcap::capture::progress::restart();
                one_file(found)
            })
            .fold(empty(), merge);
        bytes.in_large_file.store(false, Ordering::Relaxed);
        let small = small.par_iter().map(one_file).reduce(empty, merge);
        merge(large, small)
    });
    let mut report = report;
    report.shards.extend(shard);
    progress.finish_and_clear();
    if let Some(e) = failed_write.into_inner().expect("write error lock") {
        return Err(OutputError(e).into());
    }
    let mut out = out.into_inner().expect("stdout lock");
    let cluster = report.nodes(setup.names.as_ref());
    print(&mut out, &report, cluster.as_ref(), true)?;
    out.into_inner().finish()?;
    Ok(exit_code(&report, cluster.as_ref(), args.fail_on))
}

/// The report in the table or NDJSON form, then as a JSON document.
fn print<W: std::io::Write>(
    out: &mut kpcap::report::Output<W>,
    report: &ScanReport,
    cluster: Option<&ClusterReport>,
    files_streamed: bool,
) -> Result<()> {
    let printed = ScanOutput {
        report,
        files_streamed,
        cluster,
    };
    out.report(&printed).map_err(OutputError)?;
    let body = ScanBody { report, cluster };
    out.document(scan::SCHEMA, &body).map_err(OutputError)?;
    Ok(())
}

/// The shard of `--shard I/N`, or of `--shard-from-env VAR/N` (VAR holds
/// a 0-based index, as Kubernetes sets JOB_COMPLETION_INDEX).
fn shard(args: &ScanArgs) -> Result<Option<Shard>> {
    if let Some(text) = &args.shard {
        let (index, count) = scan::parse_shard(text).map_err(anyhow::Error::msg)?;
        return Ok(Some(Shard { index, count }));
    }
    let Some(text) = &args.shard_from_env else {
        return Ok(None);
    };
    let flag = format!("--shard-from-env {text}");
    let (var, count) = (text.split_once('/'))
        .and_then(|(var, n)| Some((var, n.trim().parse::<usize>().ok().filter(|n| *n > 0)?)))
        .with_context(|| {
            format!("{flag}: expected VAR/N with N >= 1, e.g. JOB_COMPLETION_INDEX/8")
        })?;
    let value = std::env::var(var).with_context(|| format!("{flag}: {var} is not set"))?;
    match value.trim().parse::<usize>() {
        Ok(index) if index < count => Ok(Some(Shard {
            index: index + 1,
            count,
        })),
        _ => anyhow::bail!("{flag}: {var}={value:?} is not a 0-based index below {count}"),
    }
}

/// The reports merged pairwise, in rounds: the lines of an archive of
/// many members cost n log n, not a merge of a growing report per member.
fn merge_all(mut reports: Vec<ScanReport>) -> Option<ScanReport> {
    while reports.len() > 1 {
        let mut pairs = reports.into_iter();
        let mut merged = Vec::new();
        while let Some(a) = pairs.next() {
            merged.push(match pairs.next() {
                Some(b) => a.merge(b).expect("one scan, one setting"),
                None => a,
            });
        }
        reports = merged;
    }
    reports.pop()
}

/// Files this large (compressed ones: an eighth of it, as captures
/// compress about 8:1) are analyzed one at a time, with every thread.
const LARGE_FILE_BYTES: u64 = 64 << 20;

fn is_large(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let threshold = if kpcap::capture::compression_of(path).is_some() {
        LARGE_FILE_BYTES / 8
    } else {
        LARGE_FILE_BYTES
    };
    meta.len() >= threshold
}

/// Analyzes one file into its line, or a tar archive into a line per
/// member (`archive.tar:member.pcap`); never fails.
fn scan_path(analyzer: &Analyzer<'_>, path: &Path, nodes: &NodeFlags) -> Vec<FileLine> {
    let file = scan::file_name(path);
    if !archive::is_tar(path) {
        let line = match analyzer.names {
            // With the cluster's files: the node's facts in the digest.
            Some(directory) => {
                let assigned = nodes.of(path);
                let result = analyzer.analyze_node(&file, &[path.to_path_buf()], assigned);
                node_line(file, result.map_err(|e| e.source), directory, analyzer)
            }
            None => {
                let result = analyzer.analyze(&file, &[path.to_path_buf()]);
                file_line(file, result.map_err(|e| e.source))
            }
        };
        return vec![line];
    }
    let mut members = match archive::Members::open(path, analyzer.chunk_bytes) {
        Ok(members) => members,
        Err(e) => return vec![file_line(file, Err(e))],
    };
    let mut lines = Vec::new();
    loop {
        match members.next_member() {
            Ok(Some(member)) => {
                let name = format!("{file}:{}", member.name);
                let line = match analyzer.names {
                    Some(directory) => {
                        let assigned = nodes.of(Path::new(&name));
                        let result = (member.input)
                            .and_then(|input| analyzer.analyze_node_once(&name, input, assigned));
                        node_line(name, result, directory, analyzer)
                    }
                    None => {
                        let result =
                            (member.input).and_then(|input| analyzer.analyze_once(&name, input));
                        file_line(name, result)
                    }
                };
                lines.push(line);
            }
            Ok(None) => break,
            Err(e) => {
                lines.push(file_line(file, Err(e)));
                break;
            }
        }
    }
    lines
}

/// A file's line from its analysis as a capture of a node: its digest
/// carries the node's facts.
fn node_line(
    file: String,
    result: Result<(kpcap::analysis::Outcome, kpcap::analysis::Sightings), CaptureError>,
    directory: &kpcap::cluster::Directory,
    analyzer: &Analyzer<'_>,
) -> FileLine {
    match result {
        Ok((outcome, sightings)) => {
            let capture = NodeCapture {
                file: &file,
                outcome: &outcome,
                sightings: &sightings,
            };
            let facts = NodeFacts::of(&capture, directory, analyzer.settings);
            let mut line = file_line(file.clone(), Ok(outcome));
            if let Some(digest) = &mut line.digest {
                digest.node = facts;
            }
            line
        }
        Err(e) => file_line(file, Err(e)),
    }
}

/// A file's line from its analysis.
fn file_line(file: String, result: Result<kpcap::analysis::Outcome, CaptureError>) -> FileLine {
    match result {
        Ok(report) => FileLine {
            file,
            status: Status::Analyzed,
            digest: Some(Digest::of(&report)),
            error: None,
        },
        Err(e) => {
            let status = match e {
                CaptureError::NotACapture { .. } | CaptureError::Empty => Status::NotACapture,
                _ => Status::Error,
            };
            FileLine {
                file,
                status,
                digest: None,
                error: Some(format!("{:#}", anyhow::Error::new(e))),
            }
        }
    }
}

/// Bytes of a scan's files: all, finished, and whether the one being read
/// now is a large one, read alone (whose progress then counts too).
#[derive(Default)]
struct ScanBytes {
    total: u64,
    done: AtomicU64,
    in_large_file: AtomicBool,
}

fn file_size(found: &Found) -> u64 {
    match found {
        Found::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
        Found::Line(_) => 0,
    }
}

/// Shows the bytes read beside the files done, while the bar lasts.
fn follow_bytes(bar: &ProgressBar, bytes: &Arc<ScanBytes>) {
    let (bar, bytes) = (bar.clone(), Arc::clone(bytes));
    std::thread::spawn(move || {
        while !bar.is_finished() {
            let mut done = bytes.done.load(Ordering::Relaxed);
            if bytes.in_large_file.load(Ordering::Relaxed) {
                done += kpcap::capture::progress::position();
            }
            bar.set_message(format!(
                "{} of {}",
                indicatif::HumanBytes(done.min(bytes.total)),
                indicatif::HumanBytes(bytes.total)
            ));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// A progress bar on stderr, drawn only if the scan lasts more than a
/// second and stderr is a terminal (and not `--quiet`): files, and bytes.
fn progress_bar(files: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(files), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("{elapsed} [{bar:30}] {pos}/{len} files, {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    if !quiet && std::io::stderr().is_terminal() {
        let later = bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            if !later.is_finished() {
                later.set_draw_target(ProgressDrawTarget::stderr());
                later.enable_steady_tick(Duration::from_millis(200));
            }
        });
    }
    bar
}

/// Bit 1: a finding at or above `--fail-on`; bit 2: an unreadable file;
/// bit 3: nothing analyzed, or a file's verdict inconclusive (not with
/// `--fail-on never`). README, "Exit codes".
fn exit_code(report: &ScanReport, cluster: Option<&ClusterReport>, fail_on: FailOn) -> i32 {
    let a = &report.aggregate;
    let threshold = threshold(fail_on);
    let findings = at_or_above(a.worst, threshold)
        || at_or_above(cluster.and_then(ClusterReport::worst), threshold);
    let inconclusive =
        cluster.is_some_and(|c| c.status == kpcap::detect::verdict::Status::Inconclusive);
    let unsure = threshold.is_some() && (a.analyzed == 0 || a.inconclusive > 0 || inconclusive);
    i32::from(findings) | if a.errors > 0 { 2 } else { 0 } | if unsure { 4 } else { 0 }
}

pub fn merge(args: MergeArgs, global: &GlobalArgs) -> Result<i32> {
    let mut merged: Option<ScanReport> = None;
    // Which report brought each shard and each file: one seen twice is
    // the same work counted twice.
    let mut shards = std::collections::BTreeMap::new();
    let mut files = std::collections::HashMap::new();
    for path in &args.reports {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let document: ScanDocument = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a `kpcap scan --format json` report",
                path.display()
            )
        })?;
        if document.schema != scan::SCHEMA {
            anyhow::bail!(
                "{}: schema {} (expected {})",
                path.display(),
                document.schema,
                scan::SCHEMA
            );
        }
        let report = document.report;
        for shard in &report.shards {
            if let Some(earlier) = shards.insert(*shard, path) {
                anyhow::bail!(
                    "{}: shard {shard} is already in {}: each shard is merged once",
                    path.display(),
                    earlier.display()
                );
            }
        }
        for line in &report.files {
            if let Some(earlier) = files.insert(line.file.clone(), path) {
                anyhow::bail!(
                    "{}: file {} is also in {}: the reports' file lists overlap",
                    path.display(),
                    line.file,
                    earlier.display()
                );
            }
        }
        merged = Some(match merged {
            None => report,
            Some(earlier) => earlier
                .merge(report)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        });
    }
    let mut report = merged.context("no reports given")?;
    // Every shard of one sweep: the merged report is the whole scan's.
    let count = report.shards.first().map(|s| s.count);
    let whole = (1..=count.unwrap_or(0)).map(|index| Shard {
        index,
        count: count.unwrap_or(0),
    });
    if report.shards.iter().copied().eq(whole) {
        report.shards.clear();
    }
    let mut out = output(args.format, args.limit, args.output.as_deref(), global)?;
    // Recomputed from the merged files' node facts; the dump adds its
    // nodes without captures and the CNI's settings.
    let directory = match args.cluster.is_empty() {
        true => None,
        false => {
            let inventory = kpcap::cluster::Inventory::load(&args.cluster).context("--cluster")?;
            for warning in &inventory.warnings {
                eprintln!("kpcap: warning: {warning}");
            }
            Some(kpcap::cluster::Directory::new(&inventory, None))
        }
    };
    let cluster = report.nodes(directory.as_ref());
    print(&mut out, &report, cluster.as_ref(), false)?;
    out.into_inner().finish()?;
    Ok(exit_code(&report, cluster.as_ref(), args.fail_on))
}
