//! Where a capture's bytes come from: a memory map for regular files, a
//! stream for stdin and for gzip'ed or zstd'ed files.

use crate::error::CaptureError;
use flate2::read::MultiGzDecoder;
use memmap2::Mmap;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom};
use std::path::Path;

/// The whole capture as one byte slice, however it was obtained.
pub enum Bytes {
    /// Watched for SIGBUS while mapped (`sigbus`).
    Mapped(Mmap, super::sigbus::Watch),
    Owned(Vec<u8>),
}

/// `release` works in units of this: a multiple of every page size Linux
/// uses (4 KiB, 16 KiB, 64 KiB).
const RELEASE_ALIGN: usize = 64 << 10;

impl Bytes {
    /// Tells the kernel this process is done with `start..end` of a mapped
    /// file, so its pages stop counting in the resident set: memory stays
    /// bounded by the work in flight, not by the capture's size. The pages
    /// stay in the page cache; reading them again maps them again, with the
    /// same contents. Owned bytes are kept.
    pub fn release(&self, start: usize, end: usize) {
        let Bytes::Mapped(map, _) = self else {
            return;
        };
        // Ranges under a unit are left mapped, as `populate` leaves them to
        // the fault handler: released one record at a time (tests cut
        // captures into chunks of one record), each madvise and refault of
        // the unit its neighbours still read cost more than the walk.
        if end.saturating_sub(start) < RELEASE_ALIGN {
            return;
        }
        // Every aligned unit the range touches, the ones it shares with its
        // neighbours too: a unit left to neither side stays resident, 64 KiB
        // per chunk boundary (32 MiB of a 2 GiB capture). A neighbour still
        // reading a shared unit faults it in again (see below).
        let from = start / RELEASE_ALIGN * RELEASE_ALIGN;
        let to = end
            .div_ceil(RELEASE_ALIGN)
            .saturating_mul(RELEASE_ALIGN)
            .min(map.len());
        if from >= to {
            return;
        }
        // SAFETY: the map is a private, read-only mapping of a file that
        // kpcap never writes. MADV_DONTNEED drops this process's mapping of
        // the pages; a later read faults them in again from the page cache
        // with identical bytes, so a slice over them still sees the same
        // data (memmap2 marks it unsafe because for anonymous or written
        // mappings the contents would change). The caller has finished
        // reading the range.
        #[cfg(unix)]
        unsafe {
            let _ = map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from);
        }
    }

    /// Maps `start..end` of a mapped file into this process's page tables
    /// before it is walked. Faulted in as the walk reaches each page, the
    /// walk stalled on every fault, and the prefetches it issues ahead of
    /// itself were dropped for pages not mapped yet. So one byte is read
    /// every `FAULT_AROUND` bytes first: each read faults in the pages
    /// around it that the page cache holds, `FAULT_AROUND` at a time.
    /// (`MADV_POPULATE_READ` does the same work page by page, through the
    /// kernel's get_user_pages, and costs more.) Ranges under 64 KiB are
    /// left to the walk (tests cut captures into chunks of one record).
    /// Best effort: where the kernel maps less around a fault, the walk
    /// faults in the rest.
    pub fn populate(&self, start: usize, end: usize) {
        if let Bytes::Mapped(map, _) = self {
            if end.saturating_sub(start) < RELEASE_ALIGN || end > map.len() {
                return;
            }
            for at in (start..end).step_by(FAULT_AROUND) {
                // SAFETY: `at` is inside the map. A read of a mapped file
                // that shrank raises SIGBUS, which `sigbus` reports as the
                // walk's own reads would be.
                unsafe { std::ptr::read_volatile(map.as_ptr().add(at)) };
            }
        }
    }
}

/// What Linux maps around a read fault of a file's page by default
/// (`fault_around_bytes`).
const FAULT_AROUND: usize = 64 << 10;

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m, _) => m,
            Bytes::Owned(v) => v,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a compressed capture was compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub fn label(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Where the bytes of a capture come from.
pub enum Source {
    /// A regular, uncompressed file.
    Mapped(Bytes),
    /// stdin, or a compressed file: read once, front to back.
    Stream(Box<dyn Read + Send>, Option<Compression>),
}

/// Opens `path` (`-` is stdin) and tells by its first bytes how to read
/// it: a plain regular file is memory-mapped, anything else streamed
/// (through a gzip or zstd decoder when the magic says so).
pub fn open(path: &Path) -> Result<Source, CaptureError> {
    if path.as_os_str() == "-" {
        // Nothing typed is a capture: waiting for it would look like a hang.
        if std::io::stdin().is_terminal() {
            return Err(CaptureError::StdinIsTerminal);
        }
        let stdin = super::progress::Counted::new(std::io::stdin());
        return stream(BufReader::with_capacity(STREAM_BUFFER, stdin));
    }
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(CaptureError::IsDirectory);
    }
    if meta.is_file() && meta.len() == 0 {
        return Err(CaptureError::Empty);
    }
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic)?;
    if compression(&magic[..n]).is_some() || !meta.is_file() {
        file.seek(SeekFrom::Start(0))?;
        let file = super::progress::Counted::new(file);
        return stream(BufReader::with_capacity(STREAM_BUFFER, file));
    }
    Ok(Source::Mapped(map_or_read(file, path)?))
}

/// Compressed bytes read from the file at a time.
const STREAM_BUFFER: usize = 1 << 20;

/// The compression a file's first bytes announce, if any.
pub fn compression(magic: &[u8]) -> Option<Compression> {
    if magic.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if magic.starts_with(&ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else {
        None
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The largest zstd window decoded (2 GiB, the format's limit on 64-bit
/// hosts): what `zstd --long=31` writes.
const ZSTD_WINDOW_LOG_MAX: u32 = 31;

/// A stream, decompressed if its first bytes are a gzip or zstd magic.
fn stream(reader: impl BufRead + Send + 'static) -> Result<Source, CaptureError> {
    let (reader, compression) = decompressed(reader)?;
    Ok(Source::Stream(reader, compression))
}

/// `reader`'s bytes, through a gzip or zstd decoder if its first bytes
/// announce one, and which.
pub(super) fn decompressed(
    mut reader: impl BufRead + Send + 'static,
) -> Result<(Box<dyn Read + Send>, Option<Compression>), CaptureError> {
    let magic = reader.fill_buf()?;
    Ok(match compression(magic) {
        Some(Compression::Gzip) => (
            Box::new(MultiGzDecoder::new(reader)),
            Some(Compression::Gzip),
        ),
        Some(Compression::Zstd) => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
            // Frames written with `zstd --long` declare windows up to 2 GiB;
            // the decoder refuses more than 128 MiB unless told. The window
            // is what the file's writer chose: valid files are read.
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            (Box::new(decoder), Some(Compression::Zstd))
        }
        None => (Box::new(reader), None),
    })
}

/// How `path` is compressed, by its first bytes (None if unreadable).
pub fn compression_of(path: &Path) -> Option<Compression> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut File::open(path).ok()?, &mut magic).ok()?;
    compression(&magic[..n])
}

/// Reads a file whole, memory-mapped when possible: the floor benchmark.
pub fn load(path: &Path) -> Result<Bytes, CaptureError> {
    let file = File::open(path)?;
    map_or_read(file, path)
}

/// Maps a regular file; falls back to reading it (pipes, special files).
fn map_or_read(mut file: File, path: &Path) -> Result<Bytes, CaptureError> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates the file while we read it, accesses past the new end
    // raise SIGBUS, which `sigbus` turns into one line and exit 2. kpcap
    // never writes through the map. Not populated: pages are faulted in as
    // they are read, and released behind (`Bytes::release`).
    match unsafe { memmap2::MmapOptions::new().map(&file) } {
        Ok(map) => {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            let name = path.to_string_lossy();
            let watch = super::sigbus::watch(map.as_ptr(), map.len(), &name);
            Ok(Bytes::Mapped(map, watch))
        }
        Err(_) => {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            Ok(Bytes::Owned(buf))
        }
    }
}
