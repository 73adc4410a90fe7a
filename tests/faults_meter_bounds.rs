//! What traffic can make a splice's meter hold: a forged flood of every kind the meter keeps
//! state for (distinct ICMP echo requests, echo replies that answer nothing, ARP requests,
//! TCP SYNs, TCP flows with retransmissions) fills each table to its cap and no further;
//! what is not tracked is counted. The heap the meter holds is measured with an instrumented
//! allocator and must stay under the bound docs/faults.md states (24 MiB per link).

use std::alloc::System;

use etherparse::PacketBuilder;
use linkscope::direction::Direction;
use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Meter};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
const B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

/// The bound docs/faults.md states for one link's meter.
const BOUND: usize = 24 << 20;

fn ip(i: u32) -> [u8; 4] {
    (0x0a00_0000 | (i & 0x00ff_ffff)).to_be_bytes()
}

fn echo(i: u32, request: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let builder = PacketBuilder::ethernet2(A, B).ipv4(ip(i), ip(i + 1), 64);
    let builder = if request {
        builder.icmpv4_echo_request((i >> 16) as u16, i as u16)
    } else {
        builder.icmpv4_echo_reply((i >> 16) as u16, i as u16)
    };
    builder.write(&mut f, &[0; 8]).unwrap();
    f
}

fn arp(i: u32) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&A);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&A);
    f.extend_from_slice(&ip(i));
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip(i + 1));
    f
}

fn tcp(i: u32, syn: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let builder = PacketBuilder::ethernet2(A, B)
        .ipv4(ip(i), ip(i + 1), 64)
        .tcp((i >> 8) as u16, 80, 1000, 1000);
    let builder = if syn { builder.syn() } else { builder };
    builder.write(&mut f, &[0; 10]).unwrap();
    f
}

#[test]
fn a_forged_flood_fills_the_meter_to_its_caps_and_no_further() {
    let config = Config::new(Budget {
        host_mtu: Some(1500),
        path_mtu: 1500,
        outer: Outer::Ipv4,
    });
    let cap = config.max_pending;
    let flood = u32::try_from(cap * 2).unwrap();
    let region = Region::new(GLOBAL);
    let mut meter = Meter::new(config);
    for i in 0..flood {
        meter.record(Direction::AToB, 1, &echo(i, true));
        meter.record(Direction::AToB, 1, &echo(i | 1 << 23, false));
        meter.record(Direction::AToB, 1, &arp(i));
        meter.record(Direction::AToB, 1, &tcp(i, true));
        // Sent twice: a retransmission, so the flow is listed among the lossy ones.
        let segment = tcp(i | 1 << 22, false);
        meter.record(Direction::AToB, 1, &segment);
        meter.record(Direction::AToB, 2, &segment);
    }
    let change = region.change();
    let held = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated)
        + change.bytes_reallocated.max(0) as usize;
    eprintln!(
        "meter: {} MiB held after {} forged frames; {} pending, {} untracked",
        held >> 20,
        flood * 6,
        meter.pending(),
        meter.untracked()
    );
    assert!(
        meter.pending() <= 3 * cap,
        "pending: {} over 3 tables of {cap}",
        meter.pending()
    );
    assert!(meter.untracked() > 0, "what is not tracked is counted");
    assert!(
        meter.lossy_flows().len() <= config.max_flows,
        "lossy flows: {}",
        meter.lossy_flows().len()
    );
    assert!(held < BOUND, "the meter holds {} MiB", held >> 20);
}
