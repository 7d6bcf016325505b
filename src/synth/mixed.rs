//! A busy k3s node's egress NIC: HTTPS to the internet (SNATed to node
//! IPs), DNS to an upstream resolver, pod-to-pod traffic in Cilium's VXLAN
//! overlay (UDP 8472), IPv6, pings, a VLAN-tagged share, and a little
//! trouble (unanswered and refused SYNs). Conversations interleave.

use super::frame::{dns_message, ethernet, ip_packet, udp_packet, vxlan, L4};
use super::tcp::TcpScript;
use super::writer::CaptureWriter;
use crate::time::Timestamp;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// 2025-06-01T10:00:00Z: fixed, so the same seed gives the same bytes.
pub const START: Timestamp = Timestamp(1_748_772_000_000_000_000);
const CONCURRENT: usize = 48;

fn node(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 50, 10, 11 + i % 3))
}

fn pod(rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        42,
        rng.gen_range(0..3),
        rng.gen_range(2..250),
    ))
}

fn external(rng: &mut ChaCha8Rng) -> IpAddr {
    const SITES: [[u8; 4]; 8] = [
        [1, 1, 1, 1],
        [140, 82, 121, 4],
        [185, 199, 108, 153],
        [151, 101, 1, 69],
        [104, 16, 132, 229],
        [13, 107, 42, 14],
        [142, 250, 185, 78],
        [34, 117, 59, 81],
    ];
    IpAddr::V4(Ipv4Addr::from(*SITES.choose(rng).expect("non-empty")))
}

/// One conversation's frames, produced up front and drained interleaved.
struct Conversation {
    frames: VecDeque<Vec<u8>>,
}

fn conversation(rng: &mut ChaCha8Rng, body: &[u8], dns_id: &mut u16) -> Conversation {
    let sport = rng.gen_range(32768..61000);
    let vlans: &[u16] = if rng.gen_bool(0.1) { &[10] } else { &[] };
    let roll = rng.gen_range(0..100);
    let packets: Vec<Vec<u8>> = match roll {
        // HTTPS from a node address (pod traffic after SNAT, or host traffic).
        0..=39 => {
            let script = TcpScript::new((node(rng.gen()), sport), (external(rng), 443), rng);
            script.full_session(rng.gen_range(1..8), rng, body)
        }
        // Pod to pod across nodes, inside the VXLAN overlay.
        40..=59 => {
            let (a, b) = (rng.gen::<u8>(), rng.gen::<u8>());
            let script = TcpScript::new((pod(rng), sport), (pod(rng), 8080), rng);
            let inner = script.full_session(rng.gen_range(1..4), rng, body);
            return Conversation {
                frames: inner
                    .into_iter()
                    .map(|ip| {
                        ethernet(
                            &vxlan(
                                node(a),
                                node(b.wrapping_add(1)),
                                8472,
                                2 + (a as u32 % 5),
                                &ethernet(&ip, &[]),
                            ),
                            vlans,
                        )
                    })
                    .collect(),
            };
        }
        // DNS from a node to the upstream resolver; a few NXDOMAIN.
        60..=84 => {
            *dns_id = dns_id.wrapping_add(1);
            let names = [
                "ghcr.io",
                "github.com",
                "registry-1.docker.io",
                "api.cloudflare.com",
                "no-such-host.example",
            ];
            let name = names.choose(rng).expect("non-empty");
            let rcode = if name.starts_with("no-such") { 3 } else { 0 };
            let client = (node(rng.gen()), sport);
            let server = (IpAddr::V4(Ipv4Addr::new(192, 168, 178, 1)), 53);
            let query = dns_message(*dns_id, false, 0, name, 1, None);
            let answer = (rcode == 0).then_some([140, 82, 121, 4]);
            let response = dns_message(*dns_id, true, rcode, name, 1, answer);
            vec![
                udp_packet(client, server, &query),
                udp_packet(server, client, &response),
            ]
        }
        // IPv6 HTTPS.
        85..=89 => {
            let client = IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x50,
                0x10,
                0,
                0,
                0,
                11 + rng.gen_range(0..3),
            ));
            let server = IpAddr::V6(Ipv6Addr::new(
                0x2606,
                0x4700,
                0,
                0,
                0,
                0,
                0x6810,
                rng.gen_range(1..9),
            ));
            TcpScript::new((client, sport), (server, 443), rng).full_session(
                rng.gen_range(1..4),
                rng,
                body,
            )
        }
        // Ping.
        90..=93 => {
            let (src, dst, id) = (node(rng.gen()), external(rng), rng.gen());
            (0..3)
                .flat_map(|seq| {
                    [
                        ip_packet(
                            src,
                            dst,
                            &L4::Echo {
                                request: true,
                                id,
                                seq,
                            },
                        ),
                        ip_packet(
                            dst,
                            src,
                            &L4::Echo {
                                request: false,
                                id,
                                seq,
                            },
                        ),
                    ]
                })
                .collect()
        }
        // A SYN nobody answers, retransmitted.
        94..=96 => {
            let script = TcpScript::new(
                (node(rng.gen()), sport),
                (
                    IpAddr::V4(Ipv4Addr::new(203, 0, 113, rng.gen_range(1..255))),
                    443,
                ),
                rng,
            );
            script.unanswered_syn(2)
        }
        // A refused connection.
        _ => TcpScript::new((node(rng.gen()), sport), (external(rng), 8443), rng).refused(),
    };
    Conversation {
        frames: packets.iter().map(|ip| ethernet(ip, vlans)).collect(),
    }
}

/// Writes interleaved conversations until about `target_bytes` are out.
/// With `repeat`, conversation `i` replays conversation `i % repeat`'s
/// hosts, ports and packets (its own random stream), so the capture holds
/// `repeat` conversations' flows whatever its size.
pub fn write<W: Write>(
    out: &mut CaptureWriter<W>,
    target_bytes: u64,
    seed: u64,
    repeat: Option<u64>,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let body: Vec<u8> = (0..1448).map(|_| rng.gen()).collect();
    let mut dns_id = 0u16;
    let mut started = 0u64;
    super::write_interleaved(
        out,
        target_bytes,
        CONCURRENT,
        &mut rng,
        10_000..400_000,
        |rng| {
            let next = match repeat {
                Some(n) => conversation(&mut super::replayed(seed, started, n), &body, &mut dns_id),
                None => conversation(rng, &body, &mut dns_id),
            };
            started += 1;
            next.frames.into_iter().map(|frame| vec![frame]).collect()
        },
    )?;
    Ok(())
}
