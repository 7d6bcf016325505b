//! What every report says first of a capture: which file, what format,
//! which interfaces, how many packets over what time.

use crate::capture::{link_type_name, CaptureInfo, Compression, Format, Interface};
use crate::flow::Summary;
use crate::interface::{InterfaceKind, InterfaceNames};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct InterfaceInfo {
    pub id: u32,
    pub name: Option<String>,
    pub link_type: u32,
    pub link_type_name: &'static str,
    pub packets: u64,
}

/// Packets per interface as kpcap attributes them: per capture interface,
/// and per device of a Linux `-i any` capture.
#[derive(Debug, Serialize)]
pub struct InterfaceUse {
    pub interface: String,
    pub kind: InterfaceKind,
    /// The kind was told by the device's traffic, not by a name
    /// (`analysis::pod_side`); absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub kind_by_traffic: bool,
    /// Records captured on it, copies included.
    pub packets: u64,
}

#[derive(Debug, Serialize)]
pub struct CaptureHeader {
    pub file: String,
    /// Rotated files read as this one capture, in the order read
    /// (`analyze --merge`); absent for a single file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    pub format: Format,
    pub byte_order: &'static str,
    /// Kept for readers of kpcap.analyze/1: `compression == "gzip"`.
    pub gzip: bool,
    /// "gzip", "zstd" or null.
    pub compression: Option<Compression>,
    /// Bytes of the capture, after decompression.
    pub file_bytes: u64,
    pub interfaces: Vec<InterfaceInfo>,
    /// Where packets were seen, busiest first.
    pub seen_on: Vec<InterfaceUse>,
    pub packets: u64,
    /// Copies of a packet already counted on another interface: counted
    /// in `packets`, not in flows or findings.
    pub duplicates: u64,
    pub ip_packets: u64,
    pub tunneled_packets: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub duration_seconds: f64,
    /// Frames without IP, by ethertype ("0x0806": 12).
    pub non_ip: BTreeMap<String, u64>,
    /// Frames whose decoding stopped early ("ipv4_truncated": 3).
    pub decode_problems: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    /// The node the capture was taken on (`--cluster` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeOfCapture>,
}

/// The node a capture was taken on, and how kpcap knows.
#[derive(Debug, Clone, Serialize)]
pub struct NodeOfCapture {
    pub name: String,
    /// `--node`, or what its traffic showed.
    pub how: String,
}

impl CaptureHeader {
    pub fn new(file: &str, info: &CaptureInfo, summary: &Summary, names: &InterfaceNames) -> Self {
        let mut seen_on: Vec<InterfaceUse> = summary
            .per_interface
            .iter()
            .map(|(via, packets)| InterfaceUse {
                interface: names.label(via),
                kind: names.kind(via),
                kind_by_traffic: names.kind_by_traffic(via),
                packets: *packets,
            })
            .collect();
        seen_on.sort_by(|a, b| {
            b.packets
                .cmp(&a.packets)
                .then(a.interface.cmp(&b.interface))
        });
        crate::ops::step(summary.per_interface.len() + info.interfaces.len());
        let packets = summary.packets_per_interface();
        let interfaces = info
            .interfaces
            .iter()
            .map(|i: &Interface| InterfaceInfo {
                id: i.id,
                name: i.name.clone(),
                link_type: i.link_type,
                link_type_name: link_type_name(i.link_type),
                packets: packets.get(&i.id).copied().unwrap_or(0),
            })
            .collect();
        let duration = match (summary.first_ts, summary.last_ts) {
            (Some(a), Some(b)) => b.since(a),
            _ => 0,
        };
        CaptureHeader {
            file: file.to_string(),
            parts: Vec::new(),
            format: info.format,
            byte_order: if info.big_endian { "big" } else { "little" },
            gzip: info.compression == Some(Compression::Gzip),
            compression: info.compression,
            file_bytes: info.bytes,
            interfaces,
            seen_on,
            packets: summary.packets,
            duplicates: summary.duplicates,
            ip_packets: summary.ip_packets,
            tunneled_packets: summary.tunneled_packets,
            captured_bytes: summary.captured_bytes,
            wire_bytes: summary.wire_bytes,
            first: summary.first_ts,
            last: summary.last_ts,
            duration_seconds: duration as f64 / Timestamp::NANOS_PER_SEC as f64,
            non_ip: summary
                .non_ip
                .iter()
                .map(|(k, v)| (format!("{k:#06x}"), *v))
                .collect(),
            decode_problems: summary
                .problems
                .iter()
                .map(|(k, v)| (k.label(), *v))
                .collect(),
            warnings: info.warnings.clone(),
            node: None,
        }
    }
}
