//! Where a connection between nodes died. A connection that failed in one
//! capture (a SYN unanswered, a DNS query without a response) between
//! endpoints on two nodes is looked up in the other node's capture (the
//! same 5-tuple, or the overlay's inner one, and the same fingerprint);
//! where it was last seen says where it died:
//!
//! - left the client's node, never seen on the server's: the underlay or
//!   a firewall between the nodes;
//! - arrived on the server's node, no answer: the destination pod (or
//!   delivery to it, when it never reached the pod's device);
//! - answered on the server's node, the answer never reached the client's:
//!   the way back.
//!
//! A server node's capture that does not cover the whole connection (on
//! the compared clocks) is inconclusive for it, not a "never arrived".

use super::capture::NodeCapture;
use super::skew::{convert, Skew};
use crate::analysis::{FlowSighting, SeenOn};
use crate::cluster::Directory;
use crate::decode::TunnelKind;
use crate::detect::Settings;
use crate::flow::Endpoint;
use crate::interface::InterfaceKind;
use crate::time::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Path groups kept (the most severe first); the rest are counted.
pub const MAX_PATH_GROUPS: usize = 500;
/// Connections listed per group.
const EXAMPLES: usize = 3;
/// How far apart (on the compared clocks) two sightings without a
/// fingerprint may start and still be one connection.
const SAME_CONNECTION_NS: i64 = 2_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// Left the client's node, never seen on the server's.
    NeverArrived,
    /// Answered on the server's node; the answer never reached the
    /// client's.
    AnswerLost,
    /// Reached the server's node, never a pod's device there.
    NotDelivered,
    /// Arrived on the server's node, no answer there.
    NoAnswerAtDestination,
    /// The server's node's capture does not cover the connection.
    Inconclusive,
    /// The server's node has no capture.
    NotCaptured,
}

impl Conclusion {
    pub fn label(self) -> &'static str {
        match self {
            Conclusion::NeverArrived => "never arrived",
            Conclusion::AnswerLost => "answer lost",
            Conclusion::NotDelivered => "not delivered",
            Conclusion::NoAnswerAtDestination => "no answer at destination",
            Conclusion::Inconclusive => "inconclusive",
            Conclusion::NotCaptured => "not captured",
        }
    }

    /// Where it died is known.
    pub fn located(self) -> bool {
        !matches!(self, Conclusion::Inconclusive | Conclusion::NotCaptured)
    }
}

/// One capture's sighting of a connection.
#[derive(Debug, Clone, Serialize)]
pub struct PathSighting {
    pub node: String,
    pub file: String,
    /// Its first and last packet, on the reference capture's clock.
    pub first: Timestamp,
    pub last: Timestamp,
    /// Packets from the client.
    pub sent: u64,
    pub answered: bool,
    pub seen_on: Vec<SeenOn>,
}

/// One connection followed across the captures.
#[derive(Debug, Clone, Serialize)]
pub struct PathFlow {
    pub client: Endpoint,
    pub server: Endpoint,
    pub sightings: Vec<PathSighting>,
}

/// Connections between two addresses that died the same way.
#[derive(Debug, Clone, Serialize)]
pub struct PathGroup {
    pub protocol: &'static str,
    pub client: IpAddr,
    pub server: IpAddr,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_node: Option<String>,
    pub conclusion: Conclusion,
    /// Where it died, in words.
    pub said: String,
    pub connections: u64,
    /// On the reference capture's clock.
    pub first: Timestamp,
    pub last: Timestamp,
    /// The first connections, with every capture's sighting.
    pub examples: Vec<PathFlow>,
}

/// A connection to follow: where it was found failing.
struct Candidate<'a> {
    capture: usize,
    flow: &'a FlowSighting,
    client_node: String,
    server_node: String,
}

type Tuple = (u8, Endpoint, Endpoint);

/// Each capture's sightings by 5-tuple (indexes into its flows).
fn by_tuple<'a>(capture: &'a NodeCapture<'_>) -> FxHashMap<Tuple, Vec<&'a FlowSighting>> {
    let mut index: FxHashMap<Tuple, Vec<&FlowSighting>> = FxHashMap::default();
    for f in &capture.sightings.flows {
        index
            .entry((f.protocol, f.client, f.server))
            .or_default()
            .push(f);
    }
    index
}

pub(super) fn trace(
    compared: &[&NodeCapture<'_>],
    clocks: &[Skew],
    directory: &Directory,
    settings: &Settings,
) -> (Vec<PathGroup>, u64) {
    let node_of = |addr: IpAddr| directory.node_of(addr).map(str::to_string);
    let capture_of: BTreeMap<&str, usize> = (compared.iter().enumerate())
        .filter_map(|(i, c)| Some((c.node()?, i)))
        .collect();
    let indexes: Vec<_> = compared.iter().map(|c| by_tuple(c)).collect();
    let mut traced: FxHashSet<(Tuple, u64, i64)> = FxHashSet::default();
    let mut groups: BTreeMap<(Conclusion, Tuple, String), PathGroup> = BTreeMap::new();
    for (i, capture) in compared.iter().enumerate() {
        let end = capture.span().map(|s| s.1);
        for flow in &capture.sightings.flows {
            if flow.answered || flow.refused || !failed(flow, end, settings) {
                continue;
            }
            let (Some(client_node), Some(server_node)) =
                (node_of(flow.client.addr), node_of(flow.server.addr))
            else {
                continue;
            };
            if client_node == server_node {
                continue;
            }
            let start = convert(flow.first, &clocks[i], &clocks[0]);
            let bucket = if flow.fingerprint != 0 {
                0
            } else {
                start / SAME_CONNECTION_NS
            };
            let tuple = (flow.protocol, flow.client, flow.server);
            if !traced.insert((tuple, flow.fingerprint, bucket)) {
                continue;
            }
            let candidate = Candidate {
                capture: i,
                flow,
                client_node,
                server_node,
            };
            let found = |j: usize| find(&indexes[j], &candidate, &clocks[i], &clocks[j]);
            let (Some((conclusion, said)), sightings) =
                conclude(&candidate, compared, clocks, &capture_of, found)
            else {
                continue;
            };
            let group = groups
                .entry((conclusion, tuple, said.clone()))
                .or_insert_with(|| PathGroup {
                    protocol: if flow.protocol == 6 { "tcp" } else { "udp" },
                    client: flow.client.addr,
                    server: flow.server.addr,
                    port: flow.server.port,
                    client_node: Some(candidate.client_node.clone()),
                    server_node: Some(candidate.server_node.clone()),
                    conclusion,
                    said,
                    connections: 0,
                    first: Timestamp(i64::MAX as u64),
                    last: Timestamp(0),
                    examples: Vec::new(),
                });
            group.connections += 1;
            let first = Timestamp(start.max(0) as u64);
            let last = Timestamp(convert(flow.last, &clocks[i], &clocks[0]).max(0) as u64);
            group.first = group.first.min(first);
            group.last = group.last.max(last);
            if group.examples.len() < EXAMPLES {
                group.examples.push(PathFlow {
                    client: flow.client,
                    server: flow.server,
                    sightings,
                });
            }
        }
    }
    // Tuples differ by port only per connection: merge those of one
    // address pair and server port.
    let mut merged: BTreeMap<(Conclusion, u8, IpAddr, IpAddr, u16, String), PathGroup> =
        BTreeMap::new();
    for ((conclusion, (protocol, client, server), said), group) in groups {
        let key = (
            conclusion,
            protocol,
            client.addr,
            server.addr,
            server.port,
            said,
        );
        match merged.get_mut(&key) {
            None => {
                merged.insert(key, group);
            }
            Some(into) => {
                into.connections += group.connections;
                into.first = into.first.min(group.first);
                into.last = into.last.max(group.last);
                let room = EXAMPLES.saturating_sub(into.examples.len());
                into.examples.extend(group.examples.into_iter().take(room));
            }
        }
    }
    let mut groups: Vec<PathGroup> = merged.into_values().collect();
    for group in &mut groups {
        group
            .examples
            .sort_by_key(|e| e.sightings.first().map(|s| s.first));
    }
    groups.sort_by(|a, b| {
        (
            a.conclusion,
            std::cmp::Reverse(a.connections),
            a.client,
            a.server,
            a.port,
        )
            .cmp(&(
                b.conclusion,
                std::cmp::Reverse(b.connections),
                b.client,
                b.server,
                b.port,
            ))
    });
    let left_out = groups.len().saturating_sub(MAX_PATH_GROUPS) as u64;
    groups.truncate(MAX_PATH_GROUPS);
    (groups, left_out)
}

/// A SYN or DNS query that got no answer in this capture, old enough at
/// its end to be judged (as the single-capture detectors judge it).
fn failed(flow: &FlowSighting, end: Option<Timestamp>, settings: &Settings) -> bool {
    let grace = match flow.protocol {
        6 if flow.syns > 0 => settings.syn_grace_ns,
        17 if settings.dns_ports.contains(&flow.server.port) && flow.sent > 0 => {
            settings.dns_timeout_ns
        }
        _ => return false,
    };
    end.is_some_and(|end| flow.last.0.saturating_add(grace) <= end.0)
}

/// The candidate's sighting in another capture: the same fingerprint, or
/// without one the sighting starting nearest (within 2 s, on the compared
/// clocks).
fn find<'a>(
    index: &FxHashMap<Tuple, Vec<&'a FlowSighting>>,
    candidate: &Candidate<'_>,
    from: &Skew,
    to: &Skew,
) -> Option<&'a FlowSighting> {
    let flow = candidate.flow;
    let list = index.get(&(flow.protocol, flow.client, flow.server))?;
    if flow.fingerprint != 0 {
        if let Some(same) = list.iter().find(|f| f.fingerprint == flow.fingerprint) {
            return Some(same);
        }
    }
    let expected = convert(flow.first, from, to);
    (list.iter())
        .filter(|f| flow.fingerprint == 0 || f.fingerprint == 0)
        .map(|f| ((f.first.0 as i64 - expected).abs(), *f))
        .filter(|(gap, _)| *gap <= SAME_CONNECTION_NS)
        .min_by_key(|(gap, f)| (*gap, f.first))
        .map(|(_, f)| f)
}

/// Where the candidate died, in words, and every capture's sighting of it
/// (None: nothing to say, as when it was answered everywhere).
fn conclude<'a>(
    candidate: &Candidate<'_>,
    compared: &[&NodeCapture<'_>],
    clocks: &[Skew],
    capture_of: &BTreeMap<&str, usize>,
    found: impl Fn(usize) -> Option<&'a FlowSighting>,
) -> (Option<(Conclusion, String)>, Vec<PathSighting>) {
    let (client, server) = (&candidate.client_node, &candidate.server_node);
    let at_client = capture_of.get(client.as_str()).copied();
    let at_server = capture_of.get(server.as_str()).copied();
    let sighting_in = |j: usize| -> Option<&FlowSighting> {
        if j == candidate.capture {
            Some(candidate.flow)
        } else {
            found(j)
        }
    };
    let mut sightings = Vec::new();
    for j in [at_client, at_server].into_iter().flatten() {
        if let Some(f) = sighting_in(j) {
            sightings.push(PathSighting {
                node: clocks[j].node.clone(),
                file: compared[j].file.to_string(),
                first: Timestamp(convert(f.first, &clocks[j], &clocks[0]).max(0) as u64),
                last: Timestamp(convert(f.last, &clocks[j], &clocks[0]).max(0) as u64),
                sent: f.sent,
                answered: f.answered,
                seen_on: f.seen_on.clone(),
            });
        }
    }
    let seen_client = at_client.and_then(sighting_in);
    let what = if candidate.flow.protocol == 6 {
        "the SYN"
    } else {
        "the query"
    };
    let Some(s) = at_server else {
        let last = seen_client
            .map(|f| format!(": last seen leaving {client}'s {}", left_on(&f.seen_on)))
            .unwrap_or_default();
        return (
            Some((
                Conclusion::NotCaptured,
                format!("{server} (the server's node) has no capture{last}"),
            )),
            sightings,
        );
    };
    let Some(at) = sighting_in(s) else {
        // Never seen on the server's node: only if its capture covered it.
        let (Some(f), Some((first, last))) = (seen_client, compared[s].span()) else {
            return (None, sightings);
        };
        let c = at_client.unwrap_or(candidate.capture);
        let start = convert(f.first, &clocks[c], &clocks[s]);
        let end = convert(f.last, &clocks[c], &clocks[s]);
        if start < first.0 as i64 || end > last.0 as i64 {
            let covered = (end.min(last.0 as i64) - start.max(first.0 as i64)).max(0);
            return (
                Some((
                    Conclusion::Inconclusive,
                    format!(
                        "{server}'s capture overlaps it for {:.3}s of its {:.3}s: cannot say whether it arrived",
                        covered as f64 / 1e9,
                        (end - start) as f64 / 1e9
                    ),
                )),
                sightings,
            );
        }
        return (
            Some((
                Conclusion::NeverArrived,
                format!(
                    "{what} left {client}'s {}, never arrived at {server}",
                    left_on(&f.seen_on)
                ),
            )),
            sightings,
        );
    };
    if !at.answered {
        let pod_side = at.seen_on.iter().find(|d| d.kind == InterfaceKind::PodSide);
        let said = match pod_side {
            Some(device) => (
                Conclusion::NoAnswerAtDestination,
                format!(
                    "{what} arrived at {server}'s {} ({}), no answer: the destination pod",
                    device.device,
                    device.kind.label()
                ),
            ),
            None if sees_pod_side(compared[s]) => (
                Conclusion::NotDelivered,
                format!(
                    "{what} arrived at {server}'s {}, never reached a pod's device there",
                    left_on(&at.seen_on)
                ),
            ),
            None => (
                Conclusion::NoAnswerAtDestination,
                format!(
                    "{what} arrived at {server}'s {}, no answer seen there",
                    left_on(&at.seen_on)
                ),
            ),
        };
        return (Some(said), sightings);
    }
    match seen_client {
        Some(f) if !f.answered => (
            Some((
                Conclusion::AnswerLost,
                format!(
                    "answered on {server} (left its {}), the answer never reached {client}",
                    left_on(&at.seen_on)
                ),
            )),
            sightings,
        ),
        _ => (None, sightings),
    }
}

/// The capture saw pod-side devices (lxc, veth): an `-i any` capture.
fn sees_pod_side(capture: &NodeCapture<'_>) -> bool {
    (capture.outcome.header.seen_on.iter()).any(|i| i.kind == InterfaceKind::PodSide)
}

/// Where a connection left or arrived: the NIC (with its tunnel), else
/// the last device.
fn left_on(seen_on: &[SeenOn]) -> String {
    let nic = (seen_on.iter())
        .filter(|d| d.kind == InterfaceKind::Nic)
        .max_by_key(|d| d.tunnel.is_some());
    let Some(device) = nic.or(seen_on.last()) else {
        return "capture".into();
    };
    match device.tunnel {
        Some(t) => {
            let kind = match t.kind {
                TunnelKind::Vxlan => "VXLAN",
                TunnelKind::Geneve => "Geneve",
                TunnelKind::Ipip => "IP-in-IP",
            };
            if t.kind == TunnelKind::Ipip {
                format!("{} in {kind}", device.device)
            } else {
                format!("{} in {kind} VNI {}", device.device, t.vni)
            }
        }
        None => device.device.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Tunnel;

    fn device(name: &str, kind: InterfaceKind, tunnel: Option<TunnelKind>) -> SeenOn {
        SeenOn {
            device: name.into(),
            kind,
            tunnel: tunnel.map(|kind| Tunnel {
                kind,
                vni: 2,
                outer_src: IpAddr::from([10, 50, 10, 21]),
                outer_dst: IpAddr::from([10, 50, 10, 22]),
            }),
        }
    }

    #[test]
    fn where_a_connection_left_names_the_nic_and_its_tunnel() {
        let lxc = device("lxc1", InterfaceKind::PodSide, None);
        let vxlan = device("ens19", InterfaceKind::Nic, Some(TunnelKind::Vxlan));
        let ipip = device("eth0", InterfaceKind::Nic, Some(TunnelKind::Ipip));
        let plain = device("ens19", InterfaceKind::Nic, None);
        assert_eq!(left_on(&[vxlan, lxc.clone()]), "ens19 in VXLAN VNI 2");
        assert_eq!(left_on(&[ipip]), "eth0 in IP-in-IP");
        assert_eq!(left_on(&[lxc.clone(), plain]), "ens19");
        assert_eq!(left_on(&[lxc]), "lxc1");
        assert_eq!(left_on(&[]), "capture");
    }

    fn flow(protocol: u8, port: u16, syns: u32, last: u64) -> FlowSighting {
        FlowSighting {
            protocol,
            client: Endpoint {
                addr: IpAddr::from([10, 42, 1, 12]),
                port: 40000,
            },
            server: Endpoint {
                addr: IpAddr::from([10, 42, 2, 23]),
                port,
            },
            fingerprint: 1,
            first: Timestamp(0),
            last: Timestamp(last),
            sent: 1,
            syns,
            answered: false,
            refused: false,
            seen_on: Vec::new(),
        }
    }

    #[test]
    fn only_syns_and_queries_old_enough_to_judge_are_followed() {
        let settings = Settings::default();
        let end = Some(Timestamp(10_000_000_000));
        let old = 1_000_000_000;
        assert!(failed(&flow(6, 8080, 1, old), end, &settings));
        assert!(!failed(&flow(6, 8080, 0, old), end, &settings), "no SYN");
        let young = 10_000_000_000 - settings.syn_grace_ns + 1;
        assert!(
            !failed(&flow(6, 8080, 1, young), end, &settings),
            "younger than the grace"
        );
        assert!(failed(&flow(17, 53, 0, old), end, &settings));
        assert!(!failed(&flow(17, 8472, 0, old), end, &settings), "not DNS");
        assert!(!failed(&flow(6, 8080, 1, old), None, &settings), "no end");
    }
}
