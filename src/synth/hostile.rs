//! Hostile inputs: captures crafted (or damaged) to make a reader spend
//! memory or time out of proportion to their size. Each class aims at one
//! structure that grows with the input or one loop that could turn
//! quadratic; tests run them small and check the growth, `bench/hostile.sh`
//! runs them at the sizes of docs/performance.md.

use super::frame::{dns_message, ethernet, ip_packet, sll2, udp_packet, L4};
use super::writer::{CaptureWriter, Container, Link};
use super::START;
use crate::decode::tcp_flags::{ACK, PSH, SYN};
use crate::time::Timestamp;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// A valid pcap header, then zeros: no record header is plausible.
    Zeros,
    /// A pcapng section and interface, then random bytes (a 4 KiB block
    /// repeated: compressed, a small file holds gigabytes of it).
    Garbage,
    /// A valid pcap header, then a hole (a sparse file): zeros that take
    /// no disk space. Needs a file to write to.
    Hole,
    /// One long TCP connection to port 53 carrying DNS queries.
    DnsTcpStream,
    /// The same DNS query (same id, same ports) over and over: one key.
    DnsCopies,
    /// Queries, then responses to each after the timeout, on one key.
    LateDns,
    /// Linux cooked v2, one flow whose every packet comes on a new
    /// interface index.
    IfindexChurn,
    /// A pcapng with one interface per packet of one flow.
    ManyInterfaces,
    /// SYNs from a new spoofed source each, to one node port.
    SynFlood,
}

const NODE: Ipv4Addr = Ipv4Addr::new(10, 50, 10, 21);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
const NAME: &str = "example.com";

/// Writes about `bytes` of the class's capture (a hole is written as its
/// header only: see `hole_len`).
pub fn write<W: Write>(out: W, class: Hostile, bytes: u64, seed: u64) -> std::io::Result<W> {
    let (container, interfaces): (Container, Vec<(String, Link)>) = match class {
        Hostile::Garbage => (Container::Pcapng, vec![("ens19".into(), Link::Ethernet)]),
        Hostile::IfindexChurn => (Container::Pcap, vec![("any".into(), Link::Sll2)]),
        Hostile::ManyInterfaces => {
            // An interface description and an enhanced packet block of
            // the frame below take about 150 bytes.
            let count = (bytes / 150).clamp(1, u32::MAX as u64);
            let names = (0..count).map(|i| (format!("veth{i}"), Link::Ethernet));
            (Container::Pcapng, names.collect())
        }
        _ => (Container::Pcap, vec![("ens19".into(), Link::Ethernet)]),
    };
    let named: Vec<(&str, Link)> = interfaces.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let mut writer = CaptureWriter::with_interfaces(out, container, &named)?;
    let mut now = START.0;
    let mut next = |step: u64| {
        now += step;
        Timestamp(now)
    };
    let node = IpAddr::V4(NODE);
    let resolver = IpAddr::V4(RESOLVER);
    match class {
        Hostile::Zeros | Hostile::Hole => {
            let mut out = writer.into_inner();
            if class == Hostile::Zeros {
                let zeros = vec![0u8; 1 << 20];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    out.write_all(&zeros[..n])?;
                    left -= n as u64;
                }
            }
            return Ok(out);
        }
        Hostile::Garbage => {
            let mut out = writer.into_inner();
            let mut block = vec![0u8; 4 << 10];
            ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut block);
            let mut left = bytes;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                out.write_all(&block[..n])?;
                left -= n as u64;
            }
            return Ok(out);
        }
        Hostile::DnsTcpStream => {
            let client = (IpAddr::V4(Ipv4Addr::new(10, 42, 1, 17)), 40000);
            let server = (resolver, 53);
            let tcp = |flags, seq, payload: &[u8]| {
                let l4 = L4::Tcp {
                    src_port: client.1,
                    dst_port: server.1,
                    flags,
                    seq,
                    ack: 1,
                    payload,
                };
                ethernet(&ip_packet(client.0, server.0, &l4), &[])
            };
            let mut seq = 1000u32;
            writer.write(next(1_000), &tcp(SYN, seq, &[]))?;
            seq = seq.wrapping_add(1);
            // Length-prefixed queries, packed into full segments, so
            // messages straddle segment boundaries.
            let mut stream = Vec::new();
            let mut id = 0u16;
            while writer.bytes_written < bytes {
                while stream.len() < 1448 {
                    id = id.wrapping_add(1);
                    let query = dns_message(id, false, 0, NAME, 1, None);
                    stream.extend_from_slice(&(query.len() as u16).to_be_bytes());
                    stream.extend_from_slice(&query);
                }
                let segment: Vec<u8> = stream.drain(..1448).collect();
                writer.write(next(20_000), &tcp(ACK | PSH, seq, &segment))?;
                seq = seq.wrapping_add(segment.len() as u32);
            }
        }
        Hostile::DnsCopies => {
            let query = dns_message(0x1234, false, 0, NAME, 1, None);
            let frame = ethernet(&udp_packet((node, 40000), (resolver, 53), &query), &[]);
            while writer.bytes_written < bytes {
                writer.write(next(1_000), &frame)?;
            }
        }
        Hostile::LateDns => {
            let query = dns_message(0x1234, false, 0, NAME, 1, None);
            let response = dns_message(0x1234, true, 0, NAME, 1, Some([93, 184, 215, 14]));
            let query = ethernet(&udp_packet((node, 40000), (resolver, 53), &query), &[]);
            let response = ethernet(&udp_packet((resolver, 53), (node, 40000), &response), &[]);
            // Half the bytes in queries 200 µs apart, then a minute of
            // silence (every query timed out), then the responses.
            let pairs = (bytes / (2 * (query.len() as u64 + 16))).max(1);
            for _ in 0..pairs {
                writer.write(next(200_000), &query)?;
            }
            next(60_000_000_000);
            for _ in 0..pairs {
                writer.write(next(200_000), &response)?;
            }
        }
        Hostile::IfindexChurn => {
            let packet = pod_to_lan();
            let mut ifindex = 0u32;
            while writer.bytes_written < bytes {
                ifindex = ifindex.wrapping_add(1);
                let frame = sll2(&packet, ifindex, true, [2, 0, 0, 0, 0, 1]);
                writer.write(next(1_000), &frame)?;
            }
        }
        Hostile::ManyInterfaces => {
            let frame = ethernet(&pod_to_lan(), &[]);
            for interface in 0..interfaces.len() as u32 {
                writer.write_on(interface, next(1_000), &frame)?;
            }
        }
        Hostile::SynFlood => {
            let mut source = 0u32;
            while writer.bytes_written < bytes {
                let spoofed = IpAddr::V4(Ipv4Addr::from((93 << 24) | (source & 0x00ff_ffff)));
                let l4 = L4::Tcp {
                    src_port: 1024 + (source % 60_000) as u16,
                    dst_port: 443,
                    flags: SYN,
                    seq: source,
                    ack: 0,
                    payload: &[],
                };
                writer.write(next(50), &ethernet(&ip_packet(spoofed, node, &l4), &[]))?;
                source = source.wrapping_add(1);
            }
        }
    }
    // A last packet well after the rest: every SYN and query is old
    // enough to judge.
    let l4 = L4::Udp {
        src_port: 1,
        dst_port: 2,
        payload: b"end",
    };
    let last = ip_packet(node, IpAddr::V4(Ipv4Addr::new(10, 50, 10, 22)), &l4);
    let last = match class {
        Hostile::IfindexChurn => sll2(&last, 1, true, [2, 0, 0, 0, 0, 1]),
        _ => ethernet(&last, &[]),
    };
    writer.write(next(10_000_000_000), &last)?;
    Ok(writer.into_inner())
}

/// A pod's UDP packet to a LAN host: the one flow of the interface classes.
fn pod_to_lan() -> Vec<u8> {
    let l4 = L4::Udp {
        src_port: 40000,
        dst_port: 8123,
        payload: &[0u8; 32],
    };
    let pod = IpAddr::V4(Ipv4Addr::new(10, 42, 1, 17));
    ip_packet(pod, IpAddr::V4(Ipv4Addr::new(192, 168, 178, 10)), &l4)
}
