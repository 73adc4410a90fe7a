//! The emulated QEMU end of a UDP tunnel the splice tests talk through.

use std::net::UdpSocket;
use std::time::Duration;

use linkscope::net::tunnel;

/// A tunnel end on 127.0.0.1, bound the way QEMU binds its own (port 0: the kernel picks),
/// with `read_timeout` on its reads when given.
pub fn end(read_timeout: Option<Duration>) -> UdpSocket {
    let s = tunnel::endpoint("127.0.0.1:0".parse().unwrap()).unwrap();
    s.set_read_timeout(read_timeout).unwrap();
    s
}
