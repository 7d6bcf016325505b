//! `scan` (files and directories in parallel, one line each, findings
//! across files) and `merge` (shard reports into one).

use super::{at_or_above, threshold, Setup};
use crate::cli::{FailOn, MergeArgs, OutputFormat, ScanArgs};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpcap::analysis::Analyzer;
use kpcap::detect::Evidence;
use kpcap::error::CaptureError;
use kpcap::report::header::describe_topology;
use kpcap::scan::{self, Digest, FileLine, ScanReport, Status};
use rayon::prelude::*;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub fn scan(args: ScanArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let (analyzer, pool, settings) = (
        setup.analyzer(Evidence::Brief),
        &setup.pool,
        &setup.settings,
    );
    let mut files = scan::discover(&args.paths).map_err(|e| {
        // walkdir's own message repeats its I/O error's.
        let path = e
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match e.io_error() {
            Some(io) => anyhow::anyhow!("{path}: {io}"),
            None => anyhow::anyhow!("{e}"),
        }
    })?;
    if let Some(text) = &args.shard {
        let (index, count) = scan::parse_shard(text).map_err(anyhow::Error::msg)?;
        files = scan::shard(files, index, count);
    }
    let cidrs = describe_topology(&setup.topology);
    let format = args.common.format;
    let progress = progress_bar(files.len() as u64, args.quiet);
    let out = Mutex::new(std::io::BufWriter::new(std::io::stdout()));
    let one_file = |path: &PathBuf| {
        let line = scan_file(&analyzer, path);
        progress.suspend(|| {
            for warning in line.digest.iter().flat_map(|d| &d.warnings) {
                eprintln!("kpcap: warning: {}: {warning}", line.file);
            }
            if let Some(error) = line.error.as_ref().filter(|_| line.status == Status::Error) {
                eprintln!("kpcap: error: {}: {error}", line.file);
            }
        });
        progress.inc(1);
        if format == OutputFormat::Ndjson {
            // As each file finishes: completion order.
            let mut out = out.lock().expect("stdout lock");
            let _ = serde_json::to_writer(&mut *out, &json!({"type": "file", "line": &line}));
            let _ = writeln!(out);
            let _ = out.flush();
        }
        ScanReport::of(line, cidrs.clone(), settings.clone())
    };
    let merge = |a: ScanReport, b: ScanReport| a.merge(b).expect("one scan, one setting");
    let empty = || ScanReport::empty(cidrs.clone(), settings.clone());
    // Large files one at a time, each with every thread on its chunks;
    // then the small ones side by side, one per thread. Memory then holds
    // one large file's state, or a few small ones', never several large.
    let (large, small): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|path| is_large(path));
    let report = pool.install(|| {
        let large = large.iter().map(one_file).fold(empty(), merge);
        let small = small.par_iter().map(one_file).reduce(empty, merge);
        merge(large, small)
    });
    progress.finish_and_clear();
    let mut out = out.into_inner().expect("stdout lock");
    write_report(&mut out, &report, format, args.limit, true)?;
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

/// Prints the report. NDJSON: the file lines (unless they were streamed
/// already), then one aggregate line.
fn write_report(
    out: &mut impl Write,
    report: &ScanReport,
    format: OutputFormat,
    limit: usize,
    streamed: bool,
) -> Result<()> {
    match format {
        OutputFormat::Table => write!(out, "{}", kpcap::report::scan::render(report, limit))?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            if !streamed {
                for line in &report.files {
                    serde_json::to_writer(&mut *out, &json!({"type": "file", "line": line}))?;
                    writeln!(out)?;
                }
            }
            let aggregate = json!({
                "type": "aggregate",
                "schema": report.schema,
                "cidrs": report.cidrs,
                "aggregate": report.aggregate,
            });
            serde_json::to_writer(&mut *out, &aggregate)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Bit 1: a finding at or above `--fail-on`; bit 2: an unreadable file.
fn exit_code(report: &ScanReport, fail_on: FailOn) -> i32 {
    let a = &report.aggregate;
    let findings = at_or_above(a.worst, threshold(fail_on));
    i32::from(findings) | if a.errors > 0 { 2 } else { 0 }
}

pub fn merge(args: MergeArgs) -> Result<i32> {
    let mut merged: Option<ScanReport> = None;
    for path in &args.reports {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: ScanReport = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a `kpcap scan --format json` report",
                path.display()
            )
        })?;
        if report.schema != scan::SCHEMA {
            anyhow::bail!(
                "{}: schema {} (expected {})",
                path.display(),
                report.schema,
                scan::SCHEMA
            );
        }
        merged = Some(match merged {
            None => report,
            Some(earlier) => earlier
                .merge(report)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        });
    }
    let report = merged.context("no reports given")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write_report(&mut out, &report, args.format, args.limit, false)?;
    Ok(exit_code(&report, args.fail_on))
}
