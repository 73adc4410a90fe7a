//! `linkscope bench`: a sender, a sink and a reflector that stand where a VM will stand on a
//! planned link and measure throughput, loss, reordering, duplication, jitter, round-trip
//! time and fragmentation over the tunnel's own framing (one Ethernet frame per UDP
//! datagram, see [`frame`]).
//!
//! The receiving end keeps the counts of each test and reports them in-band when the sender
//! asks (report request and report frames of the same EtherType), so one `send` prints both
//! ends' view.

pub mod frame;
pub mod receiver;
pub mod sender;
pub mod spec;
pub mod stats;

use std::net::{SocketAddr, UdpSocket};

use crate::{Error, Result};

/// Socket buffer size we ask for: bursts at full rate must not overflow the default 208 KiB.
const SOCKET_BUFFER: usize = 8 << 20;

/// Binds a UDP socket with large buffers and `SO_REUSEADDR`.
pub(crate) fn open_socket(addr: SocketAddr) -> Result<UdpSocket> {
    let err = |op: &'static str| move |source| Error::Socket { addr, op, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err("create socket"))?;
    // Best effort: past net.core.rmem_max when we may (root), else capped by it silently.
    if crate::net::sys::force_recv_buffer(std::os::fd::AsFd::as_fd(&socket), SOCKET_BUFFER).is_err()
    {
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    }
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    // As QEMU binds its tunnel end, so a splice can step in between bench ends in steal mode.
    socket
        .set_reuse_address(true)
        .map_err(err("set SO_REUSEADDR"))?;
    socket.bind(&addr.into()).map_err(err("bind"))?;
    Ok(socket.into())
}

/// Bytes one tunnel datagram of `size` bytes occupies on the wire between hosts: the outer
/// Ethernet header (14 bytes; no preamble, FCS or gap), IP and UDP headers, and the extra
/// IP and Ethernet headers of each further fragment when the datagram exceeds `path_mtu`.
pub fn wire_bytes(size: usize, path_mtu: u32, ipv6: bool) -> u64 {
    const ETHERNET: u64 = 14;
    const UDP: u64 = 8;
    let ip: u64 = if ipv6 { 40 } else { 20 };
    let datagram = size as u64 + UDP;
    let mtu = u64::from(path_mtu);
    if datagram + ip <= mtu {
        return datagram + ip + ETHERNET;
    }
    // IPv6 fragments carry an 8-byte fragment header; fragment payloads are multiples of 8.
    let frag_header = if ipv6 { 8 } else { 0 };
    let per_fragment = (mtu.saturating_sub(ip + frag_header) / 8 * 8).max(8);
    let fragments = datagram.div_ceil(per_fragment);
    datagram + fragments * (ip + frag_header + ETHERNET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_without_fragments() {
        assert_eq!(wire_bytes(64, 1500, false), 64 + 8 + 20 + 14);
        assert_eq!(wire_bytes(1472, 1500, false), 1472 + 42);
        assert_eq!(wire_bytes(1452, 1500, true), 1452 + 8 + 40 + 14);
    }

    #[test]
    fn wire_bytes_with_fragments() {
        // 1473 + 8 = 1481 bytes of IP payload: fragments of 1480 and 1.
        assert_eq!(wire_bytes(1473, 1500, false), 1481 + 2 * 34);
        // 9000 + 8 = 9008: seven fragments of at most 1480.
        assert_eq!(wire_bytes(9000, 1500, false), 9008 + 7 * 34);
        // IPv6: 1448 bytes of payload per fragment.
        assert_eq!(wire_bytes(1453, 1500, true), 1461 + 2 * (48 + 14));
    }
}
