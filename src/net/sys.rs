//! Thin wrappers over the system calls the standard library and socket2 do not offer.
//!
//! This is the only module of the crate allowed to contain `unsafe`; each block says why it
//! is sound.

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
