//! A zero-copy view of a DNS message's header and first question: all the
//! DNS detector needs to match queries to responses and tally rcodes.
//! Resource records are not parsed.

use std::borrow::Cow;
use std::fmt::Write;

pub const HEADER_LEN: usize = 12;
/// Compression pointers followed before a name is called malformed; also
/// bounds the work a crafted name can cause.
const MAX_POINTER_HOPS: usize = 16;
/// Longest presentation name kept (RFC 1035 limits names to 255 octets).
const MAX_NAME_LEN: usize = 255;

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const REFUSED: u8 = 5;

    /// The mnemonic of a 4-bit header rcode (RFC 6895).
    pub fn name(code: u8) -> &'static str {
        match code {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            11 => "DSOTYPENI",
            _ => "RESERVED",
        }
    }
}

/// The mnemonic of a common query type, else `TYPE<n>` (RFC 3597 style).
pub fn qtype_name(qtype: u16) -> Cow<'static, str> {
    let known = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        _ => return Cow::Owned(format!("TYPE{qtype}")),
    };
    Cow::Borrowed(known)
}

/// A DNS message, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct DnsMessage<'a> {
    bytes: &'a [u8],
}

impl<'a> DnsMessage<'a> {
    /// The message's wire bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// A view of `bytes` if it holds at least a plausible header: opcode
    /// QUERY..DSO (0..=6) and, for queries, at least one question. Anything
    /// else on the DNS port is not treated as DNS.
    pub fn parse(bytes: &'a [u8]) -> Option<DnsMessage<'a>> {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        let message = DnsMessage { bytes };
        if message.opcode() > 6 || (!message.is_response() && message.question_count() == 0) {
            return None;
        }
        Some(message)
    }

    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    pub fn is_response(&self) -> bool {
        self.bytes[2] & 0x80 != 0
    }

    pub fn opcode(&self) -> u8 {
        (self.bytes[2] >> 3) & 0x0f
    }

    /// The 4-bit header rcode (extended EDNS rcodes are not combined in).
    pub fn rcode(&self) -> u8 {
        self.bytes[3] & 0x0f
    }

    pub fn question_count(&self) -> u16 {
        u16::from_be_bytes([self.bytes[4], self.bytes[5]])
    }

    /// The first question's name (lowercase, dot-separated, no trailing dot;
    /// "." for the root) and type, if the message carries a readable one.
    pub fn question(&self) -> Option<(String, u16)> {
        // Room for most names at once, rather than growing byte by byte.
        let mut name = String::with_capacity(48);
        let qtype = self.question_into(&mut name)?;
        Some((name, qtype))
    }

    /// `question`, with the name written into `name` (cleared first), so
    /// a reader of many messages reuses one buffer.
    pub fn question_into(&self, name: &mut String) -> Option<u16> {
        name.clear();
        if self.question_count() == 0 {
            return None;
        }
        let end = read_name(self.bytes, HEADER_LEN, name)?;
        let qtype = self.bytes.get(end..end + 2)?;
        Some(u16::from_be_bytes([qtype[0], qtype[1]]))
    }

    /// The first question's name as it is on the wire (its labels, the
    /// root label included) and its type, if the name is uncompressed, as
    /// a question's nearly always is. A reader of many messages can key
    /// what it learnt of a name (`question`) on these bytes, and skip
    /// decoding names it has seen.
    pub fn question_wire(&self) -> Option<(&'a [u8], u16)> {
        if self.question_count() == 0 {
            return None;
        }
        let mut pos = HEADER_LEN;
        loop {
            let len = *self.bytes.get(pos)? as usize;
            if len & 0xc0 != 0 || pos - HEADER_LEN > MAX_NAME_LEN {
                return None;
            }
            pos += 1 + len;
            if len == 0 {
                break;
            }
        }
        let qtype = self.bytes.get(pos..pos + 2)?;
        Some((
            &self.bytes[HEADER_LEN..pos],
            u16::from_be_bytes([qtype[0], qtype[1]]),
        ))
    }
}

/// Reads the name at `start` into `name`, following compression pointers.
/// Returns the offset just past it in the uncompressed part.
fn read_name(bytes: &[u8], start: usize, name: &mut String) -> Option<usize> {
    let mut pos = start;
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *bytes.get(pos)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label = bytes.get(pos + 1..pos + 1 + len)?;
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(name, label);
                if name.len() > MAX_NAME_LEN {
                    return None;
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = *bytes.get(pos + 1)? as usize;
                end.get_or_insert(pos + 2);
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return None;
                }
                pos = ((len & 0x3f) << 8) | low;
            }
            _ => return None, // 0x40 / 0x80: obsolete or reserved label types
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    Some(end.unwrap_or(pos + 1))
}

/// A label in presentation format (see `push_label_byte`); a label of
/// plain printable ASCII, nearly every one, is copied whole.
fn push_label(name: &mut String, label: &[u8]) {
    let plain = |b: &u8| matches!(b, 0x21..=0x7e) && !matches!(b, b'.' | b'\\');
    match std::str::from_utf8(label) {
        Ok(text) if label.iter().all(plain) => {
            let start = name.len();
            name.push_str(text);
            name.as_mut_str()[start..].make_ascii_lowercase();
        }
        _ => label.iter().for_each(|&b| push_label_byte(name, b)),
    }
}

/// Presentation format: printable ASCII lowercased, dots and other bytes
/// escaped (`\.`, `\DDD`) so a name always prints on one line.
fn push_label_byte(name: &mut String, b: u8) {
    match b {
        b'.' | b'\\' => {
            name.push('\\');
            name.push(b as char);
        }
        0x21..=0x7e => name.push(b.to_ascii_lowercase() as char),
        _ => {
            let _ = write!(name, "\\{b:03}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::frame::dns_message;

    #[test]
    fn reads_header_and_question() {
        let bytes = dns_message(0x1234, true, rcode::NXDOMAIN, "GHCR.io", 28, None);
        let m = DnsMessage::parse(&bytes).expect("valid");
        assert_eq!(m.id(), 0x1234);
        assert!(m.is_response());
        assert_eq!(m.rcode(), rcode::NXDOMAIN);
        assert_eq!(m.question(), Some(("ghcr.io".to_string(), 28)));
    }

    #[test]
    fn follows_compression_pointers_and_rejects_loops() {
        // Question name = pointer to offset 12, which is itself: a loop.
        let mut looped = dns_message(1, false, 0, "a", 1, None);
        looped.truncate(HEADER_LEN);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(DnsMessage::parse(&looped).unwrap().question(), None);
        // Pointer to a name stored later in the message.
        let mut forward = dns_message(1, false, 0, "a", 1, None);
        forward.truncate(HEADER_LEN);
        forward.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1, 3, b'f', b'o', b'o', 0]);
        let m = DnsMessage::parse(&forward).unwrap();
        assert_eq!(m.question(), Some(("foo".to_string(), 1)));
    }

    #[test]
    fn rejects_what_is_not_dns_and_survives_truncation() {
        assert!(DnsMessage::parse(&[0; 11]).is_none());
        let query = dns_message(7, false, 0, "example.com", 1, None);
        for cut in HEADER_LEN..query.len() {
            let m = DnsMessage::parse(&query[..cut]).expect("header is enough");
            assert_eq!(m.id(), 7);
            let _ = m.question(); // may be None, must not panic
        }
        let mut bad_opcode = query.clone();
        bad_opcode[2] = 0x78;
        assert!(DnsMessage::parse(&bad_opcode).is_none());
    }

    #[test]
    fn escapes_unprintable_label_bytes() {
        let mut m = dns_message(1, false, 0, "x", 1, None);
        m.truncate(HEADER_LEN);
        m.extend_from_slice(&[3, b'a', b'.', 0x07, 0, 0, 1, 0, 1]);
        assert_eq!(
            DnsMessage::parse(&m).unwrap().question(),
            Some(("a\\.\\007".to_string(), 1))
        );
    }

    #[test]
    fn wire_question_is_the_uncompressed_name_and_its_type() {
        let query = dns_message(1, false, 0, "GHCR.io", 28, None);
        let m = DnsMessage::parse(&query).unwrap();
        let (wire, qtype) = m.question_wire().expect("uncompressed");
        assert_eq!(wire, b"\x04GHCR\x02io\x00");
        assert_eq!(qtype, 28);
        // Compressed, truncated before the type, or without a question:
        // left to `question`.
        let mut pointer = query.clone();
        pointer.truncate(HEADER_LEN);
        pointer.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1, 3, b'f', b'o', b'o', 0]);
        assert_eq!(DnsMessage::parse(&pointer).unwrap().question_wire(), None);
        let cut = &query[..HEADER_LEN + wire.len() + 1];
        assert_eq!(DnsMessage::parse(cut).unwrap().question_wire(), None);
        let mut none = dns_message(1, true, 0, "a", 1, None);
        none[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(DnsMessage::parse(&none).unwrap().question_wire(), None);
    }

    /// The whole-label copy gives what the byte-by-byte escaping gives.
    #[test]
    fn plain_labels_are_copied_as_escaping_would() {
        let labels: [&[u8]; 7] = [
            b"WWW",
            b"Kube-DNS_1",
            b"a.b",
            b"back\\slash",
            &[0x7f, b'A'],
            &[0xc3, 0xa9],
            b"~!{}",
        ];
        for label in labels {
            let (mut whole, mut bytewise) = (String::from("x."), String::from("x."));
            push_label(&mut whole, label);
            label
                .iter()
                .for_each(|&b| push_label_byte(&mut bytewise, b));
            assert_eq!(whole, bytewise, "{label:?}");
        }
    }
}
