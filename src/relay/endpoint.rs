//! Opening a [`Locator`] as an engine [`Endpoint`]: the one place each endpoint type is
//! constructed.
//!
//! Binding and listening happen here, before the relay starts, so that an address in use or
//! a path that cannot be used is reported (exit 2) naming the endpoint, and nothing runs
//! half set up.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::Locator;
use super::exec::{self, Exec};
use super::mcast::Mcast;
use super::stream::{Listener, StreamEnd, StreamStats, Target};
use super::tap::TapEnd;
use super::vxlan::Vxlan;
use crate::Error;
use crate::engine::Endpoint;
use crate::engine::udp::TunnelEnd;

/// Counters an endpoint keeps beyond the link's per-direction ones (connections, drops
/// while its peer is away, …), by name.
pub trait Counters: Send + Sync {
    fn counters(&self) -> Vec<(&'static str, u64)>;
}

impl Counters for StreamStats {
    fn counters(&self) -> Vec<(&'static str, u64)> {
        StreamStats::counters(self)
    }
}

/// An endpoint ready for the engine, and its own counters if it has any.
pub struct Opened {
    pub endpoint: Box<dyn Endpoint>,
    pub counters: Option<Arc<dyn Counters>>,
}

/// Opens the endpoint `locator` describes.
pub fn open(locator: &Locator) -> crate::Result<Opened> {
    let field = || format!("endpoint `{locator}`");
    let in_use = |what: String, source: io::Error| match source.kind() {
        io::ErrorKind::AddrInUse => Error::Argument {
            field: field(),
            message: format!("{what} is in use by another socket"),
        },
        io::ErrorKind::AddrNotAvailable => Error::Argument {
            field: field(),
            message: format!("{what} is not an address of this host"),
        },
        io::ErrorKind::PermissionDenied => Error::Argument {
            field: field(),
            message: format!("{what}: permission denied"),
        },
        _ => Error::Io {
            path: field().into(),
            source,
        },
    };
    let stream = |end: StreamEnd| {
        let counters: Arc<dyn Counters> = end.stats();
        Opened {
            endpoint: Box::new(end),
            counters: Some(counters),
        }
    };
    match locator {
        Locator::Udp { bind, peer } => {
            let socket =
                crate::net::tunnel::relay(*bind).map_err(|e| in_use(bind.to_string(), e))?;
            let end = TunnelEnd::relayed(*peer, socket).map_err(|e| in_use(bind.to_string(), e))?;
            Ok(Opened {
                endpoint: Box::new(end),
                counters: None,
            })
        }
        Locator::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| Error::Argument {
                    field: field(),
                    message: format!("HOST: `{host}` does not resolve: {e}"),
                })?
                .collect();
            Ok(stream(StreamEnd::connecting(Target::Tcp(addrs))))
        }
        Locator::TcpListen { listen, from } => {
            let listener =
                Listener::tcp(*listen, from.clone()).map_err(|e| in_use(listen.to_string(), e))?;
            Ok(stream(StreamEnd::listening(listener)))
        }
        Locator::Unix { path } => Ok(stream(StreamEnd::connecting(Target::Unix(path.clone())))),
        Locator::UnixListen { path } => {
            let listener =
                Listener::unix(path).map_err(|e| in_use(path.display().to_string(), e))?;
            Ok(stream(StreamEnd::listening(listener)))
        }
        Locator::Tap { name, bridge } => Ok(Opened {
            endpoint: Box::new(TapEnd::open(name, bridge.as_deref())?),
            counters: None,
        }),
        Locator::Vxlan {
            remote,
            vni,
            local,
            local_port,
        } => {
            let end = Vxlan::open(*remote, *vni, *local, *local_port).map_err(|e| match e {
                Error::Socket { addr, source, .. } => in_use(addr.to_string(), source),
                other => other,
            })?;
            let counters: Arc<dyn Counters> = end.stats();
            Ok(Opened {
                endpoint: Box::new(end),
                counters: Some(counters),
            })
        }
        Locator::Mcast { group, local } => {
            let end = Mcast::open(*group, *local)?;
            let counters: Arc<dyn Counters> = end.stats();
            Ok(Opened {
                endpoint: Box::new(end),
                counters: Some(counters),
            })
        }
        Locator::Exec { command } => {
            let end = Exec::spawn(command)?;
            let counters: Arc<dyn Counters> = end.stats();
            Ok(Opened {
                endpoint: Box::new(end),
                counters: Some(counters),
            })
        }
        Locator::Stdio => {
            let end = exec::Stdio::open()?;
            let counters: Arc<dyn Counters> = end.stats();
            Ok(Opened {
                endpoint: Box::new(end),
                counters: Some(counters),
            })
        }
    }
}
