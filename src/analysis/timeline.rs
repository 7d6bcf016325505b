//! When things happened: per time bucket, the packets read and the
//! failures the detectors found (unanswered SYNs, DNS timeouts,
//! unmasqueraded pod packets, packets to service addresses), so a report
//! can show when it broke and whether it recovered. Buckets adapt to the
//! capture's span: at most `MAX_BUCKETS`, each a whole number of seconds
//! from a list of round widths.

use crate::detect::Findings;
use crate::flow::Summary;
use crate::time::{Histogram, Timestamp};
use serde::Serialize;

/// Buckets a timeline has at most.
pub const MAX_BUCKETS: usize = 240;

/// Bucket widths in seconds, the narrowest that fits is taken; past the
/// list, whole days.
const WIDTHS: [u64; 16] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200,
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The first bucket's start (a whole second); absent without packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    pub bucket_seconds: u64,
    /// Records read (copies on a second interface included).
    pub packets: Vec<u64>,
    /// Unanswered and unreachable SYN flows, by their first packet.
    pub unanswered_syns: Vec<u64>,
    /// Timed-out DNS queries, by their first copy.
    pub dns_timeouts: Vec<u64>,
    /// Packets from pods that left unmasqueraded, by their flow's first
    /// packet.
    pub unmasqueraded_pod_packets: Vec<u64>,
    /// Packets to service addresses on the wire, by their flow's first
    /// packet.
    pub service_vip_packets: Vec<u64>,
}

/// The round width that puts `seconds` in at most `MAX_BUCKETS` buckets.
fn width_for(seconds: u64) -> u64 {
    let needed = seconds.div_ceil(MAX_BUCKETS as u64).max(1);
    WIDTHS
        .iter()
        .copied()
        .find(|w| *w >= needed)
        .unwrap_or_else(|| needed.div_ceil(86_400) * 86_400)
}

impl Timeline {
    pub fn new(summary: &Summary, findings: &Findings) -> Timeline {
        let (Some(first), Some(last)) = (summary.first_ts, summary.last_ts) else {
            return Timeline::default();
        };
        let first_second = first.0 / 1_000_000_000;
        let span = last.0 / 1_000_000_000 - first_second + 1;
        let width = width_for(span);
        let start = first_second / width * width;
        let buckets = (last.0 / 1_000_000_000 - start) / width + 1;
        let binned = |h: &Histogram| h.binned(start, width, buckets as usize);
        Timeline {
            start: Some(Timestamp(start * 1_000_000_000)),
            bucket_seconds: width,
            packets: binned(&summary.packets_by_second()),
            unanswered_syns: binned(&findings.tcp_syns.failed_starts),
            dns_timeouts: binned(&findings.dns.timeout_starts),
            unmasqueraded_pod_packets: binned(&findings.unmasqueraded_egress.pod_packet_starts),
            service_vip_packets: binned(&findings.service_vips.packet_starts),
        }
    }

    /// The series with their names, as reports draw them.
    pub fn series(&self) -> [(&'static str, &[u64]); 5] {
        [
            ("packets", &self.packets),
            ("unanswered SYNs", &self.unanswered_syns),
            ("DNS timeouts", &self.dns_timeouts),
            ("unmasqueraded pod packets", &self.unmasqueraded_pod_packets),
            ("service VIP packets", &self.service_vip_packets),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_and_few() {
        assert_eq!(width_for(37), 1);
        assert_eq!(width_for(240), 1);
        assert_eq!(width_for(241), 2);
        assert_eq!(width_for(3_600), 15);
        assert_eq!(width_for(86_400), 600);
        assert_eq!(width_for(86_400 * 30), 21_600);
        assert_eq!(width_for(86_400 * 365), 86_400 * 2);
    }
}
