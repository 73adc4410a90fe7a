//! Thin wrappers over the system calls the standard library and socket2 do not offer.
//!
//! This is the only module of the crate allowed to contain `unsafe`; each block says why it
//! is sound.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Attaches `tun`, an open `/dev/net/tun`, to the tap interface `name` (created when absent)
/// with `IFF_TAP | IFF_NO_PI`, and returns the name the kernel gave it. `name` must be shorter
/// than `IFNAMSIZ` bytes and hold no NUL.
pub fn tun_attach_tap(tun: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    if name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an interface name is 1 to 15 bytes without NUL",
        ));
    }
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (d, s) in ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let mut req = libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru {
            ifru_flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        },
    };
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a live, exclusively
    // borrowed `ifreq` for the whole call, its name NUL-terminated (checked length above), and
    // `tun` is an open descriptor borrowed for the call.
    let rc = unsafe {
        libc::ioctl(
            tun.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect())
}

/// Waits until `fd` is readable or `timeout` has passed; true when readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes exactly one `pollfd`, `pfd`, which lives for the call; the
    // descriptor is borrowed, so it stays open meanwhile.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc > 0)
}
