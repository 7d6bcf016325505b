//! IPv4 (options skipped, L4 only from first fragments) and IPv6 (extension
//! headers walked, L4 only from the offset-0 fragment).

use super::{Layer, Problem};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use std::net::IpAddr;

/// The network layer a link layer hands over.
#[derive(Debug, Clone, Copy)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    /// Not IP: the ethertype (or address family).
    Other(u16),
}

/// The fields of an IP header kpcap uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The L4 protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Part of a fragmented datagram.
    pub fragment: bool,
    /// IPv4 identification, or the IPv6 fragment header's; 0 without one.
    /// Tells a packet's copies on two interfaces from a resent packet.
    pub ident: u32,
}

const IPV6_HEADER_LEN: usize = 40;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;
/// A chain longer than this is crafted, not real.
const MAX_EXTENSION_HEADERS: usize = 16;

/// A decoded IP header and what follows it.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub header: IpHeader,
    /// The L4 bytes; None for a non-first fragment or a damaged header chain.
    pub l4: Option<&'a [u8]>,
    /// Set when the header was readable but what follows it was not.
    pub problem: Option<Problem>,
}

impl<'a> Decoded<'a> {
    fn damaged(header: IpHeader, problem: Problem) -> Self {
        Decoded {
            header,
            l4: None,
            problem: Some(problem),
        }
    }
}

/// Decodes an IP header; Ok(None) for a non-IP network layer.
///
/// Inlined, with `ipv4` and `ipv6`, into the decoder: returned as a call,
/// the header goes through memory and the caller reads it back with wide
/// loads before the callee's narrow stores have landed (store-forwarding
/// stalls).
#[inline(always)]
pub fn decode(network: Network<'_>) -> Result<Option<Decoded<'_>>, Problem> {
    match network {
        Network::Ipv4(bytes) => ipv4(bytes).map(Some),
        Network::Ipv6(bytes) => ipv6(bytes).map(Some),
        Network::Other(_) => Ok(None),
    }
}

#[inline(always)]
fn ipv4(bytes: &[u8]) -> Result<Decoded<'_>, Problem> {
    let ip = Ipv4Packet::new(bytes).ok_or(Problem::truncated(Layer::Ipv4))?;
    if ip.get_version() != 4 {
        return Err(Problem::malformed(Layer::Ipv4));
    }
    let header_len = ip.get_header_length() as usize * 4;
    if header_len < Ipv4Packet::minimum_packet_size() {
        return Err(Problem::malformed(Layer::Ipv4));
    }
    let more_fragments = ip.get_flags() & 0b001 != 0;
    let offset = ip.get_fragment_offset();
    let header = IpHeader {
        src: IpAddr::V4(ip.get_source()),
        dst: IpAddr::V4(ip.get_destination()),
        protocol: ip.get_next_level_protocol().0,
        fragment: more_fragments || offset != 0,
        ident: u32::from(ip.get_identification()),
    };
    if header_len > bytes.len() {
        return Ok(Decoded::damaged(header, Problem::truncated(Layer::Ipv4)));
    }
    let end = super::declared_end(ip.get_total_length().into(), header_len, bytes.len());
    Ok(Decoded {
        header,
        l4: (offset == 0).then(|| &bytes[header_len..end]),
        problem: None,
    })
}

#[inline(always)]
fn ipv6(bytes: &[u8]) -> Result<Decoded<'_>, Problem> {
    let ip = Ipv6Packet::new(bytes).ok_or(Problem::truncated(Layer::Ipv6))?;
    if ip.get_version() != 6 {
        return Err(Problem::malformed(Layer::Ipv6));
    }
    // Payload length trims padding; 0 (jumbogram) means "all".
    let payload_len = ip.get_payload_length() as usize;
    let end = if payload_len == 0 {
        bytes.len()
    } else {
        (IPV6_HEADER_LEN + payload_len).min(bytes.len())
    };
    let mut header = IpHeader {
        src: IpAddr::V6(ip.get_source()),
        dst: IpAddr::V6(ip.get_destination()),
        protocol: ip.get_next_header().0,
        fragment: false,
        ident: 0,
    };
    let mut at = IPV6_HEADER_LEN;
    let mut first_fragment = true;
    for _ in 0..MAX_EXTENSION_HEADERS {
        let len = match header.protocol {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                let Some(&ext_len) = bytes.get(at + 1) else {
                    return Ok(Decoded::damaged(header, Problem::truncated(Layer::Ipv6)));
                };
                (ext_len as usize + 1) * 8
            }
            AUTH => {
                let Some(&ext_len) = bytes.get(at + 1) else {
                    return Ok(Decoded::damaged(header, Problem::truncated(Layer::Ipv6)));
                };
                (ext_len as usize + 2) * 4
            }
            FRAGMENT => {
                let Some(field) = bytes.get(at + 2..at + 8) else {
                    return Ok(Decoded::damaged(header, Problem::truncated(Layer::Ipv6)));
                };
                header.fragment = true;
                header.ident = u32::from_be_bytes([field[2], field[3], field[4], field[5]]);
                first_fragment = u16::from_be_bytes([field[0], field[1]]) >> 3 == 0;
                8
            }
            _ => break,
        };
        header.protocol = bytes[at];
        at += len;
        if at > end {
            return Ok(Decoded::damaged(header, Problem::truncated(Layer::Ipv6)));
        }
    }
    Ok(Decoded {
        header,
        l4: first_fragment.then(|| &bytes[at..end]),
        problem: None,
    })
}
