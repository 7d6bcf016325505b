//! Reading captures: open the bytes, detect the format by its magic, split
//! them into chunks at record boundaries, and hand out zero-copy records per
//! chunk, validating every record header as it is walked.
//!
//! Classic pcap has no index: a record header says only how long its own
//! record is. Rather than walk every header once, serially, before the
//! parallel work, kpcap guesses each chunk's first record by looking for a
//! run of plausible headers just after an even split point (`pcap::plan`),
//! and each worker checks that its records end exactly where the next chunk
//! begins. The first chunk starts after the global header, so if every chunk
//! ends where the next begins, every guess was right and the result is the
//! one a serial walk gives. If any chunk disagrees (a guess landed inside a
//! packet, or a header is corrupt), the pipeline discards its work and
//! walks the file serially (`Capture::exact_layout`). pcapng blocks are
//! walked serially up front: sections and interfaces are declared in-band.

pub mod archive;
pub mod floor;
mod link_type;
mod pcap;
mod pcapng;
pub mod progress;
mod sigbus;
mod source;
mod stream;

pub use link_type::{link_type_name, link_type_supported};
pub use source::{compression_of, load, Bytes, Compression};
pub use stream::Stream;

use crate::error::CaptureError;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::OnceLock;

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

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// One capture interface: classic pcap has exactly one, pcapng one per
/// Interface Description Block (numbered across sections).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Interface {
    pub id: u32,
    pub name: Option<String>,
    pub link_type: u32,
    /// Timestamp units per second (1e6 for microsecond pcap, 1e9 for nano).
    pub ts_units_per_sec: u64,
    /// pcapng `if_tsoffset`: signed seconds added to every timestamp.
    #[serde(skip)]
    pub ts_offset_secs: i64,
    /// Why the interface's description was rejected: it keeps its number,
    /// and its packets are counted as unreadable.
    #[serde(skip)]
    pub rejected: Option<String>,
    /// Where the interface is declared (its description block).
    #[serde(skip)]
    pub declared_at: u64,
}

/// What `Record::link_type` is for records of a rejected interface: no
/// decoder knows it.
pub const LINK_TYPE_REJECTED: u32 = u32::MAX;

impl Interface {
    /// Its records can be decoded.
    pub fn readable(&self) -> bool {
        self.rejected.is_none() && link_type_supported(self.link_type)
    }

    /// Why its records cannot be decoded, if they cannot.
    pub fn unreadable_because(&self) -> Option<String> {
        if let Some(reason) = &self.rejected {
            return Some(format!("its description was rejected ({reason})"));
        }
        (!link_type_supported(self.link_type)).then(|| {
            format!(
                "link type {} ({}) is not decoded",
                self.link_type,
                link_type_name(self.link_type)
            )
        })
    }
}

impl Interface {
    /// The time of a classic pcap record: whole seconds and a fraction in
    /// the file's units. Microseconds and nanoseconds are scaled without
    /// dividing (no 128-bit division per record on the hot path); other
    /// units, or a fraction of a second or more, take the general way.
    fn timestamp_of(&self, secs: u32, frac: u32) -> Timestamp {
        let (secs, frac) = (u64::from(secs), u64::from(frac));
        let scale = match self.ts_units_per_sec {
            1_000_000 => 1_000,
            1_000_000_000 => 1,
            _ => 0,
        };
        if scale == 0 || frac >= self.ts_units_per_sec {
            return self.timestamp(secs * self.ts_units_per_sec + frac);
        }
        Timestamp::from_secs_nanos(
            secs.saturating_add_signed(self.ts_offset_secs),
            frac * scale,
        )
    }

    fn timestamp(&self, units: u64) -> Timestamp {
        let per_sec = self.ts_units_per_sec.max(1);
        let secs = units / per_sec;
        let frac = units % per_sec;
        let nanos = (frac as u128 * Timestamp::NANOS_PER_SEC as u128 / per_sec as u128) as u64;
        Timestamp::from_secs_nanos(secs.saturating_add_signed(self.ts_offset_secs), nanos)
    }
}

/// A run of whole records, the unit of parallel work.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Where the first record starts (a guess in a speculative layout).
    pub start: usize,
    /// Where the last record must end: the next chunk's start, or the end
    /// of the file.
    pub end: usize,
    /// pcapng: the global id of the first interface of the chunk's section.
    pub interface_base: u32,
    /// pcapng sections each have their own byte order.
    pub big_endian: bool,
}

/// Where a capture broke off; everything before `offset` is analyzed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncation {
    pub offset: u64,
    pub reason: String,
}

impl Truncation {
    fn at(offset: usize, reason: String) -> Truncation {
        Truncation {
            offset: offset as u64,
            reason,
        }
    }

    /// The warning printed for it.
    fn warning(&self) -> String {
        format!(
            "byte {}: {}; analyzing the records before it",
            self.offset, self.reason
        )
    }
}

/// The result of the indexing pass.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub big_endian: bool,
    pub interfaces: Vec<Interface>,
    pub chunks: Vec<Chunk>,
    /// Chunk starts are guesses that the walk confirms (classic pcap).
    pub speculative: bool,
    /// Known up front in an exact layout; a speculative one finds it in the
    /// walk of the last chunk.
    pub truncation: Option<Truncation>,
    /// Added to every record's position: where these bytes sit in the
    /// logical capture (a stream's segment, a rotated file after others).
    pub base: u64,
    /// Corrupt stretches the exact walk skipped (exact layouts only).
    pub skipped: Vec<Skip>,
    /// Classic pcap: what every record header is checked against.
    pub(crate) record_check: Option<pcap::Plausible>,
}

/// A corrupt stretch skipped by resynchronising on the next plausible
/// record (pcap) or block (pcapng).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub offset: u64,
    pub bytes: u64,
    pub reason: String,
}

impl Skip {
    fn warning(&self) -> String {
        format!(
            "bytes {}..{} skipped ({} bytes): {}; reading resumed at the next plausible record",
            self.offset,
            self.offset + self.bytes,
            self.bytes,
            self.reason
        )
    }
}

/// How the walk of a chunk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkEnd {
    /// Its records ended exactly at the chunk's end.
    Clean,
    /// The file ends inside the last record.
    Truncated(Truncation),
    /// A record crossed the chunk's end or had a corrupt header: the
    /// chunk's start was a wrong guess, or the file is damaged. Only
    /// speculative layouts end this way.
    Broken,
}

/// One captured packet, borrowing the capture's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Byte offset of the record in the file: orders records.
    pub position: u64,
    pub ts: Timestamp,
    pub interface: u32,
    pub link_type: u32,
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// A capture opened for reading: a regular file is memory-mapped whole;
/// stdin and compressed files are read as a stream, through a bounded
/// buffer.
pub enum Input {
    Mapped(Capture),
    Stream(Stream),
}

impl Input {
    /// Opens a file or `-` (stdin), recognised by its first bytes: pcap,
    /// pcapng, or either compressed with gzip or zstd.
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<Input, CaptureError> {
        match source::open(path)? {
            source::Source::Mapped(bytes) => {
                Ok(Input::Mapped(Capture::from_bytes(bytes, chunk_bytes)?))
            }
            source::Source::Stream(reader, compression) => Ok(Input::Stream(Stream::open(
                reader,
                compression,
                chunk_bytes,
            )?)),
        }
    }
}

impl Input {
    /// The timestamp of the first record, if there is one: orders rotated
    /// files. A stream reads its first segment only.
    pub fn first_timestamp(self) -> Result<Option<Timestamp>, CaptureError> {
        let first = |capture: &Capture| {
            let mut first = None;
            if let Some(chunk) = capture.layout.chunks.first() {
                capture.walk(chunk, |record| {
                    first.get_or_insert(record.ts);
                });
            }
            first
        };
        match self {
            Input::Mapped(capture) => Ok(first(&capture)),
            Input::Stream(mut stream) => {
                while let Some(segment) = stream.next_segment()? {
                    if !segment.layout.chunks.is_empty() {
                        return Ok(first(&segment));
                    }
                }
                Ok(None)
            }
        }
    }
}

/// What a report says about a capture's container, known once every
/// record has been read.
#[derive(Debug, Clone)]
pub struct CaptureInfo {
    pub format: Format,
    pub big_endian: bool,
    pub interfaces: Vec<Interface>,
    pub compression: Option<Compression>,
    /// Bytes of the capture (after decompression).
    pub bytes: u64,
    /// Problems that did not stop the analysis: a broken compressed
    /// stream, a truncated last record.
    pub warnings: Vec<String>,
    /// Corrupt stretches (rejected records and blocks) skipped.
    pub skipped: Skipped,
}

/// What resynchronisation skipped, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub stretches: u64,
    pub bytes: u64,
}

impl Skipped {
    pub fn add(&mut self, skips: &[Skip]) {
        self.stretches += skips.len() as u64;
        self.bytes += skips.iter().map(|s| s.bytes).sum::<u64>();
    }
}

impl CaptureInfo {
    /// This capture followed by `later` as one logical capture: they must
    /// declare the same interfaces, or records would be misattributed.
    pub fn then(mut self, later: CaptureInfo) -> Result<CaptureInfo, String> {
        let same = |a: &Interface, b: &Interface| {
            a.link_type == b.link_type
                && a.name == b.name
                && a.ts_units_per_sec == b.ts_units_per_sec
        };
        let agree = self.interfaces.len() == later.interfaces.len()
            && self
                .interfaces
                .iter()
                .zip(&later.interfaces)
                .all(|(a, b)| same(a, b));
        if self.format != later.format || !agree {
            return Err(format!(
                "its format or interfaces ({:?}, {} interfaces) differ from the first file's ({:?}, {})",
                later.format,
                later.interfaces.len(),
                self.format,
                self.interfaces.len()
            ));
        }
        self.bytes += later.bytes;
        self.warnings.extend(later.warnings);
        self.skipped.stretches += later.skipped.stretches;
        self.skipped.bytes += later.skipped.bytes;
        Ok(self)
    }
}

/// A capture whose bytes are all in memory (mapped, or one segment of a
/// stream), cut into chunks.
pub struct Capture {
    bytes: Bytes,
    layout: Layout,
    chunk_bytes: usize,
    /// Where the capture breaks off, once known.
    truncation: OnceLock<Truncation>,
    /// Corrupt stretches skipped, once known.
    skipped: OnceLock<Vec<Skip>>,
}

impl Capture {
    /// Cuts bytes already in memory into chunks.
    pub fn from_bytes(bytes: Bytes, chunk_bytes: usize) -> Result<Capture, CaptureError> {
        let chunk_bytes = chunk_bytes.max(1);
        let layout = if pcap::is_magic(&bytes) {
            pcap::plan(&bytes, chunk_bytes, &|start, end| bytes.release(start, end))?
        } else {
            index(
                &bytes,
                chunk_bytes,
                &|start, end| bytes.populate(start, end),
                &|start, end| bytes.release(start, end),
            )?
        };
        Ok(Capture::with_layout(bytes, layout, chunk_bytes))
    }

    /// Bytes already cut into chunks (a stream's segment).
    fn with_layout(bytes: Bytes, layout: Layout, chunk_bytes: usize) -> Capture {
        let capture = Capture {
            bytes,
            chunk_bytes,
            truncation: OnceLock::new(),
            skipped: OnceLock::new(),
            layout,
        };
        if let Some(truncation) = &capture.layout.truncation {
            capture.record_truncation(truncation.clone());
        }
        if !capture.layout.skipped.is_empty() {
            capture.record_skips(capture.layout.skipped.clone());
        }
        capture
    }

    /// Places these records after `base` bytes of earlier ones (rotated
    /// files folded as one capture): positions order records across files.
    pub fn set_base(&mut self, base: u64) {
        self.layout.base = base;
    }

    /// The container as the report shows it.
    pub fn info(&self) -> CaptureInfo {
        CaptureInfo {
            format: self.layout.format,
            big_endian: self.layout.big_endian,
            interfaces: self.layout.interfaces.clone(),
            compression: None,
            bytes: self.bytes.len() as u64,
            warnings: self.warnings(),
            skipped: {
                let mut skipped = Skipped::default();
                skipped.add(self.skipped.get().map_or(&[], Vec::as_slice));
                skipped
            },
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The layout a serial walk of every record header gives: what the
    /// pipeline falls back to when a speculative layout's guesses fail. It
    /// reports a corrupt record header as an error.
    pub fn exact_layout(&self) -> Result<Layout, CaptureError> {
        if !self.layout.speculative {
            return Ok(self.layout.clone());
        }
        let bytes = &self.bytes;
        let mut exact = index(
            bytes,
            self.chunk_bytes,
            &|start, end| bytes.populate(start, end),
            &|start, end| bytes.release(start, end),
        )?;
        exact.base = self.layout.base;
        Ok(exact)
    }

    /// Remembers where the capture breaks off (the first report wins).
    pub fn record_truncation(&self, truncation: Truncation) {
        let _ = self.truncation.set(truncation);
    }

    /// Remembers the corrupt stretches an exact walk skipped.
    pub fn record_skips(&self, skipped: Vec<Skip>) {
        let _ = self.skipped.set(skipped);
    }

    /// Corrupt stretches skipped and a truncated last record (known once
    /// the capture has been walked).
    pub fn warnings(&self) -> Vec<String> {
        let skipped = self.skipped.get().into_iter().flatten().map(Skip::warning);
        skipped
            .chain(self.truncation.get().map(Truncation::warning))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// About to read `chunk`'s bytes: see `Bytes::populate`. At most a
    /// chunk's worth: a guessed chunk over a corrupt stretch can span most
    /// of the file, and its walk stops at the first bad header.
    pub fn populate(&self, chunk: &Chunk) {
        let end = chunk.end.min(chunk.start.saturating_add(self.chunk_bytes));
        self.bytes.populate(chunk.start, end);
    }

    /// Done with `chunk`'s bytes: see `Bytes::release`.
    pub fn release(&self, chunk: &Chunk) {
        self.bytes.release(chunk.start, chunk.end);
        if matches!(self.bytes, Bytes::Mapped(..)) {
            progress::reached(chunk.end as u64);
        }
    }

    /// Calls `f` for every record of `chunk`, in file order, and says
    /// whether they ended where the chunk does.
    pub fn walk<'a>(&'a self, chunk: &Chunk, f: impl FnMut(Record<'a>)) -> WalkEnd {
        match self.layout.format {
            Format::Pcap => pcap::walk(&self.bytes, chunk, &self.layout, f),
            Format::Pcapng => {
                pcapng::for_each_record(&self.bytes, chunk, &self.layout, f);
                WalkEnd::Clean
            }
        }
    }

    /// Calls `f` for the last `n` records before `chunks[index]` (fewer at
    /// the start of the capture), in file order.
    pub fn for_each_record_before<'a>(
        &'a self,
        chunks: &[Chunk],
        index: usize,
        n: usize,
        mut f: impl FnMut(Record<'a>),
    ) {
        // Walk back chunk by chunk, keeping each one's last records, until
        // `n` are gathered.
        let mut gathered: Vec<VecDeque<Record<'a>>> = Vec::new();
        let mut count = 0;
        for earlier in chunks[..index.min(chunks.len())].iter().rev() {
            let want = n - count;
            let mut tail = VecDeque::with_capacity(want);
            self.walk(earlier, |record| {
                if tail.len() == want {
                    tail.pop_front();
                }
                tail.push_back(record);
            });
            count += tail.len();
            gathered.push(tail);
            if count >= n {
                break;
            }
        }
        for tail in gathered.into_iter().rev() {
            tail.into_iter().for_each(&mut f);
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

/// Reads a u16 in a file's byte order; callers check the length first.
fn read_u16(bytes: &[u8], big_endian: bool) -> u16 {
    let b = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

/// Detects the format and indexes the records.
fn index(
    bytes: &[u8],
    chunk_bytes: usize,
    populate: Release<'_>,
    release: Release<'_>,
) -> Result<Layout, CaptureError> {
    let mut chunker = Chunker::new(chunk_bytes, release);
    chunker.populate = populate;
    if pcap::is_magic(bytes) {
        pcap::index(bytes, chunker)
    } else if pcapng::is_magic(bytes) {
        pcapng::index(bytes, chunker)
    } else {
        Err(not_a_capture(bytes))
    }
}

/// The error for bytes that start like neither pcap nor pcapng.
fn not_a_capture(bytes: &[u8]) -> CaptureError {
    let magic = bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let kind = match identify(bytes) {
        Some(kind) => format!(": {kind}"),
        None => String::new(),
    };
    CaptureError::NotACapture { magic, kind }
}

/// What a file that is not a capture is, by its first bytes, and what to
/// do with it: the formats captures get handed over in.
fn identify(bytes: &[u8]) -> Option<&'static str> {
    const KINDS: &[(&[u8], &str)] = &[
        (
            &[0xfd, b'7', b'z', b'X', b'Z', 0],
            "it is xz-compressed, which kpcap does not read (`xz -dc FILE | kpcap analyze -`)",
        ),
        (
            b"BZh",
            "it is bzip2-compressed, which kpcap does not read (`bzip2 -dc FILE | kpcap analyze -`)",
        ),
        (
            &[0x04, 0x22, 0x4d, 0x18],
            "it is lz4-compressed, which kpcap does not read (`lz4 -dc FILE | kpcap analyze -`)",
        ),
        (
            b"PK\x03\x04",
            "it is a zip archive, which kpcap does not read (unzip it, or pack it as .tar.gz)",
        ),
        (
            &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c],
            "it is a 7z archive, which kpcap does not read (extract it, or pack it as .tar.gz)",
        ),
        (
            b"snoop\0\0\0",
            "it is a snoop capture (convert it: `editcap -F pcap FILE out.pcap`)",
        ),
    ];
    if let Some((_, kind)) = KINDS.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(kind);
    }
    if archive::is_tar_header(bytes) {
        return Some(
            "it is a tar archive (`kpcap analyze` and `kpcap scan` read the captures in it)",
        );
    }
    let start = &bytes[..bytes.len().min(64)];
    let text = |b: &u8| b.is_ascii_graphic() || b.is_ascii_whitespace();
    (!start.is_empty() && start.iter().all(text)).then_some("it is text")
}

/// Called with each byte range the indexing pass is done with.
type Release<'a> = &'a dyn Fn(usize, usize);

/// Cuts the record stream into chunks of about `target` bytes. The indexers
/// feed it every record start; `cut` forces a boundary (pcapng sections).
struct Chunker<'a> {
    target: usize,
    chunks: Vec<Chunk>,
    open: Option<Chunk>,
    release: Release<'a>,
    /// Called with a range a resynchronisation is about to scan.
    populate: Release<'a>,
}

/// Bytes a resynchronisation scans between two asks and releases.
const SCAN_WINDOW: usize = 8 << 20;

/// A resynchronisation's pass over a long stretch of a mapped file: each
/// window is asked for ahead and released behind, so the stretch neither
/// stays resident nor faults in page by page.
struct Scan<'c, 'a> {
    pager: &'c Chunker<'a>,
    len: usize,
    released: usize,
    asked: usize,
}

impl<'c, 'a> Scan<'c, 'a> {
    fn new(pager: &'c Chunker<'a>, from: usize, len: usize) -> Self {
        Scan {
            pager,
            len,
            released: from,
            asked: from,
        }
    }

    /// About to look at `at`.
    #[inline]
    fn at(&mut self, at: usize) {
        crate::ops::step(1);
        if at - self.released >= SCAN_WINDOW {
            (self.pager.release)(self.released, at);
            self.released = at;
        }
        if at >= self.asked {
            self.asked = (at + SCAN_WINDOW).min(self.len);
            (self.pager.populate)(at, self.asked);
        }
    }

    /// Done, having looked up to `end`.
    fn done(self, end: usize) {
        (self.pager.release)(self.released, end.min(self.len));
    }
}

impl<'a> Chunker<'a> {
    fn new(target: usize, release: Release<'a>) -> Self {
        Chunker {
            target,
            chunks: Vec::new(),
            open: None,
            release,
            populate: &|_, _| {},
        }
    }

    /// A complete record spans `start..end`.
    fn record(&mut self, start: usize, end: usize, interface_base: u32, big_endian: bool) {
        let chunk = self.open.get_or_insert(Chunk {
            start,
            end,
            interface_base,
            big_endian,
        });
        chunk.end = end;
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

    fn finish(mut self) -> Vec<Chunk> {
        self.cut();
        self.chunks
    }
}

#[cfg(test)]
mod tests {
    use super::Interface;

    /// The shortcut for microsecond and nanosecond pcap gives what the
    /// general conversion gives, fractions of a second or more included.
    #[test]
    fn timestamp_of_matches_the_general_conversion() {
        let fracs = [0, 1, 999, 999_999, 1_000_000, 999_999_999, u32::MAX];
        for units in [1_000_000, 1_000_000_000, 100, 1 << 20] {
            for offset in [0, 3600, -3600] {
                let interface = Interface {
                    id: 0,
                    name: None,
                    link_type: 1,
                    ts_units_per_sec: units,
                    ts_offset_secs: offset,
                    ..Interface::default()
                };
                for secs in [0, 1, 1_700_000_000, u32::MAX] {
                    for frac in fracs {
                        let general =
                            interface.timestamp(u64::from(secs) * units + u64::from(frac));
                        assert_eq!(
                            interface.timestamp_of(secs, frac),
                            general,
                            "{units} {secs} {frac}"
                        );
                    }
                }
            }
        }
    }
}
