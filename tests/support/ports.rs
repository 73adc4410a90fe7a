//! Loopback ports the kernel just handed out and released, for a command that must be told
//! which port to bind (a mapping's explicit ports, a relay's locator, a server's address).

use std::net::{TcpListener, UdpSocket};

/// A UDP port free a moment ago on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// A TCP port free a moment ago on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}
