//! `scan` (files and directories in parallel, one line each, findings
//! across files) and `merge` (shard reports into one).

use super::{at_or_above, output, threshold, OutputError, Setup};
use crate::cli::{FailOn, MergeArgs, ScanArgs};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpcap::analysis::Analyzer;
use kpcap::detect::Evidence;
use kpcap::error::CaptureError;
use kpcap::report::scan::{file_value, ScanOutput};
use kpcap::scan::{self, Digest, FileLine, Found, ScanDocument, ScanReport, Status};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

pub fn scan(args: ScanArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let (analyzer, pool, settings) = (
        setup.analyzer(Evidence::Brief),
        &setup.pool,
        &setup.settings,
    );
    let mut files = scan::discover(&args.paths);
    if let Some(text) = &args.shard {
        let (index, count) = scan::parse_shard(text).map_err(anyhow::Error::msg)?;
        files = scan::shard(files, index, count);
    }
    let cidrs = setup.topology.describe();
    let progress = progress_bar(files.len() as u64, args.quiet);
    let out = Mutex::new(output(args.common.format, args.limit));
    // The first failed write: the files not started yet are skipped.
    let failed_write: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let stopped = || failed_write.lock().expect("write error lock").is_some();
    let one_file = |found: &Found| {
        if stopped() {
            return ScanReport::empty(cidrs.clone(), settings.clone());
        }
        let line = match found {
            Found::File(path) => scan_file(&analyzer, path),
            Found::Line(line) => (**line).clone(),
        };
        progress.suspend(|| {
            for warning in line.digest.iter().flat_map(|d| &d.warnings) {
                eprintln!("kpcap: warning: {}: {warning}", line.file);
            }
            if let Some(error) = line.error.as_ref().filter(|_| line.status == Status::Error) {
                eprintln!("kpcap: error: {}: {error}", line.file);
            }
        });
        progress.inc(1);
        // NDJSON: as each file finishes, in completion order.
        if let Err(e) = out.lock().expect("stdout lock").stream(&file_value(&line)) {
            failed_write
                .lock()
                .expect("write error lock")
                .get_or_insert(e);
        }
        ScanReport::of(line, cidrs.clone(), settings.clone())
    };
    let merge = |a: ScanReport, b: ScanReport| a.merge(b).expect("one scan, one setting");
    let empty = || ScanReport::empty(cidrs.clone(), settings.clone());
    // Large files one at a time, each with every thread on its chunks;
    // then the small ones side by side, one per thread. Memory then holds
    // one large file's state, or a few small ones', never several large.
    let (large, small): (Vec<Found>, Vec<Found>) =
        (files.into_iter()).partition(|found| matches!(found, Found::File(path) if is_large(path)));
    let report = pool.install(|| {
        let large = large.iter().map(one_file).fold(empty(), merge);
        let small = small.par_iter().map(one_file).reduce(empty, merge);
        merge(large, small)
    });
    progress.finish_and_clear();
    if let Some(e) = failed_write.into_inner().expect("write error lock") {
        return Err(OutputError(e).into());
    }
    let mut out = out.into_inner().expect("stdout lock");
    let printed = ScanOutput {
        report: &report,
        files_streamed: true,
    };
    out.report(&printed).map_err(OutputError)?;
    out.document(scan::SCHEMA, &report).map_err(OutputError)?;
    Ok(exit_code(&report, args.fail_on))
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

/// Analyzes one file into its line; never fails.
fn scan_file(analyzer: &Analyzer<'_>, path: &Path) -> FileLine {
    let file = scan::file_name(path);
    match analyzer.analyze(&file, &[path.to_path_buf()]) {
        Ok(report) => FileLine {
            file,
            status: Status::Analyzed,
            digest: Some(Digest::of(&report)),
            error: None,
        },
        Err(e) => {
            let status = match e.source {
                CaptureError::NotACapture { .. } | CaptureError::Empty => Status::NotACapture,
                _ => Status::Error,
            };
            FileLine {
                file,
                status,
                digest: None,
                error: Some(format!("{:#}", anyhow::Error::new(e.source))),
            }
        }
    }
}

/// A progress bar on stderr, drawn only if the scan lasts more than a
/// second and stderr is a terminal (and not `--quiet`).
fn progress_bar(files: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(files), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("{elapsed} [{bar:30}] {pos}/{len} files") {
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
fn exit_code(report: &ScanReport, fail_on: FailOn) -> i32 {
    let a = &report.aggregate;
    let threshold = threshold(fail_on);
    let findings = at_or_above(a.worst, threshold);
    let unsure = threshold.is_some() && (a.analyzed == 0 || a.inconclusive > 0);
    i32::from(findings) | if a.errors > 0 { 2 } else { 0 } | if unsure { 4 } else { 0 }
}

pub fn merge(args: MergeArgs) -> Result<i32> {
    let mut merged: Option<ScanReport> = None;
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
        merged = Some(match merged {
            None => report,
            Some(earlier) => earlier
                .merge(report)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        });
    }
    let report = merged.context("no reports given")?;
    let mut out = output(args.format, args.limit);
    let printed = ScanOutput {
        report: &report,
        files_streamed: false,
    };
    out.report(&printed).map_err(OutputError)?;
    out.document(scan::SCHEMA, &report).map_err(OutputError)?;
    Ok(exit_code(&report, args.fail_on))
}
