//! Shared by the capture tests: prerequisites, synthetic frames, reading captures back.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::path::Path;
use std::process::{Command, Output};

use linkscope::capture::Interface;
use pcap_file::pcapng::{Block, PcapNgReader};

/// True when `tool` runs; otherwise prints why the test is skipped, or panics when
/// LINKSCOPE_REQUIRE_LAB=1 makes the prerequisite mandatory.
pub fn have(tool: &str, test: &str) -> bool {
    let runs = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let reason = format!("{test}: skipped: `{tool}` is not installed (Debian package tshark)");
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
        );
        eprintln!("{reason}");
    }
    runs
}

/// Runs a command and returns its standard output, failing the test on a non-zero exit.
pub fn run(command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("spawn");
    assert!(
        status.success(),
        "{command:?} failed: {status}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).expect("utf-8 output")
}

/// tshark's fields for every frame of `file`, one Vec per frame.
pub fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(file).args(["-T", "fields"]);
    for field in fields {
        command.args(["-e", field]);
    }
    run(&mut command)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// A frame of `len` bytes (at least 18): broadcast destination, a locally administered
/// source, the local experimental EtherType 0x88B5, then `sequence` as 4 bytes, then filler.
pub fn frame(sequence: u32, len: usize) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend([0xbe, 0x24, 0x99, 0x00, 0x64, 0x01, 0x88, 0xb5]);
    frame.extend(sequence.to_be_bytes());
    frame.resize(len.max(18), 0x5a);
    frame
}

/// The sequence number [`frame`] put in, as tshark shows the payload's first 4 bytes.
pub fn sequence_of(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[14..18].try_into().expect("4 bytes"))
}

pub fn interface(name: &str, description: &str, snaplen: u32) -> Interface {
    Interface {
        name: name.into(),
        description: description.into(),
        snaplen,
    }
}

/// Every block of a pcapng file, parsed by pcap-file.
pub fn blocks(file: &Path) -> Vec<Block<'static>> {
    let bytes = std::fs::read(file).expect("read capture");
    let mut reader = PcapNgReader::new(&bytes[..]).expect("pcapng section header");
    let mut blocks = vec![Block::SectionHeader(reader.section().clone())];
    while let Some(block) = reader.next_block() {
        let (block, _) = block.expect("well-formed block");
        blocks.push(block.into_owned());
    }
    blocks
}
