//! The parts the benchmark harnesses share, each written once:
//! - processes: a child killed on drop, a server that announces its address, the wait for a
//!   TCP listener, a `linkscope splice` between two ends, a `linkscope bench send` run,
//!   ubridge's configuration between two ends, a process's /proc status;
//! - loopback: free UDP and TCP ports, the tunnel ends of a generator and a sink, the
//!   emulated ends of a lab and its mapping;
//! - measuring: IPv4/UDP frames, the wait until a relay in the middle relays, the
//!   throughput of a path, the median of each path's interleaved rounds;
//! - the numbers and lists a bench reads from its environment variables.
//!
//! A bench includes it with `#[path = "support/harness.rs"] mod harness;`; each uses a part.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use linkscope::net::batch::{MAX_DATAGRAM, RecvBatch, SendBatch, enable_receive_metadata};
use linkscope::net::tunnel;

// The tests' emulated QEMU tunnel end.
#[path = "../../tests/support/tunnel.rs"]
mod emulated;

// The tests' free loopback ports.
#[path = "../../tests/support/ports.rs"]
pub mod ports;

/// Frames per `sendmmsg` / `recvmmsg` call of the generator and the sink.
pub const BATCH: usize = 64;

/// A child process killed and reaped when dropped.
pub struct Running(pub Child);

impl Running {
    /// Spawns `command` with its stdout and stderr discarded.
    pub fn quiet(command: &mut Command) -> std::io::Result<Running> {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` with stdout piped and reads the first line it prints (where a server
/// announces its address).
pub fn spawn_announcing(command: &mut Command) -> (Running, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address line");
    (running, line)
}

/// A server such as `linkscope bench reflect --listen 127.0.0.1:0` whose first line ends
/// with the address it listens on: the running server and that address.
pub fn listening(command: &mut Command) -> (Running, SocketAddr) {
    let (server, line) = spawn_announcing(command);
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address at the end of the first line");
    (server, addr)
}

/// GNS3 ubridge's configuration (`ubridge -f FILE`) of one bridge between two UDP tunnels on
/// 127.0.0.1: it receives on `p1` from the end at port `a` and sends it what arrives on
/// `p2` from the end at port `b`, and the reverse.
pub fn ubridge_ini(p1: u16, a: u16, p2: u16, b: u16) -> String {
    format!("[bridge0]\nsource_udp = {p1}:127.0.0.1:{a}\ndestination_udp = {p2}:127.0.0.1:{b}\n")
}

/// A connection to a TCP port on loopback once it accepts one (a relay or a control
/// interface is listening), trying every `every` for `within`; `None` if it never did.
pub fn connect_within(port: u16, within: Duration, every: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            return Some(stream);
        }
        std::thread::sleep(every);
    }
    None
}

/// Two tunnel ends as QEMU opens them: the generator's (A) and the sink's (B).
pub struct Ends {
    pub a: UdpSocket,
    pub b: UdpSocket,
}

impl Ends {
    /// B first, with an 8 MiB receive buffer, kernel receive timestamps and reads that time
    /// out after `sink_timeout` (what ends a count once the generator stopped); then A.
    pub fn new(sink_timeout: Duration) -> Ends {
        let end = || tunnel::endpoint("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = end();
        socket2::SockRef::from(&b)
            .set_recv_buffer_size(8 << 20)
            .unwrap();
        enable_receive_metadata(&b).unwrap();
        b.set_read_timeout(Some(sink_timeout)).unwrap();
        Ends { a: end(), b }
    }

    pub fn la(&self) -> SocketAddr {
        self.a.local_addr().unwrap()
    }

    pub fn lb(&self) -> SocketAddr {
        self.b.local_addr().unwrap()
    }
}

/// `linkscope splice -q --a A --b B EXTRA…` between the two ends (steal mode), its output
/// discarded.
pub fn splice(ends: &Ends, extra: &[&str]) -> Running {
    splice_by(env!("CARGO_BIN_EXE_linkscope"), ends, extra)
}

/// [`splice`] with another `linkscope` binary (an earlier build, to compare with).
pub fn splice_by(linkscope: &str, ends: &Ends, extra: &[&str]) -> Running {
    Running::quiet(
        Command::new(linkscope)
            .args(["splice", "-q"])
            .args(["--a", &ends.la().to_string(), "--b", &ends.lb().to_string()])
            .args(extra),
    )
    .expect("linkscope splice")
}

/// `linkscope bench send --to TO --json EXTRA…`: the run's JSON document (a failed run fails
/// the bench with its stderr).
pub fn bench_send(to: SocketAddr, extra: &[&str]) -> serde_json::Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkscope"));
    command
        .args(["bench", "send", "--to", &to.to_string(), "--json"])
        .args(extra);
    let out = command.output().expect("run linkscope bench send");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// An emulated QEMU tunnel end (the tests' own: 127.0.0.1, SO_REUSEADDR) that never blocks,
/// for a lab of many ends.
pub fn nonblocking_end() -> UdpSocket {
    let s = emulated::end(None);
    s.set_nonblocking(true).unwrap();
    s
}

/// The mapping of a lab whose ends 2i and 2i+1 (at `addrs`) are link i: VM 1000+i eth1 to
/// VM 3000+i eth1, on the ends' ports.
pub fn lab_mapping(addrs: &[SocketAddr]) -> String {
    let mut y = String::from("links:\n");
    for (i, pair) in addrs.chunks_exact(2).enumerate() {
        writeln!(
            y,
            "  - [{}, 1, {}, 1, {{port_a: {}, port_b: {}}}]",
            1000 + i,
            3000 + i,
            pair[0].port(),
            pair[1].port()
        )
        .unwrap();
    }
    y
}

/// An IPv4/UDP frame of `len` bytes (at least 42).
pub fn frame(len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 0x0a], [0x02, 0, 0, 0, 0, 0x0b])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(40000, 9)
        .write(&mut f, &vec![0x5a; len.max(42) - 42])
        .expect("a frame");
    f
}

/// Sends `probe_len`-byte probes from A to `target` until B receives one that did not come
/// straight from A: the relay is up (20 s at most). Then lets the probes still in flight
/// arrive for `settle` and empties B.
pub fn until_relayed(ends: &Ends, target: SocketAddr, probe_len: usize, settle: Duration) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = frame(probe_len);
    let mut buf = vec![0; MAX_DATAGRAM];
    while Instant::now() < deadline {
        ends.a.send_to(&probe, target).unwrap();
        if let Ok((_, from)) = ends.b.recv_from(&mut buf)
            && from != ends.la()
        {
            ends.b.set_nonblocking(true).unwrap();
            std::thread::sleep(settle);
            while ends.b.recv(&mut buf).is_ok() {}
            ends.b.set_nonblocking(false).unwrap();
            return true;
        }
    }
    false
}

/// Frames per second B received while A sent `len`-byte frames to `target` (sendmmsg,
/// [`BATCH`] a call, as fast as it can) for `time`. B counts on after the generator stopped
/// until `idle_reads` reads in a row timed out (frames still queued in a relay arrive late,
/// but were sent within `time`).
pub fn throughput(
    ends: &Ends,
    target: SocketAddr,
    len: usize,
    time: Duration,
    idle_reads: u32,
) -> f64 {
    let sending = Arc::new(AtomicBool::new(true));
    let sink = ends.b.try_clone().unwrap();
    let flag = sending.clone();
    let counter = std::thread::spawn(move || {
        let mut batch = RecvBatch::new(BATCH, MAX_DATAGRAM.min(len + 1));
        let mut received = 0u64;
        let mut idle = 0;
        while flag.load(Ordering::Relaxed) || idle < idle_reads {
            match batch.recv(&sink) {
                Ok(n) => {
                    received += n as u64;
                    idle = 0;
                }
                Err(_) => idle += 1,
            }
        }
        received
    });
    let data = frame(len);
    let frames: Vec<&[u8]> = vec![&data; BATCH];
    let mut send = SendBatch::new(BATCH);
    let start = Instant::now();
    while start.elapsed() < time {
        send.send(&ends.a, Some(target), &frames);
    }
    let elapsed = start.elapsed();
    sending.store(false, Ordering::Relaxed);
    counter.join().unwrap() as f64 / elapsed.as_secs_f64()
}

/// A `Name:  value` line of /proc/PID/status (e.g. `Threads:`, `VmRSS:`) as a number, 0
/// when the line is missing; an error when the file cannot be read.
pub fn proc_status(pid: u32, name: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Each path's median over `rounds` rounds of `measure(kind)` (`None` where it never
/// measured: the path cannot run here). Every round measures every path in turn, so a burst
/// of load elsewhere hits them all alike.
pub fn interleaved_medians(
    kinds: &[&str],
    rounds: usize,
    mut measure: impl FnMut(&str) -> Option<f64>,
) -> Vec<Option<f64>> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for _ in 0..rounds {
        for (kind, cell) in kinds.iter().zip(&mut samples) {
            cell.extend(measure(kind));
        }
    }
    samples.iter().map(|c| median(c)).collect()
}

/// The median of the samples (the upper one of an even count), if any.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The number in environment variable `name`; `None` when it is unset or not a number.
pub fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The comma-separated numbers in environment variable `name` (e.g. `RELAY_SIZES=64,1500`),
/// leaving out what is not a number; `None` when it is unset.
pub fn env_list(name: &str) -> Option<Vec<usize>> {
    let list = std::env::var(name).ok()?;
    Some(
        list.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
    )
}
