//! The receiving end: a sink counts test frames, a reflector also returns each data frame
//! to its sender with the receive timestamp. Both answer report requests in-band with their
//! counts of the test asked about.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::bench::frame::{self, Frame, Kind, Report};
use crate::bench::stats::TestStats;
use crate::bench::{now_ns, open_socket};
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
}

/// Tests remembered at once; older ones are forgotten (a sender asks about the current one).
const TESTS_KEPT: usize = 16;

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
    tests: VecDeque<TestState>,
    foreign: u64,
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
            tests: VecDeque::new(),
            foreign: 0,
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
                let Some(from) = meta.source else {
                    self.foreign += 1;
                    continue;
                };
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
            self.test(frame.test(), family)
                .stats
                .record(stream, seq, bytes.len(), sent, arrived);
            return Ok(self.reflect.then_some(bytes));
        }
        if kind == Kind::REPORT_REQUEST {
            let (family, drops) = (self.family, self.drops);
            let state = self.test(frame.test(), family);
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

    /// The state of test `id`, created (with a snapshot of the fragmentation counters) on
    /// first sight.
    fn test(&mut self, id: u32, family: Family) -> &mut TestState {
        let at = match self.tests.iter().position(|t| t.id == id) {
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
        &mut self.tests[at]
    }
}
