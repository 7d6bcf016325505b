//! One self-contained HTML page to attach to an incident: the Markdown
//! report rendered (pulldown-cmark), severities coloured, the timeline
//! drawn as inline SVG, every finding's items in collapsed sections (up
//! to `MAX_GROUPS` groups of `MAX_ITEMS` items each, said when cut). No
//! script, no font, no request (and a Content-Security-Policy that forbids
//! any): it opens from `file://` and as an email attachment, and prints.

use crate::analysis::{Outcome, Timeline};
use crate::time::Timestamp;
use pulldown_cmark::{html, Options, Parser};
use std::fmt::Write;

/// Groups of each finding whose items a page lists.
pub const MAX_GROUPS: usize = 100;
/// Items a page lists per group.
pub const MAX_ITEMS: usize = 20;

const STYLE: &str = "
:root { --fail: #b42318; --warn: #b54708; --ok: #067647; --muted: #667085; --line: #d0d5dd; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #101828;
  max-width: 1200px; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid var(--line); padding-bottom: .2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 12.5px; width: 100%; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
th { background: #f2f4f7; position: sticky; top: 0; white-space: nowrap; }
tr:nth-child(even) td { background: #fcfcfd; }
code { font-size: 12px; }
.failure { color: var(--fail); font-weight: 600; }
.warning { color: var(--warn); font-weight: 600; }
.clean, .resolved { color: var(--ok); font-weight: 600; }
.inconclusive { color: var(--warn); font-weight: 600; }
h3.verdict.failure, h2.verdict.failure { border-left: 6px solid var(--fail); padding-left: .5em; }
h3.verdict.warning, h3.verdict.inconclusive { border-left: 6px solid var(--warn); padding-left: .5em; }
h3.verdict.clean { border-left: 6px solid var(--ok); padding-left: .5em; }
ol > li { margin-bottom: .8em; }
details { margin: .2em 0; border: 1px solid var(--line); border-radius: 4px; padding: .2em .6em; }
details > summary { cursor: pointer; }
details li { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
figure.timeline { margin: .6em 0 1.2em; }
figure.timeline figcaption { color: var(--muted); font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: #344054; }
footer { color: var(--muted); font-size: 12px; margin-top: 3em; border-top: 1px solid var(--line); padding-top: .5em; }
@media print { body { max-width: none; } details { border: none; } th { position: static; } }
";

/// The page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n{body}\
         <footer>kpcap {} — a self-contained report: no script, no request.</footer>\n</body>\n</html>\n",
        escape(title),
        escape(title),
        env!("CARGO_PKG_VERSION")
    )
}

/// `text` safe inside HTML text and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            _ => out.push(c),
        }
    }
    out
}

/// Markdown rendered, with severities and verdicts given their colour.
pub fn from_markdown(markdown: &str) -> String {
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(markdown, Options::ENABLE_TABLES));
    for word in ["failure", "warning", "info", "clean", "inconclusive"] {
        out = out.replace(
            &format!("<td>{word}</td>"),
            &format!("<td class=\"{word}\">{word}</td>"),
        );
        out = out.replace(
            &format!("<strong>[{word}]"),
            &format!("<strong><span class=\"{word}\">[{word}]</span>"),
        );
    }
    for (status, class) in [
        ("FAILURE", "failure"),
        ("WARNING", "warning"),
        ("INCONCLUSIVE", "inconclusive"),
        ("CLEAN", "clean"),
        ("RESOLVED", "resolved"),
        ("NOT RESOLVED", "failure"),
        ("NOT CONFIRMED", "warning"),
    ] {
        for level in ["h2", "h3"] {
            for lead in ["Verdict: ", "Verdict across files: ", "Across nodes: "] {
                out = out.replace(
                    &format!("<{level}>{lead}{status}"),
                    &format!("<{level} class=\"verdict {class}\">{lead}{status}"),
                );
            }
        }
    }
    out
}

/// Colours of the series, in `Timeline::series` order.
const COLOURS: [&str; 5] = ["#667085", "#b42318", "#b54708", "#7a2e0e", "#6941c6"];

/// The timeline as small multiples: a row of bars per series, on one time
/// axis, each bar titled with its bucket and count.
pub fn timeline_svg(timeline: &Timeline, caption: &str) -> String {
    let Some(start) = timeline.start else {
        return format!("<p>{}: no packets, no timeline.</p>\n", escape(caption));
    };
    let buckets = timeline.packets.len().max(1);
    let (left, width, row, gap) = (170.0, 760.0, 46.0, 10.0);
    let bar = width / buckets as f64;
    let series = timeline.series();
    let height = series.len() as f64 * (row + gap) + 30.0;
    let mut svg = format!(
        "<figure class=\"timeline\"><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         viewBox=\"0 0 {} {height}\" width=\"100%\" aria-label=\"{}\">\n",
        left + width + 10.0,
        escape(caption)
    );
    let seconds = timeline.bucket_seconds;
    for (i, ((name, counts), colour)) in series.iter().zip(COLOURS).enumerate() {
        let top = i as f64 * (row + gap);
        let max = counts.iter().copied().max().unwrap_or(0);
        let total: u64 = counts.iter().sum();
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{name}</text><text x=\"0\" y=\"{}\" style=\"fill:#667085\">{total} in all, at most {max}</text>",
            top + 18.0,
            top + 33.0
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{width}\" height=\"{row}\" fill=\"#f9fafb\" stroke=\"#eaecf0\"/>"
        );
        if max == 0 {
            continue;
        }
        for (b, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let h = (n as f64 / max as f64 * (row - 2.0)).max(1.5);
            let from = b as u64 * seconds;
            let _ = writeln!(
                svg,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{colour}\"><title>+{from}s..+{}s: {n} {name}</title></rect>",
                left + b as f64 * bar,
                top + row - h,
                bar.max(0.6),
                from + seconds
            );
        }
    }
    let axis = series.len() as f64 * (row + gap) + 12.0;
    for tick in 0..=4u64 {
        let at = buckets as u64 * seconds * tick / 4;
        let x = left + width * tick as f64 / 4.0;
        let anchor = match tick {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            svg,
            "<text x=\"{x:.1}\" y=\"{axis}\" text-anchor=\"{anchor}\">+{}</text>",
            crate::time::format_span(at * 1_000_000_000)
        );
    }
    svg += "</svg>\n";
    let _ = writeln!(
        svg,
        "<figcaption>{}: from {} in buckets of {seconds} s; failures are counted at their flow's (or query's) first packet.</figcaption></figure>",
        escape(caption),
        escape(&start.to_string())
    );
    svg
}

/// A finding group as a page lists it: its heading, its first
/// `MAX_ITEMS` items, and how many items it has in all.
struct Listed {
    head: String,
    items: Vec<String>,
    count: u64,
}

/// The first `MAX_ITEMS` of `items`, as `show` writes them.
fn first_items<T>(items: &[T], show: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().take(MAX_ITEMS).map(show).collect()
}

/// One collapsed section per finding group with its items: the first
/// `MAX_GROUPS` of `groups`, each as `list` writes it (only those are
/// written out).
fn section<G>(out: &mut String, title: &str, groups: &[G], list: impl Fn(&G) -> Listed) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h3>{}</h3>", escape(title));
    for Listed { head, items, count } in groups.iter().take(MAX_GROUPS).map(list) {
        let _ = write!(
            out,
            "<details><summary>{} ({count} items)</summary><ul>",
            escape(&head)
        );
        for item in &items {
            let _ = write!(out, "<li>{}</li>", escape(item));
        }
        if count > items.len() as u64 {
            let _ = write!(
                out,
                "<li>… {} more (a page lists {MAX_ITEMS} per group; --format json has them all)</li>",
                count - items.len() as u64
            );
        }
        out.push_str("</ul></details>\n");
    }
    if groups.len() > MAX_GROUPS {
        let _ = writeln!(
            out,
            "<p>… {} more groups (a page lists {MAX_GROUPS}; --format json has them all).</p>",
            groups.len() - MAX_GROUPS
        );
    }
}

/// Every finding group's items, in collapsed sections.
pub fn items(outcome: &Outcome) -> String {
    let f = &outcome.findings;
    let mut out = String::from("<h2>Items of each finding</h2>\n");
    let before = out.len();
    let at = |t: Timestamp| t.to_string();
    section(
        &mut out,
        "Unmasqueraded pod egress",
        &f.unmasqueraded_egress.groups,
        |g| Listed {
            head: format!(
                "[{}] {} -> {} {}/{}",
                g.severity.label(),
                g.pod,
                g.destination,
                g.protocol,
                g.port
            ),
            items: first_items(&g.items, |i| i.to_string()),
            count: g.flows,
        },
    );
    section(&mut out, "TCP SYNs", &f.tcp_syns.groups, |g| Listed {
        head: format!(
            "[{}] {} {} -> {}",
            g.severity.label(),
            g.outcome.label(),
            g.source,
            g.destination
        ),
        items: first_items(&g.items, |i| i.flow.to_string()),
        count: g.flows,
    });
    section(&mut out, "DNS", &f.dns.groups, |g| Listed {
        head: format!(
            "[{}] {} {} -> {}",
            g.severity.label(),
            g.outcome.label(),
            g.client,
            g.server
        ),
        items: first_items(&g.items, |i| {
            let name = i.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
            format!(
                "{} {} -> {} id {:#06x} {name}",
                at(i.first),
                i.client,
                i.server,
                i.id
            )
        }),
        count: g.count,
    });
    section(
        &mut out,
        "Service VIPs on the wire",
        &f.service_vips.groups,
        |g| Listed {
            head: format!("[{}] {} -> {}", g.severity.label(), g.source, g.service),
            items: first_items(&g.ports, |p| p.to_string()),
            count: g.flows,
        },
    );
    if out.len() == before {
        out += "<p>No finding has items.</p>\n";
    }
    out
}
