//! A small-packet capture (about 100 bytes a frame): what a node looks
//! like during a DNS storm or a SYN scan, and the worst case for a
//! per-packet cost. DNS lookups from pods and nodes to CoreDNS and an
//! upstream resolver (a few unanswered), SYNs that are answered, refused
//! or never answered, and bare ACKs of long-lived connections.

use super::frame::{dns_message, ethernet, ip_packet, udp_packet, L4};
use super::writer::CaptureWriter;
use super::START;
use crate::decode::tcp_flags::{ACK, RST, SYN};
use crate::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

const NAMES: [&str; 6] = [
    "kubernetes.default.svc.cluster.local",
    "ghcr.io",
    "github.com",
    "api.github.com",
    "registry-1.docker.io",
    "metrics.kube-system.svc.cluster.local",
];

fn host(rng: &mut ChaCha8Rng) -> IpAddr {
    if rng.gen_bool(0.7) {
        IpAddr::V4(Ipv4Addr::new(
            10,
            42,
            rng.gen_range(0..8),
            rng.gen_range(2..250),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 50, 10, rng.gen_range(11..40)))
    }
}

fn tcp(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    ip_packet(
        src.0,
        dst.0,
        &L4::Tcp {
            src_port: src.1,
            dst_port: dst.1,
            flags,
            seq,
            ack,
            payload: &[],
        },
    )
}

/// Writes about `target_bytes` of small frames. With `repeat`, exchange
/// `i` is between the hosts and ports of conversation `i % repeat` (drawn
/// from that conversation's own random stream; its kind, DNS ids,
/// sequence numbers and outcome still vary), so the capture holds a few
/// times `repeat` flows whatever its size: the per-flow cost apart from
/// the per-packet one.
pub fn write<W: Write>(
    out: &mut CaptureWriter<W>,
    target_bytes: u64,
    seed: u64,
    repeat: Option<u64>,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut now = START.0;
    let coredns = (IpAddr::V4(Ipv4Addr::new(10, 42, 0, 10)), 53);
    let upstream = (IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53);
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(4);
    let mut started = 0u64;
    while out.bytes_written < target_bytes {
        frames.clear();
        let mut client = (host(&mut rng), rng.gen_range(32768u16..61000));
        let mut conversation = repeat.map(|n| super::replayed(seed, started, n));
        started += 1;
        if let Some(peers) = &mut conversation {
            client = (host(peers), peers.gen_range(32768u16..61000));
        }
        let kind = rng.gen_range(0..100);
        // Where hosts and ports come from: the conversation's stream, or
        // the capture's (in the order it always drew them).
        let peers = conversation.as_mut().unwrap_or(&mut rng);
        match kind {
            // A lookup, answered (most) or not.
            0..=49 => {
                let server = if peers.gen_bool(0.8) {
                    coredns
                } else {
                    upstream
                };
                let name = NAMES[rng.gen_range(0..NAMES.len())];
                let id = rng.gen();
                let query = dns_message(id, false, 0, name, 1, None);
                frames.push(udp_packet(client, server, &query));
                if rng.gen_bool(0.97) {
                    let response = dns_message(id, true, 0, name, 1, Some([10, 43, 0, 1]));
                    frames.push(udp_packet(server, client, &response));
                }
            }
            // A SYN: answered, refused or dropped.
            50..=74 => {
                let server = (host(peers), [80, 443, 5432, 8080][peers.gen_range(0..4)]);
                let (isn, peer_isn): (u32, u32) = (rng.gen(), rng.gen());
                frames.push(tcp(client, server, SYN, isn, 0));
                match rng.gen_range(0..10) {
                    0..=6 => {
                        frames.push(tcp(server, client, SYN | ACK, peer_isn, isn + 1));
                        frames.push(tcp(client, server, ACK, isn + 1, peer_isn + 1));
                    }
                    7..=8 => frames.push(tcp(server, client, RST | ACK, 0, isn + 1)),
                    _ => {}
                }
            }
            // Keepalive-sized ACKs of established connections.
            _ => {
                let server = (host(peers), 6443);
                let (seq, ack): (u32, u32) = (rng.gen(), rng.gen());
                frames.push(tcp(client, server, ACK, seq, ack));
                frames.push(tcp(server, client, ACK, ack, seq));
            }
        }
        for frame in &frames {
            out.write(Timestamp(now), &ethernet(frame, &[]))?;
            now += rng.gen_range(1_000..20_000);
        }
    }
    Ok(())
}
