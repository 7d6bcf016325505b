//! Zero-copy decoding of one captured frame down to L4: link layer (with
//! the cooked header of `-i any` captures), VLAN tags, IPv4/IPv6 (with
//! options and extension headers), TCP/UDP/ICMP, and VXLAN, Geneve and
//! IP-in-IP tunnels, whose inner headers are what findings judge.
//!
//! Decoding never fails: what could be decoded is kept, and where it stopped
//! is recorded in `Packet::problem` (snaplen-truncated frames are normal).

pub mod dns;
mod ip;
mod link;
mod plain;
pub mod tcp_stream;
mod transport;
mod tunnel;

pub use ip::{IpHeader, Network};
pub use link::Cooked;
pub use transport::{tcp_flags, Icmp, Quoted, Tcp, Transport, Udp, PROTO_TCP, PROTO_UDP};
pub use tunnel::{Tunnel, TunnelKind, DEFAULT_VXLAN_PORTS, GENEVE_PORT};

use std::net::IpAddr;

/// Where and why decoding stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    pub layer: Layer,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Link,
    Vlan,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Tunnel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The frame ends before the header does (snaplen or damage).
    Truncated,
    /// A header field contradicts the bytes (bad version, length, offset).
    Malformed,
    /// A link type (or a rejected interface) kpcap does not decode.
    Unsupported,
}

impl Problem {
    pub(crate) fn truncated(layer: Layer) -> Problem {
        Problem {
            layer,
            kind: ProblemKind::Truncated,
        }
    }

    /// A frame kpcap cannot decode at all: it says nothing of the time
    /// span either (its interface's timestamps may be garbage).
    pub fn unreadable(&self) -> bool {
        self.kind == ProblemKind::Unsupported
    }

    pub(crate) fn malformed(layer: Layer) -> Problem {
        Problem {
            layer,
            kind: ProblemKind::Malformed,
        }
    }

    pub fn label(&self) -> String {
        let layer = format!("{:?}", self.layer).to_lowercase();
        match self.kind {
            ProblemKind::Truncated => format!("{layer}_truncated"),
            ProblemKind::Malformed => format!("{layer}_malformed"),
            ProblemKind::Unsupported => format!("{layer}_unsupported"),
        }
    }
}

/// A big-endian u16 at `at`.
#[inline(always)]
pub(super) fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// A big-endian u32 at `at`.
#[inline(always)]
pub(super) fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Where the bytes a length field covers end (IPv4 total length, UDP
/// length): it trims the link layer's padding, and one shorter than its
/// own header (0 under TSO, or nonsense) means "all that was captured".
#[inline(always)]
pub(super) fn declared_end(declared: usize, header_len: usize, captured: usize) -> usize {
    if declared >= header_len {
        declared.min(captured)
    } else {
        captured
    }
}

/// Tunnels nest at most this deep (Geneve in VXLAN in ...); deeper is
/// treated as payload, which also bounds work on crafted input.
const MAX_TUNNEL_DEPTH: usize = 4;

/// What kpcap needs to know about one frame. Borrows the frame's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Packet<'a> {
    /// The cooked header of a Linux `-i any` capture (SLL, SLL2).
    pub cooked: Option<Cooked>,
    /// The outermost IP header's addresses (the underlay for tunnels).
    pub outer: Option<(IpAddr, IpAddr)>,
    /// The innermost IP header that is not quoted inside an ICMP error.
    pub ip: Option<IpHeader>,
    pub transport: Transport<'a>,
    /// The innermost IP header's payload as captured (L4 header and data).
    pub l4: &'a [u8],
    /// The innermost tunnel the packet was carried in, if any.
    pub tunnel: Option<Tunnel>,
    /// Ethertype of a frame that carries no IP (ARP, LLDP, ...).
    pub non_ip_ethertype: Option<u16>,
    pub problem: Option<Problem>,
}

/// Decoding settings: which UDP ports carry VXLAN.
#[derive(Debug, Clone)]
pub struct Decoder {
    vxlan_ports: Vec<u16>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            vxlan_ports: DEFAULT_VXLAN_PORTS.to_vec(),
        }
    }
}

impl Decoder {
    /// The default VXLAN ports plus `extra` (`--vxlan-port`).
    pub fn with_vxlan_ports(extra: &[u16]) -> Decoder {
        let mut ports = DEFAULT_VXLAN_PORTS.to_vec();
        ports.extend(extra.iter().filter(|p| !DEFAULT_VXLAN_PORTS.contains(p)));
        ports.sort_unstable();
        ports.dedup();
        Decoder { vxlan_ports: ports }
    }

    /// Decodes a frame of the given LINKTYPE.
    pub fn decode<'a>(&self, link_type: u32, frame: &'a [u8]) -> Packet<'a> {
        let mut packet = Packet::default();
        self.decode_into(link_type, frame, &mut packet);
        packet
    }

    /// `decode`, into a `Packet::default()` the caller holds: the record
    /// reader decodes in place rather than moving 200 bytes per packet.
    /// The common frame takes a straight path (`plain`), the rest the
    /// general one; both give the same `Packet`.
    pub fn decode_into<'a>(&self, link_type: u32, frame: &'a [u8], packet: &mut Packet<'a>) {
        if plain::frame(link_type, frame, &self.vxlan_ports, packet) {
            return;
        }
        self.decode_layers(link_type, frame, packet);
    }

    /// `decode` by the layered decoder alone, without the straight path:
    /// for the fuzz target that holds the two to the same result.
    #[doc(hidden)]
    pub fn decode_layered<'a>(&self, link_type: u32, frame: &'a [u8]) -> Packet<'a> {
        let mut packet = Packet::default();
        self.decode_layers(link_type, frame, &mut packet);
        packet
    }

    /// The general decoder, layer by layer.
    fn decode_layers<'a>(&self, link_type: u32, frame: &'a [u8], packet: &mut Packet<'a>) {
        match link::network(link_type, frame) {
            Ok((network, cooked)) => {
                packet.cooked = cooked;
                self.network(network, packet, 0);
            }
            Err(problem) => packet.problem = Some(problem),
        }
    }

    fn network<'a>(&self, network: Network<'a>, packet: &mut Packet<'a>, depth: usize) {
        let decoded = match ip::decode(network) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                if let Network::Other(ethertype) = network {
                    packet.non_ip_ethertype.get_or_insert(ethertype);
                }
                return;
            }
            Err(problem) => {
                packet.problem = Some(problem);
                return;
            }
        };
        let header = decoded.header;
        let addresses = (header.src, header.dst);
        packet.outer.get_or_insert(addresses);
        packet.ip = Some(header);
        packet.transport = Transport::None;
        packet.l4 = &[];
        packet.problem = decoded.problem;
        let Some(l4) = decoded.l4 else {
            return; // a non-first fragment or a damaged header chain
        };
        packet.l4 = l4;
        if depth < MAX_TUNNEL_DEPTH {
            if let Some((tunnel, inner)) = tunnel::decode_ip_in_ip(header.protocol, l4, addresses) {
                packet.tunnel = Some(tunnel);
                return self.network(inner, packet, depth + 1);
            }
        }
        match transport::decode(header.protocol, l4) {
            Ok(transport) => packet.transport = transport,
            Err(problem) => {
                packet.problem = Some(problem);
                return;
            }
        }
        if depth >= MAX_TUNNEL_DEPTH {
            return;
        }
        if let Transport::Udp(udp) = packet.transport {
            match tunnel::decode_udp(&udp, addresses, &self.vxlan_ports) {
                Ok(Some((tunnel, inner))) => {
                    packet.tunnel = Some(tunnel);
                    self.network(inner, packet, depth + 1);
                }
                Ok(None) => {}
                Err(problem) => packet.problem = Some(problem),
            }
        }
    }
}

/// Decodes a frame with the default settings.
pub fn decode(link_type: u32, frame: &[u8]) -> Packet<'_> {
    thread_local! {
        static DEFAULT: Decoder = Decoder::default();
    }
    DEFAULT.with(|decoder| decoder.decode(link_type, frame))
}

#[cfg(test)]
mod tests;
