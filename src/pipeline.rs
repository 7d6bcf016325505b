//! The parallel shape: chunks of records -> per-chunk state -> associative
//! merge. Runs on the current rayon pool (the CLI installs one sized by
//! `--threads`).

use crate::capture::Capture;
use crate::decode::decode;
use crate::flow::FlowTable;
use rayon::prelude::*;

/// Decodes every record and builds the merged flow table.
pub fn flow_table(capture: &Capture) -> FlowTable {
    capture
        .layout()
        .chunks
        .par_iter()
        .map(|chunk| {
            let mut table = FlowTable::default();
            capture.for_each_record(chunk, |record| {
                let packet = decode(record.link_type, record.data);
                table.observe(&record, &packet);
            });
            table
        })
        .reduce(FlowTable::default, FlowTable::merge)
}
