//! Batch datagram I/O: many datagrams per system call with `recvmmsg(2)` / `sendmmsg(2)`.
//!
//! A [`RecvBatch`] owns fixed slots big enough for any UDP datagram and reports, per
//! datagram, its sender, the kernel's receive timestamp and the socket's drop counter (ask
//! for those once with [`enable_receive_metadata`]). A [`SendBatch`] sends slices to one
//! destination.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

pub use super::sys::Received;
use super::sys::{RecvMmsg, SendMmsg};

/// The largest UDP payload any IP version carries without jumbograms, rounded up: a slot
/// of this size never truncates.
pub const MAX_DATAGRAM: usize = 65536;

/// Asks the kernel to attach a nanosecond receive timestamp and the socket's cumulative
/// drop count to every datagram received on `socket`.
pub fn enable_receive_metadata(socket: &impl AsFd) -> io::Result<()> {
    super::sys::enable_receive_metadata(socket.as_fd())
}

/// Up to `capacity` received datagrams and what the kernel said about each.
pub struct RecvBatch {
    buffer: Vec<u8>,
    slot: usize,
    meta: Vec<Received>,
    len: usize,
    sys: RecvMmsg,
}

impl RecvBatch {
    /// Room for `capacity` datagrams of up to `slot` bytes each.
    pub fn new(capacity: usize, slot: usize) -> Self {
        let capacity = capacity.max(1);
        let slot = slot.max(1);
        RecvBatch {
            buffer: vec![0; capacity * slot],
            slot,
            meta: vec![Received::default(); capacity],
            len: 0,
            sys: RecvMmsg::new(capacity),
        }
    }

    /// Waits for at least one datagram (up to the socket's read timeout, which surfaces as
    /// `WouldBlock` or `TimedOut`), then takes every queued one that fits. Returns the count.
    pub fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.receive(socket, true)
    }

    /// Takes the datagrams already queued, without waiting; none is `WouldBlock`.
    pub fn try_recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.receive(socket, false)
    }

    fn receive(&mut self, socket: &impl AsFd, wait: bool) -> io::Result<usize> {
        self.len = 0;
        self.len = self.sys.recv(
            socket.as_fd(),
            &mut self.buffer,
            self.slot,
            &mut self.meta,
            wait,
        )?;
        Ok(self.len)
    }

    /// Datagrams of the last [`RecvBatch::recv`], in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Received)> {
        self.buffer
            .chunks_exact(self.slot)
            .zip(&self.meta)
            .take(self.len)
            .map(|(chunk, meta)| (&chunk[..meta.len], meta))
    }

    /// How many datagrams the batch holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many datagrams the batch can hold.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// True when every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len == self.meta.len()
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends one datagram that did not come from `recvmmsg` (a frame cut out of a stream,
    /// read from a device), received at `timestamp_ns` from `source`. False when the batch is
    /// full; a frame longer than a slot is cut and marked truncated.
    pub fn push(&mut self, data: &[u8], timestamp_ns: u64, source: Option<SocketAddr>) -> bool {
        if self.is_full() {
            return false;
        }
        let len = data.len().min(self.slot);
        let start = self.len * self.slot;
        self.buffer[start..start + len].copy_from_slice(&data[..len]);
        self.meta[self.len] = Received {
            len,
            source,
            timestamp_ns,
            kernel_drops: 0,
            truncated: len < data.len(),
        };
        self.len += 1;
        true
    }

    /// True when the last receive returned nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Sends batches of datagrams to one destination.
pub struct SendBatch {
    sys: SendMmsg,
    capacity: usize,
    /// Where [`SendBatch::send_offloaded`] puts a run of datagrams back to back.
    run: Vec<u8>,
}

/// What became of the datagrams handed to [`SendBatch::send`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams the kernel refused (each refusal skips one datagram and goes on).
    pub failed: usize,
    /// Bytes of the refused datagrams.
    pub failed_bytes: u64,
    /// The last refusal, if any.
    pub last_error: Option<io::ErrorKind>,
}

impl SendOutcome {
    /// Every one of `frames` refused, for `error`.
    pub fn all_failed(frames: &[&[u8]], error: io::ErrorKind) -> SendOutcome {
        SendOutcome {
            sent: 0,
            failed: frames.len(),
            failed_bytes: frames.iter().map(|f| f.len() as u64).sum(),
            last_error: Some(error),
        }
    }

    /// Counts one frame handed over one at a time: sent, or refused for an error.
    pub fn count(&mut self, frame: &[u8], result: Result<(), io::ErrorKind>) {
        match result {
            Ok(()) => self.sent += 1,
            Err(error) => {
                self.failed += 1;
                self.failed_bytes += frame.len() as u64;
                self.last_error = Some(error);
            }
        }
    }

    /// Adds the counts of another send; its refusal, if any, becomes the last one.
    pub fn add(&mut self, other: SendOutcome) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.failed_bytes += other.failed_bytes;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }
}

impl SendBatch {
    /// Room for `capacity` datagrams per system call.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        SendBatch {
            sys: SendMmsg::new(capacity),
            capacity,
            run: Vec::new(),
        }
    }

    /// Sends every datagram, in order, to `destination` (`None`: to the peer of a connected
    /// socket, the cheaper way), in as few calls as the kernel
    /// allows. A datagram the kernel refuses is skipped and counted, so one bad datagram
    /// never holds up the rest. Interrupted calls are retried.
    pub fn send(
        &mut self,
        socket: &impl AsFd,
        destination: Option<SocketAddr>,
        datagrams: &[&[u8]],
    ) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        let mut rest = datagrams;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(self.capacity)];
            match self.sys.send(socket.as_fd(), destination, chunk, None) {
                Ok(0) => {
                    outcome.failed += 1;
                    outcome.failed_bytes += rest[0].len() as u64;
                    rest = &rest[1..];
                }
                Ok(n) => {
                    outcome.sent += n;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    outcome.failed += 1;
                    outcome.failed_bytes += rest[0].len() as u64;
                    outcome.last_error = Some(e.kind());
                    rest = &rest[1..];
                }
            }
        }
        outcome
    }

    /// [`SendBatch::send`], but each run of two or more consecutive datagrams of one size
    /// up to `*segment_limit` bytes goes as one buffer the kernel cuts apart itself (UDP
    /// segmentation offload): the run crosses the stack once instead of once per datagram.
    /// Receivers see the same datagrams in the same order. A path that refuses to segment a
    /// size (a datagram larger than the route MTU, no checksum offload) lowers
    /// `*segment_limit` below it, and the run goes as separate datagrams.
    pub fn send_offloaded(
        &mut self,
        socket: &impl AsFd,
        destination: Option<SocketAddr>,
        datagrams: &[&[u8]],
        segment_limit: &mut usize,
    ) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        let (mut start, mut plain) = (0, 0);
        while start < datagrams.len() {
            let len = datagrams[start].len();
            let most = MAX_SEGMENTS.min(MAX_SEGMENTED / len.max(1));
            let mut end = start + 1;
            while end < datagrams.len() && end - start < most && datagrams[end].len() == len {
                end += 1;
            }
            if end - start < 2 || len == 0 || len > *segment_limit {
                start = end;
                continue;
            }
            outcome.add(self.send(socket, destination, &datagrams[plain..start]));
            let mut run = std::mem::take(&mut self.run);
            run.clear();
            for datagram in &datagrams[start..end] {
                run.extend_from_slice(datagram);
            }
            let segmented = self.send_segmented(socket, destination, &[&run], len as u16);
            self.run = run;
            match segmented {
                Ok(1) => outcome.sent += end - start,
                Err(e) if segmentation_refused(&e) => {
                    *segment_limit = len - 1;
                    outcome.add(self.send(socket, destination, &datagrams[start..end]));
                }
                // Refused as any send may be (a full buffer, no route): datagram by datagram,
                // so each refusal is counted as send counts it.
                _ => outcome.add(self.send(socket, destination, &datagrams[start..end])),
            }
            (start, plain) = (end, end);
        }
        outcome.add(self.send(socket, destination, &datagrams[plain..]));
        outcome
    }

    /// Sends runs of datagrams with UDP segmentation offload (GSO): each buffer holds
    /// consecutive datagrams of `segment` bytes (the last may be shorter), at most
    /// [`MAX_SEGMENTS`] of them and [`MAX_SEGMENTED`] bytes, which the kernel cuts apart
    /// itself, so a whole run crosses the stack once. Receivers see ordinary datagrams, but a
    /// capture on the sending host's interface may show the uncut run, as it shows TCP
    /// segmentation offload. Returns how many buffers the kernel took, counted from the
    /// first; an error means the first one failed: `EINVAL`, `EIO` or `EMSGSIZE` say the
    /// path cannot segment (a datagram larger than the route MTU, no checksum offload), the
    /// others are the transient refusals of any send.
    pub fn send_segmented(
        &mut self,
        socket: &impl AsFd,
        destination: Option<SocketAddr>,
        buffers: &[&[u8]],
        segment: u16,
    ) -> io::Result<usize> {
        loop {
            match self
                .sys
                .send(socket.as_fd(), destination, buffers, Some(segment))
            {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// Datagrams one segmented send may carry (the kernel's `UDP_MAX_SEGMENTS`, 64 before
/// Linux 6.x raised it).
pub const MAX_SEGMENTS: usize = 64;

/// Bytes one segmented send may carry: the largest UDP payload of an IPv4 datagram.
pub const MAX_SEGMENTED: usize = 65507;

/// True when a [`SendBatch::send_segmented`] error says this socket or path cannot segment
/// (too many segments, a segment over the route MTU, no checksum offload, no GSO at all)
/// rather than a transient refusal: send the datagrams one by one instead.
pub fn segmentation_refused(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::EMSGSIZE | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn batches_carry_datagrams_in_order_with_metadata() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        enable_receive_metadata(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let frames: Vec<Vec<u8>> = (1..=20u8).map(|n| vec![n; n as usize * 100]).collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let outcome = SendBatch::new(8).send(&tx, Some(rx.local_addr().unwrap()), &slices);
        assert_eq!(outcome.sent, 20);
        let mut batch = RecvBatch::new(64, MAX_DATAGRAM);
        let mut got = Vec::new();
        while got.len() < 20 {
            batch.recv(&rx).unwrap();
            for (data, meta) in batch.iter() {
                assert_eq!(meta.source, Some(tx.local_addr().unwrap()));
                assert!(meta.timestamp_ns > 1_600_000_000_000_000_000);
                assert_eq!(meta.kernel_drops, 0);
                assert!(!meta.truncated);
                got.push(data.to_vec());
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn pushed_frames_fill_the_batch_and_long_ones_are_cut() {
        let mut batch = RecvBatch::new(2, 4);
        assert!(batch.push(b"ab", 7, None));
        assert!(batch.push(b"abcdef", 8, None));
        assert!(batch.is_full());
        assert!(!batch.push(b"x", 9, None));
        let got: Vec<(&[u8], u64, bool)> = batch
            .iter()
            .map(|(d, m)| (d, m.timestamp_ns, m.truncated))
            .collect();
        assert_eq!(got, [(&b"ab"[..], 7, false), (&b"abcd"[..], 8, true)]);
        batch.clear();
        assert!(batch.is_empty());
    }

    #[test]
    fn a_connected_socket_sends_without_an_address() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let outcome = SendBatch::new(4).send(&tx, None, &[b"one", b"two"]);
        assert_eq!((outcome.sent, outcome.failed), (2, 0));
        let mut buf = [0; 8];
        assert_eq!(rx.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
    }

    #[test]
    fn a_segmented_send_arrives_as_separate_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Two runs: 5 datagrams of 100 bytes, and 2 of 100 plus a last one of 40.
        let first: Vec<u8> = (0..500).map(|i| (i / 100) as u8).collect();
        let second: Vec<u8> = (0..240).map(|i| 10 + (i / 100) as u8).collect();
        let taken = SendBatch::new(4)
            .send_segmented(&tx, Some(rx.local_addr().unwrap()), &[&first, &second], 100)
            .unwrap();
        assert_eq!(taken, 2);
        let mut batch = RecvBatch::new(16, MAX_DATAGRAM);
        let mut got = Vec::new();
        while got.len() < 8 {
            batch.recv(&rx).unwrap();
            got.extend(batch.iter().map(|(data, _)| (data.len(), data[0])));
        }
        let expected: Vec<(usize, u8)> = (0..5)
            .map(|n| (100, n))
            .chain([(100, 10), (100, 11), (40, 12)])
            .collect();
        assert_eq!(got, expected);
    }

    /// Sends `sizes` (datagram i filled with byte i) through `send_offloaded` and returns
    /// what arrived, as (length, first byte), and the segment limit after.
    fn offloaded(sizes: &[usize], limit: usize, tx: &UdpSocket) -> (Vec<(usize, u8)>, usize) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8; len])
            .collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut limit = limit;
        let outcome = SendBatch::new(64).send_offloaded(
            tx,
            Some(rx.local_addr().unwrap()),
            &slices,
            &mut limit,
        );
        assert_eq!((outcome.sent, outcome.failed), (sizes.len(), 0));
        let mut batch = RecvBatch::new(128, MAX_DATAGRAM);
        let mut got = Vec::new();
        while got.len() < sizes.len() {
            batch.recv(&rx).unwrap();
            got.extend(batch.iter().map(|(data, _)| {
                assert!(
                    data.iter().all(|&b| b == data[0]),
                    "a datagram mixed with another"
                );
                (data.len(), data[0])
            }));
        }
        (got, limit)
    }

    #[test]
    fn offloaded_runs_arrive_as_the_same_datagrams_in_order() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Runs of one size (segmented), lone datagrams and a run longer than one segmented
        // send may carry, in one call.
        let mut sizes = vec![100, 100, 100, 50, 50, 7, 1500, 1500, 9000, 100];
        sizes.extend([1400; 70]);
        let expected: Vec<(usize, u8)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (len, i as u8))
            .collect();
        assert_eq!(
            offloaded(&sizes, MAX_SEGMENTED, &tx),
            (expected.clone(), MAX_SEGMENTED)
        );
        // Under a lower limit the larger runs go one datagram at a time, the same way.
        assert_eq!(offloaded(&sizes, 99, &tx), (expected, 99));
    }

    #[test]
    fn a_path_that_refuses_to_segment_lowers_the_limit_and_loses_nothing() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        super::super::sys::disable_udp_checksum(std::os::fd::AsFd::as_fd(&tx)).unwrap();
        let sizes = [300, 300, 300, 20, 20];
        let expected: Vec<(usize, u8)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (len, i as u8))
            .collect();
        let (got, limit) = offloaded(&sizes, MAX_SEGMENTED, &tx);
        assert_eq!(got, expected);
        assert!(limit < 20, "every size was refused: {limit}");
    }

    #[test]
    fn too_many_segments_are_refused_as_unsegmentable() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let run = vec![0u8; 10 * (4 * MAX_SEGMENTS)];
        let err = SendBatch::new(1)
            .send_segmented(&tx, Some(rx.local_addr().unwrap()), &[&run], 10)
            .unwrap_err();
        assert!(segmentation_refused(&err), "{err}");
    }

    #[test]
    fn a_short_slot_reports_truncation() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7; 100], rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(1, 10);
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        let (data, meta) = batch.iter().next().unwrap();
        assert_eq!(data, &[7; 10]);
        assert!(meta.truncated);
    }

    #[test]
    fn try_recv_takes_what_is_queued_and_never_waits() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut batch = RecvBatch::new(4, 64);
        let err = batch.try_recv(&rx).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"queued", rx.local_addr().unwrap()).unwrap();
        while batch.try_recv(&rx).is_err() {
            std::thread::yield_now();
        }
        assert_eq!(batch.iter().next().unwrap().0, b"queued");
    }

    #[test]
    fn a_read_timeout_surfaces_as_would_block() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let err = RecvBatch::new(4, 64).recv(&rx).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}
