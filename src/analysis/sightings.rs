//! What one capture saw that a capture taken on another node can be
//! compared with: flows between cluster addresses (pod-to-pod, node-to-
//! node, inside a tunnel or not) with where each was seen and whether it
//! was answered, and who reached each external destination and was
//! answered. Taken from the flow table before it is dropped, only when
//! several nodes' captures are analyzed together (`nodes`).

use crate::decode::Tunnel;
use crate::flow::{Direction, Endpoint, Flow, FlowKey, FlowTable};
use crate::interface::{InterfaceKind, InterfaceNames};
use crate::time::Timestamp;
use crate::topology::{AddrClass, Topology};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Flows between cluster addresses kept per capture; past it, the
/// answered ones go first (counted in `flows_left_out`).
pub const MAX_FLOW_SIGHTINGS: usize = 200_000;
/// External destinations kept per capture: those with the most flows.
pub const MAX_DESTINATIONS: usize = 50_000;

const TCP: u8 = 6;
const UDP: u8 = 17;

#[derive(Debug, Clone, Default)]
pub struct Sightings {
    /// Sorted by (protocol, client, server).
    pub flows: Vec<FlowSighting>,
    pub flows_left_out: u64,
    /// By destination.
    pub external: BTreeMap<IpAddr, Reach>,
    pub destinations_left_out: u64,
}

/// One TCP or UDP flow between cluster addresses, as this capture saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSighting {
    pub protocol: u8,
    /// The sender of its first SYN (TCP) or first packet.
    pub client: Endpoint,
    pub server: Endpoint,
    /// What NAT leaves unchanged in its first packet (TCP sequence number,
    /// UDP payload hash; 0 when unknown): the same connection, not only
    /// the same 5-tuple.
    pub fingerprint: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Packets from the client (copies on a second device counted once).
    pub sent: u64,
    /// Pure SYNs from the client.
    pub syns: u32,
    /// The server answered: a SYN-ACK (TCP), any packet (UDP).
    pub answered: bool,
    /// The server sent RST.
    pub refused: bool,
    /// The devices it was seen on, with the tunnel it was carried in there.
    pub seen_on: Vec<SeenOn>,
}

/// A device a flow crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenOn {
    pub device: String,
    pub kind: InterfaceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
}

/// Flows from this capture's cluster sources to one external destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// From node addresses (the node's own, or pods SNATed to it).
    pub node_flows: u64,
    pub node_answered: u64,
    /// From pod addresses.
    pub pod_flows: u64,
    pub pod_answered: u64,
}

impl Sightings {
    pub fn new(flows: &FlowTable, topology: &Topology, names: &InterfaceNames) -> Sightings {
        let mut kept = Vec::new();
        let mut external: FxHashMap<IpAddr, Reach> = FxHashMap::default();
        for (key, flow) in flows.flows.iter() {
            if key.protocol != TCP && key.protocol != UDP {
                continue;
            }
            let (client, server, toward) = ends(key, flow);
            let classes = (
                topology.classify(client.addr),
                topology.classify(server.addr),
            );
            let answered = answered(key.protocol, flow, toward);
            match classes {
                (AddrClass::Pod | AddrClass::Node, AddrClass::Pod | AddrClass::Node) => {
                    kept.push(sighting(key, flow, toward, names));
                }
                (from @ (AddrClass::Pod | AddrClass::Node), AddrClass::External) => {
                    let reach = external.entry(server.addr).or_default();
                    let (flows, answers) = if from == AddrClass::Pod {
                        (&mut reach.pod_flows, &mut reach.pod_answered)
                    } else {
                        (&mut reach.node_flows, &mut reach.node_answered)
                    };
                    *flows += 1;
                    *answers += u64::from(answered);
                }
                _ => {}
            }
        }
        let mut sightings = Sightings::default();
        if kept.len() > MAX_FLOW_SIGHTINGS {
            // Unanswered flows are what a path is traced for.
            kept.sort_by_key(|s| (s.answered, order(s)));
            sightings.flows_left_out = (kept.len() - MAX_FLOW_SIGHTINGS) as u64;
            kept.truncate(MAX_FLOW_SIGHTINGS);
        }
        kept.sort_by_key(order);
        sightings.flows = kept;
        let mut destinations: Vec<(IpAddr, Reach)> = external.into_iter().collect();
        destinations
            .sort_by_key(|(addr, r)| (std::cmp::Reverse(r.node_flows + r.pod_flows), *addr));
        if destinations.len() > MAX_DESTINATIONS {
            sightings.destinations_left_out = (destinations.len() - MAX_DESTINATIONS) as u64;
            destinations.truncate(MAX_DESTINATIONS);
        }
        sightings.external = destinations.into_iter().collect();
        sightings
    }
}

fn order(s: &FlowSighting) -> (u8, Endpoint, Endpoint, Timestamp) {
    (s.protocol, s.client, s.server, s.first)
}

/// (client, server, the direction from client to server).
fn ends(key: &FlowKey, flow: &Flow) -> (Endpoint, Endpoint, Direction) {
    let toward = if key.protocol == TCP {
        match (flow.sides[0].syn > 0, flow.sides[1].syn > 0) {
            (true, false) => Direction::Lo,
            (false, true) => Direction::Hi,
            _ => flow.first_direction,
        }
    } else {
        flow.first_direction
    };
    let (client, server) = key.endpoints(toward);
    (client, server, toward)
}

fn answered(protocol: u8, flow: &Flow, toward: Direction) -> bool {
    let back = &flow.sides[toward.other().index()];
    if protocol == TCP {
        back.syn_ack > 0 || (flow.sides[toward.index()].syn == 0 && back.packets > 0)
    } else {
        back.packets > 0
    }
}

fn sighting(key: &FlowKey, flow: &Flow, toward: Direction, names: &InterfaceNames) -> FlowSighting {
    let (client, server) = key.endpoints(toward);
    let out = &flow.sides[toward.index()];
    let back = &flow.sides[toward.other().index()];
    FlowSighting {
        protocol: key.protocol,
        client,
        server,
        fingerprint: flow.fingerprint,
        first: flow.first_ts,
        last: flow.last_ts,
        sent: out.packets,
        syns: out.syn,
        answered: answered(key.protocol, flow, toward),
        refused: back.rst > 0,
        seen_on: (flow.crossings.iter())
            .map(|c| SeenOn {
                device: names.label(&c.via),
                kind: names.kind(&c.via),
                tunnel: c.tunnel.as_deref().copied(),
            })
            .collect(),
    }
}
