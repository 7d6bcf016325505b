//! Copies of one packet on several interfaces of a capture (`tcpdump -i
//! any` sees a pod's packet on its lxc device and again on the egress NIC;
//! a pcapng capture of two interfaces may hold both copies).
//!
//! A copy is recognised by a signature of what forwarding leaves unchanged
//! (addresses, IP identification, L4 header and payload; not TTL or
//! checksums) among the last `WINDOW_RECORDS` records within `WINDOW_NS`.
//! A packet is a duplicate when another interface already holds more
//! copies with its signature than its own interface does: the k-th copy on
//! lxc pairs with the k-th on ens19, and two identical packets on one
//! interface (a retransmission) are never merged. The decision depends
//! only on the preceding records, so a chunk that first replays the
//! records before it decides exactly as a single pass would.

use crate::decode::Packet;
use crate::interface::Via;
use crate::time::Timestamp;
use std::hash::{Hash, Hasher};

/// How many preceding records a copy is looked for in.
pub const WINDOW_RECORDS: usize = 128;
/// How far apart in time two copies of one packet can be.
const WINDOW_NS: u64 = 10 * 1_000_000;
/// L4 bytes hashed into a signature: headers and the start of the payload.
const SIGNATURE_BYTES: usize = 256;
/// Interfaces one packet is tracked across (lxc, overlay, NIC, bond, ...).
const MAX_INTERFACES_PER_PACKET: usize = 8;

/// A packet's forwarding-invariant signature; None without an IP header.
pub fn signature(packet: &Packet<'_>) -> Option<u64> {
    let ip = packet.ip?;
    let mut hasher = rustc_hash::FxHasher::default();
    (ip.src, ip.dst, ip.protocol, ip.ident, packet.l4.len()).hash(&mut hasher);
    let l4 = &packet.l4[..packet.l4.len().min(SIGNATURE_BYTES)];
    // Checksums may differ between copies (offload); skip them.
    let checksum_at = match ip.protocol {
        6 => Some(16),
        17 => Some(6),
        1 | 58 => Some(2),
        _ => None,
    };
    match checksum_at {
        Some(at) if l4.len() >= at + 2 => {
            l4[..at].hash(&mut hasher);
            l4[at + 2..].hash(&mut hasher);
        }
        _ => l4.hash(&mut hasher),
    }
    Some(hasher.finish())
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    signature: Option<u64>,
    via: Via,
    ts: Timestamp,
}

/// Buckets the window's records are chained in by signature.
const BUCKETS: usize = 256;

// A record's position in the window fits a byte.
const _: () = assert!(WINDOW_RECORDS <= 256);

/// A record of the window, and the one before it in its bucket.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seen: Seen,
    /// 1 + the number of the bucket's record before this one; 0 for none.
    previous: u64,
}

/// The sliding window of recent records, chained by signature: a record
/// is compared with the few records in its signature's bucket, not with
/// the whole window (on a `-i any` capture the scan of all
/// `WINDOW_RECORDS` was most of the reading). Records are numbered from
/// the first the window saw; record n sits at n % `WINDOW_RECORDS`, and a
/// chain ends at the first record that has left the window. A crafted
/// capture of one bucket throughout walks the whole window, as the scan
/// did: bounded.
#[derive(Debug, Clone)]
pub struct DuplicateWindow {
    slots: Vec<Slot>,
    /// Records seen so far.
    seen: u64,
    /// By bucket: 1 + the number of its latest record; 0 for none.
    latest: Box<[u64; BUCKETS]>,
}

impl Default for DuplicateWindow {
    fn default() -> Self {
        DuplicateWindow {
            slots: Vec::with_capacity(WINDOW_RECORDS),
            seen: 0,
            latest: Box::new([0; BUCKETS]),
        }
    }
}

/// The bucket of a signature: its top bits, mixed (Fibonacci hashing).
fn bucket(signature: u64) -> usize {
    (signature.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - BUCKETS.trailing_zeros())) as usize
}

impl DuplicateWindow {
    /// Whether this record is a copy of a packet already seen on another
    /// interface; then remembers it either way.
    pub fn check(&mut self, signature: Option<u64>, via: Via, ts: Timestamp) -> bool {
        let duplicate = signature.is_some_and(|sig| self.is_copy(sig, via, ts));
        let seen = Seen { signature, via, ts };
        let previous = match signature {
            Some(signature) => {
                std::mem::replace(&mut self.latest[bucket(signature)], self.seen + 1)
            }
            None => 0,
        };
        let slot = Slot { seen, previous };
        let at = (self.seen % WINDOW_RECORDS as u64) as usize;
        match self.slots.get_mut(at) {
            Some(old) => *old = slot,
            None => self.slots.push(slot),
        }
        self.seen += 1;
        duplicate
    }

    fn is_copy(&self, signature: u64, via: Via, ts: Timestamp) -> bool {
        // The window: the records before this one, at most WINDOW_RECORDS.
        let first = self.seen.saturating_sub(WINDOW_RECORDS as u64);
        // The bucket's records in the window, newest first, as positions.
        // An array, not a vector: a crafted capture of one signature
        // throughout has the whole window in one chain.
        let mut chain = [0u8; WINDOW_RECORDS];
        let mut len = 0;
        let mut next = self.latest[bucket(signature)];
        while next > first {
            let at = ((next - 1) % WINDOW_RECORDS as u64) as usize;
            chain[len] = at as u8;
            len += 1;
            next = self.slots[at].previous;
        }
        // Counted in file order, as a scan of the window does.
        let window = chain[..len]
            .iter()
            .rev()
            .map(|&at| &self.slots[usize::from(at)].seen);
        copies_elsewhere(window, signature, via, ts)
    }
}

/// Whether another interface holds more copies of `signature` among
/// `window` (in file order) than `via` does.
fn copies_elsewhere<'a>(
    window: impl Iterator<Item = &'a Seen>,
    signature: u64,
    via: Via,
    ts: Timestamp,
) -> bool {
    // (interface, copies) of this signature in the window: a packet
    // crosses few interfaces, so a fixed array (no allocation) will do.
    let mut copies = [(via, 0u32); MAX_INTERFACES_PER_PACKET];
    let mut used = 1; // copies[0] is the packet's own interface
    for seen in window {
        if seen.signature != Some(signature) || seen.ts.0.abs_diff(ts.0) > WINDOW_NS {
            continue;
        }
        match copies[..used].iter().position(|(v, _)| *v == seen.via) {
            Some(at) => copies[at].1 += 1,
            None if used < copies.len() => {
                copies[used] = (seen.via, 1);
                used += 1;
            }
            None => {}
        }
    }
    let own = copies[0].1;
    copies[1..used].iter().any(|&(_, n)| n > own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::Device;
    use std::collections::VecDeque;
    use std::hash::Hasher;

    fn via(interface: u32) -> Via {
        Via {
            interface,
            device: Device::Whole,
        }
    }

    #[test]
    fn kth_copy_pairs_with_kth_copy() {
        let mut w = DuplicateWindow::default();
        let t = Timestamp(1_000_000_000);
        // lxc, ens19, lxc (a resend), ens19
        assert!(!w.check(Some(7), via(0), t));
        assert!(w.check(Some(7), via(1), t));
        assert!(!w.check(Some(7), via(0), t));
        assert!(w.check(Some(7), via(1), t));
        // Two more on lxc only: both originals.
        assert!(!w.check(Some(7), via(0), t));
        assert!(!w.check(Some(7), via(0), t));
    }

    #[test]
    fn same_interface_never_merges_and_time_bounds_copies() {
        let mut w = DuplicateWindow::default();
        let t = Timestamp(1_000_000_000);
        assert!(!w.check(Some(7), via(0), t));
        assert!(!w.check(Some(7), via(0), t));
        assert!(!w.check(Some(7), via(1), Timestamp(t.0 + WINDOW_NS + 1)));
        assert!(!w.check(None, via(1), t));
    }

    /// The window as it was before the index: every record compared with
    /// the whole window.
    #[derive(Default)]
    struct Scan(VecDeque<Seen>);

    impl Scan {
        fn check(&mut self, signature: Option<u64>, via: Via, ts: Timestamp) -> bool {
            let duplicate =
                signature.is_some_and(|sig| copies_elsewhere(self.0.iter(), sig, via, ts));
            if self.0.len() == WINDOW_RECORDS {
                self.0.pop_front();
            }
            self.0.push_back(Seen { signature, via, ts });
            duplicate
        }
    }

    /// Long runs of few signatures on up to 11 interfaces (more than a
    /// packet is tracked across), some records without one, times that
    /// jump past the window now and then, and a run of signatures that
    /// share one bucket: the same decisions as the scan.
    #[test]
    fn decides_as_scanning_the_whole_window_does() {
        let mut random = rustc_hash::FxHasher::default();
        let mut next = |n: u64| {
            random.write_u64(0x9e37_79b9);
            random.finish() % n
        };
        let one_bucket: Vec<u64> = (0..).filter(|&s| bucket(s) == bucket(0)).take(6).collect();
        let (mut w, mut scan) = (DuplicateWindow::default(), Scan::default());
        let mut ts = 1_000_000_000;
        let mut duplicates = 0;
        for i in 0..60_000 {
            let signature = (next(10) > 0).then(|| match i {
                50_000.. => one_bucket[next(6) as usize],
                _ if i % 5_000 < 2_500 => next(40),
                _ => next(3),
            });
            let via = via(next(11) as u32);
            ts += if next(100) == 0 {
                WINDOW_NS / 2
            } else {
                next(50_000)
            };
            let decided = w.check(signature, via, Timestamp(ts));
            assert_eq!(
                decided,
                scan.check(signature, via, Timestamp(ts)),
                "record {i}"
            );
            duplicates += usize::from(decided);
        }
        assert!(
            duplicates > 5_000,
            "{duplicates} duplicates: the test must find copies"
        );
        assert!(w.slots.len() <= WINDOW_RECORDS);
    }
}
