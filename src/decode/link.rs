//! Link layers: Ethernet (with stacked 802.1Q/802.1ad tags), Linux SLL and
//! SLL2, BSD null/loopback, and raw IP.

use super::{be16, be32, Layer, Network, Problem};
use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::vlan::VlanPacket;

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Whether `ethertype` announces a VLAN tag (802.1Q, 802.1ad, pre-standard
/// QinQ).
#[inline]
pub fn is_vlan(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    )
}
/// More tags than this is not a real frame.
const MAX_VLAN_TAGS: usize = 8;

/// What a Linux cooked capture (`tcpdump -i any`: SLL, SLL2) says about
/// the device a frame was captured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cooked {
    /// The device's interface index (SLL2 only).
    pub ifindex: Option<u32>,
    /// PACKET_HOST (0), BROADCAST, MULTICAST, OTHERHOST, OUTGOING (4).
    pub packet_type: u16,
    /// The link-layer address: the sender's for received frames, the
    /// device's own for outgoing ones. Left-aligned, `address_len` bytes.
    pub address: [u8; 8],
    pub address_len: u8,
}

impl Cooked {
    pub const OUTGOING: u16 = 4;

    pub fn outgoing(&self) -> bool {
        self.packet_type == Self::OUTGOING
    }
}

/// Finds the network layer of a frame, and the cooked header if any.
/// Inlined into the decoder for the reason `ip::decode` is.
#[inline(always)]
pub fn network(link_type: u32, frame: &[u8]) -> Result<(Network<'_>, Option<Cooked>), Problem> {
    let plain = |network| Ok((network, None));
    match link_type {
        LINKTYPE_ETHERNET => ethernet(frame).map(|n| (n, None)),
        LINKTYPE_LINUX_SLL => sll(frame),
        LINKTYPE_LINUX_SLL2 => sll2(frame),
        0 | 108 => null_loopback(link_type, frame).map(|n| (n, None)),
        12 | 14 | 101 => plain(raw_ip(frame)),
        228 => plain(Network::Ipv4(frame)),
        229 => plain(Network::Ipv6(frame)),
        _ => Err(Problem {
            layer: Layer::Link,
            kind: super::ProblemKind::Unsupported,
        }),
    }
}

// pnet's SLL view treats the address as variable-length, but the wire
// format reserves 8 bytes for it; read the fixed layouts here.
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;

#[inline]
fn address(bytes: &[u8], len: usize) -> ([u8; 8], u8) {
    let len = len.min(8);
    let mut address = [0u8; 8];
    address[..len].copy_from_slice(&bytes[..len]);
    (address, len as u8)
}

/// SLL: packet type, ARPHRD type, address length, address, protocol.
fn sll(frame: &[u8]) -> Result<(Network<'_>, Option<Cooked>), Problem> {
    let (cooked, ethertype, payload) = sll_fields(frame).ok_or(Problem::truncated(Layer::Link))?;
    Ok((by_ethertype(ethertype, payload)?, Some(cooked)))
}

/// SLL2: protocol, reserved, interface index, ARPHRD type, packet type,
/// address length, address.
fn sll2(frame: &[u8]) -> Result<(Network<'_>, Option<Cooked>), Problem> {
    let (cooked, ethertype, payload) = sll2_fields(frame).ok_or(Problem::truncated(Layer::Link))?;
    Ok((by_ethertype(ethertype, payload)?, Some(cooked)))
}

/// A cooked header's fields, the ethertype it names and what follows it;
/// None if `frame` is shorter than the header.
#[inline]
pub fn sll_fields(frame: &[u8]) -> Option<(Cooked, u16, &[u8])> {
    if frame.len() < SLL_HEADER_LEN {
        return None;
    }
    let (address, address_len) = address(&frame[6..14], be16(frame, 4) as usize);
    let cooked = Cooked {
        ifindex: None,
        packet_type: be16(frame, 0),
        address,
        address_len,
    };
    Some((cooked, be16(frame, 14), &frame[SLL_HEADER_LEN..]))
}

/// `sll_fields` of SLL2.
#[inline]
pub fn sll2_fields(frame: &[u8]) -> Option<(Cooked, u16, &[u8])> {
    if frame.len() < SLL2_HEADER_LEN {
        return None;
    }
    let (address, address_len) = address(&frame[12..20], frame[11] as usize);
    let cooked = Cooked {
        ifindex: Some(be32(frame, 4)),
        packet_type: u16::from(frame[10]),
        address,
        address_len,
    };
    Some((cooked, be16(frame, 0), &frame[SLL2_HEADER_LEN..]))
}

/// Ethernet II; also the inner frame of VXLAN and Geneve.
#[inline]
pub fn ethernet(frame: &[u8]) -> Result<Network<'_>, Problem> {
    let header = EthernetPacket::new(frame).ok_or(Problem::truncated(Layer::Link))?;
    let len = EthernetPacket::minimum_packet_size();
    by_ethertype(header.get_ethertype().0, &frame[len..])
}

/// Follows an ethertype through any number of VLAN tags.
#[inline]
fn by_ethertype(mut ethertype: u16, mut payload: &[u8]) -> Result<Network<'_>, Problem> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok(Network::Ipv4(payload)),
            ETHERTYPE_IPV6 => return Ok(Network::Ipv6(payload)),
            vlan if is_vlan(vlan) => {
                let tag = VlanPacket::new(payload).ok_or(Problem::truncated(Layer::Vlan))?;
                ethertype = tag.get_ethertype().0;
                payload = &payload[VlanPacket::minimum_packet_size()..];
            }
            other => return Ok(Network::Other(other)),
        }
    }
    Err(Problem::malformed(Layer::Vlan))
}

/// BSD loopback: a 4-byte address family, host byte order for NULL (0),
/// network byte order for LOOP (108). AF_INET6 differs between BSDs.
fn null_loopback(link_type: u32, frame: &[u8]) -> Result<Network<'_>, Problem> {
    let Some(family) = frame.get(..4) else {
        return Err(Problem::truncated(Layer::Link));
    };
    let family = [family[0], family[1], family[2], family[3]];
    let family = if link_type == 108 || family[0] == 0 && family[1] == 0 {
        u32::from_be_bytes(family)
    } else {
        u32::from_le_bytes(family)
    };
    let payload = &frame[4..];
    Ok(match family {
        2 => Network::Ipv4(payload),
        10 | 24 | 28 | 30 => Network::Ipv6(payload),
        other => Network::Other(other as u16),
    })
}

/// Raw IP: the version nibble tells IPv4 from IPv6.
fn raw_ip(frame: &[u8]) -> Network<'_> {
    match frame.first().map(|b| b >> 4) {
        Some(6) => Network::Ipv6(frame),
        _ => Network::Ipv4(frame),
    }
}
