//! The flow table of one chunk (or of many, once merged). Every field is a
//! count, a minimum or a maximum, so `merge` is associative and commutative:
//! the merged table does not depend on how the capture was chunked.

use super::apply::apply_partition;
use super::dense::DenseMap;
use super::event::Batch;
use super::key::FlowKey;
use super::map::PartitionedMap;
use super::stats::{min_option, Flow, PairStats};
use crate::decode::Problem;
use crate::interface::Via;
use crate::observe::{Seen, Settle};
use crate::time::{Histogram, Timestamp};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Whole-capture counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets: u64,
    /// Bytes as captured (after snaplen) and as they were on the wire.
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    pub ip_packets: u64,
    pub tunneled_packets: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Frames without IP, by ethertype.
    pub non_ip: BTreeMap<u16, u64>,
    /// Frames whose decoding stopped early, by layer and reason.
    pub problems: BTreeMap<Problem, u64>,
    /// Records per interface, copies included, ordered by `Via`. A map, not
    /// a sorted list: a crafted capture has a new interface per record.
    pub per_interface: BTreeMap<Via, u64>,
    /// Copies of a packet already seen on another interface (`-i any`).
    pub duplicates: u64,
    /// Records by second, for the timeline (`packets_by_second`).
    seconds: SecondCounter,
}

/// A histogram by second whose current second's count is kept apart,
/// since most records fall in the second of the one before. Two are equal
/// when their counts are, however they were split.
#[derive(Debug, Clone, Default)]
struct SecondCounter {
    done: Histogram,
    second: u64,
    in_second: u64,
}

impl SecondCounter {
    #[inline]
    fn count(&mut self, ts: Timestamp) {
        let second = ts.0 / 1_000_000_000;
        if second != self.second && self.in_second > 0 {
            self.done
                .add_second(self.second, std::mem::take(&mut self.in_second));
        }
        self.second = second;
        self.in_second += 1;
    }

    fn histogram(&self) -> Histogram {
        let mut all = self.done.clone();
        if self.in_second > 0 {
            all.add_second(self.second, self.in_second);
        }
        all
    }

    fn merge(&mut self, other: &SecondCounter) {
        let mut all = std::mem::take(self).histogram();
        all.merge(other.histogram());
        self.done = all;
    }
}

impl PartialEq for SecondCounter {
    fn eq(&self, other: &Self) -> bool {
        self.histogram() == other.histogram()
    }
}

impl Eq for SecondCounter {}

impl Summary {
    /// Records per capture interface (its `-i any` devices together).
    pub fn packets_per_interface(&self) -> BTreeMap<u32, u64> {
        let mut packets = BTreeMap::new();
        for (via, n) in &self.per_interface {
            *packets.entry(via.interface).or_default() += n;
        }
        packets
    }

    /// Records by second.
    pub fn packets_by_second(&self) -> Histogram {
        self.seconds.histogram()
    }

    fn merge(&mut self, other: &Summary) {
        self.seconds.merge(&other.seconds);
        self.packets += other.packets;
        self.captured_bytes += other.captured_bytes;
        self.wire_bytes += other.wire_bytes;
        self.ip_packets += other.ip_packets;
        self.tunneled_packets += other.tunneled_packets;
        self.duplicates += other.duplicates;
        self.first_ts = min_option(self.first_ts, other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        add_counts(&mut self.non_ip, &other.non_ip);
        add_counts(&mut self.problems, &other.problems);
        add_counts(&mut self.per_interface, &other.per_interface);
    }
}

/// Folds `from` into `into`; `combine` merges the values of keys in both.
pub fn merge_maps<K: Eq + std::hash::Hash, V>(
    into: &mut FxHashMap<K, V>,
    from: FxHashMap<K, V>,
    combine: impl Fn(&mut V, V),
) {
    for (key, value) in from {
        match into.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => combine(e.get_mut(), value),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
}

fn add_counts<K: Ord + Copy>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(*k).or_default() += v;
    }
}

/// Flows, address pairs and totals of a run of records.
///
/// Reading a record only updates the totals and queues the record's
/// `FlowEvent` for its partition; `apply_pending` then updates each
/// partition's flows and pairs on its own worker, in file order.
#[derive(Debug, Clone, Default)]
pub struct FlowTable {
    pub summary: Summary,
    /// By innermost (source, destination).
    pub pairs: PairMap,
    /// The outermost (underlay) pairs of tunnelled packets.
    pub underlay_pairs: FxHashSet<(IpAddr, IpAddr)>,
    /// The underlay pair last added to `underlay_pairs`.
    last_underlay: Option<(IpAddr, IpAddr)>,
    pub flows: FlowMap,
    /// Events not applied yet: batches in file order, each a list per
    /// partition. All of them come after what `flows` and `pairs` hold.
    pending: Vec<Batch>,
    /// The interface of the latest records and how many in a row, not
    /// counted in `summary.per_interface` yet: most captures have one
    /// interface, and a map update per record was a tree search each.
    via_run: Option<(Via, u64)>,
    /// Finished runs not counted in `summary.per_interface` yet: in `-i
    /// any` captures the interface changes every few records (a pod's
    /// packet on its lxc device, then on the NIC). Hashed as the flows
    /// are (seeded), since a crafted capture chooses its interfaces. At
    /// most `MAX_VIA_RUNS` interfaces a window: past that (a crafted
    /// capture with a new one per record) the map would only add work,
    /// and runs go to the totals directly.
    via_runs: DenseMap<Via, u64>,
}

/// Interfaces whose runs `FlowTable::via_runs` holds in a window: a node's
/// devices, with room (`-i any` on a node of a thousand pods).
const MAX_VIA_RUNS: usize = 4096;

pub type FlowMap = PartitionedMap<FlowKey, Flow>;

/// What `FlowTable::evict_idle` took out: the flows, a list per
/// partition, and the address pairs.
pub type Evicted = (Vec<Vec<(FlowKey, Flow)>>, Vec<(IpAddr, IpAddr)>);

pub type PairMap = PartitionedMap<(IpAddr, IpAddr), PairStats>;

impl FlowTable {
    /// Evicts the flows and the address pairs idle longest until `keep`
    /// of each remain, sparing those `spare` names until no other is left;
    /// returns the evicted flows and how many pairs went with them.
    pub fn evict_idle(
        &mut self,
        keep: usize,
        spare: impl Fn(IpAddr, IpAddr) -> bool + Sync,
    ) -> Evicted {
        self.apply_pending();
        let flows =
            (self.flows).evict_idle(keep, |f| f.last_ts, |k, _| spare(k.lo.addr, k.hi.addr));
        let pairs = (self.pairs).evict_idle(keep, |p| p.last_ts, |&(a, b), _| spare(a, b));
        let pairs = pairs.into_iter().flatten().map(|(pair, _)| pair).collect();
        (flows, pairs)
    }

    /// Accounts one decoded record: the totals now, its flow and pair by
    /// `apply_pending`. A copy of a packet already counted only adds its
    /// interface to the flow's crossings.
    pub fn observe(&mut self, seen: &Seen<'_>) {
        let (record, packet) = (&seen.record, &seen.packet);
        let s = &mut self.summary;
        s.packets += 1;
        s.seconds.count(record.ts);
        s.captured_bytes += record.data.len() as u64;
        s.wire_bytes += record.orig_len as u64;
        if !packet.problem.is_some_and(|p| p.unreadable()) {
            s.first_ts = min_option(s.first_ts, Some(record.ts));
            s.last_ts = s.last_ts.max(Some(record.ts));
        }
        crate::ops::step(1);
        match &mut self.via_run {
            Some((via, count)) if *via == seen.via => *count += 1,
            run => {
                if let Some((via, count)) = run.replace((seen.via, 1)) {
                    if self.via_runs.len() < MAX_VIA_RUNS {
                        *self.via_runs.get_or_insert_with(via, || 0) += count;
                    } else {
                        *s.per_interface.entry(via).or_default() += count;
                    }
                }
            }
        }
        if seen.duplicate {
            s.duplicates += 1;
        } else {
            if let Some(problem) = packet.problem {
                *s.problems.entry(problem).or_default() += 1;
            }
            if let Some(ethertype) = packet.non_ip_ethertype {
                *s.non_ip.entry(ethertype).or_default() += 1;
            }
            if packet.ip.is_some() {
                s.ip_packets += 1;
                if packet.tunnel.is_some() {
                    s.tunneled_packets += 1;
                    // Tunnels run between few nodes: most packets come
                    // through the pair of the one before.
                    if let Some(outer) = packet.outer {
                        if self.last_underlay != Some(outer) {
                            self.underlay_pairs.insert(outer);
                            self.last_underlay = Some(outer);
                        }
                    }
                }
            }
        }
        if !self
            .pending
            .last_mut()
            .is_some_and(|batch| batch.push(seen))
        {
            let mut batch = Batch::default();
            let pushed = batch.push(seen);
            debug_assert!(pushed, "a new batch has room");
            self.pending.push(batch);
        }
    }

    /// Applies the queued events, each partition on its own worker (of
    /// the current rayon pool), in file order within the partition.
    pub fn apply_pending(&mut self) {
        self.count_via_run();
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        self.flows
            .partitions_mut()
            .par_iter_mut()
            .zip(self.pairs.partitions_mut().par_iter_mut())
            .enumerate()
            .for_each(|(partition, (flows, pairs))| {
                let events = (pending.iter())
                    .flat_map(|batch| batch.lists[partition].iter().map(move |e| (e, batch)));
                let count = pending.iter().map(|b| b.lists[partition].len()).sum();
                apply_partition(flows, pairs, events, count);
            });
    }

    /// Counts the runs of records of one interface in the summary.
    fn count_via_run(&mut self) {
        let per_interface = &mut self.summary.per_interface;
        for (via, count) in std::mem::take(&mut self.via_runs) {
            *per_interface.entry(via).or_default() += count;
        }
        if let Some((via, count)) = self.via_run.take() {
            *per_interface.entry(via).or_default() += count;
        }
    }

    /// Distinct outermost (source, destination) pairs: the pairs of packets
    /// outside tunnels and the underlay pairs of those inside.
    pub fn outermost_pairs(&self) -> usize {
        let mut outer: FxHashSet<(IpAddr, IpAddr)> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.packets > p.tunneled)
            .map(|(pair, _)| *pair)
            .collect();
        outer.extend(self.underlay_pairs.iter().copied());
        outer.len()
    }

    /// Folds `other`, whose records all come after `self`'s, into `self`.
    /// Applied flows and pairs merge in any order (sums, minima, maxima),
    /// pending events are appended.
    pub fn merge(mut self, mut other: FlowTable) -> FlowTable {
        self.count_via_run();
        other.count_via_run();
        let other_applied = !other.flows.is_empty() || !other.pairs.is_empty();
        if !self.pending.is_empty() && other_applied {
            // Applied after `other`'s flows, `self`'s events would not be
            // taken for their flows' first packets.
            self.apply_pending();
        }
        self.summary.merge(&other.summary);
        self.pairs.merge(other.pairs, |p, other| p.merge(&other));
        self.underlay_pairs.extend(other.underlay_pairs);
        self.flows.merge(other.flows, |f, other| f.merge(&other));
        self.pending.append(&mut other.pending);
        self
    }
}

impl Settle for FlowTable {
    fn settle(&mut self) {
        self.apply_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Record;
    use crate::decode::{tcp_flags, Decoder};
    use crate::synth::frame::{ethernet, ip_packet, L4};
    use crate::time::Timestamp;

    /// TCP frames of a few interleaved conversations, both directions.
    fn frames() -> Vec<Vec<u8>> {
        let hosts = ["10.42.1.5", "1.1.1.1", "10.50.10.21", "fd00::5"];
        (0..300u32)
            .map(|i| {
                let (a, b) = match i % 5 {
                    0 | 1 => (hosts[0], hosts[1]),
                    2 => (hosts[1], hosts[0]),
                    3 => (hosts[2], hosts[1]),
                    _ => (hosts[3], "fd00::9"),
                };
                let client = 40000 + (i % 3) as u16;
                // The third of each five is the reply: its ports swapped.
                let (src_port, dst_port) = if i % 5 == 2 {
                    (443, client)
                } else {
                    (client, 443)
                };
                let l4 = L4::Tcp {
                    src_port,
                    dst_port,
                    flags: [tcp_flags::SYN, tcp_flags::ACK, tcp_flags::FIN][(i % 3) as usize],
                    seq: i,
                    ack: 0,
                    payload: &[],
                };
                ethernet(&ip_packet(a.parse().unwrap(), b.parse().unwrap(), &l4), &[])
            })
            .collect()
    }

    /// A table of `frames[range]`, with their positions in the whole list.
    fn table(frames: &[Vec<u8>], range: std::ops::Range<usize>) -> FlowTable {
        let decoder = Decoder::default();
        let mut table = FlowTable::default();
        for index in range {
            let frame = &frames[index];
            let seen = Seen {
                record: Record {
                    position: index as u64 * 100,
                    ts: Timestamp(index as u64 * 1_000_000),
                    interface: 0,
                    link_type: 1,
                    orig_len: frame.len() as u32,
                    data: frame,
                },
                packet: decoder.decode(1, frame),
                via: Via::new(0, None),
                duplicate: false,
            };
            table.observe(&seen);
        }
        table
    }

    /// Flows, pairs and totals of a settled table, sorted, for comparison.
    type Contents = (
        Vec<(FlowKey, Flow)>,
        Vec<((IpAddr, IpAddr), PairStats)>,
        Summary,
    );

    fn contents(mut table: FlowTable) -> Contents {
        table.settle();
        let mut flows: Vec<_> = table.flows.iter().map(|(k, f)| (*k, f.clone())).collect();
        flows.sort_by_key(|(k, _)| *k);
        let mut pairs: Vec<_> = table.pairs.iter().map(|(k, p)| (*k, p.clone())).collect();
        pairs.sort_by_key(|(k, _)| *k);
        (flows, pairs, table.summary)
    }

    #[test]
    fn merging_the_tables_of_parts_gives_the_table_of_the_whole() {
        let frames = frames();
        let whole = contents(table(&frames, 0..300));
        for split in [1, 77, 150, 299] {
            let (a, b) = (table(&frames, 0..split), table(&frames, split..300));
            assert_eq!(contents(a.merge(b)), whole, "split at {split}");
        }
        // Associative: three parts merged either way round.
        let parts = || {
            (
                table(&frames, 0..90),
                table(&frames, 90..200),
                table(&frames, 200..300),
            )
        };
        let (a, b, c) = parts();
        assert_eq!(contents(a.merge(b).merge(c)), whole);
        let (a, b, c) = parts();
        assert_eq!(contents(a.merge(b.merge(c))), whole);
    }

    #[test]
    fn a_flow_counts_both_directions_and_its_handshake() {
        let frames = frames();
        let (flows, pairs, summary) = contents(table(&frames, 0..300));
        assert_eq!(summary.packets, 300);
        assert_eq!(summary.ip_packets, 300);
        // 10.42.1.5 <-> 1.1.1.1 on three client ports: both directions fold
        // into one flow per port.
        let pod: IpAddr = "10.42.1.5".parse().unwrap();
        let pod_flows: Vec<&Flow> = (flows.iter())
            .filter(|(k, _)| k.lo.addr == pod || k.hi.addr == pod)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(pod_flows.len(), 3);
        let packets: u64 = pod_flows
            .iter()
            .map(|f| f.sides[0].packets + f.sides[1].packets)
            .sum();
        assert_eq!(packets, 180);
        // Pairs are one direction each.
        let to_pod = pairs
            .iter()
            .find(|((s, d), _)| *d == pod && s.to_string() == "1.1.1.1");
        assert_eq!(to_pod.map(|(_, p)| p.packets), Some(60));
    }

    #[test]
    fn evicting_keeps_the_flows_seen_last() {
        let frames = frames();
        let mut t = table(&frames, 0..300);
        let (flows, pairs) = t.evict_idle(2, |_, _| false);
        assert!(t.flows.len() <= 2 && t.pairs.len() <= 2);
        assert!(!flows.concat().is_empty() && !pairs.is_empty());
        let last = t.flows.iter().map(|(_, f)| f.last_ts).min().unwrap();
        assert!(last >= Timestamp(290 * 1_000_000), "{last:?}");
    }

    #[test]
    fn spared_entries_go_only_when_nothing_else_is_left() {
        let frames = frames();
        let pod: IpAddr = "10.42.1.5".parse().unwrap();
        let spare = |a: IpAddr, b: IpAddr| a == pod || b == pod;
        let mut t = table(&frames, 0..300);
        t.settle();
        let pod_flows = t
            .flows
            .iter()
            .filter(|(k, _)| spare(k.lo.addr, k.hi.addr))
            .count();
        assert!(pod_flows > 0 && pod_flows < t.flows.len());
        let (evicted, _) = t.evict_idle(pod_flows, spare);
        let evicted = evicted.concat();
        assert!(evicted.iter().all(|(k, _)| !spare(k.lo.addr, k.hi.addr)));
        assert_eq!(t.flows.len(), pod_flows);
        // Beyond the others, the spared ones go too, idlest first.
        let (evicted, _) = t.evict_idle(1, spare);
        assert_eq!(evicted.concat().len(), pod_flows - 1);
        assert_eq!(t.flows.len(), 1);
    }
}
