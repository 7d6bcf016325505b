//! The incident kpcap was born from (DESIGN.md), as seen by
//! `tcpdump -ni ens19` on a k3s worker (node 10.50.10.21, Cilium with VXLAN
//! tunnelling, pod CIDR 10.42.0.0/16).
//!
//! Before the fix, pods' egress leaves ens19 with pod source addresses:
//! flux pods' SYNs to 1.1.1.1:443 and GitHub are retransmitted and never
//! answered, and CoreDNS's forwarded queries to 1.1.1.1:53 time out, while
//! the node's own HTTPS and DNS to the same destinations are answered.
//! After the fix (bpf.masquerade=true, devices=ens19), the same workload
//! leaves SNATed to the node address and everything is answered.

use super::frame::{dns_message, ethernet, ip_packet, vxlan, L4};
use super::tcp::TcpScript;
use super::writer::CaptureWriter;
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

const NODE: [u8; 4] = [10, 50, 10, 21];
const CONTROL_PLANE: [u8; 4] = [10, 50, 10, 11];
const COREDNS_POD: [u8; 4] = [10, 42, 1, 5];
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
}

/// Frames with their capture times, written in time order.
struct Timeline {
    events: Vec<(Timestamp, Vec<u8>)>,
}

impl Timeline {
    fn add(&mut self, at_ns: u64, ip: Vec<u8>) {
        self.events
            .push((Timestamp(START.0 + at_ns), ethernet(&ip, &[])));
    }

    /// Packets one `SESSION_SPACING` apart, from `at_ns`.
    fn session(&mut self, at_ns: u64, packets: Vec<Vec<u8>>) {
        for (i, ip) in packets.into_iter().enumerate() {
            self.add(at_ns + i as u64 * SESSION_SPACING, ip);
        }
    }
}

fn udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
    ip_packet(
        src.0,
        dst.0,
        &L4::Udp {
            src_port: src.1,
            dst_port: dst.1,
            payload,
        },
    )
}

pub fn write<W: Write>(out: &mut CaptureWriter<W>, phase: Phase, seed: u64) -> std::io::Result<()> {
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
        timeline.session(at * MS, packets);
    }

    // The node's own DNS to the same resolver: answered.
    for (i, at) in (700..DURATION / MS - 1000).step_by(6000).enumerate() {
        let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
        let client = (node, next_port.next().unwrap_or(40001));
        let server = (IpAddr::from(CLOUDFLARE), 53);
        let id = rng.gen();
        let query = dns_message(id, false, 0, name, qtype, None);
        let response = dns_message(id, true, 0, name, qtype, Some(answer));
        timeline.add(at * MS, udp(client, server, &query));
        timeline.add(at * MS + 9 * MS, udp(server, client, &response));
    }

    // Pod-to-pod traffic to the control-plane node, in Cilium's VXLAN
    // tunnel (UDP 8472): underlay, never a finding.
    for at in (1200..DURATION / MS - 1000).step_by(6000) {
        let script = TcpScript::new(
            ([10, 42, 1, 12].into(), next_port.next().unwrap_or(40002)),
            ([10, 42, 0, 8].into(), 8080),
            &mut rng,
        );
        for (i, inner) in script
            .full_session(1, &mut rng, &body)
            .into_iter()
            .enumerate()
        {
            let to_control_plane = i % 2 == 0;
            let (a, b) = if to_control_plane {
                (node, CONTROL_PLANE.into())
            } else {
                (CONTROL_PLANE.into(), node)
            };
            let outer = vxlan(a, b, 8472, 2, &ethernet(&inner, &[]));
            timeline.add(at * MS + i as u64 * MS, outer);
        }
    }

    // Flux pods reaching GitHub, ghcr.io and 1.1.1.1 every 5 s.
    for (round, at) in (2000..24_000).step_by(5000).enumerate() {
        for (i, (pod, server)) in POD_EGRESS.iter().enumerate() {
            let start = (at + i as u64 * 150) * MS;
            let pod_port = next_port.next().unwrap_or(40003);
            match phase {
                Phase::Before => {
                    let script = TcpScript::new(
                        (IpAddr::from(*pod), pod_port),
                        ((*server).into(), 443),
                        &mut rng,
                    );
                    // Linux retransmits a SYN after 1, 2 and 4 s.
                    for (ip, delay) in script.unanswered_syn(3).into_iter().zip([0, 1, 3, 7]) {
                        timeline.add(start + delay * SECOND, ip);
                    }
                }
                Phase::After => {
                    let snat_port = 20000 + (round * POD_EGRESS.len() + i) as u16;
                    let script =
                        TcpScript::new((node, snat_port), ((*server).into(), 443), &mut rng);
                    timeline.session(start, script.full_session(3, &mut rng, &body));
                }
            }
        }
    }

    // CoreDNS forwarding lookups to 1.1.1.1:53 every 3 s; unanswered
    // queries are retried after 2 s with the same id and port.
    for (i, at) in (1000..24_000).step_by(3000).enumerate() {
        let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
        let id = rng.gen();
        let query = dns_message(id, false, 0, name, qtype, None);
        let server = (IpAddr::from(CLOUDFLARE), 53);
        let pod_port = next_port.next().unwrap_or(40004);
        match phase {
            Phase::Before => {
                let client = (IpAddr::from(COREDNS_POD), pod_port);
                timeline.add(at * MS, udp(client, server, &query));
                timeline.add((at + 2000) * MS, udp(client, server, &query));
            }
            Phase::After => {
                let client = (node, 30000 + i as u16);
                let response = dns_message(id, true, 0, name, qtype, Some(answer));
                timeline.add(at * MS, udp(client, server, &query));
                timeline.add(at * MS + 11 * MS, udp(server, client, &response));
            }
        }
    }

    // Stable: simultaneous frames keep the order they were scripted in.
    timeline.events.sort_by_key(|(ts, _)| *ts);
    for (ts, frame) in &timeline.events {
        out.write(*ts, frame)?;
    }
    Ok(())
}
