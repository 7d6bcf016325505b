//! Overlay tunnels whose inner packets are the real traffic: VXLAN (IANA
//! 4789 and the Linux/Cilium default 8472, more with `--vxlan-port`),
//! Geneve (6081, options skipped by length) and IP-in-IP (protocol 4 and
//! 41: Calico's IPIP mode, 6in4, ip6ip6).

use super::ip::Network;
use super::link;
use super::transport::Udp;
use super::{Layer, Problem};
use pnet_packet::vxlan::VxlanPacket;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

pub const DEFAULT_VXLAN_PORTS: [u16; 2] = [4789, 8472];
pub const GENEVE_PORT: u16 = 6081;
pub const PROTO_IPV4_IN_IP: u8 = 4;
pub const PROTO_IPV6_IN_IP: u8 = 41;
const VXLAN_FLAG_VNI: u8 = 0x08;
const GENEVE_HEADER_LEN: usize = 8;
const ETHERTYPE_TRANSPARENT_BRIDGING: u16 = 0x6558;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    Vxlan,
    Geneve,
    Ipip,
}

/// The tunnel a packet was carried in: its type, network identifier and
/// the underlay (node-to-node) addresses of the header that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// VXLAN/Geneve network identifier; 0 for IP-in-IP.
    pub vni: u32,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
}

impl fmt::Display for Tunnel {
    /// `vxlan vni 2 10.50.10.21 -> 10.50.10.22`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Ipip => "ipip",
        };
        write!(f, "{kind}")?;
        if self.kind != TunnelKind::Ipip {
            write!(f, " vni {}", self.vni)?;
        }
        write!(f, " {} -> {}", self.outer_src, self.outer_dst)
    }
}

/// Whether `udp` is from or to `port`.
#[inline]
pub(super) fn uses_port(udp: &Udp<'_>, port: u16) -> bool {
    udp.dst_port == port || udp.src_port == port
}

/// Recognizes a UDP tunnel by its port and header; Ok(None) if this UDP
/// datagram is not one. `outer` is the carrying IP header's (src, dst).
#[inline]
pub fn decode_udp<'a>(
    udp: &Udp<'a>,
    outer: (IpAddr, IpAddr),
    vxlan_ports: &[u16],
) -> Result<Option<(Tunnel, Network<'a>)>, Problem> {
    let tunnel = |kind, vni| Tunnel {
        kind,
        vni,
        outer_src: outer.0,
        outer_dst: outer.1,
    };
    if vxlan_ports.iter().any(|&p| uses_port(udp, p)) {
        let Some(vxlan) = VxlanPacket::new(udp.payload) else {
            return Ok(None);
        };
        if vxlan.get_flags() & VXLAN_FLAG_VNI == 0 {
            return Ok(None);
        }
        let inner = &udp.payload[VxlanPacket::minimum_packet_size()..];
        let network = link::ethernet(inner)?;
        return Ok(Some((tunnel(TunnelKind::Vxlan, vxlan.get_vni()), network)));
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
        let network = match protocol {
            ETHERTYPE_TRANSPARENT_BRIDGING => link::ethernet(inner)?,
            link::ETHERTYPE_IPV4 => Network::Ipv4(inner),
            link::ETHERTYPE_IPV6 => Network::Ipv6(inner),
            other => Network::Other(other),
        };
        return Ok(Some((tunnel(TunnelKind::Geneve, vni), network)));
    }
    Ok(None)
}

/// IP-in-IP: the IP payload is itself an IP packet.
pub fn decode_ip_in_ip(
    protocol: u8,
    payload: &[u8],
    outer: (IpAddr, IpAddr),
) -> Option<(Tunnel, Network<'_>)> {
    let network = match protocol {
        PROTO_IPV4_IN_IP => Network::Ipv4(payload),
        PROTO_IPV6_IN_IP => Network::Ipv6(payload),
        _ => return None,
    };
    let tunnel = Tunnel {
        kind: TunnelKind::Ipip,
        vni: 0,
        outer_src: outer.0,
        outer_dst: outer.1,
    };
    Some((tunnel, network))
}
