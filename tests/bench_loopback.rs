//! `linkscope bench` end to end on loopback: sink, reflector, the impairing relay, and the
//! `--json` contract.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use support::impair::{Every, Impairments, Relay};
use support::process::{Listener, json_output};
use support::wireshark::{have, tshark_fields};

/// A running `linkscope bench sink|reflect` on 127.0.0.1, killed on drop.
fn receiver(role: &str) -> Listener {
    receiver_with(&[role, "--listen", "127.0.0.1:0"])
}

fn receiver_with(args: &[&str]) -> Listener {
    Listener::start(
        Command::cargo_bin("linkscope")
            .unwrap()
            .arg("bench")
            .args(args),
    )
}

fn send_json(to: SocketAddr, extra: &[&str]) -> Value {
    json_output(
        Command::cargo_bin("linkscope")
            .unwrap()
            .args(["bench", "send", "--to", &to.to_string(), "--json"])
            .args(extra),
    )
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn sink_sees_every_frame_at_a_moderate_rate() {
    let sink = receiver("sink");
    let run = send_json(
        sink.addr,
        &["--size", "64,1470", "--count", "2000", "--rate", "10000"],
    );
    assert_eq!(keys(&run), ["duration_s", "sizes", "version"]);
    assert_eq!(run["version"], 1);
    let sizes = run["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    for (s, size) in sizes.iter().zip([64, 1470]) {
        assert_eq!(
            keys(s),
            [
                "duplicates",
                "fragments",
                "jitter_ms",
                "lost",
                "lost_pct",
                "out_of_order",
                "payload_bits_per_second",
                "pps",
                "received",
                "receiver_drops",
                "rtt_us",
                "sent",
                "size",
                "wire_bits_per_second"
            ]
        );
        assert_eq!(
            keys(&s["fragments"]),
            ["receiver_reasm_reqds", "sender_frag_creates"]
        );
        assert_eq!(s["size"], size);
        assert_eq!(s["sent"], 2000);
        assert_eq!(s["received"], 2000);
        assert_eq!(s["lost"], 0);
        assert_eq!(s["lost_pct"], 0.0);
        assert_eq!(s["out_of_order"], 0);
        assert_eq!(s["duplicates"], 0);
        assert!(s["rtt_us"].is_null(), "a sink echoes nothing");
        let payload = s["payload_bits_per_second"].as_f64().unwrap();
        let pps = s["pps"].as_f64().unwrap();
        assert!((payload - pps * size as f64 * 8.0).abs() < 1e-6 * payload);
        assert!(s["wire_bits_per_second"].as_f64().unwrap() > payload);
    }
}

#[test]
fn reflector_gives_round_trip_percentiles() {
    let reflector = receiver("reflect");
    let run = send_json(
        reflector.addr,
        &[
            "--size",
            "200",
            "--count",
            "500",
            "--rate",
            "5000",
            "--streams",
            "2",
        ],
    );
    let s = &run["sizes"][0];
    assert_eq!(s["received"], 500);
    assert_eq!(s["lost"], 0);
    let rtt = &s["rtt_us"];
    assert_eq!(keys(rtt), ["max", "min", "p50", "p90", "p99", "p999"]);
    let order: Vec<f64> = ["min", "p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|k| rtt[k].as_f64().unwrap())
        .collect();
    assert!(order[0] > 0.0);
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{rtt}");
}

#[test]
fn frames_a_stalled_sink_could_not_take_are_counted_as_its_drops() {
    let sink = receiver("sink");
    let pid = sink.child.id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {name} {pid}");
    };
    // 2 s of 1470-byte frames at 20,000/s; the sink stops reading for a second in the
    // middle, far longer than its socket buffer (at most 8 MiB, about 3,000 frames) lasts.
    let to = sink.addr;
    let sender = std::thread::spawn(move || {
        send_json(
            to,
            &[
                "--size",
                "1470",
                "--count",
                "40000",
                "--rate",
                "20000",
                "--interval",
                "0",
            ],
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal("-STOP");
    std::thread::sleep(std::time::Duration::from_secs(1));
    signal("-CONT");
    let run = sender.join().unwrap();
    let s = &run["sizes"][0];
    assert_eq!(s["sent"], 40000);
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0, "{s}");
    // On loopback nothing else loses frames: every loss is the stalled socket's.
    assert_eq!(s["receiver_drops"], lost, "{s}");
}

fn is_data_frame(d: &[u8]) -> bool {
    d.len() >= 16 && d[12..14] == [0x88, 0xb5] && d[15] == 1
}

#[test]
fn impairing_relay_counts_come_back_exactly() {
    let sink = receiver("sink");
    let every = |phase| Some(Every { every: 10, phase });
    let relay = Relay::start(
        sink.addr,
        Impairments {
            drop: every(3),
            duplicate: every(6),
            reorder: every(8),
        },
        is_data_frame,
    )
    .unwrap();
    let run = send_json(
        relay.addr(),
        &["--size", "100", "--count", "1000", "--rate", "2000"],
    );
    let c = relay.counts();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(c.selected.load(Relaxed), 1000);
    assert_eq!(c.dropped.load(Relaxed), 100);
    assert_eq!(c.duplicated.load(Relaxed), 100);
    assert_eq!(c.reordered.load(Relaxed), 100);
    let s = &run["sizes"][0];
    assert_eq!(s["sent"], 1000);
    assert_eq!(s["received"], 900);
    assert_eq!(s["lost"], 100);
    assert_eq!(s["lost_pct"], 10.0);
    assert_eq!(s["receiver_drops"], 0, "the path lost them, not the sink");
    assert_eq!(s["duplicates"], 100);
    assert_eq!(s["out_of_order"], 100);
}

#[test]
fn json_stream_prints_intervals_then_the_size() {
    let sink = receiver("sink");
    let out = Command::cargo_bin("linkscope")
        .unwrap()
        .args([
            "bench",
            "send",
            "--to",
            &sink.addr.to_string(),
            "--json-stream",
        ])
        .args([
            "--size",
            "300",
            "--duration",
            "1.2",
            "--interval",
            "0.3",
            "--rate",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, intervals) = lines.split_last().unwrap();
    assert!(!intervals.is_empty());
    let mut sent = 0;
    for i in intervals {
        let i = &i["interval"];
        assert_eq!(i["size"], 300);
        assert!(i["end_s"].as_f64() > i["start_s"].as_f64());
        sent += i["sent"].as_u64().unwrap();
    }
    let total = last["size"]["sent"].as_u64().unwrap();
    assert!(sent <= total && total > 0, "{sent} of {total}");
    assert_eq!(last["size"]["received"], total);
}

#[test]
fn human_output_has_one_row_per_size() {
    let sink = receiver("sink");
    let out = Command::cargo_bin("linkscope")
        .unwrap()
        .args(["bench", "send", "--to", &sink.addr.to_string()])
        .args(["--size", "60..160:50", "--count", "100", "--rate", "10000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (row, size) in rows.iter().zip(["60", "110", "160"]) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cols[..4], [size, "100", "100", "0"], "{row}");
    }
}

#[test]
fn bad_arguments_exit_with_status_2() {
    for args in [
        ["--size", "59"],
        ["--rate", "fast"],
        ["--size", "100..60:4"],
        ["--count", "0"],
    ] {
        let out = Command::cargo_bin("linkscope")
            .unwrap()
            .args(["bench", "send", "--to", "127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn silent_receiver_is_an_error() {
    // A bound socket that never answers.
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = Command::cargo_bin("linkscope")
        .unwrap()
        .args([
            "bench",
            "send",
            "--to",
            &quiet.local_addr().unwrap().to_string(),
        ])
        .args(["--count", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no report from"), "{err}");
}

#[test]
fn stands_in_for_both_nics_of_a_planned_link() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    let (pa, pb) = (
        support::ports::free_udp_port(),
        support::ports::free_udp_port(),
    );
    std::fs::write(
        &mapping,
        format!("links:\n  - [100, 1, 102, 1, {{port_a: {pa}, port_b: {pb}}}]\n"),
    )
    .unwrap();
    let m = mapping.to_str().unwrap();
    let sink = receiver_with(&["reflect", "--mapping", m, "--as", "102:eth1"]);
    assert_eq!(sink.addr, SocketAddr::from(([127, 0, 0, 1], pb)));
    let run = json_output(
        Command::cargo_bin("linkscope")
            .unwrap()
            .args(["bench", "send", "--mapping", m, "--as", "100:1", "--json"])
            .args(["--size", "128", "--count", "300", "--rate", "3000"]),
    );
    assert_eq!(run["sizes"][0]["received"], 300);
    assert!(run["sizes"][0]["rtt_us"]["p50"].as_f64().unwrap() > 0.0);
}

#[test]
fn test_frames_carry_the_planned_macs() {
    // The reflector swaps the MACs; a plain socket in the peer's place sees the sender's.
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pb = peer.local_addr().unwrap().port();
    let pa = support::ports::free_udp_port();
    std::fs::write(
        &mapping,
        format!("links:\n  - [100, 1, 102, 1, {{port_a: {pa}, port_b: {pb}}}]\n"),
    )
    .unwrap();
    let mut sender = Command::cargo_bin("linkscope")
        .unwrap()
        .args([
            "bench",
            "send",
            "--mapping",
            mapping.to_str().unwrap(),
            "--as",
            "100:1",
        ])
        .args(["--count", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = peer.recv_from(&mut buf).unwrap();
    let _ = sender.kill();
    let _ = sender.wait();
    assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], pa)));
    assert!(len >= 60);
    let eth = etherparse::Ethernet2HeaderSlice::from_slice(&buf[..len]).unwrap();
    assert_eq!(eth.source(), [0xbe, 0x24, 0x99, 0, 0x64, 1]);
    assert_eq!(eth.destination(), [0xbe, 0x24, 0x99, 0, 0x66, 1]);
    assert_eq!(eth.ether_type(), etherparse::EtherType(0x88b5));
}

#[test]
fn wireshark_reads_test_frames_as_ethernet_with_ethertype_88b5() {
    use linkscope::bench::frame::{Header, Kind};
    if !have(
        "tshark",
        "wireshark_reads_test_frames_as_ethernet_with_ethertype_88b5",
    ) {
        return;
    }
    // A classic pcap file (LINKTYPE_ETHERNET) holding a data frame and a report request;
    // the version 2.4 is two little-endian u16, written here as one u32.
    let mut file = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    let header = Header {
        dst: [0xbe, 0x24, 0x99, 0, 0x66, 1],
        src: [0xbe, 0x24, 0x99, 0, 0x64, 1],
        kind: Kind::DATA,
        stream: 0,
        test: 7,
        sequence: 1,
        sent_ns: 1_700_000_000_000_000_000,
    };
    let mut data = vec![0u8; 128];
    header.emit(&mut data);
    let request = linkscope::bench::frame::report_request(&header, 0, 0);
    for frame in [&data, &request] {
        for v in [1u32, 0, frame.len() as u32, frame.len() as u32] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(frame);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.pcap");
    std::fs::write(&path, file).unwrap();
    let rows = tshark_fields(&path, &[], &["eth.src", "eth.dst", "eth.type", "frame.len"]);
    assert_eq!(
        rows,
        [
            ["be:24:99:00:64:01", "be:24:99:00:66:01", "0x88b5", "128"],
            ["be:24:99:00:64:01", "be:24:99:00:66:01", "0x88b5", "60"]
        ]
    );
}

#[test]
fn receiver_going_away_mid_run_ends_the_run_with_an_error() {
    let mut sink = receiver("sink");
    let mut sender = Command::cargo_bin("linkscope")
        .unwrap()
        .args(["bench", "send", "--to", &sink.addr.to_string()])
        .args(["--duration", "600", "--interval", "0.2", "--rate", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first interval line proves the run is under way; then the sink goes.
    let mut stdout = BufReader::new(sender.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("sent"), "{line:?}");
    let _ = sink.child.kill();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut sender.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(sender.wait().unwrap().code(), Some(1));
    assert!(err.contains("no report from"), "{err}");
}
