//! `kpcap flows`: traffic rolled up by (source, destination) address, or
//! one row per 5-tuple flow.

use super::output::Layout;
use super::table::Sheet;
use crate::analysis::CaptureHeader;
use crate::detect::{CrossingItem, CrossingItems};
use crate::flow::{protocol_name, Flow, FlowKey, FlowTable, PairStats, TcpState};
use crate::interface::{InterfaceNames, Label};
use crate::time::Timestamp;
use crate::topology::{AddrClass, Topology};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// TCP connections a source opened towards a destination, by outcome.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct TcpOutcomes {
    pub syn_only: u64,
    pub refused: u64,
    pub answered: u64,
    pub established: u64,
    pub midstream: u64,
}

impl TcpOutcomes {
    fn add(&mut self, state: TcpState) {
        match state {
            TcpState::SynOnly => self.syn_only += 1,
            TcpState::Refused => self.refused += 1,
            TcpState::Answered => self.answered += 1,
            TcpState::Established => self.established += 1,
            TcpState::Midstream => self.midstream += 1,
        }
    }

    fn total(&self) -> u64 {
        self.syn_only + self.refused + self.answered + self.established + self.midstream
    }

    fn render(&self) -> String {
        if self.total() == 0 {
            return "-".into();
        }
        let parts = [
            ("established", self.established),
            ("answered", self.answered),
            ("syn-only", self.syn_only),
            ("refused", self.refused),
            ("midstream", self.midstream),
        ];
        parts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{n} {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Serialize)]
pub struct PairRow {
    pub src: IpAddr,
    pub src_class: AddrClass,
    pub dst: IpAddr,
    pub dst_class: AddrClass,
    pub protocols: Vec<&'static str>,
    pub packets: u64,
    pub bytes: u64,
    pub tunneled_packets: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// TCP flows `src` initiated towards `dst`, by handshake outcome.
    pub tcp: TcpOutcomes,
}

#[derive(Debug, Serialize)]
pub struct EndpointInfo {
    pub addr: IpAddr,
    pub port: u16,
    pub class: AddrClass,
}

#[derive(Debug, Serialize)]
pub struct FlowRow {
    pub protocol: Cow<'static, str>,
    pub initiator: EndpointInfo,
    pub responder: EndpointInfo,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// TCP only: syn_only, refused, answered, established, midstream.
    pub tcp_state: Option<TcpState>,
    pub syn_packets: u32,
    /// Interface of the flow's first packet.
    pub interface: Label,
    /// Every interface the flow was seen on, in order of first packet.
    pub interfaces: CrossingItems,
    /// The tunnel the flow was first seen in.
    pub tunnel: Option<crate::decode::Tunnel>,
}

#[derive(Debug, Serialize)]
pub struct FlowsReport {
    #[serde(flatten)]
    pub header: CaptureHeader,
    /// Innermost (source, destination) pairs: tunnels judged inside.
    pub distinct_src_dst_pairs: usize,
    /// Outermost pairs: tunnels by their underlay.
    pub distinct_outer_src_dst_pairs: usize,
    pub flow_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<PairRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<FlowRow>>,
}

impl super::Report for super::CaptureReport<'_, FlowsReport> {
    fn table(&self, layout: &Layout) -> String {
        self.of.render(self.topology, layout) + "\n"
    }

    /// One line per capture: the whole report.
    fn ndjson(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        super::output::ndjson_line(out, self.of)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Pair,
    FiveTuple,
}

impl FlowsReport {
    pub fn new(
        header: CaptureHeader,
        table: &FlowTable,
        topology: &Topology,
        names: &InterfaceNames,
        by: Grouping,
    ) -> Self {
        let (pairs, flows) = match by {
            Grouping::Pair => (Some(pair_rows(table, topology)), None),
            Grouping::FiveTuple => (None, Some(flow_rows(table, topology, names))),
        };
        FlowsReport {
            header,
            distinct_src_dst_pairs: table.pairs.len(),
            distinct_outer_src_dst_pairs: table.outermost_pairs(),
            flow_count: table.flows.len(),
            pairs,
            flows,
        }
    }

    /// Header and a table; `layout.limit` rows at most (0 = all).
    pub fn render(&self, topology: &Topology, layout: &Layout) -> String {
        let limit = layout.limit;
        let mut head = super::header::render(&self.header, topology);
        head += &format!(
            "flows     {} flows, {} distinct source -> destination address pairs\n",
            self.flow_count, self.distinct_src_dst_pairs
        );
        let mut out = super::output::opening(&self.header.file, &head, layout) + "\n";
        let take = |n: usize| if limit == 0 { n } else { n.min(limit) };
        // Tables show times relative to the capture's first packet.
        let start = self.header.first.unwrap_or_default();
        let rel = |t: Timestamp| format!("+{:.6}s", t.since(start) as f64 / 1e9);
        let shown;
        let total;
        if let Some(pairs) = &self.pairs {
            let mut table = Sheet::new(&[
                "source",
                "class",
                "destination",
                "class",
                "protocols",
                "packets",
                "bytes",
                "first",
                "last",
                "tcp (opened by source)",
            ]);
            total = pairs.len();
            shown = take(total);
            for row in &pairs[..shown] {
                table.add_row(vec![
                    row.src.to_string(),
                    row.src_class.to_string(),
                    row.dst.to_string(),
                    row.dst_class.to_string(),
                    row.protocols.join(","),
                    row.packets.to_string(),
                    row.bytes.to_string(),
                    rel(row.first),
                    rel(row.last),
                    row.tcp.render(),
                ]);
            }
            out += &table.render(layout);
        } else {
            let flows = self.flows.as_deref().unwrap_or_default();
            // Where flows were seen, only when there is a choice.
            let show_interfaces = self.header.seen_on.len() > 1;
            let show_tunnels = flows.iter().any(|f| f.tunnel.is_some());
            let mut columns = vec![
                "proto",
                "initiator",
                "class",
                "responder",
                "class",
                "pkts ->",
                "pkts <-",
                "bytes",
                "first",
                "last",
                "state",
            ];
            if show_interfaces {
                columns.push("seen on");
            }
            if show_tunnels {
                columns.push("tunnel");
            }
            let mut table = Sheet::new(&columns);
            total = flows.len();
            shown = take(total);
            for row in &flows[..shown] {
                let endpoint = |e: &EndpointInfo| {
                    crate::flow::Endpoint {
                        addr: e.addr,
                        port: e.port,
                    }
                    .to_string()
                };
                let mut cells = vec![
                    row.protocol.to_string(),
                    endpoint(&row.initiator),
                    row.initiator.class.to_string(),
                    endpoint(&row.responder),
                    row.responder.class.to_string(),
                    row.packets_sent.to_string(),
                    row.packets_received.to_string(),
                    (row.bytes_sent + row.bytes_received).to_string(),
                    rel(row.first),
                    rel(row.last),
                    row.tcp_state.map(|s| s.label()).unwrap_or("-").to_string(),
                ];
                if show_interfaces {
                    let names: Vec<&str> = row
                        .interfaces
                        .iter()
                        .map(|c| c.interface.as_str())
                        .collect();
                    cells.push(names.join(" > "));
                }
                if show_tunnels {
                    cells.push(row.tunnel.map_or_else(|| "-".into(), |t| t.to_string()));
                }
                table.add_row(cells);
            }
            out += &table.render(layout);
        }
        out.push('\n');
        if shown < total {
            out += &format!(
                "... {} more rows (--limit 0 shows all, --format json lists all)\n",
                total - shown
            );
        }
        out
    }
}

/// Rows by (source, destination), busiest first, ties by address.
fn pair_rows(table: &FlowTable, topology: &Topology) -> Vec<PairRow> {
    let mut tcp: BTreeMap<(IpAddr, IpAddr), TcpOutcomes> = BTreeMap::new();
    for (key, flow) in &table.flows {
        if key.protocol == 6 {
            let (init, resp) = key.endpoints(flow.initiator());
            tcp.entry((init.addr, resp.addr))
                .or_default()
                .add(flow.tcp_state());
        }
    }
    let mut rows: Vec<PairRow> = table
        .pairs
        .iter()
        .map(
            |(&(src, dst), p): (&(IpAddr, IpAddr), &PairStats)| PairRow {
                src,
                src_class: topology.classify(src),
                dst,
                dst_class: topology.classify(dst),
                protocols: p.protocols.names(),
                packets: p.packets,
                bytes: p.bytes,
                tunneled_packets: p.tunneled,
                first: p.first_ts,
                last: p.last_ts,
                tcp: tcp.get(&(src, dst)).cloned().unwrap_or_default(),
            },
        )
        .collect();
    rows.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then(a.src.cmp(&b.src))
            .then(a.dst.cmp(&b.dst))
    });
    rows
}

/// One row per flow, in order of first appearance in the file.
fn flow_rows(table: &FlowTable, topology: &Topology, names: &InterfaceNames) -> Vec<FlowRow> {
    let mut flows: Vec<(&FlowKey, &Flow)> = table.flows.iter().collect();
    flows.sort_by_key(|(key, flow)| (flow.first_record, **key));
    flows
        .into_iter()
        .map(|(key, flow)| {
            let dir = flow.initiator();
            let (init, resp) = key.endpoints(dir);
            let (sent, recv) = (flow.initiator_side(), flow.responder_side());
            let interfaces = CrossingItem::list(flow, dir, names);
            let info = |e: crate::flow::Endpoint| EndpointInfo {
                addr: e.addr,
                port: e.port,
                class: topology.classify(e.addr),
            };
            FlowRow {
                protocol: protocol_name(key.protocol),
                initiator: info(init),
                responder: info(resp),
                packets_sent: sent.packets,
                packets_received: recv.packets,
                bytes_sent: sent.bytes,
                bytes_received: recv.bytes,
                first: flow.first_ts,
                last: flow.last_ts,
                tcp_state: (key.protocol == 6).then(|| flow.tcp_state()),
                syn_packets: sent.syn,
                interface: CrossingItem::first(&interfaces),
                interfaces,
                tunnel: flow.tunnel(),
            }
        })
        .collect()
}
