//! Classic libpcap files: a 24-byte global header, then records of a 16-byte
//! header and the packet bytes. Both byte orders, micro- and nanoseconds.

use super::{
    read_u32, Chunk, Chunker, Format, Interface, Layout, Record, Truncation, MAX_RECORD_LEN,
};
use crate::capture::{link_type_name, link_type_supported};
use crate::error::CaptureError;
use pcap_file::pcap::PcapHeader;
use pcap_file::{Endianness, TsResolution};

const GLOBAL_HEADER_LEN: usize = 24;
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

fn header(bytes: &[u8]) -> Result<PcapHeader, CaptureError> {
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

/// Validates every record header and cuts the file into chunks.
pub fn index(bytes: &[u8], mut chunker: Chunker<'_>) -> Result<Layout, CaptureError> {
    let header = header(bytes)?;
    let big_endian = header.endianness == Endianness::Big;
    let mut offset = GLOBAL_HEADER_LEN;
    let mut truncation = None;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < RECORD_HEADER_LEN {
            truncation = Some(Truncation {
                offset: offset as u64,
                reason: format!(
                    "last record header cut short ({} of {RECORD_HEADER_LEN} bytes)",
                    rest.len()
                ),
            });
            break;
        }
        let incl_len = read_u32(&rest[8..], big_endian);
        if incl_len > MAX_RECORD_LEN {
            return Err(CaptureError::RecordTooLong {
                offset: offset as u64,
                length: incl_len as u64,
                limit: MAX_RECORD_LEN as u64,
            });
        }
        let end = offset + RECORD_HEADER_LEN + incl_len as usize;
        if end > bytes.len() {
            truncation = Some(Truncation {
                offset: offset as u64,
                reason: format!(
                    "last record cut short ({} of {} packet bytes)",
                    rest.len() - RECORD_HEADER_LEN,
                    incl_len
                ),
            });
            break;
        }
        chunker.record(offset, end, 0, big_endian);
        offset = end;
    }
    let (chunks, records) = chunker.finish();
    let ts_units_per_sec = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000_000,
        TsResolution::NanoSecond => 1_000_000_000,
    };
    Ok(Layout {
        format: Format::Pcap,
        big_endian,
        interfaces: vec![Interface {
            id: 0,
            name: None,
            link_type: u32::from(header.datalink),
            ts_units_per_sec,
            ts_offset_secs: 0,
        }],
        chunks,
        records,
        truncation,
    })
}

/// Walks the (already validated) records of one chunk of `file`: the
/// index checked every header, so this reads the four fields directly.
pub fn for_each_record<'a>(
    file: &'a [u8],
    chunk: &Chunk,
    layout: &Layout,
    mut f: impl FnMut(Record<'a>),
) {
    let interface = &layout.interfaces[0];
    let big_endian = layout.big_endian;
    let mut offset = chunk.start;
    let mut index = chunk.first_record;
    while offset + RECORD_HEADER_LEN <= chunk.end {
        let header = &file[offset..offset + RECORD_HEADER_LEN];
        let field = |at: usize| read_u32(&header[at..], big_endian);
        let (ts_sec, ts_frac, incl_len, orig_len) = (field(0), field(4), field(8), field(12));
        let start = offset + RECORD_HEADER_LEN;
        let Some(data) = file.get(start..start + incl_len as usize) else {
            return; // unreachable: `index` checked every length
        };
        let units = ts_sec as u64 * interface.ts_units_per_sec + ts_frac as u64;
        f(Record {
            index,
            ts: interface.timestamp(units),
            interface: 0,
            link_type: interface.link_type,
            orig_len,
            data,
        });
        index += 1;
        offset = start + incl_len as usize;
    }
}
