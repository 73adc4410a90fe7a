//! The sockets a splice puts into a QEMU UDP tunnel.
//!
//! - A *steal* socket shares a VM's bound address (`SO_REUSEADDR`, as QEMU's own socket
//!   does) and is connected to the peer VM's address: Linux prefers a connected socket for
//!   datagrams from its peer, so it receives what the peer sends to that VM, and nothing
//!   else. Closing it hands the tunnel back.
//! - A *relay* socket owns a port the VMs were told to send to.
//! - A *forward* socket sits on an ephemeral port of the destination's IP: what it sends
//!   reaches only the VM's own socket, never a steal socket (which is connected to the
//!   other VM's address, not to this port).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};

/// The receive buffer we ask for: room for a burst of about 4000 full-size Ethernet frames.
pub const RECV_BUFFER: usize = 8 << 20;

fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
}

/// Prepares a receiving socket: big buffer (forced past `rmem_max` when we may), receive
/// timestamps and drop counter.
fn prepare_receiver(socket: &Socket) -> io::Result<()> {
    if super::sys::force_recv_buffer(socket.as_fd(), RECV_BUFFER).is_err() {
        socket.set_recv_buffer_size(RECV_BUFFER)?;
    }
    super::sys::enable_receive_metadata(socket.as_fd())
}

/// A socket bound to `bound` (a VM's tunnel address) with `SO_REUSEADDR`, connected to
/// `peer` (the other VM's address): it receives what `peer` sends to `bound`.
pub fn steal(bound: SocketAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let socket = udp_socket(bound)?;
    socket.set_reuse_address(true)?;
    prepare_receiver(&socket)?;
    socket.bind(&bound.into())?;
    socket.connect(&peer.into())?;
    Ok(socket.into())
}

/// A socket as QEMU's UDP netdev opens one: bound to `local` with `SO_REUSEADDR`, never
/// connected. Emulated VM ends (the demo, tests, benchmarks) use it.
pub fn endpoint(local: SocketAddr) -> io::Result<UdpSocket> {
    let socket = udp_socket(local)?;
    socket.set_reuse_address(true)?;
    socket.bind(&local.into())?;
    Ok(socket.into())
}

/// A socket that owns `listen` (no address sharing) and receives from anyone. It also sends
/// (to the VM that sends to it), without blocking the engine's worker, so its send buffer is
/// as large as its receive buffer: a burst the splice forwards fits instead of being refused.
pub fn relay(listen: SocketAddr) -> io::Result<UdpSocket> {
    let socket = udp_socket(listen)?;
    prepare_receiver(&socket)?;
    if super::sys::force_send_buffer(socket.as_fd(), RECV_BUFFER).is_err() {
        socket.set_send_buffer_size(RECV_BUFFER)?;
    }
    socket.bind(&listen.into())?;
    Ok(socket.into())
}

/// A socket on an ephemeral port of `destination`'s IP (the wildcard when that IP is not
/// local), connected to `destination` so sends skip the route lookup. Nobody sends to its
/// port, so what the VM receives from it never matches a steal socket.
pub fn forward(destination: SocketAddr) -> io::Result<UdpSocket> {
    let ip = if is_local(destination.ip()) {
        destination.ip()
    } else {
        unspecified(destination)
    };
    let socket = udp_socket(destination)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.connect(&destination.into())?;
    Ok(socket.into())
}

fn unspecified(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// True when `ip` belongs to this host (a socket can bind to it).
pub fn is_local(ip: IpAddr) -> bool {
    ip.is_unspecified() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_steal_socket_takes_only_the_peers_datagrams() {
        let vm_b = endpoint("127.0.0.1:0".parse().unwrap()).unwrap();
        vm_b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let lb = vm_b.local_addr().unwrap();
        let vm_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stolen = steal(lb, vm_a.local_addr().unwrap()).unwrap();
        let out = forward(lb).unwrap();

        vm_a.send_to(b"from a", lb).unwrap();
        let mut buf = [0; 64];
        let (n, from) = stolen.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"from a"[..], vm_a.local_addr().unwrap())
        );

        out.send_to(b"forwarded", lb).unwrap();
        let n = vm_b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"forwarded");

        drop(stolen);
        vm_a.send_to(b"direct", lb).unwrap();
        let n = vm_b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"direct");
    }

    #[test]
    fn stealing_an_exclusive_address_fails() {
        let owner = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = steal(owner.local_addr().unwrap(), "127.0.0.1:9".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(!is_local("192.0.2.77".parse().unwrap()));
    }
}
