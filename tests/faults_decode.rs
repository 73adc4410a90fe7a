//! Odd and hostile capture files through `linkscope decode`: a pcap with snaplen 0 (which
//! tshark reads) is read; errors name the byte offset; an absurd block length says so; an
//! enhanced packet block whose captured length runs past the block says so.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::process::linkscope;
use support::wireshark::have;

fn decode(file: &Path) -> (i32, String, String) {
    let out = linkscope().arg("decode").arg(file).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An STP configuration BPDU as an Ethernet frame (60 bytes).
fn bpdu() -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 0x52, 0x54, 0, 0, 0, 1, 0, 38];
    f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0, 0, 0x80, 0]);
    f.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0]);
    f.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0x80, 1, 0, 0, 0, 20, 0, 2, 0, 15, 0]);
    f.resize(60, 0);
    f
}

/// A little-endian microsecond pcap with `snaplen` and one record per frame.
fn pcap(snaplen: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&snaplen.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    b
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len() as u32;
    let mut b = kind.to_le_bytes().to_vec();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// A pcapng section header and one Ethernet interface: 28 + 20 bytes.
fn pcapng_start() -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut b = block(0x0a0d_0d0a, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&0u32.to_le_bytes());
    b.extend(block(1, &idb));
    b
}

/// An enhanced packet block of interface 0 claiming `captured` bytes of `data`.
fn epb(captured: u32, data: &[u8]) -> Vec<u8> {
    let mut body = 0u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 8]);
    body.extend_from_slice(&captured.to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).max(captured).to_le_bytes());
    body.extend_from_slice(data);
    body.resize(body.len().next_multiple_of(4), 0);
    block(6, &body)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_pcap_with_snaplen_0_is_read_as_tshark_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "snaplen0.pcap", &pcap(0, &[bpdu(), bpdu()]));
    let (code, out, err) = decode(&file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("STP")).count(),
        2,
        "{out}"
    );
    if have("tshark", "a_pcap_with_snaplen_0_is_read_as_tshark_reads_it") {
        let tshark = Command::new("tshark")
            .arg("-r")
            .arg(&file)
            .output()
            .unwrap();
        assert!(tshark.status.success());
        let lines = String::from_utf8_lossy(&tshark.stdout).lines().count();
        assert_eq!(lines, 2, "tshark reads both frames");
    }
}

#[test]
fn a_truncated_pcap_record_is_reported_with_its_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = pcap(65535, &[bpdu(), bpdu()]);
    bytes.truncate(bytes.len() - 10);
    let second = 24 + 16 + 60;
    let (code, out, err) = decode(&write(dir.path(), "cut.pcap", &bytes));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("byte offset {second}")), "{err}");
    assert!(err.contains("after packet 1"), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn an_absurd_block_length_is_named_as_such_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = pcapng_start();
    let at = bytes.len();
    bytes.extend(epb(60, &bpdu()));
    bytes[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let (code, _, err) = decode(&write(dir.path(), "huge.pcapng", &bytes));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("block length 4294967280") && err.contains("exceeds"),
        "{err}"
    );
    assert!(err.contains(&format!("byte offset {at}")), "{err}");
    assert!(!err.contains("unexpected end of file"), "{err}");
}

#[test]
fn a_captured_length_past_its_block_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = pcapng_start();
    bytes.extend(epb(60, &bpdu()));
    let at = bytes.len();
    // Claims 1000 captured bytes in a block that holds 60.
    let mut lying = epb(60, &bpdu());
    lying[20..24].copy_from_slice(&1000u32.to_le_bytes());
    bytes.extend(lying);
    let (code, out, err) = decode(&write(dir.path(), "lying.pcapng", &bytes));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("captured length 1000") && err.contains("past"),
        "{err}"
    );
    assert!(err.contains(&format!("byte offset {at}")), "{err}");
    assert!(!err.contains("original length"), "{err}");
    assert_eq!(out.lines().count(), 1, "the frame before is shown: {out}");
}

/// `linkscope compare` reads captures with the same reader: a snaplen-0 pcap is read, and a
/// broken block is named with its byte offset.
#[test]
fn compare_reads_what_decode_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "snaplen0.pcap", &pcap(0, &[bpdu(), bpdu()]));
    let out = linkscope()
        .args(["compare", "--json"])
        .arg(&file)
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["directions"][0]["frames_a"], 2, "{report}");

    let mut bytes = pcapng_start();
    let at = bytes.len();
    bytes.extend(epb(60, &bpdu()));
    bytes[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let file = write(dir.path(), "huge.pcapng", &bytes);
    let out = linkscope()
        .arg("compare")
        .arg(&file)
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("byte offset {at}")), "{err}");
}
