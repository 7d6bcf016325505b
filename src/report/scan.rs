//! The `scan` report: one line per file, then the findings across files.

use super::analyze::short_list;
use super::output::{item, markdown_text, ndjson_line, opening, title, Layout, Report};
use super::table::{printable, Sheet};
use crate::nodes::ClusterReport;
use crate::scan::{FileLine, ScanReport, Status, SCHEMA};
use crate::time::format_span;
use indicatif::HumanCount;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write;

/// A scan report as printed. NDJSON: a line per file (unless they were
/// streamed as each file finished: `file_line`), then the aggregate.
pub struct ScanOutput<'a> {
    pub report: &'a ScanReport,
    pub files_streamed: bool,
    /// The verdict across nodes, when the files belong to nodes.
    pub cluster: Option<&'a ClusterReport>,
}

/// The JSON document's body: the report, and the verdict across nodes.
#[derive(Serialize)]
pub struct ScanBody<'a> {
    #[serde(flatten)]
    pub report: &'a ScanReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<&'a ClusterReport>,
}

impl Report for ScanOutput<'_> {
    fn table(&self, layout: &Layout) -> String {
        let mut out = render(self.report, layout);
        if let Some(cluster) = self.cluster {
            out += &super::nodes::render(cluster, layout);
        }
        out
    }

    fn ndjson(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        if !self.files_streamed {
            for line in &self.report.files {
                file_line(out, line)?;
            }
        }
        let aggregate = json!({
            "type": "aggregate",
            "schema": SCHEMA,
            "cidrs": self.report.cidrs,
            "aggregate": self.report.aggregate,
        });
        ndjson_line(out, &aggregate)?;
        match self.cluster {
            Some(cluster) => cluster.ndjson(out),
            None => Ok(()),
        }
    }
}

/// One file's NDJSON line.
pub fn file_line(out: &mut dyn std::io::Write, line: &FileLine) -> std::io::Result<()> {
    ndjson_line(out, &file_value(line))
}

/// One file's NDJSON value.
pub fn file_value(line: &FileLine) -> serde_json::Value {
    json!({"type": "file", "line": line})
}

/// The human report; the findings table shows at most `layout.limit` rows
/// (0 = all).
pub fn render(report: &ScanReport, layout: &Layout) -> String {
    let limit = layout.limit;
    let mut out = String::new();
    let a = &report.aggregate;
    let mut head = String::new();
    let _ = writeln!(
        head,
        "scan      {}: {} analyzed, {} not captures, {} unreadable; {} packets",
        files(a.files),
        a.analyzed,
        a.not_captures,
        a.errors,
        HumanCount(a.packets)
    );
    let _ = writeln!(head, "cidrs     {}", report.cidrs);
    out += &opening("kpcap scan", &head, layout);
    out.push('\n');
    out += &render_files(&report.files, layout);

    let status = a.verdict().to_uppercase();
    let mut verdict = format!(
        "{status}: findings in {} of {} analyzed",
        a.files_with_findings,
        files(a.analyzed)
    );
    if a.inconclusive > 0 {
        let _ = write!(verdict, "; {} could not judge everything", a.inconclusive);
    }
    if a.analyzed == 0 {
        verdict += "; no capture was analyzed";
    }
    if layout.markdown {
        let _ = writeln!(
            out,
            "\n### Verdict across files: {}\n",
            markdown_text(&verdict)
        );
    } else {
        let _ = writeln!(out, "\nVERDICT ACROSS FILES   {verdict}");
    }
    for cause in &a.causes {
        let line = format!(
            "{:<32} in {} of {} ({})",
            cause.id,
            cause.files.len(),
            files(a.analyzed),
            short_list(&cause.files, 3)
        );
        out += &item(&line, layout);
    }
    if a.findings.is_empty() {
        out += &title("FINDINGS ACROSS FILES", layout);
        out += "  none\n";
        return out;
    }
    out += &title(
        "FINDINGS ACROSS FILES (one line per subject, with the files that show it)",
        layout,
    );
    let mut table = Sheet::new(&[
        "severity", "finding", "subject", "files", "count", "details", "in",
    ]);
    let shown = if limit == 0 {
        a.findings.len()
    } else {
        a.findings.len().min(limit)
    };
    for f in &a.findings[..shown] {
        table.add_row(vec![
            f.severity.label().to_string(),
            f.kind.label().to_string(),
            f.subject.clone(),
            format!("{} of {}", f.files.len(), a.analyzed),
            format!("{} {}", f.count, f.kind.unit()),
            short_list(&f.details, 3),
            short_list(&f.files, 2),
        ]);
    }
    let _ = writeln!(out, "{}", table.render(layout));
    if shown < a.findings.len() {
        let _ = writeln!(
            out,
            "... {} more (--limit 0 shows all, --format json lists every file)",
            a.findings.len() - shown
        );
    }
    out
}

/// `1 file`, `2 files`.
fn files(n: u64) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

fn render_files(files: &[FileLine], layout: &Layout) -> String {
    let mut table = Sheet::new(&[
        "file",
        "packets",
        "span",
        "unmasq. flows",
        "unanswered SYNs",
        "unreachable",
        "refused",
        "DNS timeouts",
        "DNS errors",
        "ClusterIP flows",
        "verdict",
        "error / causes",
    ]);
    for line in files {
        let mut row = vec![printable(&line.file).into_owned()];
        match (&line.digest, line.status) {
            (Some(d), _) => {
                row.push(HumanCount(d.packets).to_string());
                row.push(format_span((d.duration_seconds * 1e9) as u64));
                row.extend(d.counts.labelled().iter().map(|(_, n)| n.to_string()));
                row.push(d.status.label().to_string());
                let mut notes = d.causes.join(", ");
                if !d.warnings.is_empty() {
                    let sep = if notes.is_empty() { "" } else { "; " };
                    notes += &format!("{sep}{} warning(s)", d.warnings.len());
                }
                row.push(notes);
            }
            (None, status) => {
                row.extend(std::iter::repeat_n(String::new(), 9));
                row.push(match status {
                    Status::NotACapture => "skipped".into(),
                    _ => "error".into(),
                });
                row.push(printable(line.error.as_deref().unwrap_or_default()).into_owned());
            }
        }
        table.add_row(row);
    }
    table.render(layout) + "\n"
}
