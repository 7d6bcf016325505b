//! One flow as evidence: what the JSON lists under every finding group so
//! an analyst can `jq` down to the connection that matters.

use super::Context;
use crate::decode::Tunnel;
use crate::flow::{protocol_name, Endpoint, Flow, FlowKey};
use crate::time::Timestamp;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowItem {
    pub protocol: String,
    pub initiator: Endpoint,
    pub responder: Endpoint,
    /// Interface of the flow's first packet (name if the capture has one).
    pub interface: String,
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
        FlowItem {
            protocol: protocol_name(key.protocol),
            initiator: from,
            responder: to,
            interface: context
                .interface_name(flow.interface)
                .map_or_else(|| format!("#{}", flow.interface), str::to_string),
            tunnel: flow.tunnel,
            first: flow.first_ts,
            last: flow.last_ts,
            packets_sent: sent,
            packets_received: received,
            outcome,
        }
    }
}

impl fmt::Display for FlowItem {
    /// `tcp 10.42.1.12:41000 -> 1.1.1.1:443 (syn_only, 4/0 pkts)`
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
        )
    }
}
