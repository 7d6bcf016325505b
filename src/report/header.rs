//! The capture header as a few human lines, and the CIDRs in force.

use crate::analysis::CaptureHeader;
use crate::time::format_span;
use crate::topology::Topology;
use indicatif::HumanCount;

/// The header as a few human lines.
pub fn render(header: &CaptureHeader, topology: &Topology) -> String {
    let mut out = String::new();
    let format = header.format.label();
    let compression = header
        .compression
        .map(|c| format!(", {}", c.label()))
        .unwrap_or_default();
    out += &format!(
        "capture   {} ({format}, {}-endian{compression})\n",
        super::table::printable(&header.file),
        header.byte_order
    );
    let used: Vec<String> = header
        .interfaces
        .iter()
        .filter(|i| i.packets > 0 || header.interfaces.len() == 1)
        .map(|i| {
            let name = i
                .name
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            format!("#{} {name}{} [{}]", i.id, i.link_type_name, i.link_type)
        })
        .collect();
    out += &format!("interfaces {}\n", first_few(used));
    let devices: Vec<String> = header
        .seen_on
        .iter()
        .map(|d| {
            let by_traffic = if d.kind_by_traffic { " by traffic" } else { "" };
            format!(
                "{} ({}{by_traffic}) {}",
                d.interface,
                d.kind.label(),
                d.packets
            )
        })
        .collect();
    if header.seen_on.len() > 1 || header.duplicates > 0 {
        out += &format!("seen on   {}\n", first_few(devices));
    }
    if header
        .seen_on
        .iter()
        .any(|d| d.interface.starts_with("ifindex "))
    {
        out += "          (-i any names no devices: --ifname INDEX=NAME names them, see `ip -o link` on the node)\n";
        if header.seen_on.iter().any(|d| d.kind_by_traffic) {
            out += "          (pod-side by traffic: received packets from one pod only, as the host side of its veth does)\n";
        }
    }
    let span = match (header.first, header.last) {
        (Some(a), Some(b)) => format!("{a} .. {b} ({})", format_span(b.since(a))),
        _ => "no packets".into(),
    };
    let copies = if header.duplicates > 0 {
        format!(
            ", {} copies on a second interface",
            HumanCount(header.duplicates)
        )
    } else {
        String::new()
    };
    out += &format!(
        "packets   {} ({} IP, {} tunneled{copies}), {} bytes on the wire\n",
        HumanCount(header.packets),
        HumanCount(header.ip_packets),
        HumanCount(header.tunneled_packets),
        HumanCount(header.wire_bytes)
    );
    out += &format!("time      {span}\n");
    if let Some(node) = &header.node {
        out += &format!("node      {} ({})\n", node.name, node.how);
    }
    out += &format!("cidrs     {}\n", topology.describe());
    if !header.decode_problems.is_empty() {
        let list: Vec<String> = header
            .decode_problems
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out += &format!("decoding  stopped early: {}\n", list.join(", "));
    }
    out
}

/// Entries a header line lists before "and N more": a capture can have
/// thousands of interfaces (JSON lists them all).
const LISTED: usize = 8;

fn first_few(mut items: Vec<String>) -> String {
    if items.len() <= LISTED {
        return items.join(", ");
    }
    let more = items.len() - LISTED;
    items.truncate(LISTED);
    format!(
        "{}, and {more} more (all in --format json)",
        items.join(", ")
    )
}
