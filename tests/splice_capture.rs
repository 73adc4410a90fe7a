//! `linkscope splice -w`: several links of a mapping in one pcapng, read back by Wireshark's
//! tshark (interface names, direction flags, nanosecond timestamps), and the live pipe
//! `-w - | tshark -l -i -`, whose closing ends the splice quietly.

mod support;

use support::process::{Running, linkscope};

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when tshark runs; otherwise says why the test is skipped (or fails under
/// LINKSCOPE_REQUIRE_LAB=1).
fn have_tshark(test: &str) -> bool {
    let runs = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let reason = format!("{test}: skipped: tshark is not installed (Debian package tshark)");
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
        );
        eprintln!("{reason}");
    }
    runs
}

fn end() -> UdpSocket {
    support::tunnel::end(Some(Duration::from_millis(200)))
}

/// An Ethernet frame: broadcast, a locally administered source, EtherType 0x88b5, tag.
fn frame(tag: u8, len: usize) -> Vec<u8> {
    let mut f = vec![tag; len.max(18)];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, tag]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Sends `frame` from `from` to `to` until `to` receives a copy that did not come straight
/// from `from` (the splice is in the path); copies that came direct are discarded.
fn until_spliced(from: &UdpSocket, to: &UdpSocket, frame: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0; 2048];
    while Instant::now() < deadline {
        from.send_to(frame, to.local_addr().unwrap()).unwrap();
        if let Ok((_, source)) = to.recv_from(&mut buf)
            && source != from.local_addr().unwrap()
        {
            return;
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

#[test]
fn several_links_land_in_one_capture_that_tshark_reads() {
    if !have_tshark("several_links_land_in_one_capture_that_tshark_reads") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let links = [(end(), end()), (end(), end())];
    let port = |s: &UdpSocket| s.local_addr().unwrap().port();
    let mapping = format!(
        "links:\n  - [100, 2, 102, 1, {{port_a: {}, port_b: {}}}]\n  - [101, 1, 102, 2, {{port_a: {}, port_b: {}}}]\n",
        port(&links[0].0),
        port(&links[0].1),
        port(&links[1].0),
        port(&links[1].1)
    );
    std::fs::write(dir.path().join("mapping.yaml"), mapping).unwrap();
    let capture = dir.path().join("two.pcapng");
    let child = linkscope()
        .current_dir(dir.path())
        .args([
            "splice",
            "--mapping",
            "mapping.yaml",
            "--link",
            "100:2",
            "--link",
            "101:1-102:2",
        ])
        .arg("-w")
        .arg(&capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    for (i, (a, b)) in links.iter().enumerate() {
        let i = i as u8;
        until_spliced(a, b, &frame(10 + i, 60));
        until_spliced(b, a, &frame(20 + i, 1500));
    }
    signal(&running.0, "INT");
    let status = running.0.wait().unwrap();
    assert!(status.success());

    let out = Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.packet_flags_direction",
        ])
        .args(["-e", "frame.len", "-e", "eth.src", "-e", "frame.time_epoch"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    // The last frame seen of each kind went through the splice; earlier copies may have
    // gone direct while the splice was starting.
    for (interface, len, src) in [
        ("vm100:eth2", "60", "02:00:00:00:00:0a"),
        ("vm102:eth1", "1500", "02:00:00:00:00:14"),
        ("vm101:eth1", "60", "02:00:00:00:00:0b"),
        ("vm102:eth2", "1500", "02:00:00:00:00:15"),
    ] {
        let row = rows
            .iter()
            .find(|r| r[0] == interface && r[2] == len && r[3] == src)
            .unwrap_or_else(|| panic!("no {len}-byte frame on {interface} in\n{text}"));
        assert_eq!(row[1], "0x00000002", "outbound direction flag: {row:?}");
        let fraction = row[4].split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), 9, "nanosecond timestamps: {row:?}");
    }
    let info = Command::new("capinfos").arg(&capture).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Number of interfaces in file: 4"), "{info}");
    assert!(info.contains("nanoseconds"), "{info}");
}

#[test]
fn live_into_tshark_and_a_closed_reader_ends_the_splice_quietly() {
    if !have_tshark("live_into_tshark_and_a_closed_reader_ends_the_splice_quietly") {
        return;
    }
    let (a, b) = (end(), end());
    let splice = linkscope()
        .args([
            "splice",
            "-w",
            "-",
            "--a",
            &a.local_addr().unwrap().to_string(),
        ])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut splice = Running(splice);
    let reader = Command::new("tshark")
        .args([
            "-l",
            "-i",
            "-",
            "-c",
            "2",
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ])
        .stdin(splice.0.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = Running(reader);
    let lines = BufReader::new(reader.0.stdout.take().unwrap());
    until_spliced(&a, &b, &frame(1, 64));
    until_spliced(&a, &b, &frame(2, 64));
    let names: Vec<String> = lines.lines().map(Result::unwrap).collect();
    assert_eq!(names, vec![a.local_addr().unwrap().to_string(); 2]);
    assert!(reader.0.wait().unwrap().success());
    // The reader is gone: the next frames make the splice notice and end by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while splice.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the splice outlived its reader");
        a.send_to(&frame(3, 64), b.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = splice.0.wait().unwrap();
    assert!(
        status.success(),
        "a closed reader is a quiet, successful end: {status}"
    );
}

#[test]
fn a_ring_buffer_switches_files_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (end(), end());
    let child = linkscope()
        .args(["splice", "--a", &a.local_addr().unwrap().to_string()])
        .args(["--b", &b.local_addr().unwrap().to_string()])
        .arg("-w")
        .arg(dir.path().join("ring.pcapng"))
        .args(["-b", "filesize:1", "-b", "files:2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    for tag in 0..8 {
        until_spliced(&a, &b, &frame(tag, 600));
    }
    signal(&running.0, "INT");
    assert!(running.0.wait().unwrap().success());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ring_") && n.ends_with(".pcapng")),
        "{names:?}"
    );
    assert_ne!(
        names[0][5..10],
        *"00001",
        "the oldest files were deleted: {names:?}"
    );
}
