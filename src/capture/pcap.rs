//! Classic libpcap files: a 24-byte global header, then records of a 16-byte
//! header and the packet bytes. Both byte orders, micro- and nanoseconds.

use super::{
    read_u32, Chunk, Chunker, Format, Interface, Layout, Record, Release, Scan, Skip, Truncation,
    WalkEnd, MAX_RECORD_LEN, SCAN_WINDOW,
};
use crate::capture::{link_type_name, link_type_supported};
use crate::error::CaptureError;
use pcap_file::pcap::PcapHeader;
use pcap_file::{Endianness, TsResolution};

pub(super) const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
const MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];

pub fn is_magic(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && MAGICS.iter().any(|m| bytes[..4] == m[..])
}

pub(super) fn header(bytes: &[u8]) -> Result<PcapHeader, CaptureError> {
    if bytes.len() < GLOBAL_HEADER_LEN {
        return Err(CaptureError::TruncatedHeader {
            offset: 0,
            what: "pcap global header",
            needed: GLOBAL_HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    }
    let (_, header) = PcapHeader::from_slice(bytes).map_err(|e| CaptureError::NotACapture {
        magic: e.to_string(),
        kind: String::new(),
    })?;
    if header.version_major != 2 {
        return Err(CaptureError::UnsupportedVersion {
            offset: 4,
            major: header.version_major,
            minor: header.version_minor,
        });
    }
    let link_type = u32::from(header.datalink);
    if !link_type_supported(link_type) {
        return Err(CaptureError::UnsupportedLinkType {
            offset: 20,
            link_type,
            name: link_type_name(link_type),
            interface: String::new(),
        });
    }
    Ok(header)
}

/// Validates every record header, serially, and cuts the file into
/// chunks: the exact layout. Corrupt stretches are skipped (see
/// `index_records`).
pub fn index(bytes: &[u8], mut chunker: Chunker<'_>) -> Result<Layout, CaptureError> {
    let header = header(bytes)?;
    let check = Plausible::new(&header, bytes.get(GLOBAL_HEADER_LEN..));
    let mut skipped = Vec::new();
    let (_, truncation) = index_records(
        bytes,
        GLOBAL_HEADER_LEN,
        &check,
        true,
        &mut false,
        &mut chunker,
        &mut skipped,
    );
    let mut layout = layout(&header, chunker.finish(), false, truncation);
    layout.skipped = skipped;
    Ok(layout)
}

/// Validates the record headers of `bytes` from `offset` on and hands each
/// whole record to the chunker. Returns where the whole records end, and
/// the record cut short there, if any (the file's end, or in a stream the
/// bytes not read yet: `at_end` is false).
///
/// A header that is not plausible (a garbage length, a timestamp years
/// away, zeroes) starts a corrupt stretch: reading resumes at the next
/// offset where a run of plausible headers begins, and the stretch is
/// recorded in `skipped`. In a stream, a stretch that reaches the end of
/// the bytes read so far is recorded up to where a run may still begin,
/// and `resyncing` is left set: the next call goes on searching from
/// there rather than trusting the header it starts at. So a stream holds a
/// bounded window of a corrupt stretch, however long it is.
pub(super) fn index_records(
    bytes: &[u8],
    mut offset: usize,
    check: &Plausible,
    at_end: bool,
    resyncing: &mut bool,
    chunker: &mut Chunker<'_>,
    skipped: &mut Vec<Skip>,
) -> (usize, Option<Truncation>) {
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (search_from, reason) = if *resyncing {
            (offset, None)
        } else {
            if rest.len() < RECORD_HEADER_LEN {
                let reason = format!(
                    "last record header cut short ({} of {RECORD_HEADER_LEN} bytes)",
                    rest.len()
                );
                return (offset, Some(Truncation::at(offset, reason)));
            }
            match check.header(&rest[..RECORD_HEADER_LEN]) {
                Ok(()) => {
                    let incl_len = read_u32(&rest[8..], check.big_endian);
                    let end = offset + RECORD_HEADER_LEN + incl_len as usize;
                    if end > bytes.len() {
                        let reason = format!(
                            "last record cut short ({} of {} packet bytes)",
                            rest.len() - RECORD_HEADER_LEN,
                            incl_len
                        );
                        return (offset, Some(Truncation::at(offset, reason)));
                    }
                    chunker.record(offset, end, 0, check.big_endian);
                    offset = end;
                    continue;
                }
                Err(reason) => (offset + 1, Some(reason)),
            }
        };
        chunker.cut();
        let found = find_resume(bytes, search_from, check, at_end, chunker);
        let resume = match found {
            Some((at, Run::Holds)) => at,
            _ if at_end => bytes.len(),
            Some((at, _)) => at,
            None => bytes.len(),
        };
        let reason = reason.map_or("corrupt record header".to_string(), |r| {
            format!("corrupt record header ({r})")
        });
        add_skip(skipped, offset, resume, reason);
        offset = resume;
        *resyncing = !matches!(found, Some((_, Run::Holds))) && !at_end;
        if *resyncing {
            let reason = "corrupt record headers, more bytes needed".to_string();
            return (offset, Some(Truncation::at(offset, reason)));
        }
    }
    (offset, None)
}

/// Records the corrupt stretch `from..to`, as part of the previous one if
/// it ends where this one starts.
fn add_skip(skipped: &mut Vec<Skip>, from: usize, to: usize, reason: String) {
    if to <= from {
        return;
    }
    match skipped.last_mut() {
        Some(last) if last.offset + last.bytes == from as u64 => last.bytes += (to - from) as u64,
        _ => skipped.push(Skip {
            offset: from as u64,
            bytes: (to - from) as u64,
            reason,
        }),
    }
}

/// The first offset from `from` on where a run of plausible record headers
/// starts, or (in a stream) may start once more bytes are read. Linear:
/// each offset is tried once, and a stretch of zeros (no header there has
/// an original length) is crossed a word at a time. A mapped file is read
/// a window at a time, asked for ahead and released behind, so a long
/// stretch neither stays resident nor faults in page by page.
fn find_resume(
    bytes: &[u8],
    from: usize,
    check: &Plausible,
    at_end: bool,
    pager: &Chunker<'_>,
) -> Option<(usize, Run)> {
    let mut at = from;
    let mut scan = Scan::new(pager, from, bytes.len());
    let found = loop {
        if at >= bytes.len() {
            break None;
        }
        scan.at(at);
        if bytes.get(at + 12..at + 16) == Some(&[0; 4]) {
            // Every header starting before the next non-zero byte, less
            // 15, has a zero original length.
            // A window at a time, so what was read is released as it goes.
            let window = &bytes[..(at + 16 + SCAN_WINDOW).min(bytes.len())];
            let nonzero = next_nonzero(window, at + 16).unwrap_or(window.len());
            at = nonzero.saturating_sub(15).max(at + 1);
            continue;
        }
        match check.run_from(bytes, at, at_end) {
            Run::Breaks => at += 1,
            run => break Some((at, run)),
        }
    };
    scan.done(at);
    found
}

/// The offset of the first non-zero byte of `bytes` at or after `from`.
fn next_nonzero(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let words = rest.chunks_exact(8);
    let tail = words.remainder();
    let word = words
        .clone()
        .position(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) != 0);
    let within = match word {
        Some(w) => w * 8 + rest[w * 8..w * 8 + 8].iter().position(|&b| b != 0)?,
        None => rest.len() - tail.len() + tail.iter().position(|&b| b != 0)?,
    };
    Some(from + within)
}

/// Whether a run of plausible record headers starts at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    Holds,
    Breaks,
    /// The bytes end before the run is decided: a stream has more to read.
    Undecided,
}

pub(super) fn layout(
    header: &PcapHeader,
    chunks: Vec<Chunk>,
    speculative: bool,
    truncation: Option<Truncation>,
) -> Layout {
    Layout {
        format: Format::Pcap,
        big_endian: header.endianness == Endianness::Big,
        interfaces: vec![Interface {
            id: 0,
            name: None,
            link_type: u32::from(header.datalink),
            ts_units_per_sec: units_per_sec(header),
            declared_at: 20,
            ..Interface::default()
        }],
        chunks,
        speculative,
        truncation,
        base: 0,
        skipped: Vec::new(),
        record_check: Some(Plausible::new(header, None)),
    }
}

fn units_per_sec(header: &PcapHeader) -> u64 {
    match header.ts_resolution {
        TsResolution::MicroSecond => 1_000_000,
        TsResolution::NanoSecond => 1_000_000_000,
    }
}

/// How many consecutive plausible record headers make a guessed chunk
/// start; a wrong guess costs a serial re-walk, never a wrong answer.
const PLAUSIBLE_RUN: usize = 8;

/// How far past a split point a record start is looked for: two of the
/// longest records.
const SEARCH_SPAN: usize = 2 * (RECORD_HEADER_LEN + MAX_RECORD_LEN as usize);

/// The speculative layout: a split point every `chunk_bytes`, each moved
/// forward to the first offset where a run of plausible record headers
/// begins. Reads only the file header and a few records per split point.
///
/// A read at a split point can make the kernel map a whole large folio
/// around it (megabytes), so each probed region is released at once:
/// otherwise planning alone would map a good part of the file.
pub fn plan(
    bytes: &[u8],
    chunk_bytes: usize,
    release: Release<'_>,
) -> Result<Layout, CaptureError> {
    let header = header(bytes)?;
    let check = Plausible::new(&header, bytes.get(GLOBAL_HEADER_LEN..));
    let mut starts = vec![GLOBAL_HEADER_LEN];
    // Everything before `searched` has been looked at: no offset is tried
    // twice, so planning is linear in the file size.
    let mut searched = GLOBAL_HEADER_LEN + 1;
    let mut split = GLOBAL_HEADER_LEN.saturating_add(chunk_bytes);
    // Where the probes not yet released began.
    let mut unreleased: Option<usize> = None;
    while split < bytes.len() {
        let from = split.max(searched);
        let to = from.saturating_add(SEARCH_SPAN).min(bytes.len());
        match (from..to).find(|&at| check.run_at(bytes, at)) {
            Some(start) => {
                starts.push(start);
                searched = start + 1;
            }
            None => searched = to,
        }
        // Generous: a folio is at most 2 MiB, a plausible run at most
        // `PLAUSIBLE_RUN` records past `to`. Released once per `AROUND`
        // of progress, not per split: with chunks of a record each, a
        // release per split was millions of madvise calls.
        const AROUND: usize = 4 << 20;
        let probed_end =
            to.saturating_add(PLAUSIBLE_RUN * (RECORD_HEADER_LEN + MAX_RECORD_LEN as usize));
        let first_probed = *unreleased.get_or_insert(from);
        split = split.saturating_add(chunk_bytes);
        if from >= first_probed.saturating_add(AROUND) || split >= bytes.len() {
            release(
                first_probed.saturating_sub(AROUND),
                probed_end.saturating_add(AROUND),
            );
            unreleased = None;
        }
    }
    let big_endian = header.endianness == Endianness::Big;
    let ends = starts.iter().skip(1).copied().chain([bytes.len()]);
    let chunks = starts
        .iter()
        .zip(ends)
        .filter(|(start, end)| **start < *end)
        .map(|(&start, end)| Chunk {
            start,
            end,
            interface_base: 0,
            big_endian,
        })
        .collect();
    let mut layout = layout(&header, chunks, true, None);
    layout.record_check = Some(check);
    Ok(layout)
}

/// Why a record header is not believed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Implausible {
    OverLimit(u32),
    ZeroOriginal,
    OverOriginal(u32, u32),
    Fraction(u32),
}

impl std::fmt::Display for Implausible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Implausible::OverLimit(len) => {
                write!(
                    f,
                    "record length {len} exceeds the {MAX_RECORD_LEN}-byte limit"
                )
            }
            Implausible::ZeroOriginal => write!(f, "original length 0"),
            Implausible::OverOriginal(incl, orig) => write!(
                f,
                "captured length {incl} exceeds the original length {orig}"
            ),
            Implausible::Fraction(frac) => {
                write!(f, "timestamp fraction {frac} is a second or more")
            }
        }
    }
}

/// What a real record header looks like in this file: lengths within
/// limits, a fraction below one second, and seconds near the first
/// record's (captures span days, not decades).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plausible {
    big_endian: bool,
    units_per_sec: u32,
    first_secs: Option<u32>,
}

impl Plausible {
    const SPAN_SECS: u32 = 366 * 86_400;

    /// `records` starts with the file's first record, if known; its
    /// seconds are trusted if its lengths are sane.
    pub(super) fn new(header: &PcapHeader, records: Option<&[u8]>) -> Self {
        let big_endian = header.endianness == Endianness::Big;
        let first_secs = records
            .and_then(|r| r.get(..RECORD_HEADER_LEN))
            .map(|h| header_fields(h, big_endian))
            .filter(|&(_, _, incl, orig)| incl <= MAX_RECORD_LEN && incl <= orig)
            .map(|(secs, ..)| secs);
        Plausible {
            big_endian,
            units_per_sec: units_per_sec(header) as u32,
            first_secs,
        }
    }

    /// Why a 16-byte record header is not believable, if it is not.
    /// Cheap: resynchronisation asks at every offset of a damaged stretch.
    pub(super) fn header(&self, header: &[u8]) -> Result<(), Implausible> {
        self.fields(header_fields(header, self.big_endian))
    }

    /// `header` for fields already read.
    fn fields(
        &self,
        (_, frac, incl_len, orig_len): (u32, u32, u32, u32),
    ) -> Result<(), Implausible> {
        if incl_len > MAX_RECORD_LEN {
            Err(Implausible::OverLimit(incl_len))
        } else if orig_len == 0 {
            Err(Implausible::ZeroOriginal)
        } else if incl_len > orig_len {
            Err(Implausible::OverOriginal(incl_len, orig_len))
        } else if frac >= self.units_per_sec {
            Err(Implausible::Fraction(frac))
        } else {
            Ok(())
        }
    }

    /// A header that could start a resynchronisation: believable, and
    /// stamped near the first record. (Inside an unbroken chain of records
    /// the time is not checked: real captures can be concatenations years
    /// apart.)
    fn resumes_at(&self, header: &[u8]) -> bool {
        let (secs, ..) = header_fields(header, self.big_endian);
        let near_first = self
            .first_secs
            .is_none_or(|first| secs.abs_diff(first) <= Self::SPAN_SECS);
        near_first && self.header(header).is_ok()
    }

    /// `PLAUSIBLE_RUN` headers chain from `at` (or fewer, ending exactly
    /// at the end of `bytes`).
    pub(super) fn run_at(&self, bytes: &[u8], at: usize) -> bool {
        self.run_from(bytes, at, true) == Run::Holds
    }

    /// Whether `PLAUSIBLE_RUN` headers chain from `at`. At the end of the
    /// file (`at_end`) a chain that ends exactly there holds and one that
    /// runs past it breaks; in a stream both are undecided.
    fn run_from(&self, bytes: &[u8], mut at: usize, at_end: bool) -> Run {
        let past_the_end = if at_end { Run::Breaks } else { Run::Undecided };
        for _ in 0..PLAUSIBLE_RUN {
            if at == bytes.len() {
                return if at_end { Run::Holds } else { Run::Undecided };
            }
            let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN) else {
                return past_the_end;
            };
            if !self.resumes_at(header) {
                return Run::Breaks;
            }
            let (_, _, incl_len, _) = header_fields(header, self.big_endian);
            at += RECORD_HEADER_LEN + incl_len as usize;
            if at > bytes.len() {
                return past_the_end;
            }
        }
        Run::Holds
    }
}

/// Walks the records of one chunk of `file`, checking each header as
/// `index` does, and says whether the last one ended at the chunk's end.
pub fn walk<'a>(
    file: &'a [u8],
    chunk: &Chunk,
    layout: &Layout,
    mut f: impl FnMut(Record<'a>),
) -> WalkEnd {
    let interface = &layout.interfaces[0];
    let big_endian = layout.big_endian;
    let check = layout.record_check.as_ref();
    let at_file_end = chunk.end == file.len();
    let within = &file[..chunk.end];
    let mut offset = chunk.start;
    let mut prefetch = Prefetch::new(file, chunk);
    while offset < chunk.end {
        prefetch.ahead_of(offset);
        let Some(header) = within.get(offset..offset + RECORD_HEADER_LEN) else {
            return cut_short(at_file_end, offset, || {
                format!(
                    "last record header cut short ({} of {RECORD_HEADER_LEN} bytes)",
                    file.len() - offset
                )
            });
        };
        let fields = header_fields(header, big_endian);
        let (ts_sec, ts_frac, incl_len, orig_len) = fields;
        if check.is_some_and(|c| c.fields(fields).is_err()) {
            // A wrong guess, or a corrupt stretch the exact walk skips.
            return WalkEnd::Broken;
        }
        let start = offset + RECORD_HEADER_LEN;
        let end = start + incl_len as usize;
        let Some(data) = within.get(start..end) else {
            return cut_short(at_file_end, offset, || {
                format!(
                    "last record cut short ({} of {incl_len} packet bytes)",
                    file.len() - start
                )
            });
        };
        f(Record {
            position: layout.base + offset as u64,
            ts: interface.timestamp_of(ts_sec, ts_frac),
            interface: 0,
            link_type: interface.link_type,
            orig_len,
            data,
        });
        offset = end;
    }
    WalkEnd::Clean
}

/// Asks the CPU for the cache lines a little ahead of the walk. Each
/// record header says where the next one is, so a plain walk waits for
/// memory once per record; asking for every line ahead turns it into a
/// sequential read, which is what the memory system is fast at.
struct Prefetch<'a> {
    file: &'a [u8],
    /// The first line not yet asked for.
    next: usize,
    end: usize,
}

impl<'a> Prefetch<'a> {
    const DISTANCE: usize = 4096;

    fn new(file: &'a [u8], chunk: &Chunk) -> Self {
        Prefetch {
            file,
            next: chunk.start,
            end: chunk.end,
        }
    }

    #[inline]
    fn ahead_of(&mut self, offset: usize) {
        let until = (offset + Self::DISTANCE).min(self.end);
        while self.next < until {
            crate::prefetch::line(self.file.as_ptr().wrapping_add(self.next));
            self.next += crate::prefetch::LINE;
        }
    }
}

/// A record header's seconds, fraction, captured and original lengths.
fn header_fields(header: &[u8], big_endian: bool) -> (u32, u32, u32, u32) {
    let field = |at: usize| read_u32(&header[at..], big_endian);
    (field(0), field(4), field(8), field(12))
}

/// A record that does not fit before the chunk's end: the file's last,
/// cut short, or a sign of a wrong chunk start.
fn cut_short(at_file_end: bool, offset: usize, reason: impl FnOnce() -> String) -> WalkEnd {
    if at_file_end {
        WalkEnd::Truncated(Truncation {
            offset: offset as u64,
            reason: reason(),
        })
    } else {
        WalkEnd::Broken
    }
}
