//! Path-MTU probing between two hosts over UDP, confirmed end to end by a reflector.
//!
//! The prober sends UDP datagrams with Don't Fragment set and the kernel's cached path MTU
//! ignored ([`crate::net::sys::set_pmtudisc_probe`]), so a datagram too large for some hop
//! is dropped there instead of being fragmented; the reflector answers each probe it
//! receives with a 20-byte acknowledgement carrying the probe's nonce and received length.
//! A binary search over the datagram size, each size tried a few times, finds the largest
//! packet that crosses whole. Without an answering reflector the kernel's own view of the
//! route MTU is all we can offer, and the result says so.
//!
//! Probe: `LSMTU1\0\0`, an 8-byte nonce, padding. Acknowledgement: `LSMTU1\0\1`, the
//! nonce, the received length (u32, big endian). Only well-formed probes are answered and
//! answers are never larger than probes.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::fragment::Outer;
use crate::net::sys;

const PROBE_MAGIC: [u8; 8] = *b"LSMTU1\0\0";
const ACK_MAGIC: [u8; 8] = *b"LSMTU1\0\x01";
const PROBE_HEADER: usize = 16;
const ACK_LEN: usize = 20;

/// How to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The reflector's address.
    pub target: SocketAddr,
    /// How long to wait for each acknowledgement.
    pub timeout: Duration,
    /// Tries per size before it counts as too large (a lost probe is not a small MTU).
    pub attempts: u32,
}

/// Where a path MTU figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Confirmed end to end: a probe of exactly this size was answered by the reflector.
    Reflector,
    /// No reflector answered: the kernel's route MTU towards the target, unconfirmed.
    Kernel,
}

/// The outcome of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMtu {
    /// The largest IP packet that crosses the path whole.
    pub path_mtu: u32,
    pub source: Source,
    /// The kernel's route MTU towards the target (IP_MTU on a connected socket).
    pub kernel_mtu: u32,
    /// The family of the packets probed.
    pub outer: Outer,
    /// Probes sent in all.
    pub probes: u32,
}

impl PathMtu {
    /// The largest host_mtu whose frames cross this path unfragmented.
    pub fn largest_host_mtu(&self, vlan_tags: u32) -> u32 {
        self.outer.largest_host_mtu(self.path_mtu, vlan_tags)
    }
}

/// The path MTU a splice assumes towards a tunnel peer when the user gives none: 65535
/// for a loopback peer, else the kernel's route MTU read with `IP_MTU` / `IPV6_MTU` on a
/// UDP socket connected to the peer (no datagram is sent).
pub fn route_path_mtu(peer: SocketAddr) -> crate::Result<u32> {
    if peer.ip().is_loopback() {
        return Ok(super::fragment::LOOPBACK_PATH_MTU);
    }
    let io = |source| crate::Error::Io {
        path: format!("udp:{peer}").into(),
        source,
    };
    let local: SocketAddr = if peer.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(peer).map_err(io)?;
    sys::route_mtu(&socket, peer.is_ipv6()).map_err(io)
}

/// Probes the path MTU towards a reflector; see the module documentation.
pub fn probe(config: &ProbeConfig) -> crate::Result<PathMtu> {
    let outer = if config.target.is_ipv6() {
        Outer::Ipv6
    } else {
        Outer::Ipv4
    };
    let io = |source| crate::Error::Io {
        path: format!("udp:{}", config.target).into(),
        source,
    };
    let local: SocketAddr = if config.target.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(config.target).map_err(io)?;
    sys::set_pmtudisc_probe(&socket, config.target.is_ipv6()).map_err(io)?;
    let kernel_mtu = sys::route_mtu(&socket, config.target.is_ipv6()).map_err(io)?;
    let mut prober = Prober {
        socket,
        config: *config,
        outer,
        nonce: u64::from(std::process::id()) << 32,
        probes: 0,
        buffer: vec![0; 65536],
    };
    let ceiling = kernel_mtu.min(outer.max_frame() + outer.overhead());
    let floor = (PROBE_HEADER as u32) + outer.overhead();
    let mut result = PathMtu {
        path_mtu: ceiling,
        source: Source::Kernel,
        kernel_mtu,
        outer,
        probes: 0,
    };
    if !prober.crosses(floor).map_err(io)? {
        result.probes = prober.probes;
        return Ok(result);
    }
    result.source = Source::Reflector;
    let (mut good, mut bad) = (floor, ceiling + 1);
    if prober.crosses(ceiling).map_err(io)? {
        good = ceiling;
    }
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        if prober.crosses(middle).map_err(io)? {
            good = middle;
        } else {
            bad = middle;
        }
    }
    result.path_mtu = good;
    result.probes = prober.probes;
    Ok(result)
}

struct Prober {
    socket: UdpSocket,
    config: ProbeConfig,
    outer: Outer,
    nonce: u64,
    probes: u32,
    buffer: Vec<u8>,
}

impl Prober {
    /// True when an IP packet of `size` bytes reaches the reflector whole.
    fn crosses(&mut self, size: u32) -> std::io::Result<bool> {
        let payload = (size - self.outer.overhead()) as usize;
        for _ in 0..self.config.attempts.max(1) {
            self.nonce = self.nonce.wrapping_add(1);
            let mut datagram = vec![0u8; payload];
            datagram[..8].copy_from_slice(&PROBE_MAGIC);
            datagram[8..16].copy_from_slice(&self.nonce.to_be_bytes());
            self.probes += 1;
            match self.send(&datagram)? {
                Sent::Yes => {}
                Sent::TooLarge => return Ok(false),
            }
            match self.answer(payload)? {
                Answer::Acknowledged => return Ok(true),
                Answer::TooLarge => return Ok(false),
                Answer::Silence => {}
            }
        }
        Ok(false)
    }

    /// Sends one probe. A connected UDP socket reports ICMP errors caused by earlier
    /// probes (fragmentation needed, port unreachable) on its next call, so the first
    /// failure is taken as such a stale report and the send retried once.
    fn send(&self, datagram: &[u8]) -> std::io::Result<Sent> {
        let mut stale = true;
        loop {
            match self.socket.send(datagram) {
                Ok(_) => return Ok(Sent::Yes),
                Err(e) if stale && is_icmp_report(&e) => stale = false,
                // Larger than the outgoing interface allows with DF set.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => return Ok(Sent::TooLarge),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(Sent::Yes),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the acknowledgement of the probe just sent. An ICMP "fragmentation
    /// needed" arriving meanwhile (EMSGSIZE) is taken as the verdict on this probe: a hop
    /// answers within one round trip, and the previous probe's wait outlasted that.
    fn answer(&mut self, payload: usize) -> std::io::Result<Answer> {
        let deadline = Instant::now() + self.config.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Answer::Silence);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut self.buffer) {
                Ok(n) => {
                    let ack = &self.buffer[..n];
                    if n == ACK_LEN
                        && ack[..8] == ACK_MAGIC
                        && ack[8..16] == self.nonce.to_be_bytes()
                        && ack[16..20] == (payload as u32).to_be_bytes()
                    {
                        return Ok(Answer::Acknowledged);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Answer::Silence);
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => return Ok(Answer::TooLarge),
                // Port unreachable: nothing listens there (now).
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(Answer::Silence),
                Err(e) => return Err(e),
            }
        }
    }
}

enum Sent {
    Yes,
    TooLarge,
}

enum Answer {
    Acknowledged,
    TooLarge,
    Silence,
}

/// An error a connected UDP socket raises for an ICMP message about an earlier datagram.
fn is_icmp_report(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMSGSIZE) || e.kind() == ErrorKind::ConnectionRefused
}

/// Answers path-MTU probes; see the module documentation.
#[derive(Debug)]
pub struct Reflector {
    socket: UdpSocket,
}

impl Reflector {
    /// Binds the reflector's socket (port 0 picks a free port; see [`Reflector::local_addr`]).
    pub fn bind(address: SocketAddr) -> crate::Result<Reflector> {
        let socket = UdpSocket::bind(address).map_err(|source| crate::Error::Io {
            path: format!("udp:{address}").into(),
            source,
        })?;
        Ok(Reflector { socket })
    }

    /// The address the reflector listens on.
    pub fn local_addr(&self) -> crate::Result<SocketAddr> {
        self.socket.local_addr().map_err(|source| crate::Error::Io {
            path: "udp:reflector".into(),
            source,
        })
    }

    /// Answers probes until `stop` is set (checked every 200 ms); returns the number
    /// answered.
    pub fn serve(&self, stop: &AtomicBool) -> crate::Result<u64> {
        let io = |source| crate::Error::Io {
            path: "udp:reflector".into(),
            source,
        };
        self.socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io)?;
        let mut buffer = vec![0u8; 65536];
        let mut answered = 0;
        while !stop.load(Ordering::Relaxed) {
            let (n, peer) = match self.socket.recv_from(&mut buffer) {
                Ok(received) => received,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(io(e)),
            };
            if n < PROBE_HEADER || buffer[..8] != PROBE_MAGIC {
                continue;
            }
            let mut ack = [0u8; ACK_LEN];
            ack[..8].copy_from_slice(&ACK_MAGIC);
            ack[8..16].copy_from_slice(&buffer[8..16]);
            ack[16..20].copy_from_slice(&(n as u32).to_be_bytes());
            // A failed answer is a lost answer: the prober retries.
            if self.socket.send_to(&ack, peer).is_ok() {
                answered += 1;
            }
        }
        Ok(answered)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn loopback_carries_the_largest_ipv4_packet() {
        let reflector =
            Reflector::bind("127.0.0.1:0".parse().expect("address")).expect("binds on loopback");
        let target = reflector.local_addr().expect("bound");
        let stop = Arc::new(AtomicBool::new(false));
        let serving = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || reflector.serve(&stop))
        };
        let found = probe(&ProbeConfig {
            target,
            timeout: Duration::from_millis(500),
            attempts: 3,
        })
        .expect("probes");
        stop.store(true, Ordering::Relaxed);
        let answered = serving.join().expect("joins").expect("serves");
        assert_eq!(found.source, Source::Reflector);
        assert_eq!(found.path_mtu, 65535);
        assert!(found.kernel_mtu >= 65535);
        assert_eq!(found.largest_host_mtu(0), 65493);
        assert!(answered >= 2);
    }

    #[test]
    fn route_path_mtu_is_65535_towards_loopback_peers() {
        // (The non-loopback branch reads IP_MTU like `probe` does; the namespace test of
        // `linkscope mtu` checks that figure: 9000 on the near link.)
        for peer in ["127.0.0.1:9", "127.0.0.2:9", "[::1]:9"] {
            let peer = peer.parse().expect("address");
            assert_eq!(route_path_mtu(peer).expect("loopback"), 65535);
        }
    }

    #[test]
    fn without_a_reflector_the_kernel_view_is_reported_as_such() {
        // A bound socket that never answers: probes go unanswered.
        let silent = UdpSocket::bind("127.0.0.1:0").expect("binds");
        let found = probe(&ProbeConfig {
            target: silent.local_addr().expect("bound"),
            timeout: Duration::from_millis(50),
            attempts: 2,
        })
        .expect("probes");
        assert_eq!(found.source, Source::Kernel);
        assert_eq!(found.path_mtu, 65535);
        assert_eq!(found.probes, 2);
    }

    #[test]
    fn the_reflector_ignores_what_is_not_a_probe() {
        let reflector = Reflector::bind("127.0.0.1:0".parse().expect("address")).expect("binds");
        let target = reflector.local_addr().expect("bound");
        let client = UdpSocket::bind("127.0.0.1:0").expect("binds");
        client
            .send_to(b"hello, not a probe", target)
            .expect("sends");
        let mut probe = PROBE_MAGIC.to_vec();
        probe.extend_from_slice(&7u64.to_be_bytes());
        probe.resize(100, 0);
        client.send_to(&probe, target).expect("sends");
        let stop = Arc::new(AtomicBool::new(false));
        let serving = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || reflector.serve(&stop))
        };
        let mut ack = [0u8; 64];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("sets timeout");
        let n = client.recv(&mut ack).expect("an answer to the probe");
        stop.store(true, Ordering::Relaxed);
        assert_eq!(serving.join().expect("joins").expect("serves"), 1);
        assert_eq!(n, ACK_LEN);
        assert_eq!(&ack[..8], &ACK_MAGIC);
        assert_eq!(&ack[8..16], &7u64.to_be_bytes());
        assert_eq!(&ack[16..20], &100u32.to_be_bytes());
    }
}
