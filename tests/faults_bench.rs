//! Forged traffic against `linkscope bench sink`/`reflect` (the real binary): what a network
//! peer can make a receiver hold is bounded and counted, `--peer` keeps everyone else out,
//! and a bench end can be spliced in steal mode as a QEMU end can (SO_REUSEADDR).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linkscope::bench::frame::{self, Frame, Header, Kind, Report};
use support::process::{Listener, Running, linkscope, wait_exit};

fn receiver(args: &[&str]) -> Listener {
    Listener::start(linkscope().arg("bench").args(args).stderr(Stdio::piped()))
}

/// Resident memory of a process, bytes (VmRSS of /proc/PID/status).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process alive");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

fn header(kind: Kind, stream: u16, test: u32, sequence: u64) -> Header {
    Header {
        dst: [0x02, 0x4c, 0x53, 0, 0, 2],
        src: [0x02, 0x4c, 0x53, 0, 0, 1],
        kind,
        stream,
        test,
        sequence,
        sent_ns: 1,
    }
}

fn data(stream: u16, test: u32, sequence: u64) -> Vec<u8> {
    let mut buf = vec![0; frame::MIN_SIZE];
    header(Kind::DATA, stream, test, sequence).emit(&mut buf);
    buf
}

/// Asks `to` for its counts of `test`; None when no report comes within a second.
fn report(socket: &UdpSocket, to: SocketAddr, test: u32) -> Option<Report> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let request = frame::report_request(&header(Kind::REPORT_REQUEST, 0, test, 0), 1, 0);
    let mut buf = [0; 2048];
    for _ in 0..5 {
        socket.send_to(&request, to).unwrap();
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            let Ok(n) = socket.recv(&mut buf) else { break };
            if let Ok(f) = Frame::new_checked(&buf[..n])
                && f.kind() == Kind::REPORT
                && f.test() == test
            {
                return Some(Report::parse(f.body()).expect("a report body"));
            }
        }
    }
    None
}

/// Stops a receiver with SIGTERM and returns its standard error.
fn stop(mut listener: Listener) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &listener.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(
        &mut listener.child,
        Duration::from_secs(10),
        "the receiver did not stop on SIGTERM",
    );
    let mut stderr = String::new();
    listener
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    stderr
}

/// The number before `word` in `text` ("… 9744 refused …").
fn count_before(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_matches(|c: char| !c.is_alphanumeric()) == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no count before `{word}` in {text:?}"))
}

#[test]
fn ten_thousand_forged_frames_cost_the_receiver_under_16_mb_and_are_counted() {
    for role in ["sink", "reflect"] {
        let receiver = receiver(&[role, "--listen", "127.0.0.1:0"]);
        let pid = receiver.child.id();
        let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A first exchange, so the receiver's buffers exist before the baseline.
        forger.send_to(&data(0, 1, 0), receiver.addr).unwrap();
        assert!(report(&forger, receiver.addr, 1).is_some());
        let before = rss(pid);
        const FORGED: u32 = 10_000;
        for i in 0..FORGED {
            // A new stream of one of 8 tests each time, far ahead in its sequence.
            let frame = data(i as u16, 1000 + i % 8, (1 << 24) - u64::from(i));
            forger.send_to(&frame, receiver.addr).unwrap();
            if i % 200 == 199 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Answered in order: every forged frame before it has been handled.
        assert!(report(&forger, receiver.addr, 1000).is_some());
        let grown = rss(pid).saturating_sub(before);
        let stderr = stop(receiver);
        assert!(
            grown < 16 << 20,
            "{role}: RSS grew by {} MB for {FORGED} forged frames",
            grown >> 20
        );
        let accepted = count_before(&stderr, "accounted");
        let refused = count_before(&stderr, "refused");
        let dropped = count_before(&stderr, "dropped");
        assert_eq!(
            accepted + refused + dropped,
            u64::from(FORGED) + 1,
            "{role}: every forged frame is counted: {stderr}"
        );
        assert!(
            refused > 0,
            "{role}: streams beyond the cap are refused: {stderr}"
        );
        eprintln!("{role}: RSS +{} kB; {}", grown >> 10, stderr.trim());
    }
}

#[test]
fn with_peer_the_receiver_takes_frames_only_from_that_address() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver = receiver(&[
        "sink",
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &peer.local_addr().unwrap().to_string(),
    ]);
    for seq in 0..100 {
        stranger.send_to(&data(0, 7, seq), receiver.addr).unwrap();
    }
    assert!(
        report(&stranger, receiver.addr, 7).is_none(),
        "a stranger gets no report"
    );
    for seq in 0..10 {
        peer.send_to(&data(0, 7, seq), receiver.addr).unwrap();
    }
    let counts = report(&peer, receiver.addr, 7).expect("the peer gets its report");
    assert_eq!(counts.received, 10, "only the peer's frames count");
    let stderr = stop(receiver);
    assert!(
        count_before(&stderr, "refused") >= 100,
        "the stranger's frames are counted: {stderr}"
    );
}

#[test]
fn a_peer_that_is_not_an_address_exits_2() {
    let out = linkscope()
        .args([
            "bench",
            "sink",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "nowhere",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A splice between `bench send --as 100:1` and `bench sink --as 101:1` of a planned link,
/// in steal mode: the bench ends bind their addresses with SO_REUSEADDR, as QEMU does, so
/// the splice can share them and the test runs through it.
#[test]
fn a_steal_splice_between_bench_send_and_bench_sink_carries_the_test() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (
        support::ports::free_udp_port(),
        support::ports::free_udp_port(),
    );
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        format!("links:\n  - [100, 1, 101, 1, {{port_a: {pa}, port_b: {pb}}}]\n"),
    )
    .unwrap();
    let m = mapping.to_str().unwrap();
    let sink = receiver(&["sink", "--mapping", m, "--as", "101:1"]);
    let report_path = dir.path().join("splice.json");
    let mut splice = Running(
        linkscope()
            .args(["splice", "--mapping", m, "--link", "100:1", "--json"])
            .arg(&report_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The start report on stderr says the splice is in place.
    let mut started = String::new();
    BufReader::new(splice.0.stderr.as_mut().unwrap())
        .read_line(&mut started)
        .unwrap();
    assert!(started.contains("steal mode"), "{started}");
    let out = linkscope()
        .args([
            "bench",
            "send",
            "--mapping",
            m,
            "--as",
            "100:1",
            "--count",
            "2000",
            "--rate",
            "20000",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench send through the splice: {stderr}"
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["sizes"][0]["received"], 2000, "{result}");
    Command::new("kill")
        .args(["-INT", &splice.0.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(
        &mut splice.0,
        Duration::from_secs(10),
        "the splice did not stop",
    );
    assert!(status.success(), "{status}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let directions = &report["links"][0]["directions"];
    assert_eq!(directions[0]["from"], "vm100:eth1", "{report}");
    assert!(
        directions[0]["frames"].as_u64().is_some_and(|n| n >= 2000),
        "the test frames crossed the splice: {report}"
    );
    assert!(
        directions[1]["frames"].as_u64().is_some_and(|n| n >= 1),
        "the sink's report came back through the splice: {report}"
    );
    drop(sink);
}

/// A flood of forged report frames at a running `bench send`: the sender keeps only the
/// reports it is waiting for, so its memory does not grow with them, and its result is the
/// sink's.
#[test]
fn forged_reports_cost_the_sender_nothing() {
    let sink = receiver(&["sink", "--listen", "127.0.0.1:0"]);
    let local = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sender = Running(
        linkscope()
            .args(["bench", "send", "--to", &sink.addr.to_string()])
            .args(["--local", &local.to_string()])
            .args([
                "--rate",
                "1000",
                "--duration",
                "4",
                "--interval",
                "0",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let pid = sender.0.id();
    let before = rss(pid);
    let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut report = frame::report_request(&header(Kind::REPORT_REQUEST, 0, 99, 0), 1, 0);
    let request = Frame::new_checked(&report[..]).unwrap();
    report = frame::report(&request, &Report::default());
    let started = Instant::now();
    let mut forged = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        for _ in 0..200 {
            forger.send_to(&report, local).unwrap();
            forged += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let grown = rss(pid).saturating_sub(before);
    let status = wait_exit(&mut sender.0, Duration::from_secs(20), "bench send");
    let out = sender.stdout();
    assert!(status.success(), "{out}");
    eprintln!(
        "sender: RSS +{} kB for {forged} forged reports",
        grown >> 10
    );
    assert!(
        grown < 16 << 20,
        "RSS grew by {} MB for {forged} forged reports",
        grown >> 20
    );
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["sizes"][0]["lost"], 0, "{result}");
}
