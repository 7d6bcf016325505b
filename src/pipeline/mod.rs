//! The parallel shape: chunks of records -> per-chunk state -> associative
//! merge. Runs on the current rayon pool (the CLI installs one sized by
//! `--threads`).
//!
//! Every record is decoded, attributed to the interface it was captured
//! on, optionally filtered by interface, and, in captures with several
//! interfaces, checked for being a copy of a packet already seen on
//! another interface (see `duplicates`).

mod duplicates;

pub use duplicates::signature;

use crate::capture::{Capture, Layout, Record};
use crate::decode::{Decoder, Packet};
use crate::detect::{Observations, Settings};
use crate::flow::FlowTable;
use crate::interface::{DeviceKey, InterfaceNames, Via};
use duplicates::{DuplicateWindow, WINDOW_RECORDS};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// One record as the observers see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub record: Record<'a>,
    pub packet: Packet<'a>,
    pub via: Via,
    /// A copy of a packet already seen on another interface: it records
    /// the interface it crossed, and counts nowhere else.
    pub duplicate: bool,
}

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
}

impl Reading {
    pub fn names(&self, layout: &Layout) -> InterfaceNames {
        InterfaceNames::new(layout, self.device_names.clone())
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
    /// Hands the record to `f` unless the interface filter drops it; by
    /// reference, so the record is not copied on the hot path.
    fn read<'a>(&mut self, record: Record<'a>, f: impl FnOnce(&Seen<'a>)) {
        let packet = self.reading.decoder.decode(record.link_type, record.data);
        let via = Via::new(record.interface, packet.cooked.as_ref());
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
        let duplicate = match &mut self.window {
            Some(window) => window.check(signature(&packet), via, record.ts),
            None => false,
        };
        f(&Seen {
            record,
            packet,
            via,
            duplicate,
        });
    }
}

/// Decodes every record, folds each chunk into its own state with
/// `observe`, and merges the chunk states with `merge`, which must be
/// associative for the result to be independent of chunking and threads.
pub fn fold_chunks<S: Default + Send>(
    capture: &Capture,
    reading: &Reading,
    observe: impl Fn(&mut S, &Seen<'_>) + Sync,
    merge: impl Fn(S, S) -> S + Sync + Send,
) -> S {
    let layout = capture.layout();
    let names = reading.names(layout);
    let dedup = has_many_interfaces(layout);
    layout
        .chunks
        .par_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut reader = ChunkReader {
                reading,
                names: &names,
                kept: FxHashMap::default(),
                window: dedup.then(DuplicateWindow::default),
            };
            if dedup {
                // Replay the records before the chunk so the window holds
                // what a single pass would have at this point.
                capture.for_each_record_before(index, WINDOW_RECORDS, |record| {
                    reader.read(record, |_| {});
                });
            }
            let mut state = S::default();
            capture.for_each_record(chunk, |record| {
                reader.read(record, |seen| observe(&mut state, seen));
            });
            capture.release(chunk);
            state
        })
        .reduce(S::default, merge)
}

/// The merged flow table (what `kpcap flows` reports).
pub fn flow_table(capture: &Capture, reading: &Reading) -> FlowTable {
    fold_chunks(capture, reading, FlowTable::observe, FlowTable::merge)
}

/// Everything the detectors need (what `kpcap analyze` reports).
pub fn observations(capture: &Capture, reading: &Reading, settings: &Settings) -> Observations {
    fold_chunks(
        capture,
        reading,
        |state: &mut Observations, seen| state.observe(seen, settings),
        Observations::merge,
    )
}
