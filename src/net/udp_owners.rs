//! Who holds a tunnel: the UDP sockets bound to one address and connected to another
//! (`/proc/net/udp` and `/proc/net/udp6`), and the processes that own them (the socket's
//! inode among the links of `/proc/PID/fd`).
//!
//! A steal-mode splice holds exactly such a socket (bound to one end's address, connected
//! to the other end's); QEMU never connects its tunnel socket. So a connected socket on a
//! link's pair of addresses is another splice, and when it is not ours, the kernel hands
//! the direction to whichever socket it finds first: ours may no longer see its frames.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use super::udp_table::parse_local;

/// A process that owns a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// The process's command name (`/proc/PID/comm`).
    pub comm: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.comm)
    }
}

/// The connected UDP sockets of this network namespace as of one reading: their inodes by
/// (local, remote) address. One reading serves every link of a splice: a thousand links
/// must not mean two thousand readings of a table of four thousand sockets.
#[derive(Debug, Clone, Default)]
pub struct Connected(HashMap<(SocketAddr, SocketAddr), Vec<u64>>);

impl Connected {
    /// Asks the kernel's socket diagnostics ([`super::sock_diag`]), or, where it cannot
    /// answer (a kernel without `udp_diag`), reads `/proc/net/udp` and `/proc/net/udp6`.
    pub fn read() -> io::Result<Connected> {
        Connected::read_without(&HashSet::new())
    }

    /// [`Connected::read`] without the sockets among `ours`: a splice looking for others on
    /// its tunnels keeps only theirs, not a table of its own thousands.
    pub fn read_without(ours: &HashSet<u64>) -> io::Result<Connected> {
        let mut connected = Connected::default();
        let mut add = |(pair, inode): ((SocketAddr, SocketAddr), u64)| {
            if !ours.contains(&inode) {
                connected.0.entry(pair).or_default().push(inode);
            }
        };
        if let Ok(sockets) = super::sock_diag::connected_udp() {
            sockets.into_iter().for_each(add);
            return Ok(connected);
        }
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            match std::fs::read_to_string(table) {
                Ok(text) => parse(&text).into_iter().for_each(&mut add),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(connected)
    }

    /// The inodes of the sockets bound to `local` and connected to `remote`.
    pub fn on(&self, local: SocketAddr, remote: SocketAddr) -> &[u64] {
        self.0.get(&(local, remote)).map_or(&[], Vec::as_slice)
    }

    /// [`Connected::on`] without the sockets among `ours`.
    pub fn others(&self, local: SocketAddr, remote: SocketAddr, ours: &HashSet<u64>) -> Vec<u64> {
        self.on(local, remote)
            .iter()
            .copied()
            .filter(|inode| !ours.contains(inode))
            .collect()
    }
}

/// The socket inodes of this process's open descriptors.
pub fn own_sockets() -> io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor closed since the listing has no link any more.
        if let Ok(link) = std::fs::read_link(entry?.path())
            && let Some(inode) = socket_inode(&link.to_string_lossy())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// The processes owning the sockets `inodes`, as far as this user may look into them.
pub fn owners(inodes: &[u64]) -> Vec<Owner> {
    let mut found = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return found;
    };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|link| socket_inode(&link.to_string_lossy()))
                .is_some_and(|inode| inodes.contains(&inode))
        });
        if owns {
            let comm = std::fs::read_to_string(process.path().join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default();
            found.push(Owner { pid, comm });
        }
    }
    found
}

/// The owners of `inodes` for a message: `pid 123 (linkscope), …`, or a note that they
/// cannot be seen (another user's processes without the right to look).
pub fn describe(inodes: &[u64]) -> String {
    let owners: Vec<String> = owners(inodes).iter().map(Owner::to_string).collect();
    if owners.is_empty() {
        "a process this user cannot see".to_owned()
    } else {
        owners.join(", ")
    }
}

/// The inode of a descriptor link such as `socket:[12345]`.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The connected sockets in the text of `/proc/net/udp` or `udp6`: (local, remote) and
/// inode (IPv4-mapped IPv6 addresses as IPv4). Unconnected sockets and lines that do not
/// parse (the header among them) are left out.
fn parse(text: &str) -> Vec<((SocketAddr, SocketAddr), u64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let l = unmapped(parse_local(fields.next()?)?);
            let r = unmapped(parse_local(fields.next()?)?);
            if r.port() == 0 && r.ip().is_unspecified() {
                return None;
            }
            let inode = fields.nth(6)?.parse().ok()?;
            Some(((l, r), inode))
        })
        .collect()
}

fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[cfg(target_endian = "little")]
    #[test]
    fn finds_the_connected_socket_of_a_pair() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    \x20 29: 0100007F:A029 0100007F:A02A 01 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n\
                    \x20 30: 0100007F:A029 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 0\n";
        let (b, a) = (
            "127.0.0.1:41001".parse().unwrap(),
            "127.0.0.1:41002".parse().unwrap(),
        );
        assert_eq!(parse(text), vec![((b, a), 4242)]);
    }

    #[test]
    fn names_the_process_of_a_connected_socket_and_knows_its_own() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(peer.local_addr().unwrap()).unwrap();
        let (local, remote) = (socket.local_addr().unwrap(), peer.local_addr().unwrap());
        let table = Connected::read().unwrap();
        let inodes = table.on(local, remote).to_vec();
        assert_eq!(inodes.len(), 1);
        let owners = owners(&inodes);
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].pid, std::process::id());
        assert!(
            owners[0]
                .to_string()
                .starts_with(&format!("pid {} (", std::process::id()))
        );
        let ours = own_sockets().unwrap();
        assert!(ours.contains(&inodes[0]));
        assert!(table.others(local, remote, &ours).is_empty());
        let without = Connected::read_without(&ours).unwrap();
        assert!(
            without.on(local, remote).is_empty(),
            "our own socket is left out"
        );
        assert_eq!(table.others(local, remote, &HashSet::new()), inodes);
        assert!(table.on(remote, local).is_empty(), "not connected");
    }
}
