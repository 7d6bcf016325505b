//! Applying a partition's queued events to its flows and address pairs,
//! in file order.
//!
//! On a busy node's capture consecutive events rarely share a flow, and
//! a lookup that waits on memory for the index slot, then the entry, then
//! the address pair's entry, costs three misses in a row. So each event
//! goes through stages a few events apart, each starting to load what the
//! next one reads:
//! 1. its key is hashed and its flow's slot prefetched;
//! 2. the slot is read and the flow's entry it names prefetched;
//! 3. the entry is read for where the event's address pair is, and that
//!    pair's entry prefetched; if the flow does not know (its first packet
//!    each way, and packets without a flow), the pair is hashed and its
//!    slot prefetched;
//! 4. that slot is read and the pair's entry prefetched;
//!
//! then the event is applied, its lines in cache by then. The stages only
//! read and hint: whatever the prefetches guessed, the event is applied by
//! key.

use super::dense::{hash_of, Query};
use super::event::{Batch, FlowEvent};
use super::key::{Direction, FlowKey, KeyOf};
use super::map::Partition;
use super::stats::{Flow, PairStats};
use crate::decode::tcp_flags;
use std::net::IpAddr;

/// Events between one stage and the next.
const STAGE: usize = 4;

/// Stages before an event is applied.
const STAGES: usize = 4;

/// Events in flight: a power of two above the stages ahead of the event
/// applied.
const RING: usize = 32;

const _: () = assert!(RING.is_power_of_two() && RING > STAGES * STAGE);

/// An event on its way through the stages.
#[derive(Clone, Copy)]
struct Upcoming<'a> {
    event: &'a FlowEvent,
    batch: &'a Batch,
    key: Option<(KeyOf<'a>, Direction)>,
    /// The hash of the key (0 without one).
    hash: u64,
    /// Where the flow probably is, if it was there when looked ahead.
    hint: Option<usize>,
    /// The hash of the address pair, if the flow did not know where the
    /// pair is when looked ahead.
    pair_hash: Option<u64>,
}

impl<'a> Upcoming<'a> {
    fn of(event: &'a FlowEvent, batch: &'a Batch) -> Self {
        let key = event.key();
        Upcoming {
            event,
            batch,
            key,
            hash: key.map_or(0, |(key, _)| hash_of(&key)),
            hint: None,
            pair_hash: None,
        }
    }

    fn pair(&self) -> (IpAddr, IpAddr) {
        (self.event.src.addr, self.event.dst.addr)
    }
}

/// Applies `count` events, `events`, in file order, to one partition's
/// flows and pairs.
pub(super) fn apply_partition<'a>(
    flows: &mut Partition<FlowKey, Flow>,
    pairs: &mut Partition<(IpAddr, IpAddr), PairStats>,
    mut events: impl Iterator<Item = (&'a FlowEvent, &'a Batch)> + Clone,
    count: usize,
) {
    // Events were written a while ago, by the reading of a whole window:
    // read ahead of the first stage, they are in cache when it comes.
    let mut scout = events.clone().skip(STAGE);
    let Some((first, first_batch)) = events.clone().next() else {
        return;
    };
    // Each slot is written before it is read: the first event fills them
    // all, so that the ring is an array indexed without bounds checks.
    let mut ring = [Upcoming::of(first, first_batch); RING];
    let mut recent = RecentPairs::default();
    // The event at `next` enters stage 1; the one `STAGE` before it,
    // stage 2; and so on.
    let in_stage = |next: usize, stage: usize| {
        (next.checked_sub((stage - 1) * STAGE)).filter(|&at| at < count)
    };
    for next in 0..count + STAGES * STAGE {
        if let Some((event, _)) = scout.next() {
            crate::prefetch::lines_of(event);
        }
        if next < count {
            let Some((event, batch)) = events.next() else {
                debug_assert!(false, "fewer events than counted");
                return;
            };
            let upcoming = Upcoming::of(event, batch);
            if upcoming.key.is_some() {
                flows.prefetch_slot(upcoming.hash);
            }
            ring[next % RING] = upcoming;
        }
        if let Some(at) = in_stage(next, 2) {
            let upcoming = &mut ring[at % RING];
            if upcoming.key.is_some() {
                upcoming.hint = flows.hint(upcoming.hash);
                if let Some(index) = upcoming.hint {
                    flows.prefetch_entry(index);
                }
            }
        }
        if let Some(at) = in_stage(next, 3) {
            let upcoming = &mut ring[at % RING];
            let known = match (upcoming.hint, upcoming.key) {
                (Some(index), Some((_, direction))) => flows[index].pair_slots.get(direction),
                _ => None,
            };
            match known {
                Some(pair) => pairs.prefetch_entry(pair),
                None if !upcoming.event.duplicate => {
                    let hash = hash_of(&upcoming.pair());
                    pairs.prefetch_slot(hash);
                    upcoming.pair_hash = Some(hash);
                }
                None => {}
            }
        }
        if let Some(at) = in_stage(next, 4) {
            if let Some(hash) = ring[at % RING].pair_hash {
                if let Some(index) = pairs.hint(hash) {
                    pairs.prefetch_entry(index);
                }
            }
        }
        if let Some(at) = next.checked_sub(STAGES * STAGE) {
            apply(flows, pairs, &mut recent, &ring[at % RING]);
        }
    }
}

/// Where a partition's latest address pairs sit in its map: a
/// conversation's two directions. A flow's own pair slots find its pairs;
/// these find those of a flow's first packet in each direction, and of
/// packets without a flow, which mostly belong to a conversation of the
/// packets before. Entries are only appended while events are applied, so
/// an index stays valid.
#[derive(Default)]
struct RecentPairs([Option<((IpAddr, IpAddr), usize)>; 2]);

impl RecentPairs {
    /// The index of `key` in `pairs`, inserting `first()` if it is not
    /// there, and whether it was just inserted.
    fn index(
        &mut self,
        pairs: &mut Partition<(IpAddr, IpAddr), PairStats>,
        key: (IpAddr, IpAddr),
        hash: Option<u64>,
        first: impl FnOnce() -> PairStats,
    ) -> (usize, bool) {
        if let Some((_, at)) = self.0.iter().flatten().find(|(last, _)| *last == key) {
            return (*at, false);
        }
        let hash = hash.unwrap_or_else(|| hash_of(&key));
        let (at, created) = pairs.find_or_insert(hash, key, first);
        self.0.rotate_left(1);
        self.0[1] = Some((key, at));
        (at, created)
    }
}

/// Counts `upcoming`'s event in its address pair: at `hint` if the pair
/// is still there, else found (or added) by key. Returns where it is.
#[inline(always)]
fn apply_pair(
    pairs: &mut Partition<(IpAddr, IpAddr), PairStats>,
    recent: &mut RecentPairs,
    upcoming: &Upcoming<'_>,
    hint: Option<usize>,
) -> usize {
    let event = upcoming.event;
    if let Some(at) = hint {
        if let Some(((src, dst), stats)) = pairs.get_index_mut(at) {
            // Compared in place: a pair built for it is 34 bytes of copies.
            if *src == event.src.addr && *dst == event.dst.addr {
                stats.merge(&event.pair());
                return at;
            }
        }
    }
    let key = upcoming.pair();
    let (at, created) = recent.index(pairs, key, upcoming.pair_hash, || event.pair());
    if !created {
        pairs[at].merge(&event.pair());
    }
    at
}

/// Updates a partition's flow and pair with one event. One partition sees
/// its events in file order, so the event that creates a flow is its first;
/// only `merge` has to compare.
fn apply(
    flows: &mut Partition<FlowKey, Flow>,
    pairs: &mut Partition<(IpAddr, IpAddr), PairStats>,
    recent: &mut RecentPairs,
    upcoming: &Upcoming<'_>,
) {
    let Upcoming {
        event,
        batch,
        key,
        hash,
        hint,
        ..
    } = *upcoming;
    let Some((key, direction)) = key else {
        if !event.duplicate {
            apply_pair(pairs, recent, upcoming, None);
        }
        return;
    };
    let at = match hint {
        Some(at) if flows.get_index(at).is_some_and(|(held, _)| key.is(held)) => at,
        _ => {
            let first = || Flow::first(event, direction);
            flows.find_or_insert(hash, key, first).0
        }
    };
    let flow = &mut flows[at];
    if !event.duplicate {
        let hint = flow.pair_slots.get(direction);
        let slot = apply_pair(pairs, recent, upcoming, hint);
        flow.pair_slots.set(direction, slot);
    }
    flow.first_ts = flow.first_ts.min(event.ts);
    flow.last_ts = flow.last_ts.max(event.ts);
    flow.cross(event, batch, direction);
    if event.duplicate {
        return;
    }
    let side = &mut flow.sides[direction.index()];
    side.packets += 1;
    side.bytes += u64::from(event.orig_len);
    if let Some(flags) = event.tcp_flags {
        let has = |flag| flags & flag != 0;
        let (syn, ack) = (has(tcp_flags::SYN), has(tcp_flags::ACK));
        if syn && !ack {
            side.syn += 1;
            side.first_syn_record = side.first_syn_record.min(event.position);
            side.last_syn_ts = side.last_syn_ts.max(event.ts);
        }
        side.syn_ack += (syn && ack) as u32;
        side.ack += (ack && !syn) as u32;
        side.rst += has(tcp_flags::RST) as u32;
        side.fin += has(tcp_flags::FIN) as u32;
    }
}
