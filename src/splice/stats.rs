//! Counters of one forwarding direction: private fields behind methods, merged with
//! `AddAssign`, published as snapshots. The names are those of the JSON report
//! ([`crate::measure::report::Dropped`]): one name per counter from the engine to the report.

use std::ops::AddAssign;

/// What one direction of a link forwarded and dropped, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    frames: u64,
    bytes: u64,
    zero_length: u64,
    foreign_source: u64,
    truncated: u64,
    send_error: u64,
    kernel_rx_overflow: u64,
    copy_dropped: u64,
    stage_dropped: u64,
}

impl DirectionStats {
    /// Frames forwarded.
    pub fn frames(&self) -> u64 {
        self.frames
    }
    /// Bytes forwarded (UDP payload, i.e. Ethernet frames without FCS).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Zero-length datagrams dropped (QEMU would take one as end of stream).
    pub fn zero_length(&self) -> u64 {
        self.zero_length
    }
    /// Datagrams dropped because they came from someone other than the expected peer.
    pub fn foreign_source(&self) -> u64 {
        self.foreign_source
    }
    /// Datagrams dropped because they did not fit the receive slot.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }
    /// Frames the kernel refused to send on.
    pub fn send_error(&self) -> u64 {
        self.send_error
    }
    /// Datagrams the kernel dropped before we read them (full receive buffer).
    pub fn kernel_rx_overflow(&self) -> u64 {
        self.kernel_rx_overflow
    }
    /// Frames forwarded whose copy was dropped because the copy channel was full.
    pub fn copy_dropped(&self) -> u64 {
        self.copy_dropped
    }
    /// Frames a stage of the link dropped (an impairment).
    pub fn stage_dropped(&self) -> u64 {
        self.stage_dropped
    }
    /// Datagrams that arrived from the expected peer and the kernel and have left the stages,
    /// forwarded or dropped.
    pub fn received(&self) -> u64 {
        self.frames + self.zero_length + self.truncated + self.send_error + self.stage_dropped
    }

    pub(crate) fn forwarded(&mut self, len: usize) {
        self.frames += 1;
        self.bytes += len as u64;
    }
    pub(crate) fn drop_zero_length(&mut self) {
        self.zero_length += 1;
    }
    pub(crate) fn drop_foreign_source(&mut self) {
        self.foreign_source += 1;
    }
    pub(crate) fn drop_truncated(&mut self) {
        self.truncated += 1;
    }
    pub(crate) fn drop_stage(&mut self) {
        self.stage_dropped += 1;
    }
    /// Moves `count` frames that were counted as forwarded to the send errors.
    pub(crate) fn unsent(&mut self, count: u64, bytes: u64) {
        self.frames = self.frames.saturating_sub(count);
        self.bytes = self.bytes.saturating_sub(bytes);
        self.send_error += count;
    }
    /// Records the socket's cumulative kernel drop counter.
    pub(crate) fn kernel_counter(&mut self, total: u32) {
        self.kernel_rx_overflow = self.kernel_rx_overflow.max(u64::from(total));
    }
    pub(crate) fn drop_copy(&mut self, frames: u64) {
        self.copy_dropped += frames;
    }
}

impl AddAssign for DirectionStats {
    fn add_assign(&mut self, other: Self) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.zero_length += other.zero_length;
        self.foreign_source += other.foreign_source;
        self.truncated += other.truncated;
        self.send_error += other.send_error;
        self.kernel_rx_overflow += other.kernel_rx_overflow;
        self.copy_dropped += other.copy_dropped;
        self.stage_dropped += other.stage_dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let mut a = DirectionStats::default();
        a.forwarded(100);
        a.forwarded(60);
        a.drop_zero_length();
        a.kernel_counter(3);
        a.kernel_counter(2);
        let mut b = DirectionStats::default();
        b.forwarded(10);
        b.drop_foreign_source();
        b.drop_copy(1);
        b.drop_stage();
        b.unsent(1, 10);
        a += b;
        assert_eq!((a.frames(), a.bytes()), (2, 160));
        assert_eq!(
            (a.zero_length(), a.foreign_source(), a.copy_dropped()),
            (1, 1, 1)
        );
        assert_eq!(a.stage_dropped(), 1);
        assert_eq!(
            (a.kernel_rx_overflow(), a.send_error(), a.received()),
            (3, 1, 5)
        );
    }
}
