//! A copy consumer that records the splice into pcapng through [`crate::capture::Writer`].
//!
//! One interface per link end, in link order: link `i`'s end A is interface `2i`, end B is
//! `2i + 1`. Each frame goes on the interface of the end that sent it, flagged outbound,
//! with the kernel's receive timestamp. On close, each interface's statistics block carries
//! what the splice received from that end and dropped.

use crate::capture::{InterfaceStats, Packet, Writer};

use super::copy::{Consumer, CopyRecord, Next};
use super::{Direction, LinkStats};

/// Writes the copy channel's frames to a capture, stopping the splice at a frame or size limit.
#[derive(Debug)]
pub struct Recorder {
    writer: Writer,
    frame_limit: Option<u64>,
    size_limit: Option<u64>,
    frames: u64,
}

impl Recorder {
    /// Records into `writer` (created with two interfaces per link); asks the splice to stop
    /// after `frame_limit` frames or once the current file reaches `size_limit` bytes.
    pub fn new(writer: Writer, frame_limit: Option<u64>, size_limit: Option<u64>) -> Recorder {
        Recorder {
            writer,
            frame_limit,
            size_limit,
            frames: 0,
        }
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Writes the statistics blocks from the splice's final counters and closes the capture.
    pub fn finish(self, stats: &[LinkStats]) -> crate::Result<()> {
        self.writer.finish(&interface_stats(stats))
    }
}

/// The capture interface of the end that sends in `direction` on link `link`.
pub fn interface(link: usize, direction: Direction) -> u32 {
    let end = match direction {
        Direction::AToB => 0,
        Direction::BToA => 1,
    };
    (link * 2 + end) as u32
}

/// Per end, in interface order: what the splice received from it, what the copy channel dropped and
/// what the kernel dropped.
pub fn interface_stats(stats: &[LinkStats]) -> Vec<InterfaceStats> {
    stats
        .iter()
        .flat_map(|link| Direction::BOTH.map(|d| link.direction(d).copied().unwrap_or_default()))
        .map(|s| InterfaceStats {
            received: s.received(),
            dropped_by_us: s.copy_dropped(),
            dropped_by_kernel: s.kernel_rx_overflow(),
        })
        .collect()
}

impl Consumer for Recorder {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        self.writer.write(&Packet {
            interface: interface(record.link, record.direction),
            timestamp_ns: record.timestamp_ns,
            data: record.data,
            outbound: true,
        })?;
        self.frames += 1;
        let full = self
            .size_limit
            .is_some_and(|bytes| self.writer.bytes_written() >= bytes);
        let counted = self.frame_limit.is_some_and(|n| self.frames >= n);
        Ok(if full || counted {
            Next::Stop
        } else {
            Next::Continue
        })
    }

    fn flush(&mut self) -> crate::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_interface() {
        assert_eq!(interface(0, Direction::AToB), 0);
        assert_eq!(interface(0, Direction::BToA), 1);
        assert_eq!(interface(3, Direction::BToA), 7);
        let stats = vec![LinkStats {
            id: crate::engine::LinkId(0),
            name: "x".into(),
            a_to_b: None,
            b_to_a: Some(Default::default()),
        }];
        assert_eq!(interface_stats(&stats).len(), 2);
    }
}
