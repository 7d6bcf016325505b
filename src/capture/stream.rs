//! Captures read front to back (stdin, gzip and zstd files), through a
//! bounded buffer: each segment is a few chunks' worth of whole records,
//! analyzed in parallel like a mapped file while the next one is read.
//! Memory stays bounded by the segment size, whatever the capture's size.
//!
//! A record cut by the end of a segment's read is carried over to the
//! next segment; one cut by the end of the stream is the capture's
//! truncation.

use super::pcapng::Sections;
use super::source::Compression;
use super::{
    not_a_capture, pcap, pcapng, Capture, CaptureInfo, Chunk, Chunker, Layout, Skip, Truncation,
};
use crate::error::CaptureError;
use pcap_file::pcap::PcapHeader;
use std::io::Read;

/// Chunks per segment: enough for every thread to get several runs.
const SEGMENT_CHUNKS: usize = 8;
/// Enough for any file header (tests use tiny chunks, and so many segments).
const MIN_SEGMENT_BYTES: usize = 4 << 10;

/// The least a segment's buffer grows by while it fills.
const GROW_STEP: usize = 1 << 20;

/// What has been learned of the container so far.
enum Container {
    Pcap {
        header: PcapHeader,
        check: pcap::Plausible,
        /// The last segment ended inside a corrupt stretch.
        resyncing: bool,
    },
    Pcapng(Sections),
}

/// A capture read as a stream, one segment at a time.
pub struct Stream {
    reader: Box<dyn Read + Send>,
    compression: Option<Compression>,
    container: Container,
    chunk_bytes: usize,
    /// Bytes read and not yet handed out in a segment: a partial record.
    pending: Vec<u8>,
    /// Offset in the capture of `pending[0]`.
    offset: u64,
    /// Where the capture sits in a logical capture of several files.
    base: u64,
    /// The reader has nothing more to give.
    ended: bool,
    /// Bytes of a last record cut short, left out of every segment.
    dropped: u64,
    warnings: Vec<String>,
    skipped: super::Skipped,
    /// A corrupt stretch that reached the end of the last segment: the
    /// next one may go on with it. Warned about once it ends.
    open_skip: Option<Skip>,
}

impl Stream {
    /// Reads the container's header (and the first segment's bytes).
    pub fn open(
        reader: Box<dyn Read + Send>,
        compression: Option<Compression>,
        chunk_bytes: usize,
    ) -> Result<Stream, CaptureError> {
        let chunk_bytes = chunk_bytes.max(1);
        let mut stream = Stream {
            reader,
            compression,
            container: Container::Pcapng(Sections::default()),
            chunk_bytes,
            pending: Vec::new(),
            offset: 0,
            base: 0,
            ended: false,
            dropped: 0,
            skipped: super::Skipped::default(),
            warnings: Vec::new(),
            open_skip: None,
        };
        stream.fill(stream.segment_bytes())?;
        let start = &stream.pending;
        if start.is_empty() {
            return Err(CaptureError::Empty);
        }
        if pcap::is_magic(start) {
            let header = pcap::header(start)?;
            let check = pcap::Plausible::new(&header, start.get(pcap::GLOBAL_HEADER_LEN..));
            stream.pending.drain(..pcap::GLOBAL_HEADER_LEN);
            stream.offset = pcap::GLOBAL_HEADER_LEN as u64;
            stream.container = Container::Pcap {
                header,
                check,
                resyncing: false,
            };
        } else if !pcapng::is_magic(start) {
            return Err(not_a_capture(start));
        }
        Ok(stream)
    }

    /// Places this capture after `base` bytes of earlier ones.
    pub fn set_base(&mut self, base: u64) {
        self.base = base;
    }

    fn segment_bytes(&self) -> usize {
        self.chunk_bytes
            .saturating_mul(SEGMENT_CHUNKS)
            .max(MIN_SEGMENT_BYTES)
    }

    /// Reads until `pending` holds `target` bytes or the stream ends. A
    /// stream that breaks off (corrupt compressed data, a read error)
    /// ends there, with a warning; at its very start it is an error.
    fn fill(&mut self, target: usize) -> Result<(), CaptureError> {
        let mut have = self.pending.len();
        if have >= target || self.ended {
            return Ok(());
        }
        while have < target {
            // Grown as bytes arrive, not to `target` at once: a segment
            // can be far larger than the stream (a small file read with
            // large chunks), and zeroing it all cost seconds and gigabytes.
            if have == self.pending.len() {
                let grown = have.saturating_mul(2).max(have + GROW_STEP);
                self.pending.resize(grown.min(target), 0);
            }
            match self.reader.read(&mut self.pending[have..]) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => have += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.offset + have as u64;
                    self.ended = true;
                    let Some(compression) = self.compression else {
                        self.pending.truncate(have);
                        return Err(e.into());
                    };
                    if at == 0 {
                        return Err(CaptureError::Decompress {
                            offset: 0,
                            compression: compression.label(),
                            reason: e.to_string(),
                        });
                    }
                    self.warnings.push(format!(
                        "byte {at}: {} stream broken ({e}); analyzing what was decompressed before it",
                        compression.label()
                    ));
                    break;
                }
            }
        }
        self.pending.truncate(have);
        Ok(())
    }

    /// The next few chunks' worth of whole records, or None at the end.
    pub fn next_segment(&mut self) -> Result<Option<Capture>, CaptureError> {
        let mut target = self.segment_bytes();
        loop {
            if self.pending.is_empty() && self.ended {
                if let Some(done) = self.open_skip.take() {
                    self.close_skip(done);
                }
                return Ok(None);
            }
            self.fill(target)?;
            let mut chunker = Chunker::new(self.chunk_bytes, &|_, _| {});
            let at_file_start = self.offset == 0;
            let mut skipped = Vec::new();
            let (end, cut) = match &mut self.container {
                Container::Pcap {
                    check, resyncing, ..
                } => pcap::index_records(
                    &self.pending,
                    0,
                    check,
                    self.ended,
                    resyncing,
                    &mut chunker,
                    &mut skipped,
                ),
                Container::Pcapng(sections) => sections
                    .index_blocks(
                        &self.pending,
                        0,
                        at_file_start,
                        self.ended,
                        &mut chunker,
                        &mut skipped,
                    )
                    .map_err(|e| e.shifted(self.offset))?,
            };
            if end == 0 && cut.is_some() && !self.ended {
                // Not even one whole record yet: read more.
                target = target.max(self.pending.len()).saturating_mul(2);
                continue;
            }
            self.add_skips(skipped, end);
            let chunks = chunker.finish();
            let rest = self.pending.split_off(end);
            let bytes = std::mem::replace(&mut self.pending, rest);
            let truncation = match cut {
                Some(cut) if self.ended => {
                    self.dropped = self.pending.len() as u64;
                    self.pending.clear();
                    let truncation = Truncation {
                        offset: self.offset + cut.offset,
                        reason: cut.reason,
                    };
                    self.warnings.push(truncation.warning());
                    Some(truncation)
                }
                _ => None,
            };
            let mut layout = self.layout(chunks, truncation);
            layout.base = self.base + self.offset;
            self.offset += end as u64;
            return Ok(Some(Capture::with_layout(
                super::Bytes::Owned(bytes),
                layout,
                self.chunk_bytes,
            )));
        }
    }

    /// Files the corrupt stretches of a segment that ends `end` bytes into
    /// `pending`: one that goes on from the last segment's open stretch
    /// extends it, and one that reaches the segment's end stays open.
    fn add_skips(&mut self, skipped: Vec<Skip>, end: usize) {
        for mut skip in skipped {
            skip.offset += self.offset;
            match &mut self.open_skip {
                Some(open) if open.offset + open.bytes == skip.offset => open.bytes += skip.bytes,
                open => {
                    if let Some(done) = open.replace(skip) {
                        self.close_skip(done);
                    }
                }
            }
        }
        let segment_end = self.offset + end as u64;
        let still_open = (self.open_skip.as_ref())
            .is_some_and(|open| open.offset + open.bytes == segment_end && !self.ended);
        if !still_open {
            if let Some(done) = self.open_skip.take() {
                self.close_skip(done);
            }
        }
    }

    fn close_skip(&mut self, skip: Skip) {
        self.skipped.add(std::slice::from_ref(&skip));
        self.warnings.push(skip.warning());
    }

    fn layout(&self, chunks: Vec<Chunk>, truncation: Option<Truncation>) -> Layout {
        match &self.container {
            Container::Pcap { header, .. } => pcap::layout(header, chunks, false, truncation),
            Container::Pcapng(sections) => sections.layout(chunks, truncation),
        }
    }

    /// The container as the report shows it; complete once every segment
    /// has been read (pcapng interfaces can be declared late).
    pub fn info(&self) -> CaptureInfo {
        let layout = self.layout(Vec::new(), None);
        CaptureInfo {
            format: layout.format,
            big_endian: layout.big_endian,
            interfaces: layout.interfaces,
            compression: self.compression,
            bytes: self.offset + self.pending.len() as u64 + self.dropped,
            warnings: self.warnings.clone(),
            skipped: self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_stream_read_with_huge_chunks_holds_only_its_bytes() {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        bytes.extend([0; 8]);
        bytes.extend(65535u32.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        for i in 0..100u32 {
            bytes.extend(i.to_le_bytes());
            bytes.extend([0; 4]);
            bytes.extend(60u32.to_le_bytes());
            bytes.extend(60u32.to_le_bytes());
            bytes.extend([0u8; 60]);
        }
        let reader = Box::new(std::io::Cursor::new(bytes));
        let mut stream = Stream::open(reader, None, 1_000_000_000).unwrap();
        // A segment of 8 GB was zeroed whole before the first read.
        assert!(
            stream.pending.capacity() <= 2 * GROW_STEP,
            "{}",
            stream.pending.capacity()
        );
        let segment = stream.next_segment().unwrap().unwrap();
        let mut records = 0;
        for chunk in &segment.layout().chunks {
            segment.walk(chunk, |_| records += 1);
        }
        assert_eq!(records, 100);
    }
}
