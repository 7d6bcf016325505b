//! The `analyze` report: header, verdict, then one table per finding. The
//! JSON form carries the same content plus every item behind each group;
//! NDJSON puts one cause or finding group per line.

use super::output::{markdown_text, ndjson_line, opening, title, Layout, Report};
use super::table::Sheet;
use super::CaptureReport;
use crate::analysis::{Coverage, Outcome};
use crate::cluster::AddressName;
use crate::detect::dns::{DnsGroup, DnsItem};
use crate::detect::egress::{EgressInterface, MasqueradedPod};
use crate::detect::verdict::Status;
use crate::time::Timestamp;
use crate::topology::{AddrClass, Topology};
use indicatif::HumanCount;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

impl Report for CaptureReport<'_, Outcome> {
    fn table(&self, layout: &Layout) -> String {
        render(self.of, self.topology, layout) + "\n"
    }

    fn ndjson(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for line in ndjson_lines(self.of) {
            ndjson_line(out, &line)?;
        }
        Ok(())
    }

    /// The report with its timeline after the verdict, and every finding's
    /// items in collapsed sections at the end.
    fn html(&self, layout: &Layout) -> String {
        let markdown = render(self.of, self.topology, &layout.as_markdown());
        let (head, rest) = match markdown.find(FINDINGS_START) {
            Some(at) => markdown.split_at(at),
            None => (markdown.as_str(), ""),
        };
        let mut out = super::html::from_markdown(head);
        out += "<h3>Timeline</h3>\n";
        out += &super::html::timeline_svg(&self.of.timeline, &self.of.header.file);
        out += &super::html::from_markdown(rest);
        out += &super::html::items(self.of);
        out
    }
}

/// Where the finding tables start in the Markdown report: the timeline
/// goes before.
const FINDINGS_START: &str = "\n### UNMASQUERADED POD EGRESS";

/// Wraps `text` at `width` columns, indenting every line by `indent`.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// Human report; each table shows at most `layout.limit` groups (0 = all).
pub fn render(outcome: &Outcome, topology: &Topology, layout: &Layout) -> String {
    let head =
        super::header::render(&outcome.header, topology) + &render_coverage(&outcome.coverage);
    let mut out = opening(&outcome.header.file, &head, layout) + "\n";
    out += &render_verdict(outcome, layout);
    let start = outcome.header.first.unwrap_or_default();
    let rel = |t: Timestamp| format!("+{:.3}s", t.since(start) as f64 / 1e9);
    let findings = &outcome.findings;
    let names = Names(&outcome.names);
    let a = |addr: &IpAddr| names.cell(addr);

    out += &title(
        "UNMASQUERADED POD EGRESS (pod source -> external destination)",
        layout,
    );
    let headers = [
        "severity",
        "pod",
        "destination",
        "port",
        "flows",
        "packets",
        "replies",
        "first",
        "last",
        "left on",
        "example",
    ];
    let egress = &findings.unmasqueraded_egress;
    let headers = names.headers(&headers);
    out += &block(&egress.groups, layout, "  none\n", &headers, |g| {
        vec![
            g.severity.label().to_string(),
            a(&g.pod),
            a(&g.destination),
            format!("{}/{}", g.protocol, g.port),
            g.flows.to_string(),
            g.packets.to_string(),
            g.replies.to_string(),
            rel(g.first),
            rel(g.last),
            short_list(&g.left_on, 3),
            g.items.first().map(|i| i.to_string()).unwrap_or_default(),
        ]
    });
    out += &render_egress_interfaces(&egress.interfaces, layout);
    out += &render_masqueraded(&egress.contrast.masqueraded_pods, layout);

    let syns = &findings.tcp_syns;
    let c = &syns.counts;
    out += &title(
        &format!(
            "TCP SYNS ({} SYN flows: {} answered, {} unanswered, {} refused, {} unreachable, {} inconclusive{})",
            c.syn_flows,
            c.answered,
            c.unanswered,
            c.refused,
            c.unreachable,
            c.inconclusive,
            nat_copies(c.post_nat_copies)
        ),
        layout,
    );
    let headers = [
        "severity",
        "outcome",
        "source",
        "destination",
        "ports",
        "flows",
        "SYNs (retx)",
        "first",
        "last",
        "example",
    ];
    let headers = names.headers(&headers);
    out += &block(&syns.groups, layout, "  none\n", &headers, |g| {
        let outcome = match g.icmp_code {
            Some(code) => format!("{} (code {code})", g.outcome.label()),
            None => g.outcome.label().to_string(),
        };
        vec![
            g.severity.label().to_string(),
            outcome,
            a(&g.source),
            a(&g.destination),
            short_list(&g.ports, 4),
            g.flows.to_string(),
            format!("{} ({})", g.syn_packets, g.retransmits),
            rel(g.first),
            rel(g.last),
            match g.items.first() {
                Some(item) => item.flow.to_string(),
                None => evicted_note(g.evicted),
            },
        ]
    });
    for (outcome, omitted) in &syns.omitted {
        let _ = writeln!(
            out,
            "... and {} more {} groups ({} flows), counted above, listed nowhere: a list keeps the {} largest of each outcome",
            omitted.groups,
            outcome.label(),
            omitted.flows,
            crate::detect::syn::MAX_GROUPS
        );
    }

    let dns = &findings.dns;
    let c = &dns.counts;
    out += &title(
        &format!(
            "DNS ({} queries, {} keys: {} answered, {} timed out, {} inconclusive; {} unsolicited responses{})",
            c.queries,
            c.query_keys,
            c.answered,
            c.timed_out,
            c.inconclusive,
            c.unsolicited_responses,
            nat_copies(c.post_nat_copies)
        ),
        layout,
    );
    let headers = [
        "severity", "outcome", "client", "server", "queries", "packets", "names", "first", "last",
        "example",
    ];
    let empty = "  no timeouts, no unsolicited responses\n";
    let headers = names.headers(&headers);
    out += &block(&dns.groups, layout, empty, &headers, |g| {
        dns_row(g, &rel, &a)
    });
    let errors: Vec<_> = dns.rcodes.iter().filter(|r| r.rcode_value != 0).collect();
    let headers = ["severity", "name", "rcode", "responses", "servers"];
    out += &block(&errors, layout, "", &headers, |r| {
        vec![
            r.severity.label().to_string(),
            r.name.clone(),
            r.rcode.to_string(),
            r.responses.to_string(),
            short_list(&r.servers, 3),
        ]
    });

    out += &title(
        "SERVICE VIPS ON THE WIRE (destination in the service CIDR)",
        layout,
    );
    let headers = [
        "severity",
        "source",
        "service",
        "ports",
        "flows",
        "packets",
        "replies",
        "interfaces",
        "first",
        "last",
    ];
    let headers = names.headers(&headers);
    out += &block(
        &findings.service_vips.groups,
        layout,
        "  none\n",
        &headers,
        |g| {
            vec![
                g.severity.label().to_string(),
                a(&g.source),
                a(&g.service),
                short_list(&g.ports, 4),
                g.flows.to_string(),
                g.packets.to_string(),
                g.replies.to_string(),
                short_list(&g.interfaces, 3),
                rel(g.first),
                rel(g.last),
            ]
        },
    );
    out
}

/// The names `--cluster` gave the outcome's addresses, as cells show them.
struct Names<'a>(&'a BTreeMap<IpAddr, AddressName>);

impl Names<'_> {
    /// `10.42.1.5 kube-system/coredns-6799fbcd5-9kq2p`, or the address.
    fn cell(&self, addr: &IpAddr) -> String {
        match self.0.get(addr) {
            Some(name) => format!("{addr} {}", name.label()),
            None => addr.to_string(),
        }
    }

    /// Address columns say they carry names, when there are any: those
    /// headers are free text, cut first when a table does not fit.
    fn headers(&self, headers: &[&'static str]) -> Vec<&'static str> {
        if self.0.is_empty() {
            return headers.to_vec();
        }
        (headers.iter())
            .map(|h| match *h {
                "pod" => "pod (name)",
                "source" => "source (name)",
                "destination" => "destination (name)",
                "client" => "client (name)",
                "server" => "server (name)",
                "service" => "service (name)",
                other => other,
            })
            .collect()
    }
}

/// One finding table: a row per group, at most `layout.limit` of them (0
/// = all), and a line saying how many more; `empty` when there are none.
pub(super) fn block<G>(
    groups: &[G],
    layout: &Layout,
    empty: &str,
    headers: &[&str],
    row: impl Fn(&G) -> Vec<String>,
) -> String {
    if groups.is_empty() {
        return empty.to_string();
    }
    let shown = if layout.limit == 0 {
        groups.len()
    } else {
        groups.len().min(layout.limit)
    };
    let mut table = Sheet::new(headers);
    for group in &groups[..shown] {
        table.add_row(row(group));
    }
    let mut out = table.render(layout) + "\n";
    if shown < groups.len() {
        let more = format!(
            "... {} more groups (--limit 0 shows all, --format json lists every item)",
            groups.len() - shown
        );
        if layout.markdown {
            let _ = writeln!(out, "\n_{}_", markdown_text(&more));
        } else {
            let _ = writeln!(out, "{more}");
        }
    }
    out
}

/// What was judged, in two lines, and which checks were off.
fn render_coverage(c: &Coverage) -> String {
    let pods_known = c
        .detectors
        .iter()
        .any(|d| d.detector == "unmasqueraded_egress" && d.ran);
    let pods = if pods_known {
        format!(" ({} from pods)", HumanCount(c.pod_source_packets))
    } else {
        String::new()
    };
    let mut out = format!(
        "judged    {} IP packets{pods}, {} SYN flows, {} DNS queries",
        HumanCount(c.ip_packets),
        HumanCount(c.syn_flows),
        HumanCount(c.dns_query_keys)
    );
    let undecodable: u64 = c.undecodable.values().sum();
    if undecodable > 0 {
        let _ = write!(out, "; {} not decodable", HumanCount(undecodable));
    }
    if c.skipped.stretches > 0 {
        let _ = write!(
            out,
            "; {} bytes skipped in {} damaged stretches",
            c.skipped.bytes, c.skipped.stretches
        );
    }
    if c.evicted.any() {
        let _ = write!(
            out,
            "; --max-flows evicted {} flows and {} DNS keys ({} too young to judge)",
            c.evicted.flows, c.evicted.dns_keys, c.evicted.too_young
        );
    }
    out.push('\n');
    let off: Vec<String> = (c.detectors.iter())
        .filter(|d| !d.ran)
        .map(|d| format!("{} ({})", d.detector, d.off.as_deref().unwrap_or("off")))
        .collect();
    if !off.is_empty() {
        let _ = writeln!(out, "checks    off: {}", off.join(", "));
    }
    out
}

fn render_verdict(outcome: &Outcome, layout: &Layout) -> String {
    let mut out = String::new();
    let status = match outcome.verdict.status {
        Status::Clean => "CLEAN: the detectors ran on the traffic and found no failure or warning",
        Status::Inconclusive => {
            "INCONCLUSIVE: no failure or warning found, but not everything was judged (see the last cause)"
        }
        Status::Warning => "WARNING",
        Status::Failure => "FAILURE",
    };
    if layout.markdown {
        let _ = writeln!(out, "### Verdict: {}", markdown_text(status));
    } else {
        let _ = writeln!(
            out,
            "VERDICT   {}",
            paint(status, status_tone(outcome.verdict.status), layout)
        );
    }
    for cause in &outcome.verdict.causes {
        out += &render_cause(CauseText::from(cause), layout);
    }
    out
}

impl<'a> From<&'a crate::detect::verdict::Cause> for CauseText<'a> {
    fn from(cause: &'a crate::detect::verdict::Cause) -> Self {
        CauseText {
            rank: cause.rank,
            severity: cause.severity,
            title: cause.title,
            summary: &cause.summary,
            details: &cause.details,
            remediation: &cause.remediation,
        }
    }
}

impl<'a> From<&'a crate::nodes::NodeCause> for CauseText<'a> {
    fn from(cause: &'a crate::nodes::NodeCause) -> Self {
        CauseText {
            rank: cause.rank,
            severity: cause.severity,
            title: cause.title,
            summary: &cause.summary,
            details: &cause.details,
            remediation: &cause.remediation,
        }
    }
}

/// What a ranked cause shows, whichever verdict it is from.
pub(super) struct CauseText<'a> {
    pub rank: usize,
    pub severity: crate::detect::Severity,
    pub title: &'a str,
    pub summary: &'a str,
    pub details: &'a [String],
    pub remediation: &'a [crate::detect::verdict::Hint],
}

/// `  1. [failure] Title`, then the summary, details and fixes wrapped
/// under it.
pub(super) fn render_cause(cause: CauseText<'_>, layout: &Layout) -> String {
    let mut out = String::new();
    if layout.markdown {
        // A numbered item: the summary, details and fixes indented under it.
        let _ = writeln!(
            out,
            "\n{}. **\\[{}\\] {}**\n\n   {}\n",
            cause.rank,
            cause.severity.label(),
            markdown_text(cause.title),
            markdown_text(cause.summary)
        );
        for detail in cause.details {
            let _ = writeln!(out, "   - {}", markdown_text(detail));
        }
        for hint in cause.remediation {
            let _ = writeln!(
                out,
                "   - **fix ({}):** {}",
                markdown_text(hint.cni),
                markdown_text(&hint.hint)
            );
        }
        return out;
    }
    let tag = format!("[{}]", cause.severity.label());
    let _ = writeln!(
        out,
        "\n  {}. {} {}",
        cause.rank,
        paint(&tag, severity_tone(cause.severity), layout),
        cause.title
    );
    let width = layout.prose_width();
    out += &wrap(cause.summary, "     ", width);
    for detail in cause.details {
        out += &wrap(&format!("- {detail}"), "     ", width);
    }
    for hint in cause.remediation {
        out += &wrap(
            &format!("fix ({}): {}", hint.cni, hint.hint),
            "     ",
            width,
        );
    }
    out
}

/// ANSI colours of the verdict's words on a terminal.
const RED: &str = "\u{1b}[1;31m";
const YELLOW: &str = "\u{1b}[1;33m";
const GREEN: &str = "\u{1b}[1;32m";
const RESET: &str = "\u{1b}[0m";

pub(super) fn status_tone(status: Status) -> &'static str {
    match status {
        Status::Failure => RED,
        Status::Warning | Status::Inconclusive => YELLOW,
        Status::Clean => GREEN,
    }
}

fn severity_tone(severity: crate::detect::Severity) -> &'static str {
    match severity {
        crate::detect::Severity::Failure => RED,
        crate::detect::Severity::Warning => YELLOW,
        _ => "",
    }
}

/// `text` in `tone` when the layout is in colour.
pub(super) fn paint(text: &str, tone: &str, layout: &Layout) -> String {
    if layout.color && !tone.is_empty() {
        format!("{tone}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// One JSON value per line: a `capture` line with the header and
/// verdict status, then one line per cause and per finding group.
pub fn ndjson_lines(outcome: &Outcome) -> Vec<Value> {
    let file = outcome.header.file.as_str();
    let f = &outcome.findings;
    let summary = json!({
        "status": outcome.verdict.status,
        "coverage": outcome.coverage,
        "packets": outcome.header.packets,
        "first": outcome.header.first,
        "last": outcome.header.last,
        "causes": outcome.verdict.causes.len(),
    });
    let mut lines = vec![tagged(file, "capture", &summary)];
    lines.extend(
        outcome
            .verdict
            .causes
            .iter()
            .map(|c| tagged(file, "cause", c)),
    );
    let egress = &f.unmasqueraded_egress.groups;
    lines.extend(
        egress
            .iter()
            .map(|g| tagged(file, "unmasqueraded_egress", g)),
    );
    lines.extend(
        f.unmasqueraded_egress
            .interfaces
            .iter()
            .map(|i| tagged(file, "egress_interface", i)),
    );
    lines.extend(f.tcp_syns.groups.iter().map(|g| tagged(file, "tcp_syn", g)));
    lines.extend(f.dns.groups.iter().map(|g| tagged(file, "dns", g)));
    lines.extend(f.dns.rcodes.iter().map(|g| tagged(file, "dns_rcode", g)));
    lines.extend(
        f.service_vips
            .groups
            .iter()
            .map(|g| tagged(file, "service_vip", g)),
    );
    lines
}

/// `; 15 post-NAT copies not counted again`, when there are any.
fn nat_copies(copies: u64) -> String {
    if copies == 0 {
        String::new()
    } else {
        format!("; {copies} post-NAT copies not counted again")
    }
}

/// Which interfaces carried traffic to external destinations, and from
/// which source classes: the answer to "which NIC did pod egress use?".
fn render_egress_interfaces(rows: &[EgressInterface], layout: &Layout) -> String {
    let mut out = title(
        "EGRESS INTERFACES (packets to external destinations, by source class)",
        layout,
    );
    if rows.is_empty() {
        out += "  none\n";
        return out;
    }
    let mut table = Sheet::new(&[
        "interface",
        "kind",
        "from node",
        "from pod",
        "from other",
        "tunneled",
        "pod sources",
        "note",
    ]);
    for row in rows {
        let count = |class: AddrClass| row.packets_by_source.get(&class).copied().unwrap_or(0);
        let other: u64 = row
            .packets_by_source
            .iter()
            .filter(|(c, _)| !matches!(c, AddrClass::Node | AddrClass::Pod))
            .map(|(_, n)| n)
            .sum();
        let note = if row.carries_pod_sources {
            "pod sources leave unmasqueraded"
        } else {
            ""
        };
        table.add_row(vec![
            row.interface.clone(),
            row.kind.label().to_string(),
            count(AddrClass::Node).to_string(),
            count(AddrClass::Pod).to_string(),
            other.to_string(),
            row.tunneled_packets.to_string(),
            short_list(&row.pod_sources, 3),
            note.to_string(),
        ]);
    }
    let _ = writeln!(out, "{}", table.render(layout));
    out
}

/// Pods whose pre- and post-NAT copies were both captured (`-i any`): the
/// proof that SNAT happens, and on which interface.
fn render_masqueraded(pods: &[MasqueradedPod], layout: &Layout) -> String {
    if pods.is_empty() {
        return String::new();
    }
    let mut out = title(
        "MASQUERADED POD EGRESS (pre- and post-NAT copies of a flow paired)",
        layout,
    );
    let mut table = Sheet::new(&["pod", "flows", "left", "as", "then left", "as"]);
    for pod in pods {
        table.add_row(vec![
            pod.pod.to_string(),
            pod.flows.to_string(),
            short_list(&pod.seen_on, 3),
            pod.pod.to_string(),
            short_list(&pod.translated_on, 3),
            short_list(&pod.translated_to, 3),
        ]);
    }
    let _ = writeln!(out, "{}", table.render(layout));
    out
}

/// `{"file": .., "type": kind, ..fields of value}`.
fn tagged<T: Serialize>(file: &str, kind: &str, value: &T) -> Value {
    let mut line = json!({ "file": file, "type": kind });
    if let (Some(line), Ok(Value::Object(fields))) =
        (line.as_object_mut(), serde_json::to_value(value))
    {
        line.extend(fields);
    }
    line
}

fn dns_row(
    g: &DnsGroup,
    rel: &impl Fn(Timestamp) -> String,
    a: &impl Fn(&IpAddr) -> String,
) -> Vec<String> {
    vec![
        g.severity.label().to_string(),
        g.outcome.label().to_string(),
        a(&g.client),
        a(&g.server),
        g.count.to_string(),
        g.query_packets.to_string(),
        short_list(&g.names, 3),
        rel(g.first),
        rel(g.last),
        match g.items.first() {
            Some(item) => describe_dns(item),
            None => evicted_note(g.evicted),
        },
    ]
}

/// The example cell of a group whose items `--max-flows` cut.
fn evicted_note(evicted: u64) -> String {
    if evicted == 0 {
        String::new()
    } else {
        format!("({evicted} judged at eviction, not listed)")
    }
}

/// `10.42.1.5:40000 -> 1.1.1.1:53 id 0x1a2b ghcr.io A (3 copies)`
fn describe_dns(i: &DnsItem) -> String {
    let mut text = format!("{} -> {} id {:#06x}", i.client, i.server, i.id);
    if let (Some(name), Some(qtype)) = (&i.name, &i.qtype) {
        let _ = write!(text, " {name} {qtype}");
    }
    if i.query_packets > 1 {
        let _ = write!(text, " ({} copies)", i.query_packets);
    }
    if let Some(rcode) = i.rcode {
        let _ = write!(text, " {rcode}");
    }
    text
}

pub(super) fn short_list<T: ToString>(items: &[T], max: usize) -> String {
    let mut text: Vec<String> = (items.iter().take(max))
        .map(|i| super::table::printable(&i.to_string()).into_owned())
        .collect();
    if items.len() > max {
        text.push(format!("+{}", items.len() - max));
    }
    text.join(",")
}
