//! The forwarding engine between emulated QEMU ends (sockets opened as QEMU's UDP netdev
//! opens them) on loopback: transparency, drops, handing the tunnel back, several links.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use linkscope::net::tunnel;
use linkscope::splice::{CopyFilter, Direction, LinkConfig, Mode, Splice, SpliceConfig, copy};

/// Two emulated VM ends of one tunnel.
struct Link {
    a: UdpSocket,
    b: UdpSocket,
}

impl Link {
    fn new() -> Link {
        let end = || {
            let s = tunnel::endpoint("127.0.0.1:0".parse().unwrap()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // Room for a window of the largest datagrams, as a VM's ring would have.
            socket2::SockRef::from(&s)
                .set_recv_buffer_size(1 << 20)
                .unwrap();
            s
        };
        Link { a: end(), b: end() }
    }
    fn la(&self) -> SocketAddr {
        self.a.local_addr().unwrap()
    }
    fn lb(&self) -> SocketAddr {
        self.b.local_addr().unwrap()
    }
    fn config(&self, name: &str, mode: Mode) -> LinkConfig {
        LinkConfig {
            name: name.into(),
            a: self.la(),
            b: self.lb(),
            mode,
        }
    }
}

fn start(links: Vec<LinkConfig>, tap: Option<copy::CopySender>) -> Splice {
    Splice::start(
        &SpliceConfig {
            links,
            copy: CopyFilter::All,
            workers: 0,
        },
        tap,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap()
}

/// A deterministic pseudo-random generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn frame(&mut self, max: usize) -> Vec<u8> {
        let len = 1 + (self.next() as usize) % max;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The largest datagram IPv4 UDP carries.
const MAX_V4: usize = 65507;

/// Sends `frames` from `tx` to `to` in small windows (so no receive buffer overflows) and
/// returns what `rx` received, with the source of each.
fn exchange(
    tx: &UdpSocket,
    to: SocketAddr,
    rx: &UdpSocket,
    frames: &[Vec<u8>],
) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let mut buf = vec![0; 65536];
    for window in frames.chunks(2) {
        for frame in window {
            tx.send_to(frame, to).unwrap();
        }
        for _ in window {
            let (n, from) = rx.recv_from(&mut buf).expect("a forwarded frame");
            got.push((buf[..n].to_vec(), from));
        }
    }
    got
}

#[test]
fn random_frames_cross_unchanged_and_in_order_both_ways() {
    let link = Link::new();
    let (tx, rx) = copy::channel(4096);
    let splice = start(vec![link.config("t", Mode::Steal)], Some(tx));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut frames_ab: Vec<Vec<u8>> = (0..150).map(|_| rng.frame(MAX_V4)).collect();
    frames_ab.extend([vec![0x42], vec![0x17; MAX_V4], vec![0; 64]]);
    let frames_ba: Vec<Vec<u8>> = (0..150).map(|_| rng.frame(MAX_V4)).collect();

    let (la, lb) = (link.la(), link.lb());
    let (a2, b2) = (link.a.try_clone().unwrap(), link.b.try_clone().unwrap());
    let fab = frames_ab.clone();
    let ab = std::thread::spawn(move || exchange(&a2, lb, &b2, &fab));
    let got_ba = exchange(&link.b, la, &link.a, &frames_ba);
    let got_ab = ab.join().unwrap();

    assert_eq!(
        got_ab.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        frames_ab.iter().collect::<Vec<_>>()
    );
    assert_eq!(
        got_ba.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        frames_ba.iter().collect::<Vec<_>>()
    );
    // Every frame went through the splice (its forward sockets), none directly.
    assert!(got_ab.iter().all(|(_, from)| *from != la));
    assert!(got_ba.iter().all(|(_, from)| *from != lb));

    let stats = splice.stop();
    let ab = stats[0].direction(Direction::AToB).unwrap();
    let ba = stats[0].direction(Direction::BToA).unwrap();
    assert_eq!(ab.frames(), frames_ab.len() as u64);
    assert_eq!(
        ab.bytes(),
        frames_ab.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(ba.frames(), frames_ba.len() as u64);
    // The tap saw the same frames, in order per direction.
    let batches: Vec<_> = rx.try_iter().collect();
    let tapped: Vec<_> = batches.iter().flat_map(|b| b.records()).collect();
    let tapped_ab: Vec<_> = tapped
        .iter()
        .filter(|r| r.direction == Direction::AToB)
        .map(|r| r.data.to_vec())
        .collect();
    assert_eq!(tapped_ab, frames_ab);
    assert!(
        tapped
            .iter()
            .all(|r| r.timestamp_ns > 1_600_000_000_000_000_000)
    );
}

#[test]
fn zero_length_datagrams_are_dropped_and_counted() {
    let link = Link::new();
    let splice = start(vec![link.config("z", Mode::Steal)], None);
    link.a.send_to(&[], link.lb()).unwrap();
    link.a.send_to(b"after", link.lb()).unwrap();
    let mut buf = [0; 64];
    let n = link.b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
    let stats = splice.stop();
    let ab = stats[0].direction(Direction::AToB).unwrap();
    assert_eq!((ab.frames(), ab.zero_length()), (1, 1));
}

#[test]
fn relay_mode_drops_and_counts_foreign_sources() {
    let link = Link::new();
    let ports = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    ];
    let listen: Vec<SocketAddr> = ports.iter().map(|s| s.local_addr().unwrap()).collect();
    drop(ports);
    let mode = Mode::Relay {
        listen_a: listen[0],
        listen_b: listen[1],
    };
    let splice = start(vec![link.config("r", mode)], None);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"injected", listen[0]).unwrap();
    link.a.send_to(b"from a", listen[0]).unwrap();
    link.b.send_to(b"from b", listen[1]).unwrap();
    let mut buf = [0; 64];
    let (n, from) = link.b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"from a"[..], listen[1]));
    let (n, from) = link.a.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"from b"[..], listen[0]));
    let stats = splice.stop();
    let ab = stats[0].direction(Direction::AToB).unwrap();
    assert_eq!((ab.frames(), ab.foreign_source()), (1, 1));
}

#[test]
fn stopping_hands_the_tunnel_back() {
    let link = Link::new();
    let splice = start(vec![link.config("s", Mode::Steal)], None);
    let mut buf = [0; 64];
    link.a.send_to(b"spliced", link.lb()).unwrap();
    let (_, from) = link.b.recv_from(&mut buf).unwrap();
    assert_ne!(from, link.la());
    splice.stop();
    link.a.send_to(b"direct", link.lb()).unwrap();
    let (n, from) = link.b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"direct"[..], link.la()));
    link.b.send_to(b"back", link.la()).unwrap();
    let (n, from) = link.a.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"back"[..], link.lb()));
}

#[test]
fn one_splice_carries_several_links() {
    let links = [Link::new(), Link::new(), Link::new()];
    let (tx, rx) = copy::channel(64);
    let configs = links
        .iter()
        .enumerate()
        .map(|(i, l)| l.config(&format!("l{i}"), Mode::Steal))
        .collect();
    let splice = start(configs, Some(tx));
    let mut buf = [0; 64];
    for (i, link) in links.iter().enumerate() {
        link.a.send_to(&[i as u8; 10], link.lb()).unwrap();
        let (n, from) = link.b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i as u8; 10]);
        assert_ne!(from, link.la());
    }
    let stats = splice.stop();
    assert_eq!(stats.len(), 3);
    for (i, link_stats) in stats.iter().enumerate() {
        assert_eq!(link_stats.name, format!("l{i}"));
        assert_eq!(link_stats.direction(Direction::AToB).unwrap().frames(), 1);
    }
    // Each direction taps after forwarding, so the links' copies may interleave.
    let mut tapped: Vec<usize> = rx.try_iter().map(|b| b.link).collect();
    tapped.sort();
    assert_eq!(tapped, vec![0, 1, 2]);
}

#[test]
fn a_full_tap_drops_copies_never_frames() {
    let link = Link::new();
    let (tx, rx) = copy::channel(1);
    let splice = start(vec![link.config("f", Mode::Steal)], Some(tx));
    let mut buf = [0; 64];
    for i in 0..5u8 {
        link.a.send_to(&[i; 20], link.lb()).unwrap();
        let n = link.b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 20]);
    }
    let stats = splice.stop();
    let ab = stats[0].direction(Direction::AToB).unwrap();
    assert_eq!((ab.frames(), ab.copy_dropped()), (5, 4));
    assert_eq!(rx.try_iter().map(|b| b.len()).sum::<usize>(), 1);
}
