//! A yardstick, not part of kpcap: the least work a flow count must do
//! once the records are read. It maps, plans and walks the capture as
//! `kpcap analyze` does (the same chunks, the same page handling), reads
//! each Ethernet frame's VLAN, IP and TCP/UDP headers at fixed offsets,
//! and counts the packets, bytes and times of each 5-tuple (both
//! directions in one entry) in an open-addressed table whose slot is
//! prefetched 16 packets ahead. No address pairs, no DNS, no tunnels'
//! inner packets, no interfaces, no detectors, no report.
//! docs/performance.md compares kpcap with it.
//!
//!   cargo run --release --example flow_floor -- FILE [THREADS]
//!
//! With several threads, each counts a contiguous share of the chunks in a
//! table of its own, and the tables are merged at the end.

use kpcap::capture::{Capture, Chunk, Input, DEFAULT_CHUNK_BYTES};
use kpcap::prefetch;
use std::path::Path;
use std::process::ExitCode;

/// Packets between a slot's prefetch and its update.
const AHEAD: usize = 16;

/// A flow: its key (addresses folded to a word each, ports and protocol)
/// and what both directions carried.
#[derive(Clone, Copy, Default)]
struct Entry {
    key: [u64; 3],
    packets: [u32; 2],
    bytes: [u64; 2],
    first_ns: u64,
    last_ns: u64,
}

/// Linear probing over a power-of-two number of entries, at most half full.
struct Table {
    entries: Vec<Entry>,
    len: usize,
}

impl Table {
    fn with_room(flows: usize) -> Table {
        Table {
            entries: vec![Entry::default(); (flows * 2).next_power_of_two()],
            len: 0,
        }
    }

    fn slot(&self, hash: u64) -> usize {
        hash as usize & (self.entries.len() - 1)
    }

    fn prefetch(&self, hash: u64) {
        prefetch::line(&self.entries[self.slot(hash)]);
    }

    /// The entry of `key`, created from `new` if absent.
    fn entry(&mut self, hash: u64, key: [u64; 3], new: impl FnOnce() -> Entry) -> &mut Entry {
        if self.len * 2 >= self.entries.len() {
            self.grow();
        }
        let mut at = self.slot(hash);
        loop {
            let entry = self.entries[at];
            if entry.packets == [0, 0] {
                self.entries[at] = new();
                self.len += 1;
                return &mut self.entries[at];
            }
            if entry.key == key {
                return &mut self.entries[at];
            }
            at = (at + 1) & (self.entries.len() - 1);
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, Table::with_room(self.entries.len()));
        for entry in old.entries.into_iter().filter(|e| e.packets != [0, 0]) {
            *self.entry(hash(&entry.key), entry.key, || entry) = entry;
        }
    }

    fn count(&mut self, packet: &Packet) {
        let entry = self.entry(packet.hash, packet.key, || Entry {
            key: packet.key,
            first_ns: packet.ts_ns,
            last_ns: packet.ts_ns,
            ..Entry::default()
        });
        entry.packets[packet.direction] += 1;
        entry.bytes[packet.direction] += packet.wire_len;
        entry.first_ns = entry.first_ns.min(packet.ts_ns);
        entry.last_ns = entry.last_ns.max(packet.ts_ns);
    }

    fn merge(&mut self, other: Table) {
        for theirs in other.entries.into_iter().filter(|e| e.packets != [0, 0]) {
            // A new entry starts from theirs with no traffic, which the
            // sums below then add.
            let empty = || Entry {
                packets: [0, 0],
                bytes: [0, 0],
                ..theirs
            };
            let ours = self.entry(hash(&theirs.key), theirs.key, empty);
            for direction in 0..2 {
                ours.packets[direction] += theirs.packets[direction];
                ours.bytes[direction] += theirs.bytes[direction];
            }
            ours.first_ns = ours.first_ns.min(theirs.first_ns);
            ours.last_ns = ours.last_ns.max(theirs.last_ns);
        }
    }
}

fn mix(x: u64) -> u64 {
    let x = (x ^ 0x243F_6A88_85A3_08D3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x ^ (x >> 29)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

fn hash(key: &[u64; 3]) -> u64 {
    mix(key[0] ^ mix(key[1] ^ mix(key[2])))
}

/// A packet on its way to its flow's update.
#[derive(Clone, Copy, Default)]
struct Packet {
    key: [u64; 3],
    hash: u64,
    direction: usize,
    wire_len: u64,
    ts_ns: u64,
}

/// The flow key of an Ethernet frame, and which way it goes.
fn key_of(frame: &[u8]) -> Option<([u64; 3], usize)> {
    let be16 = |b: &[u8], at: usize| Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?));
    let mut at = 12;
    let mut ethertype = be16(frame, at)?;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        at += 4;
        ethertype = be16(frame, at)?;
    }
    let ip = frame.get(at + 2..)?;
    let (src, dst, protocol, l4) = match ethertype {
        0x0800 => {
            let header_len = usize::from(*ip.first()? & 0x0f) * 4;
            let src = u32::from_be_bytes(ip.get(12..16)?.try_into().ok()?);
            let dst = u32::from_be_bytes(ip.get(16..20)?.try_into().ok()?);
            (
                u128::from(src),
                u128::from(dst),
                *ip.get(9)?,
                ip.get(header_len..)?,
            )
        }
        0x86dd => {
            let src = u128::from_be_bytes(ip.get(8..24)?.try_into().ok()?);
            let dst = u128::from_be_bytes(ip.get(24..40)?.try_into().ok()?);
            (src, dst, *ip.get(6)?, ip.get(40..)?)
        }
        _ => return None,
    };
    let ports = match protocol {
        6 | 17 => (be16(l4, 0)?, be16(l4, 2)?),
        _ => (0, 0),
    };
    let (lo, hi, direction) = if (src, ports.0) <= (dst, ports.1) {
        ((src, ports.0), (dst, ports.1), 0)
    } else {
        ((dst, ports.1), (src, ports.0), 1)
    };
    let fold = |a: u128| (a as u64) ^ ((a >> 64) as u64).rotate_left(17);
    let ports_and_protocol = u64::from(lo.1) << 32 | u64::from(hi.1) << 16 | u64::from(protocol);
    Some(([fold(lo.0), fold(hi.0), ports_and_protocol], direction))
}

/// Counts the flows of `chunks`, in order.
fn count(capture: &Capture, chunks: &[Chunk]) -> Table {
    let mut table = Table::with_room(1 << 16);
    let mut ring = [Packet::default(); AHEAD];
    let mut queued = 0usize;
    for chunk in chunks {
        capture.populate(chunk);
        capture.walk(chunk, |record| {
            let Some((key, direction)) = key_of(record.data) else {
                return;
            };
            let packet = Packet {
                key,
                hash: hash(&key),
                direction,
                wire_len: u64::from(record.orig_len),
                ts_ns: record.ts.0,
            };
            table.prefetch(packet.hash);
            let slot = queued % AHEAD;
            if queued >= AHEAD {
                table.count(&ring[slot]);
            }
            ring[slot] = packet;
            queued += 1;
        });
        capture.release(chunk);
    }
    for n in queued.saturating_sub(AHEAD)..queued {
        table.count(&ring[n % AHEAD]);
    }
    table
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), threads) = (args.get(1), args.get(2).and_then(|t| t.parse().ok())) else {
        eprintln!("usage: flow_floor FILE [THREADS]");
        return ExitCode::from(2);
    };
    let threads: usize = threads.unwrap_or(1).max(1);
    let capture = match Input::open(Path::new(path), DEFAULT_CHUNK_BYTES) {
        Ok(Input::Mapped(capture)) => capture,
        Ok(Input::Stream(_)) => {
            eprintln!("flow_floor: {path}: not a file that can be mapped");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("flow_floor: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let chunks = &capture.layout().chunks;
    let share = chunks.len().div_ceil(threads).max(1);
    let tables: Vec<Table> = std::thread::scope(|scope| {
        let counting: Vec<_> = (chunks.chunks(share))
            .map(|mine| scope.spawn(|| count(&capture, mine)))
            .collect();
        counting
            .into_iter()
            .map(|t| t.join().expect("counted"))
            .collect()
    });
    let mut tables = tables.into_iter();
    let Some(mut whole) = tables.next() else {
        println!("0 flows, 0 packets counted");
        return ExitCode::SUCCESS;
    };
    for table in tables {
        whole.merge(table);
    }
    let packets: u64 = (whole.entries.iter())
        .map(|e| u64::from(e.packets[0] + e.packets[1]))
        .sum();
    println!("{} flows, {packets} packets counted", whole.len);
    ExitCode::SUCCESS
}
