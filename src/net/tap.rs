//! Tap interfaces: Ethernet frames between the kernel and this process.
//!
//! A [`Tap`] is an open `/dev/net/tun` attached to a tap interface (`IFF_TAP | IFF_NO_PI`):
//! every [`Tap::recv`] returns one whole Ethernet frame the kernel sent out of the interface
//! and every [`Tap::send`] hands one frame to the kernel as if received on it. Opening a name
//! that does not exist creates a tap that disappears when the last descriptor closes; opening
//! a persistent tap (`ip tuntap add NAME mode tap`) attaches to it. The interface may be moved
//! into another network namespace after opening; the descriptor keeps working. Needs
//! CAP_NET_ADMIN.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use crate::net::sys;
use crate::{Error, Result};

const TUN_DEVICE: &str = "/dev/net/tun";

/// An open tap interface; the descriptor closes on drop.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Opens the tap interface `name`, creating it when it does not exist.
    pub fn open(name: &str) -> Result<Tap> {
        Tap::open_with(name, 0)
    }

    /// Opens the tap interface `name` like [`Tap::open`], with reads and writes that never
    /// wait (`WouldBlock` instead), for a readiness-driven loop.
    pub fn open_nonblocking(name: &str) -> Result<Tap> {
        Tap::open_with(name, libc::O_NONBLOCK)
    }

    fn open_with(name: &str, flags: i32) -> Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/', ' ']) {
            return Err(Error::Argument {
                field: "tap".into(),
                message: format!(
                    "{name:?} is not an interface name (1 to 15 bytes, no NUL, '/' or space)"
                ),
            });
        }
        let io_error = |source| Error::Io {
            path: Path::new(TUN_DEVICE).join(name),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(TUN_DEVICE)
            .map_err(io_error)?;
        let given = sys::tun_attach_tap(file.as_fd(), name.as_bytes()).map_err(io_error)?;
        Ok(Tap {
            file,
            name: String::from_utf8_lossy(&given).into_owned(),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receives one frame into `buf` (blocking), returning its length; a frame longer than
    /// `buf` is truncated.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Receives one frame like [`Tap::recv`], or `None` when none arrives within `timeout`.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> std::io::Result<Option<usize>> {
        if sys::wait_readable(self.file.as_fd(), timeout)? {
            self.recv(buf).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sends one whole Ethernet frame into the interface.
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let n = (&self.file).write(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("tap took {n} of {} bytes", frame.len()),
            ))
        }
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_names_the_kernel_cannot_take() {
        for name in ["", "sixteen-bytes-xx", "a/b", "a b", "nul\0"] {
            let err = Tap::open(name).unwrap_err();
            assert!(err.is_input(), "{name:?}: {err}");
        }
    }

    #[test]
    fn sys_refuses_long_names_before_the_ioctl() {
        let file = File::open("/dev/null").unwrap();
        let err = sys::tun_attach_tap(file.as_fd(), b"sixteen-bytes-xx").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
