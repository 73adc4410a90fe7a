//! Throughput and lateness under delay: does a 1 ms delay keep the link's throughput?
//!
//! An independent generator (sendmmsg, as fast as it can, 1500-byte IPv4/UDP frames) sends
//! to a sink (recvmmsg with kernel receive timestamps) on loopback through (a) the direct
//! path, (b) `linkscope splice` (steal mode, `--no-measure`), (c) the same splice with
//! `--impair delay=1ms`, (d) GNS3 ubridge and (e) ubridge with its delay filter
//! (`bridge add_packet_filter br0 f1 delay 1`, through its hypervisor interface), found
//! through `LINKSCOPE_UBRIDGE=/path` (built from its public source for measurement only;
//! skipped with a note when unset). Rounds interleave the paths; the median is shown with
//! the ratio of each delayed path to its own undelayed throughput.
//!
//! Then the lateness: the generator paces frames at 5 000 per second (well below every
//! path's capacity, so no queue builds in a socket buffer), each carrying its send time;
//! the sink subtracts it from the kernel's receive time. Shown at p50 and p99 for each path,
//! and for the delayed paths minus the undelayed p50 (what the delay added).
//!
//! `cargo bench --bench impair` runs it in full (three rounds of 1 s); `cargo test
//! --all-targets` runs it quickly (one round of 0.2 s) as a smoke test. `IMPAIR_SECONDS=N`
//! changes the time per measurement.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use linkscope::net::batch::RecvBatch;

#[path = "support/harness.rs"]
mod harness;
use harness::ports::{free_tcp_port, free_udp_port};
use harness::{
    BATCH, Ends, Running, connect_within, env_number, frame, interleaved_medians, splice,
    throughput, until_relayed,
};

/// The length of every frame.
const LEN: usize = 1500;

/// How long the sink waits for a frame before a read times out.
const SINK_TIMEOUT: Duration = Duration::from_millis(200);

/// Where the send time sits in a frame (the UDP payload's first 8 bytes).
const STAMP: std::ops::Range<usize> = 42..50;

/// A path under test: where the generator sends and what runs in the middle.
struct Path {
    target: SocketAddr,
    _relay: Option<Running>,
    _control: Option<TcpStream>,
}

/// ubridge in hypervisor mode: a bridge of two UDP NIOs, with a delay filter of `delay_ms`.
fn ubridge(ends: &Ends, delay_ms: Option<u32>) -> Option<Path> {
    let binary = std::env::var("LINKSCOPE_UBRIDGE").ok()?;
    let port = free_tcp_port();
    let relay =
        Running::quiet(Command::new(binary).args(["-H", &format!("127.0.0.1:{port}")])).ok()?;
    let control = connect_within(port, Duration::from_secs(10), Duration::from_millis(50))?;
    let (p1, p2) = (free_udp_port(), free_udp_port());
    let mut commands = vec![
        "bridge create br0".to_string(),
        format!("bridge add_nio_udp br0 {p1} 127.0.0.1 {}", ends.la().port()),
        format!("bridge add_nio_udp br0 {p2} 127.0.0.1 {}", ends.lb().port()),
    ];
    if let Some(ms) = delay_ms {
        commands.push(format!("bridge add_packet_filter br0 f1 delay {ms}"));
    }
    commands.push("bridge start br0".into());
    let mut reader = BufReader::new(control.try_clone().ok()?);
    let mut writer = control.try_clone().ok()?;
    for command in commands {
        writeln!(writer, "{command}").ok()?;
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if !line.starts_with("100") {
            eprintln!("ubridge refused {command:?}: {line}");
            return None;
        }
    }
    Some(Path {
        target: SocketAddr::from(([127, 0, 0, 1], p1)),
        _relay: Some(relay),
        _control: Some(control),
    })
}

/// Starts the path of `kind`; `None` when it cannot run here.
fn path(kind: &str, ends: &Ends) -> Option<Path> {
    let path = match kind {
        "direct" => Path {
            target: ends.lb(),
            _relay: None,
            _control: None,
        },
        "splice" => Path {
            target: ends.lb(),
            _relay: Some(splice(ends, &["--no-measure"])),
            _control: None,
        },
        "splice delay=1ms" => Path {
            target: ends.lb(),
            _relay: Some(splice(ends, &["--no-measure", "--impair", "delay=1ms"])),
            _control: None,
        },
        "ubridge" => ubridge(ends, None)?,
        "ubridge delay 1" => ubridge(ends, Some(1))?,
        _ => unreachable!("a known path"),
    };
    (kind == "direct" || until_relayed(ends, path.target, LEN, Duration::from_millis(100)))
        .then_some(path)
}

/// Lateness (receive time minus send time, ns) of frames paced at `pps` for `time`.
fn lateness(ends: &Ends, target: SocketAddr, pps: u64, time: Duration) -> Histogram<u64> {
    let sending = Arc::new(AtomicBool::new(true));
    let sink = ends.b.try_clone().unwrap();
    let flag = sending.clone();
    let counter = std::thread::spawn(move || {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut batch = RecvBatch::new(BATCH, LEN + 1);
        let mut idle = 0;
        while flag.load(Ordering::Relaxed) || idle < 3 {
            match batch.recv(&sink) {
                Ok(_) => {
                    idle = 0;
                    for (data, meta) in batch.iter() {
                        if data.len() >= STAMP.end && meta.timestamp_ns > 0 {
                            let sent = u64::from_be_bytes(data[STAMP].try_into().unwrap());
                            if sent > 0 && meta.timestamp_ns > sent {
                                let _ = histogram.record(meta.timestamp_ns - sent);
                            }
                        }
                    }
                }
                Err(_) => idle += 1,
            }
        }
        histogram
    });
    let mut data = frame(LEN);
    let interval = Duration::from_nanos(1_000_000_000 / pps);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < time {
        // Sleep most of the interval and spin the rest: a generator spinning a whole core
        // would starve the path under test on a two-core machine.
        let wait = next.saturating_duration_since(Instant::now());
        if wait > Duration::from_micros(150) {
            std::thread::sleep(wait - Duration::from_micros(100));
        }
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += interval;
        data[STAMP].copy_from_slice(&linkscope::clock::now_ns().to_be_bytes());
        let _ = ends.a.send_to(&data, target);
    }
    sending.store(false, Ordering::Relaxed);
    counter.join().unwrap()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = env_number("IMPAIR_SECONDS").unwrap_or(if full { 1.0 } else { 0.2 });
    let time = Duration::from_secs_f64(seconds);
    let rounds = if full { 3 } else { 1 };
    let kinds = [
        "direct",
        "splice",
        "splice delay=1ms",
        "ubridge",
        "ubridge delay 1",
    ];
    if std::env::var_os("LINKSCOPE_UBRIDGE").is_none() {
        println!("LINKSCOPE_UBRIDGE is not set: the ubridge paths are skipped");
    }
    println!(
        "impairment harness: {LEN}-byte frames, {seconds} s per measurement, {rounds} \
         round(s) (median shown), {} core(s)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let medians = interleaved_medians(&kinds, rounds, |kind| {
        let ends = Ends::new(SINK_TIMEOUT);
        let path = path(kind, &ends)?;
        Some(throughput(&ends, path.target, LEN, time, 2))
    });
    println!("| path | delivered pps | Gbit/s | ratio to its undelayed path |");
    println!("|---|---:|---:|---:|");
    for (kind, pps) in kinds.iter().zip(&medians) {
        let Some(pps) = pps else {
            println!("| {kind} | skipped | | |");
            continue;
        };
        let base = match *kind {
            "splice delay=1ms" => medians[1],
            "ubridge delay 1" => medians[3],
            _ => None,
        };
        let ratio = base.map_or(String::new(), |b| format!("{:.3}", pps / b));
        println!(
            "| {kind} | {pps:.0} | {:.2} | {ratio} |",
            pps * LEN as f64 * 8.0 / 1e9
        );
    }

    let pps = 5_000;
    println!();
    println!("lateness (kernel receive time − send time), {pps} frames/s paced, {seconds} s:");
    println!("| path | p50 µs | p99 µs | frames | p50 minus undelayed p50 µs |");
    println!("|---|---:|---:|---:|---:|");
    let mut p50s: Vec<Option<f64>> = Vec::new();
    for kind in kinds {
        let ends = Ends::new(SINK_TIMEOUT);
        let Some(path) = path(kind, &ends) else {
            println!("| {kind} | skipped | | | |");
            p50s.push(None);
            continue;
        };
        let h = lateness(&ends, path.target, pps, time);
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let base = match kind {
            "splice delay=1ms" => p50s[1],
            "ubridge delay 1" => p50s[3],
            _ => None,
        };
        let added = base.map_or(String::new(), |b| format!("{:.1}", us(0.5) - b));
        println!(
            "| {kind} | {:.1} | {:.1} | {} | {added} |",
            us(0.5),
            us(0.99),
            h.len()
        );
        p50s.push(Some(us(0.5)));
    }
}
