//! Where a capture's bytes live: a memory map for regular files, a buffer
//! for streams (stdin) and for gzip'ed files, which must be inflated first.

use crate::error::CaptureError;
use flate2::read::MultiGzDecoder;
use memmap2::Mmap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The whole capture as one byte slice, however it was obtained.
pub enum Bytes {
    Mapped(Mmap),
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
        let Bytes::Mapped(map) = self else {
            return;
        };
        // Whole aligned units inside the range only: never a neighbour's.
        let from = start.div_ceil(RELEASE_ALIGN) * RELEASE_ALIGN;
        let to = end.min(map.len()) / RELEASE_ALIGN * RELEASE_ALIGN;
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
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A capture's bytes and how they were obtained.
pub struct Loaded {
    pub bytes: Bytes,
    pub gzip: bool,
    /// Set when a gzip stream broke off: the bytes inflated before the damage
    /// are still analyzed.
    pub warning: Option<String>,
}

/// Opens `path` (`-` is stdin) and returns its bytes, inflated if gzip'ed.
/// Regular files are memory-mapped, not read.
pub fn load(path: &Path) -> Result<Loaded, CaptureError> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        Bytes::Owned(buf)
    } else {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(CaptureError::IsDirectory);
        }
        if meta.len() == 0 {
            return Err(CaptureError::Empty);
        }
        map_or_read(file)?
    };
    if bytes.is_empty() {
        return Err(CaptureError::Empty);
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        let (inflated, warning) = gunzip(&bytes)?;
        return Ok(Loaded {
            bytes: Bytes::Owned(inflated),
            gzip: true,
            warning,
        });
    }
    Ok(Loaded {
        bytes,
        gzip: false,
        warning: None,
    })
}

/// Maps a regular file; falls back to reading it (pipes, special files).
fn map_or_read(mut file: File) -> Result<Bytes, CaptureError> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates the file while we read it, accesses past the new end
    // raise SIGBUS; that is the accepted cost of zero-copy reading, as in
    // ripgrep. kpcap never writes through the map. Not populated: pages are
    // faulted in as they are read, and released behind (`Bytes::release`).
    match unsafe { memmap2::MmapOptions::new().map(&file) } {
        Ok(map) => {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            Ok(Bytes::Mapped(map))
        }
        Err(_) => {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            Ok(Bytes::Owned(buf))
        }
    }
}

/// Inflates a (possibly multi-member) gzip stream. A stream that breaks off
/// after some output keeps that output, with a warning.
fn gunzip(compressed: &[u8]) -> Result<(Vec<u8>, Option<String>), CaptureError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4));
    let mut decoder = MultiGzDecoder::new(compressed);
    match decoder.read_to_end(&mut out) {
        Ok(_) => Ok((out, None)),
        Err(e) if !out.is_empty() => {
            let warning = format!(
                "gzip stream broken after {} inflated bytes ({e}); analyzing what was inflated",
                out.len()
            );
            Ok((out, Some(warning)))
        }
        Err(e) => Err(CaptureError::Gzip {
            reason: e.to_string(),
        }),
    }
}
