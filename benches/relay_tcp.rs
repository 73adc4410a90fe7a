//! UDP → TCP → UDP: how many frames two relays deliver when they carry a QEMU UDP tunnel over
//! a TCP connection in QEMU's stream framing, linkscope against netrelay.
//!
//! An independent generator (sendmmsg, 64 frames a call, as fast as it can) sends to the
//! first relay's UDP port; a sink (recvmmsg) counts what the second relay delivers. Paths,
//! interleaved in every round so a burst of load elsewhere hits them all alike:
//! - `direct`: generator to sink, no relay;
//! - `linkscope`: `linkscope relay -q udp://P1->GEN tcp-listen://127.0.0.1:T` and
//!   `linkscope relay -q tcp://127.0.0.1:T udp://P2->SINK`, measuring every frame (the
//!   default);
//! - `linkscope --no-measure`: the same relays measuring nothing;
//! - `netrelay`: `netrelay -l T P1:127.0.0.1:GEN` and `netrelay 127.0.0.1:T
//!   P2:127.0.0.1:SINK` (TortugaLabs/netrelay, built from its public source for this
//!   benchmark only: `gcc -O2 -o netrelay netrelay.c -lpthread`; found through
//!   `LINKSCOPE_NETRELAY=/path/to/netrelay`, skipped with a note when that is not set).
//!
//! `cargo bench --bench relay_tcp` runs 64 and 1500-byte frames, five interleaved rounds of
//! 2 s per path (the median is shown, with every round); `cargo test --all-targets` runs one
//! short round of 64-byte frames as a smoke test. `RELAY_TCP_SECONDS`, `RELAY_TCP_ROUNDS`
//! and `RELAY_TCP_SIZES=64,1500` change that.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/harness.rs"]
mod harness;
use harness::ports::{free_tcp_port, free_udp_port};
use harness::{
    Ends, Running, connect_within, env_list, env_number, median, throughput, until_relayed,
};

/// Spawns a relay with no input and its output discarded.
fn spawn(command: &mut Command) -> Running {
    Running::quiet(command.stdin(Stdio::null())).unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// Whether the first relay's TCP port accepts connections within 20 s.
fn until_listening(port: u16) -> bool {
    connect_within(port, Duration::from_secs(20), Duration::from_millis(20)).is_some()
}

/// The relays of one path, and where the generator sends.
struct Path {
    target: SocketAddr,
    _relays: Vec<Running>,
}

fn path(kind: &str, ends: &Ends, netrelay: Option<&str>) -> Option<Path> {
    let (gen_port, sink_port) = (ends.la().port(), ends.lb().port());
    let (p1, p2, tcp) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let target = SocketAddr::from(([127, 0, 0, 1], p1));
    let relays = match kind {
        "direct" => {
            return Some(Path {
                target: ends.lb(),
                _relays: Vec::new(),
            });
        }
        "linkscope" | "linkscope --no-measure" => {
            let linkscope = || {
                let mut c = Command::new(env!("CARGO_BIN_EXE_linkscope"));
                c.args(["relay", "-q", "--stats-interval", "0"]);
                if kind.ends_with("--no-measure") {
                    c.arg("--no-measure");
                }
                c
            };
            let first = spawn(
                linkscope()
                    .arg(format!("udp://127.0.0.1:{p1}->127.0.0.1:{gen_port}"))
                    .arg(format!("tcp-listen://127.0.0.1:{tcp}")),
            );
            if !until_listening(tcp) {
                return None;
            }
            let second = spawn(
                linkscope()
                    .arg(format!("tcp://127.0.0.1:{tcp}"))
                    .arg(format!("udp://127.0.0.1:{p2}->127.0.0.1:{sink_port}")),
            );
            vec![first, second]
        }
        "netrelay" => {
            let netrelay = netrelay?;
            let first = spawn(Command::new(netrelay).args([
                "-l".to_string(),
                tcp.to_string(),
                format!("{p1}:127.0.0.1:{gen_port}"),
            ]));
            if !until_listening(tcp) {
                return None;
            }
            let second = spawn(Command::new(netrelay).args([
                format!("127.0.0.1:{tcp}"),
                format!("{p2}:127.0.0.1:{sink_port}"),
            ]));
            vec![first, second]
        }
        _ => unreachable!("a known path"),
    };
    until_relayed(ends, target, 64, Duration::from_millis(100)).then_some(Path {
        target,
        _relays: relays,
    })
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs us without it.
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = env_number("RELAY_TCP_SECONDS").unwrap_or(if full { 2.0 } else { 0.2 });
    let rounds: usize = env_number("RELAY_TCP_ROUNDS").unwrap_or(if full { 5 } else { 1 });
    let sizes =
        env_list("RELAY_TCP_SIZES").unwrap_or_else(|| if full { vec![64, 1500] } else { vec![64] });
    let netrelay = std::env::var("LINKSCOPE_NETRELAY").ok();
    if netrelay.is_none() {
        println!(
            "note: LINKSCOPE_NETRELAY is not set: the netrelay pair is skipped (build \
             TortugaLabs/netrelay with `gcc -O2 -o netrelay netrelay.c -lpthread` and point \
             LINKSCOPE_NETRELAY at it)"
        );
    }
    let kinds = ["direct", "linkscope", "linkscope --no-measure", "netrelay"];
    println!(
        "UDP → TCP → UDP through two relays: {seconds} s per measurement, {rounds} interleaved \
         round(s), {} core(s)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut table = Vec::new();
    for &len in &sizes {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
        for round in 1..=rounds {
            let mut line = format!("{len} B round {round}:");
            for (kind, cell) in kinds.iter().zip(&mut samples) {
                let ends = Ends::new(Duration::from_millis(50));
                match path(kind, &ends, netrelay.as_deref()) {
                    Some(p) => {
                        // Four idle reads: frames still in the relays' queues arrive late,
                        // within the time they were sent in.
                        let time = Duration::from_secs_f64(seconds);
                        let fps = throughput(&ends, p.target, len, time, 4);
                        line.push_str(&format!(" {kind} {fps:.0}"));
                        cell.push(fps);
                    }
                    None => line.push_str(&format!(" {kind} skipped")),
                }
            }
            println!("{line}");
        }
        table.push((len, samples.iter().map(|s| median(s)).collect::<Vec<_>>()));
    }
    println!();
    println!(
        "| frame bytes | direct fps | linkscope pair fps | linkscope --no-measure fps | \
         netrelay pair fps | linkscope / netrelay | --no-measure / netrelay | linkscope / direct |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cell = |v: Option<f64>| v.map_or("skipped".to_string(), |v| format!("{v:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".to_string(),
    };
    for (len, m) in table {
        println!(
            "| {len} | {} | {} | {} | {} | {} | {} | {} |",
            cell(m[0]),
            cell(m[1]),
            cell(m[2]),
            cell(m[3]),
            ratio(m[1], m[3]),
            ratio(m[2], m[3]),
            ratio(m[1], m[0])
        );
    }
}
