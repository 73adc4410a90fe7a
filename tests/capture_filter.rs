//! `linkscope splice -f FILTER`: a libpcap capture filter chooses what the capture keeps
//! (every spliced frame but STP with `not stp`, read back by tshark), while forwarding
//! carries every frame; an invalid filter is an argument error with libpcap's message and
//! writes nothing.

mod capture_support;
mod support;

use std::process::Stdio;
use std::time::Duration;

use capture_support::{Traffic, captured, have_libpcap, is_stp, sequence_of};
use support::process::{Running, linkscope, wait_exit};
use support::wireshark::{have, tshark_fields};

/// `forwarded` (what the ends received through linkscope) holds STP, so forwarding was not
/// filtered, and the capture in `file` holds every forwarded frame but STP. Returns the
/// captured frames' sequence numbers.
fn assert_all_but_stp_captured(forwarded: &[Vec<u8>], file: &std::path::Path) -> Vec<u32> {
    assert!(
        forwarded.iter().any(|f| is_stp(f)),
        "STP was forwarded: forwarding is never filtered"
    );
    let frames = captured(file);
    assert!(
        !frames.iter().any(|(_, f)| is_stp(f)),
        "no STP in the capture"
    );
    let mut got: Vec<u32> = frames.iter().map(|(_, f)| sequence_of(f)).collect();
    let mut expected: Vec<u32> = forwarded
        .iter()
        .filter(|f| !is_stp(f))
        .map(|f| sequence_of(f))
        .collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert!(!got.is_empty());
    assert_eq!(
        got, expected,
        "every forwarded frame but STP is in the capture"
    );
    got
}

#[test]
fn splice_writes_what_the_filter_passes_and_forwards_everything() {
    let test = "splice_writes_what_the_filter_passes_and_forwards_everything";
    if !have_libpcap(test) {
        return;
    }
    let (a, b) = (support::tunnel::end(None), support::tunnel::end(None));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("filtered.pcapng");
    let splice = linkscope()
        .arg("splice")
        .arg("--a")
        .arg(a.local_addr().unwrap().to_string())
        .arg("--b")
        .arg(b.local_addr().unwrap().to_string())
        .args([
            "-f",
            "not stp",
            "-q",
            "--no-measure",
            "-a",
            "duration:3",
            "-w",
        ])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(splice);
    let traffic = Traffic::start(&a, &b);
    let status = wait_exit(
        &mut running.0,
        Duration::from_secs(30),
        "splice ran past -a duration:3",
    );
    let spliced = traffic.stop();
    assert!(status.success(), "{status}");

    let got = assert_all_but_stp_captured(&spliced, &file);
    if have("tshark", test) {
        let protocols = tshark_fields(&file, &[], &["frame.protocols"]);
        assert_eq!(protocols.len(), got.len());
        assert!(
            protocols.iter().all(|p| !p[0].contains("stp")),
            "{protocols:?}"
        );
    }
}

#[test]
fn an_invalid_filter_is_an_argument_error_with_libpcaps_message() {
    if !have_libpcap("an_invalid_filter_is_an_argument_error_with_libpcaps_message") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.pcapng");
    let out = linkscope()
        .args(["splice", "--a", "127.0.0.1:9", "--b", "127.0.0.1:11"])
        .args(["-f", "tcp port and", "-w"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "capture filter: \"tcp port and\": can't parse filter expression: syntax error"
        ),
        "{err}"
    );
    assert!(!file.exists(), "nothing is written for an invalid filter");
}

#[test]
fn relay_writes_what_the_filter_passes_and_forwards_everything() {
    let test = "relay_writes_what_the_filter_passes_and_forwards_everything";
    if !have_libpcap(test) {
        return;
    }
    let (a, b) = (support::tunnel::end(None), support::tunnel::end(None));
    let free = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (to_a, to_b) = (free(), free());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relayed.pcapng");
    let relay = linkscope()
        .arg("relay")
        .arg(format!("udp://{to_a}->{}", a.local_addr().unwrap()))
        .arg(format!("udp://{to_b}->{}", b.local_addr().unwrap()))
        .args([
            "-f",
            "not stp",
            "-q",
            "--no-measure",
            "-a",
            "duration:3",
            "-w",
        ])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(relay);
    // Each end sends an STP frame and a numbered frame to its relay port every 20 ms and
    // keeps what the relay hands it.
    let mut relayed = Vec::new();
    let mut buf = [0u8; 2048];
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut sequence = 0;
    let until = std::time::Instant::now() + Duration::from_millis(2500);
    while std::time::Instant::now() < until {
        for (from, to, mac) in [
            (&a, to_a, [2, 0, 0, 0, 0, 0xa]),
            (&b, to_b, [2, 0, 0, 0, 0, 0xb]),
        ] {
            let _ = from.send_to(&capture_support::stp_frame(mac), to);
            sequence += 1;
            let _ = from.send_to(&capture_support::frame(sequence, 80), to);
        }
        for socket in [&a, &b] {
            while let Ok(n) = socket.recv(&mut buf) {
                relayed.push(buf[..n].to_vec());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = wait_exit(
        &mut running.0,
        Duration::from_secs(30),
        "relay ran past -a duration:3",
    );
    for socket in [&a, &b] {
        while let Ok(n) = socket.recv(&mut buf) {
            relayed.push(buf[..n].to_vec());
        }
    }
    assert!(status.success(), "{status}");
    assert_all_but_stp_captured(&relayed, &file);
}
