//! The incident kpcap was born from (README.md) on a k3s worker (node
//! 10.50.10.21 on ens19, 192.168.178.21 on ens18; Cilium with VXLAN
//! tunnelling, pod CIDR 10.42.0.0/16), as seen by `tcpdump -ni ens19`, by
//! a capture of both NICs, or by `tcpdump -i any` (SLL or SLL2), where
//! every pod packet appears on its lxc device and again on ens19.
//!
//! Before the fix, pods' egress leaves ens19 with pod source addresses:
//! flux pods' SYNs to 1.1.1.1:443 and GitHub are retransmitted and never
//! answered, and CoreDNS's forwarded queries to 1.1.1.1:53 time out, while
//! the node's own HTTPS and DNS to the same destinations are answered.
//! After the fix (bpf.masquerade=true, devices=ens19), the same workload
//! leaves SNATed to the node address and everything is answered.
//!
//! Each packet is scripted once, with the route it takes through the node;
//! a `View` then renders the copies a capture point would see.

use super::frame::{dns_message, ethernet, rewrite, sll, sll2, udp_packet, vxlan};
use super::tcp::TcpScript;
use super::writer::{CaptureWriter, Container, Link};
use super::START;
use crate::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::net::IpAddr;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
/// Capture length: the last pod SYN and DNS retransmission are well older
/// than the 3 s / 5 s grace windows at its end.
const DURATION: u64 = 40 * SECOND;
/// Gap between packets of one TCP session (a 12 ms RTT to the internet).
const SESSION_SPACING: u64 = 12 * MS;

pub(super) const NODE: [u8; 4] = [10, 50, 10, 21];
pub(super) const CONTROL_PLANE: [u8; 4] = [10, 50, 10, 11];
pub(super) const COREDNS_POD: [u8; 4] = [10, 42, 1, 5];
const CLOUDFLARE: [u8; 4] = [1, 1, 1, 1];
const GITHUB: [u8; 4] = [140, 82, 121, 4];
const GHCR: [u8; 4] = [140, 82, 112, 33];

/// Pod -> external HTTPS attempts: flux's source-controller and
/// helm-controller pulling from GitHub and ghcr.io, a pod probing 1.1.1.1.
const POD_EGRESS: [([u8; 4], [u8; 4]); 3] = [
    ([10, 42, 1, 12], CLOUDFLARE),
    ([10, 42, 1, 17], GITHUB),
    ([10, 42, 1, 17], GHCR),
];

/// What CoreDNS forwards upstream: (name, qtype, answer).
const LOOKUPS: [(&str, u16, [u8; 4]); 4] = [
    ("ghcr.io", 1, GHCR),
    ("ghcr.io", 28, GHCR),
    ("github.com", 1, GITHUB),
    ("api.github.com", 1, GITHUB),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Pod egress leaves unmasqueraded and is never answered.
    Before,
    /// Pod egress is SNATed to the node address and answered.
    After,
    /// After a fix that attached masquerading to ens19 only: two pods
    /// still leave ens18 (the home LAN) with their pod addresses, CoreDNS
    /// to the router's DNS (192.168.178.1:53) and the probe to a LAN host
    /// (192.168.178.10:8123); both answer the node and never the pods.
    AfterLanLeak,
}

/// Where the capture was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `tcpdump -ni ens19 -w`: one Ethernet interface.
    Ens19,
    /// A pcapng capture of ens18 and ens19.
    TwoNics,
    /// `tcpdump -i any`: every device, Linux cooked headers (SLL or SLL2).
    Any(Link),
}

/// A device of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Device {
    pub(super) name: &'static str,
    pub(super) ifindex: u32,
    pub(super) mac: [u8; 6],
    /// The MAC of whoever sends to us on this device (gateway, pod).
    peer_mac: [u8; 6],
}

pub(super) const ENS18: Device = Device {
    name: "ens18",
    ifindex: 2,
    mac: [0x52, 0x54, 0, 0x18, 0, 0x21],
    peer_mac: [0x52, 0x54, 0, 0x18, 0, 0x01],
};
pub(super) const ENS19: Device = Device {
    name: "ens19",
    ifindex: 3,
    mac: [0x52, 0x54, 0, 0x19, 0, 0x21],
    peer_mac: [0x52, 0x54, 0, 0x19, 0, 0x01],
};

/// Each pod's lxc device (Cilium names them lxc + a hash).
pub(super) const PODS: [([u8; 4], Device); 3] = [
    (
        COREDNS_POD,
        Device {
            name: "lxc8a3f2c1d9e01",
            ifindex: 11,
            mac: [0x6e, 0x11, 0x3f, 0x2c, 0x1d, 0x01],
            peer_mac: [0x0a, 0x58, 0x0a, 0x2a, 0x01, 0x05],
        },
    ),
    (
        [10, 42, 1, 12],
        Device {
            name: "lxc3be5a77c0f12",
            ifindex: 12,
            mac: [0x6e, 0x12, 0xe5, 0xa7, 0x7c, 0x12],
            peer_mac: [0x0a, 0x58, 0x0a, 0x2a, 0x01, 0x0c],
        },
    ),
    (
        [10, 42, 1, 17],
        Device {
            name: "lxc90d2e6b4a1c3",
            ifindex: 13,
            mac: [0x6e, 0x13, 0xd2, 0xe6, 0xb4, 0x17],
            peer_mac: [0x0a, 0x58, 0x0a, 0x2a, 0x01, 0x11],
        },
    ),
];

/// The `--ifname` values naming this node's devices in an SLL2 capture.
pub const IFNAMES: &str =
    "2=ens18,3=ens19,11=lxc8a3f2c1d9e01,12=lxc3be5a77c0f12,13=lxc90d2e6b4a1c3";

fn lxc(pod: IpAddr) -> Device {
    PODS.iter()
        .find(|(addr, _)| IpAddr::from(*addr) == pod)
        .map(|(_, device)| *device)
        .expect("a scripted pod")
}

/// How a pod packet looks on the NIC.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Plain,
    /// SNATed to (node address, port): the source going out, the
    /// destination coming back.
    Snat(IpAddr, u16),
    /// In Cilium's VXLAN tunnel to or from the control-plane node.
    Vxlan,
}

/// The path of one scripted packet through the node.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// The node's own packet on a NIC.
    Node(Device),
    /// From a pod: on its lxc device, then on ens19.
    FromPod(Wire),
    /// From a pod: on its lxc device, then unchanged on another NIC.
    FromPodOn(Device),
    /// To a pod: on ens19, then on its lxc device.
    ToPod(Wire),
}

/// One copy of a packet at a capture point.
struct Sighting {
    ts: Timestamp,
    device: Device,
    outgoing: bool,
    ip: Vec<u8>,
}

/// Scripted packets with their routes.
struct Timeline {
    events: Vec<(u64, Vec<u8>, Route)>,
}

/// Time from a packet on the lxc device to its copy on the NIC.
const FORWARDING_NS: u64 = 40_000;

impl Timeline {
    fn add(&mut self, at_ns: u64, ip: Vec<u8>, route: Route) {
        self.events.push((at_ns, ip, route));
    }

    /// The node's own packet on ens19.
    fn node(&mut self, at_ns: u64, ip: Vec<u8>) {
        self.add(at_ns, ip, Route::Node(ENS19));
    }

    /// A pod's packets one `SESSION_SPACING` apart, each routed by
    /// whether the pod sent it.
    fn pod_session(&mut self, at_ns: u64, pod: IpAddr, wire: Wire, packets: Vec<Vec<u8>>) {
        for (i, ip) in packets.into_iter().enumerate() {
            self.pod_packet(at_ns + i as u64 * SESSION_SPACING, pod, wire, ip);
        }
    }

    fn pod_packet(&mut self, at_ns: u64, pod: IpAddr, wire: Wire, ip: Vec<u8>) {
        let route = if source(&ip) == pod {
            Route::FromPod(wire)
        } else {
            Route::ToPod(wire)
        };
        self.add(at_ns, ip, route);
    }

    fn node_session(&mut self, at_ns: u64, packets: Vec<Vec<u8>>) {
        for (i, ip) in packets.into_iter().enumerate() {
            self.node(at_ns + i as u64 * SESSION_SPACING, ip);
        }
    }

    /// Every copy of every packet, in capture order.
    fn sightings(&self) -> Vec<Sighting> {
        let node = IpAddr::from(NODE);
        let control_plane = IpAddr::from(CONTROL_PLANE);
        let mut copies = Vec::new();
        for (at, ip, route) in &self.events {
            let ts = Timestamp(START.0 + at);
            let mut copy = |ts, device, outgoing, ip| {
                copies.push(Sighting {
                    ts,
                    device,
                    outgoing,
                    ip,
                })
            };
            let later = Timestamp(ts.0 + FORWARDING_NS);
            match *route {
                Route::Node(device) => {
                    let outgoing = source(ip) == node || source(ip) == IpAddr::from(NODE_LAN);
                    copy(ts, device, outgoing, ip.clone());
                }
                Route::FromPod(wire) => {
                    copy(ts, lxc(source(ip)), false, ip.clone());
                    let on_wire = match wire {
                        Wire::Plain => ip.clone(),
                        Wire::Snat(addr, port) => rewrite(ip, Some((addr, port)), None),
                        Wire::Vxlan => vxlan(node, control_plane, 8472, 2, &ethernet(ip, &[])),
                    };
                    copy(later, ENS19, true, on_wire);
                }
                Route::FromPodOn(nic) => {
                    copy(ts, lxc(source(ip)), false, ip.clone());
                    copy(later, nic, true, ip.clone());
                }
                Route::ToPod(wire) => {
                    let on_wire = match wire {
                        Wire::Plain => ip.clone(),
                        Wire::Snat(addr, port) => rewrite(ip, None, Some((addr, port))),
                        Wire::Vxlan => vxlan(control_plane, node, 8472, 2, &ethernet(ip, &[])),
                    };
                    copy(ts, ENS19, false, on_wire);
                    copy(later, lxc(destination(ip)), true, ip.clone());
                }
            }
        }
        // Stable: simultaneous copies keep the order they were scripted in.
        copies.sort_by_key(|c| c.ts);
        copies
    }
}

fn source(ip: &[u8]) -> IpAddr {
    IpAddr::from([ip[12], ip[13], ip[14], ip[15]])
}

fn destination(ip: &[u8]) -> IpAddr {
    IpAddr::from([ip[16], ip[17], ip[18], ip[19]])
}

/// The node's address on ens18 (the home LAN, which has a default route
/// too).
pub(super) const NODE_LAN: [u8; 4] = [192, 168, 178, 21];

/// Writes the capture `view` sees; `container` applies to the ens19 view
/// (two NICs are pcapng, `-i any` is pcap, as tcpdump writes it).
pub fn write<W: Write>(
    out: W,
    phase: Phase,
    view: View,
    container: Container,
    seed: u64,
) -> std::io::Result<W> {
    let timeline = script(phase, view, seed);
    let (container, interfaces): (Container, Vec<(&str, Link)>) = match view {
        View::Ens19 => (container, vec![("ens19", Link::Ethernet)]),
        View::TwoNics => (
            Container::Pcapng,
            vec![("ens18", Link::Ethernet), ("ens19", Link::Ethernet)],
        ),
        View::Any(link) => (Container::Pcap, vec![("any", link)]),
    };
    let mut writer = CaptureWriter::with_interfaces(out, container, &interfaces)?;
    for copy in timeline.sightings() {
        let is_nic = copy.device == ENS18 || copy.device == ENS19;
        let (interface, frame) = match view {
            View::Ens19 if copy.device == ENS19 => (0, ethernet(&copy.ip, &[])),
            View::TwoNics if is_nic => (u32::from(copy.device == ENS19), ethernet(&copy.ip, &[])),
            View::Ens19 | View::TwoNics => continue,
            View::Any(link) => {
                // Outgoing frames carry the device's own address, received
                // ones the sender's.
                let address = if copy.outgoing {
                    copy.device.mac
                } else {
                    copy.device.peer_mac
                };
                let frame = match link {
                    Link::Sll2 => sll2(&copy.ip, copy.device.ifindex, copy.outgoing, address),
                    _ => sll(&copy.ip, copy.outgoing, address),
                };
                (0, frame)
            }
        };
        writer.write_on(interface, copy.ts, &frame)?;
    }
    Ok(writer.into_inner())
}

fn script(phase: Phase, view: View, seed: u64) -> Timeline {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    let node = IpAddr::from(NODE);
    let mut timeline = Timeline { events: Vec::new() };
    let mut port = || rng.gen_range(32768u16..61000);
    let ports: Vec<u16> = (0..64).map(|_| port()).collect();
    let mut next_port = ports.into_iter().cycle();

    // The node's own HTTPS: answered before and after the fix.
    for (i, at) in (500..DURATION / MS - 1000).step_by(4000).enumerate() {
        let server = if i % 2 == 0 { CLOUDFLARE } else { GITHUB };
        let script = TcpScript::new(
            (node, next_port.next().unwrap_or(40000)),
            (server.into(), 443),
            &mut rng,
        );
        let packets = script.full_session(2, &mut rng, &body);
        timeline.node_session(at * MS, packets);
    }

    // The node's own DNS to the same resolver: answered.
    for (i, at) in (700..DURATION / MS - 1000).step_by(6000).enumerate() {
        let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
        let client = (node, next_port.next().unwrap_or(40001));
        let server = (IpAddr::from(CLOUDFLARE), 53);
        let id = rng.gen();
        let query = dns_message(id, false, 0, name, qtype, None);
        let response = dns_message(id, true, 0, name, qtype, Some(answer));
        timeline.node(at * MS, udp_packet(client, server, &query));
        timeline.node(at * MS + 9 * MS, udp_packet(server, client, &response));
    }

    // Pod-to-pod traffic to the control-plane node, in Cilium's VXLAN
    // tunnel (UDP 8472): underlay, never a finding.
    let pod = IpAddr::from([10, 42, 1, 12]);
    for at in (1200..DURATION / MS - 1000).step_by(6000) {
        let script = TcpScript::new(
            (pod, next_port.next().unwrap_or(40002)),
            ([10, 42, 0, 8].into(), 8080),
            &mut rng,
        );
        for (i, inner) in script
            .full_session(1, &mut rng, &body)
            .into_iter()
            .enumerate()
        {
            timeline.pod_packet(at * MS + i as u64 * MS, pod, Wire::Vxlan, inner);
        }
    }

    // Flux pods reaching GitHub, ghcr.io and 1.1.1.1 every 5 s.
    for (round, at) in (2000..24_000).step_by(5000).enumerate() {
        for (i, (pod, server)) in POD_EGRESS.iter().enumerate() {
            let start = (at + i as u64 * 150) * MS;
            let pod = IpAddr::from(*pod);
            let pod_port = next_port.next().unwrap_or(40003);
            let script = TcpScript::new((pod, pod_port), ((*server).into(), 443), &mut rng);
            match phase {
                Phase::Before => {
                    // Linux retransmits a SYN after 1, 2 and 4 s.
                    for (ip, delay) in script.unanswered_syn(3).into_iter().zip([0, 1, 3, 7]) {
                        timeline.pod_packet(start + delay * SECOND, pod, Wire::Plain, ip);
                    }
                }
                Phase::After | Phase::AfterLanLeak => {
                    let snat_port = 20000 + (round * POD_EGRESS.len() + i) as u16;
                    let packets = script.full_session(3, &mut rng, &body);
                    timeline.pod_session(start, pod, Wire::Snat(node, snat_port), packets);
                }
            }
        }
    }

    // CoreDNS forwarding lookups to 1.1.1.1:53 every 3 s; unanswered
    // queries are retried after 2 s with the same id and port.
    let coredns = IpAddr::from(COREDNS_POD);
    for (i, at) in (1000..24_000).step_by(3000).enumerate() {
        let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
        let id = rng.gen();
        let query = dns_message(id, false, 0, name, qtype, None);
        let server = (IpAddr::from(CLOUDFLARE), 53);
        let client = (coredns, next_port.next().unwrap_or(40004));
        match phase {
            Phase::Before => {
                for retry in [0, 2000] {
                    let ip = udp_packet(client, server, &query);
                    timeline.pod_packet((at + retry) * MS, coredns, Wire::Plain, ip);
                }
            }
            Phase::After | Phase::AfterLanLeak => {
                let wire = Wire::Snat(node, 30000 + i as u16);
                let response = dns_message(id, true, 0, name, qtype, Some(answer));
                timeline.pod_packet(at * MS, coredns, wire, udp_packet(client, server, &query));
                let reply = udp_packet(server, client, &response);
                timeline.pod_packet(at * MS + 11 * MS, coredns, wire, reply);
            }
        }
    }

    if view != View::Ens19 {
        lan_traffic(&mut timeline, seed, &body);
    }
    if phase == Phase::AfterLanLeak {
        lan_leaks(&mut timeline, seed);
    }
    timeline
}

/// The home router (DNS for the node's own lookups) and a LAN host.
const LAN_ROUTER: [u8; 4] = [192, 168, 178, 1];
const LAN_HOST: [u8; 4] = [192, 168, 178, 10];

/// What leaves ens18 after a fix on ens19 only: the node's own lookups and
/// connections there are answered; the pods' leave with pod addresses
/// and are never answered.
fn lan_leaks(timeline: &mut Timeline, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1818);
    let node = IpAddr::from(NODE_LAN);
    let router = (IpAddr::from(LAN_ROUTER), 53);
    let coredns = IpAddr::from(COREDNS_POD);
    let probe = IpAddr::from([10, 42, 1, 12]);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    for (i, at) in (1500..30_000).step_by(4000).enumerate() {
        let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
        // The node's own lookup: answered.
        let client = (node, rng.gen_range(32768u16..61000));
        let id = rng.gen();
        let query = dns_message(id, false, 0, name, qtype, None);
        let response = dns_message(id, true, 0, name, qtype, Some(answer));
        timeline.add(
            at * MS,
            udp_packet(client, router, &query),
            Route::Node(ENS18),
        );
        let reply = udp_packet(router, client, &response);
        timeline.add(at * MS + 2 * MS, reply, Route::Node(ENS18));
        // CoreDNS's, with its pod address: never answered, retried once.
        let client = (coredns, rng.gen_range(32768u16..61000));
        let query = dns_message(rng.gen(), false, 0, "homeassistant.lan", 1, None);
        for retry in [0, 2000] {
            let ip = udp_packet(client, router, &query);
            timeline.add((at + 700 + retry) * MS, ip, Route::FromPodOn(ENS18));
        }
    }
    for at in (2500..30_000).step_by(6000) {
        // The node reaches the LAN host's port 8123...
        let script = TcpScript::new(
            (node, rng.gen_range(32768u16..61000)),
            (IpAddr::from(LAN_HOST), 8123),
            &mut rng,
        );
        for (i, ip) in script
            .full_session(1, &mut rng, &body)
            .into_iter()
            .enumerate()
        {
            timeline.add(at * MS + i as u64 * MS, ip, Route::Node(ENS18));
        }
        // ...the probe pod's SYNs to it go unanswered.
        let script = TcpScript::new(
            (probe, rng.gen_range(32768u16..61000)),
            (IpAddr::from(LAN_HOST), 8123),
            &mut rng,
        );
        for (ip, delay) in script.unanswered_syn(3).into_iter().zip([0, 1, 3, 7]) {
            timeline.add(
                (at + 900) * MS + delay * SECOND,
                ip,
                Route::FromPodOn(ENS18),
            );
        }
    }
}

/// The node's own traffic on ens18 (home LAN, the other default route):
/// answered HTTPS from 192.168.178.21. Its own generator, so the other
/// views' bytes do not depend on it.
fn lan_traffic(timeline: &mut Timeline, seed: u64, body: &[u8]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x18);
    let node = IpAddr::from(NODE_LAN);
    for at in (300..DURATION / MS - 1000).step_by(5000) {
        let port = rng.gen_range(32768u16..61000);
        let script = TcpScript::new((node, port), (IpAddr::from(GITHUB), 443), &mut rng);
        for (i, ip) in script
            .full_session(1, &mut rng, body)
            .into_iter()
            .enumerate()
        {
            timeline.add(at * MS + i as u64 * SESSION_SPACING, ip, Route::Node(ENS18));
        }
    }
}
