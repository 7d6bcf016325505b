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
use std::collections::VecDeque;
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

/// The sliding window of recent records.
#[derive(Debug, Clone, Default)]
pub struct DuplicateWindow {
    recent: VecDeque<Seen>,
}

impl DuplicateWindow {
    /// Whether this record is a copy of a packet already seen on another
    /// interface; then remembers it either way.
    pub fn check(&mut self, signature: Option<u64>, via: Via, ts: Timestamp) -> bool {
        let duplicate = signature.is_some_and(|sig| self.is_copy(sig, via, ts));
        if self.recent.len() == WINDOW_RECORDS {
            self.recent.pop_front();
        }
        self.recent.push_back(Seen { signature, via, ts });
        duplicate
    }

    fn is_copy(&self, signature: u64, via: Via, ts: Timestamp) -> bool {
        // (interface, copies) of this signature in the window: a packet
        // crosses few interfaces, so a fixed array (no allocation) will do.
        let mut copies = [(via, 0u32); MAX_INTERFACES_PER_PACKET];
        let mut used = 1; // copies[0] is the packet's own interface
        for seen in &self.recent {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::Device;

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
}
