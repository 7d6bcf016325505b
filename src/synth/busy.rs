//! A busy node's NIC: a worker (10.50.10.21) whose 250 pods and the node
//! itself talk to thousands of destinations at once, so that consecutive
//! packets rarely share a flow (thousands of flows active at every point;
//! the mixed scenario keeps 48). The mixed scenario's protocol mix, at the
//! sizes a node sees: HTTPS SNATed to the node and longer transfers,
//! pod-to-pod traffic in Cilium's VXLAN overlay, DNS to CoreDNS and
//! upstream with some queries never answered, unmasqueraded pod egress
//! (the incident), unanswered and refused SYNs, IPv6, pings, a VLAN share.
//!
//! Captured on the NIC, or with `tcpdump -i any` (cooked headers, no VLAN
//! tags), where a pod's packet is seen on its lxc device and again on the
//! NIC: the pod's own address before SNAT, the inner packet before VXLAN.

use super::frame::{dns_message, ethernet, ip_packet, rewrite, sll, sll2, udp_packet, vxlan, L4};
use super::tcp::TcpScript;
use super::writer::CaptureWriter;
use super::writer::Link;
use super::Frames;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Conversations in progress at every point.
const ACTIVE: usize = 3000;
const NODE: [u8; 4] = [10, 50, 10, 21];
/// The external addresses talked to: a pool this large, from a few
/// providers' ranges.
const EXTERNALS: usize = 20_000;
const PROVIDERS: [[u8; 2]; 8] = [
    [140, 82],
    [185, 199],
    [151, 101],
    [104, 16],
    [13, 107],
    [142, 250],
    [34, 117],
    [52, 95],
];

struct Hosts {
    externals: Vec<IpAddr>,
}

impl Hosts {
    fn new(rng: &mut ChaCha8Rng) -> Hosts {
        let externals = (0..EXTERNALS)
            .map(|i| {
                let [a, b] = PROVIDERS[i % PROVIDERS.len()];
                IpAddr::V4(Ipv4Addr::new(a, b, rng.gen(), rng.gen_range(1..255)))
            })
            .collect();
        Hosts { externals }
    }

    fn external(&self, rng: &mut ChaCha8Rng) -> IpAddr {
        // Popular destinations first: a few get most of the traffic.
        let skewed = (rng.gen::<f64>().powi(3) * EXTERNALS as f64) as usize;
        self.externals[skewed.min(EXTERNALS - 1)]
    }
}

fn node() -> IpAddr {
    IpAddr::from(NODE)
}

/// Another node (the overlay's far end).
fn other_node(rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 50, 10, rng.gen_range(30..80)))
}

/// A pod on this node.
fn local_pod(rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 42, 1, rng.gen_range(2..252)))
}

/// A pod on another node.
fn remote_pod(rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        42,
        rng.gen_range(2..50),
        rng.gen_range(2..252),
    ))
}

const COREDNS: [u8; 4] = [10, 42, 0, 5];
const UPSTREAM: [u8; 4] = [10, 50, 0, 2];
const NAMES: [&str; 8] = [
    "ghcr.io",
    "github.com",
    "registry-1.docker.io",
    "api.cloudflare.com",
    "objects.githubusercontent.com",
    "kubernetes.default.svc.cluster.local",
    "prometheus.monitoring.svc.cluster.local",
    "no-such-host.example",
];

/// The devices of the node a packet crosses, which decide its copies in
/// an `-i any` capture.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// The node's own traffic (pods' too, once SNATed): the NIC only.
    Node,
    /// A local pod's traffic SNATed to the node: first on the pod's lxc
    /// device with the pod's address and port, then on the NIC.
    Snat { pod: (IpAddr, u16) },
    /// A local pod's packets as they are, on its lxc device and on the NIC
    /// (unmasqueraded egress).
    Pod,
    /// Pod to pod across nodes: the inner packet on the local pod's lxc
    /// device, in VXLAN (UDP 8472) between the nodes on the NIC.
    Overlay { far: IpAddr, vni: u32 },
}

const NIC_IFINDEX: u32 = 2;
const NIC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn is_local_pod(addr: &[u8]) -> bool {
    addr[..3] == [10, 42, 1]
}

fn overlay(rng: &mut ChaCha8Rng) -> Route {
    Route::Overlay {
        far: other_node(rng),
        vni: rng.gen_range(2..40),
    }
}

/// The packet in VXLAN between this node and `far`.
fn in_vxlan(ip: &[u8], far: IpAddr, vni: u32) -> Vec<u8> {
    // From a pod of this node: leaves toward the far node.
    let (from, to) = if is_local_pod(&ip[12..16]) {
        (node(), far)
    } else {
        (far, node())
    };
    vxlan(from, to, 8472, vni, &ethernet(ip, &[]))
}

/// The copies of one IP packet a capture sees: on the NIC (Ethernet, with
/// `vlans`), or with `-i any` on each device of its route, in the order
/// it crosses them.
fn copies(ip: &[u8], route: Route, any: Option<Link>, vlans: &[u16]) -> Vec<Vec<u8>> {
    let on_nic = match route {
        Route::Overlay { far, vni } => in_vxlan(ip, far, vni),
        _ => ip.to_vec(),
    };
    let Some(link) = any else {
        return vec![ethernet(&on_nic, vlans)];
    };
    let outgoing = match route {
        Route::Overlay { .. } | Route::Pod => is_local_pod(&ip[12..16]),
        _ => ip[0] >> 4 == 6 || ip[12..16] == NODE,
    };
    // Outgoing frames carry the device's own address, received ones the
    // sender's.
    let cooked = |ip: &[u8], ifindex: u32, outgoing: bool, (own, peer): ([u8; 6], [u8; 6])| {
        let address = if outgoing { own } else { peer };
        match link {
            Link::Sll2 => sll2(ip, ifindex, outgoing, address),
            _ => sll(ip, outgoing, address),
        }
    };
    let nic = cooked(&on_nic, NIC_IFINDEX, outgoing, (NIC_MAC, ROUTER_MAC));
    let pod_side = match route {
        Route::Node => return vec![nic],
        Route::Snat { pod } if outgoing => rewrite(ip, Some(pod), None),
        Route::Snat { pod } => rewrite(ip, None, Some(pod)),
        Route::Pod | Route::Overlay { .. } => ip.to_vec(),
    };
    // The local pod's address (IPv4) is the lxc copy's source when
    // outgoing, its destination otherwise: its last byte numbers the device.
    let pod = if outgoing { pod_side[15] } else { pod_side[19] };
    // The lxc device's host side: the pod's packets arrive there, and
    // packets to the pod leave from it.
    let lxc_macs = ([2, 0, 0, 1, 0, pod], [2, 0, 0, 2, 0, pod]);
    let lxc = cooked(&pod_side, 10 + u32::from(pod), !outgoing, lxc_macs);
    if outgoing {
        vec![lxc, nic]
    } else {
        vec![nic, lxc]
    }
}

fn dns(rng: &mut ChaCha8Rng, client: (IpAddr, u16), server: (IpAddr, u16)) -> Vec<Vec<u8>> {
    let id = rng.gen();
    let name = NAMES[rng.gen_range(0..NAMES.len())];
    let qtype = if rng.gen_bool(0.3) { 28 } else { 1 };
    let query = udp_packet(
        client,
        server,
        &dns_message(id, false, 0, name, qtype, None),
    );
    if rng.gen_bool(0.06) {
        // Never answered: retried once with the same id and port.
        return vec![query.clone(), query];
    }
    let rcode = if name.starts_with("no-such") { 3 } else { 0 };
    let answer = (rcode == 0).then_some([140, 82, 121, 4]);
    let response = dns_message(id, true, rcode, name, qtype, answer);
    vec![query, udp_packet(server, client, &response)]
}

/// Client ports: the range Linux draws from.
const PORTS: std::ops::Range<u16> = 32768..61000;

/// The TCP connections of the capture so far, by (client, server). A
/// node's conntrack does not reuse a connection's addresses and ports
/// while its entry lives (two minutes after it closes: longer than these
/// captures), so neither does the generator: two conversations on one
/// 5-tuple would make one flow of two, whose first packet is only one's.
#[derive(Default)]
struct Connections(FxHashSet<((IpAddr, u16), (IpAddr, u16))>);

impl Connections {
    /// The first port from `port` on (wrapping in `PORTS`) that no
    /// connection from `client` to `server` has used; marks it used. No
    /// draw: a conversation whose port is free is written as if there were
    /// no check.
    fn open(&mut self, client: IpAddr, port: u16, server: (IpAddr, u16)) -> (IpAddr, u16) {
        let span = PORTS.end - PORTS.start;
        let mut port = port;
        for _ in 0..span {
            if self.0.insert(((client, port), server)) {
                break;
            }
            port = PORTS.start + (port - PORTS.start + 1) % span;
        }
        (client, port)
    }
}

/// The destination address and port of an IPv4 packet of the generator's
/// (a 20-byte header, then TCP or UDP).
fn ipv4_destination(ip: &[u8]) -> (IpAddr, u16) {
    let address: [u8; 4] = ip[16..20].try_into().expect("an IPv4 header");
    (address.into(), u16::from_be_bytes([ip[22], ip[23]]))
}

fn conversation(
    rng: &mut ChaCha8Rng,
    hosts: &Hosts,
    connections: &mut Connections,
    body: &[u8],
    any: Option<Link>,
) -> Frames {
    let sport = rng.gen_range(PORTS);
    // `-i any` shows no VLAN tags; the draw is made either way, so that
    // both captures hold the same conversations.
    let vlans: &[u16] = if rng.gen_bool(0.08) && any.is_none() {
        &[10]
    } else {
        &[]
    };
    let (packets, route) = match rng.gen_range(0..100) {
        // HTTPS from the node address (pods SNATed, or the node's own);
        // from 30 on, longer transfers: image pulls, object storage.
        https @ 0..=37 => {
            let requests = if https < 30 { 1..4 } else { 4..12 };
            let server = (hosts.external(rng), 443);
            let client = connections.open(node(), sport, server);
            let session = TcpScript::new(client, server, rng);
            (
                session.full_session(rng.gen_range(requests), rng, body),
                Route::Node,
            )
        }
        // Pod to pod across nodes, inside the VXLAN overlay.
        38..=55 => {
            let (client, server) = if rng.gen_bool(0.5) {
                (local_pod(rng), remote_pod(rng))
            } else {
                (remote_pod(rng), local_pod(rng))
            };
            let server = (server, 8080);
            let client = connections.open(client, sport, server);
            let inner =
                TcpScript::new(client, server, rng).full_session(rng.gen_range(1..3), rng, body);
            (inner, overlay(rng))
        }
        // Pods asking CoreDNS on another node, in the overlay.
        56..=69 => {
            let client = (local_pod(rng), sport);
            let inner = dns(rng, client, (COREDNS.into(), 53));
            (inner, overlay(rng))
        }
        // The node (and CoreDNS's forwards, SNATed) asking upstream.
        70..=79 => (
            dns(rng, (node(), sport), (UPSTREAM.into(), 53)),
            Route::Node,
        ),
        // Pod egress that was not masqueraded: SYNs with the pod's address,
        // never answered.
        80..=82 => {
            let (pod, server) = (local_pod(rng), (hosts.external(rng), 443));
            let client = connections.open(pod, sport, server);
            (
                TcpScript::new(client, server, rng).unanswered_syn(2),
                Route::Pod,
            )
        }
        // IPv6 HTTPS.
        83..=89 => {
            let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x50, 0x10, 0, 0, 0, 0x21));
            let server = IpAddr::V6(Ipv6Addr::new(
                0x2606,
                0x4700,
                0,
                0,
                0,
                0,
                rng.gen(),
                rng.gen_range(1..0xff),
            ));
            let server = (server, 443);
            let client = connections.open(client, sport, server);
            let packets =
                TcpScript::new(client, server, rng).full_session(rng.gen_range(1..3), rng, body);
            (packets, Route::Node)
        }
        // Pings.
        90..=93 => {
            let (dst, id) = (hosts.external(rng), rng.gen());
            let packets = (0..3)
                .flat_map(|seq| {
                    [true, false].map(|request| {
                        let (s, d) = if request {
                            (node(), dst)
                        } else {
                            (dst, node())
                        };
                        ip_packet(s, d, &L4::Echo { request, id, seq })
                    })
                })
                .collect();
            (packets, Route::Node)
        }
        // A SYN nobody answers, retransmitted.
        94..=97 => {
            let server = (
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, rng.gen_range(1..255))),
                443,
            );
            let client = connections.open(node(), sport, server);
            (
                TcpScript::new(client, server, rng).unanswered_syn(2),
                Route::Node,
            )
        }
        // A refused connection.
        _ => {
            let server = (hosts.external(rng), 8443);
            let client = connections.open(node(), sport, server);
            (TcpScript::new(client, server, rng).refused(), Route::Node)
        }
    };
    // Seen with `-i any`, half of the node's IPv4 TCP is a local pod's,
    // SNATed (drawn only then: the NIC's capture stays as it was).
    let route = match route {
        Route::Node
            if any.is_some()
                && packets[0][9] == 6
                && packets[0][0] >> 4 == 4
                && rng.gen_bool(0.5) =>
        {
            let (pod, port) = (local_pod(rng), rng.gen_range(PORTS));
            Route::Snat {
                pod: connections.open(pod, port, ipv4_destination(&packets[0])),
            }
        }
        route => route,
    };
    packets
        .iter()
        .map(|ip| copies(ip, route, any, vlans))
        .collect()
}

/// Writes interleaved conversations until about `target_bytes` are out
/// (`any`: as `tcpdump -i any` with that cooked header sees them):
/// each packet from one of `ACTIVE` conversations picked at random, 2 to
/// 35 us apart (a node's NIC at a few hundred Mbit/s).
pub fn write<W: Write>(
    out: &mut CaptureWriter<W>,
    target_bytes: u64,
    seed: u64,
    any: Option<Link>,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb05e);
    let hosts = Hosts::new(&mut rng);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    let mut connections = Connections::default();
    super::write_interleaved(out, target_bytes, ACTIVE, &mut rng, 2_000..35_000, |rng| {
        conversation(rng, &hosts, &mut connections, &body, any)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_in_use_moves_to_the_next_free_port() {
        let mut connections = Connections::default();
        let (client, server) = (node(), (IpAddr::from([140, 82, 1, 2]), 443));
        assert_eq!(connections.open(client, 40000, server).1, 40000);
        assert_eq!(connections.open(client, 40000, server).1, 40001);
        assert_eq!(connections.open(client, 40000, server).1, 40002);
        // Another server, or another client, is another connection.
        assert_eq!(connections.open(client, 40000, (server.0, 80)).1, 40000);
        assert_eq!(
            connections.open(local_pod_for_test(), 40000, server).1,
            40000
        );
        // The range wraps.
        let last = PORTS.end - 1;
        assert_eq!(connections.open(client, last, server).1, last);
        assert_eq!(connections.open(client, last, server).1, PORTS.start);
    }

    fn local_pod_for_test() -> IpAddr {
        IpAddr::from([10, 42, 1, 9])
    }

    #[test]
    fn no_two_tcp_conversations_share_a_connection() {
        // As many conversations as a 1 GiB capture holds, whose popular
        // destinations each get thousands of connections from the node.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let hosts = Hosts::new(&mut rng);
        let mut connections = Connections::default();
        let mut opened = FxHashSet::default();
        for _ in 0..150_000 {
            let frames = conversation(&mut rng, &hosts, &mut connections, &[0; 1448], None);
            let first = &frames[0][0][14..];
            let ip = if frames[0][0][12..14] == [0x81, 0] {
                &first[4..]
            } else {
                first
            };
            if ip[0] >> 4 == 4 && ip[9] == 6 {
                let tuple = (ip[12..20].to_vec(), ip[20..24].to_vec());
                assert!(opened.insert(tuple), "a 5-tuple opened twice");
            }
        }
        assert!(opened.len() > 50_000, "{} connections", opened.len());
    }
}
