//! The Meter on real traffic: busybox `ping` between two network namespaces, the far kernel
//! answering ARP and echo requests, captured by tcpdump on the near side (where a splice
//! would sit). The Meter must pair every echo and ARP exchange, find RTTs within what ping
//! itself measured, and count the ARP requests for an absent host as unanswered.
//!
//! Needs root, `ip`, `tcpdump` and `busybox`; skips with a reason otherwise and fails with
//! LINKSCOPE_REQUIRE_LAB=1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Direction, Exchange, Meter};
use pcap_file::pcap::PcapReader;

fn prerequisites() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if uid != "0" {
        return Err("needs root for network namespaces".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("tcpdump", "--version"),
        ("busybox", "--help"),
    ] {
        match Command::new(tool).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            _ => return Err(format!("needs `{tool}`")),
        }
    }
    Ok(())
}

fn lab_or_skip() -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(reason) if std::env::var_os("LINKSCOPE_REQUIRE_LAB").is_some() => {
            panic!("LINKSCOPE_REQUIRE_LAB is set but: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("runs ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces `near` (10.9.0.1) and `far` (10.9.0.2) on a veth pair; removed on drop.
struct Pair {
    near: String,
    far: String,
}

impl Pair {
    fn create() -> Pair {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "lsr{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let pair = Pair {
            near: format!("{tag}n"),
            far: format!("{tag}f"),
        };
        for ns in [&pair.near, &pair.far] {
            ip(&["netns", "add", ns]);
        }
        ip(&[
            "link", "add", "v0", "netns", &pair.near, "type", "veth", "peer", "name", "v0",
            "netns", &pair.far,
        ]);
        for (ns, addr) in [(&pair.near, "10.9.0.1/24"), (&pair.far, "10.9.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", "v0"]);
            ip(&["-n", ns, "link", "set", "v0", "up"]);
        }
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.near, &self.far] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// tcpdump writing `v0` of a namespace to a file; stopped (and flushed) on `finish`.
struct Tcpdump(Child);

impl Tcpdump {
    fn start(ns: &str, file: &Path) -> Tcpdump {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "tcpdump", "-i", "v0", "-U", "-n", "-w"])
            .arg(file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts tcpdump");
        // tcpdump says "listening on v0" once it captures.
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut line)
            .expect("reads tcpdump's first line");
        assert!(line.contains("listening"), "{line}");
        Tcpdump(child)
    }

    fn finish(mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.0.wait();
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (min, max) round trip in ms from busybox ping's summary line.
fn ping_range(output: &str) -> (f64, f64) {
    let line = output
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no summary in {output}"));
    let values: Vec<f64> = line
        .rsplit('=')
        .next()
        .expect("values")
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    (values[0], values[2])
}

#[test]
fn busybox_ping_through_the_kernel_is_paired_and_an_absent_host_is_unanswered() {
    if !lab_or_skip() {
        return;
    }
    let pair = Pair::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("near.pcap");
    let tcpdump = Tcpdump::start(&pair.near, &file);
    let ping = |target: &str| {
        Command::new("ip")
            .args([
                "netns", "exec", &pair.near, "busybox", "ping", "-c", "10", "-i", "0.1",
            ])
            .args(["-W", "1", target])
            .output()
            .expect("runs busybox ping")
    };
    let answered = ping("10.9.0.2");
    assert!(answered.status.success());
    let (min_ms, max_ms) = ping_range(&String::from_utf8_lossy(&answered.stdout));
    // Nobody has 10.9.0.99: the near kernel asks by ARP and never sends an echo request.
    let absent = ping("10.9.0.99");
    assert!(!absent.status.success());
    tcpdump.finish();

    let mut reader =
        PcapReader::new(std::fs::File::open(&file).expect("capture")).expect("a pcap file");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a packet");
        frames.push((packet.timestamp().as_nanos() as u64, packet.data().to_vec()));
    }
    // The near side's MAC is the source of the first frame (its ARP request or echo).
    let near_mac = frames.first().expect("frames captured").1[6..12].to_vec();
    let arp_requests_for_absent = frames
        .iter()
        .filter(|(_, f)| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[38..42] == [10, 9, 0, 99])
        .count() as u64;
    assert!(arp_requests_for_absent >= 1);

    let mut meter = Meter::new(Config::new(Budget {
        host_mtu: None,
        path_mtu: 1500,
        outer: Outer::Ipv4,
    }));
    for (t, frame) in &frames {
        let direction = if frame[6..12] == near_mac[..] {
            Direction::AToB
        } else {
            Direction::BToA
        };
        meter.record(direction, *t, frame);
    }
    meter.expire(u64::MAX);

    let echo = meter.rtt(Exchange::IcmpEcho);
    assert_eq!((echo.count, echo.unanswered), (10, 0), "{echo:?}");
    // Seen at the near interface, the round trip is at most what ping measures in user space.
    let max = echo.max.expect("a maximum");
    assert!(max <= max_ms + 0.001, "{echo:?} vs ping {min_ms}..{max_ms}");
    assert!(
        echo.p50
            .is_some_and(|p50| p50 > 0.0 && p50 <= max_ms + 0.001)
    );
    assert_eq!(
        meter.unanswered(Direction::AToB, Exchange::Arp),
        arp_requests_for_absent,
        "ARP requests for 10.9.0.99"
    );
    assert!(
        meter.rtt(Exchange::Arp).count >= 1,
        "the far kernel answered ARP"
    );
}
