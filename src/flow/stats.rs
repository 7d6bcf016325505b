//! What the flow table keeps per flow and per address pair. Every field is
//! a count, a minimum or a maximum, so merging two of them is associative
//! and commutative.

use super::key::Direction;
use crate::decode::{Packet, Transport, Tunnel};
use crate::interface::Via;
use crate::time::Timestamp;
use serde::Serialize;
use smallvec::SmallVec;

/// Counters of one direction of a flow. Plain values, not options: a
/// million flows are a million of these, and the SYN fields mean something
/// only when `syn > 0` (see `first_syn`, `last_syn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub packets: u64,
    pub bytes: u64,
    /// Pure SYNs (SYN without ACK), retransmissions included.
    pub syn: u32,
    pub syn_ack: u32,
    pub rst: u32,
    pub fin: u32,
    /// Segments with ACK and without SYN: the handshake's third leg, data.
    pub ack: u32,
    /// File position of the first pure SYN (`u64::MAX` before one).
    pub first_syn_record: u64,
    /// Time of the last pure SYN.
    pub last_syn_ts: Timestamp,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            packets: 0,
            bytes: 0,
            syn: 0,
            syn_ack: 0,
            rst: 0,
            fin: 0,
            ack: 0,
            first_syn_record: u64::MAX,
            last_syn_ts: Timestamp(0),
        }
    }
}

impl Side {
    /// File position of the first pure SYN, if there was one.
    pub fn first_syn(&self) -> Option<u64> {
        (self.syn > 0).then_some(self.first_syn_record)
    }

    /// Time of the last pure SYN, if there was one.
    pub fn last_syn(&self) -> Option<Timestamp> {
        (self.syn > 0).then_some(self.last_syn_ts)
    }

    #[inline]
    pub(super) fn merge(&mut self, other: &Side) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.syn += other.syn;
        self.syn_ack += other.syn_ack;
        self.rst += other.rst;
        self.fin += other.fin;
        self.ack += other.ack;
        self.first_syn_record = self.first_syn_record.min(other.first_syn_record);
        self.last_syn_ts = self.last_syn_ts.max(other.last_syn_ts);
    }
}

#[inline]
pub fn min_option<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// TCP handshake state of a flow, judged from the initiator's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    /// SYNs from the initiator, nothing back.
    SynOnly,
    /// The responder answered the SYN with RST.
    Refused,
    /// SYN-ACK (or a simultaneous-open SYN) came back, no final ACK seen.
    Answered,
    /// SYN, SYN-ACK and the initiator's ACK.
    Established,
    /// No SYN seen: the capture started mid-connection.
    Midstream,
}

impl TcpState {
    pub fn label(self) -> &'static str {
        match self {
            TcpState::SynOnly => "syn_only",
            TcpState::Refused => "refused",
            TcpState::Answered => "answered",
            TcpState::Established => "established",
            TcpState::Midstream => "midstream",
        }
    }
}

/// Interfaces one flow records (`Flow::add_crossing`).
pub const MAX_CROSSINGS: usize = 16;

/// One interface a flow was seen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub via: Via,
    /// Packets seen on this interface, by `Direction`, copies included.
    pub packets: [u64; 2],
    /// File position of the first packet seen here, and its tunnel (out
    /// of line: most flows have none, and every flow pays for the space).
    pub first_record: u64,
    pub tunnel: Option<Box<Tunnel>>,
    /// By `Direction`: whether packets arrived here (`-i any`'s cooked
    /// headers say which way a packet crossed its device), as opposed to
    /// leaving by it or crossing it in a way the capture does not say.
    pub received: [bool; 2],
}

impl Crossing {
    #[inline]
    pub(super) fn merge(&mut self, other: &Crossing) {
        self.packets[0] += other.packets[0];
        self.packets[1] += other.packets[1];
        self.received[0] |= other.received[0];
        self.received[1] |= other.received[1];
        if other.first_record < self.first_record {
            self.first_record = other.first_record;
            self.tunnel.clone_from(&other.tunnel);
        }
    }
}

/// One bidirectional flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Indexed by `Direction`: [lo -> hi, hi -> lo]. Copies of a packet on
    /// a second interface are counted once.
    pub sides: [Side; 2],
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// File position and direction of the flow's first packet.
    pub first_record: u64,
    pub first_direction: Direction,
    /// The interfaces the flow was seen on, ordered by `Via`: the
    /// `MAX_CROSSINGS` lowest (see `add_crossing`).
    pub crossings: SmallVec<[Crossing; 1]>,
    /// The flow was seen on more interfaces than `crossings` holds.
    pub crossings_capped: bool,
    /// What NAT leaves unchanged in the first packet (TCP sequence number,
    /// UDP payload hash); 0 when unknown. Pairs a flow's pre- and post-NAT
    /// copies in `-i any` captures.
    pub fingerprint: u64,
    /// Where its address pairs sit in its partition's pair map.
    pub pair_slots: PairSlots,
}

/// Where a flow's two address pairs (by `Direction`) sit in its
/// partition's pair map, so that a packet updates its pair without
/// hashing and probing: with thousands of conversations at once, the
/// pair lookup was a cache miss per packet. A slot is a hint, checked
/// against the pair's key before use (eviction and merges move pairs);
/// it is no part of what a flow is, so flows compare equal without it.
#[derive(Debug, Clone, Copy)]
pub struct PairSlots([u32; 2]);

impl Default for PairSlots {
    fn default() -> Self {
        PairSlots([u32::MAX; 2])
    }
}

impl PartialEq for PairSlots {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PairSlots {}

impl PairSlots {
    #[inline]
    pub fn get(&self, direction: Direction) -> Option<usize> {
        let slot = self.0[direction.index()];
        (slot != u32::MAX).then_some(slot as usize)
    }

    #[inline]
    pub fn set(&mut self, direction: Direction, slot: usize) {
        self.0[direction.index()] = u32::try_from(slot).unwrap_or(u32::MAX);
    }
}

impl Flow {
    #[inline]
    pub(super) fn merge(&mut self, other: &Flow) {
        self.sides[0].merge(&other.sides[0]);
        self.sides[1].merge(&other.sides[1]);
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        if other.first_record < self.first_record {
            self.first_record = other.first_record;
            self.first_direction = other.first_direction;
            self.fingerprint = other.fingerprint;
        }
        self.crossings_capped |= other.crossings_capped;
        for crossing in &other.crossings {
            if let Some(at) = self.add_crossing(crossing.via, || crossing.clone()) {
                self.crossings[at].merge(crossing);
            }
        }
    }

    /// The index of `via`'s crossing, added with `new` (no packets yet) if
    /// the flow has none; None if it is not recorded. A flow records the
    /// `MAX_CROSSINGS` lowest interfaces by `Via`: whatever order they come
    /// in, the same ones, each with all its packets (an interface dropped
    /// from a partial flow has that many lower ones in the whole flow too),
    /// so the result does not depend on chunking. Bounded: a crafted capture
    /// with a new interface per packet costs a short search per packet.
    #[inline]
    pub(super) fn add_crossing(
        &mut self,
        via: Via,
        new: impl FnOnce() -> Crossing,
    ) -> Option<usize> {
        crate::ops::step(1);
        match self.crossings.binary_search_by(|c| c.via.cmp(&via)) {
            Ok(at) => Some(at),
            Err(at) if at >= MAX_CROSSINGS => {
                self.crossings_capped = true;
                None
            }
            Err(at) => {
                if self.crossings.len() == MAX_CROSSINGS {
                    self.crossings.pop();
                    self.crossings_capped = true;
                }
                let mut crossing = new();
                crossing.packets = [0, 0];
                crate::ops::step(self.crossings.len() - at);
                self.crossings.insert(at, crossing);
                Some(at)
            }
        }
    }

    /// The tunnel the flow was first seen in, if it was seen in one.
    pub fn tunnel(&self) -> Option<Tunnel> {
        self.crossings
            .iter()
            .filter(|c| c.tunnel.is_some())
            .min_by_key(|c| c.first_record)
            .and_then(|c| c.tunnel.as_deref().copied())
    }

    /// The direction of the initiator: the sender of the first pure SYN,
    /// else the sender of the first packet.
    pub fn initiator(&self) -> Direction {
        match (self.sides[0].first_syn(), self.sides[1].first_syn()) {
            (Some(a), Some(b)) if b < a => Direction::Hi,
            (Some(_), _) => Direction::Lo,
            (None, Some(_)) => Direction::Hi,
            (None, None) => self.first_direction,
        }
    }

    pub fn initiator_side(&self) -> &Side {
        &self.sides[self.initiator().index()]
    }

    pub fn responder_side(&self) -> &Side {
        &self.sides[self.initiator().other().index()]
    }

    /// Handshake state (meaningful for TCP flows only).
    pub fn tcp_state(&self) -> TcpState {
        let (init, resp) = (self.initiator_side(), self.responder_side());
        if init.syn == 0 {
            TcpState::Midstream
        } else if resp.syn_ack > 0 || resp.syn > 0 {
            if init.ack > 0 {
                TcpState::Established
            } else {
                TcpState::Answered
            }
        } else if resp.rst > 0 {
            TcpState::Refused
        } else {
            TcpState::SynOnly
        }
    }
}

/// The IP protocols seen between two addresses, as a small bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protocols(u8);

impl Protocols {
    const NAMES: [&'static str; 6] = ["tcp", "udp", "icmp", "icmpv6", "other", "fragment"];

    #[inline]
    pub(super) fn of(packet: &Packet<'_>) -> Protocols {
        let bit = match packet.transport {
            Transport::Tcp(_) => 0,
            Transport::Udp(_) => 1,
            Transport::Icmp(i) if !i.v6 => 2,
            Transport::Icmp(_) => 3,
            Transport::Other(_) => 4,
            Transport::None => 5,
        };
        Protocols(1 << bit)
    }

    pub fn names(self) -> Vec<&'static str> {
        (0..Self::NAMES.len())
            .filter(|b| self.0 & (1 << b) != 0)
            .map(|b| Self::NAMES[b])
            .collect()
    }
}

/// Traffic from one address to another (one direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStats {
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub protocols: Protocols,
    /// Packets of this pair that travelled inside a tunnel.
    pub tunneled: u64,
}

impl PairStats {
    #[inline]
    pub(super) fn merge(&mut self, other: &PairStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        self.protocols.0 |= other.protocols.0;
        self.tunneled += other.tunneled;
    }
}
