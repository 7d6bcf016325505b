//! What the flow table takes from one record, copied out of the mapped
//! bytes while the chunk is read. Events wait in per-partition lists until
//! the partition's worker applies them in file order
//! (`FlowTable::apply_pending`).

use super::key::{ports, Direction, Endpoint, FlowKey};
use super::map::{partition_of, PARTITIONS};
use super::table::{Flow, PairStats, Protocols};
use crate::decode::{IpHeader, Packet, Transport, Tunnel};
use crate::interface::Via;
use crate::pipeline::Seen;
use crate::time::Timestamp;

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
    pub via: Via,
    /// See `Flow::fingerprint`.
    pub fingerprint: u64,
    /// The packet's tunnel, as an index into its batch's `tunnels`
    /// (`NO_TUNNEL` without one): most packets have none.
    pub tunnel: u32,
}

pub const NO_TUNNEL: u32 = u32::MAX;

/// The events of a run of records, in file order, each in the list of
/// its partition.
#[derive(Debug, Clone)]
pub struct Batch {
    pub lists: Vec<Vec<FlowEvent>>,
    pub tunnels: Vec<Tunnel>,
}

/// Events a list makes room for at its first: a 4 MiB chunk of 450-byte
/// frames puts about 36 in each list, of 70-byte frames about 230; growing
/// from one cost 5% of the run in reallocation. Not before: a run of a few
/// records (tiny chunks, small captures) touches few lists.
const LIST_CAPACITY: usize = 64;

impl Default for Batch {
    fn default() -> Self {
        Batch {
            lists: vec![Vec::new(); PARTITIONS],
            tunnels: Vec::new(),
        }
    }
}

impl Batch {
    /// Queues the event of `seen`, if it is an IP packet. The list's room
    /// is made before the event is built, so that it is written straight
    /// into the list (built first, it went through the stack and was read
    /// back with wide loads before its narrow stores had landed).
    pub fn push(&mut self, seen: &Seen<'_>) {
        let Some(ip) = seen.packet.ip else {
            return;
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
        list.push(FlowEvent::of(seen, ip, tunnel));
    }

    pub fn tunnel(&self, event: &FlowEvent) -> Option<&Tunnel> {
        self.tunnels.get(event.tunnel as usize)
    }
}

impl FlowEvent {
    /// The event of a packet whose IP header is `ip`, in `tunnel` (an
    /// index into its batch's `tunnels`, or `NO_TUNNEL`).
    #[inline(always)]
    fn of(seen: &Seen<'_>, ip: IpHeader, tunnel: u32) -> FlowEvent {
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
            via: seen.via,
            fingerprint: if ports.is_some() {
                fingerprint(packet)
            } else {
                0
            },
            tunnel,
        }
    }

    /// The flow's key and the packet's direction, if it has a flow.
    pub fn key(&self) -> Option<(FlowKey, Direction)> {
        self.keyed
            .then(|| FlowKey::between(self.protocol, self.src, self.dst))
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
    pub(super) fn first(event: &FlowEvent, direction: Direction) -> Flow {
        Flow {
            sides: Default::default(),
            first_ts: event.ts,
            last_ts: event.ts,
            first_record: event.position,
            first_direction: direction,
            crossings: Default::default(),
            fingerprint: event.fingerprint,
        }
    }
}
