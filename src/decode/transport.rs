//! L4: TCP, UDP, ICMP and ICMPv6. ICMP errors keep the addresses and ports
//! of the packet they quote, which is how an unreachable is tied to a SYN.

use super::ip::{self, Network};
use super::{Layer, Problem};
use pnet_packet::icmp::IcmpPacket;
use pnet_packet::icmpv6::Icmpv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use std::net::IpAddr;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flag bits.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

#[derive(Debug, Clone, Copy, Default)]
pub enum Transport<'a> {
    /// No L4 header here (non-first fragment, damaged IP header chain).
    #[default]
    None,
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    Icmp(Icmp),
    /// Another IP protocol (GRE, ESP, SCTP, ...): counted, not decoded.
    Other(u8),
}

#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub payload: &'a [u8],
}

impl Tcp<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
pub struct Icmp {
    pub v6: bool,
    pub kind: u8,
    pub code: u8,
    /// Identifier of echo requests and replies.
    pub echo_id: Option<u16>,
    /// The packet an error message quotes.
    pub quoted: Option<Quoted>,
}

impl Icmp {
    /// ICMP type 3 or ICMPv6 type 1: destination unreachable.
    pub fn is_unreachable(&self) -> bool {
        (!self.v6 && self.kind == 3) || (self.v6 && self.kind == 1)
    }
}

/// Addresses and ports of the packet quoted inside an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Inlined into the decoder for the reason `ip::decode` is.
#[inline(always)]
pub fn decode(protocol: u8, bytes: &[u8]) -> Result<Transport<'_>, Problem> {
    match protocol {
        PROTO_TCP => tcp(bytes).map(Transport::Tcp),
        PROTO_UDP => udp(bytes).map(Transport::Udp),
        PROTO_ICMP => icmp(bytes, false).map(Transport::Icmp),
        PROTO_ICMPV6 => icmp(bytes, true).map(Transport::Icmp),
        other => Ok(Transport::Other(other)),
    }
}

// `#[inline]`: the decoder is in another codegen unit, and without the
// hint whether these are inlined into it depends on how the crate happens
// to be split into units.
#[inline]
fn tcp(bytes: &[u8]) -> Result<Tcp<'_>, Problem> {
    let tcp = TcpPacket::new(bytes).ok_or(Problem::truncated(Layer::Tcp))?;
    let header_len = tcp.get_data_offset() as usize * 4;
    if header_len < TcpPacket::minimum_packet_size() {
        return Err(Problem::malformed(Layer::Tcp));
    }
    Ok(Tcp {
        src_port: tcp.get_source(),
        dst_port: tcp.get_destination(),
        flags: tcp.get_flags(),
        seq: tcp.get_sequence(),
        ack: tcp.get_acknowledgement(),
        // Options cut by the snaplen leave no payload, not an error.
        payload: bytes.get(header_len..).unwrap_or(&[]),
    })
}

#[inline]
fn udp(bytes: &[u8]) -> Result<Udp<'_>, Problem> {
    let udp = UdpPacket::new(bytes).ok_or(Problem::truncated(Layer::Udp))?;
    let header_len = UdpPacket::minimum_packet_size();
    let end = super::declared_end(udp.get_length().into(), header_len, bytes.len());
    Ok(Udp {
        src_port: udp.get_source(),
        dst_port: udp.get_destination(),
        payload: &bytes[header_len..end],
    })
}

const ICMP_HEADER_LEN: usize = 8;

fn icmp(bytes: &[u8], v6: bool) -> Result<Icmp, Problem> {
    let (kind, code) = if v6 {
        let icmp = Icmpv6Packet::new(bytes).ok_or(Problem::truncated(Layer::Icmp))?;
        (icmp.get_icmpv6_type().0, icmp.get_icmpv6_code().0)
    } else {
        let icmp = IcmpPacket::new(bytes).ok_or(Problem::truncated(Layer::Icmp))?;
        (icmp.get_icmp_type().0, icmp.get_icmp_code().0)
    };
    let is_echo = if v6 {
        matches!(kind, 128 | 129)
    } else {
        matches!(kind, 0 | 8)
    };
    let is_error = if v6 {
        (1..=4).contains(&kind)
    } else {
        matches!(kind, 3 | 4 | 5 | 11 | 12)
    };
    let echo_id = match bytes.get(4..6) {
        Some(id) if is_echo => Some(u16::from_be_bytes([id[0], id[1]])),
        _ => None,
    };
    let quoted = match bytes.get(ICMP_HEADER_LEN..) {
        Some(inner) if is_error => quoted(inner, v6),
        _ => None,
    };
    Ok(Icmp {
        v6,
        kind,
        code,
        echo_id,
        quoted,
    })
}

/// Reads the quoted IP header and, when present, the first 4 bytes of its
/// L4 header (the ports). Quotes are often cut short; take what is there.
fn quoted(bytes: &[u8], v6: bool) -> Option<Quoted> {
    let network = if v6 {
        Network::Ipv6(bytes)
    } else {
        Network::Ipv4(bytes)
    };
    let decoded = ip::decode(network).ok()??;
    let header = decoded.header;
    let ports = decoded
        .l4
        .filter(|_| matches!(header.protocol, PROTO_TCP | PROTO_UDP))
        .and_then(|l4| l4.get(..4))
        .map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        });
    let (src_port, dst_port) = ports.unwrap_or((0, 0));
    Some(Quoted {
        src: header.src,
        dst: header.dst,
        protocol: header.protocol,
        src_port,
        dst_port,
    })
}
