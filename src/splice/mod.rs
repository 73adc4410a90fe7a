//! The forwarding engine: steps into QEMU UDP tunnels and relays every frame unchanged.
//!
//! One thread per link direction receives a batch (`recvmmsg`), drops what must not pass
//! (zero-length datagrams, which QEMU takes as end of stream, and datagrams from anyone but
//! the expected peer), forwards the rest in order with one `sendmmsg`, and offers copies of
//! the batch's forwarded frames the [`CopyFilter`] takes to the [`copy`], as one [`CopyBatch`],
//! without ever waiting for it. Reads time out every
//! [`crate::net::tunnel::READ_TIMEOUT`] so a shutdown flag is seen within 100 ms. Stopping
//! joins the threads, which closes their sockets and hands the tunnels back to the VMs.
//!
//! In [`Mode::Steal`] the splice shares each VM's bound address and connects to the peer
//! (see [`crate::net::tunnel`]); in [`Mode::Relay`] the VMs were told to send to the
//! splice's own two ports.

pub mod copy;
pub mod demo;
pub mod meters;
pub mod recorder;
pub mod stats;
pub mod watch;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Sender, TrySendError};

pub use crate::direction::Direction;
use crate::net::batch::{MAX_DATAGRAM, RecvBatch, SendBatch};
use crate::net::{tunnel, udp_table};
use crate::{Error, Result};
pub use copy::{CopyBatch, CopyFilter, CopyRecord};
pub use stats::DirectionStats;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Batches forwarded at most from a receive queue when stopping.
const DRAIN_BATCHES: usize = 64;

/// How the splice gets into a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Share the VMs' bound addresses; no reconfiguration.
    Steal,
    /// Own two ports the VMs send to: A sends to `listen_a`, B to `listen_b`.
    Relay {
        listen_a: SocketAddr,
        listen_b: SocketAddr,
    },
}

/// Parses a relay splice's ports, `IP:PORT_A,PORT_B` (`field` names the argument in errors).
pub fn parse_listen(text: &str, field: &str) -> Result<(SocketAddr, SocketAddr)> {
    let bad = |message: &str| Error::Argument {
        field: field.into(),
        message: format!("{text:?}: {message}"),
    };
    let (first, port_b) = text
        .rsplit_once(',')
        .ok_or_else(|| bad("expected IP:PORT_A,PORT_B"))?;
    let a: SocketAddr = first
        .parse()
        .map_err(|_| bad("expected IP:PORT_A,PORT_B"))?;
    let port_b: u16 = port_b
        .trim()
        .parse()
        .map_err(|_| bad("PORT_B is not a port number"))?;
    if port_b == a.port() {
        return Err(bad("PORT_A and PORT_B must differ"));
    }
    Ok((a, SocketAddr::new(a.ip(), port_b)))
}

/// One link to splice: the addresses its two ends bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The link's name, e.g. `100:1-102:1` (or `ADDR-ADDR` without a mapping).
    pub name: String,
    /// End A's bound address.
    pub a: SocketAddr,
    /// End B's bound address.
    pub b: SocketAddr,
    pub mode: Mode,
}

/// What this host can see of one end before the splice starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndState {
    pub addr: SocketAddr,
    /// The address's IP belongs to this host, so what is sent to it can be stolen here.
    pub local: bool,
    /// Some socket (the VM's, normally) is bound to it right now.
    pub bound: bool,
}

/// What this host can see of a link before the splice starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    pub a: EndState,
    pub b: EndState,
}

impl Survey {
    /// Looks at both ends of `link` (in `/proc/net/udp{,6}` and the host's addresses).
    pub fn of(link: &LinkConfig) -> Result<Survey> {
        let end = |addr: SocketAddr| -> Result<EndState> {
            Ok(EndState {
                addr,
                local: tunnel::is_local(addr.ip()),
                bound: udp_table::is_bound(addr).map_err(|source| Error::Io {
                    path: "/proc/net/udp".into(),
                    source,
                })?,
            })
        };
        Ok(Survey {
            a: end(link.a)?,
            b: end(link.b)?,
        })
    }

    /// The directions a steal-mode splice on this host can carry: those arriving at a
    /// local address.
    pub fn stealable(&self) -> Vec<Direction> {
        let mut directions = Vec::new();
        if self.b.local {
            directions.push(Direction::AToB);
        }
        if self.a.local {
            directions.push(Direction::BToA);
        }
        directions
    }
}

/// What a splice forwards and how much of it the copy channel takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceConfig {
    pub links: Vec<LinkConfig>,
    /// Which forwarded frames are offered to the copy channel (when there is one).
    pub copy: CopyFilter,
}

/// Forwarding counters of one link, per direction (`None`: that direction is not spliced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    pub name: String,
    pub a_to_b: Option<DirectionStats>,
    pub b_to_a: Option<DirectionStats>,
}

impl LinkStats {
    /// The counters of one direction.
    pub fn direction(&self, direction: Direction) -> Option<&DirectionStats> {
        match direction {
            Direction::AToB => self.a_to_b.as_ref(),
            Direction::BToA => self.b_to_a.as_ref(),
        }
    }
}

/// One direction's sockets and addresses, ready to run.
struct Path {
    link: usize,
    direction: Direction,
    thread_name: String,
    receiver: UdpSocket,
    sender: UdpSocket,
    source: SocketAddr,
    /// Where to send; `None` when `sender` is connected there.
    destination: Option<SocketAddr>,
    stats: Arc<Mutex<DirectionStats>>,
}

/// A running splice. Dropping it stops it too.
pub struct Splice {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    names: Vec<String>,
    stats: Vec<(usize, Direction, Arc<Mutex<DirectionStats>>)>,
}

impl Splice {
    /// Opens every socket first (so a refused address stops us before anything runs), then
    /// starts one forwarding thread per direction. Copies of forwarded frames go to `tap`
    /// when given. `stop` ends the splice when set (by a signal handler, a consumer, …).
    pub fn start(
        config: &SpliceConfig,
        tap: Option<Sender<CopyBatch>>,
        stop: Arc<AtomicBool>,
    ) -> Result<Splice> {
        let mut paths = Vec::new();
        for (index, link) in config.links.iter().enumerate() {
            paths.extend(open(index, link)?);
        }
        let mut splice = Splice {
            stop,
            threads: Vec::new(),
            names: config.links.iter().map(|l| l.name.clone()).collect(),
            stats: paths
                .iter()
                .map(|p| (p.link, p.direction, p.stats.clone()))
                .collect(),
        };
        for path in paths {
            let stop = splice.stop.clone();
            let tap = tap.clone();
            let filter = config.copy;
            let thread = std::thread::Builder::new()
                .name(path.thread_name.clone())
                .spawn(move || run(path, tap, filter, &stop))
                .map_err(|source| Error::Io {
                    path: "thread".into(),
                    source,
                })?;
            splice.threads.push(thread);
        }
        Ok(splice)
    }

    /// The flag that stops the splice.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// Counters as of now, one entry per configured link.
    pub fn stats(&self) -> Vec<LinkStats> {
        let mut links: Vec<LinkStats> = self
            .names
            .iter()
            .map(|name| LinkStats {
                name: name.clone(),
                a_to_b: None,
                b_to_a: None,
            })
            .collect();
        for (link, direction, stats) in &self.stats {
            let snapshot = *stats.lock().unwrap_or_else(PoisonError::into_inner);
            match direction {
                Direction::AToB => links[*link].a_to_b = Some(snapshot),
                Direction::BToA => links[*link].b_to_a = Some(snapshot),
            }
        }
        links
    }

    /// Stops forwarding and joins the threads, which closes the splice's sockets (steal
    /// sockets hand the tunnel straight back) and drops their tap senders. Returns the final
    /// counters.
    pub fn stop(mut self) -> Vec<LinkStats> {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            // A forwarding thread has no panicking path; if one did, its counters up to
            // then are still in its shared snapshot.
            let _ = thread.join();
        }
    }
}

impl Drop for Splice {
    fn drop(&mut self) {
        self.halt();
    }
}

fn socket_error(field: &str, addr: SocketAddr, source: io::Error) -> Error {
    match source.kind() {
        io::ErrorKind::AddrInUse => Error::Argument {
            field: field.into(),
            message: format!(
                "{addr} is bound by a socket without SO_REUSEADDR, so it cannot be shared; \
                 splice this link in relay mode instead"
            ),
        },
        io::ErrorKind::AddrNotAvailable => Error::Argument {
            field: field.into(),
            message: format!("{addr} is not an address of this host"),
        },
        io::ErrorKind::InvalidInput => Error::Argument {
            field: field.into(),
            message: format!(
                "{addr} cannot exchange datagrams with its peer (a loopback address with a \
                 peer on another host?)"
            ),
        },
        _ => Error::Io {
            path: format!("udp socket {addr}").into(),
            source,
        },
    }
}

/// Opens the sockets of one link's directions.
fn open(index: usize, link: &LinkConfig) -> Result<Vec<Path>> {
    let path = |direction: Direction,
                receiver,
                sender,
                (source, destination): (SocketAddr, Option<SocketAddr>)| Path {
        link: index,
        direction,
        thread_name: format!("splice-{}-{}", link.name, direction.label()),
        receiver,
        sender,
        source,
        destination,
        stats: Arc::default(),
    };
    match link.mode {
        Mode::Steal => {
            let survey = Survey::of(link)?;
            let directions = survey.stealable();
            if directions.is_empty() {
                return Err(Error::Argument {
                    field: "link".into(),
                    message: format!(
                        "{}: neither {} nor {} is an address of this host; run the splice on \
                         a host of one of the ends, or in relay mode",
                        link.name, link.a, link.b
                    ),
                });
            }
            let mut paths = Vec::new();
            for direction in directions {
                let (from, to, field) = match direction {
                    Direction::AToB => (link.a, link.b, "b"),
                    Direction::BToA => (link.b, link.a, "a"),
                };
                let receiver = tunnel::steal(to, from).map_err(|e| socket_error(field, to, e))?;
                let sender = tunnel::forward(to).map_err(|e| socket_error(field, to, e))?;
                paths.push(path(direction, receiver, sender, (from, None)));
            }
            Ok(paths)
        }
        Mode::Relay { listen_a, listen_b } => {
            let socket_a =
                tunnel::relay(listen_a).map_err(|e| socket_error("listen", listen_a, e))?;
            let socket_b =
                tunnel::relay(listen_b).map_err(|e| socket_error("listen", listen_b, e))?;
            let clone =
                |s: &UdpSocket, addr| s.try_clone().map_err(|e| socket_error("listen", addr, e));
            let a_sender = clone(&socket_a, listen_a)?;
            let b_sender = clone(&socket_b, listen_b)?;
            Ok(vec![
                path(Direction::AToB, socket_a, b_sender, (link.a, Some(link.b))),
                path(Direction::BToA, socket_b, a_sender, (link.b, Some(link.a))),
            ])
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The forwarding loop of one direction.
fn run(path: Path, mut tap: Option<Sender<CopyBatch>>, filter: CopyFilter, stop: &AtomicBool) {
    let mut batch = RecvBatch::new(BATCH, MAX_DATAGRAM);
    let mut send = SendBatch::new(BATCH);
    let mut stats = DirectionStats::default();
    // The tap's consumed batches come back here to be filled again.
    let (back, spares) = crossbeam_channel::bounded(copy::SPARE_BATCHES);
    // Once stopping, forward what is already queued (a bounded number of batches, without
    // waiting), then return, which closes the socket: what arrives later goes straight to
    // the VM again.
    let mut drain_batches = DRAIN_BATCHES;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let received = if stopping {
            if drain_batches == 0 {
                break;
            }
            drain_batches -= 1;
            batch.try_recv(&path.receiver)
        } else {
            batch.recv(&path.receiver)
        };
        match received {
            Ok(_) => {}
            Err(_) if stopping => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => {
                stats.receive_error();
                publish(&path, &stats);
                // A persistent error (it should not happen on a bound UDP socket) must
                // not turn into a busy loop.
                std::thread::sleep(tunnel::READ_TIMEOUT);
                continue;
            }
        }
        let mut frames: Vec<(&[u8], u64)> = Vec::with_capacity(batch.len());
        for (data, meta) in batch.iter() {
            stats.kernel_counter(meta.kernel_drops);
            if meta.source != Some(path.source) {
                stats.drop_foreign();
            } else if meta.truncated {
                stats.drop_truncated();
            } else if data.is_empty() {
                stats.drop_zero_length();
            } else {
                stats.forwarded(data.len());
                frames.push((data, meta.timestamp_ns));
            }
        }
        if !frames.is_empty() {
            let slices: Vec<&[u8]> = frames.iter().map(|(d, _)| *d).collect();
            let outcome = send.send(&path.sender, path.destination, &slices);
            if outcome.failed > 0 {
                stats.unsent(outcome.failed as u64, outcome.failed_bytes);
            }
            if let Some(sender) = &tap {
                let taken = || frames.iter().filter(|(data, _)| filter.takes(data));
                let (count, bytes) = taken().fold((0, 0), |(n, b), (d, _)| (n + 1, b + d.len()));
                if count > 0 {
                    // One clock reading per batch: the return of the send, for the splice's
                    // own added delay.
                    let mut copies = CopyBatch::new(
                        (path.link, path.direction, now_ns()),
                        spares.try_recv().unwrap_or_default(),
                        (count, bytes),
                        Some(back.clone()),
                    );
                    for (data, timestamp_ns) in taken() {
                        copies.push(data, *timestamp_ns);
                    }
                    match sender.try_send(copies) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => stats.drop_tap(count as u64),
                        Err(TrySendError::Disconnected(_)) => tap = None,
                    }
                }
            }
        }
        publish(&path, &stats);
    }
}

fn publish(path: &Path, stats: &DirectionStats) {
    *path.stats.lock().unwrap_or_else(PoisonError::into_inner) = *stats;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_two_ports_on_one_ip() {
        let (a, b) = parse_listen("127.0.0.1:41001,41002", "l").unwrap();
        assert_eq!(a, "127.0.0.1:41001".parse().unwrap());
        assert_eq!(b, "127.0.0.1:41002".parse().unwrap());
        let (a, b) = parse_listen("[::1]:5,6", "l").unwrap();
        assert_eq!((a.port(), b.ip()), (5, "::1".parse().unwrap()));
        assert!(parse_listen("127.0.0.1:5", "l").is_err());
        assert!(parse_listen("127.0.0.1:5,5", "l").is_err());
        assert!(parse_listen("127.0.0.1:5,x", "l").is_err());
    }
}
