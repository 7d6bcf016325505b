//! `analyze` and `flows`: one report per capture (or one for rotated files
//! read as one with `--merge`), printed as each finishes.

use super::{
    at_or_above, drop_in_background, exiting, threshold, write_document, Setup, Stopwatch,
};
use crate::cli::{AnalyzeArgs, By, CommonArgs, FlowsArgs, OutputFormat};
use anyhow::Result;
use kpcap::analysis::{display_name, in_capture_order};
use kpcap::detect::Evidence;
use kpcap::report::{CaptureHeader, FlowsReport, Grouping};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

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

/// Analyzes each logical capture in turn. A bad file is reported on stderr
/// and recorded; the others go on.
fn for_each_capture<T: Serialize>(
    paths: &[PathBuf],
    merge: bool,
    common: &CommonArgs,
    mut analyze: impl FnMut(&str, &[PathBuf]) -> Result<T>,
) -> Result<(Vec<Entry<T>>, bool)> {
    let mut entries = Vec::new();
    let mut ok = true;
    for parts in logical_captures(paths, merge, common.chunk_bytes)? {
        let name = capture_name(&parts);
        match analyze(&name, &parts) {
            Ok(report) => entries.push(Entry::Report(report)),
            Err(e) => {
                eprintln!("kpcap: error: {e:#}");
                entries.push(Entry::Failed {
                    file: name,
                    error: format!("{e:#}"),
                });
                ok = false;
            }
        }
    }
    Ok((entries, ok))
}

fn print_warnings(name: &str, warnings: &[String]) {
    for warning in warnings {
        eprintln!("kpcap: warning: {name}: {warning}");
    }
}

pub fn flows(args: FlowsArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, None)?;
    let (analyzer, pool) = (setup.analyzer(Evidence::All), &setup.pool);
    let (topology, reading) = (&setup.topology, &setup.reading);
    let by = match args.by {
        By::Pair => Grouping::Pair,
        By::FiveTuple => Grouping::FiveTuple,
    };
    // Buffered: stdout is line-buffered, and JSON reports are megabytes.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let format = args.common.format;
    let (entries, ok) =
        for_each_capture(&args.captures, args.merge, &args.common, |name, parts| {
            let (table, info) = pool.install(|| analyzer.flows(parts))?;
            print_warnings(name, &info.warnings);
            let names = reading.names_seen(&info.interfaces, &table.summary);
            let mut header = CaptureHeader::new(name, &info, &table.summary, &names);
            if parts.len() > 1 {
                header.parts = parts.iter().map(|p| display_name(p)).collect();
            }
            let report = FlowsReport::new(header, &table, topology, &names, by);
            drop_in_background(table);
            match format {
                // Printed as each capture finishes, so batch runs show progress.
                OutputFormat::Table => writeln!(out, "{}", report.render(topology, args.limit))?,
                OutputFormat::Ndjson => {
                    serde_json::to_writer(&mut out, &report)?;
                    writeln!(out)?;
                }
                OutputFormat::Json => {}
            }
            out.flush()?;
            Ok(report)
        })?;
    if format == OutputFormat::Json {
        write_document(&mut out, "kpcap.flows/2", topology.clone(), None, &entries)?;
    }
    out.flush()?;
    exiting(entries);
    Ok(if ok { 0 } else { 2 })
}

pub fn analyze(args: AnalyzeArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let format = args.common.format;
    // A table shows one flow per pod egress group and counts the queries
    // each DNS rcode answered.
    let evidence = match format {
        OutputFormat::Table => Evidence::Brief,
        OutputFormat::Json | OutputFormat::Ndjson => Evidence::All,
    };
    let (analyzer, pool) = (setup.analyzer(evidence), &setup.pool);
    let topology = &setup.topology;
    let threshold = threshold(args.fail_on);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failing = false;
    let (entries, ok) =
        for_each_capture(&args.captures, args.merge, &args.common, |name, parts| {
            let mut clock = Stopwatch::from_env();
            let (mut observations, info) = pool.install(|| analyzer.observe(parts))?;
            clock.lap("walk, decode, observe, merge");
            let report = pool.install(|| analyzer.report(name, parts, &mut observations, &info));
            print_warnings(name, &report.header.warnings);
            drop_in_background(observations);
            clock.lap("detectors");
            failing |= at_or_above(report.worst(), threshold);
            match format {
                OutputFormat::Table => writeln!(out, "{}", report.render(topology, args.limit))?,
                OutputFormat::Ndjson => {
                    for line in report.ndjson_lines() {
                        serde_json::to_writer(&mut out, &line)?;
                        writeln!(out)?;
                    }
                }
                OutputFormat::Json => {}
            }
            out.flush()?;
            clock.lap("report");
            Ok(report)
        })?;
    if format == OutputFormat::Json {
        write_document(
            &mut out,
            "kpcap.analyze/1",
            topology.clone(),
            Some(setup.settings.clone()),
            &entries,
        )?;
    }
    out.flush()?;
    exiting(entries);
    Ok(match (ok, failing) {
        (false, _) => 2,
        (true, true) => 1,
        (true, false) => 0,
    })
}
