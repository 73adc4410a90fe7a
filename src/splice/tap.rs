//! The tap: copies of forwarded frames, handed to a consumer thread through a bounded
//! channel. Forwarding never waits for it: when the channel is full the copy is dropped and
//! counted, the frame itself is still forwarded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::Direction;

/// Room in the tap for this many frames before copies are dropped.
pub const DEFAULT_CAPACITY: usize = 65536;

/// A copy of one forwarded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    /// Index of the link in the splice's configuration.
    pub link: usize,
    /// Which way the frame went.
    pub direction: Direction,
    /// Kernel receive time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// When the send that forwarded the frame returned (one clock reading per batch),
    /// nanoseconds since the Unix epoch; `None` when the kernel gave no receive timestamp,
    /// so the splice's own delay is unknown.
    pub sent_ns: Option<u64>,
    /// The whole frame.
    pub data: Vec<u8>,
}

impl TapRecord {
    /// The splice's own delay for this frame: receive timestamp to send return.
    pub fn added_latency_ns(&self) -> Option<u64> {
        self.sent_ns
            .map(|sent| sent.saturating_sub(self.timestamp_ns))
    }
}

/// A bounded tap channel.
pub fn channel(capacity: usize) -> (Sender<TapRecord>, Receiver<TapRecord>) {
    crossbeam_channel::bounded(capacity.max(1))
}

/// Whether a consumer wants more frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop the splice (a count or size limit was reached).
    Stop,
}

/// Something that takes the tap's frames on the consumer thread.
pub trait Consumer: Send {
    /// Takes one frame.
    fn record(&mut self, record: &TapRecord) -> crate::Result<Flow>;
    /// Called whenever the channel has been emptied: make what was taken visible (flush).
    fn flush(&mut self) -> crate::Result<()>;
}

/// Runs `consumer` on a thread named `splice-tap` until every sender of `records` is gone
/// (the splice stopped) and the channel is drained. A consumer error or [`Flow::Stop`] sets
/// `stop` so the splice ends; frames after that are discarded. The thread gives back the
/// consumer and its first error.
pub fn spawn<C: Consumer + 'static>(
    records: Receiver<TapRecord>,
    mut consumer: C,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<(C, crate::Result<()>)>> {
    std::thread::Builder::new()
        .name("splice-tap".into())
        .spawn(move || {
            let outcome = consume(&records, &mut consumer, &stop);
            if outcome.is_err() {
                stop.store(true, Ordering::SeqCst);
                while records.recv().is_ok() {}
            }
            (consumer, outcome)
        })
}

/// How long the consumer sleeps when it has emptied the channel while frames are flowing.
const POLL: Duration = Duration::from_millis(1);

/// Empty polls (about 100 ms without frames) before the consumer blocks on the channel.
const IDLE_POLLS: u32 = 100;

/// Takes frames until every sender is gone. While frames flow, the consumer sleeps between
/// drains instead of waiting on the channel: a waiting receiver must be woken by the sender,
/// a system call on the forwarding thread for nearly every batch; a sleeping one costs the
/// forwarding threads nothing. After [`IDLE_POLLS`] empty polls it blocks until the next frame.
fn consume<C: Consumer>(
    records: &Receiver<TapRecord>,
    consumer: &mut C,
    stop: &AtomicBool,
) -> crate::Result<()> {
    let mut stopped = false;
    let mut idle = 0;
    loop {
        let first = match records.try_recv() {
            Ok(record) => record,
            Err(TryRecvError::Disconnected) => return Ok(()),
            Err(TryRecvError::Empty) if idle < IDLE_POLLS => {
                idle += 1;
                std::thread::sleep(POLL);
                continue;
            }
            Err(TryRecvError::Empty) => match records.recv() {
                Ok(record) => record,
                Err(_) => return Ok(()),
            },
        };
        idle = 0;
        let mut next = Some(first);
        while let Some(record) = next {
            if !stopped && consumer.record(&record)? == Flow::Stop {
                stopped = true;
                stop.store(true, Ordering::SeqCst);
            }
            next = records.try_recv().ok();
        }
        consumer.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect {
        seen: Vec<usize>,
        flushes: usize,
        limit: usize,
    }

    impl Consumer for Collect {
        fn record(&mut self, record: &TapRecord) -> crate::Result<Flow> {
            self.seen.push(record.data.len());
            Ok(if self.seen.len() >= self.limit {
                Flow::Stop
            } else {
                Flow::Continue
            })
        }
        fn flush(&mut self) -> crate::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    fn record(len: usize) -> TapRecord {
        TapRecord {
            link: 0,
            direction: Direction::AToB,
            timestamp_ns: 1,
            sent_ns: None,
            data: vec![0; len],
        }
    }

    #[test]
    fn drains_everything_and_stops_at_the_limit() {
        let (tx, rx) = channel(16);
        for len in 1..=5 {
            tx.send(record(len)).unwrap();
        }
        drop(tx);
        let stop = Arc::new(AtomicBool::new(false));
        let collect = Collect {
            seen: Vec::new(),
            flushes: 0,
            limit: 3,
        };
        let (collect, outcome) = spawn(rx, collect, stop.clone()).unwrap().join().unwrap();
        outcome.unwrap();
        assert_eq!(collect.seen, vec![1, 2, 3]);
        assert!(collect.flushes >= 1);
        assert!(stop.load(Ordering::SeqCst));
    }
}
