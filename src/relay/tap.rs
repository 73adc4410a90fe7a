//! `tap://NAME[?bridge=BR]`: a TAP device as a relay endpoint, so a tunnel end joins a Linux
//! bridge or the host's own stack.
//!
//! The device is created when missing (it disappears when the relay stops; a persistent one
//! made with `ip tuntap add NAME mode tap` stays), brought up, and with `bridge` enslaved to
//! that bridge (`ip link set NAME master BR`). Every frame the kernel sends out of the device
//! goes to the other endpoints, every frame they send comes out of it. All of that needs
//! CAP_NET_ADMIN: without it the relay stops before forwarding anything, with exit status 2
//! and that reason.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::clock::now_ns;
use crate::engine::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{SendBatch, SendOutcome};
use crate::net::sys;
use crate::net::tap::Tap;

/// The largest frame read from a device.
const MAX_FRAME: usize = 65_535;

/// A TAP device, as a relay endpoint.
#[derive(Debug)]
pub struct TapEnd {
    tap: Tap,
    frame: Box<[u8]>,
}

/// The message for a refusal of the kernel that means "no CAP_NET_ADMIN".
fn needs_privilege(locator: &str, step: &str, source: &io::Error) -> crate::Error {
    crate::Error::Argument {
        field: format!("endpoint `{locator}`"),
        message: format!(
            "{step} needs CAP_NET_ADMIN ({source}): run the relay as root, or give it the capability (setcap cap_net_admin+ep, or AmbientCapabilities=CAP_NET_ADMIN in a systemd unit)"
        ),
    }
}

fn denied(source: &io::Error) -> bool {
    matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

impl TapEnd {
    /// Opens (creating when missing) the device `name`, brings it up and, with `bridge`,
    /// enslaves it to that bridge.
    pub fn open(name: &str, bridge: Option<&str>) -> crate::Result<TapEnd> {
        let locator = match bridge {
            Some(br) => format!("tap://{name}?bridge={br}"),
            None => format!("tap://{name}"),
        };
        let tap = Tap::open_nonblocking(name).map_err(|e| match &e {
            crate::Error::Io { source, .. } if denied(source) => needs_privilege(
                &locator,
                &format!("creating or attaching tap {name}"),
                source,
            ),
            _ => e,
        })?;
        let refused = |what: String, source: io::Error| {
            if denied(&source) {
                needs_privilege(&locator, &what, &source)
            } else {
                crate::Error::Argument {
                    field: format!("endpoint `{locator}`"),
                    message: format!("{what}: {source}"),
                }
            }
        };
        sys::interface_up(tap.name()).map_err(|e| refused(format!("bringing {name} up"), e))?;
        if let Some(bridge) = bridge
            && master(tap.name()).as_deref() != Some(bridge)
        {
            sys::bridge_add(bridge, tap.name()).map_err(|source| {
                if source.raw_os_error() == Some(libc::ENODEV) {
                    crate::Error::Argument {
                        field: format!("endpoint `{locator}`"),
                        message: format!("bridge {bridge}: no such interface"),
                    }
                } else {
                    refused(format!("adding {name} to bridge {bridge}"), source)
                }
            })?;
        }
        Ok(TapEnd {
            tap,
            frame: vec![0; MAX_FRAME].into_boxed_slice(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        self.tap.name()
    }
}

/// The bridge (or other master) `port` is enslaved to, if any.
fn master(port: &str) -> Option<String> {
    let link = std::fs::read_link(Path::new("/sys/class/net").join(port).join("master")).ok()?;
    link.file_name().map(|n| n.to_string_lossy().into_owned())
}

impl Endpoint for TapEnd {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.tap.as_fd().as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.tap.as_fd().as_raw_fd()))
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        while !inbox.is_full() {
            let len = self.tap.recv(&mut self.frame)?;
            inbox.push(&self.frame[..len], now_ns(), None);
        }
        Ok(())
    }

    /// The device is local: whatever the kernel sends out of it may pass.
    fn accepts(&self, _received: &Received) -> bool {
        true
    }

    fn send(&mut self, _batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        for frame in frames {
            outcome.count(frame, self.tap.send(frame).map_err(|e| e.kind()));
        }
        outcome
    }
}
