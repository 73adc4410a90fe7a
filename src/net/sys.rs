//! Thin wrappers over the system calls the standard library and socket2 do not offer.
//!
//! This is the only module of the crate allowed to contain `unsafe`; each block says why it
//! is sound.

#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

pub mod pcap;
pub mod process;

/// Room for the control messages we ask for: one `SCM_TIMESTAMPNS` (a timespec) and one
/// `SO_RXQ_OVFL` (a u32), each with its header, with margin. Kept as u64 words so the
/// buffer is aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 16;

/// Asks the kernel for a nanosecond receive timestamp (`SO_TIMESTAMPNS`) and the socket's
/// cumulative drop counter (`SO_RXQ_OVFL`) with every datagram.
pub fn enable_receive_metadata(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
}

/// Sets the receive buffer to `bytes` past the `net.core.rmem_max` cap
/// (`SO_RCVBUFFORCE`, which needs CAP_NET_ADMIN); fails with `PermissionDenied` without it.
pub fn force_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
}

/// Sets the send buffer to `bytes` past the `net.core.wmem_max` cap (`SO_SNDBUFFORCE`, which
/// needs CAP_NET_ADMIN); fails with `PermissionDenied` without it.
pub fn force_send_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, bytes)
}

/// Turns off the UDP checksum of datagrams sent on `fd` (`SO_NO_CHECK`): the kernel then
/// refuses segmentation offload, which tests use to reach that refusal on loopback.
#[cfg(test)]
pub fn disable_udp_checksum(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1)
}

fn set_int_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live i32 on our stack, the length matches
    // its size, and the kernel only reads it; the descriptor is open for the borrow.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes stored in the slot (the datagram's length unless `truncated`).
    pub len: usize,
    /// The sender, when it is an IPv4 or IPv6 address.
    pub source: Option<SocketAddr>,
    /// Receive time in nanoseconds since the Unix epoch (0 when the kernel gave none).
    pub timestamp_ns: u64,
    /// The socket's cumulative count of datagrams dropped for lack of buffer space, as of
    /// this datagram (the kernel only reports it once it is non-zero).
    pub kernel_drops: u32,
    /// The datagram was longer than its slot.
    pub truncated: bool,
}

/// Reusable `recvmmsg(2)` state: message headers, I/O vectors, address and control buffers
/// for up to `capacity` datagrams. The pointers inside are rebuilt on every call, so the
/// struct may move freely between calls.
pub struct RecvMmsg {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    addresses: Vec<libc::sockaddr_storage>,
    controls: Vec<[u64; CONTROL_WORDS]>,
}

impl RecvMmsg {
    /// State for batches of up to `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        RecvMmsg {
            // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs for which
            // all-zero bytes are a valid value (null pointers, zero lengths).
            headers: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            // SAFETY: as above.
            iovecs: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            // SAFETY: as above.
            addresses: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            controls: vec![[0; CONTROL_WORDS]; capacity],
        }
    }

    /// Receives up to `out.len()` datagrams (at most the capacity) into consecutive slots of
    /// `slot` bytes of `buffer`. With `wait`, waits for the first one only
    /// (`MSG_WAITFORONE`; the socket's read timeout bounds the wait); without, takes what is
    /// queued (`MSG_DONTWAIT`; nothing queued is `WouldBlock`). Returns how many arrived;
    /// `out[i]` describes slot `i`.
    pub fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        buffer: &mut [u8],
        slot: usize,
        out: &mut [Received],
        wait: bool,
    ) -> io::Result<usize> {
        let count = out
            .len()
            .min(self.headers.len())
            .min(buffer.len() / slot.max(1));
        if count == 0 {
            return Ok(0);
        }
        for (i, chunk) in buffer.chunks_exact_mut(slot).take(count).enumerate() {
            self.iovecs[i] = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: slot,
            };
            let header = &mut self.headers[i];
            header.msg_len = 0;
            header.msg_hdr.msg_name =
                (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen =
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &mut self.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = mem::size_of::<[u64; CONTROL_WORDS]>();
            header.msg_hdr.msg_flags = 0;
        }
        // SAFETY: the first `count` headers point at live, distinct buffers owned by `self`
        // and `buffer` (each iovec covers one `slot`-byte chunk inside `buffer`), with
        // lengths matching their sizes; all stay borrowed mutably until the call returns,
        // and the kernel writes at most those lengths. A null timeout means "no timeout".
        let received = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                count as libc::c_uint,
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = received as usize;
        for (i, meta) in out.iter_mut().take(received).enumerate() {
            let header = &self.headers[i];
            let len = header.msg_len as usize;
            *meta = Received {
                len: len.min(slot),
                source: socket_addr(&self.addresses[i], header.msg_hdr.msg_namelen),
                timestamp_ns: 0,
                kernel_drops: 0,
                truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
            read_control(&header.msg_hdr, meta);
        }
        Ok(received)
    }
}

/// Walks the control messages of a received header and fills the timestamp and drop count.
fn read_control(header: &libc::msghdr, meta: &mut Received) {
    // SAFETY: `header` was filled by a successful recvmmsg: msg_control points at our
    // control buffer and msg_controllen says how much of it the kernel wrote, which is what
    // CMSG_FIRSTHDR / CMSG_NXTHDR require. Each payload is read unaligned with the size the
    // kernel documents for its type, after checking that cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let payload = c.cmsg_len as usize - (data as usize - cmsg as usize);
            if c.cmsg_level == libc::SOL_SOCKET {
                if c.cmsg_type == libc::SCM_TIMESTAMPNS
                    && payload >= mem::size_of::<libc::timespec>()
                {
                    let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    meta.timestamp_ns = (ts.tv_sec as u64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(ts.tv_nsec as u64);
                } else if c.cmsg_type == libc::SO_RXQ_OVFL && payload >= mem::size_of::<u32>() {
                    meta.kernel_drops = std::ptr::read_unaligned(data.cast::<u32>());
                }
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
}

/// Room for one `UDP_SEGMENT` control message (a u16 with its header, padded), as u64
/// words so the buffer is aligned for `cmsghdr`.
const SEGMENT_WORDS: usize = 4;

/// Reusable `sendmmsg(2)` state for up to `capacity` datagrams to one destination.
pub struct SendMmsg {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    /// The `UDP_SEGMENT` control message of a segmented send, shared by all its messages
    /// (the kernel only reads it).
    control: [u64; SEGMENT_WORDS],
}

impl SendMmsg {
    /// State for batches of up to `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        SendMmsg {
            // SAFETY: mmsghdr and iovec are plain C structs for which all-zero bytes are a
            // valid value.
            headers: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            // SAFETY: as above.
            iovecs: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            control: [0; SEGMENT_WORDS],
        }
    }

    /// Sends the datagrams (at most the capacity) to `destination` in one call, or, with
    /// `None`, to the connected socket's peer (which spares the kernel a route lookup per
    /// datagram). With `segment`, each buffer is a run of datagrams of that many bytes (the
    /// last may be shorter) that the kernel cuts apart itself (UDP GSO, `UDP_SEGMENT`).
    /// Returns how many buffers the kernel took, counted from the first; an error means the
    /// first one failed.
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        destination: Option<SocketAddr>,
        datagrams: &[&[u8]],
        segment: Option<u16>,
    ) -> io::Result<usize> {
        let count = datagrams.len().min(self.headers.len());
        if count == 0 {
            return Ok(0);
        }
        let (mut address, address_len) = match destination {
            Some(addr) => sockaddr(addr),
            // SAFETY: all-zero bytes are a valid sockaddr_storage; it is not passed on.
            None => (unsafe { mem::zeroed() }, 0),
        };
        let (control, control_len): (*mut libc::c_void, usize) = match segment {
            Some(size) => {
                let len = segment_control(&mut self.control, size);
                (self.control.as_mut_ptr().cast(), len)
            }
            None => (std::ptr::null_mut(), 0),
        };
        let name: *mut libc::c_void = if destination.is_some() {
            (&mut address as *mut libc::sockaddr_storage).cast()
        } else {
            std::ptr::null_mut()
        };
        for (i, datagram) in datagrams.iter().take(count).enumerate() {
            self.iovecs[i] = libc::iovec {
                iov_base: datagram.as_ptr() as *mut libc::c_void,
                iov_len: datagram.len(),
            };
            let header = &mut self.headers[i];
            header.msg_len = 0;
            header.msg_hdr.msg_name = name;
            header.msg_hdr.msg_namelen = address_len;
            header.msg_hdr.msg_iov = &mut self.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = control;
            header.msg_hdr.msg_controllen = control_len;
            header.msg_hdr.msg_flags = 0;
        }
        // SAFETY: the first `count` headers point at `address` (live on our stack, its
        // length set by `sockaddr`) or at no address (length 0), at iovecs covering the
        // caller's datagrams, which stay borrowed until the call returns, and at no control
        // data or at `self.control`, filled by `segment_control` with its length; the kernel
        // only reads through them.
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                count as libc::c_uint,
                0,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }
}

/// Writes one `SOL_UDP`/`UDP_SEGMENT` control message carrying `size` into `control` and
/// returns the control length to give the kernel.
fn segment_control(control: &mut [u64; SEGMENT_WORDS], size: u16) -> usize {
    *control = [0; SEGMENT_WORDS];
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes; all-zero bytes are a valid
    // msghdr (null pointers, zero lengths). The msghdr built here describes
    // `control`, which is u64-aligned and (checked below) large enough for one header and a
    // u16, so CMSG_FIRSTHDR returns a pointer to its start, valid for writing a cmsghdr; the
    // u16 is written unaligned at CMSG_DATA inside the same buffer.
    unsafe {
        let space = libc::CMSG_SPACE(mem::size_of::<u16>() as libc::c_uint) as usize;
        assert!(space <= mem::size_of::<[u64; SEGMENT_WORDS]>());
        let mut header: libc::msghdr = mem::zeroed();
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as libc::c_uint) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
        space
    }
}

fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as i32 {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, the kernel wrote at
            // least its size, and sockaddr_storage is large and aligned enough for it.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough to hold a sockaddr_in,
            // and we hold the only reference to it.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            };
            (
                storage,
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            (
                storage,
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Attaches `tun`, an open `/dev/net/tun`, to the tap interface `name` (created when absent)
/// with `IFF_TAP | IFF_NO_PI`, and returns the name the kernel gave it. `name` must be shorter
/// than `IFNAMSIZ` bytes and hold no NUL.
pub fn tun_attach_tap(tun: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a live, exclusively
    // borrowed `ifreq` for the whole call, its name NUL-terminated (`ifreq` checked its
    // length), and `tun` is an open descriptor borrowed for the call.
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

/// Raises this process's soft limit of open files to its hard limit (a splice of many links
/// holds several sockets per link). Returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into `limit`, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads one `rlimit` from `limit`, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// `SIOCBRADDIF` from linux/sockios.h (the libc crate has it for Android only): adds the
/// interface whose index is in `ifr_ifindex` to the bridge named in `ifr_name`.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// An `ifreq` naming `name`, the rest zero; refuses names the kernel cannot take (at most 15
/// bytes, no NUL; an empty name asks TUNSETIFF to choose one and names nothing elsewhere).
fn ifreq(name: &[u8]) -> io::Result<libc::ifreq> {
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
    Ok(libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_ifindex: 0 },
    })
}

/// One interface ioctl (`request` takes and may fill one `struct ifreq`) on a throwaway
/// datagram socket, as `ip link` does.
fn interface_ioctl(request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // SAFETY: every request passed here (SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFINDEX,
    // SIOCBRADDIF) reads and writes at most one `struct ifreq`; `req` is a live, exclusively
    // borrowed `ifreq` for the whole call with a NUL-terminated name (built by `ifreq`), and
    // the socket is open for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, req as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Brings the interface `name` up (sets `IFF_UP`, as `ip link set NAME up`); needs
/// CAP_NET_ADMIN unless it is up already.
pub fn interface_up(name: &str) -> io::Result<()> {
    let mut req = ifreq(name.as_bytes())?;
    interface_ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | up;
    interface_ioctl(libc::SIOCSIFFLAGS, &mut req)
}

/// The index of the interface `name`.
pub fn interface_index(name: &str) -> io::Result<i32> {
    let mut req = ifreq(name.as_bytes())?;
    interface_ioctl(libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX filled the `ifru_ifindex` member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// Enslaves the interface `port` to the Linux bridge `bridge` (as `ip link set PORT master
/// BRIDGE`); needs CAP_NET_ADMIN. A port that already has a master, even this bridge, is
/// refused with `EBUSY`: check first.
pub fn bridge_add(bridge: &str, port: &str) -> io::Result<()> {
    let index = interface_index(port)?;
    let mut req = ifreq(bridge.as_bytes())?;
    req.ifr_ifru.ifru_ifindex = index;
    interface_ioctl(SIOCBRADDIF, &mut req)
}

/// Sets or clears `O_NONBLOCK` on `fd` (for pipes and terminals, which the standard library
/// offers no switch for). The flag belongs to the open file description, which duplicates of
/// the descriptor share.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags; the descriptor
    // is open for the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted == flags {
        return Ok(());
    }
    // SAFETY: F_SETFL takes an int of flags by value; the descriptor is open for the borrow.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGKILL to every process of the process group `group` (a child started as the
/// leader of its own group, so that what it started dies with it).
pub fn kill_process_group(group: u32) -> io::Result<()> {
    let group = libc::pid_t::try_from(group)
        .ok()
        .filter(|g| *g > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill takes two integers by value and touches no memory of ours; with a group
    // id above 1 (checked), -group is never 0 (our own group) or -1 (every process).
    if unsafe { libc::kill(-group, libc::SIGKILL) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGTERM to this process, as if someone had asked it to stop (its handler, if any,
/// runs; without one the process ends).
pub fn terminate_self() -> io::Result<()> {
    // SAFETY: getpid and kill take and return integers only and touch no memory of ours.
    if unsafe { libc::kill(libc::getpid(), libc::SIGTERM) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

/// Makes a UDP socket send with Don't Fragment set while ignoring the kernel's cached path
/// MTU (`IP_PMTUDISC_PROBE` / `IPV6_PMTUDISC_PROBE`): a datagram larger than the outgoing
/// interface's MTU fails with `EMSGSIZE`, a smaller one leaves whole or not at all.
pub fn set_pmtudisc_probe(socket: &impl std::os::fd::AsFd, ipv6: bool) -> std::io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd());
    // SAFETY: `fd` is an open descriptor borrowed for the duration of the call; the option
    // value points at a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The kernel's path MTU towards the peer of a connected UDP socket (`IP_MTU` /
/// `IPV6_MTU`): the route's MTU, lowered by any "fragmentation needed" message seen.
pub fn route_mtu(socket: &impl std::os::fd::AsFd, ipv6: bool) -> std::io::Result<u32> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU)
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd());
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor borrowed for the duration of the call; the kernel
    // writes at most `len` bytes into `value`, a live c_int, and updates `len`.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &raw mut len) };
    if rc == 0 {
        Ok(value as u32)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The user id of the process at the other end of a connected Unix socket (`SO_PEERCRED`),
/// as the kernel recorded it at connect time.
pub fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes at most `len` bytes into `cred`, a live, exclusively borrowed
    // `ucred` whose size `len` holds; the descriptor is borrowed, so it stays open meanwhile.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// A non-blocking, close-on-exec `CLOCK_MONOTONIC` timerfd: a timer with nanosecond
/// resolution that epoll reports as readable when it fires (epoll's own timeout has
/// millisecond resolution).
pub fn timerfd() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: timerfd_create takes two integer flags and touches no memory of ours; on
    // success it returns a new descriptor nobody else owns, which OwnedFd takes over.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by timerfd_create and is owned by nothing else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Arms a timerfd to fire once, `after` from now (at least one nanosecond: zero would
/// disarm it).
pub fn timerfd_arm(fd: BorrowedFd<'_>, after: Duration) -> io::Result<()> {
    let after = after.max(Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
        },
    };
    // SAFETY: timerfd_settime reads one live `itimerspec` (`spec`, on our stack) and writes
    // nothing, the old value being null; the descriptor is borrowed, so it stays open.
    let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a timerfd's expiration count, which clears its readiness; 0 when it had not fired.
pub fn timerfd_clear(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut count = 0u64;
    // SAFETY: read writes at most 8 bytes into `count`, a live u64 on our stack; the
    // descriptor is borrowed, so it stays open.
    let rc = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut count as *mut u64).cast(),
            mem::size_of::<u64>(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_requests_refuse_bad_names_and_find_loopback() {
        for name in ["sixteen-bytes-xx", "nul\0"] {
            let err = interface_up(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert_eq!(
            interface_up("").unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
        assert!(interface_index("lo").unwrap() > 0);
        let err = interface_index("linkscope-none").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn sockaddr_round_trips() {
        for text in [
            "127.0.0.1:41001",
            "[::1]:9",
            "[fe80::1%2]:65535",
            "0.0.0.0:0",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let (storage, len) = sockaddr(addr);
            assert_eq!(socket_addr(&storage, len), Some(addr));
        }
    }
}
