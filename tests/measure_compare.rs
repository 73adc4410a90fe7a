//! `linkscope compare` on captures taken on both sides of a deterministic impairing relay:
//! the one-way loss, duplicate and reorder counts equal what the relay injected.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use assert_cmd::cargo::cargo_bin;
use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use serde_json::Value;
use support::impair::{Every, Impairments, Relay};
use support::process::json_output;

const MAC_A: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x64, 1];
const MAC_B: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x66, 1];

/// A distinct UDP-in-Ethernet frame per index, as a VM would send it.
fn frame(index: u32, from_a: bool) -> Vec<u8> {
    let (src, dst) = if from_a {
        (MAC_A, MAC_B)
    } else {
        (MAC_B, MAC_A)
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5000, 6000)
        .write(&mut out, &index.to_be_bytes())
        .expect("builds");
    out
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
}

/// A frame as captured: time, interface, direction flag (2 outbound, 1 inbound), bytes.
type Captured = (Duration, u32, Option<u32>, Vec<u8>);

/// Writes a pcapng file with the splice's layout: one interface per link end.
fn write_pcapng(path: &Path, frames: &[Captured]) {
    let file = std::fs::File::create(path).expect("creates the capture");
    let mut writer = PcapNgWriter::new(file).expect("writes the header");
    for name in ["vm100:eth1", "vm102:eth1"] {
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
        idb.options
            .push(InterfaceDescriptionOption::IfName(name.into()));
        writer
            .write_pcapng_block(idb)
            .expect("writes the interface");
    }
    for (timestamp, interface, flags, data) in frames {
        let block = EnhancedPacketBlock {
            interface_id: *interface,
            timestamp: *timestamp,
            original_len: data.len() as u32,
            data: data.as_slice().into(),
            options: flags
                .iter()
                .map(|&f| EnhancedPacketOption::Flags(f))
                .collect(),
        };
        writer.write_pcapng_block(block).expect("writes the frame");
    }
}

fn compare_json(a: &Path, b: &Path) -> Value {
    json_output(
        std::process::Command::new(cargo_bin("linkscope"))
            .args(["compare", "--json"])
            .arg(a)
            .arg(b),
    )
}

#[test]
fn one_way_loss_duplicates_and_reordering_equal_what_the_relay_injected() {
    const FRAMES: u32 = 300;
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("binds");
    receiver
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("sets timeout");
    let every = |phase| Some(Every { every: 10, phase });
    let relay = Relay::start(
        receiver.local_addr().expect("bound"),
        Impairments {
            drop: every(3),
            duplicate: every(5),
            reorder: every(7),
        },
        |_| true,
    )
    .expect("relay starts");
    let receiving = std::thread::spawn(move || {
        let mut downstream = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = receiver.recv(&mut buf) {
            downstream.push((now(), 0, Some(2), buf[..n].to_vec()));
        }
        downstream
    });
    let sender = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let mut upstream = Vec::new();
    for i in 0..FRAMES {
        let f = frame(i, true);
        upstream.push((now(), 0, Some(2), f.clone()));
        sender.send_to(&f, relay.addr()).expect("sends");
        // Paced so that no socket queue overflows on a busy machine: the only loss must be
        // the relay's.
        std::thread::sleep(Duration::from_micros(200));
    }
    let downstream = receiving.join().expect("receiver");
    let counts = relay.counts();
    let dropped = counts.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let duplicated = counts.duplicated.load(std::sync::atomic::Ordering::Relaxed);
    let reordered = counts.reordered.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((dropped, duplicated, reordered), (30, 30, 30));

    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.pcapng"), dir.path().join("b.pcapng"));
    write_pcapng(&a, &upstream);
    write_pcapng(&b, &downstream);
    let c = compare_json(&a, &b);
    assert_eq!(c["directions_a"], "flags");
    assert_eq!(c["clock_offset_ms"], Value::Null);
    let d = &c["directions"][0];
    assert_eq!(d["direction"], "from vm100:eth1");
    assert_eq!(d["upstream"], "a");
    assert_eq!(d["frames_a"], FRAMES);
    assert_eq!(d["lost"], dropped);
    assert_eq!(d["duplicates"], duplicated);
    assert_eq!(d["reordered"], reordered);
    assert_eq!(d["unexpected"], 0);
    assert_eq!(d["outside_overlap"], 0);
    assert_eq!(d["matched"], u64::from(FRAMES) - dropped);
    assert_eq!(d["delay_includes_clock_offset"], true);
    assert!(d["delay_ms"]["p50"].as_f64().is_some());
}

#[test]
fn both_directions_estimate_the_clock_offset_and_inbound_flags_name_the_sender() {
    // Capture A sits next to vm100 and B next to vm102; B's clock runs 2 s ahead and each
    // way takes 1 ms. B writes what vm100 sent as inbound on vm102's interface.
    let base = now();
    let ms = Duration::from_millis;
    let skew = Duration::from_secs(2);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..20u32 {
        let t = base + ms(u64::from(i) * 10);
        let ab = frame(i, true);
        a.push((t, 0, Some(2), ab.clone()));
        b.push((t + ms(1) + skew, 1, Some(1), ab));
        let ba = frame(1000 + i, false);
        b.push((t + ms(5) + skew, 1, Some(2), ba.clone()));
        a.push((t + ms(6), 0, Some(1), ba));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (pa, pb) = (dir.path().join("a.pcapng"), dir.path().join("b.pcapng"));
    write_pcapng(&pa, &a);
    write_pcapng(&pb, &b);
    let c = compare_json(&pa, &pb);
    let offset = c["clock_offset_ms"].as_f64().expect("estimated");
    assert!((offset - 2000.0).abs() < 1e-3, "{offset}");
    let dirs = c["directions"].as_array().expect("directions");
    assert_eq!(dirs.len(), 2);
    for d in dirs {
        let expected_up = if d["direction"] == "from vm100:eth1" {
            "a"
        } else {
            "b"
        };
        assert_eq!(d["upstream"], expected_up, "{d}");
        assert_eq!(d["lost"], 0);
        let p50 = d["delay_ms"]["p50"].as_f64().expect("delay");
        assert!((p50 - 1.0).abs() < 1e-3, "{d}");
    }
}

#[test]
fn captures_without_direction_flags_fall_back_to_the_source_mac_and_say_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, skip: Option<u32>| {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).expect("creates");
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(file, header).expect("writes the header");
        for i in 0..10u32 {
            for from_a in [true, false] {
                if skip == Some(i) && from_a {
                    continue;
                }
                let f = frame(i, from_a);
                let t = Duration::from_millis(u64::from(i));
                let packet = PcapPacket::new(t, f.len() as u32, &f).expect("valid packet");
                w.write_packet(&packet).expect("writes");
            }
        }
        path
    };
    let (a, b) = (write("a.pcap", None), write("b.pcap", Some(4)));
    let out = Command::cargo_bin("linkscope")
        .expect("binary")
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("A carries no direction flags: directions assigned by source MAC address"),
        "{text}"
    );
    assert!(text.contains("from be:24:99:00:64:01"), "{text}");
    let c = compare_json(&a, &b);
    assert_eq!(c["directions_b"], "source_mac");
    let lost: Vec<_> = c["directions"]
        .as_array()
        .expect("directions")
        .iter()
        .map(|d| {
            (
                d["direction"].as_str().expect("name").to_string(),
                d["lost"].clone(),
            )
        })
        .collect();
    assert!(
        lost.contains(&("from be:24:99:00:64:01".to_string(), 1.into())),
        "{lost:?}"
    );
    assert!(
        lost.contains(&("from be:24:99:00:66:01".to_string(), 0.into())),
        "{lost:?}"
    );
}

#[test]
fn a_file_that_is_no_capture_is_an_input_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("not.pcapng");
    std::fs::write(&path, b"this is not a capture file at all").expect("writes");
    Command::cargo_bin("linkscope")
        .expect("binary")
        .arg("compare")
        .arg(&path)
        .arg(&path)
        .assert()
        .code(2);
}

/// Wireshark's own writer (editcap rewrites a file through wiretap) must not change what
/// compare finds: interface names and direction flags survive, and so do the counts.
#[test]
fn captures_rewritten_by_editcap_compare_the_same() {
    match std::process::Command::new("editcap").arg("-h").output() {
        Ok(o) if o.status.success() => {}
        _ if std::env::var_os("LINKSCOPE_REQUIRE_LAB").is_some() => {
            panic!("LINKSCOPE_REQUIRE_LAB is set but editcap (Debian package tshark) is missing")
        }
        _ => {
            eprintln!("skipped: needs editcap (Debian package tshark)");
            return;
        }
    }
    let base = now();
    let ms = Duration::from_millis;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..30u32 {
        let t = base + ms(u64::from(i));
        let f = frame(i, true);
        a.push((t, 0, Some(2), f.clone()));
        if i % 7 != 3 {
            b.push((t + ms(2), 1, Some(1), f));
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (pa, pb) = (dir.path().join("a.pcapng"), dir.path().join("b.pcapng"));
    write_pcapng(&pa, &a);
    write_pcapng(&pb, &b);
    let (ea, eb) = (dir.path().join("ea.pcapng"), dir.path().join("eb.pcapng"));
    for (from, to) in [(&pa, &ea), (&pb, &eb)] {
        let status = std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(from)
            .arg(to)
            .status()
            .expect("runs editcap");
        assert!(status.success());
    }
    let ours = compare_json(&pa, &pb);
    let theirs = compare_json(&ea, &eb);
    assert_eq!(ours["directions"], theirs["directions"]);
    let d = &theirs["directions"][0];
    assert_eq!(d["direction"], "from vm100:eth1");
    assert_eq!(d["lost"], 4);
    assert_eq!(theirs["directions_a"], "flags");
}
