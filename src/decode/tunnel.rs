//! Overlay tunnels whose inner packets are the real traffic: VXLAN (IANA
//! 4789 and the Linux/Cilium default 8472) and Geneve (6081).

use super::ip::Network;
use super::link;
use super::transport::Udp;
use super::{Layer, Problem};
use pnet_packet::vxlan::VxlanPacket;
use serde::Serialize;

pub const VXLAN_PORTS: [u16; 2] = [4789, 8472];
pub const GENEVE_PORT: u16 = 6081;
const VXLAN_FLAG_VNI: u8 = 0x08;
const GENEVE_HEADER_LEN: usize = 8;
const ETHERTYPE_TRANSPARENT_BRIDGING: u16 = 0x6558;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    Vxlan,
    Geneve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub vni: u32,
}

fn uses_port(udp: &Udp<'_>, port: u16) -> bool {
    udp.dst_port == port || udp.src_port == port
}

/// Recognizes a tunnel by its UDP port and header; Ok(None) if this UDP
/// datagram is not one.
pub fn decode<'a>(udp: &Udp<'a>) -> Result<Option<(Tunnel, Network<'a>)>, Problem> {
    if VXLAN_PORTS.iter().any(|&p| uses_port(udp, p)) {
        let Some(vxlan) = VxlanPacket::new(udp.payload) else {
            return Ok(None);
        };
        if vxlan.get_flags() & VXLAN_FLAG_VNI == 0 {
            return Ok(None);
        }
        let tunnel = Tunnel {
            kind: TunnelKind::Vxlan,
            vni: vxlan.get_vni(),
        };
        let inner = &udp.payload[VxlanPacket::minimum_packet_size()..];
        return link::ethernet(inner).map(|network| Some((tunnel, network)));
    }
    if uses_port(udp, GENEVE_PORT) {
        let bytes = udp.payload;
        if bytes.len() < GENEVE_HEADER_LEN || bytes[0] >> 6 != 0 {
            return Ok(None);
        }
        let options_len = (bytes[0] & 0x3f) as usize * 4;
        let protocol = u16::from_be_bytes([bytes[2], bytes[3]]);
        let vni = u32::from_be_bytes([0, bytes[4], bytes[5], bytes[6]]);
        let Some(inner) = bytes.get(GENEVE_HEADER_LEN + options_len..) else {
            return Err(Problem::truncated(Layer::Tunnel));
        };
        let tunnel = Tunnel {
            kind: TunnelKind::Geneve,
            vni,
        };
        let network = match protocol {
            ETHERTYPE_TRANSPARENT_BRIDGING => link::ethernet(inner)?,
            link::ETHERTYPE_IPV4 => Network::Ipv4(inner),
            link::ETHERTYPE_IPV6 => Network::Ipv6(inner),
            other => Network::Other(other),
        };
        return Ok(Some((tunnel, network)));
    }
    Ok(None)
}
