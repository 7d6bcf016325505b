//! The `diff` report: counts before and after, then what was fixed, what
//! persists and what is new, one line each.

use super::analyze::short_list;
use super::output::{item, markdown_text, ndjson_line, opening, Document, Layout, Report};
use super::table::Sheet;
use crate::diff::{Change, Diff};
use crate::scan::{Digest, FindingKind};
use crate::time::format_span;
use indicatif::HumanCount;
use serde::Serialize;
use std::fmt::Write;

/// The JSON schema name of diff reports.
pub const SCHEMA: &str = "kpcap.diff/2";

/// One side of a diff: the capture and its digest.
#[derive(Debug, Serialize)]
pub struct Compared {
    pub file: String,
    pub digest: Digest,
    /// When its failures happened (drawn by the HTML report).
    #[serde(skip)]
    pub timeline: crate::analysis::Timeline,
}

/// The `diff` report: both sides and what changed.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub before: Compared,
    pub after: Compared,
    pub diff: Diff,
}

impl Report for DiffReport {
    fn table(&self, layout: &Layout) -> String {
        render(self, layout)
    }

    /// The whole document on one line.
    fn ndjson(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        ndjson_line(out, &Document::new(SCHEMA, self))
    }

    /// The comparison, then the two timelines one above the other.
    fn html(&self, layout: &Layout) -> String {
        let mut out = super::html::from_markdown(&render(self, &layout.as_markdown()));
        out += "<h3>Timelines</h3>\n";
        for (label, side) in [("before", &self.before), ("after", &self.after)] {
            let caption = format!("{label}: {}", side.file);
            out += &super::html::timeline_svg(&side.timeline, &caption);
        }
        out
    }
}

pub fn render(report: &DiffReport, layout: &Layout) -> String {
    let mut out = String::new();
    let diff = &report.diff;
    let mut sides = String::new();
    for (label, side) in [("before", &report.before), ("after ", &report.after)] {
        let (file, d) = (&side.file, &side.digest);
        let _ = writeln!(
            sides,
            "{label}    {file} ({} packets, {})",
            HumanCount(d.packets),
            format_span((d.duration_seconds * 1e9) as u64)
        );
    }
    out += &opening("kpcap diff", &sides, layout);
    let mut table = Sheet::new(&["", "before", "after", ""]);
    for c in &diff.counts {
        let trend = match (c.before, c.after) {
            (b, 0) if b > 0 => "fixed",
            (b, a) if a > b => "worse",
            (b, a) if a < b => "better",
            _ => "",
        };
        table.add_row(vec![
            c.name.to_string(),
            c.before.to_string(),
            c.after.to_string(),
            trend.to_string(),
        ]);
    }
    let _ = writeln!(out, "\n{}", table.render(layout));
    for (title, changes) in [
        ("FIXED", &diff.fixed),
        ("PERSISTS", &diff.persists),
        ("NEW", &diff.new),
    ] {
        out += &super::output::title(&format!("{title} ({})", changes.len()), layout);
        for change in changes.iter() {
            out += &item(&describe(change), layout);
        }
    }
    let verdict = if diff.resolved {
        "RESOLVED: the failures of BEFORE are gone and nothing got worse".to_string()
    } else if !diff.unconfirmed.is_empty() {
        format!(
            "NOT CONFIRMED: nothing of BEFORE is left and nothing got worse, but AFTER could not judge everything: {}",
            diff.unconfirmed.join("; ")
        )
    } else {
        "NOT RESOLVED: a failure of BEFORE persists, or something got worse".to_string()
    };
    if layout.markdown {
        let _ = writeln!(out, "\n### Verdict: {}", markdown_text(&verdict));
    } else {
        let _ = writeln!(out, "\nVERDICT   {verdict}");
    }
    out
}

/// One line: the subject, then before -> after.
pub fn describe(c: &Change) -> String {
    let unit = c.kind.unit();
    let details = c
        .before
        .iter()
        .chain(&c.after)
        .flat_map(|s| s.details.iter().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>();
    let count = |side: &Option<crate::diff::Side>| match side {
        Some(s) => format!("{} {unit} ({})", s.count, s.severity.label()),
        None => format!("0 {unit}"),
    };
    if c.kind == FindingKind::UnmasqueradedEgress {
        let before = match &c.before {
            Some(s) => format!("not masqueraded before ({} {unit})", s.count),
            None => "masqueraded before".into(),
        };
        let after = match (&c.after, &c.note) {
            (Some(s), _) => format!("not masqueraded after ({} {unit})", s.count),
            (None, Some(note)) => note.clone(),
            (None, None) => {
                "not seen leaving unmasqueraded after (AFTER holds no pre-NAT copy to show its translation)".into()
            }
        };
        return format!(
            "pod egress from {} to {}: {before}, {after}",
            c.subject,
            short_list(&details, 4)
        );
    }
    format!(
        "{} {} ({}): {} -> {}",
        c.kind.label(),
        c.subject,
        short_list(&details, 4),
        count(&c.before),
        count(&c.after)
    )
}
