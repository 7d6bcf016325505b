//! The DNS log: every DNS message read off the capture, filed under its
//! query key (client, client port, server, id) a partition at a time, TCP
//! streams gathered until the end and reassembled then. Judging the keys
//! is `super`'s job.

use crate::capture::Record;
use crate::decode::dns::DnsMessage;
use crate::decode::tcp_stream::{for_each_message, reassemble_some, Segment};
use crate::decode::{tcp_flags, Packet, Transport};
use crate::flow::evict_idle;
use crate::flow::{
    merge_maps, partition_of, Endpoint, Partition, Partitioned, PartitionedMap, PARTITIONS,
};
use crate::time::Timestamp;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use smallvec::SmallVec;
use std::sync::Arc;

/// A query and its responses share this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DnsKey {
    pub client: Endpoint,
    pub server: Endpoint,
    pub id: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    Udp,
    Tcp,
}

/// A question name, shared by every message that asks it: `DnsLog`
/// interns names, since a storm asks a few names a million times.
pub type Name = Arc<str>;

/// One DNS message as seen on the wire (owned: it outlives its chunk).
/// Kept small: a capture's every query key holds two of these until the
/// end.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) ts: Timestamp,
    /// File order (see `file_order`).
    pub(super) order: u64,
    /// The question's name; `qtype` is its type.
    pub(super) name: Option<Name>,
    pub(super) qtype: u16,
    pub(super) response: bool,
    pub(super) rcode: u8,
    pub(super) transport: DnsTransport,
}

/// A message's place in the file as one number: the record's position in
/// the high 48 bits (256 TiB), the message's index among those a TCP
/// record completes in the low 16 (saturating: 65 535 DNS messages of at
/// least 14 bytes fill more than any record's snap length).
fn file_order(record: u64, within: u32) -> u64 {
    (record << 16) | u64::from(within.min(u32::from(u16::MAX)))
}

impl Partitioned for DnsKey {
    /// With the flows between the same two addresses.
    fn partition(&self) -> usize {
        partition_of(&self.client.addr, &self.server.addr)
    }
}

// Two messages (a query and its response) in 40 bytes each: the size
// that keeps a key at about 150 bytes.
const _: () = assert!(std::mem::size_of::<Message>() <= 40);

/// The messages of one key: most keys are a query and its response, held
/// in place rather than in an allocation of their own.
pub(super) type Messages = SmallVec<[Message; 2]>;

/// Messages read but not filed under their keys yet: per run of records,
/// a list per partition (like the flow table's events).
type Pending = Vec<Vec<(DnsKey, Message)>>;

/// Per-chunk DNS state: messages by key, and TCP segments by direction.
#[derive(Debug, Clone, Default)]
pub struct DnsLog {
    /// Partitioned like the flow table: the map grows (and is judged) a
    /// partition at a time, so neither a resize nor `find` holds a second
    /// copy of all of it.
    messages: PartitionedMap<DnsKey, Messages>,
    /// Reading a message only queues it; `settle` files each partition's
    /// queue on its own worker. Filing per chunk and merging the chunks'
    /// maps looked every key up twice, on one thread.
    pending: Vec<Pending>,
    tcp: FxHashMap<(Endpoint, Endpoint), Vec<Segment>>,
    /// Every question name the messages hold, once.
    names: FxHashSet<Name>,
    /// Where a question's name is read before it is looked up in `names`.
    scratch: String,
    /// The names of questions seen lately, by their wire bytes: a storm
    /// asks a few names over and over, and looking the bytes up is a
    /// third of the cost of decoding them and looking the text up.
    seen_names: FxHashMap<Box<[u8]>, Option<Name>>,
    /// Query keys `--max-flows` evicted, judged then (`evict_idle`).
    pub(super) retired: super::Judged,
    /// What the bounds left out: messages past a key's cap, TCP bytes
    /// that could not be reassembled.
    pub capped: DnsCapped,
}

/// What `DnsLog`'s bounds left out, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DnsCapped {
    /// Messages of a query key past the first `MESSAGES_PER_KEY` (in time
    /// order): not kept, so not judged.
    pub messages: u64,
    /// TCP payload bytes set aside unreassembled: the rest of a stream
    /// after bytes that do not frame a DNS message, or a gap.
    pub tcp_bytes: u64,
}

impl DnsCapped {
    fn add(&mut self, other: DnsCapped) {
        self.messages += other.messages;
        self.tcp_bytes += other.tcp_bytes;
    }
}

/// Messages one query key keeps: a query, its retransmissions and
/// responses are a handful; a crafted capture repeats one query millions
/// of times. The earliest are kept (see `trim`).
pub const MESSAGES_PER_KEY: usize = 16;

/// Payload bytes one direction of a TCP DNS stream holds before the
/// messages it completes are filed (see `DnsLog::flush_streams`), and
/// bytes all streams hold before every one is.
const STREAM_BYTES: usize = 1 << 20;
const ALL_STREAMS_BYTES: usize = 64 << 20;
/// Bytes a direction may hold in part of the capture before it is filed
/// even though that part may begin inside a message (see `flush_streams`):
/// the splitter then finds the first whole message.
const PART_STREAM_BYTES: usize = 64 << 20;

/// Cuts `messages` down to the `MESSAGES_PER_KEY` earliest (by time, then
/// file order) if it holds more; returns how many went. The kept ones are
/// the earliest of the key's every message however they were split between
/// workers and windows (an earliest one is the earliest of every part it
/// was in), so the result does not depend on threads.
fn trim(messages: &mut Messages) -> u64 {
    if messages.len() <= MESSAGES_PER_KEY {
        return 0;
    }
    crate::ops::step(messages.len());
    messages.sort_by_key(|m| (m.ts, m.order));
    let dropped = messages.len() - MESSAGES_PER_KEY;
    messages.truncate(MESSAGES_PER_KEY);
    dropped as u64
}

/// Files `message` under its key's `messages`, keeping the earliest
/// `MESSAGES_PER_KEY`: a full list is kept sorted, so a later message (the
/// usual case) is counted and dropped at the cost of one comparison.
/// Returns how many messages went.
fn file(messages: &mut Messages, message: Message) -> u64 {
    let when = |m: &Message| (m.ts, m.order);
    crate::ops::step(1);
    let mut dropped = trim(messages);
    if messages.len() < MESSAGES_PER_KEY {
        messages.push(message);
        if messages.len() == MESSAGES_PER_KEY {
            messages.sort_by_key(when);
        }
        return dropped;
    }
    dropped += 1;
    if messages
        .last()
        .is_some_and(|last| when(&message) < when(last))
    {
        let at = messages.partition_point(|m| when(m) <= when(&message));
        crate::ops::step(messages.len() - at);
        messages.insert(at, message);
        messages.pop();
    }
    dropped
}

/// Questions `DnsLog::seen_names` remembers before it starts over: a
/// storm of random names must not grow it without bound.
const SEEN_NAMES: usize = 1 << 14;

fn endpoints(packet: &Packet<'_>, src_port: u16, dst_port: u16) -> Option<(Endpoint, Endpoint)> {
    let ip = packet.ip?;
    Some((
        Endpoint {
            addr: ip.src,
            port: src_port,
        },
        Endpoint {
            addr: ip.dst,
            port: dst_port,
        },
    ))
}

impl DnsLog {
    pub fn observe(&mut self, record: &Record<'_>, packet: &Packet<'_>, ports: &[u16]) {
        // Not `contains`: for a list of one or two ports its call costs
        // more than the loop inlined here, on every packet.
        let on_port = |a: u16, b: u16| ports.iter().any(|&p| p == a || p == b);
        match packet.transport {
            Transport::Udp(udp) if on_port(udp.src_port, udp.dst_port) => {
                let Some((from, to)) = endpoints(packet, udp.src_port, udp.dst_port) else {
                    return;
                };
                if let Some(message) = DnsMessage::parse(udp.payload) {
                    self.add(
                        from,
                        to,
                        &message,
                        record.ts,
                        (record.position, 0),
                        DnsTransport::Udp,
                    );
                }
            }
            Transport::Tcp(tcp)
                if on_port(tcp.src_port, tcp.dst_port)
                    && (!tcp.payload.is_empty() || tcp.has(tcp_flags::SYN)) =>
            {
                let Some(direction) = endpoints(packet, tcp.src_port, tcp.dst_port) else {
                    return;
                };
                // A SYN marks where the direction's first message begins.
                let syn = tcp.has(tcp_flags::SYN);
                self.tcp.entry(direction).or_default().push(Segment {
                    starts_message: syn,
                    seq: tcp.seq.wrapping_add(u32::from(syn)),
                    record: record.position,
                    ts: record.ts,
                    payload: if syn {
                        Vec::new()
                    } else {
                        tcp.payload.to_vec()
                    },
                });
            }
            _ => {}
        }
    }

    fn add(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        message: &DnsMessage<'_>,
        ts: Timestamp,
        order: (u64, u32),
        transport: DnsTransport,
    ) {
        let response = message.is_response();
        let (client, server) = if response { (to, from) } else { (from, to) };
        let key = DnsKey {
            client,
            server,
            id: message.id(),
        };
        let (name, qtype) = self.question(message);
        let message = Message {
            ts,
            order: file_order(order.0, order.1),
            name,
            qtype,
            response,
            rcode: message.rcode(),
            transport,
        };
        if self.pending.is_empty() {
            self.pending.push(vec![Vec::new(); PARTITIONS]);
        }
        if let Some(lists) = self.pending.last_mut() {
            lists[key.partition()].push((key, message));
        }
    }

    /// The interned name and the type of `message`'s question, if it has
    /// a readable one (`DnsMessage::question`).
    fn question(&mut self, message: &DnsMessage<'_>) -> (Option<Name>, u16) {
        let wire = message.question_wire();
        if let Some((bytes, qtype)) = wire {
            if let Some(name) = self.seen_names.get(bytes) {
                return (name.clone(), qtype);
            }
        }
        let qtype = message.question_into(&mut self.scratch);
        let name = qtype.map(|_| intern(&mut self.names, &self.scratch));
        if let Some((bytes, _)) = wire {
            if self.seen_names.len() == SEEN_NAMES {
                self.seen_names.clear();
            }
            self.seen_names.insert(bytes.into(), name.clone());
        }
        (name, qtype.unwrap_or(0))
    }

    /// Associative and commutative: a key's messages are a set, ordered
    /// by `find`.
    pub fn merge(mut self, mut other: DnsLog) -> DnsLog {
        if self.messages.len() + self.tcp.len() < other.messages.len() + other.tcp.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.messages.merge(other.messages, Messages::extend);
        self.pending.append(&mut other.pending);
        merge_maps(&mut self.tcp, other.tcp, Vec::extend);
        self.names.extend(other.names);
        self.retired = std::mem::take(&mut self.retired).merge(other.retired);
        self.capped.add(other.capped);
        self
    }

    /// Files the queued messages under their keys, each partition on its
    /// own worker.
    /// Files the queued messages; with `whole` (a log of everything read
    /// so far), files the messages of any TCP stream that holds many bytes.
    pub fn settle(&mut self, whole: bool) {
        self.flush_streams(whole);
        if self.pending.is_empty() {
            return;
        }
        let mut by_partition: Vec<Vec<Vec<(DnsKey, Message)>>> =
            (0..PARTITIONS).map(|_| Vec::new()).collect();
        for lists in std::mem::take(&mut self.pending) {
            for (queue, list) in by_partition.iter_mut().zip(lists) {
                if !list.is_empty() {
                    queue.push(list);
                }
            }
        }
        let dropped: u64 = (self.messages.partitions_mut().par_iter_mut())
            .zip(by_partition)
            .map(|(partition, lists)| {
                let mut dropped = 0;
                for (key, message) in lists.into_iter().flatten() {
                    dropped += file(partition.get_or_insert_with(key, Default::default), message);
                }
                dropped
            })
            .sum();
        self.capped.messages += dropped;
    }

    /// Files the messages of TCP streams that hold many bytes (or of all
    /// streams, when together they do), keeping of each only what follows
    /// its last whole message. Called when the state settles, when every
    /// segment before the window's end is here, so a message is never cut
    /// by a flush: a stream's memory is bounded by `STREAM_BYTES` and one
    /// message, however long the connection lasts.
    fn flush_streams(&mut self, whole: bool) {
        let held =
            |segments: &Vec<Segment>| segments.iter().map(|s| s.payload.len()).sum::<usize>();
        let all: usize = self.tcp.values().map(held).sum();
        if all == 0 {
            return;
        }
        let every = all > ALL_STREAMS_BYTES;
        // A part of the capture (one window's or segment's log) may hold a
        // stream from the middle of a message: only one seen from where a
        // message begins is filed there, unless it holds very many bytes.
        let begins = |segments: &Vec<Segment>| {
            (segments.iter().min_by_key(|s| s.record)).is_some_and(|s| s.starts_message)
        };
        let full: Vec<(Endpoint, Endpoint)> = (self.tcp.iter())
            .filter(|(_, segments)| {
                let over = every || held(segments) > STREAM_BYTES;
                over && (whole || begins(segments) || held(segments) > PART_STREAM_BYTES)
            })
            .map(|(direction, _)| *direction)
            .collect();
        for direction in full {
            let Some(segments) = self.tcp.remove(&direction) else {
                continue;
            };
            let (from, to) = direction;
            let rest = reassemble_some(&segments, |message, ts, order| {
                self.add(from, to, message, ts, order, DnsTransport::Tcp)
            });
            drop(segments);
            self.capped.tcp_bytes += rest.set_aside;
            if let Some(tail) = rest.tail {
                self.tcp.insert(direction, vec![tail]);
            }
        }
    }

    /// Evicts the query keys idle longest until `keep` remain (TCP
    /// streams too, reassembled first) and judges them at `now`, the
    /// latest record read: a query older than `timeout` then is timed
    /// out. Returns how many keys went.
    pub fn evict_idle(&mut self, keep: usize, now: Option<Timestamp>, timeout: u64) -> u64 {
        let newest = |ts: &mut dyn Iterator<Item = Timestamp>| ts.max().unwrap_or_default();
        let streams = evict_idle(&mut self.tcp, keep, |v| newest(&mut v.iter().map(|s| s.ts)));
        for ((from, to), segments) in streams {
            self.add_stream(from, to, &segments);
        }
        self.settle(false);
        let mut victims =
            (self.messages).evict_idle(keep, |v| newest(&mut v.iter().map(|m| m.ts)), |_, _| false);
        for (_, messages) in victims.iter_mut().flatten() {
            self.capped.messages += trim(messages);
        }
        let evicted = victims.iter().map(Vec::len).sum::<usize>() as u64;
        self.retired.retire(victims, now, timeout);
        // Names only the evicted messages asked.
        self.names.retain(|name| Arc::strong_count(name) > 1);
        evicted
    }

    /// Query keys judged at eviction, and how many of them were too young
    /// to judge then.
    pub fn retired(&self) -> (u64, u64) {
        let c = &self.retired.counts;
        (c.query_keys, c.inconclusive)
    }

    /// The DNS messages of one direction's TCP segments, queued.
    fn add_stream(&mut self, from: Endpoint, to: Endpoint, segments: &[Segment]) {
        for_each_message(segments, |message, ts, order| {
            self.add(from, to, message, ts, order, DnsTransport::Tcp)
        });
    }

    pub fn keys(&self) -> usize {
        self.messages.len() + self.tcp.len()
    }

    /// All messages by key, TCP streams reassembled, a partition of keys
    /// at a time, in no particular order (each key's messages neither).
    pub(super) fn into_partitions(mut self) -> (Vec<Partition<DnsKey, Messages>>, DnsCapped) {
        for ((from, to), segments) in std::mem::take(&mut self.tcp) {
            self.add_stream(from, to, &segments);
        }
        self.settle(true);
        let mut partitions = self.messages.into_partitions();
        let dropped: u64 = (partitions.par_iter_mut())
            .map(|partition| {
                let mut dropped = 0;
                for (_, messages) in partition.iter_mut() {
                    dropped += trim(messages);
                }
                dropped
            })
            .sum();
        let mut capped = self.capped;
        capped.messages += dropped;
        (partitions, capped)
    }
}

/// The shared copy of `name`, added to `names` if new.
fn intern(names: &mut FxHashSet<Name>, name: &str) -> Name {
    if let Some(known) = names.get(name) {
        return known.clone();
    }
    let name = Name::from(name);
    names.insert(name.clone());
    name
}
