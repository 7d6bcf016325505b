//! Two nodes' pod-to-pod traffic in an overlay tunnel, as `tcpdump -ni
//! ens19` on node 10.50.10.21 sees it: HTTP sessions and DNS lookups
//! between pods on 10.42.1.0/24 (here) and 10.42.2.0/24 (node
//! 10.50.10.22), all answered, plus one inner SYN to a database pod that
//! nobody answers, and the node's own plain traffic to the API server.
//! The tunnel is VXLAN (Cilium's UDP 8472), Geneve (with an option) or
//! IP-in-IP (Calico's IPIP mode).

use super::frame::{dns_message, ethernet, geneve, ip_in_ip, udp_packet, vxlan};
use super::tcp::TcpScript;
use super::writer::CaptureWriter;
use super::START;
use crate::decode::TunnelKind;
use crate::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::net::IpAddr;

const MS: u64 = 1_000_000;
const DURATION_MS: u64 = 40_000;
const SPACING: u64 = 2 * MS;

const NODE: [u8; 4] = [10, 50, 10, 21];
const PEER: [u8; 4] = [10, 50, 10, 22];
const API_SERVER: [u8; 4] = [10, 50, 10, 11];
const CLIENT_POD: [u8; 4] = [10, 42, 1, 12];
const WEB_POD: [u8; 4] = [10, 42, 2, 30];
const DNS_POD: [u8; 4] = [10, 42, 2, 5];
/// The pod whose SYNs to the database pod go unanswered.
const STUCK_POD: [u8; 4] = [10, 42, 1, 40];
const DATABASE_POD: [u8; 4] = [10, 42, 2, 50];
const VNI: u32 = 2;

struct Timeline {
    kind: TunnelKind,
    frames: Vec<(u64, Vec<u8>)>,
}

impl Timeline {
    /// A pod-to-pod packet, encapsulated between the two nodes.
    fn tunnelled(&mut self, at: u64, inner: Vec<u8>) {
        let outbound = inner[12..14] == [10, 42] && inner[14] == 1;
        let (src, dst) = if outbound {
            (IpAddr::from(NODE), IpAddr::from(PEER))
        } else {
            (IpAddr::from(PEER), IpAddr::from(NODE))
        };
        let outer = match self.kind {
            TunnelKind::Vxlan => vxlan(src, dst, 8472, VNI, &ethernet(&inner, &[])),
            TunnelKind::Geneve => geneve(src, dst, VNI, &ethernet(&inner, &[])),
            TunnelKind::Ipip => ip_in_ip(src, dst, &inner),
        };
        self.frames.push((at, ethernet(&outer, &[])));
    }

    fn plain(&mut self, at: u64, ip: Vec<u8>) {
        self.frames.push((at, ethernet(&ip, &[])));
    }
}

pub fn write<W: Write>(
    out: &mut CaptureWriter<W>,
    kind: TunnelKind,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    let mut timeline = Timeline {
        kind,
        frames: Vec::new(),
    };

    // HTTP between pods on the two nodes, every 6 s.
    for at in (200..DURATION_MS - 1000).step_by(6000) {
        let port = rng.gen_range(32768u16..61000);
        let script = TcpScript::new((CLIENT_POD.into(), port), (WEB_POD.into(), 8080), &mut rng);
        for (i, ip) in script
            .full_session(2, &mut rng, &body)
            .into_iter()
            .enumerate()
        {
            timeline.tunnelled(at * MS + i as u64 * SPACING, ip);
        }
    }

    // DNS lookups to CoreDNS on the other node, every 4 s: answered.
    for (i, at) in (400..DURATION_MS - 1000).step_by(4000).enumerate() {
        let name = [
            "web.default.svc.cluster.local",
            "db.default.svc.cluster.local",
        ][i % 2];
        let id = rng.gen();
        let client = (IpAddr::from(CLIENT_POD), rng.gen_range(32768u16..61000));
        let server = (IpAddr::from(DNS_POD), 53);
        let query = dns_message(id, false, 0, name, 1, None);
        let response = dns_message(id, true, 0, name, 1, Some([10, 43, 0, 20]));
        timeline.tunnelled(at * MS, udp_packet(client, server, &query));
        timeline.tunnelled(at * MS + MS, udp_packet(server, client, &response));
    }

    // One pod's SYNs to the database pod, retransmitted, never answered.
    let port = rng.gen_range(32768u16..61000);
    let script = TcpScript::new(
        (STUCK_POD.into(), port),
        (DATABASE_POD.into(), 5432),
        &mut rng,
    );
    for (ip, delay_s) in script.unanswered_syn(3).into_iter().zip([0, 1, 3, 7]) {
        timeline.tunnelled((5_000 + delay_s * 1000) * MS, ip);
    }

    // The node's own traffic to the API server: plain, answered.
    for at in (600..DURATION_MS - 1000).step_by(5000) {
        let port = rng.gen_range(32768u16..61000);
        let script = TcpScript::new((NODE.into(), port), (API_SERVER.into(), 6443), &mut rng);
        for (i, ip) in script
            .full_session(1, &mut rng, &body)
            .into_iter()
            .enumerate()
        {
            timeline.plain(at * MS + i as u64 * SPACING, ip);
        }
    }

    timeline.frames.sort_by_key(|(at, _)| *at);
    for (at, frame) in &timeline.frames {
        out.write(Timestamp(START.0 + at), frame)?;
    }
    Ok(())
}
