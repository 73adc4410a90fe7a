//! `linkscope relay` with the exec, stdio and tap endpoints, as a process: a link carried
//! through a child relay on a pipe (what `exec://ssh HOST linkscope relay stdio …` does across
//! hosts), the child killed and its end reported on stop, a stdio relay that stops when its
//! input ends, and the refusals: a tap without CAP_NET_ADMIN, stdio twice or beside `-w -`.

mod support;

use std::io::Write as _;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::ports::free_udp_port;
use support::process::{Running, linkscope, wait_exit};

const WAIT: Duration = Duration::from_secs(10);

/// A QEMU-like tunnel end on 127.0.0.1 that waits at most 2 s per read.
fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_secs(2)))
}

/// A frame from the VM at `a` to the relay, received at `b` whole, from the relay's port.
fn crosses(a: &UdpSocket, to: u16, b: &UdpSocket, from: u16, frame: &[u8]) -> bool {
    a.send_to(frame, ("127.0.0.1", to)).unwrap();
    let mut buf = [0; 65_536];
    match b.recv_from(&mut buf) {
        Ok((n, source)) => &buf[..n] == frame && source.port() == from,
        Err(_) => false,
    }
}

#[test]
fn a_link_crosses_a_child_relay_on_its_pipes_and_the_child_dies_with_the_relay() {
    let (a, b) = (end(), end());
    let (a_port, b_port) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let (relay_a, relay_b) = (free_udp_port(), free_udp_port());
    // The child's locator is quoted for `sh -c`: `->` holds a redirection.
    let child = format!(
        "exec://{} relay stdio 'udp://127.0.0.1:{relay_b}->127.0.0.1:{b_port}'",
        env!("CARGO_BIN_EXE_linkscope")
    );
    let mut relay = Running(
        linkscope()
            .args(["relay", "-q", "--stats-interval", "0"])
            .arg(format!("udp://127.0.0.1:{relay_a}->127.0.0.1:{a_port}"))
            .arg(&child)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The first frames may go before the child's UDP end is bound: retry the first one.
    let first = [0x5a; 60];
    assert!(
        (0..50).any(|_| crosses(&a, relay_a, &b, relay_b, &first)),
        "no frame crossed the child relay"
    );
    for size in [60, 1514, 9014, 65_000] {
        let frame: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        assert!(
            crosses(&a, relay_a, &b, relay_b, &frame),
            "{size} bytes a→b"
        );
        assert!(
            crosses(&b, relay_b, &a, relay_a, &frame),
            "{size} bytes b→a"
        );
    }
    let killed = Command::new("kill")
        .args(["-TERM", &relay.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_exit(&mut relay.0, WAIT, "the relay did not stop on SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(relay.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("the child was ended by signal 9"),
        "{stderr}"
    );
    // The child relay is gone with its group: its UDP port is free again.
    UdpSocket::bind(("127.0.0.1", relay_b)).expect("the child relay still holds its port");
}

#[test]
fn a_stdio_relay_stops_when_its_input_ends() {
    let vm = end();
    let port = vm.local_addr().unwrap().port();
    let mut relay = Running(
        linkscope()
            .args(["relay", "--stats-interval", "0", "stdio"])
            .arg(format!(
                "udp://127.0.0.1:{}->127.0.0.1:{port}",
                free_udp_port()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let frame = [0x42; 60];
    let mut stdin = relay.0.stdin.take().unwrap();
    stdin.write_all(&60u32.to_be_bytes()).unwrap();
    stdin.write_all(&frame).unwrap();
    stdin.flush().unwrap();
    let mut buf = [0; 128];
    let (n, _) = vm.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &frame);
    drop(stdin);
    let status = wait_exit(&mut relay.0, WAIT, "the relay did not stop at end of input");
    assert!(status.success(), "{status}");
}

/// Runs `linkscope ARGS` and returns (exit code, stderr).
fn refused(command: &mut Command) -> (Option<i32>, String) {
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn stdio_is_one_and_its_stdout_is_its_own() {
    let udp = format!(
        "udp://127.0.0.1:{}->127.0.0.1:{}",
        free_udp_port(),
        free_udp_port()
    );
    for args in [
        vec!["relay", "stdio", "stdio"],
        vec!["relay", "-w", "-", "stdio", &udp],
        vec!["relay", "--json", "-", "stdio", &udp],
    ] {
        let (code, stderr) = refused(linkscope().args(&args).stdin(Stdio::null()));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("stdio"), "{args:?}: {stderr}");
    }
}

/// Without CAP_NET_ADMIN a tap endpoint stops the relay before anything runs: exit 2, the
/// reason on stderr. As root, the capability is dropped with setpriv (util-linux).
#[test]
fn a_tap_without_cap_net_admin_exits_2_with_the_reason() {
    let tap = format!("tap://lsnp{}", std::process::id());
    let udp = format!(
        "udp://127.0.0.1:{}->127.0.0.1:{}",
        free_udp_port(),
        free_udp_port()
    );
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            == Some("0")
    });
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--inh-caps=-net_admin",
            "--bounding-set=-net_admin",
            env!("CARGO_BIN_EXE_linkscope"),
        ]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_linkscope"))
    };
    let (code, stderr) = refused(command.args(["relay", &tap, &udp]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("endpoint `{tap}`")), "{stderr}");
    assert!(stderr.contains("needs CAP_NET_ADMIN"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A VXLAN peer on loopback (a plain UDP socket speaking RFC 7348) and an emulated QEMU end
/// through `linkscope relay vxlan://… udp://…`: frames of our VNI cross both ways with the
/// header added and removed; another VNI, bad flags, a short datagram and a stranger's
/// datagram are dropped and counted in the JSON report.
#[test]
fn vxlan_takes_its_network_only_and_counts_the_rest() {
    let vm = end();
    let peer = end();
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (relay_udp, relay_vxlan) = (free_udp_port(), free_udp_port());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let mut relay = Running(
        linkscope()
            .args(["relay", "-q", "--stats-interval", "0", "--json"])
            .arg(&json)
            .arg(format!(
                "vxlan://{}?vni=5000&local=127.0.0.1:{relay_vxlan}",
                peer.local_addr().unwrap()
            ))
            .arg(format!(
                "udp://127.0.0.1:{relay_udp}->{}",
                vm.local_addr().unwrap()
            ))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let frame: Vec<u8> = (0..1514).map(|i| (i % 251) as u8).collect();
    let header = |flags: u8, vni: u32| {
        let v = vni.to_be_bytes();
        [flags, 0, 0, 0, v[1], v[2], v[3], 0]
    };
    let datagram = |h: [u8; 8]| [&h[..], &frame].concat();
    // Ours, until the relay is up; then the refusals, then ours again.
    let mut buf = [0; 4096];
    let up = (0..50).any(|_| {
        peer.send_to(&datagram(header(0x08, 5000)), ("127.0.0.1", relay_vxlan))
            .unwrap();
        vm.recv(&mut buf).is_ok_and(|n| buf[..n] == frame[..])
    });
    assert!(up, "no frame crossed from the VXLAN peer");
    let to = ("127.0.0.1", relay_vxlan);
    peer.send_to(&datagram(header(0x08, 5001)), to).unwrap();
    peer.send_to(&datagram(header(0x0c, 5000)), to).unwrap();
    peer.send_to(&header(0x08, 5000), to).unwrap();
    stranger.send_to(&datagram(header(0x08, 5000)), to).unwrap();
    peer.send_to(&datagram(header(0x08, 5000)), to).unwrap();
    let n = vm.recv(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &frame[..],
        "the next frame through is the good one"
    );
    // The other way: the header is added, with our VNI.
    vm.send_to(&frame, ("127.0.0.1", relay_udp)).unwrap();
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(from.port(), relay_vxlan);
    assert_eq!(&buf[..8], &header(0x08, 5000));
    assert_eq!(&buf[8..n], &frame[..]);
    let killed = Command::new("kill")
        .args(["-TERM", &relay.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(wait_exit(&mut relay.0, WAIT, "the relay did not stop").success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let vxlan = &report["endpoints"][0];
    assert_eq!(vxlan["vxlan_other_vni"], 1, "{report}");
    assert_eq!(vxlan["vxlan_bad_header"], 2, "{report}");
    assert_eq!(
        report["from_even_endpoints"]["foreign_source"], 1,
        "{report}"
    );
    assert_eq!(report["from_odd_endpoints"]["frames"], 1, "{report}");
}

#[test]
fn a_vxlan_port_in_use_is_named() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, stderr) = refused(
        linkscope()
            .arg("relay")
            .arg(format!("vxlan://127.0.0.3:{port}?vni=1&local=127.0.0.1"))
            .arg(format!(
                "udp://127.0.0.1:{}->127.0.0.1:{}",
                free_udp_port(),
                free_udp_port()
            )),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} is in use")),
        "{stderr}"
    );
}
