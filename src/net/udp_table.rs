//! The kernel's table of UDP sockets (`/proc/net/udp` and `/proc/net/udp6`): tells whether
//! some process has a socket bound to an address, e.g. whether a VM's tunnel end is up.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// The local addresses of every UDP socket of this network namespace, as of one reading.
#[derive(Debug, Clone, Default)]
pub struct Table {
    bound: HashSet<SocketAddr>,
    /// Ports some socket is bound to on a wildcard address.
    wildcard: Vec<SocketAddr>,
}

impl Table {
    /// Reads `/proc/net/udp` and `/proc/net/udp6` once.
    pub fn read() -> io::Result<Table> {
        let mut table = Table::default();
        for path in ["/proc/net/udp", "/proc/net/udp6"] {
            match std::fs::read_to_string(Path::new(path)) {
                Ok(text) => {
                    for local in parse(&text) {
                        if local.ip().is_unspecified() {
                            table.wildcard.push(local);
                        } else {
                            table.bound.insert(local);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(table)
    }

    /// True when a socket bound to `addr`'s IP and port, or to the wildcard address of its
    /// family (or `::` for IPv4, which dual-stack sockets cover) on its port, was listed.
    pub fn is_bound(&self, addr: SocketAddr) -> bool {
        let mapped = match addr.ip() {
            IpAddr::V4(v4) => Some(SocketAddr::new(
                IpAddr::V6(v4.to_ipv6_mapped()),
                addr.port(),
            )),
            IpAddr::V6(_) => None,
        };
        self.bound.contains(&addr)
            || mapped.is_some_and(|m| self.bound.contains(&m))
            || self.wildcard.iter().any(|local| covers(*local, addr))
    }
}

/// Whether a socket bound to `local` receives datagrams sent to `addr`.
fn covers(local: SocketAddr, addr: SocketAddr) -> bool {
    if local.port() != addr.port() {
        return false;
    }
    match (local.ip(), addr.ip()) {
        (l, a) if l == a => true,
        (IpAddr::V4(l), IpAddr::V4(_)) => l.is_unspecified(),
        (IpAddr::V6(l), IpAddr::V6(_)) => l.is_unspecified(),
        (IpAddr::V6(l), IpAddr::V4(a)) => l.is_unspecified() || l.to_ipv4_mapped() == Some(a),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// The local addresses of every socket listed in the text of `/proc/net/udp` or `udp6`.
/// Lines that do not parse (the header among them) are skipped.
fn parse(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(parse_local)
        .collect()
}

/// One `local_address` field: the address as the kernel's words in hexadecimal (each
/// 32-bit word in host byte order), a colon, the port in hexadecimal.
pub(super) fn parse_local(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_both_tables() {
        let v4 = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                  \x20 29: 0100007F:A029 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n\
                  \x20 30: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n";
        assert_eq!(
            parse(v4),
            vec![
                "127.0.0.1:41001".parse().unwrap(),
                "0.0.0.0:68".parse().unwrap()
            ]
        );
        let v6 = "  sl  local_address                         remote_address                        st\n\
                  \x20 1: 00000000000000000000000001000000:A029 00000000000000000000000000000000:0000 07\n";
        assert_eq!(parse(v6), vec!["[::1]:41001".parse().unwrap()]);
    }

    #[test]
    fn wildcards_cover_their_port() {
        let addr: SocketAddr = "127.0.0.1:41001".parse().unwrap();
        assert!(covers("0.0.0.0:41001".parse().unwrap(), addr));
        assert!(covers("[::]:41001".parse().unwrap(), addr));
        assert!(covers("127.0.0.1:41001".parse().unwrap(), addr));
        assert!(!covers("127.0.0.2:41001".parse().unwrap(), addr));
        assert!(!covers("127.0.0.1:41002".parse().unwrap(), addr));
    }

    #[test]
    fn sees_a_bound_socket() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        assert!(Table::read().unwrap().is_bound(addr));
        drop(socket);
        assert!(!Table::read().unwrap().is_bound(addr));
    }
}
