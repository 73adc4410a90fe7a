//! `linkscope splice --expect`: emulated QEMU ends on loopback send LLDP, STP and LACP (built
//! with the wire Reprs, or replayed from the real captures in testdata/captures/) across a
//! splice, which exits 0 once everything expected came, or 1 after the timeout naming what
//! never came; bad specifications exit 2. The lab test feeds the splice what a real lldpd
//! and a kernel STP bridge send out of a tap.

mod support;

use support::frames::{ethernet, lldp_frame, stp_frame};
use support::process::{Running, linkscope};

mod lab;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lab::daemons::{self, Lldpd};
use lab::netns::Netns;
use lab::prereq::{self, Need};
use linkscope::wire::{MacAddr, lacp, savefile};

const MAC_A: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x64, 0x01];
const MAC_B: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x66, 0x01];

fn end() -> UdpSocket {
    support::tunnel::end(None)
}

fn lacp_frame(src: [u8; 6]) -> Vec<u8> {
    let info = |system| lacp::Info {
        system_priority: 65535,
        system: MacAddr(system),
        key: 9,
        port_priority: 255,
        port: 1,
        state: lacp::State(0x3d),
    };
    let repr = lacp::Repr {
        version: 1,
        actor: info(src),
        partner: info(if src == MAC_A { MAC_B } else { MAC_A }),
        collector_max_delay: 0,
    };
    let mut payload = Vec::new();
    repr.emit(&mut payload);
    ethernet([0x01, 0x80, 0xc2, 0, 0, 2], src, 0x8809, &payload)
}

/// Two emulated QEMU ends: each sends its frames to the other's bound address every 20 ms
/// (so whatever the splice steals, it sees) and drains what it receives, until dropped.
struct Ends {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ends {
    fn start(a: UdpSocket, b: UdpSocket, a_to_b: Vec<Vec<u8>>, b_to_a: Vec<Vec<u8>>) -> Ends {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let mut buf = [0; 2048];
            while !flag.load(Ordering::SeqCst) {
                for f in &a_to_b {
                    a.send_to(f, b_addr).unwrap();
                }
                for f in &b_to_a {
                    b.send_to(f, a_addr).unwrap();
                }
                while a.recv(&mut buf).is_ok() || b.recv(&mut buf).is_ok() {}
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Ends {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `linkscope splice -q --a A --b B EXTRA...` while `frames` cross the link; returns
/// its exit status and standard error once it exits by itself (within two minutes).
fn splice_with(extra: &[&str], a_to_b: Vec<Vec<u8>>, b_to_a: Vec<Vec<u8>>) -> (ExitStatus, String) {
    let (a, b) = (end(), end());
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        (a.local_addr().unwrap(), b.local_addr().unwrap());
    let child = linkscope()
        .args(["splice", "-q", "--a", &a_addr.to_string()])
        .args(["--b", &b_addr.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let ends = Ends::start(a, b, a_to_b, b_to_a);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the splice never exited");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(ends);
    let err = running.stderr();
    (status, err)
}

#[test]
fn passes_as_soon_as_every_protocol_crossed_both_ways() {
    let (status, err) = splice_with(
        &[
            "--expect",
            "lldp,stp",
            "--expect",
            "lacp",
            "--timeout",
            "600",
        ],
        vec![
            lldp_frame(MAC_A, "vm100"),
            stp_frame(MAC_A, 4096),
            lacp_frame(MAC_A),
        ],
        vec![
            lldp_frame(MAC_B, "vm102"),
            stp_frame(MAC_B, 32768),
            lacp_frame(MAC_B),
        ],
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "expect: passed: lldp a>b, lldp b>a, stp a>b, stp b>a, lacp a>b, lacp b>a seen on"
        ),
        "{err}"
    );
    // A line per change, then the summary of each direction.
    assert!(
        err.contains("LLDP chassis=mac 52:54:00:00:64:01 port=ifname eth1 name=vm100 ttl=120"),
        "{err}"
    );
    assert!(
        err.contains("STP config v0 root=32768.0.52:54:00:00:66:01 cost=0"),
        "{err}"
    );
    assert!(
        err.contains("LACP actor (65535,52:54:00:00:64:01,key 9,port 255.1) A-GYCD--"),
        "{err}"
    );
    let summary = err
        .lines()
        .find(|l| l.contains(": LLDP chassis=mac 52:54:00:00:66:01"))
        .unwrap_or_else(|| panic!("no summary line for b>a: {err}"));
    assert!(
        summary.contains("; STP config") && summary.contains("; LACP actor"),
        "{summary}"
    );
}

/// Without measurements, capture or per-frame lines the tap only takes control frames; the
/// view still sees them among ordinary traffic.
#[test]
fn passes_without_measurements_among_other_traffic() {
    let ipv4 = ethernet(MAC_B, MAC_A, 0x0800, &[0x45; 46]);
    let (status, err) = splice_with(
        &[
            "--no-measure",
            "--expect",
            "lldp,stp,lacp",
            "--timeout",
            "600",
        ],
        vec![
            ipv4.clone(),
            lldp_frame(MAC_A, "vm100"),
            ipv4.clone(),
            stp_frame(MAC_A, 4096),
            lacp_frame(MAC_A),
        ],
        vec![
            lldp_frame(MAC_B, "vm102"),
            ipv4,
            stp_frame(MAC_B, 32768),
            lacp_frame(MAC_B),
        ],
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "expect: passed: lldp a>b, lldp b>a, stp a>b, stp b>a, lacp a>b, lacp b>a seen on"
        ),
        "{err}"
    );
}

#[test]
fn fails_after_the_timeout_naming_what_never_came() {
    let (status, err) = splice_with(
        &["--expect", "lldp,stp:b>a,lacp:a>b", "--timeout", "3"],
        vec![lldp_frame(MAC_A, "vm100"), stp_frame(MAC_A, 4096)],
        vec![lldp_frame(MAC_B, "vm102")],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    let verdict = err
        .lines()
        .find(|l| l.starts_with("expect: FAILED: never seen in "))
        .unwrap_or_else(|| panic!("no verdict: {err}"));
    assert!(verdict.contains("stp b>a ("), "{verdict}");
    assert!(verdict.contains("lacp a>b ("), "{verdict}");
    assert!(!verdict.contains("lldp"), "{verdict}");
    assert!(
        err.contains("STP config v0 root=4096.0.52:54:00:00:64:01"),
        "{err}"
    );
}

#[test]
fn bad_specifications_are_input_errors() {
    for (args, needle) in [
        (&["--expect", "ospf"][..], "--expect"),
        (&["--expect", "lldp:a-b"][..], "a>b or b>a"),
        (&["--expect", "lldp,"][..], "--expect"),
        (&["--expect", "lldp", "--timeout", "0"][..], "--timeout"),
        (&["--expect", "lldp", "--timeout", "soon"][..], "--timeout"),
        (&["--timeout", "5"][..], "--expect"),
    ] {
        let out = linkscope()
            .args(["splice", "-q", "--a", "127.0.0.1:1", "--b", "127.0.0.1:2"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn frames_of(file: &str) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/captures")
        .join(file);
    let mut reader = savefile::Reader::open(&path).unwrap();
    let mut frames = Vec::new();
    while let Some(record) = reader.next_record() {
        frames.push(record.unwrap().data);
    }
    assert!(!frames.is_empty(), "{file}");
    frames
}

/// Real LLDPDUs (lldpd on `leaf1`) and a kernel bridge's BPDUs, recorded under
/// testdata/captures/, replayed from end A.
#[test]
fn real_lldpd_and_kernel_bridge_frames_pass() {
    let mut frames = frames_of("lldpd.pcap");
    frames.extend(frames_of("bridge.pcapng"));
    let (status, err) = splice_with(
        &["--expect", "lldp:a>b,stp:a>b", "--timeout", "600"],
        frames,
        Vec::new(),
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "LLDP chassis=mac 52:54:00:00:0a:01 port=mac 52:54:00:00:0a:01 name=leaf1 ttl=120"
        ),
        "{err}"
    );
    assert!(err.contains("root=4096.0.52:54:00:00:01:00"), "{err}");
    assert!(
        err.contains("expect: passed: lldp a>b, stp a>b seen on"),
        "{err}"
    );
}

/// lldpd (one LLDPDU a second) and a kernel bridge running 802.1D STP on a tap in a fresh
/// namespace; what leaves the tap is sent from end A across the splice.
#[test]
fn lldpd_and_a_kernel_bridge_on_a_tap_pass() {
    let test = "lldpd_and_a_kernel_bridge_on_a_tap_pass";
    if !prereq::ready(test, &[Need::Root, Need::Tun, Need::Iproute, Need::Lldpd]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let tap = daemons::tap_in(&ns).unwrap();
    daemons::stp_bridge(&ns, "br0", &[tap.name()]).unwrap();
    let _lldpd = Lldpd::start(&ns, tap.name(), Some(1)).unwrap();
    let (a, b) = (end(), end());
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let child = linkscope()
        .args(["splice", "-q", "--a", &a_addr.to_string()])
        .args(["--b", &b_addr.to_string()])
        .args(["--expect", "lldp:a>b,stp:a>b", "--timeout", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut buf = [0; 2048];
    b.set_nonblocking(true).unwrap();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the splice never exited");
        if let Some(len) = tap
            .recv_timeout(&mut buf, Duration::from_millis(50))
            .unwrap()
        {
            a.send_to(&buf[..len], b_addr).unwrap();
        }
        while b.recv(&mut buf).is_ok() {}
    };
    let err = running.stderr();
    assert_eq!(status.code(), Some(0), "{err}");
    let mac = ns
        .ip(["-br", "link", "show", "dev", tap.name()])
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert!(err.contains("LLDP chassis=mac "), "{err}");
    assert!(err.contains(&format!("port=mac {mac}")), "{mac}: {err}");
    assert!(
        err.contains(&format!("STP config v0 root=32768.0.{mac} cost=0")),
        "{mac}: {err}"
    );
    assert!(
        err.contains("expect: passed: lldp a>b, stp a>b seen on"),
        "{err}"
    );
}
