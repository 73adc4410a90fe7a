//! The Meter's inferred loss on ICMP echo streams crossing a deterministic impairing relay:
//! the meter sits where a splice would, on the requester's side, and must count exactly the
//! requests the relay dropped as unanswered.

mod support;

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Direction, Exchange, Meter};
use support::impair::{Every, Impairments, Relay};

const MAC_A: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x64, 1];
const MAC_B: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x66, 1];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];

fn request(seq: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(0x1234, seq)
        .write(&mut frame, &[0xab; 56])
        .expect("builds");
    frame
}

/// What the far VM does: answer an echo request with the matching reply.
fn reply_to(frame: &[u8]) -> Option<Vec<u8>> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Icmpv4(icmp)) = packet.transport else {
        return None;
    };
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(IP_B, IP_A, 64)
        .icmpv4_echo_reply(echo.id, echo.seq)
        .write(&mut out, icmp.payload())
        .ok()?;
    Some(out)
}

#[test]
fn unanswered_echo_requests_equal_the_injected_drops() {
    const REQUESTS: u16 = 140;
    let far = UdpSocket::bind("127.0.0.1:0").expect("binds");
    far.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("sets timeout");
    let every = |phase| Some(Every { every: 7, phase });
    let relay = Relay::start(
        far.local_addr().expect("bound"),
        Impairments {
            drop: every(2),
            duplicate: every(5),
            reorder: every(4),
        },
        |_| true,
    )
    .expect("relay starts");
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = far.recv_from(&mut buf) {
            if let Some(reply) = reply_to(&buf[..n]) {
                far.send_to(&reply, from).expect("answers");
            }
        }
    });
    let near = UdpSocket::bind("127.0.0.1:0").expect("binds");
    near.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("sets timeout");
    let replies = {
        let near = near.try_clone().expect("clones");
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 2048];
            while let Ok(n) = near.recv(&mut buf) {
                seen.push((Instant::now(), buf[..n].to_vec()));
            }
            seen
        })
    };
    let start = Instant::now();
    let mut frames = Vec::new();
    for seq in 0..REQUESTS {
        let f = request(seq);
        frames.push((Instant::now(), Direction::AToB, f.clone()));
        near.send_to(&f, relay.addr()).expect("sends");
        std::thread::sleep(Duration::from_micros(300));
    }
    frames.extend(
        replies
            .join()
            .expect("reader")
            .into_iter()
            .map(|(t, f)| (t, Direction::BToA, f)),
    );
    answering.join().expect("answerer");
    frames.sort_by_key(|(t, _, _)| *t);

    let mut meter = Meter::new(Config::new(Budget {
        host_mtu: Some(1500),
        path_mtu: 65535,
        outer: Outer::Ipv4,
    }));
    let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
    let last = frames.last().map(|(t, _, _)| ns(*t)).expect("frames");
    for (t, direction, frame) in &frames {
        meter.record(*direction, ns(*t), frame);
    }
    meter.expire(last + meter.config().grace_ns + 1);

    let dropped = relay.counts().dropped.load(Ordering::Relaxed);
    assert_eq!(dropped, 20);
    assert_eq!(
        meter.unanswered(Direction::AToB, Exchange::IcmpEcho),
        dropped
    );
    let rtt = meter.rtt(Exchange::IcmpEcho);
    assert_eq!(rtt.count, u64::from(REQUESTS) - dropped);
    assert_eq!(rtt.unanswered, dropped);
    assert!(rtt.p50.is_some_and(|ms| ms > 0.0));
    let flows = meter.lossy_flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].2.unanswered, dropped);
}
