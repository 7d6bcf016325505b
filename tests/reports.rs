//! Reports to attach to an incident: `--format markdown` renders as
//! GitHub-flavoured Markdown (checked by rendering it with pulldown-cmark,
//! the CommonMark parser with GitHub's table extension): headings, the
//! verdict's causes as a list, every finding table a table whose rows
//! have as many cells as its header.

mod common;

use common::*;
use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// The tables of `markdown`: (header cells, rows of cells), as text.
fn tables(markdown: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let mut tables = Vec::new();
    let (mut header, mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), Vec::new(), None);
    let mut in_head = false;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Table(_)) => {
                header = Vec::new();
                rows = Vec::new();
            }
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                header = std::mem::take(&mut row);
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => row.push(cell.take().unwrap_or_default()),
            Event::End(TagEnd::TableRow) if !in_head => rows.push(std::mem::take(&mut row)),
            Event::End(TagEnd::Table) => {
                tables.push((std::mem::take(&mut header), std::mem::take(&mut rows)))
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(cell) = &mut cell {
                    cell.push_str(&text);
                }
            }
            _ => {}
        }
    }
    tables
}

fn to_html(markdown: &str) -> String {
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(markdown, options()));
    out
}

fn markdown(args: &[&str]) -> String {
    // Exit codes say what was found (scan's is a bit mask): the report is
    // what is checked here.
    let out = kpcap(args);
    assert!(!out.stdout.is_empty(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn the_incident_in_markdown_renders_with_its_verdict_and_tables() {
    let text = markdown(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        &testdata("incident-cluster"),
        "--format",
        "markdown",
    ]);
    let page = to_html(&text);
    assert!(page.contains("<h3>Verdict: FAILURE</h3>"), "{page}");
    assert!(
        page.contains("<strong>[failure] Pod egress is not masqueraded</strong>"),
        "{page}"
    );
    assert!(page.contains("<li><strong>fix (cilium):</strong> cilium-config:"));
    assert!(
        page.contains("<h3>UNMASQUERADED POD EGRESS (pod source -&gt; external destination)</h3>")
    );
    let tables = tables(&text);
    assert!(tables.len() >= 4, "{tables:#?}");
    for (header, rows) in &tables {
        for row in rows {
            assert_eq!(row.len(), header.len(), "{header:?} / {row:?}");
        }
    }
    let (header, rows) = &tables[0];
    assert_eq!(header[0], "severity");
    assert_eq!(header[1], "pod (name)");
    assert!(rows
        .iter()
        .any(|r| r[1] == "10.42.1.17 flux-system/source-controller-6f8b9c7d4-lm5zt"));
    // Cells keep `|` and markup as text.
    assert!(rows.iter().all(|r| r[0] == "failure"));
    // The header's fields are a list, not one paragraph.
    assert!(
        page.contains("<li><strong>capture</strong> testdata/")
            || page.contains("<li><strong>capture</strong>")
    );
}

#[test]
fn scan_diff_and_the_verdict_across_nodes_render_too() {
    let scan = markdown(&["scan", "-q", &testdata(""), "--format", "markdown"]);
    let page = to_html(&scan);
    assert!(page.contains("<h2>kpcap scan</h2>"), "{page}");
    assert!(page.contains("<h3>Verdict across files: FAILURE"), "{page}");
    for (header, rows) in tables(&scan) {
        assert!(!rows.is_empty());
        for row in rows {
            assert_eq!(row.len(), header.len());
        }
    }
    let diff = markdown(&[
        "diff",
        &testdata("incident-before.pcapng"),
        &testdata("incident-after.pcapng"),
        "--format",
        "markdown",
    ]);
    let page = to_html(&diff);
    assert!(page.contains("<h3>FIXED (7)</h3>"), "{page}");
    assert!(page.contains("<h3>Verdict: RESOLVED"), "{page}");
    let (captures, cluster) = incident_nodes();
    let mut args = vec!["analyze", "--cluster", &cluster, "--format", "markdown"];
    args.extend(captures.iter().map(String::as_str));
    let text = markdown(&args);
    let page = to_html(&text);
    assert!(page.contains("<h2>Across nodes: FAILURE"), "{page}");
    assert!(page.contains("<strong>[failure] Masquerading differs between nodes</strong>"));
    let node_table = tables(&text)
        .into_iter()
        .find(|(header, _)| header.first().is_some_and(|h| h == "node"))
        .expect("the nodes table");
    assert_eq!(node_table.1.len(), 3);
}
