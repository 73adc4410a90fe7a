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

struct TestState {
    id: u32,
    stats: TestStats,
    fragments_at_start: Option<FragCounters>,
}

/// A bound sink or reflector.
pub struct Receiver {
    socket: UdpSocket,
    reflect: bool,
    family: Family,
    tests: VecDeque<TestState>,
    foreign: u64,
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
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let (len, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
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
                Err(source) => {
                    return Err(Error::Socket {
                        addr,
                        op: "receive",
                        source,
                    });
                }
            };
            let arrived = now_ns();
            self.handle(&mut buf[..len], from, arrived, addr)?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        bytes: &mut [u8],
        from: SocketAddr,
        arrived: u64,
        addr: SocketAddr,
    ) -> Result<()> {
        let Ok(mut frame) = Frame::new_checked(&mut *bytes) else {
            self.foreign += 1;
            return Ok(());
        };
        let kind = frame.kind();
        if kind == Kind::DATA {
            let (stream, seq, sent) = (frame.stream(), frame.sequence(), frame.sent_ns());
            let len = frame.bytes().len();
            let family = self.family;
            self.test(frame.test(), family)
                .stats
                .record(stream, seq, len, sent, arrived);
            if self.reflect {
                frame.set_kind(Kind::ECHO);
                frame.set_reflected_ns(arrived);
                frame.swap_macs();
                self.send(frame.bytes(), from, addr)?;
            }
        } else if kind == Kind::REPORT_REQUEST {
            let family = self.family;
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
            };
            let reply = frame::report(&frame, &report);
            self.send(&reply, from, addr)?;
        } else {
            self.foreign += 1;
        }
        Ok(())
    }

    fn send(&self, bytes: &[u8], to: SocketAddr, addr: SocketAddr) -> Result<()> {
        match self.socket.send_to(bytes, to) {
            Ok(_) => Ok(()),
            // The sender went away or its buffer is full: a lost reply, not our failure.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(())
            }
            Err(source) => Err(Error::Socket {
                addr,
                op: "send",
                source,
            }),
        }
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
                });
                self.tests.len() - 1
            }
        };
        &mut self.tests[at]
    }
}
