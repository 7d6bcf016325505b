//! Typed errors of the library. The binary adds the file name and turns them
//! into one-line messages and exit code 2.

use thiserror::Error;

/// Why a capture could not be read. Every variant that concerns the bytes
/// carries the byte offset where the problem was found.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("cannot read")]
    Io(#[from] std::io::Error),
    #[error("is a directory, not a capture file: `kpcap scan` sweeps a directory")]
    IsDirectory,
    #[error("empty file (0 bytes), not a capture")]
    Empty,
    #[error("standard input is a terminal, not a capture: pipe one in (`tcpdump -w - | kpcap analyze -`) or name a file")]
    StdinIsTerminal,
    #[error("byte 0: not a pcap or pcapng capture{kind} (first bytes {magic})")]
    NotACapture {
        magic: String,
        /// What the bytes are instead, if known: `: a zip archive, ...`.
        kind: String,
    },
    #[error("byte {offset}: {what} cut short: {needed} bytes needed, {available} available")]
    TruncatedHeader {
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("byte {offset}: unsupported pcap version {major}.{minor} (only 2.x exists)")]
    UnsupportedVersion { offset: u64, major: u16, minor: u16 },
    #[error("byte {offset}: unsupported link type {link_type} ({name}){interface}")]
    UnsupportedLinkType {
        offset: u64,
        link_type: u32,
        name: &'static str,
        interface: String,
    },
    #[error("byte {offset}: record length {length} exceeds the {limit}-byte limit (corrupt record header)")]
    RecordTooLong {
        offset: u64,
        length: u64,
        limit: u64,
    },
    #[error("byte {offset}: corrupt pcapng block: {reason}")]
    CorruptBlock { offset: u64, reason: String },
    #[error("cannot be read as a continuation of the files before it: {reason}")]
    Mismatch { reason: String },
    #[error("--interface {wanted}: no such interface in the capture, which has {available}")]
    NoSuchInterface { wanted: String, available: String },
    #[error("byte {offset}: no interface of the capture has a link type kpcap decodes ({types})")]
    NoReadableInterface { offset: u64, types: String },
    #[error("byte {offset} of the decompressed capture: corrupt {compression} stream: {reason}")]
    Decompress {
        offset: u64,
        compression: &'static str,
        reason: String,
    },
}

impl CaptureError {
    /// Where in the capture the problem is, if it is in the bytes.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::TruncatedHeader { offset, .. }
            | CaptureError::UnsupportedVersion { offset, .. }
            | CaptureError::UnsupportedLinkType { offset, .. }
            | CaptureError::RecordTooLong { offset, .. }
            | CaptureError::CorruptBlock { offset, .. }
            | CaptureError::NoReadableInterface { offset, .. }
            | CaptureError::Decompress { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// The message without its leading `byte N: `, for a report that says
    /// where already.
    pub fn without_offset(&self) -> String {
        let text = self.to_string();
        match (self.offset(), text.split_once(": ")) {
            (Some(offset), Some((head, rest))) if head == format!("byte {offset}") => rest.into(),
            _ => text,
        }
    }

    /// The same error, its offset counted from `by` bytes earlier: errors
    /// found in a stream's buffer are reported at their place in the
    /// capture.
    pub fn shifted(mut self, by: u64) -> CaptureError {
        match &mut self {
            CaptureError::TruncatedHeader { offset, .. }
            | CaptureError::UnsupportedVersion { offset, .. }
            | CaptureError::UnsupportedLinkType { offset, .. }
            | CaptureError::RecordTooLong { offset, .. }
            | CaptureError::CorruptBlock { offset, .. }
            | CaptureError::NoReadableInterface { offset, .. }
            | CaptureError::Decompress { offset, .. } => *offset += by,
            CaptureError::Io(_)
            | CaptureError::IsDirectory
            | CaptureError::Empty
            | CaptureError::StdinIsTerminal
            | CaptureError::NotACapture { .. }
            | CaptureError::Mismatch { .. }
            | CaptureError::NoSuchInterface { .. } => {}
        }
        self
    }
}

/// Why a command-line setting was rejected.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("--{flag}: '{value}' is not a CIDR (expected e.g. 10.42.0.0/16 or fd00::/48)")]
    BadCidr { flag: &'static str, value: String },
    #[error("--threads: {0}")]
    Threads(String),
    #[error(
        "--ifname: '{0}' is not INDEX=NAME or MAC=NAME (e.g. 3=ens19, 52:54:00:12:34:56=ens19)"
    )]
    BadIfname(String),
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
}
