//! Link layers: Ethernet (with stacked 802.1Q/802.1ad tags), Linux SLL and
//! SLL2, BSD null/loopback, and raw IP.

use super::{Layer, Network, Problem};
use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::vlan::VlanPacket;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// More tags than this is not a real frame.
const MAX_VLAN_TAGS: usize = 8;

/// Finds the network layer of a frame.
pub fn network(link_type: u32, frame: &[u8]) -> Result<Network<'_>, Problem> {
    match link_type {
        1 => ethernet(frame),
        // pnet's SLL view treats the address as variable-length, but the
        // wire format reserves 8 bytes for it; read the fixed layouts here.
        113 => fixed_header(frame, SLL_HEADER_LEN, SLL_PROTOCOL_AT),
        276 => fixed_header(frame, SLL2_HEADER_LEN, SLL2_PROTOCOL_AT),
        0 | 108 => null_loopback(link_type, frame),
        12 | 14 | 101 => Ok(raw_ip(frame)),
        228 => Ok(Network::Ipv4(frame)),
        229 => Ok(Network::Ipv6(frame)),
        _ => Err(Problem::malformed(Layer::Link)),
    }
}

const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL_AT: usize = 14;
const SLL2_HEADER_LEN: usize = 20;
const SLL2_PROTOCOL_AT: usize = 0;

/// A fixed-size link header with a big-endian ethertype at `protocol_at`.
fn fixed_header(frame: &[u8], len: usize, protocol_at: usize) -> Result<Network<'_>, Problem> {
    if frame.len() < len {
        return Err(Problem::truncated(Layer::Link));
    }
    let ethertype = u16::from_be_bytes([frame[protocol_at], frame[protocol_at + 1]]);
    by_ethertype(ethertype, &frame[len..])
}

/// Ethernet II; also the inner frame of VXLAN and Geneve.
pub fn ethernet(frame: &[u8]) -> Result<Network<'_>, Problem> {
    let header = EthernetPacket::new(frame).ok_or(Problem::truncated(Layer::Link))?;
    let len = EthernetPacket::minimum_packet_size();
    by_ethertype(header.get_ethertype().0, &frame[len..])
}

/// Follows an ethertype through any number of VLAN tags.
fn by_ethertype(mut ethertype: u16, mut payload: &[u8]) -> Result<Network<'_>, Problem> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok(Network::Ipv4(payload)),
            ETHERTYPE_IPV6 => return Ok(Network::Ipv6(payload)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
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
