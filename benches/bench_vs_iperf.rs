//! Side by side on loopback, in one run: `linkscope bench send` into `linkscope bench sink`
//! (with segmentation offload, the default, and with `--no-gso`) versus `iperf3 -u -b 0` at
//! 64, 512 and 1470 bytes (frames/s and Gbit/s received), and the reflector's round-trip p50
//! versus a plain UDP ping-pong (echo in a second process, as our reflector is, and echo
//! thread in-process) in 15 interleaved rounds of 600 round trips, median of the rounds.
//!
//! `cargo bench --bench bench_vs_iperf` measures (5 s per size, at full speed: `--rate max`
//! and `-b 0`); under `cargo test --all-targets` it runs each step for a fraction of a second
//! to prove the harness works. Prints a Markdown table. Without iperf3 installed its columns
//! are skipped.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;
use harness::ports::free_tcp_port;
use harness::{Running, bench_send, listening, median, spawn_announcing};

const LINKSCOPE: &str = env!("CARGO_BIN_EXE_linkscope");
const SIZES: [usize; 3] = [64, 512, 1470];

fn receiver(role: &str) -> (Running, SocketAddr) {
    listening(Command::new(LINKSCOPE).args(["bench", role, "--listen", "127.0.0.1:0"]))
}

/// (frames/s received, payload bit/s received); `extra` adds options to `send`.
fn ours(size: usize, seconds: f64, extra: &[&str]) -> (f64, f64) {
    let (_sink, addr) = receiver("sink");
    let size = size.to_string();
    let seconds = seconds.to_string();
    let mut args = vec![
        "--rate",
        "max",
        "--size",
        &size,
        "--duration",
        &seconds,
        "--interval",
        "0",
    ];
    args.extend(extra);
    let run = bench_send(addr, &args);
    let s = &run["sizes"][0];
    (
        s["pps"].as_f64().expect("pps"),
        s["payload_bits_per_second"].as_f64().expect("bps"),
    )
}

/// (frames/s received, payload bit/s received), or None without iperf3. `limit` is the
/// client's length option: `-t SECONDS` (whole seconds only) or `-k PACKETS`.
fn iperf3(size: usize, limit: [&str; 2]) -> Option<(f64, f64)> {
    Command::new("iperf3").arg("--version").output().ok()?;
    for _attempt in 0..5 {
        // iperf3 cannot be told to pick a port itself.
        let port = free_tcp_port().to_string();
        let mut server = Running(
            Command::new("iperf3")
                .args(["-s", "-1", "-p", &port])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?,
        );
        std::thread::sleep(Duration::from_millis(300));
        if server.0.try_wait().ok()?.is_some() {
            continue; // the port was taken after we released it: try another
        }
        let out = Command::new("iperf3")
            .args(["-c", "127.0.0.1", "-p", &port, "-u", "-b", "0", "-J"])
            .args(["-l", &size.to_string()])
            .args(limit)
            .output()
            .ok()?;
        let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
            continue;
        };
        let r = &v["end"]["sum_received"];
        let (Some(bytes), Some(secs)) = (r["bytes"].as_f64(), r["seconds"].as_f64()) else {
            continue;
        };
        return Some((bytes / size as f64 / secs, bytes * 8.0 / secs));
    }
    None
}

/// Round-trip p50 (µs) of `linkscope bench send` against `linkscope bench reflect`.
fn ours_rtt_p50(count: u64) -> f64 {
    let (_reflector, addr) = receiver("reflect");
    let run = bench_send(
        addr,
        &[
            "--rate",
            "1000",
            "--size",
            "64",
            "--count",
            &count.to_string(),
            "--interval",
            "0",
            "--drain",
            "0.05",
        ],
    );
    run["sizes"][0]["rtt_us"]["p50"].as_f64().expect("rtt p50")
}

/// The echo side of the ping-pong: answers every datagram until none came for 500 ms.
fn echo(socket: &UdpSocket) {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let _ = socket.send_to(&buf[..n], from);
    }
}

/// Round-trip p50 (µs) of a plain UDP ping-pong: a client sends one 64-byte datagram per ms
/// and waits for it to come back from `echo_addr`.
fn ping_pong_p50(echo_addr: SocketAddr, count: u64) -> f64 {
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..count {
        let start = Instant::now();
        client
            .send_to(&i.to_be_bytes().repeat(8), echo_addr)
            .expect("send");
        if client.recv_from(&mut buf).is_ok() {
            rtts.push(start.elapsed().as_secs_f64() * 1e6);
        }
        std::thread::sleep(Duration::from_millis(1).saturating_sub(start.elapsed()));
    }
    median(&rtts).expect("a reply")
}

/// Ping-pong against an echo thread of this process.
fn ping_pong_thread_p50(count: u64) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    let server = std::thread::spawn(move || echo(&socket));
    let p50 = ping_pong_p50(addr, count);
    server.join().expect("echo thread");
    p50
}

/// Ping-pong against an echo in a second process (this program re-run with `--echo`), as
/// our sender and reflector are two processes.
fn ping_pong_process_p50(count: u64) -> f64 {
    let (mut child, line) =
        spawn_announcing(Command::new(std::env::current_exe().expect("own path")).arg("--echo"));
    let addr = line.trim().parse().expect("echo address");
    let p50 = ping_pong_p50(addr, count);
    let _ = child.0.wait();
    p50
}

fn main() {
    if std::env::args().any(|a| a == "--echo") {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        println!("{}", socket.local_addr().expect("addr"));
        echo(&socket);
        return;
    }
    let measuring = std::env::args().any(|a| a == "--bench");
    let (seconds, pings) = if measuring { (5.0, 600) } else { (0.3, 100) };
    let iperf_limit = if measuring {
        ["-t", "5"]
    } else {
        ["-k", "2000"]
    };
    // The last two columns: our sender without segmentation offload (each frame its own
    // trip through the stack, batched only by sendmmsg), to show what GSO contributes.
    println!(
        "| size B | linkscope frames/s | iperf3 frames/s | ratio | linkscope Gbit/s | iperf3 Gbit/s | ratio | --no-gso frames/s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in SIZES {
        let (pps, bps) = ours(size, seconds, &[]);
        let (each, _) = ours(size, seconds, &["--no-gso"]);
        match iperf3(size, iperf_limit) {
            Some((ipps, ibps)) => println!(
                "| {size} | {pps:.0} | {ipps:.0} | {:.2} | {:.3} | {:.3} | {:.2} | {each:.0} | {:.2} |",
                pps / ipps,
                bps / 1e9,
                ibps / 1e9,
                bps / ibps,
                each / ipps
            ),
            None => println!(
                "| {size} | {pps:.0} | - | - | {:.3} | - | - | {each:.0} | - |",
                bps / 1e9
            ),
        }
    }
    // Round trips drift with the machine's state (CPU idle states, where the scheduler
    // wakes each side), so the three are measured in interleaved rounds and the median of
    // each one's p50s is compared.
    let n = if measuring { 15 } else { 1 };
    let mut rounds: [Vec<f64>; 3] = Default::default();
    for _ in 0..n {
        rounds[0].push(ours_rtt_p50(pings));
        rounds[1].push(ping_pong_process_p50(pings));
        rounds[2].push(ping_pong_thread_p50(pings));
    }
    println!();
    for (name, p50s) in [
        "linkscope reflect",
        "ping-pong, second process",
        "ping-pong, thread",
    ]
    .iter()
    .zip(&rounds)
    {
        let list: Vec<String> = p50s.iter().map(|p| format!("{p:.1}")).collect();
        println!("RTT p50 per round, {name}: {} us", list.join(", "));
    }
    let [ours, process, thread] = rounds.map(|p50s| median(&p50s).expect("a round"));
    println!(
        "RTT p50 on loopback, 64 B, median of {n} rounds: linkscope reflect {ours:.1} us; plain UDP ping-pong: echo in a second process {process:.1} us ({:+.0} %), echo thread in-process {thread:.1} us ({:+.0} %)",
        (ours / process - 1.0) * 100.0,
        (ours / thread - 1.0) * 100.0
    );
}
