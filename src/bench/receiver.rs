//! The receiving end: a sink counts test frames, a reflector also returns each data frame
//! to its sender with the receive timestamp. Both answer report requests in-band with their
//! counts of the test asked about.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::bench::frame::{self, Frame, Kind, Report};
use crate::bench::open_socket;
use crate::bench::stats::TestStats;
use crate::clock::now_ns;
use crate::measure::snmp::{Family, FragCounters};
use crate::net::batch::{MAX_DATAGRAM, RecvBatch, SendBatch, enable_receive_metadata};
use crate::{Error, Result};

/// How a receiver is set up.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Return every data frame to its sender (reflector) or only count it (sink).
    pub reflect: bool,
    /// Accept frames only from this peer (port 0: any port of that address); others are
    /// refused and counted.
    pub peer: Option<SocketAddr>,
    /// Send echoes and reports here instead of to each frame's source, as a VM sends to its
    /// planned peer whoever forwarded the frame (a splice forwards from a port of its own).
    pub reply_to: Option<SocketAddr>,
}

/// Tests remembered at once; older ones are forgotten (a sender asks about the current one).
const TESTS_KEPT: usize = 16;

/// Streams all kept tests may hold together: with [`crate::bench::stats::WINDOW`] bits
/// each, 8 MiB of windows at most, whatever peers send. A new stream beyond it forgets the
/// oldest tests.
pub const MAX_STREAMS_KEPT: usize = 1024;

/// Datagrams per receive and send system call.
const BATCH: usize = 64;

struct TestState {
    id: u32,
    stats: TestStats,
    fragments_at_start: Option<FragCounters>,
    /// The socket's drop counter when the test began.
    drops_at_start: u32,
}

/// A bound sink or reflector.
pub struct Receiver {
    socket: UdpSocket,
    reflect: bool,
    family: Family,
    peer: Option<SocketAddr>,
    reply_to: Option<SocketAddr>,
    tests: VecDeque<TestState>,
    foreign: u64,
    accepted: u64,
    refused: u64,
    /// The socket's cumulative drop counter as of the latest datagram.
    drops: u32,
}

impl Receiver {
    /// Binds the listening socket.
    pub fn bind(config: &ReceiverConfig) -> Result<Receiver> {
        let socket = open_socket(config.listen)?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|source| Error::Socket {
                addr: config.listen,
                op: "set read timeout",
                source,
            })?;
        Ok(Receiver {
            socket,
            reflect: config.reflect,
            family: Family::of(&config.listen),
            peer: config.peer,
            reply_to: config.reply_to,
            tests: VecDeque::new(),
            foreign: 0,
            accepted: 0,
            refused: 0,
            drops: 0,
        })
    }

    /// The bound address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.local_addr().map_err(|source| Error::Socket {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            op: "read local address",
            source,
        })
    }

    /// Datagrams received that were not test frames.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Data frames counted in a test's figures.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Test frames refused: from a source other than the peer, of a stream beyond
    /// [`crate::bench::stats::MAX_STREAMS`] per test, or with a sequence number implausibly
    /// far ahead.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Datagrams the receiving socket dropped for lack of buffer space (as last reported
    /// by the kernel with a received datagram).
    pub fn dropped(&self) -> u64 {
        u64::from(self.drops)
    }

    /// Serves until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        let addr = self.local_addr()?;
        let socket_err = |op: &'static str| move |source| Error::Socket { addr, op, source };
        enable_receive_metadata(&self.socket).map_err(socket_err("enable receive timestamps"))?;
        let mut batch = RecvBatch::new(BATCH, MAX_DATAGRAM);
        let mut sender = SendBatch::new(BATCH);
        let mut echoes: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        let mut pending = 0;
        while !stop.load(Ordering::Relaxed) {
            match batch.recv(&self.socket) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(socket_err("receive")(e)),
            }
            for (bytes, meta) in batch.iter() {
                // Cumulative; the kernel only attaches it once it is non-zero.
                self.drops = self.drops.max(meta.kernel_drops);
                let Some(source) = meta.source else {
                    self.foreign += 1;
                    continue;
                };
                if !self.is_peer(source) {
                    if Frame::new_checked(bytes).is_ok() {
                        self.refused += 1;
                    } else {
                        self.foreign += 1;
                    }
                    continue;
                }
                let from = self.reply_to.unwrap_or(source);
                let arrived = if meta.timestamp_ns == 0 {
                    now_ns()
                } else {
                    meta.timestamp_ns
                };
                if let Some(echo) = self.handle(bytes, from, arrived)? {
                    if pending == echoes.len() {
                        echoes.push((Vec::new(), from));
                    }
                    let slot = &mut echoes[pending];
                    slot.0.clear();
                    slot.0.extend_from_slice(echo);
                    slot.1 = from;
                    let mut f = Frame::new_checked(&mut slot.0[..])
                        .expect("a copy of a checked frame is a frame");
                    f.set_kind(Kind::ECHO);
                    f.set_reflected_ns(arrived);
                    f.swap_macs();
                    pending += 1;
                }
            }
            // Echoes go back in runs of one destination (normally all of them).
            let mut at = 0;
            while at < pending {
                let to = echoes[at].1;
                let run = echoes[at..pending].iter().take_while(|e| e.1 == to).count();
                let frames: Vec<&[u8]> = echoes[at..at + run].iter().map(|e| &e.0[..]).collect();
                sender.send(&self.socket, Some(to), &frames);
                at += run;
            }
            pending = 0;
        }
        Ok(())
    }

    /// Accounts one datagram; returns the echo to send for a data frame on a reflector.
    fn handle<'a>(
        &mut self,
        bytes: &'a [u8],
        from: SocketAddr,
        arrived: u64,
    ) -> Result<Option<&'a [u8]>> {
        let Ok(frame) = Frame::new_checked(bytes) else {
            self.foreign += 1;
            return Ok(None);
        };
        let kind = frame.kind();
        if kind == Kind::DATA {
            let (stream, seq, sent) = (frame.stream(), frame.sequence(), frame.sent_ns());
            let family = self.family;
            let counted = self.test(frame.test(), family, Some(stream)).stats.record(
                stream,
                seq,
                bytes.len(),
                sent,
                arrived,
            );
            if !counted {
                self.refused += 1;
                return Ok(None);
            }
            self.accepted += 1;
            return Ok(self.reflect.then_some(bytes));
        }
        if kind == Kind::REPORT_REQUEST {
            let (family, drops) = (self.family, self.drops);
            let state = self.test(frame.test(), family, None);
            let totals = state.stats.totals();
            let fragments = match state.fragments_at_start {
                Some(start) => FragCounters::read(family).map(|now| now - start)?,
                None => FragCounters::default(),
            };
            let report = Report {
                sent: frame::request_sent(&frame),
                received: totals.received,
                out_of_order: totals.out_of_order,
                duplicates: totals.duplicates,
                bytes: totals.bytes,
                jitter_ns: totals.jitter_ns,
                first_ns: totals.first_ns,
                last_ns: totals.last_ns,
                fragments,
                receiver_drops: u64::from(drops.wrapping_sub(state.drops_at_start)),
            };
            let reply = frame::report(&frame, &report);
            // A lost reply is the sender's to retry.
            let _ = self.socket.send_to(&reply, from);
        } else {
            self.foreign += 1;
        }
        Ok(None)
    }

    /// True when `source` may send us test frames: anyone without a peer, else the peer's
    /// address (and port, unless it is 0).
    fn is_peer(&self, source: SocketAddr) -> bool {
        self.peer.is_none_or(|peer| {
            peer.ip() == source.ip() && (peer.port() == 0 || peer.port() == source.port())
        })
    }

    /// The state of test `id`, created (with a snapshot of the fragmentation counters) on
    /// first sight. When a frame of a stream the test does not have yet is about to be
    /// counted (`new_stream`) and the kept tests already hold [`MAX_STREAMS_KEPT`] streams,
    /// the oldest other tests are forgotten.
    fn test(&mut self, id: u32, family: Family, new_stream: Option<u16>) -> &mut TestState {
        let mut at = match self.tests.iter().position(|t| t.id == id) {
            Some(at) => at,
            None => {
                if self.tests.len() == TESTS_KEPT {
                    self.tests.pop_front();
                }
                self.tests.push_back(TestState {
                    id,
                    stats: TestStats::default(),
                    fragments_at_start: FragCounters::read(family).ok(),
                    drops_at_start: self.drops,
                });
                self.tests.len() - 1
            }
        };
        if new_stream.is_some_and(|stream| !self.tests[at].stats.has_stream(stream)) {
            while at > 0
                && self.tests.iter().map(|t| t.stats.streams()).sum::<usize>() >= MAX_STREAMS_KEPT
            {
                self.tests.pop_front();
                at -= 1;
            }
        }
        &mut self.tests[at]
    }
}
