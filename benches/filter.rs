//! Cost per frame of a capture filter: linkscope's BPF interpreter (`capture::filter::Filter::
//! matches`) side by side with libpcap's own `pcap_offline_filter` running the same compiled
//! program, in one run, in interleaved rounds (the order alternating), as medians and their
//! ratio: `cargo bench --bench filter`. Needs libpcap (libpcap0.8); says so and measures
//! nothing without it.

use std::hint::black_box;
use std::time::Instant;

use linkscope::capture::filter::Filter;
use linkscope::net::sys::pcap::Libpcap;

#[path = "support/harness.rs"]
mod harness;
use harness::median;

const ROUNDS: usize = 15;
const CALLS: u32 = 200_000;

/// An Ethernet II IPv4/UDP frame (port 5353 → 53) of `len` bytes.
fn udp_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00];
    f.extend([
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([0x14, 0xe9, 0, 53, 0, 0, 0, 0]);
    f.resize(len, 0x5a);
    f
}

/// An 802.1D configuration BPDU (LLC), as a bridge sends it.
fn stp_frame() -> Vec<u8> {
    let mut f = vec![
        0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 0xa, 0, 38, 0x42, 0x42, 3,
    ];
    f.resize(60, 0);
    f
}

/// Nanoseconds per call of `f` over one round.
fn round(mut f: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

fn main() {
    // `cargo test --all-targets` runs benches once as tests (with --bench absent): skip.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let libpcap = match Libpcap::load() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("filter bench: skipped: libpcap does not load: {e}");
            return;
        }
    };
    println!(
        "{:<48} {:<8} {:>12} {:>12} {:>8}",
        "expression", "frame", "linkscope ns", "libpcap ns", "ratio"
    );
    for (expression, frames) in [
        (
            "not stp",
            [("udp1514", udp_frame(1514)), ("stp", stp_frame())],
        ),
        (
            "udp port 53 or tcp port 22 or (vlan and arp)",
            [("udp1514", udp_frame(1514)), ("udp64", udp_frame(64))],
        ),
    ] {
        let filter = Filter::compile(expression, 0).expect("compiles");
        for (name, frame) in &frames {
            let ours = || filter.matches(black_box(frame));
            let theirs = || {
                libpcap
                    .offline_filter(black_box(filter.program()), black_box(frame))
                    .expect("runs")
            };
            assert_eq!(ours(), theirs(), "the same verdict");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for r in 0..ROUNDS {
                if r % 2 == 0 {
                    a.push(round(ours));
                    b.push(round(theirs));
                } else {
                    b.push(round(theirs));
                    a.push(round(ours));
                }
            }
            let (a, b) = (median(&a).expect("a round"), median(&b).expect("a round"));
            println!(
                "{expression:<48} {name:<8} {a:>12.1} {b:>12.1} {:>8.2}",
                b / a
            );
        }
    }
    println!("(ratio: libpcap's time per frame / linkscope's; above 1, linkscope is faster)");
}
