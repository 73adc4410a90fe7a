//! The scale harness: one `linkscope splice` process for a whole lab.
//!
//! For 10, 100 and 1,000 links: 2 × N emulated QEMU tunnel ends in this process (UDP sockets
//! on 127.0.0.1 with SO_REUSEADDR, as QEMU binds them), each sending 10 frames/s to its peer,
//! read back through epoll and `recvmmsg` so the generator is not the bottleneck; a mapping
//! with the N links in a temporary directory; then the real binary,
//! `linkscope splice --mapping M --link L1 … --link LN -q --no-measure`. Measured:
//!
//! - start: from spawning the process until every link has carried a frame through the
//!   splice in both directions (a frame whose source is not the peer's own address); the
//!   resolution is the 100 ms between two frames of an end;
//! - threads (`Threads:` of /proc/PID/status) and RSS (`VmRSS:`) under load;
//! - CPU (utime + stime of /proc/PID/stat over a window) under load and with no traffic;
//! - every frame sent, delivered (through the splice or, before it took over, directly);
//! - stop (SIGTERM): every tunnel is handed back, the ends then reach each other directly.
//!
//! `cargo bench --bench scale` runs 10, 100 and 1,000 links with 5 s windows (about a
//! minute); `cargo test --all-targets` runs 10 links with short windows as a smoke test.
//! `SCALE_LINKS=10,100` chooses the sizes, `SCALE_WORKERS=N` passes `--workers N`.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linkscope::net::batch::RecvBatch;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

/// Frames per second each end sends.
const RATE: u32 = 10;

#[path = "support/harness.rs"]
mod harness;
use harness::{Running, env_list, lab_mapping, nonblocking_end, proc_status};

/// What one end saw.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    sent: u64,
    through_splice: u64,
    direct: u64,
    first_spliced: Option<Instant>,
}

/// The emulated lab: ends 2i (A) and 2i+1 (B) are link i.
struct Lab {
    ends: Vec<UdpSocket>,
    addrs: Vec<SocketAddr>,
    seen: Vec<Seen>,
    poll: Poll,
    events: Events,
    batch: RecvBatch,
    tick: u64,
    next_tick: Instant,
}

/// Milliseconds between two sending ticks; each tick one tenth of the ends send.
const TICK: Duration = Duration::from_millis(10);

impl Lab {
    fn new(links: usize) -> Lab {
        let ends: Vec<UdpSocket> = (0..2 * links).map(|_| nonblocking_end()).collect();
        let addrs = ends.iter().map(|s| s.local_addr().unwrap()).collect();
        let poll = Poll::new().unwrap();
        for (i, socket) in ends.iter().enumerate() {
            poll.registry()
                .register(
                    &mut SourceFd(&socket.as_raw_fd()),
                    Token(i),
                    Interest::READABLE,
                )
                .unwrap();
        }
        Lab {
            seen: vec![Seen::default(); ends.len()],
            ends,
            addrs,
            poll,
            events: Events::with_capacity(1024),
            batch: RecvBatch::new(64, 2048),
            tick: 0,
            next_tick: Instant::now(),
        }
    }

    fn links(&self) -> usize {
        self.ends.len() / 2
    }

    fn peer(end: usize) -> usize {
        end ^ 1
    }

    /// The mapping of the lab: link i joins VM 1000+i eth1 and VM 3000+i eth1, on the ends'
    /// ports.
    fn mapping(&self) -> String {
        lab_mapping(&self.addrs)
    }

    fn link_names(&self) -> Vec<String> {
        (0..self.links())
            .map(|i| format!("{}:1-{}:1", 1000 + i, 3000 + i))
            .collect()
    }

    /// Receives and (when `sending`) sends until `until` or until `done` holds.
    fn pump(&mut self, until: Instant, sending: bool, done: impl Fn(&Lab) -> bool) {
        let frame = |from: usize| {
            let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45];
            f.extend_from_slice(&(from as u32).to_be_bytes());
            f.resize(64, 0);
            f
        };
        loop {
            let now = Instant::now();
            if now >= until || done(self) {
                return;
            }
            if sending && now >= self.next_tick {
                let slice = (self.tick % 10) as usize;
                for end in (slice..self.ends.len()).step_by(10) {
                    let to = self.addrs[Lab::peer(end)];
                    if self.ends[end].send_to(&frame(end), to).is_ok() {
                        self.seen[end].sent += 1;
                    }
                }
                self.tick += 1;
                self.next_tick += TICK;
            }
            let wait = if sending {
                self.next_tick.min(until)
            } else {
                until
            }
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
            self.poll.poll(&mut self.events, Some(wait)).unwrap();
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for end in ready {
                self.drain(end);
            }
        }
    }

    fn drain(&mut self, end: usize) {
        let peer = self.addrs[Lab::peer(end)];
        while let Ok(n) = self.batch.try_recv(&self.ends[end]) {
            let now = Instant::now();
            let seen = &mut self.seen[end];
            for (_, meta) in self.batch.iter() {
                if meta.source == Some(peer) {
                    seen.direct += 1;
                } else {
                    seen.through_splice += 1;
                    seen.first_spliced.get_or_insert(now);
                }
            }
            if n < self.batch.capacity() {
                break;
            }
        }
    }

    fn all_spliced(&self) -> bool {
        self.seen.iter().all(|s| s.first_spliced.is_some())
    }

    fn totals(&self) -> (u64, u64, u64) {
        self.seen.iter().fold((0, 0, 0), |(s, t, d), e| {
            (s + e.sent, t + e.through_splice, d + e.direct)
        })
    }
}

/// Datagrams dropped for lack of receive buffer space by the UDP sockets of this network
/// namespace bound to one of `ports` (the ends' and the splice's steal sockets), from the
/// `drops` column of /proc/net/udp.
fn receive_drops(ports: &std::collections::HashSet<u16>) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            let drops: u64 = fields.last()?.parse().ok()?;
            ports.contains(&port).then_some(drops)
        })
        .sum()
}

/// CPU time (user + system) of a process in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields; rest starts at the 3rd.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

/// The CPU share of one core the process used over `window` while the lab pumps.
fn cpu_share(lab: &mut Lab, pid: u32, window: Duration, sending: bool) -> f64 {
    let before = cpu_seconds(pid);
    let start = Instant::now();
    lab.pump(start + window, sending, |_| false);
    (cpu_seconds(pid) - before) / start.elapsed().as_secs_f64()
}

struct Row {
    links: usize,
    workers: String,
    threads: u64,
    rss_mb: f64,
    cpu_load: f64,
    cpu_idle: f64,
    start_ms: Option<f64>,
    sent: u64,
    delivered: u64,
    through_splice: u64,
    handed_back: usize,
    stop_ms: f64,
    /// The splice's summary lines of directions that dropped something.
    dropped: Vec<String>,
}

fn run(links: usize, workers: Option<&str>, window: Duration) -> Row {
    let mut lab = Lab::new(links);
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(&mapping, lab.mapping()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkscope"));
    command
        .args(["splice", "-q", "--no-measure", "--mapping"])
        .arg(&mapping);
    for name in lab.link_names() {
        command.args(["--link", &name]);
    }
    if let Some(n) = workers {
        command.args(["--workers", n]);
    }
    // Traffic flows directly before the splice starts, as in a running lab.
    lab.pump(Instant::now() + Duration::from_millis(300), true, |_| false);
    let spawned = Instant::now();
    let log = dir.path().join("splice.err");
    let mut splice = Running(
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("linkscope"),
    );
    let pid = splice.0.id();
    lab.pump(spawned + Duration::from_secs(30), true, Lab::all_spliced);
    let start_ms = lab.all_spliced().then(|| {
        let last = lab.seen.iter().filter_map(|s| s.first_spliced).max();
        last.map_or(0.0, |t| (t - spawned).as_secs_f64() * 1e3)
    });
    // Settle, then measure under load.
    lab.pump(Instant::now() + window / 5, true, |_| false);
    let cpu_load = cpu_share(&mut lab, pid, window, true);
    let threads = proc_status(pid, "Threads:").unwrap();
    let rss_mb = proc_status(pid, "VmRSS:").unwrap() as f64 / 1024.0;
    // No traffic: let the last frames arrive, then measure idle.
    lab.pump(Instant::now() + Duration::from_millis(500), false, |_| {
        false
    });
    let cpu_idle = cpu_share(&mut lab, pid, window, false);
    let (sent, through_splice, direct) = lab.totals();
    let ports = lab.addrs.iter().map(SocketAddr::port).collect();
    let drops = receive_drops(&ports);

    // Stop: SIGTERM, as a user's Ctrl-C or a service manager would.
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let _ = splice.0.wait();
    let stop_ms = stopping.elapsed().as_secs_f64() * 1e3;
    let before: Vec<u64> = lab.seen.iter().map(|s| s.direct).collect();
    // Each end sends once more; every one must arrive straight from its peer.
    lab.tick = 0;
    lab.next_tick = Instant::now();
    lab.pump(Instant::now() + Duration::from_millis(150), true, |_| false);
    lab.pump(Instant::now() + Duration::from_millis(300), false, |_| {
        false
    });
    let late = lab.totals().1 - through_splice;
    let handed_back = lab
        .seen
        .iter()
        .zip(&before)
        .filter(|(s, b)| s.direct > **b)
        .count()
        / 2;
    drop(splice);
    // The splice's summary, one line per direction: those that dropped anything.
    let mut dropped: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("dropped: ") && !l.contains("dropped: 0 zero-length, 0 foreign source, 0 truncated, 0 unsent, 0 by the kernel; copies dropped: 0"))
        .map(str::to_owned)
        .collect();
    if drops > 0 {
        dropped.push(format!(
            "{drops} datagrams dropped by full receive queues of sockets on the ends' ports"
        ));
    }
    if late > 0 {
        dropped.push(format!(
            "{late} frames came through the splice only once it stopped (held until then)"
        ));
    }
    Row {
        links,
        workers: workers.map_or_else(|| "default".into(), str::to_owned),
        threads,
        rss_mb,
        cpu_load: cpu_load * 100.0,
        cpu_idle: cpu_idle * 100.0,
        start_ms,
        sent,
        delivered: through_splice + direct,
        through_splice,
        handed_back,
        stop_ms,
        dropped,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = env_list("SCALE_LINKS")
        .unwrap_or_else(|| if full { vec![10, 100, 1000] } else { vec![10] });
    let workers = std::env::var("SCALE_WORKERS").ok();
    let window = if full {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    };
    println!(
        "scale harness: {RATE} frames/s per end, 64-byte frames, `linkscope splice -q \
         --no-measure`, {} s windows, {} core(s)",
        window.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| links | --workers | threads | RSS MB | CPU % loaded | CPU % idle | start ms | \
         frames sent | delivered | via splice | handed back | stop ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut failures = Vec::new();
    for links in sizes {
        let row = run(links, workers.as_deref(), window);
        println!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {}/{} | {:.0} |",
            row.links,
            row.workers,
            row.threads,
            row.rss_mb,
            row.cpu_load,
            row.cpu_idle,
            row.start_ms
                .map_or_else(|| "never".into(), |ms| format!("{ms:.0}")),
            row.sent,
            row.delivered,
            row.through_splice,
            row.handed_back,
            row.links,
            row.stop_ms
        );
        for line in &row.dropped {
            println!("  {line}");
        }
        if row.delivered != row.sent {
            failures.push(format!(
                "{links} links: {} of {} frames delivered",
                row.delivered, row.sent
            ));
        }
        if row.start_ms.is_none() {
            failures.push(format!("{links} links: not every link was spliced"));
        }
        if row.handed_back != row.links {
            failures.push(format!(
                "{links} links: {} of {} tunnels handed back",
                row.handed_back, row.links
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
