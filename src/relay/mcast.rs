//! `mcast://GROUP:PORT[?local=IP]`: a QEMU multicast tunnel (`-netdev socket,mcast=GROUP:PORT
//! [,localaddr=IP]`), where every member sends each frame as one datagram to the group and
//! receives everyone's, its own included.
//!
//! The endpoint receives on a socket bound to GROUP:PORT (with SO_REUSEADDR, as QEMU binds
//! it, so both share the port) that joined the group on the interface holding `local`
//! (default: the kernel's choice), and sends from a second socket connected to the group, so
//! that its own transmissions, which the kernel loops back to every member on this host
//! (QEMU VMs here must hear them), carry a source address and port no member of the group
//! has. Those are its own echo: dropped and counted (`mcast_own_echo`), never forwarded. The
//! relay never sends a frame back to the endpoint it came from, so nothing a VM sends to the
//! group returns to the group through the relay.
//!
//! Multicast on loopback needs a route: `ip route add 224.0.0.0/4 dev lo`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use super::endpoint::Counters;
use crate::clock::now_ns;
use crate::engine::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{SendBatch, SendOutcome};

/// The largest datagram received.
const MAX_DATAGRAM: usize = 65_535;

/// A member of a QEMU multicast tunnel, as a relay endpoint.
#[derive(Debug)]
pub struct Mcast {
    receiver: UdpSocket,
    sender: UdpSocket,
    /// The sender's address as the group sees it: datagrams from it are our own echo.
    own: SocketAddr,
    datagram: Box<[u8]>,
    stats: Arc<McastStats>,
}

/// What a multicast endpoint dropped.
#[derive(Debug, Default)]
pub struct McastStats {
    own_echo: AtomicU64,
}

impl Counters for McastStats {
    /// `mcast_own_echo`: our own transmissions heard back from the group.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("mcast_own_echo", self.own_echo.load(Ordering::Relaxed))]
    }
}

impl Mcast {
    /// Joins `group` (on the interface holding `local`, default the kernel's choice) and
    /// connects the sending socket. Failures name the address and the step.
    pub fn open(group: SocketAddr, local: Option<IpAddr>) -> crate::Result<Mcast> {
        let locator = match local {
            Some(ip) => format!("mcast://{group}?local={ip}"),
            None => format!("mcast://{group}"),
        };
        // Every failure here is about what the user named or the host's setup (a port in
        // use, no multicast route): the relay does not start, exit 2, naming the step.
        let fail = |addr: SocketAddr, step: &'static str| {
            let field = format!("endpoint `{locator}`");
            move |source: io::Error| {
                let hint = match source.raw_os_error() {
                    Some(libc::ENODEV | libc::ENETUNREACH) => {
                        " (no route for multicast: on loopback, ip route add 224.0.0.0/4 dev lo)"
                    }
                    Some(libc::EADDRINUSE) => " (in use)",
                    _ => "",
                };
                crate::Error::Argument {
                    field,
                    message: format!("{step} {addr}: {source}{hint}"),
                }
            }
        };
        let domain = Domain::for_address(group);
        let receiver = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(fail(group, "opening a socket for"))?;
        receiver
            .set_reuse_address(true)
            .map_err(fail(group, "SO_REUSEADDR for"))?;
        receiver
            .bind(&group.into())
            .map_err(fail(group, "binding"))?;
        match (group.ip(), local) {
            (IpAddr::V4(g), Some(IpAddr::V4(l))) => receiver.join_multicast_v4(&g, &l),
            (IpAddr::V4(g), _) => receiver.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
            (IpAddr::V6(g), _) => receiver.join_multicast_v6(&g, 0),
        }
        .map_err(fail(group, "joining the group"))?;
        let sender = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(fail(group, "opening a socket for"))?;
        let bind = SocketAddr::new(
            local.unwrap_or(match group {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            }),
            0,
        );
        sender
            .bind(&bind.into())
            .map_err(fail(bind, "binding the sender to"))?;
        match (group, local) {
            (SocketAddr::V4(_), Some(IpAddr::V4(l))) => sender
                .set_multicast_if_v4(&l)
                .and_then(|()| sender.set_multicast_loop_v4(true)),
            (SocketAddr::V4(_), _) => sender.set_multicast_loop_v4(true),
            (SocketAddr::V6(_), _) => sender.set_multicast_loop_v6(true),
        }
        .map_err(fail(group, "setting the sender's multicast options for"))?;
        sender
            .connect(&group.into())
            .map_err(fail(group, "connecting the sender to"))?;
        let receiver = UdpSocket::from(receiver);
        let sender = UdpSocket::from(sender);
        let own = sender
            .local_addr()
            .map_err(fail(group, "reading the sender's address for"))?;
        for socket in [&receiver, &sender] {
            socket
                .set_nonblocking(true)
                .map_err(fail(group, "making the sockets non-blocking for"))?;
        }
        Ok(Mcast {
            receiver,
            sender,
            own,
            datagram: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            stats: Arc::default(),
        })
    }

    /// The address our transmissions come from.
    pub fn own_addr(&self) -> SocketAddr {
        self.own
    }

    /// The endpoint's own counters, shared with whoever reports them.
    pub fn stats(&self) -> Arc<McastStats> {
        self.stats.clone()
    }
}

impl Endpoint for Mcast {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.receiver.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.receiver.as_raw_fd()))
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        while !inbox.is_full() {
            let (len, source) = self.receiver.recv_from(&mut self.datagram)?;
            if source == self.own {
                self.stats.own_echo.fetch_add(1, Ordering::Relaxed);
            } else {
                inbox.push(&self.datagram[..len], now_ns(), Some(source));
            }
        }
        Ok(())
    }

    /// Any member of the group may send (that is what the group is); our echo never gets
    /// this far.
    fn accepts(&self, received: &Received) -> bool {
        received.source.is_some()
    }

    fn send(&mut self, batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        batch.send(&self.sender, None, frames)
    }
}
