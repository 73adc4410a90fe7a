//! Shared by the capture tests: synthetic frames, interfaces, reading captures back.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::path::Path;

use linkscope::capture::Interface;
use pcap_file::pcapng::{Block, PcapNgReader};

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
