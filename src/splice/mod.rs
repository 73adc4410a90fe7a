//! The splice: steps into QEMU UDP tunnels and relays every frame unchanged, on the
//! [`crate::engine`].
//!
//! Each link becomes an engine link of two [`TunnelEnd`]s. In [`Mode::Steal`] the splice shares
//! each VM's bound address and connects to the peer (see [`crate::net::tunnel`]); in
//! [`Mode::Relay`] the VMs were told to send to the splice's own two ports. Every socket is
//! opened before anything runs, so a refused address stops the splice before it starts.
//! Links can be added and removed while it runs; removing one (or stopping) closes its
//! sockets, which hands the tunnel straight back to the VMs.

pub mod copy;
pub mod demo;
pub mod meters;
pub mod recorder;
pub mod stats;
pub mod watch;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use crate::direction::Direction;
use crate::engine::udp::TunnelEnd;
pub use crate::engine::{BATCH, LinkStats};
use crate::engine::{Engine, EngineConfig, Link, LinkId, Stage};
use crate::net::{tunnel, udp_table};
use crate::{Error, Result};
pub use copy::{CopyBatch, CopyFilter, CopyRecord, CopySender};
pub use stats::DirectionStats;

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
    /// Looks at both ends of every link, reading the kernel's socket tables once for all.
    pub fn all(links: &[LinkConfig]) -> Result<Vec<Survey>> {
        let table = udp_table::Table::read().map_err(|source| Error::Io {
            path: "/proc/net/udp".into(),
            source,
        })?;
        let mut host = Host::default();
        let mut end = |addr: SocketAddr| EndState {
            addr,
            local: host.is_local(addr.ip()),
            bound: table.is_bound(addr),
        };
        Ok(links
            .iter()
            .map(|link| Survey {
                a: end(link.a),
                b: end(link.b),
            })
            .collect())
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

/// Which IPs belong to this host, each looked up once.
#[derive(Debug, Default)]
struct Host {
    local: HashMap<IpAddr, bool>,
}

impl Host {
    fn is_local(&mut self, ip: IpAddr) -> bool {
        *self.local.entry(ip).or_insert_with(|| tunnel::is_local(ip))
    }
}

/// What a splice forwards and how much of it the copy channel takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceConfig {
    pub links: Vec<LinkConfig>,
    /// Which forwarded frames are offered to the copy channel (when there is one).
    pub copy: CopyFilter,
    /// Forwarding threads; 0: one per core.
    pub workers: usize,
}

/// Makes the stage chain of one direction of one link: given the link's number (its index
/// among the links started, in order) and its configuration.
pub type StageFactory =
    Arc<dyn Fn(usize, &LinkConfig, Direction) -> Vec<Box<dyn Stage>> + Send + Sync>;

/// A running splice. Dropping it stops it too.
pub struct Splice {
    stop: Arc<AtomicBool>,
    engine: Engine,
    host: Host,
    stages: Option<StageFactory>,
    opened: usize,
}

impl Splice {
    /// Opens every link's sockets first (so a refused address stops us before anything
    /// runs), then forwards on [`SpliceConfig::workers`] threads. Copies of forwarded frames
    /// go to `copy` when given; their `link` is the link's index in `config.links`. `stop` is
    /// the flag the caller watches to end the splice (a signal handler or a consumer sets it);
    /// the splice itself stops on [`Splice::stop`] or when dropped.
    pub fn start(
        config: &SpliceConfig,
        copy: Option<CopySender>,
        stop: Arc<AtomicBool>,
    ) -> Result<Splice> {
        Splice::start_with_stages(config, copy, stop, None)
    }

    /// [`Splice::start`], with each direction of each link (later ones too) running the
    /// stages `stages` makes for it.
    pub fn start_with_stages(
        config: &SpliceConfig,
        copy: Option<CopySender>,
        stop: Arc<AtomicBool>,
        stages: Option<StageFactory>,
    ) -> Result<Splice> {
        // Steal mode takes four sockets per link; the default soft limit (1024) would stop a
        // lab of a few hundred links.
        let _ = crate::net::sys::raise_open_files_limit();
        let mut host = Host::default();
        let links = config
            .links
            .iter()
            .enumerate()
            .map(|(index, link)| open(link, &mut host).map(|l| staged(l, index, link, &stages)))
            .collect::<Result<Vec<_>>>()?;
        let mut engine = Engine::start(EngineConfig {
            workers: config.workers,
            copy,
            filter: config.copy,
            name: "splice".into(),
        })?;
        let opened = links.len();
        engine.add_links(links)?;
        Ok(Splice {
            stop,
            engine,
            host,
            stages,
            opened,
        })
    }

    /// The flag that stops the splice.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// How many forwarding threads run.
    pub fn workers(&self) -> usize {
        self.engine.workers()
    }

    /// Opens one more link's sockets and starts forwarding it; its number follows the
    /// numbers of the links before it.
    pub fn add_link(&mut self, link: &LinkConfig) -> Result<LinkId> {
        let opened = open(link, &mut self.host)?;
        let staged = staged(opened, self.opened, link, &self.stages);
        self.opened += 1;
        self.engine.add_link(staged)
    }

    /// Stops forwarding one link and closes its sockets, which hands the tunnel straight back
    /// to its VMs; returns its final counters.
    pub fn remove_link(&mut self, id: LinkId) -> Result<LinkStats> {
        self.engine.remove_link(id)
    }

    /// Counters as of now, one entry per running link, in the order they were added.
    pub fn stats(&self) -> Vec<LinkStats> {
        self.engine.stats()
    }

    /// Stops forwarding: forwards what is already queued, closes the splice's sockets (steal
    /// sockets hand the tunnel straight back) and drops the copy senders. Returns the final
    /// counters.
    pub fn stop(self) -> Vec<LinkStats> {
        self.engine.stop()
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

/// Gives each route of `link` the stages `stages` makes for it.
fn staged(
    mut link: Link,
    index: usize,
    config: &LinkConfig,
    stages: &Option<StageFactory>,
) -> Link {
    if let Some(make) = stages {
        for route in &mut link.routes {
            route.stages = make(index, config, route.direction);
        }
    }
    link
}

/// Opens the sockets of one link as an engine link of two tunnel ends.
fn open(link: &LinkConfig, host: &mut Host) -> Result<Link> {
    let local = |e: io::Error, field, addr| socket_error(field, addr, e);
    match link.mode {
        Mode::Steal => {
            let a_to_b = host.is_local(link.b.ip());
            let b_to_a = host.is_local(link.a.ip());
            if !a_to_b && !b_to_a {
                return Err(Error::Argument {
                    field: "link".into(),
                    message: format!(
                        "{}: neither {} nor {} is an address of this host; run the splice on \
                         a host of one of the ends, or in relay mode",
                        link.name, link.a, link.b
                    ),
                });
            }
            // A→B: a steal socket on B's address takes what A sends; a forward socket sends
            // it to B. B→A the other way round.
            let (mut from_a, mut to_b, mut from_b, mut to_a) = (None, None, None, None);
            if a_to_b {
                from_a = Some(tunnel::steal(link.b, link.a).map_err(|e| local(e, "b", link.b))?);
                to_b = Some(tunnel::forward(link.b).map_err(|e| local(e, "b", link.b))?);
            }
            if b_to_a {
                from_b = Some(tunnel::steal(link.a, link.b).map_err(|e| local(e, "a", link.a))?);
                to_a = Some(tunnel::forward(link.a).map_err(|e| local(e, "a", link.a))?);
            }
            let a = TunnelEnd::stolen(link.a, from_a, to_a).map_err(|e| local(e, "a", link.a))?;
            let b = TunnelEnd::stolen(link.b, from_b, to_b).map_err(|e| local(e, "b", link.b))?;
            Ok(Link::pair(
                link.name.clone(),
                Box::new(a),
                Box::new(b),
                (a_to_b, b_to_a),
            ))
        }
        Mode::Relay { listen_a, listen_b } => {
            // A relay owns its ports: one in use needs other ports, not another mode.
            let listen = |e: io::Error, addr| match e.kind() {
                io::ErrorKind::AddrInUse => Error::Argument {
                    field: "--listen".into(),
                    message: format!("{addr} is in use by another socket: give free ports"),
                },
                _ => socket_error("listen", addr, e),
            };
            let socket_a = tunnel::relay(listen_a).map_err(|e| listen(e, listen_a))?;
            let socket_b = tunnel::relay(listen_b).map_err(|e| listen(e, listen_b))?;
            let a =
                TunnelEnd::relayed(link.a, socket_a).map_err(|e| local(e, "listen", listen_a))?;
            let b =
                TunnelEnd::relayed(link.b, socket_b).map_err(|e| local(e, "listen", listen_b))?;
            Ok(Link::pair(
                link.name.clone(),
                Box::new(a),
                Box::new(b),
                (true, true),
            ))
        }
    }
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
