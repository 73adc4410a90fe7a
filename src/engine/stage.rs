//! The stage seam: what a link does to a direction's frames between accepting and sending.
//!
//! A route's frames pass its stages in order. A stage sees each frame once
//! ([`Stage::process`]) and passes it on, drops it, or holds it: a held frame is copied into a
//! [`Frame`] the stage owns (the receive batch it came from is reused by the next read). A
//! stage that holds frames names the instant it next wants to release some
//! ([`Stage::next_timer`]); the worker wakes then and calls [`Stage::release`], and the
//! released frames go through the stages after this one, are sent, and are copied to the copy
//! channel like any other. No stage ever sleeps: a worker serves many links.
//!
//! A route without stages, or whose stages are all transparent for now
//! ([`Stage::transparent`]), forwards straight from the receive batch, with no copy.

use std::time::Instant;

/// A frame a stage owns, with the kernel's receive time of the datagram it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// Kernel receive time, nanoseconds since the Unix epoch (0: unknown).
    pub received_ns: u64,
}

/// A frame as a stage first sees it, borrowed from the worker's receive batch (or from a
/// [`Frame`] an earlier stage released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub data: &'a [u8],
    /// Kernel receive time, nanoseconds since the Unix epoch (0: unknown).
    pub received_ns: u64,
}

impl FrameRef<'_> {
    /// A copy the stage can keep.
    pub fn to_frame(&self) -> Frame {
        Frame {
            data: self.data.to_vec(),
            received_ns: self.received_ns,
        }
    }
}

/// What a stage did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// On to the next stage (or the send) now.
    Pass,
    /// Gone; counted as dropped by a stage.
    Drop,
    /// The stage kept a copy ([`FrameRef::to_frame`]) and releases it later.
    Hold,
}

/// One step of a route's stage chain. Runs on the worker that owns the link.
pub trait Stage: Send {
    /// Takes one frame at `now`.
    fn process(&mut self, frame: FrameRef<'_>, now: Instant) -> Verdict;
    /// Moves the held frames that are due at `now` to `out`, in the order they leave; with
    /// `None` (the link is being removed or the engine stops) every held frame.
    fn release(&mut self, now: Option<Instant>, out: &mut Vec<Frame>);
    /// When the stage next wants [`Stage::release`] called; `None` while it holds nothing.
    fn next_timer(&self) -> Option<Instant>;
    /// True when, for now, the stage would pass every frame unchanged and holds none (an
    /// impairment nothing is asked of): the worker then forwards the batch straight from the
    /// receive batch, as on a route without stages. Asked once per receive batch.
    fn transparent(&mut self) -> bool {
        false
    }
}

/// A stage for tests and for seeing the seam work: holds every frame for a fixed delay, and
/// drops every `drop_every`-th frame it is handed (0: none).
#[derive(Debug)]
pub struct FixedDelay {
    delay: std::time::Duration,
    drop_every: u64,
    seen: u64,
    held: std::collections::VecDeque<(Instant, Frame)>,
}

impl FixedDelay {
    pub fn new(delay: std::time::Duration, drop_every: u64) -> FixedDelay {
        FixedDelay {
            delay,
            drop_every,
            seen: 0,
            held: std::collections::VecDeque::new(),
        }
    }
}

impl Stage for FixedDelay {
    fn process(&mut self, frame: FrameRef<'_>, now: Instant) -> Verdict {
        self.seen += 1;
        if self.drop_every != 0 && self.seen.is_multiple_of(self.drop_every) {
            return Verdict::Drop;
        }
        if self.delay.is_zero() {
            return Verdict::Pass;
        }
        self.held.push_back((now + self.delay, frame.to_frame()));
        Verdict::Hold
    }

    fn release(&mut self, now: Option<Instant>, out: &mut Vec<Frame>) {
        while let Some((due, _)) = self.held.front() {
            if now.is_some_and(|now| *due > now) {
                break;
            }
            if let Some((_, frame)) = self.held.pop_front() {
                out.push(frame);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.held.front().map(|(due, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_fixed_delay_holds_in_order_and_drops_every_nth() {
        let mut stage = FixedDelay::new(Duration::from_millis(10), 3);
        let t0 = Instant::now();
        let bytes: Vec<[u8; 4]> = (0..=5).map(|n| [n; 4]).collect();
        let frame = |n: u8| FrameRef {
            data: &bytes[usize::from(n)][..],
            received_ns: u64::from(n),
        };
        let verdicts: Vec<Verdict> = (1..=4).map(|n| stage.process(frame(n), t0)).collect();
        assert_eq!(
            verdicts,
            [Verdict::Hold, Verdict::Hold, Verdict::Drop, Verdict::Hold]
        );
        assert_eq!(stage.next_timer(), Some(t0 + Duration::from_millis(10)));
        let mut out = Vec::new();
        stage.release(Some(t0 + Duration::from_millis(9)), &mut out);
        assert!(out.is_empty());
        stage.release(Some(t0 + Duration::from_millis(10)), &mut out);
        let got: Vec<u64> = out.iter().map(|f| f.received_ns).collect();
        assert_eq!(got, [1, 2, 4]);
        assert_eq!(stage.next_timer(), None);
        stage.process(frame(5), t0);
        out.clear();
        stage.release(None, &mut out);
        assert_eq!(out, [frame(5).to_frame()]);
    }
}
