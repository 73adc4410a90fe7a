//! The forwarding engine at scale and while it changes: hundreds of links on a few workers
//! with every frame accounted for, links added and removed while others carry traffic, and a
//! stage that holds frames. The ends are emulated QEMU tunnel ends on loopback.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use linkscope::direction::Direction;
use linkscope::engine::stage::FixedDelay;
use linkscope::engine::udp::TunnelEnd;
use linkscope::engine::{Engine, EngineConfig, Link, Route};
use linkscope::net::tunnel;
use linkscope::splice::{CopyBatch, CopyFilter, LinkConfig, Mode, Splice, SpliceConfig, copy};

const WAIT: Duration = Duration::from_secs(20);

/// Two emulated VM ends of one tunnel.
struct Ends {
    a: UdpSocket,
    b: UdpSocket,
}

impl Ends {
    fn new() -> Ends {
        let end = || {
            let s = support::tunnel::end(Some(WAIT));
            socket2::SockRef::from(&s)
                .set_recv_buffer_size(1 << 20)
                .unwrap();
            s
        };
        Ends { a: end(), b: end() }
    }
    fn la(&self) -> SocketAddr {
        self.a.local_addr().unwrap()
    }
    fn lb(&self) -> SocketAddr {
        self.b.local_addr().unwrap()
    }
    fn config(&self, name: &str) -> LinkConfig {
        LinkConfig {
            name: name.into(),
            a: self.la(),
            b: self.lb(),
            mode: Mode::Steal,
        }
    }
    /// After the splice let go: each end reaches the other straight from its own address.
    fn assert_direct(&self) {
        let mut buf = [0; 64];
        self.a.send_to(b"direct a", self.lb()).unwrap();
        let (n, from) = self.b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"direct a"[..], self.la()));
        self.b.send_to(b"direct b", self.la()).unwrap();
        let (n, from) = self.a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"direct b"[..], self.lb()));
    }
}

/// A frame that names its link, direction and sequence number.
fn frame(link: usize, direction: Direction, seq: u32) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&(link as u32).to_be_bytes());
    f.push(direction as u8);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(64, 0xab);
    f
}

/// Counts the copy channel's frames per (link, direction) until the engine drops its senders.
fn count_copies(
    rx: crossbeam_channel::Receiver<CopyBatch>,
) -> JoinHandle<HashMap<(usize, Direction), u64>> {
    std::thread::spawn(move || {
        let mut counts = HashMap::new();
        for batch in rx {
            for record in batch.records() {
                *counts.entry((record.link, record.direction)).or_default() += 1;
            }
        }
        counts
    })
}

/// Receives `count` frames on `socket` and checks they are `expected(seq)` for seq 0.. in
/// order, none of them straight from `peer` (so through the splice).
fn receive_in_order(
    socket: &UdpSocket,
    peer: SocketAddr,
    count: u32,
    expected: impl Fn(u32) -> Vec<u8>,
) {
    let mut buf = [0; 2048];
    for seq in 0..count {
        let (n, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("frame {seq} of {count}: {e}"));
        assert_eq!(&buf[..n], &expected(seq)[..], "frame {seq}");
        assert_ne!(from, peer, "frame {seq} came around the splice");
    }
}

#[test]
fn two_hundred_links_start_carry_and_stop_with_every_frame_accounted_for() {
    const LINKS: usize = 200;
    const FRAMES: u32 = 20;
    let links: Vec<Ends> = (0..LINKS).map(|_| Ends::new()).collect();
    let config = SpliceConfig {
        links: links
            .iter()
            .enumerate()
            .map(|(i, e)| e.config(&format!("l{i}")))
            .collect(),
        copy: CopyFilter::All,
        workers: 2,
    };
    let (tx, rx) = copy::channel(copy::DEFAULT_CAPACITY);
    let copies = count_copies(rx);
    let splice = Splice::start(&config, Some(tx), Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(splice.workers(), 2);

    for seq in 0..FRAMES {
        for (i, ends) in links.iter().enumerate() {
            ends.a
                .send_to(&frame(i, Direction::AToB, seq), ends.lb())
                .unwrap();
            ends.b
                .send_to(&frame(i, Direction::BToA, seq), ends.la())
                .unwrap();
        }
    }
    for (i, ends) in links.iter().enumerate() {
        receive_in_order(&ends.b, ends.la(), FRAMES, |s| frame(i, Direction::AToB, s));
        receive_in_order(&ends.a, ends.lb(), FRAMES, |s| frame(i, Direction::BToA, s));
    }

    let stats = splice.stop();
    let copies = copies.join().unwrap();
    assert_eq!(stats.len(), LINKS);
    for (i, link) in stats.iter().enumerate() {
        assert_eq!(link.name, format!("l{i}"));
        for direction in Direction::BOTH {
            let s = link.direction(direction).unwrap();
            assert_eq!(
                (s.frames(), s.received(), s.foreign_source()),
                (u64::from(FRAMES), u64::from(FRAMES), 0),
                "link {i} {direction:?}"
            );
            let copied = copies.get(&(i, direction)).copied().unwrap_or(0);
            assert_eq!(copied + s.copy_dropped(), u64::from(FRAMES));
        }
    }
    for ends in &links {
        ends.assert_direct();
    }
}

/// Sends `frames` sequence-numbered frames from `socket` to `to`, in bursts of eight every
/// 5 ms.
fn steady_sender(
    socket: UdpSocket,
    to: SocketAddr,
    (link, direction): (usize, Direction),
    frames: u32,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for seq in 0..frames {
            socket.send_to(&frame(link, direction, seq), to).unwrap();
            if seq % 8 == 7 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
}

#[test]
fn links_come_and_go_while_others_carry_traffic_and_those_lose_nothing() {
    const STEADY: usize = 4;
    const FRAMES: u32 = 1500;
    let steady: Vec<Ends> = (0..STEADY).map(|_| Ends::new()).collect();
    let config = SpliceConfig {
        links: steady
            .iter()
            .enumerate()
            .map(|(i, e)| e.config(&format!("steady{i}")))
            .collect(),
        copy: CopyFilter::All,
        workers: 2,
    };
    let (tx, rx) = copy::channel(copy::DEFAULT_CAPACITY);
    let copies = count_copies(rx);
    let mut splice = Splice::start(&config, Some(tx), Arc::new(AtomicBool::new(false))).unwrap();

    let mut threads = Vec::new();
    for (i, ends) in steady.iter().enumerate() {
        threads.push(steady_sender(
            ends.a.try_clone().unwrap(),
            ends.lb(),
            (i, Direction::AToB),
            FRAMES,
        ));
        threads.push(steady_sender(
            ends.b.try_clone().unwrap(),
            ends.la(),
            (i, Direction::BToA),
            FRAMES,
        ));
        let (b, la) = (ends.b.try_clone().unwrap(), ends.la());
        threads.push(std::thread::spawn(move || {
            receive_in_order(&b, la, FRAMES, |s| frame(i, Direction::AToB, s));
        }));
        let (a, lb) = (ends.a.try_clone().unwrap(), ends.lb());
        threads.push(std::thread::spawn(move || {
            receive_in_order(&a, lb, FRAMES, |s| frame(i, Direction::BToA, s));
        }));
    }

    // Meanwhile, links come, carry a few frames each way, and go.
    let mut came_and_went = 0;
    while threads[..2].iter().any(|t| !t.is_finished()) || came_and_went < 6 {
        let ends = Ends::new();
        let id = splice
            .add_link(&ends.config(&format!("transient{came_and_went}")))
            .unwrap();
        for seq in 0..5 {
            ends.a
                .send_to(&frame(id.0, Direction::AToB, seq), ends.lb())
                .unwrap();
            ends.b
                .send_to(&frame(id.0, Direction::BToA, seq), ends.la())
                .unwrap();
        }
        receive_in_order(&ends.b, ends.la(), 5, |s| frame(id.0, Direction::AToB, s));
        receive_in_order(&ends.a, ends.lb(), 5, |s| frame(id.0, Direction::BToA, s));
        let stats = splice.remove_link(id).unwrap();
        assert_eq!(stats.id, id);
        for direction in Direction::BOTH {
            assert_eq!(stats.direction(direction).unwrap().frames(), 5);
        }
        ends.assert_direct();
        assert!(splice.remove_link(id).is_err(), "removed twice");
        came_and_went += 1;
    }
    for thread in threads {
        thread.join().unwrap();
    }

    let stats = splice.stop();
    let copies = copies.join().unwrap();
    assert_eq!(stats.len(), STEADY, "only the steady links are left");
    for (i, link) in stats.iter().enumerate() {
        for direction in Direction::BOTH {
            let s = link.direction(direction).unwrap();
            assert_eq!(
                s.frames(),
                u64::from(FRAMES),
                "steady link {i} {direction:?}"
            );
            let copied = copies.get(&(i, direction)).copied().unwrap_or(0);
            assert_eq!(copied + s.copy_dropped(), u64::from(FRAMES));
        }
    }
    for ends in &steady {
        ends.assert_direct();
    }
}

/// A relay-mode link (the ends send to the link's own ports) with `stages` on A→B.
fn relay_link(
    ends: &Ends,
    stages: Vec<Box<dyn linkscope::engine::Stage>>,
) -> (Link, [SocketAddr; 2]) {
    let open = || tunnel::relay("127.0.0.1:0".parse().unwrap()).unwrap();
    let (socket_a, socket_b) = (open(), open());
    let listen = [
        socket_a.local_addr().unwrap(),
        socket_b.local_addr().unwrap(),
    ];
    let a = TunnelEnd::relayed(ends.la(), socket_a).unwrap();
    let b = TunnelEnd::relayed(ends.lb(), socket_b).unwrap();
    let link = Link {
        name: "staged".into(),
        endpoints: vec![Box::new(a), Box::new(b)],
        routes: vec![
            Route {
                from: 0,
                to: vec![1],
                direction: Direction::AToB,
                stages,
                select: None,
                copy_link: None,
            },
            Route {
                from: 1,
                to: vec![0],
                direction: Direction::BToA,
                stages: Vec::new(),
                select: None,
                copy_link: None,
            },
        ],
    };
    (link, listen)
}

#[test]
fn a_stage_delays_and_drops_and_what_it_releases_is_sent_and_copied() {
    let ends = Ends::new();
    let (tx, rx) = copy::channel(copy::DEFAULT_CAPACITY);
    let mut engine = Engine::start(EngineConfig {
        workers: 1,
        copy: Some(tx),
        filter: CopyFilter::All,
        name: "test-engine".into(),
    })
    .unwrap();
    let delay = Duration::from_millis(30);
    let (link, [listen_a, listen_b]) = relay_link(&ends, vec![Box::new(FixedDelay::new(delay, 5))]);
    let id = engine.add_link(link).unwrap();

    for seq in 0..50 {
        ends.a
            .send_to(&frame(0, Direction::AToB, seq), listen_a)
            .unwrap();
        ends.b
            .send_to(&frame(0, Direction::BToA, seq), listen_b)
            .unwrap();
    }
    // Every fifth frame A→B is dropped by the stage, the rest arrive in order, from the
    // link's port B (relay mode); B→A has no stage and carries all 50.
    let kept: Vec<u32> = (0..50).filter(|s| s % 5 != 4).collect();
    let mut buf = [0; 2048];
    for &seq in &kept {
        let (n, from) = ends.b.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&frame(0, Direction::AToB, seq)[..], listen_b)
        );
    }
    receive_in_order(&ends.a, ends.lb(), 50, |s| frame(0, Direction::BToA, s));

    // Frames a stage holds when the link is removed are released, sent and counted.
    let long = Duration::from_secs(3600);
    let (held, [held_a, _]) = relay_link(&ends, vec![Box::new(FixedDelay::new(long, 0))]);
    let held_id = engine.add_link(held).unwrap();
    for seq in 0..3 {
        ends.a
            .send_to(&frame(1, Direction::AToB, seq), held_a)
            .unwrap();
    }
    // They are held: nothing reaches B meanwhile.
    ends.b
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = ends.b.recv(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    ends.b.set_read_timeout(Some(WAIT)).unwrap();
    let final_held = engine.remove_link(held_id).unwrap();
    assert_eq!(final_held.a_to_b.unwrap().frames(), 3);
    for seq in 0..3 {
        let n = ends.b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame(1, Direction::AToB, seq)[..]);
    }

    let stats = engine.stop();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].id, id);
    let ab = stats[0].a_to_b.unwrap();
    assert_eq!(
        (ab.frames(), ab.stage_dropped(), ab.received()),
        (40, 10, 50)
    );
    assert_eq!(stats[0].b_to_a.unwrap().frames(), 50);

    let mut copied = Vec::new();
    for batch in rx.try_iter() {
        for record in batch.records() {
            if record.link == id.0 && record.direction == Direction::AToB {
                // The copy keeps the kernel receive time; the send came at least the
                // stage's delay later.
                let added = record.added_latency_ns().expect("a kernel timestamp");
                assert!(added >= delay.as_nanos() as u64, "{added} ns");
                copied.push(record.data.to_vec());
            }
        }
    }
    let expected: Vec<Vec<u8>> = kept.iter().map(|&s| frame(0, Direction::AToB, s)).collect();
    assert_eq!(copied, expected);
}

#[test]
fn a_relay_splice_carries_a_burst_of_jumbo_frames_whole() {
    let ends = Ends::new();
    socket2::SockRef::from(&ends.b)
        .set_recv_buffer_size(8 << 20)
        .unwrap();
    let ports: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let listen: Vec<SocketAddr> = ports.iter().map(|s| s.local_addr().unwrap()).collect();
    drop(ports);
    let mut config = ends.config("jumbo");
    config.mode = Mode::Relay {
        listen_a: listen[0],
        listen_b: listen[1],
    };
    let splice = Splice::start(
        &SpliceConfig {
            links: vec![config],
            copy: CopyFilter::All,
            workers: 1,
        },
        None,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    // More than a default send buffer holds at once: the relay socket sends them all.
    const FRAMES: u8 = 120;
    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|n| vec![n; 9000]).collect();
    let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let sent = linkscope::net::batch::SendBatch::new(64).send(&ends.a, Some(listen[0]), &slices);
    assert_eq!(sent.sent, usize::from(FRAMES));
    let mut buf = vec![0; 9100];
    for n in 0..FRAMES {
        let len = ends.b.recv(&mut buf).unwrap();
        assert_eq!((len, buf[0]), (9000, n), "frame {n}");
    }
    let stats = splice.stop();
    let ab = stats[0].a_to_b.unwrap();
    assert_eq!((ab.frames(), ab.send_error()), (u64::from(FRAMES), 0));
}
