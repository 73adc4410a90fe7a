//! The Meter on real traffic: busybox `ping` between two network namespaces, the far kernel
//! answering ARP and echo requests, captured by tcpdump on the near side (where a splice
//! would sit). The Meter must pair every echo and ARP exchange, find RTTs within what ping
//! itself measured, and count the ARP requests for an absent host as unanswered.
//!
//! Needs root, `ip`, `tcpdump` and `busybox`; skips with a reason otherwise and fails with
//! LINKSCOPE_REQUIRE_LAB=1. The namespaces and tcpdump are the lab's (tests/lab/).

mod lab;

use lab::capture::Tcpdump;
use lab::netns::{self, Netns};
use lab::prereq::{self, Need};
use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Direction, Exchange, Meter};
use pcap_file::pcap::PcapReader;

/// (min, max) round trip in ms from busybox ping's summary line.
fn ping_range(output: &str) -> (f64, f64) {
    let line = output
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no summary in {output}"));
    let values: Vec<f64> = line
        .rsplit('=')
        .next()
        .expect("values")
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    (values[0], values[2])
}

#[test]
fn busybox_ping_through_the_kernel_is_paired_and_an_absent_host_is_unanswered() {
    if !prereq::ready(
        "busybox_ping_through_the_kernel_is_paired_and_an_absent_host_is_unanswered",
        &[Need::Root, Need::Iproute, Need::Tcpdump, Need::Busybox],
    ) {
        return;
    }
    // Namespaces `near` (10.9.0.1) and `far` (10.9.0.2) on a veth pair; removed on drop.
    let near = Netns::new().expect("namespace near");
    let far = Netns::new().expect("namespace far");
    netns::veth(&near, "10.9.0.1/24", &far, "10.9.0.2/24", "v0", 1500).expect("veth");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("near.pcap");
    let tcpdump = Tcpdump::start(Some(&near), "v0", "", &file).expect("tcpdump listens on v0");
    let ping = |target: &str| {
        near.command("busybox")
            .args(["ping", "-c", "10", "-i", "0.1", "-W", "1", target])
            .output()
            .expect("runs busybox ping")
    };
    let answered = ping("10.9.0.2");
    assert!(answered.status.success());
    let (min_ms, max_ms) = ping_range(&String::from_utf8_lossy(&answered.stdout));
    // Nobody has 10.9.0.99: the near kernel asks by ARP and never sends an echo request.
    let absent = ping("10.9.0.99");
    assert!(!absent.status.success());
    tcpdump.stop().expect("tcpdump stops");

    let mut reader =
        PcapReader::new(std::fs::File::open(&file).expect("capture")).expect("a pcap file");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a packet");
        frames.push((packet.timestamp().as_nanos() as u64, packet.data().to_vec()));
    }
    // The near side's MAC is the source of the first frame (its ARP request or echo).
    let near_mac = frames.first().expect("frames captured").1[6..12].to_vec();
    let arp_requests_for_absent = frames
        .iter()
        .filter(|(_, f)| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[38..42] == [10, 9, 0, 99])
        .count() as u64;
    assert!(arp_requests_for_absent >= 1);

    let mut meter = Meter::new(Config::new(Budget {
        host_mtu: None,
        path_mtu: 1500,
        outer: Outer::Ipv4,
    }));
    for (t, frame) in &frames {
        let direction = if frame[6..12] == near_mac[..] {
            Direction::AToB
        } else {
            Direction::BToA
        };
        meter.record(direction, *t, frame);
    }
    meter.expire(u64::MAX);

    let echo = meter.rtt(Exchange::IcmpEcho);
    assert_eq!((echo.count, echo.unanswered), (10, 0), "{echo:?}");
    // Seen at the near interface, the round trip is at most what ping measures in user space.
    let max = echo.max.expect("a maximum");
    assert!(max <= max_ms + 0.001, "{echo:?} vs ping {min_ms}..{max_ms}");
    assert!(
        echo.p50
            .is_some_and(|p50| p50 > 0.0 && p50 <= max_ms + 0.001)
    );
    assert_eq!(
        meter.unanswered(Direction::AToB, Exchange::Arp),
        arp_requests_for_absent,
        "ARP requests for 10.9.0.99"
    );
    assert!(
        meter.rtt(Exchange::Arp).count >= 1,
        "the far kernel answered ARP"
    );
}
