//! `diff`: analyze BEFORE and AFTER and compare their findings.

use super::Setup;
use crate::cli::{DiffArgs, OutputFormat};
use anyhow::Result;
use kpcap::analysis::display_name;
use kpcap::detect::Evidence;
use kpcap::diff::Diff;
use kpcap::scan::Digest;
use serde_json::json;
use std::io::Write;

pub fn diff(args: DiffArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let (analyzer, pool) = (setup.analyzer(Evidence::Brief), &setup.pool);
    let digest = |path: &std::path::PathBuf| -> Result<(String, Digest)> {
        let name = display_name(path);
        let report = pool.install(|| analyzer.analyze(&name, std::slice::from_ref(path)))?;
        for warning in &report.header.warnings {
            eprintln!("kpcap: warning: {name}: {warning}");
        }
        Ok((name, Digest::of(&report)))
    };
    let before = digest(&args.before)?;
    let after = digest(&args.after)?;
    let diff = Diff::between(&before.1, &after.1);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.common.format {
        OutputFormat::Table => write!(
            out,
            "{}",
            kpcap::report::diff::render((&before.0, &before.1), (&after.0, &after.1), &diff)
        )?,
        OutputFormat::Json | OutputFormat::Ndjson => {
            let doc = json!({
                "schema": "kpcap.diff/1",
                "kpcap_version": env!("CARGO_PKG_VERSION"),
                "before": {"file": before.0, "digest": before.1},
                "after": {"file": after.0, "digest": after.1},
                "diff": diff,
            });
            if args.common.format == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut out, &doc)?;
            } else {
                serde_json::to_writer(&mut out, &doc)?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if diff.resolved { 0 } else { 1 })
}
