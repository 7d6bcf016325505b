//! pcapng: a sequence of blocks. Section headers set the byte order and
//! reset the interface list; interface descriptions give each interface its
//! link type, name and timestamp resolution; packet blocks carry the data.

use super::{
    read_u16, read_u32, Chunk, Chunker, Format, Interface, Layout, Record, Scan, Skip, Truncation,
    LINK_TYPE_REJECTED, MAX_RECORD_LEN,
};
use crate::error::CaptureError;
use byteorder_slice::{BigEndian, LittleEndian};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, RawBlock};
use pcap_file::PcapError;

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;
const BLOCK_OVERHEAD: usize = 12;
const PACKET_FIELDS_LEN: usize = 20;
/// Non-packet blocks (names, statistics, journal entries) can be larger than
/// a packet but never this large.
const MAX_BLOCK_LEN: usize = 16 << 20;

pub fn is_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&SECTION_HEADER.to_be_bytes())
}

fn corrupt(offset: usize, reason: impl Into<String>) -> CaptureError {
    CaptureError::CorruptBlock {
        offset: offset as u64,
        reason: reason.into(),
    }
}

fn raw_block(bytes: &[u8], big_endian: bool) -> Result<RawBlock<'_>, PcapError> {
    let parsed = if big_endian {
        RawBlock::from_slice::<BigEndian>(bytes)
    } else {
        RawBlock::from_slice::<LittleEndian>(bytes)
    };
    parsed.map(|(_, block)| block)
}

fn parse_block(raw: RawBlock<'_>, big_endian: bool) -> Result<Block<'_>, PcapError> {
    if big_endian {
        Block::try_from_raw_block::<BigEndian>(raw)
    } else {
        Block::try_from_raw_block::<LittleEndian>(raw)
    }
}

/// The fixed fields of a packet block, with `data` borrowed from the body.
struct PacketFields<'a> {
    interface: u32,
    ts_units: u64,
    orig_len: u32,
    data: &'a [u8],
}

fn packet_fields(kind: u32, body: &[u8], big_endian: bool) -> Result<PacketFields<'_>, String> {
    let u32_at = |at: usize| read_u32(&body[at..], big_endian);
    if kind == SIMPLE_PACKET {
        if body.len() < 4 {
            return Err("simple packet block shorter than its fixed fields".into());
        }
        let orig_len = u32_at(0);
        let data = &body[4..];
        let caplen = (orig_len as usize).min(data.len());
        return Ok(PacketFields {
            interface: 0,
            ts_units: 0,
            orig_len,
            data: &data[..caplen],
        });
    }
    if body.len() < PACKET_FIELDS_LEN {
        return Err("packet block shorter than its fixed fields".into());
    }
    let interface = if kind == OBSOLETE_PACKET {
        // Interface id is 16 bits here, followed by a drop counter.
        u32::from(read_u16(body, big_endian))
    } else {
        u32_at(0)
    };
    let ts_units = (u32_at(4) as u64) << 32 | u32_at(8) as u64;
    let caplen = u32_at(12) as usize;
    let data = body
        .get(PACKET_FIELDS_LEN..PACKET_FIELDS_LEN.saturating_add(caplen))
        .ok_or_else(|| {
            format!(
                "captured length {caplen} runs past the end of its block ({} bytes of data)",
                body.len() - PACKET_FIELDS_LEN
            )
        })?;
    Ok(PacketFields {
        interface,
        ts_units,
        orig_len: u32_at(16),
        data,
    })
}

fn is_packet(kind: u32) -> bool {
    matches!(kind, ENHANCED_PACKET | OBSOLETE_PACKET | SIMPLE_PACKET)
}

/// Units per second from the `if_tsresol` option: 10^-n or, with the top bit
/// set, 2^-n seconds per unit.
fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exponent = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 != 0 {
        1u64.checked_shl(exponent)
    } else {
        10u64.checked_pow(exponent)
    }
}

/// The interface an IDB declares; one whose options make its records
/// unreadable keeps its number, with why in `rejected`.
fn interface_from(
    id: u32,
    link_type: u32,
    options: &[InterfaceDescriptionOption<'_>],
    declared_at: usize,
) -> Interface {
    let mut interface = Interface {
        id,
        name: None,
        link_type,
        ts_units_per_sec: 1_000_000,
        ts_offset_secs: 0,
        rejected: None,
        declared_at: declared_at as u64,
    };
    for option in options {
        match option {
            InterfaceDescriptionOption::IfName(name) => interface.name = Some(name.to_string()),
            InterfaceDescriptionOption::IfTsResol(r) => match units_per_sec(*r) {
                Some(units) => interface.ts_units_per_sec = units,
                None => interface.rejected = Some(format!("if_tsresol {r:#04x} is out of range")),
            },
            // Signed in the pcapng specification; pcap-file reads it unsigned.
            InterfaceDescriptionOption::IfTsOffset(secs) => interface.ts_offset_secs = *secs as i64,
            _ => {}
        }
    }
    interface
}

/// Validates every block header and cuts the file into chunks; a new
/// section always starts a new chunk.
pub fn index(bytes: &[u8], mut chunker: Chunker<'_>) -> Result<Layout, CaptureError> {
    let mut sections = Sections::default();
    let mut skipped = Vec::new();
    let (_, truncation) =
        sections.index_blocks(bytes, 0, true, true, &mut chunker, &mut skipped)?;
    let mut layout = sections.layout(chunker.finish(), truncation);
    layout.skipped = skipped;
    Ok(layout)
}

/// What the blocks read so far have declared: the interfaces (numbered
/// across sections) and the current section's byte order. A stream
/// carries it from one buffer to the next.
#[derive(Debug, Clone, Default)]
pub(super) struct Sections {
    interfaces: Vec<Interface>,
    section_base: u32,
    big_endian: bool,
    file_big_endian: Option<bool>,
}

impl Sections {
    pub(super) fn layout(&self, chunks: Vec<Chunk>, truncation: Option<Truncation>) -> Layout {
        Layout {
            format: Format::Pcapng,
            big_endian: self.file_big_endian.unwrap_or(false),
            interfaces: self.interfaces.clone(),
            chunks,
            speculative: false,
            truncation,
            base: 0,
            skipped: Vec::new(),
            record_check: None,
        }
    }

    /// Validates the blocks of `bytes` from `offset` on, hands packet
    /// blocks to the chunker and takes in section and interface blocks.
    /// Returns where the whole blocks end, and the block cut short there,
    /// if any (`at_end` false: the bytes not read yet of a stream).
    ///
    /// A bad block is skipped by its length when its framing (leading and
    /// trailing lengths) holds; otherwise reading resumes at the next
    /// offset where a block of a known type with matching lengths starts.
    /// Both are recorded in `skipped`. Only a bad first block of the file
    /// (`at_file_start`) is an error: then it is not a pcapng capture.
    pub(super) fn index_blocks(
        &mut self,
        bytes: &[u8],
        mut offset: usize,
        at_file_start: bool,
        at_end: bool,
        chunker: &mut Chunker<'_>,
        skipped: &mut Vec<Skip>,
    ) -> Result<(usize, Option<Truncation>), CaptureError> {
        loop {
            let error = match self.index_strict(bytes, offset, at_file_start, chunker) {
                Ok(done) => return Ok(done),
                Err(error) if at_file_start && error.offset() == Some(0) => return Err(error),
                Err(error) => error,
            };
            let at = error.offset().unwrap_or(offset as u64) as usize;
            let (resume, decided) = match self.framed_len(bytes, at) {
                Some(len) => (at + len, true),
                None => match next_block(bytes, at, at_end, chunker) {
                    Some(next) => next,
                    None => (bytes.len(), at_end),
                },
            };
            chunker.cut();
            // The skip says where; its offset in `bytes` is not the file's
            // in a stream.
            let reason = error.without_offset();
            match skipped.last_mut() {
                // Blocks skipped one after another make one stretch.
                Some(last) if last.offset + last.bytes == at as u64 => {
                    last.bytes += (resume - at) as u64
                }
                _ => skipped.push(Skip {
                    offset: at as u64,
                    bytes: (resume - at) as u64,
                    reason,
                }),
            }
            offset = resume;
            if !decided {
                // A stream: what follows is read with the next bytes.
                let reason = format!("{error}, more bytes needed");
                return Ok((offset, Some(Truncation::at(offset, reason))));
            }
        }
    }

    /// The length of the block at `at` if its framing holds: a valid
    /// leading length, repeated at its end.
    fn framed_len(&self, bytes: &[u8], at: usize) -> Option<usize> {
        framed_len(bytes, at, self.big_endian)
    }

    /// `index_blocks` without recovery: stops at the first bad block.
    fn index_strict(
        &mut self,
        bytes: &[u8],
        mut offset: usize,
        at_file_start: bool,
        chunker: &mut Chunker<'_>,
    ) -> Result<(usize, Option<Truncation>), CaptureError> {
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let first = at_file_start && offset == 0;
            if rest.len() < BLOCK_OVERHEAD {
                if first {
                    return Err(CaptureError::TruncatedHeader {
                        offset: 0,
                        what: "pcapng section header",
                        needed: 28,
                        available: rest.len() as u64,
                    });
                }
                let reason = format!("last block header cut short ({} bytes)", rest.len());
                return Ok((offset, Some(Truncation::at(offset, reason))));
            }
            let kind = read_u32(rest, self.big_endian);
            if kind == SECTION_HEADER {
                self.big_endian = match rest[8..12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        return Err(corrupt(
                            offset,
                            "section header with a bad byte-order magic",
                        ))
                    }
                };
                self.file_big_endian.get_or_insert(self.big_endian);
            }
            let big_endian = self.big_endian;
            let len = read_u32(&rest[4..], big_endian) as usize;
            if len < BLOCK_OVERHEAD || !len.is_multiple_of(4) {
                return Err(corrupt(
                    offset,
                    format!("block length {len} is not a multiple of 4 of at least 12"),
                ));
            }
            let limit = if is_packet(kind) {
                MAX_RECORD_LEN as usize + 64 * 1024
            } else {
                MAX_BLOCK_LEN
            };
            if len > limit {
                return Err(if is_packet(kind) {
                    CaptureError::RecordTooLong {
                        offset: offset as u64,
                        length: len as u64,
                        limit: MAX_RECORD_LEN as u64,
                    }
                } else {
                    corrupt(offset, format!("block length {len} exceeds {limit} bytes"))
                });
            }
            if len > rest.len() {
                if first {
                    return Err(CaptureError::TruncatedHeader {
                        offset: 0,
                        what: "pcapng section header",
                        needed: len as u64,
                        available: rest.len() as u64,
                    });
                }
                let reason = format!("last block cut short ({} of {len} bytes)", rest.len());
                return Ok((offset, Some(Truncation::at(offset, reason))));
            }
            let raw =
                raw_block(&rest[..len], big_endian).map_err(|e| corrupt(offset, e.to_string()))?;
            if raw.trailer_len as usize != len {
                return Err(corrupt(
                    offset,
                    format!(
                        "trailing length {} differs from leading length {len}",
                        raw.trailer_len
                    ),
                ));
            }
            match kind {
                SECTION_HEADER => {
                    parse_block(raw, big_endian).map_err(|e| corrupt(offset, e.to_string()))?;
                    chunker.cut();
                    self.section_base = self.interfaces.len() as u32;
                }
                INTERFACE_DESCRIPTION => {
                    let id = self.interfaces.len() as u32;
                    let link_type = raw.body.get(..2).map_or(0, |b| read_u16(b, big_endian));
                    let parsed = parse_block(raw, big_endian)
                        .map_err(|e| e.to_string())
                        .and_then(|block| {
                            (block.into_interface_description())
                                .ok_or_else(|| "interface description did not parse".to_string())
                        });
                    match parsed {
                        Ok(idb) => {
                            let interface =
                                interface_from(id, u32::from(idb.linktype), &idb.options, offset);
                            self.interfaces.push(interface);
                        }
                        Err(reason) => {
                            // It still takes its number: the packets of the
                            // interfaces after it keep theirs.
                            self.interfaces.push(Interface {
                                id,
                                link_type: u32::from(link_type),
                                ts_units_per_sec: 1_000_000,
                                rejected: Some(reason.clone()),
                                declared_at: offset as u64,
                                ..Interface::default()
                            });
                            return Err(corrupt(offset, reason));
                        }
                    }
                }
                _ if is_packet(kind) => {
                    self.check_packet(kind, &raw.body, offset)?;
                    chunker.record(offset, offset + len, self.section_base, big_endian);
                }
                _ => {} // statistics, name resolution, custom blocks: not records
            }
            offset += len;
        }
        Ok((offset, None))
    }

    /// A packet block's fields parse, fit the record limit, and name an
    /// interface of its section with a link type kpcap decodes.
    fn check_packet(&self, kind: u32, body: &[u8], offset: usize) -> Result<(), CaptureError> {
        let fields = packet_fields(kind, body, self.big_endian).map_err(|r| corrupt(offset, r))?;
        if fields.data.len() > MAX_RECORD_LEN as usize {
            return Err(CaptureError::RecordTooLong {
                offset: offset as u64,
                length: fields.data.len() as u64,
                limit: MAX_RECORD_LEN as u64,
            });
        }
        let id = self.section_base as u64 + fields.interface as u64;
        // Records of interfaces kpcap cannot decode (rejected, unsupported
        // link types) are read, and counted as such by the decoder.
        if self.interfaces.get(id as usize).is_none() {
            return Err(corrupt(
                offset,
                format!(
                    "packet on interface {} but its section declares {}",
                    fields.interface,
                    self.interfaces.len() as u32 - self.section_base
                ),
            ));
        }
        Ok(())
    }
}

/// Block types kpcap knows (a resynchronisation looks for these).
const KNOWN_BLOCKS: [u32; 9] = [
    SECTION_HEADER,
    INTERFACE_DESCRIPTION,
    OBSOLETE_PACKET,
    SIMPLE_PACKET,
    4, // name resolution
    5, // interface statistics
    ENHANCED_PACKET,
    10,          // decryption secrets
    0x0000_0BAD, // custom
];

/// Whether `word` is a known block type (read in one byte order): a few
/// compares per candidate, which is most of a resynchronisation's cost
/// over a long corrupt stretch.
#[inline]
fn known_block(word: u32) -> bool {
    // Every known type but the section header is below 0x1000.
    (word < 0x1000 || word == SECTION_HEADER) && KNOWN_BLOCKS.contains(&word)
}

/// The length of a block at `at` whose leading and trailing lengths agree.
fn framed_len(bytes: &[u8], at: usize, big_endian: bool) -> Option<usize> {
    let head = bytes.get(at..at + 8)?;
    let len = read_u32(&head[4..], big_endian) as usize;
    if len < BLOCK_OVERHEAD || !len.is_multiple_of(4) || len > MAX_BLOCK_LEN {
        return None;
    }
    let trailer = bytes.get(at.checked_add(len)? - 4..at + len)?;
    (read_u32(trailer, big_endian) as usize == len).then_some(len)
}

/// The next offset after `at`, in 4-byte steps, where a known block type
/// starts with agreeing lengths (in either byte order), and whether that
/// is decided: in a stream (not `at_end`), a known type whose length runs
/// past the bytes read so far, or the last few bytes, may still be a block
/// once more bytes are read. Linear; a mapped file is read a window at a
/// time, asked for ahead and released behind (a long corrupt stretch
/// neither stays resident nor faults in page by page).
fn next_block(bytes: &[u8], at: usize, at_end: bool, pager: &Chunker<'_>) -> Option<(usize, bool)> {
    let last = bytes.len().saturating_sub(BLOCK_OVERHEAD - 1);
    let mut scan = Scan::new(pager, at, bytes.len());
    let mut found = None;
    for candidate in (at + 4..last).step_by(4) {
        scan.at(candidate);
        let word: [u8; 4] = bytes[candidate..candidate + 4].try_into().expect("4 bytes");
        let (little, big) = (
            known_block(u32::from_le_bytes(word)),
            known_block(u32::from_be_bytes(word)),
        );
        let framing_in = |big_endian: bool| {
            if framed_len(bytes, candidate, big_endian).is_some() {
                return Some(true);
            }
            let len = read_u32(&bytes[candidate + 4..], big_endian) as usize;
            let plausible = len >= BLOCK_OVERHEAD && len.is_multiple_of(4) && len <= MAX_BLOCK_LEN;
            (!at_end && plausible && candidate + len > bytes.len()).then_some(false)
        };
        let framing = match (little, big) {
            (false, false) => None,
            (true, false) => framing_in(false),
            (false, true) => framing_in(true),
            (true, true) => framing_in(false).or_else(|| framing_in(true)),
        };
        if let Some(decided) = framing {
            found = Some((candidate, decided));
            break;
        }
    }
    scan.done(found.map_or(bytes.len(), |(c, _)| c));
    match found {
        // The first candidate not examined yet.
        None if !at_end => {
            let first = at + 4;
            Some((first + last.saturating_sub(first).div_ceil(4) * 4, false))
        }
        found => found,
    }
}

/// Walks the (already validated) packet blocks of one chunk of `file`.
pub fn for_each_record<'a>(
    file: &'a [u8],
    chunk: &Chunk,
    layout: &Layout,
    mut f: impl FnMut(Record<'a>),
) {
    let mut bytes = &file[chunk.start..chunk.end];
    while bytes.len() >= BLOCK_OVERHEAD {
        let position = (chunk.end - bytes.len()) as u64;
        let kind = read_u32(bytes, chunk.big_endian);
        let len = read_u32(&bytes[4..], chunk.big_endian) as usize;
        let block = &bytes[..len];
        bytes = &bytes[len..];
        if !is_packet(kind) {
            continue;
        }
        // `index` validated this block's framing: the body lies between the
        // 8-byte header and the 4-byte trailing length.
        let body = &block[8..len - 4];
        let Ok(fields) = packet_fields(kind, body, chunk.big_endian) else {
            continue;
        };
        let id = chunk.interface_base + fields.interface;
        let interface = &layout.interfaces[id as usize];
        f(Record {
            position: layout.base + position,
            ts: interface.timestamp(fields.ts_units),
            interface: id,
            link_type: match interface.rejected {
                None => interface.link_type,
                Some(_) => LINK_TYPE_REJECTED,
            },
            orig_len: fields.orig_len,
            data: fields.data,
        });
    }
}
