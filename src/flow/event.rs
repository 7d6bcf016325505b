//! What the flow table takes from one record, copied out of the mapped
//! bytes while the chunk is read. Events wait in per-partition lists until
//! the partition's worker applies them in file order
//! (`FlowTable::apply_pending`).

use super::key::{ports, Direction, Endpoint, KeyOf};
use super::map::{partition_of, PARTITIONS};
use super::stats::{Crossing, Flow, PairStats, Protocols};
use crate::decode::{IpHeader, Packet, Transport, Tunnel};
use crate::interface::Via;
use crate::observe::Seen;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;

#[derive(Debug, Clone)]
pub struct FlowEvent {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub protocol: u8,
    /// The packet has an L4 header, so it belongs to a flow (otherwise it
    /// only counts for its address pair).
    pub keyed: bool,
    /// A copy of a packet already counted: only its interface is news.
    pub duplicate: bool,
    /// TCP flags, if TCP.
    pub tcp_flags: Option<u8>,
    pub protocols: Protocols,
    pub orig_len: u32,
    pub ts: Timestamp,
    pub position: u64,
    /// Where the packet was captured, as an index into its batch's
    /// `vias` (a capture has few, and an event is 80 bytes instead of 96),
    /// and in the top bit, `RECEIVED`.
    pub via: u16,
    /// See `Flow::fingerprint`.
    pub fingerprint: u64,
    /// The packet's tunnel, as an index into its batch's `tunnels`
    /// (`NO_TUNNEL` without one): most packets have none.
    pub tunnel: u32,
}

pub const NO_TUNNEL: u32 = u32::MAX;

/// In `FlowEvent::via`: the packet arrived on its device rather than
/// leaving by it (a cooked header's packet type other than outgoing). Not
/// set without a cooked header, which does not say.
const RECEIVED: u16 = 1 << 15;

/// Interfaces one batch can name: as many as `FlowEvent::via` can index.
const MAX_VIAS: usize = RECEIVED as usize;

// Events are most of the memory a window holds in flight.
const _: () = assert!(std::mem::size_of::<FlowEvent>() <= 80);

/// The events of a run of records, in file order, each in the list of
/// its partition.
#[derive(Debug, Clone)]
pub struct Batch {
    pub lists: Vec<Vec<FlowEvent>>,
    pub tunnels: Vec<Tunnel>,
    /// The interfaces the events were captured on, and their indices.
    pub vias: Vec<Via>,
    via_indices: FxHashMap<Via, u16>,
}

/// Events a list makes room for at its first: a 4 MiB chunk of 450-byte
/// frames puts about 145 in each list, of 70-byte frames about 940, so
/// growing from one reallocates each list several times. Not before: a
/// run of a few records (tiny chunks, small captures) touches few lists.
const LIST_CAPACITY: usize = 128;

impl Default for Batch {
    fn default() -> Self {
        Batch {
            lists: vec![Vec::new(); PARTITIONS],
            tunnels: Vec::new(),
            vias: Vec::new(),
            via_indices: FxHashMap::default(),
        }
    }
}

impl Batch {
    /// Queues the event of `seen`, if it is an IP packet; false if the
    /// batch already names as many interfaces as an event can index and
    /// `seen` came on another (a crafted capture can have a new one per
    /// record): the caller starts a new batch. The list's room is made
    /// before the event is built, so that it is written straight into the
    /// list (built first, it went through the stack and was read back with
    /// wide loads before its narrow stores had landed).
    #[must_use]
    pub fn push(&mut self, seen: &Seen<'_>) -> bool {
        let Some(ip) = &seen.packet.ip else {
            return true;
        };
        let Some(via) = self.via_index(seen.via) else {
            return false;
        };
        let tunnel = match seen.packet.tunnel {
            Some(tunnel) => {
                self.tunnels.push(tunnel);
                self.tunnels.len() as u32 - 1
            }
            None => NO_TUNNEL,
        };
        let list = &mut self.lists[partition_of(&ip.src, &ip.dst)];
        if list.len() == list.capacity() {
            list.reserve(LIST_CAPACITY.max(list.len()));
        }
        list.push(FlowEvent::of(seen, ip, tunnel, via));
        // The list's next event comes about as many records later as
        // there are partitions: start fetching its slot's lines now, so
        // that writing it does not wait for them.
        if list.len() < list.capacity() {
            crate::prefetch::lines_at(list.as_ptr_range().end);
        }
        true
    }

    pub fn tunnel(&self, event: &FlowEvent) -> Option<&Tunnel> {
        self.tunnels.get(event.tunnel as usize)
    }

    pub fn via(&self, event: &FlowEvent) -> Via {
        self.vias[usize::from(event.via & !RECEIVED)]
    }

    /// The index of `via` in `vias`, added if new and there is room.
    /// Most captures have one interface, so the last one is tried first.
    fn via_index(&mut self, via: Via) -> Option<u16> {
        if self.vias.last() == Some(&via) {
            return Some((self.vias.len() - 1) as u16);
        }
        if let Some(&at) = self.via_indices.get(&via) {
            return Some(at);
        }
        if self.vias.len() == MAX_VIAS {
            return None;
        }
        let at = self.vias.len() as u16;
        self.vias.push(via);
        self.via_indices.insert(via, at);
        Some(at)
    }
}

impl FlowEvent {
    /// The event of a packet whose IP header is `ip`, in `tunnel` (an
    /// index into its batch's `tunnels`, or `NO_TUNNEL`), captured on
    /// `via` (an index into its batch's `vias`).
    #[inline(always)]
    fn of(seen: &Seen<'_>, ip: &IpHeader, tunnel: u32, via: u16) -> FlowEvent {
        let packet = &seen.packet;
        let ports = ports(packet);
        let (src_port, dst_port) = ports.unwrap_or((0, 0));
        let tcp_flags = match packet.transport {
            Transport::Tcp(t) => Some(t.flags),
            _ => None,
        };
        FlowEvent {
            src: Endpoint {
                addr: ip.src,
                port: src_port,
            },
            dst: Endpoint {
                addr: ip.dst,
                port: dst_port,
            },
            protocol: ip.protocol,
            keyed: ports.is_some(),
            duplicate: seen.duplicate,
            tcp_flags,
            protocols: Protocols::of(packet),
            orig_len: seen.record.orig_len,
            ts: seen.record.ts,
            position: seen.record.position,
            via: match &packet.cooked {
                Some(cooked) if !cooked.outgoing() => via | RECEIVED,
                _ => via,
            },
            fingerprint: if ports.is_some() {
                fingerprint(packet)
            } else {
                0
            },
            tunnel,
        }
    }

    /// Whether the packet arrived on its device (see `RECEIVED`).
    #[inline]
    pub fn received(&self) -> bool {
        self.via & RECEIVED != 0
    }

    /// The flow's key, read in place, and the packet's direction, if it
    /// has a flow.
    #[inline]
    pub fn key(&self) -> Option<(KeyOf<'_>, Direction)> {
        self.keyed
            .then(|| KeyOf::between(self.protocol, &self.src, &self.dst))
    }

    pub fn pair(&self) -> PairStats {
        PairStats {
            packets: 1,
            bytes: u64::from(self.orig_len),
            first_ts: self.ts,
            last_ts: self.ts,
            protocols: self.protocols,
            tunneled: u64::from(self.tunnel != NO_TUNNEL),
        }
    }
}

/// See `Flow::fingerprint`. Tagged by protocol so a TCP sequence number
/// never equals a UDP hash by accident.
fn fingerprint(packet: &Packet<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    match packet.transport {
        Transport::Tcp(tcp) => (1 << 32) | u64::from(tcp.seq),
        Transport::Udp(udp) if !udp.payload.is_empty() => {
            let mut hasher = rustc_hash::FxHasher::default();
            udp.payload.hash(&mut hasher);
            hasher.finish() | (1 << 63)
        }
        _ => 0,
    }
}

impl Flow {
    /// A flow whose first packet is `event`.
    #[inline]
    pub(super) fn first(event: &FlowEvent, direction: Direction) -> Flow {
        Flow {
            sides: Default::default(),
            first_ts: event.ts,
            last_ts: event.ts,
            first_record: event.position,
            first_direction: direction,
            crossings: Default::default(),
            crossings_capped: false,
            fingerprint: event.fingerprint,
            pair_slots: Default::default(),
        }
    }

    #[inline(always)]
    pub(super) fn cross(&mut self, event: &FlowEvent, batch: &Batch, direction: Direction) {
        let via = batch.via(event);
        // Most flows are seen on one interface: skip the search.
        if let [only] = self.crossings.as_mut_slice() {
            if only.via == via {
                only.packets[direction.index()] += 1;
                if event.received() {
                    only.received[direction.index()] = true;
                }
                return;
            }
        }
        let new = || Crossing {
            via,
            packets: [0, 0],
            first_record: event.position,
            tunnel: batch.tunnel(event).map(|t| Box::new(*t)),
            received: [false; 2],
        };
        if let Some(at) = self.add_crossing(via, new) {
            let crossing = &mut self.crossings[at];
            crossing.packets[direction.index()] += 1;
            if event.received() {
                crossing.received[direction.index()] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_VIAS;
    use crate::capture::Record;
    use crate::decode::{IpHeader, Packet, Transport, Udp, PROTO_UDP};
    use crate::flow::FlowTable;
    use crate::interface::Via;
    use crate::observe::{Seen, Settle};
    use crate::time::Timestamp;
    use std::net::{IpAddr, Ipv4Addr};

    /// A UDP packet from port `port`, captured on interface `interface`.
    fn seen(interface: u32, port: u16) -> Seen<'static> {
        let (src, dst) = (Ipv4Addr::new(10, 42, 0, 5), Ipv4Addr::new(1, 1, 1, 1));
        udp(interface, (src, port), (dst, 53))
    }

    fn udp(interface: u32, from: (Ipv4Addr, u16), to: (Ipv4Addr, u16)) -> Seen<'static> {
        let ((src, port), (dst, dst_port)) = (from, to);
        Seen {
            record: Record {
                position: u64::from(interface) * 64,
                ts: Timestamp(u64::from(interface)),
                interface,
                link_type: 1,
                orig_len: 60,
                data: &[],
            },
            packet: Packet {
                ip: Some(IpHeader {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    protocol: PROTO_UDP,
                    fragment: false,
                    ident: 0,
                }),
                transport: Transport::Udp(Udp {
                    src_port: port,
                    dst_port,
                    payload: &[],
                }),
                ..Packet::default()
            },
            via: Via::new(interface, None),
            duplicate: false,
        }
    }

    /// A run of records on more interfaces than one batch can name (a
    /// crafted capture could have a new one per record) spills into a new
    /// batch, and every flow still records the interface it came on.
    #[test]
    fn more_interfaces_than_a_batch_names_start_a_new_batch() {
        let mut table = FlowTable::default();
        let interfaces = MAX_VIAS as u32 + 10;
        for interface in 0..interfaces {
            table.observe(&seen(interface, (interface % 60_000) as u16 + 1024));
            // Once more on the same interface: found in the batch's table.
            table.observe(&seen(interface, (interface % 60_000) as u16 + 1024));
        }
        table.settle();
        let crossings: usize = table.flows.iter().map(|(_, f)| f.crossings.len()).sum();
        assert_eq!(crossings, interfaces as usize);
        for (key, flow) in table.flows.iter() {
            for crossing in &flow.crossings {
                let Via { interface, .. } = crossing.via;
                assert_eq!(
                    (interface % 60_000) as u16 + 1024,
                    key.lo.port.max(key.hi.port)
                );
                assert_eq!(crossing.packets.iter().sum::<u64>(), 2);
            }
        }
    }

    /// A flow seen on more interfaces than it records keeps the lowest
    /// ones, each with all its packets, whatever the order the packets come
    /// in and however they are split between tables; it says it was capped.
    /// A table that recorded every interface would fail the length check.
    #[test]
    fn a_flow_records_its_lowest_interfaces_whatever_the_order() {
        use crate::flow::MAX_CROSSINGS;
        let interfaces: Vec<u32> = (0..200).map(|i| (i * 7919) % 200).collect();
        let crossings = |table: &FlowTable| {
            let (_, flow) = table.flows.iter().next().expect("one flow");
            assert!(flow.crossings_capped);
            let seen: Vec<(u32, u64)> = (flow.crossings.iter())
                .map(|c| (c.via.interface, c.packets.iter().sum()))
                .collect();
            seen
        };
        let mut whole = FlowTable::default();
        for &i in &interfaces {
            whole.observe(&seen(i, 1024));
            whole.observe(&seen(i, 1024));
        }
        whole.settle();
        let expected: Vec<(u32, u64)> = (0..MAX_CROSSINGS as u32).map(|i| (i, 2)).collect();
        assert_eq!(crossings(&whole), expected);
        let (mut a, mut b) = (FlowTable::default(), FlowTable::default());
        for (n, &i) in interfaces.iter().rev().enumerate() {
            let half = if n % 3 == 0 { &mut a } else { &mut b };
            half.observe(&seen(i, 1024));
            b.observe(&seen(i, 1024));
        }
        a.settle();
        b.settle();
        let mut merged = b.merge(a);
        merged.settle();
        assert_eq!(crossings(&merged), expected);
    }

    /// Flows and pairs counted through the table (which remembers the
    /// last flow and pairs of each partition) equal a plain count, with
    /// flows of one address pair and both directions interleaved.
    #[test]
    fn interleaved_flows_and_pairs_are_counted_as_a_plain_count_would() {
        use std::collections::HashMap;
        let (a, b, c) = (
            Ipv4Addr::new(10, 42, 0, 5),
            Ipv4Addr::new(1, 1, 1, 1),
            Ipv4Addr::new(10, 50, 10, 21),
        );
        // Endpoints (address, port) of a few conversations.
        let conversations = [
            ((a, 40000), (b, 53)),
            ((a, 40001), (b, 53)),
            ((b, 53), (a, 40002)),
            ((c, 443), (a, 40000)),
            ((a, 40000), (c, 443)),
        ];
        let mut table = FlowTable::default();
        let (mut pairs, mut flows) = (HashMap::new(), HashMap::new());
        let mut state = 7u32;
        for _ in 0..2_000 {
            // A small xorshift: runs of one conversation and switches.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let (from, to) = conversations[(state % 5) as usize];
            let (from, to) = if state & 32 == 0 {
                (from, to)
            } else {
                (to, from)
            };
            table.observe(&udp(0, from, to));
            *pairs.entry((from.0, to.0)).or_insert(0u64) += 1;
            *flows.entry((from, to)).or_insert(0u64) += 1;
        }
        table.settle();
        assert_eq!(table.pairs.len(), pairs.len());
        for ((src, dst), packets) in &pairs {
            let key = (IpAddr::V4(*src), IpAddr::V4(*dst));
            assert_eq!(table.pairs.get(&key).map(|p| p.packets), Some(*packets));
        }
        assert_eq!(table.flows.len() * 2, flows.len());
        for (key, flow) in table.flows.iter() {
            let endpoint = |e: crate::flow::Endpoint| match e.addr {
                IpAddr::V4(addr) => (addr, e.port),
                IpAddr::V6(_) => unreachable!("IPv4 only"),
            };
            let (lo, hi) = (endpoint(key.lo), endpoint(key.hi));
            assert_eq!(flow.sides[0].packets, flows[&(lo, hi)]);
            assert_eq!(flow.sides[1].packets, flows[&(hi, lo)]);
        }
    }
}
