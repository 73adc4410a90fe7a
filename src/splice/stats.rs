//! Counters of one forwarding direction: private fields behind methods, merged with
//! `AddAssign`, published as snapshots.

use std::ops::AddAssign;

/// What one direction of a splice forwarded and dropped, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    frames: u64,
    bytes: u64,
    zero_length: u64,
    foreign: u64,
    truncated: u64,
    send_failed: u64,
    receive_errors: u64,
    kernel_drops: u64,
    tap_dropped: u64,
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
    pub fn foreign(&self) -> u64 {
        self.foreign
    }
    /// Datagrams dropped because they did not fit the receive slot.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }
    /// Frames the kernel refused to send on.
    pub fn send_failed(&self) -> u64 {
        self.send_failed
    }
    /// Receive calls that failed for a reason other than the read timeout.
    pub fn receive_errors(&self) -> u64 {
        self.receive_errors
    }
    /// Datagrams the kernel dropped before we read them (full receive buffer).
    pub fn kernel_drops(&self) -> u64 {
        self.kernel_drops
    }
    /// Frames forwarded whose copy was dropped because the copy channel was full.
    pub fn tap_dropped(&self) -> u64 {
        self.tap_dropped
    }
    /// Datagrams that arrived from the expected peer and the kernel, dropped or not.
    pub fn received(&self) -> u64 {
        self.frames + self.zero_length + self.truncated + self.send_failed
    }

    pub(crate) fn forwarded(&mut self, len: usize) {
        self.frames += 1;
        self.bytes += len as u64;
    }
    pub(crate) fn drop_zero_length(&mut self) {
        self.zero_length += 1;
    }
    pub(crate) fn drop_foreign(&mut self) {
        self.foreign += 1;
    }
    pub(crate) fn drop_truncated(&mut self) {
        self.truncated += 1;
    }
    /// Moves `count` frames that were counted as forwarded to the send failures.
    pub(crate) fn unsent(&mut self, count: u64, bytes: u64) {
        self.frames -= count;
        self.bytes -= bytes;
        self.send_failed += count;
    }
    pub(crate) fn receive_error(&mut self) {
        self.receive_errors += 1;
    }
    /// Records the socket's cumulative kernel drop counter.
    pub(crate) fn kernel_counter(&mut self, total: u32) {
        self.kernel_drops = self.kernel_drops.max(u64::from(total));
    }
    pub(crate) fn drop_tap(&mut self, frames: u64) {
        self.tap_dropped += frames;
    }
}

impl AddAssign for DirectionStats {
    fn add_assign(&mut self, other: Self) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.zero_length += other.zero_length;
        self.foreign += other.foreign;
        self.truncated += other.truncated;
        self.send_failed += other.send_failed;
        self.receive_errors += other.receive_errors;
        self.kernel_drops += other.kernel_drops;
        self.tap_dropped += other.tap_dropped;
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
        b.drop_foreign();
        b.drop_tap(1);
        b.unsent(1, 10);
        a += b;
        assert_eq!((a.frames(), a.bytes()), (2, 160));
        assert_eq!((a.zero_length(), a.foreign(), a.tap_dropped()), (1, 1, 1));
        assert_eq!((a.kernel_drops(), a.send_failed(), a.received()), (3, 1, 4));
    }
}
