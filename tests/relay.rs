//! `linkscope relay` as a process, between emulated QEMU ends on loopback: a UDP tunnel end
//! (a socket bound as QEMU binds its own) and stream peers in QEMU's framing (what
//! `-netdev stream` / `socket,listen=|connect=` send: a 4-byte big-endian length, then the
//! frame). The real-VM tests are in tests/lab_vm.rs.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::ports::{free_tcp_port, free_udp_port};
use support::process::{Running, linkscope, wait_exit};

const WAIT: Duration = Duration::from_secs(10);

/// A UDP tunnel end on 127.0.0.1 that waits at most 200 ms per read.
fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_millis(200)))
}

fn framed(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Reads one framed frame (None on end of stream or a read timeout).
fn read_frame(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut header = [0; 4];
    stream.read_exact(&mut header).ok()?;
    let mut frame = vec![0; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

/// An Ethernet frame from `src` to `dst` carrying `tag` (IPv4 ethertype, padded to 60).
fn ether(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00, tag]);
    f.resize(60, tag);
    f
}

fn relay(args: &[String], json: &Path) -> Running {
    Running(
        linkscope()
            .arg("relay")
            .args(["-q", "--stats-interval", "0", "--json"])
            .arg(json)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn linkscope relay"),
    )
}

/// A relay between a UDP tunnel end and one stream locator.
struct UdpRelay {
    /// The VM's end of the tunnel.
    vm: UdpSocket,
    /// Where the relay receives the VM's frames.
    udp: SocketAddr,
    running: Running,
    json: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `linkscope relay udp://…->VM STREAM`, its JSON report in a temporary directory.
fn udp_relay(stream: &str) -> UdpRelay {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let vm = end();
    let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let running = relay(
        &[
            format!("udp://{udp}->{}", vm.local_addr().unwrap()),
            stream.to_owned(),
        ],
        &json,
    );
    UdpRelay {
        vm,
        udp,
        running,
        json,
        _dir: dir,
    }
}

/// Stops the relay with SIGTERM and returns its JSON report.
fn stop(mut relay: Running, json: &Path) -> serde_json::Value {
    terminate(relay.0.id());
    let status = wait_exit(&mut relay.0, WAIT, "the relay did not stop on SIGTERM");
    let mut stderr = String::new();
    if let Some(mut e) = relay.0.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    assert!(status.success(), "relay exited with {status}: {stderr}");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// SIGTERM through `kill(1)`, so the tests need no unsafe code.
fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success(), "SIGTERM to {pid}");
}

fn endpoint_counter(report: &serde_json::Value, index: usize, name: &str) -> u64 {
    report["endpoints"][index][name]
        .as_u64()
        .unwrap_or_else(|| panic!("endpoint {index} has no {name}: {report}"))
}

fn connect_retrying(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                return s;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

/// Sends `frame` from `vm` to `to` until `stream` reads it (the stream side may still be
/// coming up: frames for a side that is down are dropped); returns how many were sent.
fn udp_until_stream(vm: &UdpSocket, to: SocketAddr, stream: &mut TcpStream, frame: &[u8]) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        vm.send_to(frame, to).unwrap();
        if let Some(got) = read_frame(stream) {
            assert_eq!(got, frame);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the frame never reached the stream"
        );
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
}

#[test]
fn udp_and_tcp_listen_carry_many_frames_per_write_and_a_new_connection_replaces_the_old() {
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let relayed = udp_relay(&format!("tcp-listen://{tcp}"));
    let (vm, relay_udp) = (relayed.vm, relayed.udp);
    let mut first = connect_retrying(tcp);

    // Stream to UDP: 100 frames in one write, each its own datagram, in order.
    let frames: Vec<Vec<u8>> = (0..100u8).map(|n| ether([2; 6], [4; 6], n)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    first.write_all(&framed(&refs)).unwrap();
    let mut buf = [0; 2048];
    for want in &frames {
        let (n, from) = vm.recv_from(&mut buf).expect("a frame from the relay");
        assert_eq!(from, relay_udp, "frames come from the relay's bound port");
        assert_eq!(&buf[..n], &want[..]);
    }

    // UDP to stream.
    udp_until_stream(&vm, relay_udp, &mut first, &ether([4; 6], [2; 6], 200));

    // A second connection replaces the first, which the relay closes.
    let mut second = connect_retrying(tcp);
    udp_until_stream(&vm, relay_udp, &mut second, &ether([4; 6], [2; 6], 201));
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = first.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the replaced connection is closed: {closed:?}"
    );
    second
        .write_all(&framed(&[&ether([2; 6], [4; 6], 202)]))
        .unwrap();
    let n = vm.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &ether([2; 6], [4; 6], 202)[..]);

    // Datagrams from anyone but the peer are dropped and counted.
    let stranger = end();
    stranger
        .send_to(&ether([4; 6], [6; 6], 7), relay_udp)
        .unwrap();

    // A peer that breaks the framing is disconnected; the next one is served.
    let mut broken = connect_retrying(tcp);
    broken.write_all(&0u32.to_be_bytes()).unwrap();
    let mut rest = Vec::new();
    assert!(broken.read_to_end(&mut rest).is_ok(), "closed by the relay");
    let mut oversized = connect_retrying(tcp);
    oversized.write_all(&70_000u32.to_be_bytes()).unwrap();
    assert!(
        oversized.read_to_end(&mut rest).is_ok(),
        "closed by the relay"
    );
    let mut after = connect_retrying(tcp);
    udp_until_stream(&vm, relay_udp, &mut after, &ether([4; 6], [2; 6], 203));

    let report = stop(relayed.running, &relayed.json);
    assert_eq!(endpoint_counter(&report, 1, "replaced"), 2, "{report}");
    assert_eq!(
        endpoint_counter(&report, 1, "framing_errors"),
        2,
        "{report}"
    );
    assert_eq!(
        report["from_even_endpoints"]["foreign_source"].as_u64(),
        Some(1),
        "{report}"
    );
    assert_eq!(
        report["from_odd_endpoints"]["frames"].as_u64(),
        Some(101),
        "{report}"
    );
    // The splice's measurements, per direction of the pair.
    let measured = &report["measurements"][0]["directions"];
    assert_eq!(measured[1]["frames"].as_u64(), Some(101), "{report}");
    assert_eq!(measured[1]["bytes"].as_u64(), Some(101 * 60), "{report}");
}

#[test]
fn tcp_reconnects_after_its_listener_went_away_and_drops_frames_meanwhile() {
    // The "VM" with -netdev stream,server=on.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let relayed = udp_relay(&format!("tcp://{server}"));
    let (vm, relay_udp) = (relayed.vm, relayed.udp);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp_until_stream(&vm, relay_udp, &mut conn, &ether([4; 6], [2; 6], 1));

    // The "VM" stops: its listener and connection close.
    drop(conn);
    drop(listener);
    // Frames for the side that is down are dropped and counted.
    for n in 0..20 {
        vm.send_to(&ether([4; 6], [2; 6], n), relay_udp).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    // It comes back on the same address; the relay finds it (backoff at most 2 s).
    let listener = TcpListener::bind(server).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp_until_stream(&vm, relay_udp, &mut conn, &ether([4; 6], [2; 6], 2));
    conn.write_all(&framed(&[&ether([2; 6], [4; 6], 3)]))
        .unwrap();
    let mut buf = [0; 2048];
    let n = vm.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &ether([2; 6], [4; 6], 3)[..]);

    let report = stop(relayed.running, &relayed.json);
    assert_eq!(endpoint_counter(&report, 1, "connections"), 2, "{report}");
    assert!(
        endpoint_counter(&report, 1, "connect_failures") >= 1,
        "{report}"
    );
    assert!(
        endpoint_counter(&report, 1, "dropped_down") >= 20,
        "{report}"
    );
}

#[test]
fn unix_listen_and_unix_connect_relay_between_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.sock");
    let json_a = dir.path().join("a.json");
    let json_b = dir.path().join("b.json");
    let vm = end();
    let udp_a: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    // Relay A listens on a Unix socket; relay B connects to it and listens on TCP.
    let a = relay(
        &[
            format!("udp://{udp_a}->{}", vm.local_addr().unwrap()),
            format!("unix-listen://{}", path.display()),
        ],
        &json_a,
    );
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let b = relay(
        &[
            format!("unix://{}", path.display()),
            format!("tcp-listen://{tcp}"),
        ],
        &json_b,
    );
    let mut client = connect_retrying(tcp);
    udp_until_stream(&vm, udp_a, &mut client, &ether([4; 6], [2; 6], 9));
    client
        .write_all(&framed(&[&ether([2; 6], [4; 6], 10)]))
        .unwrap();
    let mut buf = [0; 2048];
    let n = vm.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &ether([2; 6], [4; 6], 10)[..]);
    // A Unix peer that breaks the framing is disconnected, as a TCP one.
    let mut raw = UnixStream::connect(&path).unwrap();
    raw.write_all(&0u32.to_be_bytes()).unwrap();
    let b_report = stop(b, &json_b);
    let a_report = stop(a, &json_a);
    assert_eq!(
        endpoint_counter(&b_report, 0, "connections"),
        1,
        "{b_report}"
    );
    assert!(
        endpoint_counter(&a_report, 1, "connections") >= 1,
        "{a_report}"
    );
    assert!(!path.exists(), "the listener's socket file is removed");
}

/// Three UDP tunnel ends around a relay.
struct Three {
    ends: Vec<UdpSocket>,
    relay_ports: Vec<SocketAddr>,
    running: Option<Running>,
    json: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Three {
    fn start(mode: &[&str]) -> Three {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("report.json");
        let ends: Vec<UdpSocket> = (0..3).map(|_| end()).collect();
        let relay_ports: Vec<SocketAddr> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_udp_port()).parse().unwrap())
            .collect();
        let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
        for (end, port) in ends.iter().zip(&relay_ports) {
            args.push(format!("udp://{port}->{}", end.local_addr().unwrap()));
        }
        let running = relay(&args, &json);
        Three {
            ends,
            relay_ports,
            running: Some(running),
            json,
            _dir: dir,
        }
    }

    fn send(&self, from: usize, frame: &[u8]) {
        self.ends[from]
            .send_to(frame, self.relay_ports[from])
            .unwrap();
    }

    /// Every frame end `i` receives until 300 ms pass without one.
    fn drain(&self, i: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0; 2048];
        self.ends[i]
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        while let Ok(n) = self.ends[i].recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    fn stop(mut self) -> serde_json::Value {
        stop(self.running.take().unwrap(), &self.json)
    }
}

const MAC: [[u8; 6]; 3] = [
    [0x52, 0x54, 0, 0, 0, 1],
    [0x52, 0x54, 0, 0, 0, 2],
    [0x52, 0x54, 0, 0, 0, 3],
];

/// An STP configuration BPDU and an LLDPDU from `src` (to their group addresses).
fn control_frames(src: [u8; 6]) -> [Vec<u8>; 2] {
    [
        support::frames::stp_frame(src, 32768),
        support::frames::lldp_frame(src, "end"),
    ]
}

/// Waits until every end gets a broadcast from end 0 (the relay is up).
fn until_up(three: &Three) {
    let deadline = Instant::now() + WAIT;
    loop {
        three.send(0, &ether([0xff; 6], MAC[0], 0xee));
        if !three.drain(1).is_empty() && !three.drain(2).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never forwarded");
    }
    three.drain(0);
}

#[test]
fn a_hub_floods_to_every_other_end_and_never_back() {
    let three = Three::start(&["--hub"]);
    until_up(&three);
    for i in 0..3 {
        for frame in control_frames(MAC[i]) {
            three.send(i, &frame);
        }
        three.send(i, &ether(MAC[(i + 1) % 3], MAC[i], i as u8));
        let mut own = Vec::new();
        for j in 0..3 {
            let got = three.drain(j);
            if j == i {
                own = got;
            } else {
                assert_eq!(got.len(), 3, "end {j} gets end {i}'s three frames");
                assert_eq!(got[..2], control_frames(MAC[i]));
            }
        }
        assert!(own.is_empty(), "end {i} got its own frames back: {own:?}");
    }
    three.stop();
}

#[test]
fn a_switch_learns_so_unicast_reaches_only_its_destination() {
    let three = Three::start(&["--switch", "--aging", "60"]);
    until_up(&three);
    // Each end announces itself (and its STP and LLDP): every other end hears, none hears
    // its own back.
    for (i, mac) in MAC.iter().enumerate() {
        for frame in control_frames(*mac) {
            three.send(i, &frame);
        }
        for j in 0..3 {
            let got = three.drain(j);
            if j == i {
                assert!(got.is_empty(), "end {i} got its own BPDU/LLDPDU back");
            } else {
                assert_eq!(got, control_frames(*mac), "end {j} from end {i}");
            }
        }
    }
    // Learned: unicast between 0 and 1 reaches no third end.
    for n in 0..10 {
        three.send(0, &ether(MAC[1], MAC[0], n));
        three.send(1, &ether(MAC[0], MAC[1], 100 + n));
    }
    assert_eq!(three.drain(1).len(), 10);
    assert_eq!(three.drain(0).len(), 10);
    let third = three.drain(2);
    assert!(
        third.is_empty(),
        "the third end received {} unicast frames",
        third.len()
    );
    // An unknown destination floods (never back).
    three.send(2, &ether([0x52, 0x54, 0, 0, 0, 9], MAC[2], 1));
    assert_eq!(three.drain(0).len(), 1);
    assert_eq!(three.drain(1).len(), 1);
    assert!(three.drain(2).is_empty());
    let report = three.stop();
    assert_eq!(report["switch"]["entries"].as_u64(), Some(3), "{report}");
}

#[test]
fn bad_endpoints_exit_2_naming_the_part() {
    for (args, needle) in [
        (vec!["udp://5000-127.0.0.1:6000", "tcp://h:1"], "->"),
        (
            vec!["udp://5000->127.0.0.1:99999", "tcp://h:1"],
            "PEER_PORT",
        ),
        (vec!["udp://5000->127.0.0.1:6000", "tcp://:1"], "HOST"),
        (
            vec!["udp://5000->127.0.0.1:6000", "vxlan://10.0.0.1"],
            "vni",
        ),
        (vec!["udp://5000->127.0.0.1:6000", "gopher://x"], "scheme"),
        (
            vec!["tcp://h:1", "tcp://h:2", "tcp://h:3"],
            "need --hub or --switch",
        ),
        (vec!["tcp://h:1"], "ENDPOINT"),
    ] {
        let out = linkscope()
            .arg("relay")
            .args(&args)
            .output()
            .expect("run linkscope relay");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let udp_taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp_taken.local_addr().unwrap();
    for args in [
        vec![
            format!("tcp-listen://{addr}"),
            format!("udp://127.0.0.1:{}->127.0.0.1:9", free_udp_port()),
        ],
        vec![
            format!("udp://{udp_addr}->127.0.0.1:9"),
            format!("tcp://{addr}"),
        ],
    ] {
        let mut child: Child = linkscope()
            .arg("relay")
            .args(&args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, WAIT, "the relay did not exit");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("in use"), "{stderr}");
        assert!(
            stderr.contains(&addr.to_string()) || stderr.contains(&udp_addr.to_string()),
            "{stderr}"
        );
    }
}

#[test]
fn expect_passes_once_every_endpoint_sent_lldp_and_stp_and_fails_naming_what_never_came() {
    let mut three = Three::start(&["--hub", "--expect", "lldp,stp", "--timeout", "60"]);
    until_up(&three);
    // Each end sends its LLDPDU and BPDU until the relay has seen them from every end.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        for (i, mac) in MAC.iter().enumerate() {
            for frame in control_frames(*mac) {
                three.send(i, &frame);
            }
        }
        if let Some(status) = three.running.as_mut().unwrap().0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not stop on --expect"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "--expect passed: {status}");

    let dir = tempfile::tempdir().unwrap();
    let a = end();
    let b = end();
    let out = linkscope()
        .arg("relay")
        .args([
            "-q",
            "--stats-interval",
            "0",
            "--expect",
            "lacp",
            "--timeout",
            "1",
        ])
        .args(["--name", "first", "--name", "second"])
        .arg(format!(
            "udp://127.0.0.1:{}->{}",
            free_udp_port(),
            a.local_addr().unwrap()
        ))
        .arg(format!(
            "udp://127.0.0.1:{}->{}",
            free_udp_port(),
            b.local_addr().unwrap()
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("never seen")
            && stderr.contains("lacp from first")
            && stderr.contains("lacp from second"),
        "{stderr}"
    );
}

#[test]
fn a_stalled_stream_peer_never_stalls_the_other_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let (sender, receiver) = (end(), end());
    let ports: Vec<SocketAddr> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_udp_port()).parse().unwrap())
        .collect();
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let running = relay(
        &[
            "--hub".into(),
            format!("udp://{}->{}", ports[0], sender.local_addr().unwrap()),
            format!("udp://{}->{}", ports[1], receiver.local_addr().unwrap()),
            format!("tcp-listen://{tcp}"),
        ],
        &json,
    );
    // A stream peer that connects and never reads: its queue and socket buffers fill up.
    let stalled = connect_retrying(tcp);
    let frame = ether([0xff; 6], MAC[0], 1);
    let deadline = Instant::now() + WAIT;
    let mut buf = [0; 2048];
    while receiver.recv(&mut buf).is_err() {
        sender.send_to(&frame, ports[0]).unwrap();
        assert!(Instant::now() < deadline, "the hub never forwarded");
    }
    // 60 MB for the stalled peer, far beyond its queue and the kernel's buffers; every frame
    // paced so the UDP receiver can keep up, and each must reach it.
    let big = {
        let mut f = ether([0xff; 6], MAC[0], 2);
        f.resize(1500, 2);
        f
    };
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut delivered = 0;
    for _ in 0..40_000 {
        sender.send_to(&big, ports[0]).unwrap();
        let n = receiver
            .recv(&mut buf)
            .expect("the UDP end keeps receiving");
        assert_eq!(&buf[..n], &big[..]);
        delivered += 1;
    }
    assert_eq!(delivered, 40_000);
    let report = stop(running, &json);
    drop(stalled);
    assert!(
        endpoint_counter(&report, 2, "dropped_queue") > 0,
        "the stalled peer's frames are dropped and counted: {report}"
    );
}

#[test]
fn the_capture_has_one_interface_per_endpoint_as_tshark_reads_it() {
    let test = "the_capture_has_one_interface_per_endpoint_as_tshark_reads_it";
    if !support::wireshark::have("tshark", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("relay.pcapng");
    let ends: Vec<UdpSocket> = (0..3).map(|_| end()).collect();
    let ports: Vec<SocketAddr> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_udp_port()).parse().unwrap())
        .collect();
    let mut relay = linkscope();
    relay
        .args([
            "relay",
            "--switch",
            "-q",
            "--stats-interval",
            "0",
            "-c",
            "3",
            "-w",
        ])
        .arg(&pcap)
        .args(["--name", "vm1", "--name", "vm2", "--name", "vm3"]);
    for (end, port) in ends.iter().zip(&ports) {
        relay.arg(format!("udp://{port}->{}", end.local_addr().unwrap()));
    }
    let mut running = Running(relay.stderr(Stdio::null()).spawn().unwrap());
    // Each end sends a frame (again until the relay is up).
    let deadline = Instant::now() + WAIT;
    let mut buf = [0; 2048];
    for (i, mac) in MAC.iter().enumerate() {
        let next = (i + 1) % 3;
        loop {
            ends[i]
                .send_to(&ether([0xff; 6], *mac, i as u8), ports[i])
                .unwrap();
            if ends[next].recv(&mut buf).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the relay never forwarded");
        }
    }
    terminate(running.0.id());
    let status = wait_exit(&mut running.0, WAIT, "the relay did not stop on SIGTERM");
    assert!(status.success(), "{status}");
    let rows = support::wireshark::tshark_fields(&pcap, &[], &["frame.interface_name", "eth.src"]);
    // Every frame is on the interface of the endpoint it came from, and each endpoint's
    // frames are there.
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        let src = match row[0].as_str() {
            "vm1" => "52:54:00:00:00:01",
            "vm2" => "52:54:00:00:00:02",
            "vm3" => "52:54:00:00:00:03",
            other => panic!("unexpected interface {other:?}: {rows:?}"),
        };
        assert_eq!(row[1], src, "{rows:?}");
        seen.insert(row[0].clone());
    }
    assert_eq!(seen.len(), 3, "{rows:?}");
}

#[test]
fn a_connection_attempt_nobody_answers_is_given_up_and_retried() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
    // to it neither succeeds nor fails.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let server = listener.local_addr().unwrap().as_socket().unwrap();
    // One connection fills a queue of length 0; a second try makes sure (it times out).
    let fillers: Vec<TcpStream> = (0..2)
        .filter_map(|_| TcpStream::connect_timeout(&server, Duration::from_millis(500)).ok())
        .collect();
    let relayed = udp_relay(&format!("tcp://{server}"));
    let (vm, relay_udp) = (relayed.vm, relayed.udp);
    // Long enough for one unanswered attempt to be given up (3 s) and the next begun.
    std::thread::sleep(Duration::from_secs(5));
    // Room again: the relay's next attempt gets through.
    drop(fillers);
    let listener: TcpListener = listener.into();
    listener.set_nonblocking(false).unwrap();
    let mut conn = loop {
        let (conn, _) = listener.accept().unwrap();
        // Skip what the fillers and the given-up attempts left in the queue.
        let mut probe = [0u8; 1];
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match conn.peek(&mut probe) {
            Ok(0) => continue,
            _ => break conn,
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp_until_stream(&vm, relay_udp, &mut conn, &ether([4; 6], [2; 6], 1));
    let report = stop(relayed.running, &relayed.json);
    assert!(
        endpoint_counter(&report, 1, "connect_failures") >= 1,
        "an unanswered attempt counts as failed: {report}"
    );
}

#[test]
fn a_point_to_point_relay_is_impaired_and_controlled_while_it_runs() {
    let (a, b) = (end(), end());
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let dir = tempfile::tempdir().unwrap();
    let (json, control) = (dir.path().join("r.json"), dir.path().join("ctl.sock"));
    let running = relay(
        &[
            format!("udp://127.0.0.1:{pa}->{}", a.local_addr().unwrap()),
            format!("udp://127.0.0.1:{pb}->{}", b.local_addr().unwrap()),
            "--impair".into(),
            "a>b:down".into(),
            "--control".into(),
            control.to_str().unwrap().into(),
        ],
        &json,
    );
    let to_a: SocketAddr = format!("127.0.0.1:{pa}").parse().unwrap();
    let to_b: SocketAddr = format!("127.0.0.1:{pb}").parse().unwrap();
    let frame = ether([2, 0, 0, 0, 0, 0xb], [2, 0, 0, 0, 0, 0xa], 7);
    let mut buf = [0u8; 2048];
    // B to A passes (once the relay is up); A to B is cut.
    let deadline = Instant::now() + WAIT;
    loop {
        b.send_to(&frame, to_b).unwrap();
        if a.recv(&mut buf).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "b>a never passed");
    }
    for _ in 0..5 {
        a.send_to(&frame, to_a).unwrap();
    }
    assert!(
        b.recv(&mut buf).is_err(),
        "a frame crossed the pulled a>b cable"
    );
    // `ctl up` plugs it back while the relay runs.
    let out = linkscope()
        .args(["ctl", "--control"])
        .arg(&control)
        .args(["relay", "up"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + WAIT;
    loop {
        a.send_to(&frame, to_a).unwrap();
        if b.recv(&mut buf).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a>b did not come back after ctl up"
        );
    }
    stop(running, &json);
    // A hub has no two directions to impair.
    let out = linkscope()
        .args(["relay", "--hub", "--impair", "loss=1%"])
        .args([
            format!("udp://127.0.0.1:{}->127.0.0.1:9", free_udp_port()),
            format!("udp://127.0.0.1:{}->127.0.0.1:9", free_udp_port()),
            format!("udp://127.0.0.1:{}->127.0.0.1:9", free_udp_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--impair"));
}

/// A TCP stream to `addr` from the local address `from` (any 127/8 address is this host's).
fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

#[test]
fn tcp_listen_with_from_closes_other_addresses_and_keeps_its_peer() {
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let relayed = udp_relay(&format!("tcp-listen://{tcp}?from=127.0.0.1"));
    let (vm, udp) = (relayed.vm, relayed.udp);
    let mut peer = connect_retrying(tcp);
    udp_until_stream(&vm, udp, &mut peer, &ether([4; 6], [2; 6], 1));
    // A connection from 127.0.0.2 is closed at once: no frame of it reaches the VM, and it
    // does not replace the peer.
    let mut stranger = connect_from("127.0.0.2", tcp);
    let _ = stranger.write_all(&framed(&[&ether([2; 6], [6; 6], 66)]));
    let mut byte = [0; 1];
    assert!(
        matches!(stranger.read(&mut byte), Ok(0) | Err(_)),
        "the stranger's connection is closed"
    );
    vm.send_to(&ether([4; 6], [2; 6], 2), udp).unwrap();
    assert_eq!(
        read_frame(&mut peer),
        Some(ether([4; 6], [2; 6], 2)),
        "the peer still receives"
    );
    peer.write_all(&framed(&[&ether([2; 6], [4; 6], 3)]))
        .unwrap();
    let mut buf = [0; 2048];
    let n = vm.recv(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &ether([2; 6], [4; 6], 3)[..],
        "only the peer's frame"
    );
    let report = stop(relayed.running, &relayed.json);
    assert_eq!(endpoint_counter(&report, 1, "refused"), 1, "{report}");
    assert_eq!(endpoint_counter(&report, 1, "connections"), 1, "{report}");
    assert_eq!(endpoint_counter(&report, 1, "replaced"), 0, "{report}");
}
