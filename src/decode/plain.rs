//! The common frame in one straight pass: Ethernet or a Linux cooked
//! header (`tcpdump -i any`), with up to two VLAN tags; IPv4 without options
//! that matter here or IPv6 without extension headers; TCP or UDP; at
//! most one VXLAN tunnel around another such frame; every header whole.
//! On a node's capture that is nearly every frame, and the general
//! decoder's layers (a `Result` per layer, the VLAN loop, the tunnel
//! checks, the header copied from layer to layer) cost about three times
//! as much per frame. Anything else is left to the general decoder, which
//! gives the same `Packet` for these frames (the tests compare the two on
//! damaged and random frames). Fixed offsets, read in place: pnet's views
//! are not inlined into this path.

use super::ip::IpHeader;
use super::link::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::transport::{Tcp, Transport, Udp, PROTO_TCP, PROTO_UDP};
use super::tunnel::{self, Tunnel, TunnelKind, GENEVE_PORT};
use super::{be16, be32, declared_end, Cooked, Packet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETHERNET_HEADER_LEN: usize = 14;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const TCP_MIN_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
const VXLAN_HEADER_LEN: usize = 8;
const VXLAN_FLAG_VNI: u8 = 0x08;

/// Decodes `frame` of `link_type` into `packet`, a `Packet::default()`,
/// if it is the common frame; false, with `packet` untouched, otherwise.
/// `vxlan_ports`: the UDP ports that carry VXLAN.
#[inline(always)]
pub(super) fn frame<'a>(
    link_type: u32,
    frame: &'a [u8],
    vxlan_ports: &[u16],
    packet: &mut Packet<'a>,
) -> bool {
    let (cooked, ethertype, bytes) = match link_type {
        link::LINKTYPE_ETHERNET => match frame.split_first_chunk::<ETHERNET_HEADER_LEN>() {
            Some((ethernet, bytes)) => (None, be16(ethernet, 12), bytes),
            None => return false,
        },
        link::LINKTYPE_LINUX_SLL2 => match link::sll2_fields(frame) {
            Some((cooked, ethertype, bytes)) => (Some(cooked), ethertype, bytes),
            None => return false,
        },
        link::LINKTYPE_LINUX_SLL => match link::sll_fields(frame) {
            Some((cooked, ethertype, bytes)) => (Some(cooked), ethertype, bytes),
            None => return false,
        },
        _ => return false,
    };
    let Some(outer) = layers(ethertype, bytes) else {
        return false;
    };
    let addresses = (outer.header.src, outer.header.dst);
    let Transport::Udp(udp) = outer.transport else {
        return finish(packet, cooked, addresses, outer, None);
    };
    let on_vxlan = |udp: &Udp<'_>| vxlan_ports.iter().any(|&p| tunnel::uses_port(udp, p));
    let on_tunnel = |udp: &Udp<'_>| on_vxlan(udp) || tunnel::uses_port(udp, GENEVE_PORT);
    if !on_tunnel(&udp) {
        return finish(packet, cooked, addresses, outer, None);
    }
    // A VXLAN port: one tunnel around a common frame, or the general
    // decoder (Geneve, a VXLAN header without its VNI flag, damage).
    if !on_vxlan(&udp) {
        return false;
    }
    let Some((vxlan, inner)) = udp.payload.split_first_chunk::<VXLAN_HEADER_LEN>() else {
        return false;
    };
    if vxlan[0] & VXLAN_FLAG_VNI == 0 {
        return false;
    }
    let Some((ethernet, inner)) = inner.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
        return false;
    };
    let Some(inner) = layers(be16(ethernet, 12), inner) else {
        return false;
    };
    if let Transport::Udp(udp) = inner.transport {
        if on_tunnel(&udp) {
            return false;
        }
    }
    let tunnel = Tunnel {
        kind: TunnelKind::Vxlan,
        vni: u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]),
        outer_src: addresses.0,
        outer_dst: addresses.1,
    };
    finish(packet, cooked, addresses, inner, Some(tunnel))
}

/// An Ethernet frame's IP header and its TCP or UDP header.
struct Layers<'a> {
    header: IpHeader,
    l4: &'a [u8],
    transport: Transport<'a>,
}

#[inline(always)]
fn finish<'a>(
    packet: &mut Packet<'a>,
    cooked: Option<Cooked>,
    outer: (IpAddr, IpAddr),
    layers: Layers<'a>,
    tunnel: Option<Tunnel>,
) -> bool {
    packet.cooked = cooked;
    packet.outer = Some(outer);
    packet.ip = Some(layers.header);
    packet.l4 = layers.l4;
    packet.transport = layers.transport;
    packet.tunnel = tunnel;
    true
}

/// VLAN tags the straight path skips; more are left to the layered
/// decoder.
const MAX_VLAN_TAGS: usize = 2;
const VLAN_TAG_LEN: usize = 4;

/// The IP header a link layer's `ethertype` names (past up to
/// `MAX_VLAN_TAGS` VLAN tags), and its TCP or UDP header.
#[inline(always)]
fn layers(mut ethertype: u16, mut bytes: &[u8]) -> Option<Layers<'_>> {
    for _ in 0..MAX_VLAN_TAGS {
        if !link::is_vlan(ethertype) {
            break;
        }
        let (tag, rest) = bytes.split_first_chunk::<VLAN_TAG_LEN>()?;
        (ethertype, bytes) = (be16(tag, 2), rest);
    }
    let (header, l4) = match ethertype {
        ETHERTYPE_IPV4 => ipv4(bytes)?,
        ETHERTYPE_IPV6 => ipv6(bytes)?,
        _ => return None,
    };
    let transport = match header.protocol {
        PROTO_TCP => Transport::Tcp(tcp(l4)?),
        PROTO_UDP => Transport::Udp(udp(l4)?),
        _ => return None,
    };
    Some(Layers {
        header,
        l4,
        transport,
    })
}

/// An IPv4 header whose L4 header follows (a first fragment, or none).
#[inline(always)]
fn ipv4(bytes: &[u8]) -> Option<(IpHeader, &[u8])> {
    let ip = bytes.first_chunk::<IPV4_MIN_HEADER_LEN>()?;
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let fragment = be16(ip, 6);
    if ip[0] >> 4 != 4
        || header_len < IPV4_MIN_HEADER_LEN
        || header_len > bytes.len()
        || fragment & 0x1fff != 0
    {
        return None;
    }
    let end = declared_end(be16(ip, 2).into(), header_len, bytes.len());
    let header = IpHeader {
        src: IpAddr::V4(Ipv4Addr::from(be32(ip, 12))),
        dst: IpAddr::V4(Ipv4Addr::from(be32(ip, 16))),
        protocol: ip[9],
        fragment: fragment & 0x2000 != 0,
        ident: u32::from(be16(ip, 4)),
    };
    Some((header, &bytes[header_len..end]))
}

/// An IPv6 header followed directly by its L4 header.
#[inline(always)]
fn ipv6(bytes: &[u8]) -> Option<(IpHeader, &[u8])> {
    let ip = bytes.first_chunk::<IPV6_HEADER_LEN>()?;
    if ip[0] >> 4 != 6 {
        return None;
    }
    // Payload length trims padding; 0 (jumbogram) means "all".
    let payload_len = usize::from(be16(ip, 4));
    let end = if payload_len == 0 {
        bytes.len()
    } else {
        (IPV6_HEADER_LEN + payload_len).min(bytes.len())
    };
    let address = |at: usize| {
        let mut octets = [0; 16];
        octets.copy_from_slice(&ip[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let header = IpHeader {
        src: address(8),
        dst: address(24),
        protocol: ip[6],
        fragment: false,
        ident: 0,
    };
    Some((header, &bytes[IPV6_HEADER_LEN..end]))
}

/// A TCP header that is whole and sound.
#[inline(always)]
fn tcp(bytes: &[u8]) -> Option<Tcp<'_>> {
    let header = bytes.first_chunk::<TCP_MIN_HEADER_LEN>()?;
    let header_len = usize::from(header[12] >> 4) * 4;
    if header_len < TCP_MIN_HEADER_LEN {
        return None;
    }
    Some(Tcp {
        src_port: be16(header, 0),
        dst_port: be16(header, 2),
        flags: header[13],
        seq: be32(header, 4),
        ack: be32(header, 8),
        // Options cut by the snaplen leave no payload, not an error.
        payload: bytes.get(header_len..).unwrap_or(&[]),
    })
}

#[inline(always)]
fn udp(bytes: &[u8]) -> Option<Udp<'_>> {
    let header = bytes.first_chunk::<UDP_HEADER_LEN>()?;
    let end = declared_end(be16(header, 4).into(), UDP_HEADER_LEN, bytes.len());
    Some(Udp {
        src_port: be16(header, 0),
        dst_port: be16(header, 2),
        payload: &bytes[UDP_HEADER_LEN..end],
    })
}

#[cfg(test)]
mod tests {
    use super::super::{tcp_flags, Decoder, Packet, Transport};
    use crate::synth::frame::{ethernet, geneve, ip_in_ip, ip_packet, sll, sll2, vxlan, L4};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let l4 = L4::Tcp {
            src_port: 40000,
            dst_port: 443,
            flags: tcp_flags::SYN | tcp_flags::ACK,
            seq: 0x0102_0304,
            ack: 0x0506_0708,
            payload,
        };
        ip_packet(ip(src), ip(dst), &l4)
    }

    fn udp(src: &str, dst: &str, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let l4 = L4::Udp {
            src_port: 53000,
            dst_port,
            payload,
        };
        ip_packet(ip(src), ip(dst), &l4)
    }

    /// Frames of every shape the straight path takes, and of shapes it
    /// leaves to the general decoder.
    fn frames() -> Vec<(&'static str, u32, Vec<u8>)> {
        let syn = tcp("10.42.1.12", "1.1.1.1", b"");
        let inner = ethernet(&tcp("10.42.1.12", "10.42.2.7", b"GET / HTTP/1.1"), &[]);
        let mut options = tcp("10.42.1.12", "1.1.1.1", b"data");
        // IHL 6: a 4-byte option (NOPs) inserted after the fixed header.
        options[0] = 0x46;
        options.splice(20..20, [1, 1, 1, 1]);
        let total = (options.len() as u16).to_be_bytes();
        options[2..4].copy_from_slice(&total);
        let mut padded = ethernet(&udp("10.42.1.12", "10.96.0.10", 53, b"dns"), &[]);
        padded.extend_from_slice(&[0; 12]);
        let mut first_fragment = tcp("10.42.1.12", "1.1.1.1", b"part");
        first_fragment[6] = 0x20;
        let mut later_fragment = first_fragment.clone();
        later_fragment[7] = 0x10;
        let echo = L4::Echo {
            request: true,
            id: 7,
            seq: 1,
        };
        let echo = ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), &echo);
        let vxlan_of = |port, inner: &[u8]| vxlan(ip("10.50.0.1"), ip("10.50.0.2"), port, 7, inner);
        let vxlan_v6 = vxlan(ip("fd50::1"), ip("fd50::2"), 8472, 3, &inner);
        let nested = ethernet(
            &vxlan(ip("10.60.0.1"), ip("10.60.0.2"), 4789, 8, &inner),
            &[],
        );
        let geneve = geneve(ip("10.50.0.1"), ip("10.50.0.2"), 5, &inner);
        let ipip = ip_in_ip(ip("10.50.0.1"), ip("10.50.0.2"), &syn);
        let udp_v6 = udp("fd00::1", "fd00::a", 53, b"q");
        let eth = |ip: &[u8]| (1, ethernet(ip, &[]));
        let sll = |ip: &[u8]| (113, sll(ip, false, [2, 0, 0, 0, 0, 1]));
        let sll2 = |ip: &[u8]| (276, sll2(ip, 3, true, [2, 0, 0, 0, 0, 1]));
        let frames = [
            ("tcp v4", eth(&syn)),
            ("tcp v6", eth(&tcp("fd00::1", "2606:4700::1111", b"hi"))),
            ("udp v4", eth(&udp("10.42.1.12", "10.96.0.10", 53, b"q"))),
            ("udp v6", eth(&udp_v6)),
            ("ip options", eth(&options)),
            ("padding", (1, padded)),
            ("first fragment", eth(&first_fragment)),
            ("later fragment", eth(&later_fragment)),
            ("vlan", (1, ethernet(&syn, &[10]))),
            ("qinq", (1, ethernet(&syn, &[20, 10]))),
            ("three tags", (1, ethernet(&syn, &[30, 20, 10]))),
            ("icmp", eth(&echo)),
            ("vxlan 8472", eth(&vxlan_of(8472, &inner))),
            ("vxlan 4789", eth(&vxlan_of(4789, &inner))),
            ("vxlan v6", eth(&vxlan_v6)),
            (
                "vxlan, inner vlan",
                eth(&vxlan_of(8472, &ethernet(&syn, &[5]))),
            ),
            ("vxlan in vxlan", eth(&vxlan_of(8472, &nested))),
            ("geneve", eth(&geneve)),
            ("ipip", eth(&ipip)),
            ("sll tcp v4", sll(&syn)),
            ("sll2 tcp v4", sll2(&syn)),
            ("sll2 udp v6", sll2(&udp_v6)),
            ("sll2 vxlan", sll2(&vxlan_of(8472, &inner))),
            ("sll2 ipip", sll2(&ipip)),
        ];
        frames
            .into_iter()
            .map(|(name, (link_type, frame))| (name, link_type, frame))
            .collect()
    }

    /// The same decoding: every field, and the same bytes borrowed.
    fn assert_same(what: &str, fast: &Packet<'_>, layers: &Packet<'_>) {
        assert_eq!(format!("{fast:?}"), format!("{layers:?}"), "{what}");
        let payload = |p: &Packet<'_>| match p.transport {
            Transport::Tcp(t) => Some(t.payload.as_ptr_range()),
            Transport::Udp(u) => Some(u.payload.as_ptr_range()),
            _ => None,
        };
        assert_eq!(fast.l4.as_ptr_range(), layers.l4.as_ptr_range(), "{what}");
        assert_eq!(payload(fast), payload(layers), "{what}");
    }

    fn check(decoder: &Decoder, what: &str, link_type: u32, frame: &[u8]) {
        let mut fast = Packet::default();
        decoder.decode_into(link_type, frame, &mut fast);
        let mut layers = Packet::default();
        decoder.decode_layers(link_type, frame, &mut layers);
        assert_same(what, &fast, &layers);
    }

    #[test]
    fn takes_the_common_frames_and_leaves_the_rest() {
        let decoder = Decoder::default();
        let taken = |link_type, frame: &[u8]| {
            super::frame(
                link_type,
                frame,
                &decoder.vxlan_ports,
                &mut Packet::default(),
            )
        };
        let frames = frames();
        let taken: Vec<_> = frames
            .iter()
            .filter(|(_, link_type, frame)| taken(*link_type, frame))
            .map(|(name, _, _)| *name)
            .collect();
        assert_eq!(
            taken,
            [
                "tcp v4",
                "tcp v6",
                "udp v4",
                "udp v6",
                "ip options",
                "padding",
                "first fragment",
                "vlan",
                "qinq",
                "vxlan 8472",
                "vxlan 4789",
                "vxlan v6",
                "vxlan, inner vlan",
                "sll tcp v4",
                "sll2 tcp v4",
                "sll2 udp v6",
                "sll2 vxlan",
            ]
        );
    }

    #[test]
    fn decodes_as_the_general_decoder_does() {
        let decoder = Decoder::default();
        for (name, link_type, frame) in frames() {
            check(&decoder, name, link_type, &frame);
        }
    }

    /// Every frame cut at every length, and every byte of its first 120
    /// set to values that break or bend its headers.
    #[test]
    fn decodes_damaged_frames_as_the_general_decoder_does() {
        let decoders = [Decoder::default(), Decoder::with_vxlan_ports(&[53, 443])];
        for decoder in &decoders {
            for (name, link_type, frame) in frames() {
                for len in 0..frame.len() {
                    check(
                        decoder,
                        &format!("{name} cut at {len}"),
                        link_type,
                        &frame[..len],
                    );
                }
                for at in 0..frame.len().min(120) {
                    for value in [
                        0,
                        0xff,
                        frame[at] ^ 0x0f,
                        frame[at] ^ 0xf0,
                        frame[at] ^ 0x01,
                    ] {
                        let mut bent = frame.clone();
                        bent[at] = value;
                        check(
                            decoder,
                            &format!("{name} byte {at} = {value:#x}"),
                            link_type,
                            &bent,
                        );
                    }
                }
            }
        }
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Random bytes behind an Ethernet or SLL2 header naming IPv4
            /// or IPv6, and the IP version.
            #[test]
            fn random_frames_decode_as_the_general_decoder_does(
                cooked in any::<bool>(),
                v6 in any::<bool>(),
                protocol in prop::sample::select(vec![6u8, 17, 1, 4, 41, 0]),
                mut bytes in prop::collection::vec(any::<u8>(), 0..160),
            ) {
                let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
                let mut frame = if cooked {
                    let mut header = vec![0u8; 20];
                    header[..2].copy_from_slice(&ethertype);
                    header[11] = 6;
                    header
                } else {
                    [&[0u8; 12][..], &ethertype].concat()
                };
                if let Some(first) = bytes.first_mut() {
                    *first = if v6 { 0x60 | (*first & 0x0f) } else { 0x45 | (*first & 0x0a) };
                }
                let protocol_at = if v6 { 6 } else { 9 };
                if let Some(p) = bytes.get_mut(protocol_at) {
                    *p = protocol;
                }
                frame.extend_from_slice(&bytes);
                let link_type = if cooked { 276 } else { 1 };
                check(&Decoder::default(), "random", link_type, &frame);
            }
        }
    }
}
