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
    // ripgrep. kpcap never writes through the map.
    match unsafe { memmap2::MmapOptions::new().populate().map(&file) } {
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
