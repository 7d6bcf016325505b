//! TCP streams of length-prefixed DNS messages (RFC 1035 4.2.2): segments
//! put back in sequence order, and cut into messages. A stream's segments
//! are gathered from the whole capture first, since a message can span
//! segments and segments can span chunks.

use super::dns::DnsMessage;
use crate::time::Timestamp;

/// One TCP segment's payload, where it sits in the stream and in the
/// capture.
#[derive(Debug, Clone)]
pub struct Segment {
    /// A message starts at this segment's first byte: it follows the SYN
    /// (an empty segment at the initial sequence number plus one), or it
    /// is what is left of a stream after its messages were filed.
    pub starts_message: bool,
    pub seq: u32,
    /// File position of the record that carried it.
    pub record: u64,
    pub ts: Timestamp,
    pub payload: Vec<u8>,
}

/// One message of a stream: its bytes, the time of the segment that
/// completed it, and (record, index within that record) for file order.
pub type Reassembled = (Vec<u8>, Timestamp, (u64, u32));

/// Reassembles one direction of a TCP stream by sequence number and splits
/// it into length-prefixed DNS messages. Each message is stamped with the
/// segment that completed it. Duplicates are dropped; at a gap (a lost
/// segment, or a capture that starts mid-stream) parsing restarts at the
/// next segment and stops at the first length that does not frame a DNS
/// message.
pub fn reassemble(segments: &[Segment]) -> Vec<Reassembled> {
    let mut out = Vec::new();
    for_each_message(segments, |message, ts, order| {
        out.push((message.bytes().to_vec(), ts, order))
    });
    out
}

/// `reassemble`, handing each message to `f` where it lies in the
/// reassembled bytes (no copy per message).
pub fn for_each_message(
    segments: &[Segment],
    mut f: impl FnMut(&DnsMessage<'_>, Timestamp, (u64, u32)),
) {
    for run in runs(segments) {
        run.split_into(&mut f, true);
    }
}

/// What `reassemble_some` did not turn into messages.
#[derive(Debug, Default)]
pub struct Rest {
    /// The stream from its last whole message on: a message still being
    /// received, to go before the segments that follow.
    pub tail: Option<Segment>,
    /// Bytes neither in a message nor in `tail`: after bytes that do not
    /// frame a DNS message, or before a gap.
    pub set_aside: u64,
}

/// `for_each_message` for a stream that goes on: hands `f` the messages so
/// far, and returns what follows the last whole one (see `Rest`).
pub fn reassemble_some(
    segments: &[Segment],
    mut f: impl FnMut(&DnsMessage<'_>, Timestamp, (u64, u32)),
) -> Rest {
    let mut rest = Rest::default();
    let runs = runs(segments);
    let last = runs.len().saturating_sub(1);
    for (index, run) in runs.iter().enumerate() {
        let (used, stop, skipped) = run.split_into(&mut f, false);
        rest.set_aside += skipped;
        let left = (run.bytes.len() - used) as u64;
        if index == last && stop == Stop::CutShort {
            rest.tail = run.tail_from(used);
        } else {
            rest.set_aside += left;
        }
    }
    rest
}

/// The segments' contiguous runs, in sequence order.
fn runs(segments: &[Segment]) -> Vec<Run> {
    let Some(base) = segments.iter().min_by_key(|s| s.record).map(|s| s.seq) else {
        return Vec::new();
    };
    // Offsets relative to the first segment in file order; wrap-safe.
    let offset = |s: &Segment| i64::from(s.seq.wrapping_sub(base) as i32);
    let mut ordered: Vec<&Segment> = segments.iter().collect();
    ordered.sort_by_key(|s| (offset(s), s.record));
    let mut runs = Vec::new();
    let mut run = Run {
        base,
        ..Run::default()
    };
    crate::ops::step(ordered.len());
    for segment in ordered {
        let start = offset(segment);
        let end = start + segment.payload.len() as i64;
        let run_end = run.start + run.bytes.len() as i64;
        if run.bytes.is_empty() || start > run_end {
            if !run.bytes.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
            run = Run {
                base,
                start,
                ..Run::default()
            };
        } else if end <= run_end {
            continue; // retransmission of bytes already in the run
        }
        let skip = (run.start + run.bytes.len() as i64 - start).max(0) as usize;
        run.bytes.extend_from_slice(&segment.payload[skip..]);
        run.deliveries
            .push((run.bytes.len(), segment.ts, segment.record));
    }
    if !run.bytes.is_empty() {
        runs.push(run);
    }
    runs
}

/// Contiguous reassembled bytes, and which segment delivered each end.
#[derive(Default)]
struct Run {
    /// The sequence number offsets count from.
    base: u32,
    start: i64,
    bytes: Vec<u8>,
    /// (end offset in `bytes`, timestamp, record), ascending.
    deliveries: Vec<(usize, Timestamp, u64)>,
}

/// Messages that must frame in a row where splitting resumes after bytes
/// that are not DNS.
const RESYNC_RUN: usize = 3;

/// What the bytes at an offset of a run are.
enum Framed<'a> {
    /// A message ending at this offset.
    Message(usize, DnsMessage<'a>),
    /// The bytes end before the message does.
    CutShort,
    NotDns,
}

/// Why splitting a run into messages stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// At the end of the bytes, or inside a message they do not hold all of.
    CutShort,
    /// At bytes that are not a length-prefixed DNS message.
    NotDns,
}

impl Run {
    /// Hands the run's messages to `f`; returns where it stopped, why, and
    /// the bytes it skipped before that. Bytes that do not frame a message
    /// (a run that begins inside one: the capture, or this part of it,
    /// started mid-stream) are skipped up to the next offset where
    /// `RESYNC_RUN` messages frame in a row, looking at most one message's
    /// length ahead.
    ///
    /// With `last` (no more bytes will come), a message cut short by the
    /// end of the bytes is searched past the same way: its length may be
    /// the garbage of a run that began inside a message.
    fn split_into(
        &self,
        f: &mut impl FnMut(&DnsMessage<'_>, Timestamp, (u64, u32)),
        last: bool,
    ) -> (usize, Stop, u64) {
        let mut pos = 0;
        let mut skipped = 0;
        let mut within_record: (u64, u32) = (u64::MAX, 0);
        loop {
            let (end, parsed) = match self.frame(pos) {
                Framed::Message(end, parsed) => (end, parsed),
                Framed::CutShort if !last || pos + 2 >= self.bytes.len() => {
                    return (pos, Stop::CutShort, skipped)
                }
                Framed::CutShort | Framed::NotDns => {
                    let reach = (pos + 2 + usize::from(u16::MAX)).min(self.bytes.len());
                    match (pos + 1..reach).find(|&at| self.frames_from(at)) {
                        Some(at) => {
                            skipped += (at - pos) as u64;
                            pos = at;
                            continue;
                        }
                        None if matches!(self.frame(pos), Framed::CutShort) => {
                            return (pos, Stop::CutShort, skipped)
                        }
                        None => return (pos, Stop::NotDns, skipped),
                    }
                }
            };
            crate::ops::step(1);
            // The first delivery that reaches the message's end completed it.
            let at = self.deliveries.partition_point(|(e, _, _)| *e < end);
            let Some(&(_, ts, record)) = self.deliveries.get(at) else {
                return (pos, Stop::CutShort, skipped);
            };
            within_record = if within_record.0 == record {
                (record, within_record.1 + 1)
            } else {
                (record, 0)
            };
            f(&parsed, ts, within_record);
            pos = end;
        }
    }

    /// The length-prefixed message at `pos`, if the bytes hold all of it.
    fn frame(&self, pos: usize) -> Framed<'_> {
        let Some(len) = self.bytes.get(pos..pos + 2) else {
            return Framed::CutShort;
        };
        let end = pos + 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(message) = self.bytes.get(pos + 2..end) else {
            return Framed::CutShort;
        };
        match DnsMessage::parse(message) {
            Some(parsed) => Framed::Message(end, parsed),
            None => Framed::NotDns,
        }
    }

    /// Whether `RESYNC_RUN` messages frame in a row from `at` (or at least
    /// one does, up to where the bytes end).
    fn frames_from(&self, mut at: usize) -> bool {
        crate::ops::step(1);
        for framed in 0..RESYNC_RUN {
            match self.frame(at) {
                Framed::Message(end, _) => at = end,
                Framed::CutShort => return framed > 0,
                Framed::NotDns => return false,
            }
        }
        true
    }

    /// The run's bytes from `from` on as one segment, stamped with the
    /// segment that delivered its first byte (so it comes first in file
    /// order among what follows).
    fn tail_from(&self, from: usize) -> Option<Segment> {
        if from >= self.bytes.len() {
            return None;
        }
        let at = self.deliveries.partition_point(|(e, _, _)| *e <= from);
        let &(_, ts, record) = self.deliveries.get(at)?;
        Some(Segment {
            starts_message: true,
            seq: self.base.wrapping_add((self.start + from as i64) as u32),
            record,
            ts,
            payload: self.bytes[from..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS query for `a.io`, with `id`, length-prefixed.
    fn framed(id: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend([1, b'a', 2, b'i', b'o', 0, 0, 1, 0, 1]);
        let mut out = (m.len() as u16).to_be_bytes().to_vec();
        out.extend(m);
        out
    }

    fn segment(seq: u32, record: u64, payload: &[u8]) -> Segment {
        Segment {
            starts_message: false,
            seq,
            record,
            ts: Timestamp(record * 1000),
            payload: payload.to_vec(),
        }
    }

    fn ids(messages: &[Reassembled]) -> Vec<u16> {
        messages
            .iter()
            .map(|(m, _, _)| u16::from_be_bytes([m[0], m[1]]))
            .collect()
    }

    #[test]
    fn two_messages_in_one_segment_and_one_across_two() {
        let (a, b, c) = (framed(1), framed(2), framed(3));
        let first = [a.clone(), b.clone(), c[..5].to_vec()].concat();
        let len = first.len() as u32;
        let out = reassemble(&[segment(100, 1, &first), segment(100 + len, 2, &c[5..])]);
        assert_eq!(ids(&out), [1, 2, 3]);
        // Stamped with the segment that completed each, in file order.
        let order: Vec<(u64, u32)> = out.iter().map(|(_, _, o)| *o).collect();
        assert_eq!(order, [(1, 0), (1, 1), (2, 0)]);
        assert_eq!(out[2].1, Timestamp(2000));
    }

    #[test]
    fn out_of_order_and_retransmitted_segments() {
        let (a, b) = (framed(7), framed(8));
        let len = a.len() as u32;
        let segments = [
            segment(len, 1, &b),
            segment(0, 2, &a),
            segment(0, 3, &a), // retransmission
        ];
        assert_eq!(ids(&reassemble(&segments)), [7, 8]);
    }

    #[test]
    fn a_gap_restarts_at_the_next_segment_and_garbage_stops_a_run() {
        let (a, b) = (framed(1), framed(2));
        // `a` is cut short by a lost segment; `b` starts a new run after it.
        let segments = [
            segment(0, 1, &a[..6]),
            segment(1000, 2, &b),
            segment(1000 + b.len() as u32, 3, &[0, 3, 9, 9, 9]),
        ];
        assert_eq!(ids(&reassemble(&segments)), [2]);
        assert!(reassemble(&[]).is_empty());
    }

    /// A stream filed in parts gives the messages it gives whole: each part
    /// keeps only the message still being received.
    #[test]
    fn a_stream_reassembled_in_parts_gives_the_same_messages() {
        let stream: Vec<u8> = (1..=40).flat_map(framed).collect();
        let segments: Vec<Segment> = (stream.chunks(7).enumerate())
            .map(|(i, bytes)| segment(5000 + 7 * i as u32, i as u64 + 1, bytes))
            .collect();
        let whole = reassemble(&segments);
        let mut parts = Vec::new();
        let mut held: Vec<Segment> = Vec::new();
        for batch in segments.chunks(9) {
            held.extend_from_slice(batch);
            let mut messages = Vec::new();
            let rest = reassemble_some(&held, |m, ts, order| {
                messages.push((m.bytes().to_vec(), ts, order))
            });
            assert_eq!(rest.set_aside, 0);
            assert!(rest
                .tail
                .as_ref()
                .is_none_or(|t| t.payload.len() < framed(1).len()));
            parts.extend(messages);
            held = rest.tail.into_iter().collect();
        }
        parts.extend(reassemble(&held));
        assert_eq!(ids(&parts), ids(&whole));
        assert_eq!(ids(&parts), (1..=40).collect::<Vec<u16>>());
        let stamps = |m: &[Reassembled]| m.iter().map(|(_, ts, o)| (*ts, *o)).collect::<Vec<_>>();
        assert_eq!(stamps(&parts), stamps(&whole));
    }

    /// A stream seen from inside a message (the capture started
    /// mid-connection) is read from the first offset where messages frame
    /// in a row; the bytes before it are set aside, counted.
    #[test]
    fn a_stream_seen_from_inside_a_message_resumes_at_the_next_one() {
        let (a, b, c, d) = (framed(1), framed(2), framed(3), framed(4));
        let stream = [a[7..].to_vec(), b, c, d].concat();
        assert_eq!(ids(&reassemble(&[segment(40, 1, &stream)])), [2, 3, 4]);
        // A stream that goes on keeps what may be a message still coming
        // (no more than one message's length), or resumes as the last does.
        let mut resumed = Vec::new();
        let rest = reassemble_some(&[segment(40, 1, &stream)], |m, _, _| {
            resumed.push(u16::from_be_bytes([m.bytes()[0], m.bytes()[1]]))
        });
        match rest.tail {
            Some(tail) => assert!(resumed.is_empty() && tail.payload.len() <= 65_537),
            None => assert_eq!(
                (resumed, rest.set_aside),
                (vec![2, 3, 4], (a.len() - 7) as u64)
            ),
        }
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (a, b) = (framed(1), framed(2));
        let start = u32::MAX - 3;
        let segments = [
            segment(start, 1, &a),
            segment(start.wrapping_add(a.len() as u32), 2, &b),
        ];
        assert_eq!(ids(&reassemble(&segments)), [1, 2]);
    }
}
