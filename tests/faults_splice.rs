//! `linkscope splice` against faults: arguments that cannot make a link (exit 2), a closed
//! reader (the measured frames are the forwarded ones), the relay's own start report, and a
//! second splice on a link that is already spliced (refused naming the first, or with
//! --force taken from the first, which notices, warns, counts the gap and exits 1). Two real
//! `linkscope splice` processes on emulated QEMU ends.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::process::{Running, linkscope, wait_exit};

fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_millis(50)))
}

fn addr(s: &UdpSocket) -> String {
    s.local_addr().unwrap().to_string()
}

/// Runs `linkscope splice ARGS`, which must exit 2 within 10 s (it is killed otherwise);
/// returns its stderr.
fn refused(args: &[&str]) -> String {
    let mut splice = Running(
        linkscope()
            .arg("splice")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_exit(
        &mut splice.0,
        Duration::from_secs(10),
        &format!("splice {args:?} was not refused"),
    );
    let err = splice.stderr();
    assert_eq!(status.code(), Some(2), "{args:?}: {err}");
    err
}

#[test]
fn links_that_cannot_be_are_refused_with_exit_2() {
    let (a, b) = (end(), end());
    let (sa, sb) = (addr(&a), addr(&b));
    let err = refused(&["--a", &sa, "--b", &sa]);
    assert!(err.contains("same"), "{err}");
    let err = refused(&["--a", "127.0.0.1:0", "--b", &sb]);
    assert!(err.contains("port 0"), "{err}");
    let v6 = format!("[::1]:{}", b.local_addr().unwrap().port());
    let err = refused(&["--a", &sa, "--b", &v6]);
    assert!(err.contains("IPv4") && err.contains("IPv6"), "{err}");
    let err = refused(&["-c", "0", "--a", &sa, "--b", &sb]);
    assert!(err.contains("-c"), "{err}");
}

#[test]
fn a_relay_cannot_listen_on_the_ends_own_ports() {
    let (a, b, spare) = (end(), end(), end());
    let (sa, sb) = (addr(&a), addr(&b));
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let free = spare.local_addr().unwrap().port();
    for listen in [
        format!("127.0.0.1:{pa},{free}"),
        format!("127.0.0.1:{free},{pb}"),
        format!("0.0.0.0:{pb},{free}"),
    ] {
        let err = refused(&[
            "--mode", "relay", "--a", &sa, "--b", &sb, "--listen", &listen,
        ]);
        assert!(err.contains("own port"), "{listen}: {err}");
        assert!(!err.contains("relay mode instead"), "{listen}: {err}");
    }
    let listen = format!("127.0.0.1:0,{free}");
    let err = refused(&[
        "--mode", "relay", "--a", &sa, "--b", &sb, "--listen", &listen,
    ]);
    assert!(err.contains("port 0"), "{err}");
    // A port another socket holds: said so, without the advice meant for steal mode.
    let taken = spare.local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{taken},{}", free_port(end()));
    let err = refused(&[
        "--mode", "relay", "--a", &sa, "--b", &sb, "--listen", &listen,
    ]);
    assert!(err.contains("in use"), "{err}");
    assert!(!err.contains("relay mode instead"), "{err}");
}

#[test]
fn a_relay_start_report_speaks_of_a_relay() {
    let (a, b) = (end(), end());
    let (la, lb) = (end(), end());
    let listen = format!("127.0.0.1:{},{}", free_port(la), free_port(lb));
    // Ends that are not bound: the relay sends to them once their VMs bind them.
    let (pa, pb) = (free_port(a), free_port(b));
    let mut relay = Running(
        linkscope()
            .args(["splice", "--mode", "relay", "-q"])
            .args([
                "--a",
                &format!("127.0.0.1:{pa}"),
                "--b",
                &format!("127.0.0.1:{pb}"),
            ])
            .args(["--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(relay.0.stderr.take().unwrap()).lines();
    let report: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    let report = report.join("\n");
    assert!(report.contains("relay mode"), "{report}");
    assert!(
        !report.contains("receives first") && !report.contains("binds it too"),
        "steal-mode wording in a relay's report: {report}"
    );
    assert!(report.contains("not bound yet"), "{report}");
}

/// A port that was free a moment ago (its socket is closed on return).
fn free_port(s: UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

/// Sends a frame from `a` to `b` every millisecond until `done`.
fn traffic(a: UdpSocket, b: SocketAddr, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut frame = vec![0x42; 100];
        frame[..6].fill(0xff);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        while !done.load(Ordering::Relaxed) {
            let _ = a.send_to(&frame, b);
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// The forwarded and the measured frames of direction `from > to` in a splice's summary.
fn forwarded_and_measured(err: &str, from: &str, to: &str) -> (u64, u64) {
    let marker = format!("{from} > {to}: ");
    let mut counts = err.lines().filter_map(|line| {
        let at = line.find(&marker)?;
        line[at + marker.len()..].split(' ').next()?.parse().ok()
    });
    let forwarded = counts.next().expect("a forwarded line");
    let measured = counts.next().expect("a measured line");
    (forwarded, measured)
}

#[test]
fn after_the_reader_closes_the_measured_frames_are_the_forwarded_ones() {
    for round in 0..3 {
        let (a, b) = (end(), end());
        let (sa, sb) = (addr(&a), addr(&b));
        let mut splice = Running(
            linkscope()
                .args(["splice", "--a", &sa, "--b", &sb, "-w", "-"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let done = Arc::new(AtomicBool::new(false));
        let sender = traffic(a, b.local_addr().unwrap(), done.clone());
        // The reader takes a few blocks, then goes away while frames keep coming.
        let mut stdout = splice.0.stdout.take().unwrap();
        let mut taken = vec![0; 4000];
        stdout.read_exact(&mut taken).unwrap();
        drop(stdout);
        let status = wait_exit(
            &mut splice.0,
            Duration::from_secs(20),
            "the splice kept going after its reader closed",
        );
        done.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        let err = splice.stderr();
        assert!(status.success(), "a closed reader is a quiet end: {err}");
        let (forwarded, measured) = forwarded_and_measured(&err, &sa, &sb);
        assert_eq!(forwarded, measured, "round {round}: {err}");
    }
}

/// A splice of `a`–`b` (with `extra` arguments), its stderr lines on a channel.
fn splice(a: &str, b: &str, extra: &[&str]) -> (Running, mpsc::Receiver<String>) {
    let mut child = linkscope()
        .args(["splice", "-q", "--stats-interval", "0", "--a", a, "--b", b])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

/// Lines from `rx` until one contains `text`; fails after 20 s.
fn until_line(rx: &mpsc::Receiver<String>, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
    panic!("no line with {text:?} in {seen:#?}");
}

fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

/// Sends from `a` to `b` until `b` gets a copy from a splice (not from `a`) whose source
/// `wanted` accepts; returns that source.
fn until_forwarded(
    a: &UdpSocket,
    b: &UdpSocket,
    wanted: impl Fn(SocketAddr) -> bool,
) -> SocketAddr {
    let mut buf = [0; 2048];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        a.send_to(&[0xff; 60], b.local_addr().unwrap()).unwrap();
        if let Ok((_, from)) = b.recv_from(&mut buf)
            && from != a.local_addr().unwrap()
            && wanted(from)
        {
            return from;
        }
    }
    panic!("no splice forwarded");
}

#[test]
fn a_second_splice_is_refused_naming_the_first_unless_forced() {
    let (a, b) = (end(), end());
    let (sa, sb) = (addr(&a), addr(&b));
    let (first, first_err) = splice(&sa, &sb, &[]);
    until_line(&first_err, "both directions");
    let first_forwarder = until_forwarded(&a, &b, |_| true);

    let err = refused(&["-q", "--a", &sa, "--b", &sb]);
    assert!(
        err.contains(&format!("pid {}", first.0.id())) && err.contains("linkscope"),
        "names the first splice's process: {err}"
    );
    assert!(err.contains("--force"), "{err}");

    // Forced: the second takes the tunnel; the first notices and warns.
    let (second, second_err) = splice(&sa, &sb, &["--force"]);
    until_line(&second_err, "both directions");
    let lost = until_line(&first_err, "lost");
    let warning = lost.last().unwrap();
    assert!(
        warning.contains(&format!("pid {}", second.0.id())),
        "names the taker: {warning}"
    );
    until_forwarded(&a, &b, |from| from != first_forwarder);

    // The second goes away (it took the tunnel knowingly: no gap of its own, exit 0); the
    // tunnel comes back to the first, which says so.
    let mut second = second;
    interrupt(&second.0);
    let status = wait_exit(&mut second.0, Duration::from_secs(10), "the second splice");
    let second_lines: Vec<String> = second_err.try_iter().collect();
    assert!(status.success(), "{second_lines:#?}");
    assert!(
        !second_lines
            .iter()
            .any(|l| l.contains("lost") || l.contains("gap")),
        "{second_lines:#?}"
    );
    until_line(&first_err, "regained");
    until_forwarded(&a, &b, |from| from == first_forwarder);

    let mut first = first;
    interrupt(&first.0);
    let status = wait_exit(&mut first.0, Duration::from_secs(10), "the first splice");
    let summary = until_line(&first_err, "gap");
    assert_eq!(
        status.code(),
        Some(1),
        "a capture with a gap exits 1: {summary:#?}"
    );
}
