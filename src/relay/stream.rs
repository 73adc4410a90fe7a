//! Stream endpoints in QEMU's framing: `tcp://`, `tcp-listen://`, `unix://`, `unix-listen://`.
//!
//! - A *connecting* end (`tcp://`, `unix://`) connects without blocking and, whenever the
//!   connection fails or ends, tries again after a [`Backoff`] (100 ms doubling to 2 s) for as
//!   long as the relay runs: QEMU 7.2's `-netdev stream,server=on` and `socket,listen=` come
//!   back after a VM restart, and the relay finds them. An attempt nobody answers within
//!   [`CONNECT_TIMEOUT`] counts as failed (a host that is down drops the SYNs).
//! - A *listening* end (`tcp-listen://`, `unix-listen://`) accepts QEMU's
//!   `socket,connect=` / `stream,server=off`; a new connection replaces the old one, so a
//!   restarted VM is the peer again at once.
//!
//! While no peer is connected, frames for this end are dropped and counted (`dropped_down`).
//! Frames to the peer wait in the end's own bounded [`Encoder`] queue, written many per
//! `write`; what does not fit is dropped and counted (`dropped_queue`), so a slow or stalled
//! peer never holds up the other endpoints. A peer that breaks the framing (a length of 0 or
//! above 65,535) is disconnected and counted (`framing_errors`); the relay carries on.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::backoff::Backoff;
use super::framing::{Decoder, Encoder, Fill};
use super::locator::Allowed;
use crate::clock::now_ns;
use crate::engine::endpoint::Received;
use crate::engine::{Endpoint, Inbox};
use crate::net::batch::{SendBatch, SendOutcome};

/// Bytes an endpoint queues for its peer before it drops frames: about 15,000 small frames
/// or 700 full-size ones, on top of the kernel's socket buffer.
pub const QUEUE_BYTES: usize = 1 << 20;

/// How long a connection attempt may take before it counts as failed and the next one is
/// scheduled.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a connecting end connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The addresses a `tcp://HOST:PORT` resolved to, tried in turn.
    Tcp(Vec<SocketAddr>),
    /// A Unix stream socket's path.
    Unix(PathBuf),
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// The listener and the addresses it takes a peer from.
    Tcp(TcpListener, Allowed),
    /// The listener and the socket file it created (removed when the endpoint goes).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Listens on `addr` for a peer from `from`; an address in use is named in the error.
    pub fn tcp(addr: SocketAddr, from: Allowed) -> io::Result<Listener> {
        TcpListener::bind(addr).map(|l| Listener::Tcp(l, from))
    }

    /// Listens on `path`. A socket file left behind by a listener that is gone (nobody
    /// accepts on it) is replaced; a live one is `AddrInUse`.
    pub fn unix(path: &Path) -> io::Result<Listener> {
        match UnixListener::bind(path) {
            Ok(l) => Ok(Listener::Unix(l, path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let stale = std::fs::metadata(path)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                    && std::os::unix::net::UnixStream::connect(path)
                        .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
                if !stale {
                    return Err(e);
                }
                std::fs::remove_file(path)?;
                UnixListener::bind(path).map(|l| Listener::Unix(l, path.to_owned()))
            }
            Err(e) => Err(e),
        }
    }

    /// The next pending connection; `Ok(None)` for one from an address the listener does
    /// not take a peer from, which is closed at once.
    fn accept(&self) -> io::Result<Option<Connection>> {
        match self {
            Listener::Tcp(l, from) => {
                let (stream, peer) = l.accept()?;
                if !from.allows(peer.ip()) {
                    return Ok(None);
                }
                // Frames are written many per write already; a lone frame must not wait.
                stream.set_nodelay(true)?;
                Ok(Some(Connection::Tcp(stream)))
            }
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Some(Connection::Unix(s))),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Listener::Tcp(l, _) => l,
            Listener::Unix(l, _) => l,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Debug)]
enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connection {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Connection::Tcp(s) => s,
            Connection::Unix(s) => s,
        }
    }

    /// For a connection in progress: `Ok(true)` once connected, `Ok(false)` while still in
    /// progress, the error if it failed.
    fn established(&self) -> io::Result<bool> {
        let (error, peer) = match self {
            Connection::Tcp(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Connection::Unix(s) => (s.take_error()?, s.peer_addr().map(drop)),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.read(buf),
            Connection::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.write(buf),
            Connection::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counters of one stream endpoint, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct StreamStats {
    connections: AtomicU64,
    /// Connections from an address the listener does not take a peer from.
    refused: AtomicU64,
    connect_failures: AtomicU64,
    replaced: AtomicU64,
    peer_closed: AtomicU64,
    io_errors: AtomicU64,
    framing_errors: AtomicU64,
    dropped_down: AtomicU64,
    dropped_queue: AtomicU64,
    up: AtomicU64,
}

impl StreamStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters by name, as the relay's report prints them.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("up", get(&self.up)),
            ("connections", get(&self.connections)),
            ("refused", get(&self.refused)),
            ("connect_failures", get(&self.connect_failures)),
            ("replaced", get(&self.replaced)),
            ("peer_closed", get(&self.peer_closed)),
            ("io_errors", get(&self.io_errors)),
            ("framing_errors", get(&self.framing_errors)),
            ("dropped_down", get(&self.dropped_down)),
            ("dropped_queue", get(&self.dropped_queue)),
        ]
    }
}

#[derive(Debug)]
enum Role {
    Connect {
        target: Target,
        backoff: Backoff,
        /// When to try again while there is no connection.
        retry_at: Option<Instant>,
        /// Which of the target's addresses comes next.
        next: usize,
    },
    Listen(Listener),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    Connecting,
    Up,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    PeerClosed,
    Error,
    Framing,
    Replaced,
    ConnectFailed,
}

/// One stream endpoint; see the [module documentation](self).
#[derive(Debug)]
pub struct StreamEnd {
    role: Role,
    connection: Option<Connection>,
    state: State,
    decoder: Decoder,
    encoder: Encoder,
    /// The worker's registry and this endpoint's token, kept from [`Endpoint::register`]
    /// to register the connections that come and go.
    registry: Option<(Registry, Token)>,
    stats: Arc<StreamStats>,
}

impl StreamEnd {
    /// An end that connects to `target`, now and after every loss of the connection.
    pub fn connecting(target: Target) -> StreamEnd {
        StreamEnd::new(Role::Connect {
            target,
            backoff: Backoff::default(),
            retry_at: None,
            next: 0,
        })
    }

    /// An end that accepts its peer on `listener`.
    pub fn listening(listener: Listener) -> StreamEnd {
        StreamEnd::new(Role::Listen(listener))
    }

    fn new(role: Role) -> StreamEnd {
        StreamEnd {
            role,
            connection: None,
            state: State::Down,
            decoder: Decoder::new(),
            encoder: Encoder::new(QUEUE_BYTES),
            registry: None,
            stats: Arc::default(),
        }
    }

    /// The endpoint's counters, readable while it runs.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }

    fn adopt(&mut self, mut connection: Connection, state: State) -> io::Result<()> {
        if let Some((registry, token)) = &self.registry {
            registry.register(
                connection.source(),
                *token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        self.connection = Some(connection);
        self.state = state;
        if state == State::Up {
            self.established();
        }
        Ok(())
    }

    fn established(&mut self) {
        StreamStats::add(&self.stats.connections, 1);
        self.stats.up.store(1, Ordering::Relaxed);
        if let Role::Connect { backoff, .. } = &mut self.role {
            backoff.connected();
        }
        if let Some(Connection::Tcp(s)) = &self.connection {
            // Frames are written many per write already; a lone frame must not wait.
            let _ = s.set_nodelay(true);
        }
    }

    /// Closes the connection, forgets its partial input and its queue (counted as dropped
    /// for a side that is down) and, for a connecting end, schedules the next attempt.
    fn close(&mut self, why: Ended) {
        if let Some(mut connection) = self.connection.take()
            && let Some((registry, _)) = &self.registry
        {
            let _ = registry.deregister(connection.source());
        }
        let counter = match why {
            Ended::PeerClosed => &self.stats.peer_closed,
            Ended::Error => &self.stats.io_errors,
            Ended::Framing => &self.stats.framing_errors,
            Ended::Replaced => &self.stats.replaced,
            Ended::ConnectFailed => &self.stats.connect_failures,
        };
        StreamStats::add(counter, 1);
        self.stats.up.store(0, Ordering::Relaxed);
        self.state = State::Down;
        self.decoder.reset();
        let lost = self.encoder.clear();
        StreamStats::add(&self.stats.dropped_down, lost as u64);
        self.retry_later();
    }

    /// Starts a connection attempt (connecting ends only).
    fn connect(&mut self) {
        let attempt = {
            let Role::Connect {
                target,
                retry_at,
                next,
                ..
            } = &mut self.role
            else {
                return;
            };
            *retry_at = None;
            match target {
                Target::Tcp(addrs) if !addrs.is_empty() => {
                    let addr = addrs[*next % addrs.len()];
                    *next += 1;
                    TcpStream::connect(addr).map(Connection::Tcp)
                }
                Target::Tcp(_) => Err(io::ErrorKind::AddrNotAvailable.into()),
                Target::Unix(path) => UnixStream::connect(path).map(Connection::Unix),
            }
        };
        if attempt
            .and_then(|c| self.adopt(c, State::Connecting))
            .is_err()
        {
            StreamStats::add(&self.stats.connect_failures, 1);
            self.retry_later();
        } else if let Role::Connect { retry_at, .. } = &mut self.role
            && self.state == State::Connecting
        {
            // Give up on an attempt nobody answers (a host that is down drops the SYNs).
            *retry_at = Some(Instant::now() + CONNECT_TIMEOUT);
        }
    }

    fn retry_later(&mut self) {
        if let Role::Connect {
            backoff, retry_at, ..
        } = &mut self.role
        {
            *retry_at = Some(Instant::now() + backoff.failed());
        }
    }

    /// A connection in progress: finished yet?
    fn check_connecting(&mut self) {
        if self.state != State::Connecting {
            return;
        }
        match self.connection.as_ref().map(Connection::established) {
            Some(Ok(true)) => {
                self.state = State::Up;
                self.established();
            }
            Some(Ok(false)) => {}
            Some(Err(_)) | None => self.close(Ended::ConnectFailed),
        }
    }

    /// Takes every pending connection; the newest replaces the one before.
    fn accept(&mut self) {
        loop {
            let Role::Listen(listener) = &self.role else {
                return;
            };
            match listener.accept() {
                Ok(None) => StreamStats::add(&self.stats.refused, 1),
                Ok(Some(connection)) => {
                    if self.connection.is_some() {
                        self.close(Ended::Replaced);
                    }
                    if self.adopt(connection, State::Up).is_err() {
                        self.close(Ended::Error);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: none left. Anything else (out of descriptors, a connection
                // reset before accept) leaves the current peer as it is.
                Err(_) => return,
            }
        }
    }

    fn flush(&mut self) {
        if self.state != State::Up {
            return;
        }
        let Some(connection) = &mut self.connection else {
            return;
        };
        if self.encoder.flush(connection).is_err() {
            self.close(Ended::Error);
        }
    }
}

impl Endpoint for StreamEnd {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.registry = Some((registry.try_clone()?, token));
        match &mut self.role {
            Role::Listen(listener) => {
                registry.register(listener.source(), token, Interest::READABLE)?;
            }
            Role::Connect { .. } => self.connect(),
        }
        Ok(())
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        if let Some(connection) = &mut self.connection {
            registry.deregister(connection.source())?;
        }
        if let Role::Listen(listener) = &mut self.role {
            registry.deregister(listener.source())?;
        }
        self.registry = None;
        Ok(())
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        self.accept();
        self.check_connecting();
        loop {
            loop {
                match self.decoder.peek() {
                    Ok(Some(frame)) => {
                        if !inbox.push(frame, now_ns(), None) {
                            return Ok(());
                        }
                        self.decoder.advance();
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.close(Ended::Framing);
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                }
            }
            let Some(connection) = self.connection.as_mut().filter(|_| self.state == State::Up)
            else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            match self.decoder.fill(connection) {
                Ok(Fill::Read(_) | Fill::Full) => {}
                Ok(Fill::Closed) => {
                    self.close(Ended::PeerClosed);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => {
                    self.close(Ended::Error);
                    return Err(e);
                }
            }
        }
    }

    fn accepts(&self, _received: &Received) -> bool {
        // The peer is whoever holds the connection: a connected socket has only one.
        true
    }

    fn send(&mut self, _batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        if self.state != State::Up {
            StreamStats::add(&self.stats.dropped_down, frames.len() as u64);
            return SendOutcome::all_failed(frames, io::ErrorKind::NotConnected);
        }
        let mut outcome = SendOutcome::default();
        for frame in frames {
            let result = if self.encoder.push(frame) {
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock)
            };
            outcome.count(frame, result);
        }
        StreamStats::add(&self.stats.dropped_queue, outcome.failed as u64);
        self.flush();
        outcome
    }

    fn writable(&mut self) {
        self.check_connecting();
        self.flush();
    }

    fn next_timer(&self) -> Option<Instant> {
        match &self.role {
            Role::Connect { retry_at, .. } if self.state != State::Up => *retry_at,
            _ => None,
        }
    }

    fn timer(&mut self, now: Instant, _registry: &Registry, _token: Token) -> io::Result<()> {
        if let Role::Connect {
            retry_at: Some(due),
            ..
        } = &self.role
            && *due <= now
        {
            match self.state {
                State::Down => self.connect(),
                State::Connecting => self.close(Ended::ConnectFailed),
                State::Up => {}
            }
        }
        Ok(())
    }
}
