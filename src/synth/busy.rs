//! A busy node's NIC: a worker (10.50.10.21) whose 250 pods and the node
//! itself talk to thousands of destinations at once, so that consecutive
//! packets rarely share a flow (thousands of flows active at every point;
//! the mixed scenario keeps 48). The mixed scenario's protocol mix, at the
//! sizes a node sees: HTTPS SNATed to the node and longer transfers,
//! pod-to-pod traffic in Cilium's VXLAN overlay, DNS to CoreDNS and
//! upstream with some queries never answered, unmasqueraded pod egress
//! (the incident), unanswered and refused SYNs, IPv6, pings, a VLAN share.

use super::frame::{dns_message, ethernet, ip_packet, udp_packet, vxlan, L4};
use super::tcp::TcpScript;
use super::writer::CaptureWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
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

/// One conversation's frames, made up front and drained interleaved.
struct Conversation {
    frames: VecDeque<Vec<u8>>,
}

fn in_overlay(rng: &mut ChaCha8Rng, packets: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let far = other_node(rng);
    let vni = rng.gen_range(2..40);
    packets
        .into_iter()
        .map(|ip| {
            // From a pod of this node: leaves toward the far node.
            let outgoing = ip[12..15] == [10, 42, 1];
            let (from, to) = if outgoing {
                (node(), far)
            } else {
                (far, node())
            };
            vxlan(from, to, 8472, vni, &ethernet(&ip, &[]))
        })
        .collect()
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

fn conversation(rng: &mut ChaCha8Rng, hosts: &Hosts, body: &[u8]) -> Conversation {
    let sport = rng.gen_range(32768..61000);
    let vlans: &[u16] = if rng.gen_bool(0.08) { &[10] } else { &[] };
    let packets =
        match rng.gen_range(0..100) {
            // HTTPS from the node address (pods SNATed, or the node's own).
            0..=29 => TcpScript::new((node(), sport), (hosts.external(rng), 443), rng)
                .full_session(rng.gen_range(1..4), rng, body),
            // Longer transfers: image pulls, object storage.
            30..=37 => TcpScript::new((node(), sport), (hosts.external(rng), 443), rng)
                .full_session(rng.gen_range(4..12), rng, body),
            // Pod to pod across nodes, inside the VXLAN overlay.
            38..=55 => {
                let (client, server) = if rng.gen_bool(0.5) {
                    (local_pod(rng), remote_pod(rng))
                } else {
                    (remote_pod(rng), local_pod(rng))
                };
                let inner = TcpScript::new((client, sport), (server, 8080), rng).full_session(
                    rng.gen_range(1..3),
                    rng,
                    body,
                );
                return Conversation {
                    frames: (in_overlay(rng, inner).iter())
                        .map(|ip| ethernet(ip, vlans))
                        .collect(),
                };
            }
            // Pods asking CoreDNS on another node, in the overlay.
            56..=69 => {
                let client = (local_pod(rng), sport);
                let inner = dns(rng, client, (COREDNS.into(), 53));
                return Conversation {
                    frames: (in_overlay(rng, inner).iter())
                        .map(|ip| ethernet(ip, vlans))
                        .collect(),
                };
            }
            // The node (and CoreDNS's forwards, SNATed) asking upstream.
            70..=79 => dns(rng, (node(), sport), (UPSTREAM.into(), 53)),
            // Pod egress that was not masqueraded: SYNs with the pod's address,
            // never answered.
            80..=82 => TcpScript::new((local_pod(rng), sport), (hosts.external(rng), 443), rng)
                .unanswered_syn(2),
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
                TcpScript::new((client, sport), (server, 443), rng).full_session(
                    rng.gen_range(1..3),
                    rng,
                    body,
                )
            }
            // Pings.
            90..=93 => {
                let (dst, id) = (hosts.external(rng), rng.gen());
                (0..3)
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
                    .collect()
            }
            // A SYN nobody answers, retransmitted.
            94..=97 => {
                let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, rng.gen_range(1..255)));
                TcpScript::new((node(), sport), (server, 443), rng).unanswered_syn(2)
            }
            // A refused connection.
            _ => {
                let server = (hosts.external(rng), 8443);
                TcpScript::new((node(), sport), server, rng).refused()
            }
        };
    Conversation {
        frames: packets.iter().map(|ip| ethernet(ip, vlans)).collect(),
    }
}

/// Writes interleaved conversations until about `target_bytes` are out:
/// each packet from one of `ACTIVE` conversations picked at random, 2 to
/// 35 us apart (a node's NIC at a few hundred Mbit/s).
pub fn write<W: Write>(
    out: &mut CaptureWriter<W>,
    target_bytes: u64,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb05e);
    let hosts = Hosts::new(&mut rng);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    super::write_interleaved(out, target_bytes, ACTIVE, &mut rng, 2_000..35_000, |rng| {
        conversation(rng, &hosts, &body).frames
    })?;
    Ok(())
}
