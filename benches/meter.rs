//! Per-frame cost of the splice's measurements: `Meter::record` on typical frames.
//!
//! `cargo bench --bench meter` prints the time per frame (one iteration = one frame).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Direction, Meter};

const MAC_A: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x64, 1];
const MAC_B: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x66, 1];

fn meter() -> Meter {
    Meter::new(Config::new(Budget {
        host_mtu: Some(9000),
        path_mtu: 1500,
        outer: Outer::Ipv4,
    }))
}

fn udp(payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5000, 6000)
        .write(&mut f, &vec![0; payload])
        .expect("builds");
    f
}

/// A TCP data segment of 1448 bytes; its sequence number is at bytes 38..42.
fn tcp_segment() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1, 512)
        .ack(1)
        .write(&mut f, &[0; 1448])
        .expect("builds");
    f
}

fn echo(request: bool, seq: u16) -> Vec<u8> {
    let mut f = Vec::new();
    let (src, dst, sip, dip) = if request {
        (MAC_A, MAC_B, [10, 0, 0, 1], [10, 0, 0, 2])
    } else {
        (MAC_B, MAC_A, [10, 0, 0, 2], [10, 0, 0, 1])
    };
    let ip = PacketBuilder::ethernet2(src, dst).ipv4(sip, dip, 64);
    let step = if request {
        ip.icmpv4_echo_request(1, seq)
    } else {
        ip.icmpv4_echo_reply(1, seq)
    };
    step.write(&mut f, &[0; 56]).expect("builds");
    f
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("meter_record");
    group.throughput(Throughput::Elements(1));

    for (name, frame) in [
        ("udp_64B", udp(18)),
        ("udp_1514B", udp(1472)),
        ("raw_9014B", vec![0; 9014]),
    ] {
        let mut m = meter();
        let mut t = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                t += 1000;
                m.record(Direction::AToB, t, black_box(&frame));
            })
        });
    }

    // One flow, each segment with the next sequence range (no retransmission).
    let mut segment = tcp_segment();
    let mut m = meter();
    let (mut t, mut seq) = (0u64, 1u32);
    group.bench_function("tcp_1514B", |b| {
        b.iter(|| {
            t += 1000;
            seq = seq.wrapping_add(1448);
            segment[38..42].copy_from_slice(&seq.to_be_bytes());
            m.record(Direction::AToB, t, black_box(&segment));
        })
    });

    // Request and reply alternate: each iteration is one frame of an answered ping.
    let pairs: Vec<(Vec<u8>, Vec<u8>)> =
        (0..1024).map(|s| (echo(true, s), echo(false, s))).collect();
    let mut m = meter();
    let (mut t, mut i) = (0u64, 0usize);
    group.bench_function("icmp_echo_pair_per_frame", |b| {
        b.iter(|| {
            t += 1000;
            let (request, reply) = &pairs[(i / 2) % pairs.len()];
            if i % 2 == 0 {
                m.record(Direction::AToB, t, black_box(request));
            } else {
                m.record(Direction::BToA, t, black_box(reply));
            }
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
