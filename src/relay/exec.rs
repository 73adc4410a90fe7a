//! `exec://COMMAND` and `stdio`: frames in QEMU's stream framing ([`super::framing`]) on a
//! child's standard input and output, or on our own.
//!
//! `exec://ssh HOST linkscope relay stdio udp://…` carries a link to another host through
//! ssh, with no port opened: the local relay writes frames to the child's stdin and reads the
//! frames the remote relay writes to its stdout. The child runs as `sh -c COMMAND` in a
//! process group of its own (its standard error stays ours, so ssh can say what went wrong);
//! on stop the whole group is killed and the child reaped, and its exit is reported through
//! [`ExitWatch`]. A child whose stdout ends, or that breaks the framing (a length of 0 or above
//! 65,535), carries no more frames; what is sent to it then is dropped and counted.
//!
//! Reads and writes never wait: frames to the pipe queue in a bounded [`Encoder`] (what does
//! not fit is dropped and counted) and flush when the pipe becomes writable.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::endpoint::Counters;
use super::framing::{Decoder, Encoder, Fill, FramingError};
use crate::clock::now_ns;
use crate::engine::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{SendBatch, SendOutcome};
use crate::net::sys;

/// How often a child whose pipes closed is checked for its exit.
const REAP_EVERY: Duration = Duration::from_millis(50);

/// Bytes queued towards a pipe at most: room for many frames in one write, bounded.
pub const QUEUE_BYTES: usize = 1 << 20;

/// Frames both ways over a pair of pipes (or a terminal, a socket: any two descriptors).
#[derive(Debug)]
struct Pipes {
    reader: File,
    writer: File,
    decoder: Decoder,
    encoder: Encoder,
    /// The reading side ended or broke the framing: nothing more is read or written.
    closed: bool,
    stats: Arc<PipeStats>,
}

impl Pipes {
    fn new(reader: OwnedFd, writer: OwnedFd) -> io::Result<Pipes> {
        sys::set_nonblocking(reader.as_fd(), true)?;
        sys::set_nonblocking(writer.as_fd(), true)?;
        Ok(Pipes {
            reader: File::from(reader),
            writer: File::from(writer),
            decoder: Decoder::new(),
            encoder: Encoder::new(QUEUE_BYTES),
            closed: false,
            stats: Arc::default(),
        })
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.reader.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        registry.register(
            &mut SourceFd(&self.writer.as_raw_fd()),
            token,
            Interest::WRITABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.reader.as_raw_fd()))?;
        registry.deregister(&mut SourceFd(&self.writer.as_raw_fd()))
    }

    /// Moves whole buffered frames into `inbox`; false when the framing broke.
    fn take_frames(&mut self, inbox: &mut Inbox) -> bool {
        while !inbox.is_full() {
            match self.decoder.peek() {
                Ok(Some(frame)) => {
                    inbox.push(frame, now_ns(), None);
                    self.decoder.advance();
                }
                Ok(None) => return true,
                Err(FramingError::ZeroLength | FramingError::TooLong(_)) => return false,
            }
        }
        true
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        loop {
            if self.closed {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if !self.take_frames(inbox) {
                self.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                self.close();
                continue;
            }
            if inbox.is_full() {
                return Ok(());
            }
            match self.decoder.fill(&mut self.reader)? {
                Fill::Read(_) | Fill::Full => {}
                Fill::Closed => self.close(),
            }
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.decoder.reset();
        self.encoder.clear();
    }

    fn send(&mut self, frames: &[&[u8]]) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        for frame in frames {
            let result = if self.closed {
                Err(io::ErrorKind::BrokenPipe)
            } else if self.encoder.push(frame) {
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock)
            };
            outcome.count(frame, result);
        }
        self.flush();
        outcome
    }

    fn flush(&mut self) {
        if !self.closed && self.encoder.flush(&mut self.writer).is_err() {
            // The reader of our frames is gone (EPIPE): so is the link through it.
            self.close();
        }
    }
}

/// The counters of a pipe endpoint and, for a child, how it ended; shared with whoever
/// reports them.
#[derive(Debug, Default)]
pub struct PipeStats {
    framing_errors: AtomicU64,
    exit: Mutex<Option<ExitStatus>>,
}

impl PipeStats {
    /// The child's exit status, once it was reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_exit(&self, status: ExitStatus) {
        *self.exit.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
    }
}

impl Counters for PipeStats {
    /// `framing_errors`: the peer broke the framing (and was cut off); once a child was
    /// reaped, `exit_code` (it exited) or `exit_signal` (a signal ended it).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = vec![(
            "framing_errors",
            self.framing_errors.load(Ordering::Relaxed),
        )];
        if let Some(status) = self.exit_status() {
            match (status.code(), status.signal()) {
                (Some(code), _) => counters.push(("exit_code", code as u64)),
                (None, Some(signal)) => counters.push(("exit_signal", signal as u64)),
                (None, None) => {}
            }
        }
        counters
    }
}

/// `exec://COMMAND`: a child process, as a relay endpoint.
#[derive(Debug)]
pub struct Exec {
    pipes: Pipes,
    child: Child,
}

impl Exec {
    /// Starts `sh -c COMMAND` with its stdin and stdout as the frame pipes.
    pub fn spawn(command: &str) -> crate::Result<Exec> {
        let fail = |source| crate::Error::Io {
            path: format!("exec://{command}").into(),
            source,
        };
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(fail)?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let pipes = Pipes::new(OwnedFd::from(stdout), OwnedFd::from(stdin)).map_err(fail)?;
        Ok(Exec { pipes, child })
    }

    /// The child's process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The endpoint's counters; the child's exit status appears there once it was reaped
    /// (at the latest on stop).
    pub fn stats(&self) -> Arc<PipeStats> {
        self.pipes.stats.clone()
    }

    /// Records the child's exit status if it has exited.
    fn reap(&mut self) {
        if self.pipes.stats.exit_status().is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.pipes.stats.set_exit(status);
        }
    }
}

impl Drop for Exec {
    /// Kills the child's process group and reaps the child.
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.pipes.stats.set_exit(status);
            return;
        }
        // The group may be gone already (the child exited between the two calls); the wait
        // below reaps it either way.
        let _ = sys::kill_process_group(self.child.id());
        if let Ok(status) = self.child.wait() {
            self.pipes.stats.set_exit(status);
        }
    }
}

impl Endpoint for Exec {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.pipes.register(registry, token)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.pipes.deregister(registry)
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        let result = self.pipes.receive(inbox);
        if self.pipes.closed {
            self.reap();
        }
        result
    }

    /// Once the pipes are closed, the child is looked for every [`REAP_EVERY`] until it
    /// has exited (its stdout closes a moment before it does).
    fn next_timer(&self) -> Option<Instant> {
        (self.pipes.closed && self.pipes.stats.exit_status().is_none())
            .then(|| Instant::now() + REAP_EVERY)
    }

    fn timer(&mut self, _now: Instant, _registry: &Registry, _token: Token) -> io::Result<()> {
        self.reap();
        Ok(())
    }

    /// Whatever comes out of the child's stdout is the peer's.
    fn accepts(&self, _received: &Received) -> bool {
        true
    }

    fn send(&mut self, _batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        self.pipes.send(frames)
    }

    fn writable(&mut self) {
        self.pipes.flush();
    }
}

/// `stdio`: our own stdin and stdout, as a relay endpoint (the far end of `exec://`). Nothing
/// else may write to stdout meanwhile: it carries frames. When stdin ends or breaks the
/// framing (the far side is gone: ssh closed), the process is sent SIGTERM, so the relay
/// stops as if asked to instead of holding its other endpoints forever.
#[derive(Debug)]
pub struct Stdio {
    pipes: Pipes,
    stopping: bool,
}

impl Stdio {
    /// Takes over stdin and stdout (duplicates of them, made non-blocking until dropped).
    pub fn open() -> crate::Result<Stdio> {
        let fail = |source| crate::Error::Io {
            path: "stdio".into(),
            source,
        };
        let reader = io::stdin().as_fd().try_clone_to_owned().map_err(fail)?;
        let writer = io::stdout().as_fd().try_clone_to_owned().map_err(fail)?;
        Ok(Stdio {
            pipes: Pipes::new(reader, writer).map_err(fail)?,
            stopping: false,
        })
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> Arc<PipeStats> {
        self.pipes.stats.clone()
    }
}

impl Drop for Stdio {
    /// Gives stdin and stdout back blocking, as whoever started us expects them.
    fn drop(&mut self) {
        let _ = sys::set_nonblocking(self.pipes.reader.as_fd(), false);
        let _ = sys::set_nonblocking(self.pipes.writer.as_fd(), false);
    }
}

impl Endpoint for Stdio {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.pipes.register(registry, token)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.pipes.deregister(registry)
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        let result = self.pipes.receive(inbox);
        if self.pipes.closed && !self.stopping {
            self.stopping = true;
            sys::terminate_self()?;
        }
        result
    }

    /// Whatever comes on stdin is the peer's.
    fn accepts(&self, _received: &Received) -> bool {
        true
    }

    fn send(&mut self, _batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        self.pipes.send(frames)
    }

    fn writable(&mut self) {
        self.pipes.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::udp::TunnelEnd;
    use crate::engine::{Engine, EngineConfig, Link};
    use crate::splice::copy::CopyFilter;
    use std::net::UdpSocket;

    fn engine() -> Engine {
        Engine::start(EngineConfig {
            workers: 1,
            copy: None,
            filter: CopyFilter::All,
            name: "exec-test".into(),
        })
        .unwrap()
    }

    /// A VM stand-in and the relay's UDP end that exchanges frames with it.
    fn udp_pair() -> (UdpSocket, TunnelEnd) {
        let vm = UdpSocket::bind("127.0.0.1:0").unwrap();
        vm.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        vm.connect(relay.local_addr().unwrap()).unwrap();
        let end = TunnelEnd::relayed(vm.local_addr().unwrap(), relay).unwrap();
        (vm, end)
    }

    fn wait_for(mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn frames_cross_a_child_and_come_back_whole_and_in_order() {
        let (vm, udp) = udp_pair();
        // `cat` hands back every byte: each frame returns, framed, as it went.
        let exec = Exec::spawn("cat").unwrap();
        let exit = exec.stats();
        let mut engine = engine();
        engine
            .add_link(Link::pair(
                "t".into(),
                Box::new(udp),
                Box::new(exec),
                (true, true),
            ))
            .unwrap();
        let frames: Vec<Vec<u8>> = (0..200u16)
            .map(|i| vec![(i % 251) as u8; 60 + usize::from(i) * 40])
            .collect();
        let mut buf = vec![0; 65_536];
        for frame in &frames {
            vm.send(frame).unwrap();
            let n = vm.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &frame[..]);
        }
        let stats = engine.stop();
        assert_eq!(stats[0].a_to_b.unwrap().frames(), 200);
        assert_eq!(stats[0].b_to_a.unwrap().frames(), 200);
        let status = exit.exit_status().expect("reaped on stop");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }

    #[test]
    fn a_child_that_breaks_the_framing_is_cut_off_and_its_group_killed() {
        let (vm, udp) = udp_pair();
        let exec = Exec::spawn("printf '\\000\\000\\000\\000'; exec sleep 600").unwrap();
        let group = exec.pid();
        let exit = exec.stats();
        let mut engine = engine();
        engine
            .add_link(Link::pair(
                "t".into(),
                Box::new(udp),
                Box::new(exec),
                (true, true),
            ))
            .unwrap();
        wait_for(|| exit.counters()[0] == ("framing_errors", 1));
        vm.send(&[1; 60]).unwrap();
        let stats = engine.stop();
        assert_eq!(stats[0].b_to_a.unwrap().frames(), 0);
        let status = exit.exit_status().expect("reaped on stop");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        // Nothing of the group is left.
        let err = sys::kill_process_group(group).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn a_child_that_exits_reports_its_status() {
        let (_vm, udp) = udp_pair();
        let exec = Exec::spawn("exit 3").unwrap();
        let exit = exec.stats();
        let mut engine = engine();
        engine
            .add_link(Link::pair(
                "t".into(),
                Box::new(udp),
                Box::new(exec),
                (true, true),
            ))
            .unwrap();
        wait_for(|| exit.exit_status().is_some());
        assert_eq!(exit.exit_status().unwrap().code(), Some(3));
        engine.stop();
    }
}
