//! How interleaved a capture's flows are: the distinct flows in each run
//! of 10 000 consecutive packets. A NIC serving hundreds of pods has
//! thousands (consecutive packets rarely share a flow, and every packet
//! touches a different table entry); the benchmarks print it beside each
//! capture, since it decides what a run costs as much as the size does.

use crate::capture::Input;
use crate::error::CaptureError;
use crate::flow::{ports, Endpoint, FlowKey};
use crate::observe::{Seen, Settle};
use crate::pipeline::{Folder, Reading};
use rustc_hash::{FxHashSet, FxHasher};
use std::hash::{Hash, Hasher};

/// Packets per run.
pub const WINDOW: usize = 10_000;

/// A capture's locality.
#[derive(Debug, Clone, PartialEq)]
pub struct Locality {
    /// IP packets (copies on a second interface not counted).
    pub packets: u64,
    pub flows: u64,
    /// Whole runs of `WINDOW` packets.
    pub windows: u64,
    /// Distinct flows per run: the mean and the fewest.
    pub mean: f64,
    pub min: u64,
}

/// (file position, flow key hash) of each packet, in any order.
#[derive(Default)]
struct Keys(Vec<(u64, u64)>);

impl Settle for Keys {
    fn settle(&mut self) {}
}

fn observe(keys: &mut Keys, seen: &Seen<'_>) {
    let Some(ip) = seen.packet.ip.filter(|_| !seen.duplicate) else {
        return;
    };
    let (src_port, dst_port) = ports(&seen.packet).unwrap_or((0, 0));
    let src = Endpoint {
        addr: ip.src,
        port: src_port,
    };
    let dst = Endpoint {
        addr: ip.dst,
        port: dst_port,
    };
    let mut hasher = FxHasher::default();
    FlowKey::between(ip.protocol, src, dst).0.hash(&mut hasher);
    keys.0.push((seen.record.position, hasher.finish()));
}

fn merge(mut a: Keys, b: Keys) -> Keys {
    a.0.extend(b.0);
    a
}

/// The locality of `input` (read in parallel on the current pool).
pub fn locality(input: Input, reading: &Reading) -> Result<Locality, CaptureError> {
    let mut folder = Folder::new(reading, observe, merge);
    folder.fold(input)?;
    let mut keys = folder.finish().0;
    keys.sort_unstable();
    Ok(of_keys(keys.iter().map(|(_, key)| *key)))
}

/// The locality of flow keys in file order.
fn of_keys(keys: impl ExactSizeIterator<Item = u64> + Clone) -> Locality {
    let packets = keys.len() as u64;
    let flows = keys.clone().collect::<FxHashSet<u64>>().len() as u64;
    let all: Vec<u64> = keys.collect();
    let counts: Vec<u64> = (all.chunks_exact(WINDOW))
        .map(|run| run.iter().collect::<FxHashSet<_>>().len() as u64)
        .collect();
    let windows = counts.len() as u64;
    Locality {
        packets,
        flows,
        windows,
        mean: counts.iter().sum::<u64>() as f64 / windows.max(1) as f64,
        min: counts.iter().copied().min().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_flows_are_counted_per_run() {
        // Two runs: the first cycles 10 flows, the second 2 500.
        let keys: Vec<u64> = (0..WINDOW as u64)
            .map(|i| i % 10)
            .chain((0..WINDOW as u64).map(|i| 100 + i % 2_500))
            .chain([7, 8])
            .collect();
        let l = of_keys(keys.into_iter());
        assert_eq!(l.packets, 2 * WINDOW as u64 + 2);
        assert_eq!(l.flows, 10 + 2_500);
        assert_eq!(l.windows, 2);
        assert_eq!(l.min, 10);
        assert_eq!(l.mean, 1_255.0);
    }
}
