//! One flow as evidence: what the JSON lists under every finding group so
//! an analyst can `jq` down to the connection that matters.

use super::Context;
use crate::decode::Tunnel;
use crate::flow::{protocol_name, Crossing, Direction, Endpoint, Flow, FlowKey};
use crate::interface::{InterfaceKind, InterfaceNames, Label};
use crate::time::Timestamp;
use serde::Serialize;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;

/// One interface a flow was seen on, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossingItem {
    pub interface: Label,
    pub kind: InterfaceKind,
    /// Packets seen on this interface from the initiator and back, copies
    /// of packets counted on another interface included.
    pub packets_sent: u64,
    pub packets_received: u64,
    pub tunnel: Option<Tunnel>,
}

impl CrossingItem {
    /// The flow's crossings, in order of first packet; `initiator` tells
    /// which direction is "sent".
    pub fn list(flow: &Flow, initiator: Direction, names: &InterfaceNames) -> CrossingItems {
        let mut crossings: SmallVec<[&Crossing; 2]> = flow.crossings.iter().collect();
        crossings.sort_by_key(|c| c.first_record);
        crossings
            .into_iter()
            .map(|c| CrossingItem {
                interface: names.shared_label(&c.via),
                kind: names.kind(&c.via),
                packets_sent: c.packets[initiator.index()],
                packets_received: c.packets[initiator.other().index()],
                tunnel: c.tunnel.as_deref().copied(),
            })
            .collect()
    }

    /// The interface of the first packet in a `list`.
    pub fn first(list: &[CrossingItem]) -> Label {
        list.first()
            .map_or_else(Label::none, |c| c.interface.clone())
    }
}

/// A flow's crossings: most flows cross one interface, and an item is
/// built for every flow in a finding, so that one is held in place.
pub type CrossingItems = SmallVec<[CrossingItem; 1]>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowItem {
    pub protocol: Cow<'static, str>,
    pub initiator: Endpoint,
    pub responder: Endpoint,
    /// Interface of the flow's first packet (name if the capture has one).
    pub interface: Label,
    /// Every interface the flow was seen on (`-i any`, multi-interface
    /// pcapng), in order of first packet.
    pub interfaces: CrossingItems,
    /// The tunnel the flow was first seen in.
    pub tunnel: Option<Tunnel>,
    pub first: Timestamp,
    pub last: Timestamp,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// TCP handshake state, or for other protocols `replied` / `no_reply`.
    pub outcome: &'static str,
}

impl FlowItem {
    pub fn new(key: &FlowKey, flow: &Flow, context: &Context<'_>) -> FlowItem {
        let (from, to) = key.endpoints(flow.initiator());
        let sent = flow.initiator_side().packets;
        let received = flow.responder_side().packets;
        let outcome = match key.protocol {
            6 => flow.tcp_state().label(),
            _ if received > 0 => "replied",
            _ => "no_reply",
        };
        let interfaces = CrossingItem::list(flow, flow.initiator(), context.interfaces);
        FlowItem {
            protocol: protocol_name(key.protocol),
            initiator: from,
            responder: to,
            interface: CrossingItem::first(&interfaces),
            interfaces,
            tunnel: flow.tunnel(),
            first: flow.first_ts,
            last: flow.last_ts,
            packets_sent: sent,
            packets_received: received,
            outcome,
        }
    }
}

impl fmt::Display for FlowItem {
    /// `tcp 10.42.1.12:41000 -> 1.1.1.1:443 (syn_only, 4/0 pkts)`, then
    /// ` via lxc1 > ens19` when seen on several interfaces and
    /// ` in vxlan vni 2 10.50.10.21 -> 10.50.10.22` when tunnelled.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} ({}, {}/{} pkts)",
            self.protocol,
            self.initiator,
            self.responder,
            self.outcome,
            self.packets_sent,
            self.packets_received
        )?;
        if self.interfaces.len() > 1 {
            let names: Vec<&str> = self
                .interfaces
                .iter()
                .map(|c| c.interface.as_str())
                .collect();
            write!(f, " via {}", names.join(" > "))?;
        }
        if let Some(tunnel) = &self.tunnel {
            write!(f, " in {tunnel}")?;
        }
        Ok(())
    }
}
