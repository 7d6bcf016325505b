//! Reading captures: open the bytes, detect the format by its magic, index
//! the records once (validating every record header), split them into chunks
//! at record boundaries, and hand out zero-copy records per chunk.

pub mod floor;
mod link_type;
mod pcap;
mod pcapng;
mod source;

pub use link_type::{link_type_name, link_type_supported};
pub use source::{load, Bytes};

use crate::error::CaptureError;
use crate::time::Timestamp;
use serde::Serialize;
use std::path::Path;

/// The largest record kpcap accepts (libpcap's own limit); anything longer
/// is a corrupt record header, not a packet.
pub const MAX_RECORD_LEN: u32 = 262_144;

/// Default chunk size for parallel decoding.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// The container format, as told by the first bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pcap,
    Pcapng,
}

/// One capture interface: classic pcap has exactly one, pcapng one per
/// Interface Description Block (numbered across sections).
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub id: u32,
    pub name: Option<String>,
    pub link_type: u32,
    /// Timestamp units per second (1e6 for microsecond pcap, 1e9 for nano).
    pub ts_units_per_sec: u64,
    #[serde(skip)]
    pub ts_offset_secs: u64,
}

impl Interface {
    fn timestamp(&self, units: u64) -> Timestamp {
        let per_sec = self.ts_units_per_sec.max(1);
        let secs = units / per_sec;
        let frac = units % per_sec;
        let nanos = (frac as u128 * Timestamp::NANOS_PER_SEC as u128 / per_sec as u128) as u64;
        Timestamp::from_secs_nanos(secs.saturating_add(self.ts_offset_secs), nanos)
    }
}

/// A run of whole records, the unit of parallel work.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    /// Index (0-based, in file order) of the chunk's first record.
    pub first_record: u64,
    /// pcapng: the global id of the first interface of the chunk's section.
    pub interface_base: u32,
    /// pcapng sections each have their own byte order.
    pub big_endian: bool,
}

/// Where a capture broke off; everything before `offset` is analyzed.
#[derive(Debug, Clone, Serialize)]
pub struct Truncation {
    pub offset: u64,
    pub reason: String,
}

/// The result of the indexing pass.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub big_endian: bool,
    pub interfaces: Vec<Interface>,
    pub chunks: Vec<Chunk>,
    pub records: u64,
    pub truncation: Option<Truncation>,
}

/// One captured packet, borrowing the capture's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Position in file order, 0-based.
    pub index: u64,
    pub ts: Timestamp,
    pub interface: u32,
    pub link_type: u32,
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// An opened, indexed capture.
pub struct Capture {
    bytes: Bytes,
    layout: Layout,
    pub gzip: bool,
    /// Problems that did not stop the analysis (truncated tail, broken gzip).
    pub warnings: Vec<String>,
}

impl Capture {
    /// Opens a file (memory-mapped) or `-` (stdin) and indexes it.
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<Capture, CaptureError> {
        let loaded = source::load(path)?;
        let mut capture = Capture::from_bytes(loaded.bytes, chunk_bytes)?;
        capture.gzip = loaded.gzip;
        capture.warnings.splice(0..0, loaded.warning);
        Ok(capture)
    }

    /// Indexes bytes already in memory.
    pub fn from_bytes(bytes: Bytes, chunk_bytes: usize) -> Result<Capture, CaptureError> {
        // The indexing pass releases what it has walked, so a capture
        // larger than memory never becomes resident all at once.
        let layout = index(&bytes, chunk_bytes.max(1), &|start, end| {
            bytes.release(start, end)
        })?;
        let warnings = layout
            .truncation
            .iter()
            .map(|t| {
                format!(
                    "byte {}: {}; analyzing the records before it",
                    t.offset, t.reason
                )
            })
            .collect();
        Ok(Capture {
            bytes,
            layout,
            gzip: false,
            warnings,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Done with `chunk`'s bytes: see `Bytes::release`.
    pub fn release(&self, chunk: &Chunk) {
        self.bytes.release(chunk.start, chunk.end);
    }

    /// Calls `f` for every record of `chunk`, in file order.
    pub fn for_each_record<'a>(&'a self, chunk: &Chunk, f: impl FnMut(Record<'a>)) {
        match self.layout.format {
            Format::Pcap => pcap::for_each_record(&self.bytes, chunk, &self.layout, f),
            Format::Pcapng => pcapng::for_each_record(&self.bytes, chunk, &self.layout, f),
        }
    }
}

impl Capture {
    /// Calls `f` for the last `n` records before chunk `index` (fewer at
    /// the start of the capture), in file order.
    pub fn for_each_record_before<'a>(
        &'a self,
        index: usize,
        n: u64,
        mut f: impl FnMut(Record<'a>),
    ) {
        let chunks = &self.layout.chunks;
        let Some(chunk) = chunks.get(index) else {
            return;
        };
        let from = chunk.first_record.saturating_sub(n);
        let mut first = index;
        while first > 0 && chunks[first].first_record > from {
            first -= 1;
        }
        for earlier in &chunks[first..index] {
            self.for_each_record(earlier, |record| {
                if record.index >= from {
                    f(record)
                }
            });
        }
    }
}

/// Reads a u32 in a file's byte order; callers check the length first.
fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Detects the format and indexes the records.
fn index(bytes: &[u8], chunk_bytes: usize, release: Release<'_>) -> Result<Layout, CaptureError> {
    let chunker = Chunker::new(chunk_bytes, release);
    if pcap::is_magic(bytes) {
        pcap::index(bytes, chunker)
    } else if pcapng::is_magic(bytes) {
        pcapng::index(bytes, chunker)
    } else {
        let magic = bytes
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        Err(CaptureError::NotACapture { magic })
    }
}

/// Called with each byte range the indexing pass is done with.
type Release<'a> = &'a dyn Fn(usize, usize);

/// Cuts the record stream into chunks of about `target` bytes. The indexers
/// feed it every record start; `cut` forces a boundary (pcapng sections).
struct Chunker<'a> {
    target: usize,
    chunks: Vec<Chunk>,
    records: u64,
    open: Option<Chunk>,
    release: Release<'a>,
}

impl<'a> Chunker<'a> {
    fn new(target: usize, release: Release<'a>) -> Self {
        Chunker {
            target,
            chunks: Vec::new(),
            records: 0,
            open: None,
            release,
        }
    }

    /// A complete record spans `start..end`.
    fn record(&mut self, start: usize, end: usize, interface_base: u32, big_endian: bool) {
        let chunk = self.open.get_or_insert(Chunk {
            start,
            end,
            first_record: self.records,
            interface_base,
            big_endian,
        });
        chunk.end = end;
        self.records += 1;
        if chunk.end - chunk.start >= self.target {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if let Some(chunk) = self.open.take() {
            (self.release)(chunk.start, chunk.end);
            self.chunks.push(chunk);
        }
    }

    fn finish(mut self) -> (Vec<Chunk>, u64) {
        self.cut();
        (self.chunks, self.records)
    }
}
