//! A QEMU UDP tunnel end as an [`Endpoint`]: receives what one VM sends and sends to it.
//!
//! - Steal mode: the receiving socket shares the other VM's bound address and is connected to
//!   this VM (see [`crate::net::tunnel::steal`]); frames to this VM leave from a forward socket
//!   connected to it. Either half may be missing when only one direction can be stolen here.
//! - Relay mode: one socket owns the port this VM was told to send to; it receives from the VM
//!   and sends to it, so a peer that checks the source (ubridge) sees the port it expects.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{MAX_SEGMENTED, SendBatch, SendOutcome};

/// One VM's side of a tunnel.
#[derive(Debug)]
pub struct TunnelEnd {
    /// The VM's address: the only source accepted, and where frames go.
    peer: SocketAddr,
    /// Receives what the VM sends (non-blocking, registered for readiness).
    receiver: Option<UdpSocket>,
    out: Out,
    /// The largest datagram sent in runs the kernel segments
    /// ([`SendBatch::send_offloaded`]); lowered when the path refuses a size.
    segment_limit: usize,
}

#[derive(Debug)]
enum Out {
    /// Nothing goes to this VM from here.
    None,
    /// A socket connected to the VM (steal mode). It blocks while the kernel's send buffer is
    /// full, as a VM's own socket would, instead of dropping.
    Connected(UdpSocket),
    /// Sent from the receiving socket to the VM's address (relay mode).
    FromReceiver,
}

impl TunnelEnd {
    /// A steal-mode end: `receiver` (a steal socket connected to `peer`) and `forward` (a
    /// socket connected to `peer`), either of which may be missing.
    pub fn stolen(
        peer: SocketAddr,
        receiver: Option<UdpSocket>,
        forward: Option<UdpSocket>,
    ) -> io::Result<TunnelEnd> {
        if let Some(socket) = &receiver {
            socket.set_nonblocking(true)?;
        }
        Ok(TunnelEnd {
            peer,
            receiver,
            out: forward.map_or(Out::None, Out::Connected),
            segment_limit: MAX_SEGMENTED,
        })
    }

    /// A relay-mode end: `socket` owns the port `peer` sends to.
    pub fn relayed(peer: SocketAddr, socket: UdpSocket) -> io::Result<TunnelEnd> {
        socket.set_nonblocking(true)?;
        Ok(TunnelEnd {
            peer,
            receiver: Some(socket),
            out: Out::FromReceiver,
            segment_limit: MAX_SEGMENTED,
        })
    }
}

impl Endpoint for TunnelEnd {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &self.receiver {
            Some(socket) => registry.register(
                &mut SourceFd(&socket.as_raw_fd()),
                token,
                Interest::READABLE,
            ),
            None => Ok(()),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match &self.receiver {
            Some(socket) => registry.deregister(&mut SourceFd(&socket.as_raw_fd())),
            None => Ok(()),
        }
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        match &self.receiver {
            Some(socket) => inbox.recv(socket).map(drop),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn accepts(&self, received: &Received) -> bool {
        received.source == Some(self.peer)
    }

    fn send(&mut self, batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        match (&self.out, &self.receiver) {
            (Out::Connected(socket), _) => {
                batch.send_offloaded(socket, None, frames, &mut self.segment_limit)
            }
            (Out::FromReceiver, Some(socket)) => {
                batch.send_offloaded(socket, Some(self.peer), frames, &mut self.segment_limit)
            }
            _ => SendOutcome::all_failed(frames, io::ErrorKind::NotConnected),
        }
    }
}
