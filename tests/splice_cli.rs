//! `linkscope splice` as a process: start report, per-frame lines, signals, summary, errors.

mod support;

use support::process::{Running, linkscope};

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use linkscope::net::tunnel;

fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_millis(200)))
}

/// Sends `frame` from `a` to `lb` until `b` receives a copy that did not come straight from
/// `a` (so the splice is in the path). Returns how many copies `b` got meanwhile.
fn until_spliced(a: &UdpSocket, b: &UdpSocket, frame: &[u8]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0; 2048];
    let mut copies = 0;
    // Forget what an earlier splice forwarded.
    b.set_nonblocking(true).unwrap();
    while b.recv(&mut buf).is_ok() {}
    b.set_nonblocking(false).unwrap();
    while Instant::now() < deadline {
        a.send_to(frame, b.local_addr().unwrap()).unwrap();
        if let Ok((_, from)) = b.recv_from(&mut buf) {
            copies += 1;
            if from != a.local_addr().unwrap() {
                return copies;
            }
        }
    }
    panic!("the splice never stepped in");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn finish(mut running: Running) -> (std::process::ExitStatus, String, String) {
    let mut out = String::new();
    let mut err = String::new();
    running
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = running.0.wait().unwrap();
    (status, out, err)
}

const ARP: [u8; 42] = {
    let mut f = [0u8; 42];
    let mut i = 0;
    while i < 6 {
        f[i] = 0xff;
        i += 1;
    }
    f[12] = 0x08;
    f[13] = 0x06;
    f
};

#[test]
fn prints_frames_and_a_summary_and_stops_on_sigint() {
    let (a, b) = (end(), end());
    let child = linkscope()
        .args(["splice", "--a", &a.local_addr().unwrap().to_string()])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(child);
    until_spliced(&a, &b, &ARP);
    a.send_to(&[], b.local_addr().unwrap()).unwrap();
    // A frame after the empty datagram: once it is through, the empty one was handled.
    until_spliced(&a, &b, &ARP);
    signal(&running.0, "INT");
    let (status, out, err) = finish(running);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("both directions are visible from this host"),
        "{err}"
    );
    assert!(err.contains("on this host, bound"), "{err}");
    let line = out.lines().last().expect("a line per frame");
    assert!(
        line.contains(&format!(
            "{} > {}",
            a.local_addr().unwrap(),
            b.local_addr().unwrap()
        )),
        "{line}"
    );
    assert!(line.contains("42 bytes") && line.contains("ARP"), "{line}");
    assert!(err.contains("1 zero-length"), "{err}");
}

#[test]
fn quiet_count_stops_by_itself_and_sigterm_stops_too() {
    let (a, b) = (end(), end());
    let child = linkscope()
        .args([
            "splice",
            "-q",
            "-c",
            "3",
            "--a",
            &a.local_addr().unwrap().to_string(),
        ])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    until_spliced(&a, &b, &ARP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        a.send_to(&ARP, b.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, out, err) = finish(running);
    assert!(status.success(), "{err}");
    assert!(out.is_empty(), "{out}");
    // -c counts frames seen; the splice forwards until it has stopped.
    let marker = format!("> {}: ", b.local_addr().unwrap());
    let after = &err[err.find(&marker).expect("a summary line") + marker.len()..];
    let frames: u64 = after.split(' ').next().unwrap().parse().unwrap();
    assert!(frames >= 3, "{err}");

    let child = linkscope()
        .args(["splice", "-q", "--a", &a.local_addr().unwrap().to_string()])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(child);
    until_spliced(&a, &b, &ARP);
    signal(&running.0, "TERM");
    let (status, _, err) = finish(running);
    assert!(status.success(), "{err}");
}

#[test]
fn an_exclusive_address_is_a_clear_input_error() {
    let owner = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let out = linkscope()
        .args(["splice", "-q", "--a", &peer.to_string()])
        .args(["--b", &owner.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without SO_REUSEADDR"), "{err}");
}

#[test]
fn relay_mode_needs_listen_ports() {
    let out = linkscope()
        .args([
            "splice",
            "--mode",
            "relay",
            "--a",
            "127.0.0.1:1",
            "--b",
            "127.0.0.1:2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn a_cross_host_link_splices_the_direction_arriving_here() {
    // A local, non-loopback address: the source this host would use towards a documentation
    // address (no datagram is sent).
    let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
    let Ok(local_ip) = probe
        .connect("192.0.2.77:9")
        .and_then(|()| probe.local_addr())
        .map(|a| a.ip())
    else {
        eprintln!(
            "a_cross_host_link_splices_the_direction_arriving_here: skipped: no route off this host"
        );
        return;
    };
    let b = tunnel::endpoint(SocketAddr::new(local_ip, 0)).unwrap();
    let remote = if local_ip.to_string() == "192.0.2.77" {
        "192.0.2.78:9"
    } else {
        "192.0.2.77:9"
    };
    let child = linkscope()
        .args([
            "splice",
            "-q",
            "--a",
            remote,
            "--b",
            &b.local_addr().unwrap().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(child);
    // The report comes before the sockets open; give the splice its start, then stop it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = b.local_addr().unwrap();
    while !two_sockets_on(addr) {
        assert!(
            Instant::now() < deadline,
            "the splice never opened its steal socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&running.0, "TERM");
    let (status, _, err) = finish(running);
    assert!(status.success(), "{err}");
    assert!(err.contains("on another host"), "{err}");
    assert!(
        err.contains(&format!("only {remote} > {}", b.local_addr().unwrap())),
        "{err}"
    );
    assert!(err.contains("0 frames"), "{err}");
}

/// True when two sockets are bound to `addr` (the VM's and the splice's steal socket).
fn two_sockets_on(addr: SocketAddr) -> bool {
    let hex = format!(":{:04X} ", addr.port());
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&hex))
        .count()
        >= 2
}

#[test]
fn relay_mode_forwards_between_its_two_ports() {
    let (a, b) = (end(), end());
    // Two ports free right now (bound on port 0, read back, released for the splice).
    let ports: Vec<u16> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let listen = format!("127.0.0.1:{},{}", ports[0], ports[1]);
    let child = linkscope()
        .args(["splice", "-q", "--mode", "relay", "--listen", &listen])
        .args(["--a", &a.local_addr().unwrap().to_string()])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(child);
    let port_a: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0; 128];
    // A sends to the splice's first port; B receives from the splice's second port.
    loop {
        assert!(Instant::now() < deadline, "the relay never forwarded");
        a.send_to(&ARP, port_a).unwrap();
        if let Ok((n, from)) = b.recv_from(&mut buf) {
            assert_eq!((&buf[..n], from.port()), (&ARP[..], ports[1]));
            break;
        }
    }
    signal(&running.0, "INT");
    let (status, _, err) = finish(running);
    assert!(status.success(), "{err}");
    assert!(err.contains("relay mode"), "{err}");
}

/// A mapping of five links between emulated ends on loopback (kept bound while the test
/// runs): 100:1-102:1, 101:1-102:2, 100:2-103:1, 104:1-105:1, 106:1-107:1.
fn five_links() -> (tempfile::TempDir, Vec<UdpSocket>) {
    let dir = tempfile::tempdir().unwrap();
    let ends: Vec<UdpSocket> = (0..10).map(|_| end()).collect();
    let port = |i: usize| ends[i].local_addr().unwrap().port();
    let mut mapping = String::from("links:\n");
    for (i, (a, b)) in [
        ("100, 1", "102, 1"),
        ("101, 1", "102, 2"),
        ("100, 2", "103, 1"),
        ("104, 1", "105, 1"),
        ("106, 1", "107, 1"),
    ]
    .iter()
    .enumerate()
    {
        mapping.push_str(&format!(
            "  - [{a}, {b}, {{port_a: {}, port_b: {}}}]\n",
            port(2 * i),
            port(2 * i + 1)
        ));
    }
    std::fs::write(dir.path().join("mapping.yaml"), mapping).unwrap();
    (dir, ends)
}

/// The links a splice of `selection` steps into, from its start report, in its order.
fn spliced_links(dir: &std::path::Path, selection: &[&str]) -> Vec<String> {
    let out = linkscope()
        .current_dir(dir)
        .args(["splice", "--mapping", "mapping.yaml", "-q", "--no-measure"])
        .args(selection)
        .args(["-a", "duration:1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{selection:?}: {err}");
    err.lines()
        .filter_map(|l| l.strip_prefix("splicing "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn all_and_link_patterns_splice_the_links_they_name_once_in_mapping_order() {
    let (dir, _ends) = five_links();
    let dir = dir.path();
    assert_eq!(
        spliced_links(dir, &["--all"]),
        [
            "100:1-102:1",
            "101:1-102:2",
            "100:2-103:1",
            "104:1-105:1",
            "106:1-107:1"
        ]
    );
    assert_eq!(
        spliced_links(dir, &["--link", "100"]),
        ["100:1-102:1", "100:2-103:1"]
    );
    assert_eq!(
        spliced_links(dir, &["--link", "102:*"]),
        ["100:1-102:1", "101:1-102:2"]
    );
    assert_eq!(
        spliced_links(
            dir,
            &[
                "--link",
                "105:eth1",
                "--link",
                "103:1",
                "--link",
                "100:1-102:1"
            ]
        ),
        ["100:1-102:1", "100:2-103:1", "104:1-105:1"]
    );
    assert_eq!(
        spliced_links(
            dir,
            &["--link", "100", "--link", "100:1", "--link", "102:1-100:1"]
        ),
        ["100:1-102:1", "100:2-103:1"]
    );
}

#[test]
fn a_link_pattern_that_names_nothing_exits_2_naming_it() {
    let (dir, _ends) = five_links();
    for (pattern, says) in [
        ("108", "no link '108' in the mapping"),
        ("100:3", "no link '100:3' in the mapping"),
        ("100:1-103:1", "no link '100:1-103:1' in the mapping"),
        ("100:x", "'100:x' is not a link pattern"),
        ("*", "'*' is not a link pattern"),
    ] {
        let out = linkscope()
            .current_dir(dir.path())
            .args(["splice", "--mapping", "mapping.yaml", "-q"])
            .args(["--link", "100", "--link", pattern])
            // Were the pattern accepted, the splice would still end.
            .args(["-a", "duration:5"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{pattern}: {err}");
        assert!(err.contains(says), "{pattern}: {err}");
        assert!(
            !err.contains("splicing"),
            "{pattern}: nothing spliced: {err}"
        );
    }
    let out = linkscope()
        .current_dir(dir.path())
        .args([
            "splice",
            "--mapping",
            "mapping.yaml",
            "--all",
            "--link",
            "100",
        ])
        .args(["-q", "-a", "duration:5"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--all and --link exclude each other"
    );
}

#[test]
fn the_status_line_of_many_links_shows_their_totals() {
    let (dir, _ends) = five_links();
    let status = |selection: &[&str]| -> Vec<String> {
        let out = linkscope()
            .current_dir(dir.path())
            .args(["splice", "--mapping", "mapping.yaml", "-q"])
            .args(selection)
            .args(["--stats-interval", "0.1", "-a", "duration:2"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let lines: Vec<String> = err
            .lines()
            .filter(|l| l.contains("fr/s") && !l.starts_with("  ") && !l.starts_with("link "))
            .map(str::to_owned)
            .collect();
        assert!(!lines.is_empty(), "no status line in\n{err}");
        lines
    };
    for line in status(&["--all"]) {
        assert!(
            line.starts_with("5 links, 0 carrying frames: 0 fr/s 0.0 Mbit/s"),
            "{line}"
        );
    }
    for line in status(&["--link", "100", "--link", "101"]) {
        assert!(
            line.starts_with("100:1-102:1: a>b 0 fr/s 0.0 Mbit/s | b>a 0 fr/s 0.0 Mbit/s  "),
            "{line}"
        );
        assert!(line.contains("  100:2-103:1: a>b 0 fr/s"), "{line}");
    }
}
