//! `diff`: analyze BEFORE and AFTER and compare their findings.

use super::{output, progress, OutputError, Setup};
use crate::cli::{DiffArgs, GlobalArgs};
use anyhow::Result;
use kpcap::analysis::display_name;
use kpcap::detect::Evidence;
use kpcap::diff::Diff;
use kpcap::report::diff::{Compared, DiffReport};
use kpcap::scan::Digest;

pub fn diff(args: DiffArgs, global: &GlobalArgs) -> Result<i32> {
    let setup = Setup::new(&args.common, Some(&args.detectors))?;
    let (analyzer, pool) = (setup.analyzer(Evidence::Brief), &setup.pool);
    let digest = |path: &std::path::PathBuf| -> Result<Compared> {
        let file = display_name(path);
        let meter = progress::Meter::start(&file, Some(path), progress::wanted(global.quiet));
        let outcome = pool.install(|| analyzer.analyze(&file, std::slice::from_ref(path)))?;
        drop(meter);
        for warning in &outcome.header.warnings {
            eprintln!("kpcap: warning: {file}: {warning}");
        }
        let digest = Digest::of(&outcome);
        Ok(Compared {
            file,
            digest,
            timeline: outcome.timeline,
        })
    };
    let (before, after) = (digest(&args.before)?, digest(&args.after)?);
    let diff = Diff::between(&before.digest, &after.digest);
    let code = match (diff.resolved, diff.unconfirmed.is_empty()) {
        (true, _) => 0,
        (false, false) => 3,
        (false, true) => 1,
    };
    let report = DiffReport {
        before,
        after,
        diff,
    };
    let mut out = output(args.common.format, 0, args.common.output.as_deref(), global)?;
    out.report(&report).map_err(OutputError)?;
    out.document(kpcap::report::diff::SCHEMA, &report)
        .map_err(OutputError)?;
    out.into_inner().finish()?;
    Ok(code)
}
