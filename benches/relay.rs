//! The relay harness: how many frames a relay in the middle of a QEMU UDP tunnel delivers,
//! and how much latency it adds.
//!
//! A generator (sendmmsg, as fast as it can) sends frames of 64, 512, 1500 and 9000 bytes to
//! a sink (recvmmsg) on loopback through (a) the direct path, (b) `linkscope splice` (steal
//! mode, measurements off: `--no-measure`), (c) `linkscope splice` with all its
//! measurements on (the default: meters, layer-2 view, status line every second), (d)
//! `linkscope splice -w FILE --no-measure` and (e) `linkscope splice -w FILE` (writing
//! pcapng, measurements off / on), (f) GNS3 ubridge (`source_udp`/`destination_udp`) and (g)
//! ubridge writing pcap (`pcap_file`), both found through `LINKSCOPE_UBRIDGE=/path` (built
//! from its public source for measurement only), the plain splice of an earlier build
//! (`landed splice`, a `linkscope` binary found through `LINKSCOPE_LANDED=/path`, e.g. built
//! from the main an issue measured, to tell whether a change made the splice slower), (h) `vde_plug udp:// udp://`, (i) `socat -u
//! UDP4-RECV UDP4-SENDTO`, one after the other in one run, and prints the delivered frames per second,
//! Gbit/s of frame bytes and the ratio to the direct path, and the ratios of measured to
//! unmeasured splices. Frames are IPv4/UDP, so the meter
//! parses them down to the transport header as it would real traffic. Then
//! a ping-pong at 10 000 exchanges per second measures the round trip direct and through the
//! splice; the difference is the latency the splice adds (both directions spliced).
//!
//! `cargo bench --bench relay` runs it in full (three interleaved rounds of 1 s per path and
//! size, the median shown; about two minutes); `cargo test --all-targets` runs it quickly
//! (64-byte frames, one round of 0.2 s) as a smoke test. `RELAY_SECONDS=N` changes the time
//! per measurement, `RELAY_SIZES=64,1500` and `RELAY_PATHS=direct,splice` choose the cells
//! (ratios need `direct`). Relays that are not installed are
//! skipped with a note.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

#[path = "support/harness.rs"]
mod harness;
use harness::ports::free_udp_port;
use harness::{
    Ends, Running, env_list, env_number, frame, interleaved_medians, splice, splice_by, throughput,
    ubridge_ini, until_relayed,
};

/// How long the sink waits for a frame before a read times out.
const SINK_TIMEOUT: Duration = Duration::from_millis(50);

/// A path under test: where the generator sends, and what runs in the middle.
struct Path {
    /// Where the generator sends.
    target: SocketAddr,
    _relay: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the relay of `kind` between the ends; `None` when it cannot run here.
fn path(kind: &str, ends: &Ends) -> Option<Path> {
    let (target, relay, dir) = match kind {
        "direct" => (ends.lb(), None, None),
        "splice" => (ends.lb(), Some(splice(ends, &["--no-measure"])), None),
        "landed splice" => {
            let landed = std::env::var("LINKSCOPE_LANDED").ok()?;
            let relay = splice_by(&landed, ends, &["--no-measure"]);
            (ends.lb(), Some(relay), None)
        }
        "splice +measure" => (ends.lb(), Some(splice(ends, &[])), None),
        "splice -w" | "splice -w --no-measure" => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("relay.pcapng");
            let mut args = vec!["-w", file.to_str().unwrap()];
            if kind.ends_with("--no-measure") {
                args.push("--no-measure");
            }
            let relay = splice(ends, &args);
            (ends.lb(), Some(relay), Some(dir))
        }
        "vde_plug" => {
            if !installed("vde_plug") {
                return None;
            }
            let (p1, p2) = (free_udp_port(), free_udp_port());
            let relay = Running::quiet(
                Command::new("vde_plug")
                    .arg(format!("udp://{p1}->127.0.0.1:{}", ends.la().port()))
                    .arg(format!("udp://{p2}->127.0.0.1:{}", ends.lb().port())),
            )
            .ok()?;
            (SocketAddr::from(([127, 0, 0, 1], p1)), Some(relay), None)
        }
        "ubridge" | "ubridge -w" => {
            let ubridge = std::env::var("LINKSCOPE_UBRIDGE").ok()?;
            let dir = tempfile::tempdir().unwrap();
            let (p1, p2) = (free_udp_port(), free_udp_port());
            let mut ini = ubridge_ini(p1, ends.la().port(), p2, ends.lb().port());
            if kind == "ubridge -w" {
                ini.push_str(&format!(
                    "pcap_file = {}\n",
                    dir.path().join("ubridge.pcap").display()
                ));
            }
            let file = dir.path().join("ubridge.ini");
            std::fs::write(&file, ini).unwrap();
            let relay = Running::quiet(Command::new(ubridge).arg("-f").arg(&file)).ok()?;
            (
                SocketAddr::from(([127, 0, 0, 1], p1)),
                Some(relay),
                Some(dir),
            )
        }
        "socat" => {
            if !installed("socat") {
                return None;
            }
            let p1 = free_udp_port();
            let relay = Running::quiet(
                Command::new("socat")
                    .args([
                        "-u",
                        &format!("UDP4-RECV:{p1},bind=127.0.0.1,rcvbuf=8388608"),
                    ])
                    .arg(format!("UDP4-SENDTO:127.0.0.1:{}", ends.lb().port())),
            )
            .ok()?;
            (SocketAddr::from(([127, 0, 0, 1], p1)), Some(relay), None)
        }
        _ => unreachable!("a known relay kind"),
    };
    let path = Path {
        target,
        _relay: relay,
        _dir: dir,
    };
    (kind == "direct" || until_relayed(ends, target, 64, Duration::from_millis(50))).then_some(path)
}

/// Round-trip times (ns) of `count` ping-pongs paced at 10 000 per second: A sends to
/// `target`, B echoes each frame back to A's address (through the same path).
fn round_trips(ends: &Ends, target: SocketAddr, back: SocketAddr, count: usize) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    // A waits for each reply as long as the sink waits for a frame.
    ends.a.set_read_timeout(Some(SINK_TIMEOUT)).unwrap();
    let reflector_socket = ends.b.try_clone().unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let flag = running.clone();
    let reflector = std::thread::spawn(move || {
        let mut buf = vec![0; 2048];
        while flag.load(Ordering::Relaxed) {
            if let Ok(n) = reflector_socket.recv(&mut buf) {
                let _ = reflector_socket.send_to(&buf[..n], back);
            }
        }
    });
    let data = frame(64);
    let mut buf = vec![0; 2048];
    let interval = Duration::from_micros(100);
    let mut next = Instant::now();
    for _ in 0..count {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += interval;
        let sent = Instant::now();
        ends.a.send_to(&data, target).unwrap();
        if ends.a.recv(&mut buf).is_ok() {
            histogram.record(sent.elapsed().as_nanos() as u64).unwrap();
        }
        next = next.max(Instant::now());
    }
    running.store(false, Ordering::Relaxed);
    reflector.join().unwrap();
    histogram
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs us without it.
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = env_number("RELAY_SECONDS").unwrap_or(if full { 1.0 } else { 0.2 });
    let time = Duration::from_secs_f64(seconds);
    let sizes = env_list("RELAY_SIZES").unwrap_or_else(|| {
        if full {
            vec![64, 512, 1500, 9000]
        } else {
            vec![64]
        }
    });
    let kinds: Vec<&str> = [
        "direct",
        "splice",
        "landed splice",
        "splice +measure",
        "splice -w --no-measure",
        "splice -w",
        "ubridge",
        "ubridge -w",
        "vde_plug",
        "socat",
    ]
    .into_iter()
    .filter(|k| std::env::var("RELAY_PATHS").map_or(true, |list| list.split(',').any(|p| p == *k)))
    .collect();

    let rounds = if full { 3 } else { 1 };
    println!(
        "relay harness: {seconds} s per measurement, {rounds} round(s) per cell (the median is \
         shown), {} core(s) available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| frame bytes | path | delivered pps | Gbit/s | ratio to direct |");
    println!("|---:|---|---:|---:|---:|");
    let mut overhead = Vec::new();
    for &len in &sizes {
        let medians = interleaved_medians(&kinds, rounds, |kind| {
            let ends = Ends::new(SINK_TIMEOUT);
            let path = path(kind, &ends)?;
            Some(throughput(&ends, path.target, len, time, 2))
        });
        for (kind, pps) in kinds.iter().zip(&medians) {
            match (pps, medians[0]) {
                (Some(pps), Some(direct)) if kinds[0] == "direct" => println!(
                    "| {len} | {kind} | {pps:.0} | {:.2} | {:.2} |",
                    pps * len as f64 * 8.0 / 1e9,
                    pps / direct
                ),
                _ => println!("| {len} | {kind} | skipped: not installed or not relaying | | |"),
            }
        }
        let of = |kind: &str| {
            let at = kinds.iter().position(|k| *k == kind)?;
            medians[at]
        };
        for (plain, measured) in [
            ("splice", "splice +measure"),
            ("splice -w --no-measure", "splice -w"),
        ] {
            if let (Some(p), Some(m)) = (of(plain), of(measured)) {
                overhead.push((len, measured, plain, m / p));
            }
        }
        // The targets: the plain splice against ubridge, and with -w against ubridge
        // writing pcap.
        for (ours, theirs) in [
            ("splice", "landed splice"),
            ("splice", "ubridge"),
            ("splice -w --no-measure", "ubridge -w"),
            ("splice -w", "ubridge -w"),
        ] {
            if let (Some(o), Some(t)) = (of(ours), of(theirs)) {
                overhead.push((len, ours, theirs, o / t));
            }
        }
    }
    for (len, measured, plain, ratio) in overhead {
        println!("{len}-byte frames: `{measured}` delivers {ratio:.2}x the pps of `{plain}`");
    }

    let count = if full { 20_000 } else { 500 };
    let ends = Ends::new(SINK_TIMEOUT);
    let direct = round_trips(&ends, ends.lb(), ends.la(), count);
    let _splice = path("splice", &ends).expect("the splice relays");
    let spliced = round_trips(&ends, ends.lb(), ends.la(), count);
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!();
    println!("ping-pong, 64-byte frames, 10 000 per second, {count} exchanges:");
    println!("| path | RTT p50 µs | RTT p99 µs | replies |");
    println!("|---|---:|---:|---:|");
    for (name, h) in [("direct", &direct), ("splice (both directions)", &spliced)] {
        println!(
            "| {name} | {:.1} | {:.1} | {} |",
            us(h, 0.5),
            us(h, 0.99),
            h.len()
        );
    }
    println!(
        "added by the splice per round trip: p50 {:.1} µs, p99 {:.1} µs",
        us(&spliced, 0.5) - us(&direct, 0.5),
        us(&spliced, 0.99) - us(&direct, 0.99)
    );
}
