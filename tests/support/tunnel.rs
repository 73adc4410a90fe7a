//! The emulated QEMU end of a UDP tunnel the splice tests talk through.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A tunnel end on 127.0.0.1 with SO_REUSEADDR as QEMU's own (so a steal socket can share
/// its address), with `read_timeout` on its reads when given. Bound before SO_REUSEADDR is
/// set: the kernel then picks a port no other socket holds. Binding port 0 with SO_REUSEADDR
/// already set may hand out a port another such end holds, and two emulated VMs would share
/// an address.
pub fn end(read_timeout: Option<Duration>) -> UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_read_timeout(read_timeout).unwrap();
    UdpSocket::from(s)
}
