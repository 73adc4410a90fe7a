//! Receiver-side accounting of one test: distinct frames, out-of-order arrivals, duplicates
//! and RFC 3550 interarrival jitter, per stream.

use std::collections::HashMap;

/// Counts of one stream.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// One bit per sequence number seen.
    seen: Vec<u64>,
    highest: Option<u64>,
    received: u64,
    out_of_order: u64,
    duplicates: u64,
    bytes: u64,
    /// Transit time of the previous frame (arrival − send), ns.
    last_transit: Option<i128>,
    jitter_ns: f64,
}

/// Sequence numbers this far beyond the highest one seen are not tracked: a corrupt or
/// foreign frame must not make us allocate a huge bitmap in one step (2^24 frames is 2 MiB
/// of bitmap; a real sender never loses that many frames in a row and then recovers).
const MAX_JUMP: u64 = 1 << 24;

impl StreamStats {
    /// Accounts one data frame of `len` bytes with sequence `seq`, sent at `sent_ns` by the
    /// sender's clock and received at `arrived_ns` by ours.
    pub fn record(&mut self, seq: u64, len: usize, sent_ns: u64, arrived_ns: u64) {
        if seq > self.highest.unwrap_or(0).saturating_add(MAX_JUMP) {
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1 + self.seen.len() / 2, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        self.bytes += len as u64;
        match self.highest {
            Some(h) if seq < h => self.out_of_order += 1,
            _ => self.highest = Some(seq),
        }
        // RFC 3550, 6.4.1: D(i-1,i) = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16.
        let transit = i128::from(arrived_ns) - i128::from(sent_ns);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn jitter_ns(&self) -> f64 {
        self.jitter_ns
    }
}

/// Counts of all streams of one test.
#[derive(Debug, Default)]
pub struct TestStats {
    streams: HashMap<u16, StreamStats>,
    first_ns: u64,
    last_ns: u64,
}

/// Sums over the streams of a test.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub received: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub bytes: u64,
    /// Mean of the streams' jitter.
    pub jitter_ns: f64,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl TestStats {
    /// Accounts one data frame of `stream`.
    pub fn record(&mut self, stream: u16, seq: u64, len: usize, sent_ns: u64, arrived_ns: u64) {
        if self.first_ns == 0 {
            self.first_ns = arrived_ns;
        }
        self.last_ns = arrived_ns;
        self.streams
            .entry(stream)
            .or_default()
            .record(seq, len, sent_ns, arrived_ns);
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            ..Totals::default()
        };
        for s in self.streams.values() {
            t.received += s.received();
            t.out_of_order += s.out_of_order();
            t.duplicates += s.duplicates();
            t.bytes += s.bytes();
            t.jitter_ns += s.jitter_ns();
        }
        if !self.streams.is_empty() {
            t.jitter_ns /= self.streams.len() as f64;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_is_clean() {
        let mut s = StreamStats::default();
        for i in 0..1000 {
            s.record(i, 64, i * 1000, i * 1000 + 50);
        }
        assert_eq!(s.received(), 1000);
        assert_eq!(s.out_of_order(), 0);
        assert_eq!(s.duplicates(), 0);
        assert_eq!(s.bytes(), 64_000);
        assert_eq!(s.jitter_ns(), 0.0);
    }

    #[test]
    fn counts_reorder_duplicates_and_gaps() {
        let mut s = StreamStats::default();
        for seq in [0, 1, 3, 2, 4, 4, 6, 5, 5, 9] {
            s.record(seq, 100, 0, 0);
        }
        assert_eq!(s.received(), 8);
        assert_eq!(s.out_of_order(), 2);
        assert_eq!(s.duplicates(), 2);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut s = StreamStats::default();
        // Transit alternates 100 and 300 ns: |D| = 200 each time after the first frame.
        for i in 0..2000u64 {
            let transit = if i % 2 == 0 { 100 } else { 300 };
            s.record(i, 60, i * 10_000, i * 10_000 + transit);
        }
        assert!((s.jitter_ns() - 200.0).abs() < 1e-6, "{}", s.jitter_ns());
        let mut one = StreamStats::default();
        one.record(0, 60, 0, 100);
        one.record(1, 60, 1000, 1300);
        assert_eq!(one.jitter_ns(), 200.0 / 16.0);
    }

    #[test]
    fn ignores_absurd_sequence_numbers() {
        let mut s = StreamStats::default();
        s.record(u64::MAX, 60, 0, 0);
        s.record((1 << 24) + 1, 60, 0, 0);
        assert_eq!(s.received(), 0);
        s.record(1 << 24, 60, 0, 0);
        assert_eq!(s.received(), 1);
        assert!(s.seen.len() <= (1 << 24) / 64 * 2);
    }

    #[test]
    fn totals_sum_streams() {
        let mut t = TestStats::default();
        for i in 0..10 {
            t.record(0, i, 60, 0, 5 + i);
            t.record(1, i, 60, 0, 5 + i);
        }
        t.record(1, 3, 60, 0, 100);
        let totals = t.totals();
        assert_eq!(totals.received, 20);
        assert_eq!(totals.duplicates, 1);
        assert_eq!(totals.bytes, 1200);
        assert_eq!(totals.first_ns, 5);
        assert_eq!(totals.last_ns, 100);
    }
}
