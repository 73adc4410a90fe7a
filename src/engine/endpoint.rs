//! The endpoint seam: one side of a link, as the engine sees it.
//!
//! An endpoint is whatever frames come from and go to: today a QEMU UDP tunnel end
//! ([`super::udp::TunnelEnd`]), next a stream with QEMU's length framing, a TAP device, a
//! VXLAN or multicast socket, a child process. The engine owns no assumption about it beyond
//! this trait:
//!
//! - It registers its descriptors with the worker's [`mio::Registry`] under the token it is
//!   given (readiness is edge-triggered), and is told when they become readable or writable.
//! - [`Endpoint::receive`] fills the worker's [`Inbox`] with the frames it has, however many
//!   reads that takes (a datagram socket: one `recvmmsg`; a stream: frames cut out of its own
//!   buffer, partial ones kept for later). An inbox left not full means "drained until the
//!   next readiness event"; a full one makes the worker call again later.
//! - [`Endpoint::accepts`] is the peer check: a datagram from anyone else is dropped and
//!   counted as `foreign_source`.
//! - [`Endpoint::send`] takes a run of frames. An endpoint whose writes can block keeps a
//!   bounded queue of its own and flushes it on [`Endpoint::writable`]; what does not fit is
//!   reported as not sent.
//! - An endpoint that needs a timer (a reconnect) names it in [`Endpoint::next_timer`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Instant;

use mio::{Registry, Token};

use crate::net::batch::{RecvBatch, SendBatch, SendOutcome};
pub use crate::net::sys::Received;

/// The worker's receive batch, lent to one endpoint at a time. Buffers belong to workers, not
/// to links, so memory grows with what is in flight, not with the number of links.
pub struct Inbox {
    batch: RecvBatch,
}

impl Inbox {
    /// Room for `capacity` frames of up to `slot` bytes.
    pub fn new(capacity: usize, slot: usize) -> Inbox {
        Inbox {
            batch: RecvBatch::new(capacity, slot),
        }
    }

    /// Fills the empty inbox with the datagrams queued on `socket` (one `recvmmsg`, never
    /// waiting; nothing queued is `WouldBlock`), with their senders and kernel receive times.
    pub fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.batch.try_recv(socket)
    }

    /// Appends one frame read some other way (from a stream, a device), received at
    /// `received_ns`; false when the inbox is full (keep the frame for the next call).
    pub fn push(&mut self, frame: &[u8], received_ns: u64, source: Option<SocketAddr>) -> bool {
        self.batch.push(frame, received_ns, source)
    }

    /// True when no frame more fits.
    pub fn is_full(&self) -> bool {
        self.batch.is_full()
    }

    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.batch.clear();
    }

    /// The frames, in arrival order, with what the kernel said about each.
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], &Received)> {
        self.batch.iter()
    }
}

/// One side of a link. Runs on the worker that owns the link, so it needs no locking.
pub trait Endpoint: Send {
    /// Registers the descriptors whose readiness the endpoint needs, all under `token`.
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;
    /// Undoes [`Endpoint::register`]; the endpoint is dropped right after, which closes it.
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;
    /// Fills the empty `inbox` with received frames (see the module documentation). An error,
    /// `WouldBlock` among them, ends this round of reading.
    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()>;
    /// Whether a frame from `source` may enter the link (the peer check).
    fn accepts(&self, received: &Received) -> bool;
    /// Sends `frames` in order, using the worker's `batch` for datagrams.
    fn send(&mut self, batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome;
    /// A registered descriptor became writable: flush what is queued.
    fn writable(&mut self) {}
    /// When the endpoint next wants [`Endpoint::timer`] called.
    fn next_timer(&self) -> Option<Instant> {
        None
    }
    /// The time named by [`Endpoint::next_timer`] has come (re-register with `token` if a
    /// descriptor changed, e.g. after a reconnect).
    fn timer(&mut self, _now: Instant, _registry: &Registry, _token: Token) -> io::Result<()> {
        Ok(())
    }
}
