//! Receiver-side accounting of one test: distinct frames, out-of-order arrivals, duplicates
//! and RFC 3550 interarrival jitter, per stream.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Streams one test may have (`bench send --streams` allows as many): frames of further
/// streams are refused, so a peer cannot make a test hold more than
/// `MAX_STREAMS` × 8 KiB of windows.
pub const MAX_STREAMS: usize = 256;

/// Counts of one stream.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// One bit per sequence number of the last [`WINDOW`] up to the highest seen, at
    /// `seq % WINDOW`; allocated with the stream's first frame.
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

/// Sequence numbers remembered per stream for duplicate detection: a frame more than this
/// far behind the highest one seen counts as received out of order, without a duplicate
/// check. 2^16 bits is 8 KiB per stream, whatever a peer sends.
pub const WINDOW: u64 = 1 << 16;

/// Sequence numbers this far beyond the highest one seen are not counted: a corrupt or
/// foreign frame must not move a stream's window out of reach of the real frames (a real
/// sender never loses 2^24 frames in a row and then recovers).
const MAX_JUMP: u64 = 1 << 24;

impl StreamStats {
    /// Accounts one data frame of `len` bytes with sequence `seq`, sent at `sent_ns` by the
    /// sender's clock and received at `arrived_ns` by ours. False when the frame was not
    /// counted (a sequence number implausibly far ahead).
    pub fn record(&mut self, seq: u64, len: usize, sent_ns: u64, arrived_ns: u64) -> bool {
        let words = (WINDOW / 64) as usize;
        let slot = |seq: u64| (((seq % WINDOW) / 64) as usize, seq % 64);
        match self.highest {
            None => {
                self.seen = vec![0; words];
                self.highest = Some(seq);
            }
            Some(h) if seq > h => {
                if seq - h > MAX_JUMP {
                    return false;
                }
                if seq - h >= WINDOW {
                    self.seen.fill(0);
                } else {
                    // Forget what the window's new part held WINDOW numbers ago.
                    for gone in h + 1..seq {
                        let (word, bit) = slot(gone);
                        self.seen[word] &= !(1 << bit);
                    }
                    let (word, bit) = slot(seq);
                    self.seen[word] &= !(1 << bit);
                }
                self.highest = Some(seq);
            }
            Some(h) => {
                if h - seq >= WINDOW {
                    // Too old to tell a duplicate from a late frame: counted as late.
                    self.count(len, sent_ns, arrived_ns);
                    self.out_of_order += 1;
                    return true;
                }
                let (word, bit) = slot(seq);
                if self.seen[word] & (1 << bit) != 0 {
                    self.duplicates += 1;
                    return true;
                }
                self.out_of_order += 1;
            }
        }
        let (word, bit) = slot(seq);
        self.seen[word] |= 1 << bit;
        self.count(len, sent_ns, arrived_ns);
        true
    }

    /// Counts a distinct frame: bytes and RFC 3550 jitter.
    fn count(&mut self, len: usize, sent_ns: u64, arrived_ns: u64) {
        self.received += 1;
        self.bytes += len as u64;
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
    /// Accounts one data frame of `stream`. False when it was not counted: a new stream
    /// beyond [`MAX_STREAMS`], or a sequence number implausibly far ahead.
    pub fn record(
        &mut self,
        stream: u16,
        seq: u64,
        len: usize,
        sent_ns: u64,
        arrived_ns: u64,
    ) -> bool {
        let streams = self.streams.len();
        let stats = match self.streams.entry(stream) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if streams >= MAX_STREAMS => return false,
            Entry::Vacant(e) => e.insert(StreamStats::default()),
        };
        if !stats.record(seq, len, sent_ns, arrived_ns) {
            return false;
        }
        if self.first_ns == 0 {
            self.first_ns = arrived_ns;
        }
        self.last_ns = arrived_ns;
        true
    }

    /// True when the test has counted a frame of `stream`.
    pub fn has_stream(&self, stream: u16) -> bool {
        self.streams.contains_key(&stream)
    }

    /// Streams this test has.
    pub fn streams(&self) -> usize {
        self.streams.len()
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
        assert!(s.record(0, 60, 0, 0));
        assert!(!s.record(u64::MAX, 60, 0, 0));
        assert!(!s.record((1 << 24) + 1, 60, 0, 0));
        assert_eq!(s.received(), 1);
        assert!(s.record(1 << 24, 60, 0, 0));
        assert_eq!(s.received(), 2);
        assert_eq!(s.seen.len() as u64, WINDOW / 64);
    }

    #[test]
    fn a_stream_holds_one_window_whatever_its_sequence_numbers() {
        let mut s = StreamStats::default();
        for seq in [u64::MAX - (1 << 20), u64::MAX - 5, u64::MAX, 3] {
            s.record(seq, 60, 0, 0);
        }
        assert_eq!(s.seen.len() as u64, WINDOW / 64);
        assert_eq!(s.received(), 4);
    }

    #[test]
    fn duplicates_are_found_within_the_window_and_late_frames_beyond_it() {
        let mut s = StreamStats::default();
        for seq in 0..3 * WINDOW {
            s.record(seq, 60, 0, 0);
        }
        // Within the window: a duplicate. Beyond it: late, counted out of order.
        s.record(3 * WINDOW - 10, 60, 0, 0);
        assert_eq!(s.duplicates(), 1);
        s.record(WINDOW, 60, 0, 0);
        assert_eq!(s.out_of_order(), 1);
        // A gap: the numbers skipped are not remembered as seen from the last lap.
        s.record(3 * WINDOW + 100, 60, 0, 0);
        s.record(3 * WINDOW + 50, 60, 0, 0);
        assert_eq!(s.duplicates(), 1);
        assert_eq!(s.out_of_order(), 2);
        assert_eq!(s.received(), 3 * WINDOW + 3);
    }

    #[test]
    fn a_test_refuses_streams_beyond_the_cap() {
        let mut t = TestStats::default();
        for stream in 0..MAX_STREAMS as u16 {
            assert!(t.record(stream, 0, 60, 0, 1));
        }
        assert!(!t.record(MAX_STREAMS as u16, 0, 60, 0, 1));
        assert!(t.record(0, 1, 60, 0, 1), "known streams still count");
        assert_eq!(t.streams(), MAX_STREAMS);
        assert_eq!(t.totals().received, MAX_STREAMS as u64 + 1);
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
