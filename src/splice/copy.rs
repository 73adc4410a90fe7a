//! The copy channel: copies of forwarded frames, handed to a consumer thread through a bounded
//! channel, one message per received batch ([`CopyBatch`]: the batch's frames copied into one
//! buffer). Forwarding never waits for it: when the channel is full (of batches, or of the
//! bytes they hold) the batch's copies are dropped and each of its frames is counted, the
//! frames themselves are still forwarded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::Direction;
use crate::wire::{self, ETHERTYPE_LLDP, ETHERTYPE_SLOW};

/// Room in the copy channel for this many batches before copies are dropped. A batch holds at
/// most [`super::BATCH`] (64) frames, so this is up to 65536 frames.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The most bytes of frame copies the channel holds, queued or being consumed, before copies
/// are dropped: what a peer sending the largest datagrams to a stalled consumer can make the
/// process hold (1024 batches of 64 datagrams of 64 KiB would be 4 GiB). Full-size frames
/// reach the batch count first (1024 × 64 × 1514 bytes is 99 MB), 9,000-byte jumbo frames
/// this cap at about 460 batches.
pub const BYTE_CAP: usize = 256 << 20;

/// A view of one forwarded frame, borrowed from its [`CopyBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRecord<'a> {
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
    pub data: &'a [u8],
}

impl CopyRecord<'_> {
    /// The splice's own delay for this frame: receive timestamp to send return.
    pub fn added_latency_ns(&self) -> Option<u64> {
        self.sent_ns
            .map(|sent| sent.saturating_sub(self.timestamp_ns))
    }
}

/// Spare buffers kept per engine worker: a consumed [`CopyBatch`] hands its buffers
/// back so the next batch reuses them instead of allocating (and faulting in) new ones. At
/// most this many per worker, each as large as the largest batch seen.
pub const SPARE_BATCHES: usize = 8;

/// The buffers of a consumed [`CopyBatch`], ready for the next one.
#[derive(Debug, Default)]
pub struct Spare {
    data: Vec<u8>,
    frames: Vec<(usize, u64)>,
}

/// Copies of the frames of one received batch that the copy channel takes, in forwarding order, in
/// one buffer: one channel message per batch instead of per frame, and no allocation once
/// the spare buffers circulate. Dropping it hands its buffers back to `back`, when given.
#[derive(Debug)]
pub struct CopyBatch {
    /// Index of the link in the splice's configuration.
    pub link: usize,
    /// Which way the frames went.
    pub direction: Direction,
    /// When the send that forwarded the batch returned, nanoseconds since the Unix epoch.
    sent_ns: u64,
    /// The frames, back to back.
    data: Vec<u8>,
    /// Per frame: where it ends in `data` and its kernel receive time (0: none).
    frames: Vec<(usize, u64)>,
    /// Where the buffers go when the batch is dropped.
    back: Option<Sender<Spare>>,
    /// The channel's byte count and what this batch added to it while it is in the channel
    /// or with the consumer; given back when the batch is dropped.
    queued: Option<(Arc<AtomicUsize>, usize)>,
}

impl CopyBatch {
    /// An empty batch in the buffers of `spare` (emptied), with room for `frames` frames of
    /// `bytes` bytes in all, whose buffers go to `back` once it is dropped.
    pub fn new(
        (link, direction, sent_ns): (usize, Direction, u64),
        spare: Spare,
        (frames, bytes): (usize, usize),
        back: Option<Sender<Spare>>,
    ) -> CopyBatch {
        let Spare {
            data: mut buffer,
            frames: mut ends,
        } = spare;
        buffer.clear();
        buffer.reserve(bytes);
        ends.clear();
        ends.reserve(frames);
        CopyBatch {
            link,
            direction,
            sent_ns,
            data: buffer,
            frames: ends,
            back,
            queued: None,
        }
    }

    /// Appends a copy of `frame`, received at `timestamp_ns` (0 when the kernel gave no
    /// receive timestamp).
    pub fn push(&mut self, frame: &[u8], timestamp_ns: u64) {
        self.data.extend_from_slice(frame);
        self.frames.push((self.data.len(), timestamp_ns));
    }

    /// How many frames the batch holds.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames, in order. A frame without a kernel receive time takes the send time as
    /// its timestamp and has no `sent_ns` (the splice's own delay is unknown).
    pub fn records(&self) -> impl Iterator<Item = CopyRecord<'_>> {
        let mut start = 0;
        self.frames.iter().map(move |&(end, timestamp_ns)| {
            let data = &self.data[start..end];
            start = end;
            let kernel_time = timestamp_ns != 0;
            CopyRecord {
                link: self.link,
                direction: self.direction,
                timestamp_ns: if kernel_time {
                    timestamp_ns
                } else {
                    self.sent_ns
                },
                sent_ns: kernel_time.then_some(self.sent_ns),
                data,
            }
        })
    }
}

impl Drop for CopyBatch {
    fn drop(&mut self) {
        if let Some((queued, bytes)) = self.queued.take() {
            queued.fetch_sub(bytes, Ordering::AcqRel);
        }
        if let Some(back) = self.back.take() {
            // A full pool or a stopped forwarding thread: the buffers are simply freed.
            let _ = back.try_send(Spare {
                data: std::mem::take(&mut self.data),
                frames: std::mem::take(&mut self.frames),
            });
        }
    }
}

/// Which forwarded frames the forwarding threads offer to the copy channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CopyFilter {
    /// Every frame: for captures, per-frame lines, meters and frame counts.
    #[default]
    All,
    /// Only frames that may carry a layer-2 control protocol, for a consumer that needs
    /// nothing else (the LLDP/STP/LACP view, `--expect`): after up to
    /// [`wire::MAX_VLAN_TAGS`] VLAN tags, EtherType LLDP (0x88cc), slow protocols (0x8809, LACP)
    /// or an IEEE 802.3 length (LLC, which carries STP and, on SNAP, PVST+). Every frame
    /// [`crate::wire::classify`] finds LLDP, STP or LACP in passes; the check reads at most
    /// the Ethernet header and tags on the forwarding path, and allocates nothing, while
    /// the bulk of the traffic (IP, ARP) is neither copied nor handed over.
    Control,
}

impl CopyFilter {
    /// Whether the copy channel takes a copy of `frame`.
    pub fn takes(self, frame: &[u8]) -> bool {
        match self {
            CopyFilter::All => true,
            CopyFilter::Control => may_carry_control(frame),
        }
    }
}

/// The [`CopyFilter::Control`] check: after the VLAN tags ([`wire::untag`]), an IEEE 802.3
/// length (LLC: STP, PVST+), LLDP or the slow protocols.
fn may_carry_control(frame: &[u8]) -> bool {
    wire::untag(frame).is_ok_and(|u| {
        u.ether_type.0 < 0x0600 || u.ether_type == ETHERTYPE_LLDP || u.ether_type == ETHERTYPE_SLOW
    })
}

/// A copy channel of `capacity` batches and at most [`BYTE_CAP`] bytes.
pub fn channel(capacity: usize) -> (CopySender, Receiver<CopyBatch>) {
    bounded(capacity, BYTE_CAP)
}

/// A copy channel of `capacity` batches and at most `bytes` bytes of frames.
pub fn bounded(capacity: usize, bytes: usize) -> (CopySender, Receiver<CopyBatch>) {
    let (batches, receiver) = crossbeam_channel::bounded(capacity.max(1));
    let sender = CopySender {
        batches,
        queued: Arc::new(AtomicUsize::new(0)),
        cap: bytes,
    };
    (sender, receiver)
}

/// The forwarding threads' side of a copy channel.
#[derive(Debug, Clone)]
pub struct CopySender {
    batches: Sender<CopyBatch>,
    /// Bytes of the batches in the channel or with the consumer.
    queued: Arc<AtomicUsize>,
    cap: usize,
}

impl CopySender {
    /// Hands `batch` over without waiting; a full channel (of batches or of bytes) gives it
    /// back as [`TrySendError::Full`].
    pub fn try_send(&self, mut batch: CopyBatch) -> Result<(), TrySendError<CopyBatch>> {
        let bytes = batch.data.len();
        if self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes > self.cap {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(TrySendError::Full(batch));
        }
        // A batch the channel refuses gives its bytes back when it is dropped.
        batch.queued = Some((Arc::clone(&self.queued), bytes));
        self.batches.try_send(batch)
    }
}

/// Whether a consumer wants more frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep going.
    Continue,
    /// Stop the splice (a count or size limit was reached).
    Stop,
}

/// Something that takes the copy channel's frames on the consumer thread.
pub trait Consumer: Send {
    /// Takes one frame.
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next>;
    /// Called whenever the channel has been emptied: make what was taken visible (flush).
    fn flush(&mut self) -> crate::Result<()>;
}

/// Runs `consumer` on a thread named `splice-copy` until every sender of `batches` is gone
/// (the splice stopped) and the channel is drained. A consumer error or [`Next::Stop`] sets
/// `stop` so the splice ends; frames after that are discarded. The thread gives back the
/// consumer and its first error.
pub fn spawn<C: Consumer + 'static>(
    batches: Receiver<CopyBatch>,
    mut consumer: C,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<(C, crate::Result<()>)>> {
    std::thread::Builder::new()
        .name("splice-copy".into())
        .spawn(move || {
            let outcome = consume(&batches, &mut consumer, &stop);
            if outcome.is_err() {
                stop.store(true, Ordering::SeqCst);
                while batches.recv().is_ok() {}
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
    batches: &Receiver<CopyBatch>,
    consumer: &mut C,
    stop: &AtomicBool,
) -> crate::Result<()> {
    let mut stopped = false;
    let mut idle = 0;
    loop {
        let first = match batches.try_recv() {
            Ok(batch) => batch,
            Err(TryRecvError::Disconnected) => return Ok(()),
            Err(TryRecvError::Empty) if idle < IDLE_POLLS => {
                idle += 1;
                std::thread::sleep(POLL);
                continue;
            }
            Err(TryRecvError::Empty) => match batches.recv() {
                Ok(batch) => batch,
                Err(_) => return Ok(()),
            },
        };
        idle = 0;
        let mut next = Some(first);
        while let Some(batch) = next {
            for record in batch.records() {
                if stopped {
                    break;
                }
                if consumer.record(&record)? == Next::Stop {
                    stopped = true;
                    stop.store(true, Ordering::SeqCst);
                }
            }
            next = batches.try_recv().ok();
        }
        consumer.flush()?;
    }
}

/// Test consumers shared by the tests of the consumers that wrap another one.
#[cfg(test)]
pub mod testing {
    use super::{Consumer, CopyRecord, Next};

    /// Counts the frames it is handed.
    pub struct Count(pub u64);

    impl Consumer for Count {
        fn record(&mut self, _: &CopyRecord<'_>) -> crate::Result<Next> {
            self.0 += 1;
            Ok(Next::Continue)
        }
        fn flush(&mut self) -> crate::Result<()> {
            Ok(())
        }
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
        fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
            self.seen.push(record.data.len());
            Ok(if self.seen.len() >= self.limit {
                Next::Stop
            } else {
                Next::Continue
            })
        }
        fn flush(&mut self) -> crate::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    /// An Ethernet frame to a multicast address with `tags` 802.1Q tags, then `ether_type`
    /// (or an 802.3 length) and `payload`.
    fn frame(tags: usize, ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x52, 0x54, 0, 0, 0, 1];
        for _ in 0..tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_control_filter_takes_control_frames_and_skips_the_rest() {
        let stp = [0x42, 0x42, 0x03, 0, 0, 0, 0];
        let pvst = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x01, 0x0b, 0, 0];
        for taken in [
            frame(0, 0x88cc, &[2, 7, 4]),
            frame(0, 0x8809, &[1, 1]),
            frame(0, stp.len() as u16, &stp),
            frame(1, pvst.len() as u16, &pvst),
            frame(3, 0x88cc, &[]),
        ] {
            assert!(CopyFilter::Control.takes(&taken), "{taken:02x?}");
            assert!(CopyFilter::All.takes(&taken));
        }
        for skipped in [
            frame(0, 0x0800, &[0x45; 40]),
            frame(2, 0x0806, &[0; 28]),
            frame(0, 0x86dd, &[0x60; 40]),
            frame(4, 0x88cc, &[]),
            vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x52, 0x54, 0, 0, 0, 1, 0x88],
            Vec::new(),
        ] {
            assert!(!CopyFilter::Control.takes(&skipped), "{skipped:02x?}");
            assert!(CopyFilter::All.takes(&skipped));
        }
    }

    proptest::proptest! {
        /// Whatever the layer-2 view would act on passes the control filter.
        #[test]
        fn the_control_filter_passes_every_frame_the_view_decodes(
            tags in proptest::collection::vec(
                proptest::sample::select(vec![0x8100u16, 0x88a8, 0x9100]), 0..5),
            ether_type in proptest::prop_oneof![
                proptest::sample::select(vec![0x88ccu16, 0x8809, 0x0800, 0x0806, 0x86dd]),
                0u16..0x0700,
                proptest::num::u16::ANY,
            ],
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 0x52, 0x54, 0, 0, 0, 1];
            for tpid in tags {
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&[0, 1]);
            }
            f.extend_from_slice(&ether_type.to_be_bytes());
            f.extend_from_slice(&payload);
            let control = crate::wire::classify(&f).ok().and_then(|c| c.protocol()).is_some();
            proptest::prop_assert!(!control || CopyFilter::Control.takes(&f));
        }
    }

    #[test]
    fn a_batch_gives_back_its_frames_in_order_with_their_times() {
        let (back, spares) = crossbeam_channel::bounded(1);
        let mut batch = CopyBatch::new(
            (3, Direction::BToA, 900),
            Spare::default(),
            (3, 6),
            Some(back),
        );
        assert!(batch.is_empty());
        batch.push(&[1], 100);
        batch.push(&[2, 3, 4], 0);
        batch.push(&[5, 6], 200);
        assert_eq!(batch.len(), 3);
        let records: Vec<_> = batch.records().collect();
        let at = |data, timestamp_ns, sent_ns| CopyRecord {
            link: 3,
            direction: Direction::BToA,
            timestamp_ns,
            sent_ns,
            data,
        };
        assert_eq!(
            records,
            vec![
                at(&[1][..], 100, Some(900)),
                at(&[2, 3, 4][..], 900, None),
                at(&[5, 6][..], 200, Some(900)),
            ]
        );
        assert_eq!(records[0].added_latency_ns(), Some(800));
        assert_eq!(records[1].added_latency_ns(), None);
        drop(records);
        drop(batch);
        let spare = spares.try_recv().expect("the buffers come back");
        assert_eq!((spare.data.len(), spare.frames.len()), (6, 3));
        let reused = CopyBatch::new((0, Direction::AToB, 1), spare, (1, 1), None);
        assert!(reused.is_empty());
        assert!(reused.data.capacity() >= 6);
    }

    #[test]
    fn the_channel_holds_at_most_its_bytes_until_the_consumer_lets_go() {
        let (tx, rx) = bounded(100, 10_000);
        let batch = |len: usize| {
            let mut b = CopyBatch::new((0, Direction::AToB, 1), Spare::default(), (1, len), None);
            b.push(&vec![0; len], 1);
            b
        };
        tx.try_send(batch(6_000)).unwrap();
        assert!(
            matches!(tx.try_send(batch(6_000)), Err(TrySendError::Full(_))),
            "12,000 bytes would pass the cap"
        );
        tx.try_send(batch(4_000)).unwrap();
        assert!(matches!(tx.try_send(batch(1)), Err(TrySendError::Full(_))));
        // The consumer takes the first batch: its bytes stay counted until it drops it.
        let taken = rx.try_recv().unwrap();
        assert!(matches!(tx.try_send(batch(1)), Err(TrySendError::Full(_))));
        drop(taken);
        tx.try_send(batch(6_000)).unwrap();
        // A batch the channel refuses for its count gives its bytes back too.
        let (tx, _rx) = bounded(1, 10_000);
        tx.try_send(batch(10)).unwrap();
        assert!(matches!(tx.try_send(batch(10)), Err(TrySendError::Full(_))));
        assert_eq!(tx.queued.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn drains_everything_and_stops_at_the_limit() {
        let (tx, rx) = channel(16);
        for lens in [&[1, 2][..], &[3, 4, 5]] {
            let mut batch = CopyBatch::new((0, Direction::AToB, 1), Spare::default(), (0, 0), None);
            for &len in lens {
                batch.push(&vec![0; len], 1);
            }
            tx.try_send(batch).unwrap();
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
