//! Builders for well-formed frames (checksums included, via pnet's mutable
//! packet views): what the generator writes and what decoder tests feed.

use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmp::{self, IcmpTypes, MutableIcmpPacket};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::tcp::{self, MutableTcpPacket};
use pnet_packet::udp::{self, MutableUdpPacket};
use std::net::IpAddr;

/// An L4 segment to put in an IP packet.
#[derive(Debug, Clone)]
pub enum L4<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    /// ICMP(v4) echo request or reply.
    Echo { request: bool, id: u16, seq: u16 },
    /// ICMP(v4) destination unreachable quoting `quoted` (an IP packet).
    Unreachable { code: u8, quoted: &'a [u8] },
    /// A whole IP packet (IP-in-IP: protocol 4 or 41 by its version).
    Ip(&'a [u8]),
}

const TCP_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;

fn l4_bytes(src: IpAddr, dst: IpAddr, l4: &L4<'_>) -> (IpNextHeaderProtocol, Vec<u8>) {
    match *l4 {
        L4::Tcp {
            src_port,
            dst_port,
            flags,
            seq,
            ack,
            payload,
        } => {
            let mut buf = vec![0u8; TCP_HEADER_LEN + payload.len()];
            let mut p = MutableTcpPacket::new(&mut buf).expect("sized");
            p.set_source(src_port);
            p.set_destination(dst_port);
            p.set_sequence(seq);
            p.set_acknowledgement(ack);
            p.set_data_offset(5);
            p.set_flags(flags);
            p.set_window(64240);
            p.set_payload(payload);
            let sum = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => tcp::ipv4_checksum(&p.to_immutable(), &s, &d),
                (IpAddr::V6(s), IpAddr::V6(d)) => tcp::ipv6_checksum(&p.to_immutable(), &s, &d),
                _ => 0,
            };
            p.set_checksum(sum);
            (IpNextHeaderProtocols::Tcp, buf)
        }
        L4::Udp {
            src_port,
            dst_port,
            payload,
        } => {
            let mut buf = vec![0u8; UDP_HEADER_LEN + payload.len()];
            let mut p = MutableUdpPacket::new(&mut buf).expect("sized");
            p.set_source(src_port);
            p.set_destination(dst_port);
            p.set_length((UDP_HEADER_LEN + payload.len()) as u16);
            p.set_payload(payload);
            let sum = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => udp::ipv4_checksum(&p.to_immutable(), &s, &d),
                (IpAddr::V6(s), IpAddr::V6(d)) => udp::ipv6_checksum(&p.to_immutable(), &s, &d),
                _ => 0,
            };
            p.set_checksum(sum);
            (IpNextHeaderProtocols::Udp, buf)
        }
        L4::Echo { request, id, seq } => {
            let mut buf = vec![0u8; 8 + 32];
            buf[4..6].copy_from_slice(&id.to_be_bytes());
            buf[6..8].copy_from_slice(&seq.to_be_bytes());
            let mut p = MutableIcmpPacket::new(&mut buf).expect("sized");
            p.set_icmp_type(if request {
                IcmpTypes::EchoRequest
            } else {
                IcmpTypes::EchoReply
            });
            let sum = icmp::checksum(&p.to_immutable());
            p.set_checksum(sum);
            (IpNextHeaderProtocols::Icmp, buf)
        }
        L4::Ip(inner) => {
            let protocol = if inner.first().map(|b| b >> 4) == Some(6) {
                IpNextHeaderProtocols::Ipv6
            } else {
                IpNextHeaderProtocols::Ipv4
            };
            (protocol, inner.to_vec())
        }
        L4::Unreachable { code, quoted } => {
            let quoted = &quoted[..quoted.len().min(28)];
            let mut buf = vec![0u8; 8 + quoted.len()];
            buf[8..].copy_from_slice(quoted);
            let mut p = MutableIcmpPacket::new(&mut buf).expect("sized");
            p.set_icmp_type(IcmpTypes::DestinationUnreachable);
            p.set_icmp_code(icmp::IcmpCode(code));
            let sum = icmp::checksum(&p.to_immutable());
            p.set_checksum(sum);
            (IpNextHeaderProtocols::Icmp, buf)
        }
    }
}

/// A complete IPv4 or IPv6 packet (the address family follows `src`).
pub fn ip_packet(src: IpAddr, dst: IpAddr, l4: &L4<'_>) -> Vec<u8> {
    let (protocol, payload) = l4_bytes(src, dst, l4);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut buf = vec![0u8; 20 + payload.len()];
            let mut p = MutableIpv4Packet::new(&mut buf).expect("sized");
            p.set_version(4);
            p.set_header_length(5);
            p.set_total_length((20 + payload.len()) as u16);
            p.set_ttl(63);
            p.set_flags(0b010); // don't fragment
            p.set_next_level_protocol(protocol);
            p.set_source(s);
            p.set_destination(d);
            p.set_payload(&payload);
            let sum = ipv4::checksum(&p.to_immutable());
            p.set_checksum(sum);
            buf
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut buf = vec![0u8; 40 + payload.len()];
            let mut p = MutableIpv6Packet::new(&mut buf).expect("sized");
            p.set_version(6);
            p.set_payload_length(payload.len() as u16);
            p.set_next_header(protocol);
            p.set_hop_limit(63);
            p.set_source(s);
            p.set_destination(d);
            p.set_payload(&payload);
            buf
        }
        _ => panic!("ip_packet: mixed address families {src} -> {dst}"),
    }
}

/// An Ethernet frame around an IP packet, with 802.1Q tags (outer first).
pub fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + 4 * vlans.len() + ip.len()];
    let ip_type = if ip.first().map(|b| b >> 4) == Some(6) {
        EtherTypes::Ipv6
    } else {
        EtherTypes::Ipv4
    };
    {
        let mut p = MutableEthernetPacket::new(&mut buf).expect("sized");
        p.set_source([0x02, 0, 0, 0, 0, 1].into());
        p.set_destination([0x02, 0, 0, 0, 0, 2].into());
        p.set_ethertype(if vlans.is_empty() {
            ip_type
        } else {
            EtherTypes::Vlan
        });
    }
    let mut at = 14;
    for (i, vlan) in vlans.iter().enumerate() {
        let next = if i + 1 == vlans.len() {
            ip_type.0
        } else {
            EtherTypes::Vlan.0
        };
        buf[at..at + 2].copy_from_slice(&(vlan & 0x0fff).to_be_bytes());
        buf[at + 2..at + 4].copy_from_slice(&next.to_be_bytes());
        at += 4;
    }
    buf[at..].copy_from_slice(ip);
    buf
}

/// An IP packet carrying `inner_frame` over VXLAN (UDP `port`) between
/// two nodes: how Cilium's tunnel mode puts pod traffic on the wire.
pub fn vxlan(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    port: u16,
    vni: u32,
    inner_frame: &[u8],
) -> Vec<u8> {
    let header = [&[0x08, 0, 0, 0][..], &(vni << 8).to_be_bytes()].concat();
    udp_tunnel((outer_src, outer_dst), port, vni, &header, inner_frame)
}

/// A UDP tunnel packet: `header` then `inner_frame`, from a source port
/// derived from the VNI (as kernels hash flows into it).
fn udp_tunnel(
    (outer_src, outer_dst): (IpAddr, IpAddr),
    port: u16,
    vni: u32,
    header: &[u8],
    inner_frame: &[u8],
) -> Vec<u8> {
    let payload = [header, inner_frame].concat();
    udp_packet(
        (outer_src, 40000 + (vni as u16 & 0xff)),
        (outer_dst, port),
        &payload,
    )
}

/// A UDP datagram from `src` to `dst`.
pub fn udp_packet(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
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

/// A Linux cooked v1 frame (`tcpdump -i any`): packet type (0 to us, 4
/// outgoing), ARPHRD_ETHER, the link-layer address (sender's, or the
/// device's own when outgoing), protocol.
pub fn sll(ip: &[u8], outgoing: bool, address: [u8; 6]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(16 + ip.len());
    frame.extend_from_slice(&(if outgoing { 4u16 } else { 0 }).to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.extend_from_slice(&6u16.to_be_bytes());
    frame.extend_from_slice(&address);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    frame.extend_from_slice(ip);
    frame
}

/// A Linux cooked v2 frame: protocol, reserved, interface index,
/// ARPHRD_ETHER, packet type, address length, address.
pub fn sll2(ip: &[u8], ifindex: u32, outgoing: bool, address: [u8; 6]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(20 + ip.len());
    frame.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&ifindex.to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.push(if outgoing { 4 } else { 0 });
    frame.push(6);
    frame.extend_from_slice(&address);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(ip);
    frame
}

fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        EtherTypes::Ipv6.0
    } else {
        EtherTypes::Ipv4.0
    }
}

/// NAT on an IPv4 TCP/UDP packet: replaces the source and/or destination
/// (address, port) and recomputes the checksums, as conntrack does.
pub fn rewrite(ip: &[u8], src: Option<(IpAddr, u16)>, dst: Option<(IpAddr, u16)>) -> Vec<u8> {
    let mut buf = ip.to_vec();
    let header_len = usize::from(buf[0] & 0x0f) * 4;
    let protocol = buf[9];
    for (endpoint, addr_at, port_at) in [(src, 12, 0), (dst, 16, 2)] {
        if let Some((IpAddr::V4(addr), port)) = endpoint {
            buf[addr_at..addr_at + 4].copy_from_slice(&addr.octets());
            let at = header_len + port_at;
            buf[at..at + 2].copy_from_slice(&port.to_be_bytes());
        }
    }
    let (s, d) = {
        let p = pnet_packet::ipv4::Ipv4Packet::new(&buf).expect("an IPv4 packet");
        (p.get_source(), p.get_destination())
    };
    let (head, l4) = buf.split_at_mut(header_len);
    match protocol {
        6 => {
            let mut p = MutableTcpPacket::new(l4).expect("a TCP segment");
            let sum = tcp::ipv4_checksum(&p.to_immutable(), &s, &d);
            p.set_checksum(sum);
        }
        17 => {
            let mut p = MutableUdpPacket::new(l4).expect("a UDP datagram");
            let sum = udp::ipv4_checksum(&p.to_immutable(), &s, &d);
            p.set_checksum(sum);
        }
        _ => {}
    }
    let mut p = MutableIpv4Packet::new(head).expect("an IPv4 header");
    let sum = ipv4::checksum(&p.to_immutable());
    p.set_checksum(sum);
    buf
}

/// An IP packet carrying `inner` (IPIP, 6in4): Calico's IPIP mode.
pub fn ip_in_ip(outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    ip_packet(outer_src, outer_dst, &L4::Ip(inner))
}

/// An IP packet carrying `inner_frame` (Ethernet) over Geneve (UDP 6081)
/// with one 8-byte option, as OVN and Antrea do.
pub fn geneve(outer_src: IpAddr, outer_dst: IpAddr, vni: u32, inner_frame: &[u8]) -> Vec<u8> {
    // Version 0, options length 2 words; protocol transparent bridging;
    // then the option: class 0x0102, type 0x80, length 1 word, 4 bytes.
    let header = [
        &[0x02, 0, 0x65, 0x58][..],
        &(vni << 8).to_be_bytes(),
        &[0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef],
    ]
    .concat();
    udp_tunnel((outer_src, outer_dst), 6081, vni, &header, inner_frame)
}

/// A DNS message with one question and, for responses, one A record.
pub fn dns_message(
    id: u16,
    response: bool,
    rcode: u8,
    name: &str,
    qtype: u16,
    answer: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = if response {
        0x8180 | rcode as u16
    } else {
        0x0100
    };
    m.extend_from_slice(&flags.to_be_bytes());
    let answers = u16::from(answer.is_some() && response);
    for count in [1u16, answers, 0, 0] {
        m.extend_from_slice(&count.to_be_bytes());
    }
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let (true, Some(addr)) = (response, answer) {
        m.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&300u32.to_be_bytes());
        m.extend_from_slice(&4u16.to_be_bytes());
        m.extend_from_slice(&addr);
    }
    m
}
