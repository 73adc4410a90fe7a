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
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::counter::{Counter, Counters};
use super::framing::{Decoder, Encoder, Fill, FramingError};
use crate::engine::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{SendBatch, SendOutcome};
use crate::net::sys;

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
    framing_errors: Counter,
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
            framing_errors: Counter::default(),
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
                self.framing_errors.add(1);
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
        let mut outcome = SendOutcome {
            sent: 0,
            failed: 0,
            failed_bytes: 0,
            last_error: None,
        };
        for frame in frames {
            if !self.closed && self.encoder.push(frame) {
                outcome.sent += 1;
            } else {
                outcome.failed += 1;
                outcome.failed_bytes += frame.len() as u64;
                outcome.last_error = Some(if self.closed {
                    io::ErrorKind::BrokenPipe
                } else {
                    io::ErrorKind::WouldBlock
                });
            }
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

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How a child ended, once it has; shared with whoever reports it.
#[derive(Debug, Clone, Default)]
pub struct ExitWatch(Arc<Mutex<Option<ExitStatus>>>);

impl ExitWatch {
    /// The child's exit status, once it was reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, status: ExitStatus) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
    }
}

/// `exec://COMMAND`: a child process, as a relay endpoint.
#[derive(Debug)]
pub struct Exec {
    pipes: Pipes,
    child: Child,
    exit: ExitWatch,
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
        Ok(Exec {
            pipes,
            child,
            exit: ExitWatch::default(),
        })
    }

    /// The child's process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the child's exit status appears once it was reaped (at the latest on stop).
    pub fn exit_watch(&self) -> ExitWatch {
        self.exit.clone()
    }

    /// `stream_framing_errors`: the child broke the framing (and was cut off).
    pub fn counters(&self) -> Counters {
        vec![("stream_framing_errors", self.pipes.framing_errors.clone())]
    }
}

impl Drop for Exec {
    /// Kills the child's process group and reaps the child.
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exit.set(status);
            return;
        }
        // The group may be gone already (the child exited between the two calls); the wait
        // below reaps it either way.
        let _ = sys::kill_process_group(self.child.id());
        if let Ok(status) = self.child.wait() {
            self.exit.set(status);
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
        if self.pipes.closed
            && self.exit.status().is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit.set(status);
        }
        result
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
/// else may write to stdout meanwhile: it carries frames.
#[derive(Debug)]
pub struct Stdio {
    pipes: Pipes,
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
        })
    }

    /// `stream_framing_errors`: what came on stdin broke the framing (and was cut off).
    pub fn counters(&self) -> Counters {
        vec![("stream_framing_errors", self.pipes.framing_errors.clone())]
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
        self.pipes.receive(inbox)
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
