//! Capture timestamps: nanoseconds since the Unix epoch, whatever the
//! resolution of the file they came from.

use serde::{Serialize, Serializer};
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

/// A point in time, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos),
        )
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_SEC as f64
    }

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with nanoseconds, e.g. `2024-05-01T12:00:00.000123456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_nanos(self.0);
        write!(f, "{}", humantime::format_rfc3339_nanos(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A span of time with millisecond precision, in the units a reader
/// takes in at a glance: `36.709s`, `15m38.387s`, `2h05m00.000s`.
pub fn format_span(nanos: u64) -> String {
    let millis = (nanos as u128 + 500_000) / 1_000_000;
    let (seconds, millis) = (millis / 1000, millis % 1000);
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}.{millis:03}s"),
        (0, _) => format!("{minutes}m{seconds:02}.{millis:03}s"),
        _ => format!("{hours}h{minutes:02}m{seconds:02}.{millis:03}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_with_nanos() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn spans_read_in_minutes_and_hours_when_long() {
        let second = Timestamp::NANOS_PER_SEC;
        assert_eq!(format_span(36_709_040_000), "36.709s");
        assert_eq!(format_span(0), "0.000s");
        assert_eq!(format_span(999_600_000), "1.000s");
        assert_eq!(format_span(938_387_000_000), "15m38.387s");
        assert_eq!(format_span(60 * second), "1m00.000s");
        assert_eq!(
            format_span(2 * 3600 * second + 5 * 60 * second),
            "2h05m00.000s"
        );
        assert_eq!(format_span(u64::MAX), "5124095h34m33.710s");
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(Timestamp::from_secs_nanos(u64::MAX, 5).0, u64::MAX);
        assert_eq!(Timestamp(5).since(Timestamp(9)), 0);
    }
}

/// Counts by second of the capture's clock, for a timeline. Bounded: past
/// `MAX_SECONDS` distinct buckets (a crafted capture's timestamps can be
/// anywhere) buckets double in width until they fit, and merging takes
/// the wider of two, so the result is the same however the counts were
/// split: the narrowest power-of-two width that fits them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Buckets are `2^shift` seconds wide.
    shift: u32,
    counts: std::collections::BTreeMap<u64, u64>,
}

/// Distinct buckets a histogram keeps (a day of seconds is 86 400).
pub const MAX_SECONDS: usize = 1 << 17;

impl Histogram {
    #[inline]
    pub fn add(&mut self, ts: Timestamp, n: u64) {
        self.add_second(ts.0 / 1_000_000_000, n);
    }

    /// Adds `n` at second `second` (since the epoch).
    pub fn add_second(&mut self, second: u64, n: u64) {
        *self.counts.entry(second >> self.shift).or_default() += n;
        if self.counts.len() > MAX_SECONDS {
            self.widen(self.shift + 1);
        }
    }

    fn widen(&mut self, shift: u32) {
        let mut shift = shift.max(self.shift);
        loop {
            let by = shift - self.shift;
            let mut wider = std::collections::BTreeMap::new();
            for (&key, &n) in &self.counts {
                *wider.entry(key >> by).or_default() += n;
            }
            self.counts = wider;
            self.shift = shift;
            if self.counts.len() <= MAX_SECONDS {
                return;
            }
            shift += 1;
        }
    }

    pub fn merge(&mut self, other: Histogram) {
        let shift = self.shift.max(other.shift);
        self.widen(shift);
        let by = shift - other.shift;
        for (key, n) in other.counts {
            *self.counts.entry(key >> by).or_default() += n;
        }
        if self.counts.len() > MAX_SECONDS {
            self.widen(self.shift + 1);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The counts in `buckets` buckets of `width` seconds from second
    /// `start` (a count falls in the bucket its bucket's start falls in;
    /// before `start`, in the first; after the last, in the last).
    pub fn binned(&self, start: u64, width: u64, buckets: usize) -> Vec<u64> {
        let mut out = vec![0; buckets];
        if buckets == 0 {
            return out;
        }
        let width = width.max(1);
        for (&key, &n) in &self.counts {
            let second = key << self.shift;
            let at = (second.saturating_sub(start) / width) as usize;
            out[at.min(buckets - 1)] += n;
        }
        out
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn counts_by_second_and_rebins() {
        let mut h = Histogram::default();
        for (s, n) in [(100, 1), (100, 2), (101, 5), (160, 1)] {
            h.add(Timestamp(s * 1_000_000_000 + 5), n);
        }
        assert_eq!(h.total(), 9);
        assert_eq!(h.binned(100, 30, 3), vec![8, 0, 1]);
        assert_eq!(h.binned(100, 1, 2), vec![3, 6]);
    }

    #[test]
    fn too_many_seconds_widen_the_buckets_the_same_way_whatever_the_split() {
        let seconds: Vec<u64> = (0..(MAX_SECONDS as u64 * 3)).map(|i| i * 7).collect();
        let mut whole = Histogram::default();
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        for (i, s) in seconds.iter().enumerate() {
            whole.add_second(*s, 1);
            if i % 3 == 0 {
                a.add_second(*s, 1)
            } else {
                b.add_second(*s, 1)
            }
        }
        a.merge(b);
        assert!(whole.counts.len() <= MAX_SECONDS);
        assert_eq!(whole.total(), seconds.len() as u64);
        assert_eq!(a, whole);
    }
}
