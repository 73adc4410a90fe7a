//! `linkscope splice` measuring a live loopback link: emulated ends, the far one reached
//! through the deterministic impairing relay, so the echo requests the relay drops are loss
//! beyond the splice, which the splice must infer exactly; plus the JSON report's rules.

mod support;

use support::process::{Running, linkscope};

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use linkscope::splice::demo::{self, Identity};
use support::impair::{Every, Impairments, Relay};

const MAC_A: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x64, 1];
const MAC_B: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x66, 1];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];

fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_millis(100)))
}

fn request(seq: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(0x4242, seq)
        .write(&mut frame, &[0x5a; 56])
        .unwrap();
    frame
}

fn echo_request(frame: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Icmpv4(icmp)) = packet.transport else {
        return None;
    };
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    Some((echo.id, echo.seq, icmp.payload().to_vec()))
}

/// What the far VM does: answer an echo request with the matching reply.
fn reply_to(frame: &[u8]) -> Option<Vec<u8>> {
    let (id, seq, payload) = echo_request(frame)?;
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(IP_B, IP_A, 64)
        .icmpv4_echo_reply(id, seq)
        .write(&mut out, &payload)
        .ok()?;
    Some(out)
}

/// Stops the helper threads on drop.
struct Threads(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Drop for Threads {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sends a non-echo frame from `a` to `b` until `b` receives a copy that did not come
/// straight from `a`: the splice is in the path.
fn until_spliced(a: &UdpSocket, b: &UdpSocket) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0; 2048];
    let probe = [0u8; 60];
    while Instant::now() < deadline {
        a.send_to(&probe, b.local_addr().unwrap()).unwrap();
        if let Ok((_, from)) = b.recv_from(&mut buf)
            && from != a.local_addr().unwrap()
        {
            return;
        }
    }
    panic!("the splice never stepped in");
}

#[test]
fn inferred_loss_equals_the_drops_beyond_the_splice() {
    const REQUESTS: u16 = 50;
    let (a, b) = (end(), end());
    let (la, lb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.jsonl");
    let splice = Running(
        linkscope()
            .args([
                "splice",
                "-q",
                "--a",
                &la.to_string(),
                "--b",
                &lb.to_string(),
            ])
            .args(["--stats-interval", "0.5", "--json-stream", "--json"])
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    until_spliced(&a, &b);

    // Beyond end B: the far VM, reached through the relay, which drops every 5th request.
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    far.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let relay = Relay::start(
        far.local_addr().unwrap(),
        Impairments {
            drop: Some(Every { every: 5, phase: 2 }),
            ..Impairments::default()
        },
        |frame| echo_request(frame).is_some(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let far_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, from)) = far.recv_from(&mut buf)
                    && let Some(reply) = reply_to(&buf[..n])
                {
                    far.send_to(&reply, from).unwrap();
                }
            }
        })
    };
    // End B hands requests to the relay and the far VM's replies back to end A.
    let relay_addr: SocketAddr = relay.addr();
    let b_thread = {
        let stop = stop.clone();
        let b = b.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, from)) = b.recv_from(&mut buf) {
                    let to = if from == relay_addr { la } else { relay_addr };
                    b.send_to(&buf[..n], to).unwrap();
                }
            }
        })
    };
    let threads = Threads(stop, vec![far_thread, b_thread]);

    let mut replies = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..REQUESTS {
        a.send_to(&request(seq), lb).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let quiet_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet_until {
        if a.recv(&mut buf).is_ok() {
            replies += 1;
        }
    }
    let dropped = relay.counts().dropped.load(Ordering::SeqCst);
    assert_eq!(dropped, u64::from(REQUESTS) / 5);
    assert_eq!(replies, u64::from(REQUESTS) - dropped);
    // Past the meter's grace time (3 s), every dropped request counts as unanswered.
    std::thread::sleep(Duration::from_millis(3500));
    drop(threads);

    let status = Command::new("kill")
        .args(["-TERM", &splice.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut splice = splice;
    let mut stderr = String::new();
    std::io::Read::read_to_string(splice.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(splice.0.wait().unwrap().success(), "{stderr}");

    let text = std::fs::read_to_string(&json).unwrap();
    let reports: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        reports.len() >= 2,
        "a line per interval and the final one: {text}"
    );
    assert!(reports.iter().all(|r| r["version"] == 1));
    let last = &reports[reports.len() - 1];
    let link = &last["links"][0];
    let echo = &link["rtt_ms"]["icmp_echo"];
    assert_eq!(echo["unanswered"], dropped, "{link:#}");
    assert_eq!(echo["count"], u64::from(REQUESTS) - dropped, "{link:#}");
    let (p50, max) = (echo["p50"].as_f64().unwrap(), echo["max"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= max, "{echo}");
    let directions = link["directions"].as_array().unwrap();
    assert_eq!(directions.len(), 2);
    assert_eq!(directions[0]["from"], la.to_string());
    assert!(directions[0]["frames"].as_u64().unwrap() >= u64::from(REQUESTS));
    assert!(directions[0]["added_latency_us"]["p50"].as_f64().is_some());
    assert!(directions.iter().all(|d| d["lldp"].is_null()));
    assert!(stderr.contains("unanswered"), "{stderr}");
}

#[test]
fn the_report_on_stdout_is_refused_when_stdout_carries_the_capture() {
    let out = linkscope()
        .args(["splice", "--a", "127.0.0.1:9", "--b", "127.0.0.1:10"])
        .args(["-w", "-", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json"));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_report_holds_round_trips_and_the_control_plane_of_each_direction() {
    let (socket_a, socket_b) = (demo::Vm::bind().unwrap(), demo::Vm::bind().unwrap());
    let (la, lb) = (
        socket_a.local_addr().unwrap(),
        socket_b.local_addr().unwrap(),
    );
    let out = {
        let splice = linkscope()
            .args([
                "splice",
                "-q",
                "--a",
                &la.to_string(),
                "--b",
                &lb.to_string(),
            ])
            .args(["--host-mtu", "1500", "--json", "-", "-a", "duration:4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The splice binds before it reports; the VMs start once its start report is out.
        std::thread::sleep(Duration::from_millis(300));
        let vms = vec![
            demo::Vm::start(
                socket_a,
                lb,
                Identity::demo(0, true),
                Ipv4Addr::new(10, 0, 0, 3),
            )
            .unwrap(),
            demo::Vm::start(
                socket_b,
                la,
                Identity::demo(2, false),
                Ipv4Addr::new(10, 0, 0, 1),
            )
            .unwrap(),
        ];
        let out = splice.wait_with_output().unwrap();
        demo::Vm::stop_all(vms);
        out
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let link = &report["links"][0];
    assert_eq!(link["host_mtu"], 1500);
    assert_eq!(link["path_mtu"], 65535);
    assert!(
        link["rtt_ms"]["icmp_echo"]["count"].as_u64().unwrap() > 0,
        "{link:#}"
    );
    assert!(
        link["rtt_ms"]["arp"]["count"].as_u64().unwrap() > 0,
        "{link:#}"
    );
    for (direction, system) in link["directions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["vm100", "vm102"])
    {
        assert_eq!(direction["lldp"]["system_name"], system, "{direction:#}");
        assert!(
            direction["stp"]["frames"].as_u64().unwrap() > 0,
            "{direction:#}"
        );
        assert!(direction["lacp"].is_null());
    }
    assert!(report["host"]["ip_frag_creates"].is_u64());
}
