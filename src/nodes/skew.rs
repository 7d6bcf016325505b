//! The clocks of captures taken on different nodes: each capture's offset
//! from the first one's, the median of (its time - the other's time) of
//! the first packets of connections seen in both (the same 5-tuple and
//! NAT-invariant fingerprint: the same connection, not a reused port).
//! One-way latency biases each sample by well under a millisecond, in
//! both directions, so the median is the skew.

use super::capture::NodeCapture;
use crate::analysis::FlowSighting;
use crate::flow::Endpoint;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::net::IpAddr;

/// One capture's clock against the reference capture's.
#[derive(Debug, Clone, Serialize)]
pub struct Skew {
    pub file: String,
    pub node: String,
    /// The capture its clock is compared with (the first one, by node).
    pub against: String,
    /// Nanoseconds this clock is ahead of the reference's (negative:
    /// behind); absent when no connection was seen in both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_ns: Option<i64>,
    /// Connections seen in both it was measured on.
    pub matched_flows: u64,
}

impl Skew {
    /// `+2.000s`, `-0.004s`, or `unknown`.
    pub fn label(&self) -> String {
        match self.offset_ns {
            Some(ns) => format!("{:+.3}s", ns as f64 / 1e9),
            None => "unknown".into(),
        }
    }
}

type Key = (u8, Endpoint, Endpoint, u64);

/// Connections a capture saw once, by 5-tuple and fingerprint, with the
/// time of their first packet (a SYN, for TCP).
fn index(capture: &NodeCapture<'_>) -> FxHashMap<Key, Option<Timestamp>> {
    let mut index: FxHashMap<Key, Option<Timestamp>> = FxHashMap::default();
    for f in capture.sightings.flows.iter().filter(|f| comparable(f)) {
        let key = (f.protocol, f.client, f.server, f.fingerprint);
        // Seen twice in one capture: ambiguous, so not a sample.
        index
            .entry(key)
            .and_modify(|t| *t = None)
            .or_insert(Some(f.first));
    }
    index
}

fn comparable(f: &FlowSighting) -> bool {
    f.fingerprint != 0 && (f.protocol != 6 || f.syns > 0)
}

/// The offset of b's clock from a's, from the connections both saw, and
/// how many: the mean of the medians of (b - a) of connections `a_sent`
/// says a's node started and of those b's did, so that the one-way
/// latency, which each direction adds with its own sign, cancels out.
fn offset(
    a: &FxHashMap<Key, Option<Timestamp>>,
    b: &FxHashMap<Key, Option<Timestamp>>,
    a_sent: impl Fn(&Key) -> bool,
) -> Option<(i64, u64)> {
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for (key, ta) in a {
        let (Some(ta), Some(Some(tb))) = (*ta, b.get(key)) else {
            continue;
        };
        let sample = tb.0 as i64 - ta.0 as i64;
        if a_sent(key) {
            from_a.push(sample);
        } else {
            from_b.push(sample);
        }
    }
    let median = |samples: &mut Vec<i64>| {
        samples.sort_unstable();
        samples.get(samples.len() / 2).copied()
    };
    let count = (from_a.len() + from_b.len()) as u64;
    let offset = match (median(&mut from_a), median(&mut from_b)) {
        (Some(x), Some(y)) => x / 2 + y / 2,
        (x, y) => x.or(y)?,
    };
    Some((offset, count))
}

/// Each compared capture's clock against the first one's, in their
/// order; a capture with no connection in common with the first is
/// measured through one that has (a chain), else left unknown.
pub(super) fn estimate(
    compared: &[&NodeCapture<'_>],
    node_of: impl Fn(IpAddr) -> Option<String>,
) -> Vec<Skew> {
    let indexes: Vec<_> = compared.iter().map(|c| index(c)).collect();
    let mut offsets: Vec<Option<(i64, u64)>> = vec![None; compared.len()];
    if let Some(first) = offsets.first_mut() {
        *first = Some((0, 0));
    }
    // Pairs compared once each, however long the chain.
    let mut tried = rustc_hash::FxHashSet::default();
    loop {
        let mut progress = false;
        for i in 0..compared.len() {
            if offsets[i].is_some() {
                continue;
            }
            let known = (0..compared.len()).filter_map(|j| offsets[j].map(|o| (j, o.0)));
            let untried: Vec<(usize, i64)> = known.filter(|(j, _)| tried.insert((*j, i))).collect();
            for (j, base) in untried {
                let node = compared[j].node();
                let sent_by_j = |key: &Key| node_of(key.1.addr).as_deref() == node;
                if let Some((offset, count)) = offset(&indexes[j], &indexes[i], sent_by_j) {
                    offsets[i] = Some((base + offset, count));
                    progress = true;
                    break;
                }
            }
        }
        if !progress {
            break;
        }
    }
    let against = compared
        .first()
        .map(|c| c.file.to_string())
        .unwrap_or_default();
    (compared.iter().zip(offsets))
        .map(|(c, offset)| Skew {
            file: c.file.to_string(),
            node: c.node().unwrap_or_default().to_string(),
            against: against.clone(),
            offset_ns: offset.map(|o| o.0),
            matched_flows: offset.map_or(0, |o| o.1),
        })
        .collect()
}

/// `t`, a time on `from`'s clock, on `to`'s clock (unknown offsets count
/// as none).
pub(super) fn convert(t: Timestamp, from: &Skew, to: &Skew) -> i64 {
    t.0 as i64 - from.offset_ns.unwrap_or(0) + to.offset_ns.unwrap_or(0)
}

/// Lines for captures whose clocks could not be compared, and pairs that
/// do not overlap in time once their clocks are.
pub(super) fn not_overlapping(compared: &[&NodeCapture<'_>], clocks: &[Skew]) -> Vec<String> {
    let mut lines = Vec::new();
    for clock in clocks.iter().filter(|c| c.offset_ns.is_none()) {
        lines.push(format!(
            "{} ({}): no connection seen in both it and another capture, so its clock could not be compared; its times are taken as they are",
            clock.file, clock.node
        ));
    }
    let reference = |i: usize| -> Option<(i64, i64)> {
        let (first, last) = compared[i].span()?;
        let offset = clocks[i].offset_ns.unwrap_or(0);
        Some((first.0 as i64 - offset, last.0 as i64 - offset))
    };
    for i in 0..compared.len() {
        for j in i + 1..compared.len() {
            let (Some(a), Some(b)) = (reference(i), reference(j)) else {
                continue;
            };
            if a.1 < b.0 || b.1 < a.0 {
                let (earlier, later) = if a.1 < b.0 { (i, j) } else { (j, i) };
                let gap = (a.0.max(b.0) - a.1.min(b.1)) as f64 / 1e9;
                lines.push(format!(
                    "{} ({}) and {} ({}) do not overlap in time: the first ends {gap:.3}s before the second starts; no connection between them is followed",
                    compared[earlier].file,
                    clocks[earlier].node,
                    compared[later].file,
                    clocks[later].node
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(last: u8, port: u16) -> Endpoint {
        Endpoint {
            addr: IpAddr::from([10, 50, 10, last]),
            port,
        }
    }

    /// Connections (client host, fingerprint, time seen by a, by b).
    fn indexes(
        seen: &[(u8, u64, u64, u64)],
    ) -> (
        FxHashMap<Key, Option<Timestamp>>,
        FxHashMap<Key, Option<Timestamp>>,
    ) {
        let (mut a, mut b) = (FxHashMap::default(), FxHashMap::default());
        for &(client, fingerprint, ta, tb) in seen {
            let key = (
                6,
                endpoint(client, 40000),
                endpoint(99 - client, 4240),
                fingerprint,
            );
            a.insert(key, Some(Timestamp(ta)));
            b.insert(key, Some(Timestamp(tb)));
        }
        (a, b)
    }

    #[test]
    fn latency_cancels_between_the_two_directions() {
        // b's clock is 2 s ahead; each way takes 300 us.
        let skew = 2_000_000_000;
        let latency = 300_000;
        let seen = [
            (11, 1, 1_000, 1_000 + skew + latency),
            (11, 2, 5_000, 5_000 + skew + latency),
            (88, 3, 9_000 + latency, 9_000 + skew),
        ];
        let (a, b) = indexes(&seen);
        let from_a = |key: &Key| key.1.addr == IpAddr::from([10, 50, 10, 11]);
        assert_eq!(offset(&a, &b, from_a), Some((skew as i64, 3)));
        // One direction only: the latency stays in.
        let (a, b) = indexes(&seen[..2]);
        assert_eq!(offset(&a, &b, from_a), Some(((skew + latency) as i64, 2)));
    }

    #[test]
    fn a_connection_seen_twice_in_one_capture_is_no_sample() {
        let (mut a, b) = indexes(&[(11, 1, 1_000, 2_000)]);
        assert!(offset(&a, &b, |_| true).is_some());
        for t in a.values_mut() {
            *t = None;
        }
        assert_eq!(offset(&a, &b, |_| true), None);
    }

    #[test]
    fn labels_show_milliseconds_and_the_sign() {
        let skew = |offset_ns| Skew {
            file: String::new(),
            node: String::new(),
            against: String::new(),
            offset_ns,
            matched_flows: 0,
        };
        assert_eq!(skew(Some(2_000_400_000)).label(), "+2.000s");
        assert_eq!(skew(Some(-4_000_000)).label(), "-0.004s");
        assert_eq!(skew(None).label(), "unknown");
        let (early, late) = (skew(Some(0)), skew(Some(2_000_000_000)));
        assert_eq!(convert(Timestamp(10), &early, &late), 2_000_000_010);
        assert_eq!(convert(Timestamp(2_000_000_010), &late, &early), 10);
    }
}
