//! The parallel engine: runs of consecutive chunks -> per-worker state ->
//! associative merge. It knows nothing of what it folds: any state with an
//! `observe` function, an associative merge and `Settle` (see `observe`).
//! Runs on the current rayon pool (the CLI installs one sized by
//! `--threads`).
//!
//! Every record is decoded, attributed to the interface it was captured
//! on, optionally filtered by interface, and, in captures with several
//! interfaces, checked for being a copy of a packet already seen on
//! another interface (see `duplicates`).

mod duplicates;

pub use duplicates::signature;

use crate::capture::{
    progress, Capture, CaptureInfo, Chunk, Input, Interface, Layout, Record, Truncation, WalkEnd,
};
use crate::decode::{Decoder, Packet};
use crate::error::CaptureError;
use crate::interface::{DeviceKey, InterfaceNames, Via};
use crate::observe::{Seen, Settle};
use duplicates::{DuplicateWindow, WINDOW_RECORDS};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::ops::Range;

/// How records are read: decoding settings, names for `-i any` devices,
/// and which interfaces to keep.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub decoder: Decoder,
    /// `--ifname INDEX=NAME`: names for devices of `-i any` captures.
    pub device_names: BTreeMap<DeviceKey, String>,
    /// `--interface NAME`: keep only records captured on these (all if
    /// empty).
    pub only_interfaces: Vec<String>,
    /// Bytes of records read between two settles of the state (tests use
    /// tiny values, to bound the tables often); None: `WINDOW_BYTES`.
    pub window_bytes: Option<u64>,
}

impl Reading {
    pub fn names(&self, interfaces: &[Interface]) -> InterfaceNames {
        InterfaceNames::new(interfaces, self.device_names.clone())
    }
}

/// Whether a capture can hold one packet on several interfaces.
fn has_many_interfaces(layout: &Layout) -> bool {
    layout.interfaces.len() > 1
        || layout
            .interfaces
            .iter()
            .any(|i| matches!(i.link_type, 113 | 276))
}

/// Per-chunk record reader: decode, attribute, filter, de-duplicate.
struct ChunkReader<'r> {
    reading: &'r Reading,
    names: &'r InterfaceNames,
    /// Filter decisions per interface, so names are compared once.
    kept: FxHashMap<Via, bool>,
    window: Option<DuplicateWindow>,
}

impl<'r> ChunkReader<'r> {
    /// A reader whose window (when `dedup`) starts where `carry` left it.
    fn new(reading: &'r Reading, names: &'r InterfaceNames, dedup: bool, carry: &Carry) -> Self {
        ChunkReader {
            reading,
            names,
            kept: FxHashMap::default(),
            window: dedup.then(|| carry.window.clone().unwrap_or_default()),
        }
    }

    /// Hands the record to `f` unless the interface filter drops it; by
    /// reference, so the record is not copied on the hot path. Inlined
    /// into the walk, which has just built the record field by field: as
    /// a call, the record goes through memory and is read back with wide
    /// loads before the narrow stores have landed (a store-forwarding
    /// stall; see docs/performance.md).
    #[inline(always)]
    fn read<'a>(&mut self, record: Record<'a>, f: impl FnOnce(&Seen<'a>)) {
        let mut seen = Seen {
            record,
            packet: Packet::default(),
            via: Via::new(record.interface, None),
            duplicate: false,
        };
        (self.reading.decoder).decode_into(record.link_type, record.data, &mut seen.packet);
        let via = Via::new(record.interface, seen.packet.cooked.as_ref());
        seen.via = via;
        if !self.reading.only_interfaces.is_empty() {
            let (names, only) = (self.names, &self.reading.only_interfaces);
            let kept = *self
                .kept
                .entry(via)
                .or_insert_with(|| only.iter().any(|w| names.matches(&via, w)));
            if !kept {
                return;
            }
        }
        if let Some(window) = &mut self.window {
            seen.duplicate = window.check(signature(&seen.packet), via, record.ts);
        }
        f(&seen);
    }
}

/// The de-duplication window after the records folded so far: where the
/// next capture of a sequence (a stream's next segment, the next rotated
/// file) starts, so copies across the boundary are still recognised.
#[derive(Debug, Clone, Default)]
pub struct Carry {
    window: Option<DuplicateWindow>,
}

/// Folds the captures that make up one logical capture, in order: a
/// mapped file, a stream segment by segment (reading the next segment
/// while the current one is analyzed), or rotated files one after the
/// other (`analyze --merge`). Records are ordered by their position in the
/// logical capture, so the result is the one a single file would give.
pub struct Folder<'r, S, O, M> {
    reading: &'r Reading,
    observe: O,
    merge: M,
    state: S,
    carry: Carry,
    /// Bytes of the captures folded so far.
    base: u64,
}

impl<'r, S, O, M> Folder<'r, S, O, M>
where
    S: Default + Send + Settle,
    O: Fn(&mut S, &Seen<'_>) + Sync + Send,
    M: Fn(S, S) -> S + Sync + Send,
{
    /// `merge(a, b)` must be associative, with `b`'s records after `a`'s.
    pub fn new(reading: &'r Reading, observe: O, merge: M) -> Self {
        Folder {
            reading,
            observe,
            merge,
            state: S::default(),
            carry: Carry::default(),
            base: 0,
        }
    }

    /// Folds every record of `input` in; says what its container held.
    pub fn fold(&mut self, input: Input) -> Result<CaptureInfo, CaptureError> {
        let info = match input {
            Input::Mapped(mut capture) => {
                capture.set_base(self.base);
                self.fold_capture(&capture)?;
                capture.info()
            }
            Input::Stream(mut stream) => {
                stream.set_base(self.base);
                let mut next = stream.next_segment()?;
                while let Some(segment) = next {
                    let (folded, read) =
                        rayon::join(|| self.fold_capture(&segment), || stream.next_segment());
                    folded?;
                    next = read?;
                }
                stream.info()
            }
        };
        self.base += info.bytes;
        Ok(info)
    }

    fn fold_capture(&mut self, capture: &Capture) -> Result<(), CaptureError> {
        let (state, carry) = fold_chunks(
            capture,
            self.reading,
            &self.observe,
            &self.merge,
            &self.carry,
        )?;
        let earlier = std::mem::take(&mut self.state);
        self.state = (self.merge)(earlier, state);
        self.state.settle_whole();
        self.carry = carry;
        Ok(())
    }

    pub fn finish(mut self) -> S {
        self.state.settle_whole();
        self.state
    }
}

/// Chunks are read in windows of at least this many bytes: the records of
/// a window are decoded in parallel, then the state is settled, which
/// bounds the memory held by deferred work.
const WINDOW_BYTES: u64 = 32 << 20;

/// Windows under `--max-flows`: what a window adds before the settle that
/// bounds the tables is memory the limit does not cover (a SYN flood of
/// 70-byte records: 480 000 new flows per 32 MiB), so windows are halved,
/// at the cost of more eviction passes.
pub const BOUNDED_WINDOW_BYTES: u64 = 16 << 20;

/// The windows of `chunks`, as index ranges.
fn windows(chunks: &[Chunk], window_bytes: u64) -> Vec<Range<usize>> {
    let mut windows = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, chunk) in chunks.iter().enumerate() {
        bytes += (chunk.end - chunk.start) as u64;
        if bytes >= window_bytes {
            windows.push(start..index + 1);
            (start, bytes) = (index + 1, 0);
        }
    }
    if start < chunks.len() {
        windows.push(start..chunks.len());
    }
    windows
}

/// Decodes every record, folds runs of consecutive chunks into per-worker
/// state with `observe`, merges the states with `merge`, which must be
/// associative for the result to be independent of chunking and threads,
/// and settles the state after each window.
///
/// A speculative layout (classic pcap) is checked as it is walked; if any
/// chunk start was a wrong guess, or a record header is corrupt, the work
/// is discarded and redone on the exact layout, which reports corruption as
/// an error.
fn fold_chunks<S: Default + Send + Settle>(
    capture: &Capture,
    reading: &Reading,
    observe: &(impl Fn(&mut S, &Seen<'_>) + Sync),
    merge: &(impl Fn(S, S) -> S + Sync + Send),
    carry: &Carry,
) -> Result<(S, Carry), CaptureError> {
    let fold = |chunks: &[Chunk]| {
        let mut state = S::default();
        let mut walked = Walked::Whole(None);
        let fold_window =
            |window| fold_layout(capture, chunks, window, reading, observe, merge, carry);
        let window_bytes = reading.window_bytes.unwrap_or(WINDOW_BYTES).max(1);
        let mut windows = windows(chunks, window_bytes).into_iter();
        let read = |window: Range<usize>| (window.clone(), fold_window(window));
        // Done with a window's bytes: unmapping them is system time, on
        // whichever worker settles the window (the one reading the next
        // window is the busier of the two).
        let release = |window: Range<usize>| {
            for chunk in &chunks[window] {
                capture.release(chunk);
            }
        };
        let mut next = windows.next().map(read);
        // While one window settles into the state, the next one is read:
        // the workers that finish their share of one step early take on
        // the other's instead of waiting at its end.
        while let Some((window, (window_state, window_walked))) = next.take() {
            walked = walked.then(window_walked);
            if matches!(walked, Walked::Broken) {
                release(window);
                break;
            }
            let settle = || {
                release(window);
                state = merge(std::mem::take(&mut state), window_state);
                state.settle();
            };
            next = rayon::join(settle, || windows.next().map(read)).1;
        }
        (state, walked)
    };
    let chunks = &capture.layout().chunks;
    let records_before = progress::records();
    let (state, walked) = fold(chunks);
    match walked {
        Walked::Whole(truncation) => {
            if let Some(truncation) = truncation {
                capture.record_truncation(truncation);
            }
            Ok((state, carry_after(capture, chunks, reading, carry)))
        }
        Walked::Broken => {
            drop(state);
            progress::rewind_records(records_before);
            let exact = capture.exact_layout()?;
            if let Some(truncation) = &exact.truncation {
                capture.record_truncation(truncation.clone());
            }
            capture.record_skips(exact.skipped.clone());
            let (state, _) = fold(&exact.chunks);
            Ok((state, carry_after(capture, &exact.chunks, reading, carry)))
        }
    }
}

/// The window after the last record of `chunks`, for the capture that
/// follows.
fn carry_after(capture: &Capture, chunks: &[Chunk], reading: &Reading, carry: &Carry) -> Carry {
    if !has_many_interfaces(capture.layout()) {
        return Carry::default();
    }
    let names = reading.names(&capture.layout().interfaces);
    let mut reader = ChunkReader::new(reading, &names, true, carry);
    capture.for_each_record_before(chunks, chunks.len(), WINDOW_RECORDS, |record| {
        reader.read(record, |_| {});
    });
    Carry {
        window: reader.window,
    }
}

/// Whether the walk covered every record, and where the file broke off.
#[derive(Debug, Clone)]
enum Walked {
    Whole(Option<Truncation>),
    Broken,
}

impl Walked {
    /// `self` covers chunks before `later`'s. Only the file's last chunk
    /// can be truncated, so at most one side carries a truncation.
    fn then(self, later: Walked) -> Walked {
        match (self, later) {
            (Walked::Whole(a), Walked::Whole(b)) => Walked::Whole(a.or(b)),
            _ => Walked::Broken,
        }
    }
}

/// How many runs of consecutive chunks each thread gets, at least.
const RUNS_PER_THREAD: usize = 4;

/// One worker's run of consecutive chunks.
struct Run<'r, S> {
    reader: ChunkReader<'r>,
    state: S,
    walked: Walked,
    /// The chunk after the last one folded in.
    next: usize,
}

/// Folds `chunks[window]` (the others are there for the records before
/// a run's first chunk).
fn fold_layout<S: Default + Send>(
    capture: &Capture,
    chunks: &[Chunk],
    window: Range<usize>,
    reading: &Reading,
    observe: &(impl Fn(&mut S, &Seen<'_>) + Sync),
    merge: &(impl Fn(S, S) -> S + Sync + Send),
    carry: &Carry,
) -> (S, Walked) {
    let layout = capture.layout();
    let names = reading.names(&layout.interfaces);
    let dedup = has_many_interfaces(layout);
    // Each run's state holds every flow it saw, and long flows are seen by
    // every run: a few runs per thread balance the load without
    // multiplying the state.
    let runs = rayon::current_num_threads() * RUNS_PER_THREAD;
    let first = window.start;
    chunks[window.clone()]
        .par_iter()
        .enumerate()
        .map(|(offset, chunk)| (first + offset, chunk))
        .with_min_len(window.len().div_ceil(runs).max(1))
        .fold(
            || None,
            |run: Option<Run<'_, S>>, (index, chunk)| {
                let mut run = run.unwrap_or_else(|| Run {
                    reader: ChunkReader::new(reading, &names, dedup, carry),
                    state: S::default(),
                    walked: Walked::Whole(None),
                    next: 0,
                });
                if dedup && run.next != index {
                    // A run's first chunk: replay the records before it so
                    // the window holds what a single pass would have here.
                    let reader = &mut run.reader;
                    reader.window = Some(carry.window.clone().unwrap_or_default());
                    capture.for_each_record_before(chunks, index, WINDOW_RECORDS, |record| {
                        reader.read(record, |_| {});
                    });
                }
                let (reader, state) = (&mut run.reader, &mut run.state);
                capture.populate(chunk);
                let mut records = 0;
                let end = capture.walk(chunk, |record| {
                    records += 1;
                    reader.read(record, |seen| observe(state, seen));
                });
                progress::read_records(records);
                let walked = match end {
                    WalkEnd::Clean => Walked::Whole(None),
                    WalkEnd::Truncated(truncation) => Walked::Whole(Some(truncation)),
                    WalkEnd::Broken => Walked::Broken,
                };
                run.walked = std::mem::replace(&mut run.walked, Walked::Broken).then(walked);
                run.next = index + 1;
                Some(run)
            },
        )
        .flatten()
        .map(|run| (run.state, run.walked))
        .reduce(
            || (S::default(), Walked::Whole(None)),
            |(a, a_walked), (b, b_walked)| (merge(a, b), a_walked.then(b_walked)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Bytes;
    use crate::synth::{self, Container, Scenario};

    #[test]
    fn windows_cover_every_chunk_once_in_order() {
        let chunk = |start: usize, len: usize| Chunk {
            start,
            end: start + len,
            interface_base: 0,
            big_endian: false,
        };
        let mb = 1 << 20;
        let chunks: Vec<Chunk> = (0..20).map(|i| chunk(i * 5 * mb, 5 * mb)).collect();
        // 32 MiB at least per window: 7 chunks of 5 MiB, the rest last.
        assert_eq!(windows(&chunks, WINDOW_BYTES), [0..7, 7..14, 14..20]);
        assert!(windows(&[], WINDOW_BYTES).is_empty());
    }

    #[test]
    fn a_broken_walk_anywhere_breaks_the_whole() {
        let whole = || Walked::Whole(None);
        assert!(matches!(whole().then(whole()), Walked::Whole(None)));
        assert!(matches!(whole().then(Walked::Broken), Walked::Broken));
        assert!(matches!(Walked::Broken.then(whole()), Walked::Broken));
    }

    /// The engine folds any state: here a count of records, which must not
    /// depend on the chunk size or the number of threads.
    #[derive(Default)]
    struct Count(u64, u64);

    impl Settle for Count {
        fn settle(&mut self) {
            self.1 += 1;
        }
    }

    #[test]
    fn the_engine_folds_any_state_whatever_the_chunking() {
        let bytes = synth::generate(
            Scenario::SmallPackets {
                bytes: 256 << 10,
                conversations: None,
            },
            Container::Pcap,
            1,
        );
        let count = |chunk_bytes: usize, threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let capture =
                    Capture::from_bytes(Bytes::Owned(bytes.clone()), chunk_bytes).unwrap();
                let reading = Reading::default();
                let mut folder = Folder::new(
                    &reading,
                    |state: &mut Count, _: &Seen<'_>| state.0 += 1,
                    |a: Count, b: Count| Count(a.0 + b.0, a.1 + b.1),
                );
                folder.fold(Input::Mapped(capture)).unwrap();
                let settled = folder.finish();
                assert!(settled.1 >= 1, "settled at least once");
                settled.0
            })
        };
        let whole = count(usize::MAX / 2, 1);
        assert!(whole > 1000, "{whole} records");
        for (chunk_bytes, threads) in [(512, 1), (4096, 2), (65536, 3)] {
            assert_eq!(
                count(chunk_bytes, threads),
                whole,
                "{chunk_bytes} bytes, {threads} threads"
            );
        }
    }
}
