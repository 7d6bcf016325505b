//! Flow keys: a bidirectional 5-tuple, stored with the lower endpoint first
//! so both directions of a conversation land on the same key.

use super::dense::Query;
use crate::decode::{Packet, Transport};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Which way a packet went relative to its key: `Lo` means lo -> hi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Lo = 0,
    Hi = 1,
}

impl Direction {
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    #[inline]
    pub fn other(self) -> Direction {
        match self {
            Direction::Lo => Direction::Hi,
            Direction::Hi => Direction::Lo,
        }
    }
}

/// The (source, destination) ports a packet's flow is keyed by, if it has
/// an L4 header. ICMP is keyed by echo identifier, or by type for other
/// messages.
#[inline]
pub fn ports(packet: &Packet<'_>) -> Option<(u16, u16)> {
    match packet.transport {
        Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
        Transport::Udp(u) => Some((u.src_port, u.dst_port)),
        Transport::Icmp(i) => {
            let id = i.echo_id.unwrap_or(i.kind as u16);
            Some((id, id))
        }
        Transport::Other(_) => Some((0, 0)),
        Transport::None => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub protocol: u8,
    pub lo: Endpoint,
    pub hi: Endpoint,
}

/// In two or three words, not field by field: the flow table hashes the
/// key of every packet, and the derived hash writes each address as a
/// tagged, length-prefixed run of octets.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.protocol, &self.lo, &self.hi, state);
    }
}

/// What `FlowKey` and `KeyOf` hash: the same words for the same key.
#[inline(always)]
fn hash_key<H: Hasher>(protocol: u8, lo: &Endpoint, hi: &Endpoint, state: &mut H) {
    match (lo.addr, hi.addr) {
        (IpAddr::V4(lo), IpAddr::V4(hi)) => {
            state.write_u64(u64::from(lo.to_bits()) << 32 | u64::from(hi.to_bits()));
        }
        (lo, hi) => {
            let bits = |addr| match addr {
                IpAddr::V4(a) => u128::from(a.to_bits()),
                IpAddr::V6(a) => a.to_bits(),
            };
            state.write_u128(bits(lo));
            state.write_u128(bits(hi));
        }
    }
    let (lo, hi) = (u64::from(lo.port), u64::from(hi.port));
    state.write_u64(lo << 32 | hi << 16 | u64::from(protocol));
}

/// A flow's key read where its endpoints already are (a queued event):
/// hashed, and compared with a `FlowKey`, as the key it stands for, which
/// is only built when a flow is created. Copied into a `FlowKey` per
/// packet, the endpoints' odd sizes (an address is 17 bytes) went through
/// the stack in pieces and were read back across them, a stall each time
/// (store forwarding fails on a load that spans two stores).
#[derive(Debug, Clone, Copy)]
pub struct KeyOf<'a> {
    pub protocol: u8,
    pub lo: &'a Endpoint,
    pub hi: &'a Endpoint,
}

impl<'a> KeyOf<'a> {
    /// The key of a packet from `src` to `dst`, and its direction:
    /// the lower endpoint first.
    #[inline]
    pub fn between(protocol: u8, src: &'a Endpoint, dst: &'a Endpoint) -> (Self, Direction) {
        if src <= dst {
            let key = KeyOf {
                protocol,
                lo: src,
                hi: dst,
            };
            (key, Direction::Lo)
        } else {
            let key = KeyOf {
                protocol,
                lo: dst,
                hi: src,
            };
            (key, Direction::Hi)
        }
    }
}

impl Hash for KeyOf<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.protocol, self.lo, self.hi, state);
    }
}

impl Query<FlowKey> for KeyOf<'_> {
    #[inline]
    fn is(&self, key: &FlowKey) -> bool {
        key.protocol == self.protocol && key.lo == *self.lo && key.hi == *self.hi
    }

    fn into_key(self) -> FlowKey {
        FlowKey {
            protocol: self.protocol,
            lo: *self.lo,
            hi: *self.hi,
        }
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and the packet's direction.
    #[inline]
    pub fn between(protocol: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, Direction) {
        let (key, direction) = KeyOf::between(protocol, &src, &dst);
        (key.into_key(), direction)
    }

    /// The endpoint that sends in `direction`.
    #[inline]
    pub fn sender(&self, direction: Direction) -> Endpoint {
        match direction {
            Direction::Lo => self.lo,
            Direction::Hi => self.hi,
        }
    }

    /// (sender, receiver) of packets going in `direction`.
    #[inline]
    pub fn endpoints(&self, direction: Direction) -> (Endpoint, Endpoint) {
        (self.sender(direction), self.sender(direction.other()))
    }
}

/// A protocol number's name in reports.
pub fn protocol_name(protocol: u8) -> Cow<'static, str> {
    match protocol {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        132 => "sctp".into(),
        other => format!("ip-proto-{other}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let a = Endpoint {
            addr: "10.42.1.12".parse().unwrap(),
            port: 40000,
        };
        let b = Endpoint {
            addr: "1.1.1.1".parse().unwrap(),
            port: 443,
        };
        let (k1, d1) = FlowKey::between(6, a, b);
        let (k2, d2) = FlowKey::between(6, b, a);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        assert_eq!(k1.sender(d1), a);
        assert_eq!(k2.sender(d2), b);
    }

    /// Every field counts in the hash: keys differing in any one of them
    /// (ports swapped included, and either address family) hash apart.
    #[test]
    fn every_field_of_a_key_is_hashed() {
        use std::collections::HashSet;
        let endpoint = |addr: &str, port| Endpoint {
            addr: addr.parse().unwrap(),
            port,
        };
        let key = |protocol, lo, hi| FlowKey { protocol, lo, hi };
        let keys = [
            key(6, endpoint("10.0.0.1", 1000), endpoint("10.0.0.2", 80)),
            key(17, endpoint("10.0.0.1", 1000), endpoint("10.0.0.2", 80)),
            key(6, endpoint("10.0.0.3", 1000), endpoint("10.0.0.2", 80)),
            key(6, endpoint("10.0.0.1", 1000), endpoint("10.0.0.4", 80)),
            key(6, endpoint("10.0.0.1", 1001), endpoint("10.0.0.2", 80)),
            key(6, endpoint("10.0.0.1", 1000), endpoint("10.0.0.2", 81)),
            key(6, endpoint("10.0.0.1", 80), endpoint("10.0.0.2", 1000)),
            key(6, endpoint("fd00::1", 1000), endpoint("fd00::2", 80)),
            key(6, endpoint("fd00::1", 1000), endpoint("fd00::3", 80)),
            key(6, endpoint("fd01::1", 1000), endpoint("fd00::2", 80)),
        ];
        let hashes: HashSet<u64> = keys.iter().map(crate::flow::hash_of).collect();
        assert_eq!(hashes.len(), keys.len());
    }

    /// A key read in place hashes, compares and is built as the key it
    /// stands for, in either direction: the flow table files flows by one
    /// and finds them by the other.
    #[test]
    fn a_key_read_in_place_is_the_key_it_stands_for() {
        use crate::flow::dense::Query;
        use crate::flow::hash_of;
        let endpoint = |addr: &str, port| Endpoint {
            addr: addr.parse().unwrap(),
            port,
        };
        let pairs = [
            (endpoint("10.0.0.1", 1000), endpoint("10.0.0.2", 80)),
            (endpoint("10.0.0.2", 80), endpoint("10.0.0.1", 1000)),
            (endpoint("10.0.0.1", 80), endpoint("10.0.0.1", 1000)),
            (endpoint("fd00::1", 1000), endpoint("fd00::2", 80)),
            (endpoint("fd00::2", 80), endpoint("10.0.0.1", 1000)),
        ];
        for protocol in [6, 17] {
            for (src, dst) in &pairs {
                let (key, direction) = FlowKey::between(protocol, *src, *dst);
                let (of, of_direction) = KeyOf::between(protocol, src, dst);
                assert_eq!(of_direction, direction);
                assert_eq!(hash_of(&of), hash_of(&key));
                assert!(of.is(&key));
                assert_eq!(of.into_key(), key);
                let (other, _) = FlowKey::between(protocol ^ 1, *src, *dst);
                assert!(!of.is(&other));
            }
        }
        let (a, b) = (pairs[0], pairs[3]);
        assert!(!KeyOf::between(6, &a.0, &a.1)
            .0
            .is(&FlowKey::between(6, b.0, b.1).0));
    }
}
