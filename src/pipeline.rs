//! The parallel shape: chunks of records -> per-chunk state -> associative
//! merge. Runs on the current rayon pool (the CLI installs one sized by
//! `--threads`).

use crate::capture::{Capture, Record};
use crate::decode::{decode, Packet};
use crate::detect::{Observations, Settings};
use crate::flow::FlowTable;
use rayon::prelude::*;

/// Decodes every record, folds each chunk into its own state with
/// `observe`, and merges the chunk states with `merge`, which must be
/// associative for the result to be independent of chunking and threads.
pub fn fold_chunks<S: Default + Send>(
    capture: &Capture,
    observe: impl Fn(&mut S, &Record<'_>, &Packet<'_>) + Sync,
    merge: impl Fn(S, S) -> S + Sync + Send,
) -> S {
    capture
        .layout()
        .chunks
        .par_iter()
        .map(|chunk| {
            let mut state = S::default();
            capture.for_each_record(chunk, |record| {
                let packet = decode(record.link_type, record.data);
                observe(&mut state, &record, &packet);
            });
            state
        })
        .reduce(S::default, merge)
}

/// The merged flow table (what `kpcap flows` reports).
pub fn flow_table(capture: &Capture) -> FlowTable {
    fold_chunks(capture, FlowTable::observe, FlowTable::merge)
}

/// Everything the detectors need (what `kpcap analyze` reports).
pub fn observations(capture: &Capture, settings: &Settings) -> Observations {
    fold_chunks(
        capture,
        |state: &mut Observations, record, packet| state.observe(record, packet, settings),
        Observations::merge,
    )
}
