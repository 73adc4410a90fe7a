//! Added latency of a relay-mode splice against GNS3 ubridge, in one run.
//!
//! `linkscope bench send` (10,000 frames/s of 64 bytes) against `linkscope bench reflect`,
//! three ways, in interleaved rounds: directly; through `linkscope splice --mode relay` (the
//! sender and the reflector send to the splice's ports; `-q --no-measure`); through ubridge
//! (`source_udp` / `destination_udp` between the same ends, the same topology). The added
//! round-trip time of a relay is the median over the rounds of its p50 (p99) minus that of
//! the direct path.
//!
//! ubridge is built from its public source for measurement only and found through
//! `LINKSCOPE_UBRIDGE=/path/to/ubridge`; without it its column is skipped with a note.
//! `LINKSCOPE_LANDED=/path/to/linkscope` adds the same splice run by an earlier build
//! (`landed splice`), to tell whether a change added latency.
//! `cargo bench --bench latency` runs five rounds of 3 s per path; `cargo test
//! --all-targets` runs one round of 0.3 s as a smoke test. `LATENCY_SECONDS` and
//! `LATENCY_ROUNDS` change those.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/harness.rs"]
mod harness;
use harness::ports::free_udp_port;
use harness::{Running, bench_send, env_number, listening, median, ubridge_ini};

const LINKSCOPE: &str = env!("CARGO_BIN_EXE_linkscope");

/// `linkscope bench reflect` on a port of its choosing; its address.
fn reflector() -> (Running, SocketAddr) {
    listening(
        Command::new(LINKSCOPE)
            .args(["bench", "reflect", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::null()),
    )
}

/// The relay between the sender at `a` and the reflector at `b`: where the sender sends.
fn relay(
    kind: &str,
    a: SocketAddr,
    b: SocketAddr,
    dir: &std::path::Path,
) -> Option<(Option<Running>, SocketAddr)> {
    let (port_a, port_b) = (free_udp_port(), free_udp_port());
    let target = SocketAddr::from(([127, 0, 0, 1], port_a));
    let relay = match kind {
        "direct" => return Some((None, b)),
        "splice" | "landed splice" => {
            let linkscope = match kind {
                "splice" => LINKSCOPE.to_owned(),
                _ => std::env::var("LINKSCOPE_LANDED").ok()?,
            };
            Running::quiet(
                Command::new(linkscope)
                    .args(["splice", "-q", "--no-measure", "--mode", "relay"])
                    .args(["--a", &a.to_string(), "--b", &b.to_string()])
                    .args(["--listen", &format!("127.0.0.1:{port_a},{port_b}")]),
            )
            .expect("linkscope splice")
        }
        "ubridge" => {
            let ubridge = std::env::var("LINKSCOPE_UBRIDGE").ok()?;
            let ini = dir.join(format!("ubridge-{port_a}.ini"));
            std::fs::write(&ini, ubridge_ini(port_a, a.port(), port_b, b.port())).unwrap();
            Running::quiet(Command::new(ubridge).arg("-f").arg(&ini)).ok()?
        }
        _ => unreachable!("a known path"),
    };
    // Both relays bind their ports within milliseconds; the sender's warm-up covers the rest.
    std::thread::sleep(Duration::from_millis(300));
    Some((Some(relay), target))
}

/// Round-trip p50 and p99 in µs, and the replies, of one `bench send` run.
fn round_trip(from: SocketAddr, to: SocketAddr, seconds: f64) -> (f64, f64, u64) {
    let (from, seconds) = (from.to_string(), seconds.to_string());
    let run = bench_send(
        to,
        &[
            ["--interval", "0"],
            ["--local", &from],
            ["--rate", "10000"],
            ["--size", "64"],
            ["--warmup", "0.3"],
            ["--duration", &seconds],
            ["--drain", "0.1"],
        ]
        .concat(),
    );
    let size = &run["sizes"][0];
    let rtt = &size["rtt_us"];
    (
        rtt["p50"].as_f64().expect("p50"),
        rtt["p99"].as_f64().expect("p99"),
        size["received"].as_u64().unwrap_or(0),
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = env_number::<f64>;
    let seconds = env("LATENCY_SECONDS").unwrap_or(if full { 3.0 } else { 0.3 });
    let rounds = env("LATENCY_ROUNDS").map_or(if full { 5 } else { 1 }, |r| r as usize);
    if std::env::var("LINKSCOPE_UBRIDGE").is_err() {
        println!("LINKSCOPE_UBRIDGE is not set: ubridge is skipped");
    }
    let dir = tempfile::tempdir().unwrap();
    let kinds = ["direct", "splice", "landed splice", "ubridge"];
    println!(
        "round trips: bench send ⇄ bench reflect, 10,000 frames/s of 64 B, {seconds} s per \
         path, {rounds} interleaved round(s)"
    );
    println!("| round | path | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs | replies |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let mut raw: Vec<Vec<(f64, f64)>> = vec![Vec::new(); kinds.len()];
    for round in 1..=rounds {
        let mut direct = None;
        for (k, kind) in kinds.iter().enumerate() {
            let (_reflector, b) = reflector();
            let a = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
            let Some((_relay, target)) = relay(kind, a, b, dir.path()) else {
                continue;
            };
            let (p50, p99, replies) = round_trip(a, target, seconds);
            let (d50, d99) = *direct.get_or_insert((p50, p99));
            raw[k].push((p50, p99));
            println!(
                "| {round} | {kind} | {p50:.1} | {p99:.1} | {:.1} | {:.1} | {replies} |",
                p50 - d50,
                p99 - d99
            );
        }
    }
    // Each path's median p50 and p99 over the rounds, minus the direct path's.
    let medians: Vec<Option<(f64, f64)>> = raw
        .iter()
        .map(|samples| {
            (!samples.is_empty()).then(|| {
                (
                    median(&samples.iter().map(|s| s.0).collect::<Vec<_>>()).expect("a round"),
                    median(&samples.iter().map(|s| s.1).collect::<Vec<_>>()).expect("a round"),
                )
            })
        })
        .collect();
    let Some((d50, d99)) = medians[0] else {
        return;
    };
    println!("direct: RTT p50 {d50:.1} µs, p99 {d99:.1} µs (median of {rounds} rounds)");
    for (kind, m) in kinds.iter().zip(&medians).skip(1) {
        if let Some((p50, p99)) = m {
            println!(
                "{kind}: RTT p50 {p50:.1} µs, p99 {p99:.1} µs; adds {:.1} µs at p50, {:.1} µs \
                 at p99 (medians of {rounds} rounds)",
                p50 - d50,
                p99 - d99
            );
        }
    }
}
