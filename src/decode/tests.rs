//! Byte-array tests of the decoder, built with the generator's frame
//! builders and then damaged on purpose.

use super::*;
use crate::synth::frame::{ethernet, ip_in_ip, ip_packet, vxlan, L4};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn syn(src: &str, dst: &str) -> Vec<u8> {
    ip_packet(
        ip(src),
        ip(dst),
        &L4::Tcp {
            src_port: 40000,
            dst_port: 443,
            flags: tcp_flags::SYN,
            seq: 1,
            ack: 0,
            payload: &[],
        },
    )
}

fn expect_tcp<'a>(packet: &Packet<'a>) -> Tcp<'a> {
    match packet.transport {
        Transport::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_tcp_syn() {
    let frame = ethernet(&syn("10.42.1.12", "1.1.1.1"), &[]);
    let p = decode(1, &frame);
    let header = p.ip.unwrap();
    assert_eq!((header.src, header.dst), (ip("10.42.1.12"), ip("1.1.1.1")));
    let tcp = expect_tcp(&p);
    assert_eq!(
        (tcp.src_port, tcp.dst_port, tcp.flags),
        (40000, 443, tcp_flags::SYN)
    );
    assert!(p.problem.is_none() && p.tunnel.is_none());
}

#[test]
fn stacked_vlan_tags_are_skipped() {
    let frame = ethernet(&syn("10.42.1.12", "1.1.1.1"), &[30, 20, 10]);
    let p = decode(1, &frame);
    assert_eq!(p.ip.unwrap().dst, ip("1.1.1.1"));
    assert_eq!(expect_tcp(&p).dst_port, 443);
}

#[test]
fn ipv6_udp_on_raw_ip_link_types() {
    let packet = ip_packet(
        ip("fd00::1"),
        ip("2606:4700::1111"),
        &L4::Udp {
            src_port: 5353,
            dst_port: 53,
            payload: b"x",
        },
    );
    for link_type in [101, 229, 12] {
        let p = decode(link_type, &packet);
        assert_eq!(
            p.ip.unwrap().dst,
            ip("2606:4700::1111"),
            "link type {link_type}"
        );
        assert!(matches!(p.transport, Transport::Udp(u) if u.payload == b"x"));
    }
}

#[test]
fn linux_sll_and_sll2_headers() {
    let packet = syn("10.50.10.11", "1.1.1.1");
    let mut sll = vec![0u8; 16];
    sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&packet);
    assert_eq!(decode(113, &sll).ip.unwrap().src, ip("10.50.10.11"));
    let mut sll2 = vec![0u8; 20];
    sll2[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
    sll2.extend_from_slice(&packet);
    assert_eq!(decode(276, &sll2).ip.unwrap().src, ip("10.50.10.11"));
}

#[test]
fn bsd_null_in_either_byte_order_and_loop() {
    let packet = syn("127.0.0.1", "127.0.0.1");
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let frame = [&family[..], &packet].concat();
        assert!(decode(0, &frame).ip.is_some());
    }
    let frame = [&2u32.to_be_bytes()[..], &packet].concat();
    assert!(decode(108, &frame).ip.is_some());
}

#[test]
fn vxlan_on_cilium_port_is_judged_on_the_inner_header() {
    let inner = ethernet(&syn("10.42.1.12", "10.42.2.7"), &[]);
    let outer = vxlan(ip("10.50.10.11"), ip("10.50.10.12"), 8472, 42, &inner);
    let frame = ethernet(&outer, &[]);
    let p = decode(1, &frame);
    assert_eq!(p.outer, Some((ip("10.50.10.11"), ip("10.50.10.12"))));
    assert_eq!(p.ip.unwrap().src, ip("10.42.1.12"));
    assert_eq!(
        p.tunnel,
        Some(Tunnel {
            kind: TunnelKind::Vxlan,
            vni: 42,
            outer_src: ip("10.50.10.11"),
            outer_dst: ip("10.50.10.12"),
        })
    );
    assert_eq!(expect_tcp(&p).dst_port, 443);
}

#[test]
fn extra_vxlan_ports_only_with_the_flag() {
    let inner = ethernet(&syn("10.42.1.12", "10.42.2.7"), &[]);
    let frame = ethernet(
        &vxlan(ip("10.50.10.11"), ip("10.50.10.12"), 4790, 7, &inner),
        &[],
    );
    assert_eq!(decode(1, &frame).ip.unwrap().src, ip("10.50.10.11"));
    let p = Decoder::with_vxlan_ports(&[4790]).decode(1, &frame);
    assert_eq!(p.ip.unwrap().src, ip("10.42.1.12"));
    assert_eq!(p.tunnel.unwrap().vni, 7);
}

#[test]
fn ip_in_ip_both_families() {
    // Calico IPIP: IPv4 in IPv4 (protocol 4).
    let inner = syn("10.42.1.12", "10.42.2.7");
    let outer = ip_in_ip(ip("10.50.10.11"), ip("10.50.10.12"), &inner);
    let p = decode(101, &outer);
    assert_eq!(p.ip.unwrap().src, ip("10.42.1.12"));
    assert_eq!(expect_tcp(&p).dst_port, 443);
    let tunnel = p.tunnel.unwrap();
    assert_eq!(tunnel.kind, TunnelKind::Ipip);
    assert_eq!(tunnel.outer_src, ip("10.50.10.11"));
    assert_eq!(tunnel.to_string(), "ipip 10.50.10.11 -> 10.50.10.12");
    // 6in4: IPv6 in IPv4 (protocol 41).
    let inner = syn("fd00:10:42::12", "2606:4700::1111");
    let outer = ip_in_ip(ip("10.50.10.11"), ip("10.50.10.12"), &inner);
    let p = decode(101, &outer);
    assert_eq!(p.ip.unwrap().src, ip("fd00:10:42::12"));
    assert_eq!(p.tunnel.unwrap().kind, TunnelKind::Ipip);
}

#[test]
fn cooked_headers_name_the_device() {
    let packet = syn("10.42.1.12", "1.1.1.1");
    // SLL2: protocol, reserved, ifindex 7, ARPHRD_ETHER, OUTGOING, 6-byte address.
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6];
    sll2.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0]);
    sll2.extend_from_slice(&packet);
    let cooked = decode(276, &sll2).cooked.unwrap();
    assert_eq!(cooked.ifindex, Some(7));
    assert!(cooked.outgoing());
    // SLL: PACKET_HOST, ARPHRD_ETHER, address length 6, address, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 9, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&packet);
    let cooked = decode(113, &sll).cooked.unwrap();
    assert_eq!(cooked.ifindex, None);
    assert!(!cooked.outgoing());
    assert_eq!(
        &cooked.address[..cooked.address_len as usize],
        &[2, 0, 0, 0, 0, 9]
    );
}

#[test]
fn icmp_unreachable_keeps_the_quoted_syn() {
    let quoted = syn("10.42.1.12", "1.1.1.1");
    let packet = ip_packet(
        ip("192.0.2.1"),
        ip("10.42.1.12"),
        &L4::Unreachable {
            code: 1,
            quoted: &quoted,
        },
    );
    let p = decode(101, &packet);
    let Transport::Icmp(icmp) = p.transport else {
        panic!("not ICMP")
    };
    assert!(icmp.is_unreachable());
    assert_eq!(icmp.code, 1);
    let q = icmp.quoted.unwrap();
    assert_eq!(
        (q.src, q.dst, q.protocol, q.src_port, q.dst_port),
        (ip("10.42.1.12"), ip("1.1.1.1"), 6, 40000, 443)
    );
    // The pair is the ICMP packet's own header, not the quoted one.
    assert_eq!(p.ip.unwrap().src, ip("192.0.2.1"));
}

#[test]
fn ipv4_non_first_fragment_has_no_l4() {
    let mut packet = syn("10.0.0.1", "10.0.0.2");
    packet[6] = 0x00;
    packet[7] = 0x10; // fragment offset 16 (x8 bytes)
    let p = decode(101, &packet);
    assert!(p.ip.unwrap().fragment);
    assert!(matches!(p.transport, Transport::None));
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let udp = ip_packet(
        ip("fd00::1"),
        ip("fd00::2"),
        &L4::Udp {
            src_port: 1,
            dst_port: 53,
            payload: b"q",
        },
    );
    // Insert a hop-by-hop header (8 bytes) and a fragment header (offset 0).
    let mut packet = udp[..40].to_vec();
    packet[6] = 0; // next header: hop-by-hop
    packet.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]); // -> fragment
    packet.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]); // -> UDP, offset 0, M=1
    packet.extend_from_slice(&udp[40..]);
    let len = (packet.len() - 40) as u16;
    packet[4..6].copy_from_slice(&len.to_be_bytes());
    let p = decode(101, &packet);
    let header = p.ip.unwrap();
    assert_eq!(header.protocol, 17);
    assert!(header.fragment);
    assert!(matches!(p.transport, Transport::Udp(u) if u.dst_port == 53));
    // The same with a non-zero offset: no L4.
    packet[50] = 0x01;
    assert!(matches!(decode(101, &packet).transport, Transport::None));
}

#[test]
fn truncated_and_malformed_frames_keep_what_decoded() {
    let frame = ethernet(&syn("10.0.0.1", "10.0.0.2"), &[]);
    // Cut inside the TCP header: the IP header survives.
    let p = decode(1, &frame[..14 + 20 + 10]);
    assert!(p.ip.is_some());
    assert_eq!(p.problem, Some(Problem::truncated(Layer::Tcp)));
    // Cut inside the IP header.
    let p = decode(1, &frame[..14 + 10]);
    assert!(p.ip.is_none());
    assert_eq!(p.problem, Some(Problem::truncated(Layer::Ipv4)));
    // A bad IHL.
    let mut bad = frame.clone();
    bad[14] = 0x42;
    assert_eq!(
        decode(1, &bad).problem,
        Some(Problem::malformed(Layer::Ipv4))
    );
    // Non-IP ethertype (ARP).
    let mut arp = frame;
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(decode(1, &arp).non_ip_ethertype, Some(0x0806));
}

#[test]
fn every_prefix_of_every_frame_decodes_without_panic() {
    let inner = ethernet(&syn("10.42.1.12", "10.42.2.7"), &[]);
    let frames = [
        ethernet(&syn("10.0.0.1", "10.0.0.2"), &[100, 200]),
        ethernet(
            &vxlan(ip("10.50.10.11"), ip("10.50.10.12"), 4789, 1, &inner),
            &[],
        ),
        ip_packet(
            ip("fd00::1"),
            ip("fd00::2"),
            &L4::Udp {
                src_port: 6081,
                dst_port: 6081,
                payload: &[0; 40],
            },
        ),
    ];
    for frame in &frames {
        for end in 0..=frame.len() {
            for link_type in [0, 1, 101, 108, 113, 276] {
                let _ = decode(link_type, &frame[..end]);
            }
        }
    }
}
