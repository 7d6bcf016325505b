//! The deterministic capture generator: same scenario and seed, same bytes.
//! It makes the test data and the large benchmark inputs, which are never
//! committed.

mod busy;
mod cluster;
pub mod frame;
mod hostile;
mod incident;
mod mixed;
mod nodes;
mod overlay;
mod small;
mod tcp;
mod writer;

pub use crate::decode::TunnelKind;
pub use cluster::write as write_cluster;
pub use hostile::Hostile;
pub use incident::{Phase, View, IFNAMES};
pub use mixed::START;
pub use nodes::{write as write_nodes, Fault};
pub use writer::{CaptureWriter, Container, Link};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;

/// With `--conversations repeat`, the random stream of the `started`-th
/// conversation: that of conversation `started % repeat`, so it replays
/// the same hosts and ports.
fn replayed(seed: u64, started: u64, repeat: u64) -> ChaCha8Rng {
    let replay = started % repeat.max(1);
    ChaCha8Rng::seed_from_u64(seed ^ (replay + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Frames of one conversation, made up front and drained interleaved:
/// each entry one packet's copies (one, except in `-i any` captures,
/// where a packet is seen on each device it crosses), written together.
pub(crate) type Frames = std::collections::VecDeque<Vec<Vec<u8>>>;

/// How far apart a packet's copies on successive devices are written.
const COPY_GAP_NS: u64 = 400;

/// Writes interleaved conversations until about `target_bytes` are out:
/// `active` of them in progress, each packet from one picked at random
/// (new ones from `next`, with the same random stream), `gap_ns` apart.
pub(crate) fn write_interleaved<W: Write>(
    out: &mut CaptureWriter<W>,
    target_bytes: u64,
    active: usize,
    rng: &mut ChaCha8Rng,
    gap_ns: std::ops::Range<u64>,
    mut next: impl FnMut(&mut ChaCha8Rng) -> Frames,
) -> std::io::Result<()> {
    use rand::Rng;
    debug_assert!(gap_ns.start > 2 * COPY_GAP_NS, "copies stay in time order");
    let mut conversations: Vec<Frames> = Vec::with_capacity(active);
    let mut now = START;
    while out.bytes_written < target_bytes {
        while conversations.len() < active {
            conversations.push(next(rng));
        }
        let pick = rng.gen_range(0..conversations.len());
        match conversations[pick].pop_front() {
            Some(copies) => {
                for (k, frame) in copies.iter().enumerate() {
                    out.write(
                        crate::time::Timestamp(now.0 + k as u64 * COPY_GAP_NS),
                        frame,
                    )?;
                }
                now = crate::time::Timestamp(now.0 + rng.gen_range(gap_ns.clone()));
            }
            None => {
                conversations.swap_remove(pick);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    /// A busy node's mixed traffic, about `bytes` long; with
    /// `conversations`, that many distinct conversations, repeated.
    Mixed {
        bytes: u64,
        conversations: Option<u64>,
    },
    /// The incident on a worker, before or after the fix, as
    /// captured on ens19, on both NICs, or with `-i any`.
    Incident(Phase, View),
    /// Small frames (about 100 bytes): DNS lookups, SYNs, bare ACKs; with
    /// `conversations`, between that many distinct pairs of sockets.
    SmallPackets {
        bytes: u64,
        conversations: Option<u64>,
    },
    /// Two nodes' pod-to-pod traffic in an overlay tunnel, seen on ens19.
    Overlay(TunnelKind),
    /// A busy node, about `bytes` long: thousands of flows active at
    /// once, captured on its NIC (`link` None) or with `-i any`.
    Busy { bytes: u64, any: Option<Link> },
    /// A hostile input of about `bytes` (the container is the class's).
    Hostile { class: Hostile, bytes: u64 },
}

/// Writes the scenario's capture to `out`.
pub fn write<W: Write>(
    out: W,
    scenario: Scenario,
    container: Container,
    seed: u64,
) -> std::io::Result<W> {
    match scenario {
        Scenario::Mixed {
            bytes,
            conversations,
        } => {
            let mut writer = CaptureWriter::new(out, container, "ens19")?;
            mixed::write(&mut writer, bytes, seed, conversations)?;
            Ok(writer.into_inner())
        }
        Scenario::SmallPackets {
            bytes,
            conversations,
        } => {
            let mut writer = CaptureWriter::new(out, container, "ens19")?;
            small::write(&mut writer, bytes, seed, conversations)?;
            Ok(writer.into_inner())
        }
        Scenario::Incident(phase, view) => incident::write(out, phase, view, container, seed),
        Scenario::Overlay(kind) => {
            let mut writer = CaptureWriter::new(out, container, "ens19")?;
            overlay::write(&mut writer, kind, seed)?;
            Ok(writer.into_inner())
        }
        Scenario::Busy { bytes, any } => {
            let mut writer = match any {
                None => CaptureWriter::new(out, container, "ens19")?,
                // As tcpdump writes it: classic pcap.
                Some(link) => {
                    CaptureWriter::with_interfaces(out, Container::Pcap, &[("any", link)])?
                }
            };
            busy::write(&mut writer, bytes, seed, any)?;
            Ok(writer.into_inner())
        }
        Scenario::Hostile { class, bytes } => hostile::write(out, class, bytes, seed),
    }
}

/// Writes the scenario's capture to the file at `path` (a hole is a
/// sparse stretch: the file is extended, not written). Returns its size.
pub fn write_file(
    path: &std::path::Path,
    scenario: Scenario,
    container: Container,
    seed: u64,
) -> std::io::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut file = write(std::io::BufWriter::new(file), scenario, container, seed)?
        .into_inner()
        .map_err(|e| e.into_error())?;
    if let Scenario::Hostile {
        class: Hostile::Hole,
        bytes,
    } = scenario
    {
        let header = std::io::Seek::stream_position(&mut file)?;
        file.set_len(header + bytes)?;
    }
    file.sync_all().ok();
    file.metadata().map(|m| m.len())
}

/// The scenario's capture as bytes.
pub fn generate(scenario: Scenario, container: Container, seed: u64) -> Vec<u8> {
    write(Vec::new(), scenario, container, seed).expect("writing to memory cannot fail")
}

/// Parses sizes like `65536`, `64K`, `64M`, `1G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 64M"))?;
    let multiplier = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (use K, M or G)")),
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))
}
