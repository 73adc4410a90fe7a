//! pcapng blocks as linkscope writes them (draft-ietf-opsawg-pcapng, sections 4.1 to 4.6):
//! one section header, one interface description per link end, an enhanced packet block per
//! frame, an interface statistics block per interface at the end of a file.
//!
//! Blocks are encoded with pcap-file (pinned `=3.0.0-rc.3`), little-endian, every block and
//! option padded to 32 bits, into an in-memory buffer that only ever holds whole blocks: the
//! caller hands that buffer to the file or pipe in one piece, so a reader following the file
//! never sees half a block (see [`super::output`]).
//!
//! pcap-file 3.0.0-rc.3 writes every option used here correctly; the unit tests below pin the
//! exact bytes against the specification.

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{ContentValidationError, PcapNgWriteError, PcapNgWriter};
use pcap_file::{DataLink, Endianness};

use super::host::Host;
use super::{Interface, InterfaceStats, Packet};

/// `epb_flags` bits 0-1 (inbound/outbound direction), section 4.3.1 of the draft.
const FLAGS_INBOUND: u32 = 0b01;
/// `epb_flags` bits 0-1 value 2: the frame was sent by the interface's end.
const FLAGS_OUTBOUND: u32 = 0b10;

/// What opens every capture file: the section header and the interface descriptions.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub host: Host,
    pub comment: String,
    pub interfaces: Vec<Interface>,
}

/// The statistics of one interface, as an interface statistics block states them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Statistics {
    /// When the statistics were taken (the block's timestamp and `isb_endtime`).
    pub at: Duration,
    /// When the capture started (`isb_starttime`).
    pub start: Duration,
    /// The caller's counters (`isb_ifrecv`, `isb_ifdrop`, `isb_osdrop`), known at the end.
    pub counts: Option<InterfaceStats>,
    /// Frames written for this interface since the capture started (`isb_usrdeliv`).
    pub delivered: u64,
}

/// Encodes one section (one file) into memory.
pub(super) struct Encoder {
    writer: PcapNgWriter<Vec<u8>>,
    snaplens: Vec<u32>,
    encoded: u64,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("interfaces", &self.snaplens.len())
            .field("encoded", &self.encoded)
            .field("pending", &self.pending().len())
            .finish()
    }
}

impl Encoder {
    /// Starts a section: the section header and one interface description per interface.
    pub fn start(header: &Header) -> Result<Encoder, PcapNgWriteError> {
        let mut options = vec![
            SectionHeaderOption::Hardware(Cow::Borrowed(&header.host.hardware)),
            SectionHeaderOption::OS(Cow::Borrowed(&header.host.os)),
            SectionHeaderOption::UserApplication(Cow::Borrowed(&header.host.application)),
        ];
        if !header.comment.is_empty() {
            options.push(SectionHeaderOption::Common(CommonOption::Comment(
                Cow::Borrowed(&header.comment),
            )));
        }
        let section = SectionHeaderBlock {
            endianness: Endianness::Little,
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options,
        };
        let mut writer = PcapNgWriter::with_section_header(Vec::with_capacity(1 << 16), section)?;
        for interface in &header.interfaces {
            let mut options = vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(
                &interface.name,
            ))];
            if !interface.description.is_empty() {
                options.push(InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    &interface.description,
                )));
            }
            if !interface.comment.is_empty() {
                options.push(InterfaceDescriptionOption::Common(CommonOption::Comment(
                    Cow::Borrowed(&interface.comment),
                )));
            }
            if let Some(filter) = &interface.filter {
                // The first byte says how the rest reads: 0, a libpcap filter string.
                let mut bytes = vec![0];
                bytes.extend_from_slice(filter.as_bytes());
                options.push(InterfaceDescriptionOption::IfFilter(Cow::Owned(bytes)));
            }
            options.push(InterfaceDescriptionOption::IfTsResol(
                InterfaceTsResolution::NANO,
            ));
            let block = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: interface.snaplen,
                options,
            };
            writer.write_pcapng_block(block)?;
        }
        let encoded = writer.get_ref().len() as u64;
        Ok(Encoder {
            writer,
            snaplens: header.interfaces.iter().map(|i| i.snaplen).collect(),
            encoded,
        })
    }

    /// Appends an enhanced packet block: the frame cut to the interface's snaplen (0 keeps
    /// it whole), its full length, the timestamp in nanoseconds, the direction flag.
    pub fn packet(&mut self, packet: &Packet) -> Result<(), PcapNgWriteError> {
        let snaplen = self
            .snaplens
            .get(packet.interface as usize)
            .copied()
            .unwrap_or(0);
        let block = EnhancedPacketBlock {
            interface_id: packet.interface,
            timestamp: Duration::from_nanos(packet.timestamp_ns),
            original_len: original_len(packet.data)?,
            data: Cow::Borrowed(captured(packet.data, snaplen)),
            options: vec![EnhancedPacketOption::Flags(if packet.outbound {
                FLAGS_OUTBOUND
            } else {
                FLAGS_INBOUND
            })],
        };
        self.encoded += self.writer.write_pcapng_block(block)? as u64;
        Ok(())
    }

    /// Appends an interface statistics block.
    pub fn statistics(
        &mut self,
        interface: u32,
        statistics: &Statistics,
    ) -> Result<(), PcapNgWriteError> {
        let mut options = vec![
            InterfaceStatisticsOption::IsbStartTime(statistics.start),
            InterfaceStatisticsOption::IsbEndTime(statistics.at),
        ];
        if let Some(counts) = statistics.counts {
            options.extend([
                InterfaceStatisticsOption::IsbIfRecv(counts.received),
                InterfaceStatisticsOption::IsbIfDrop(counts.dropped_by_us),
                InterfaceStatisticsOption::IsbOsDrop(counts.dropped_by_kernel),
            ]);
        }
        options.push(InterfaceStatisticsOption::IsbUsrDeliv(statistics.delivered));
        let block = InterfaceStatisticsBlock {
            interface_id: interface,
            timestamp: statistics.at,
            options,
        };
        self.encoded += self.writer.write_pcapng_block(block)? as u64;
        Ok(())
    }

    /// Bytes encoded since the section header, the header included: the file's size once
    /// everything pending has been written.
    pub fn encoded(&self) -> u64 {
        self.encoded
    }

    /// Whole blocks encoded and not yet handed to the output.
    pub fn pending(&self) -> &[u8] {
        self.writer.get_ref()
    }

    /// Forgets the pending blocks once the output has taken them.
    pub fn clear_pending(&mut self) {
        self.writer.get_mut().clear();
    }
}

/// The part of a frame kept under `snaplen` (0: no limit, as in the IDB).
pub(super) fn captured(data: &[u8], snaplen: u32) -> &[u8] {
    match usize::try_from(snaplen) {
        Ok(limit) if limit != 0 && limit < data.len() => &data[..limit],
        _ => data,
    }
}

fn original_len(data: &[u8]) -> Result<u32, PcapNgWriteError> {
    u32::try_from(data.len()).map_err(|_| PcapNgWriteError::Validation {
        field: "EnhancedPacketBlock.original_len",
        source: Box::new(ContentValidationError::BlockContentTooBig(data.len() as u64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the enhanced packet block [`Encoder::packet`] writes for `captured` bytes of
    /// frame: block header and trailer (12), fixed fields (20), padded data, `epb_flags` (8)
    /// and `opt_endofopt` (4).
    fn packet_block_len(captured: usize) -> u64 {
        (12 + 20 + captured.next_multiple_of(4) + 8 + 4) as u64
    }

    fn header(interfaces: Vec<Interface>) -> Header {
        Header {
            host: Host {
                hardware: "hw".into(),
                os: "os1".into(),
                application: "app".into(),
            },
            comment: "c".into(),
            interfaces,
        }
    }

    fn interface(name: &str, description: &str, snaplen: u32) -> Interface {
        Interface {
            name: name.into(),
            description: description.into(),
            snaplen,
            ..Interface::default()
        }
    }

    #[test]
    fn section_header_and_interfaces_match_the_specification_byte_for_byte() {
        let encoder = Encoder::start(&header(vec![interface("a:1", "", 65535)])).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // SHB: type, total length 64, byte-order magic, version 1.0, section length -1
            0x0a, 0x0d, 0x0d, 0x0a, 64, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            2, 0, 2, 0, b'h', b'w', 0, 0, // shb_hardware "hw", padded
            3, 0, 3, 0, b'o', b's', b'1', 0, // shb_os "os1", padded
            4, 0, 3, 0, b'a', b'p', b'p', 0, // shb_userappl "app", padded
            1, 0, 1, 0, b'c', 0, 0, 0, // opt_comment "c", padded
            0, 0, 0, 0, // opt_endofopt
            64, 0, 0, 0,
            // IDB: type 1, total length 40, linktype 1 (Ethernet), reserved, snaplen 65535
            1, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0, 0,
            2, 0, 3, 0, b'a', b':', b'1', 0, // if_name "a:1", padded
            9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol 9 (nanoseconds), padded
            0, 0, 0, 0, // opt_endofopt
            40, 0, 0, 0,
        ];
        assert_eq!(encoder.pending(), expected);
        assert_eq!(encoder.encoded(), expected.len() as u64);
    }

    #[test]
    fn packet_block_carries_direction_truncation_and_nanoseconds() {
        let mut encoder = Encoder::start(&header(vec![
            interface("a", "first", 0),
            interface("b", "second", 3),
        ]))
        .unwrap();
        encoder.clear_pending();
        let timestamp_ns = 0x0000_0001_0000_0002;
        encoder
            .packet(&Packet {
                interface: 1,
                timestamp_ns,
                data: &[0xaa, 0xbb, 0xcc, 0xdd, 0xee],
                outbound: true,
            })
            .unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            6, 0, 0, 0, 48, 0, 0, 0, // EPB, total length 48
            1, 0, 0, 0, // interface 1
            1, 0, 0, 0, 2, 0, 0, 0, // timestamp high, low (nanoseconds)
            3, 0, 0, 0, 5, 0, 0, 0, // captured 3 (snaplen), original 5
            0xaa, 0xbb, 0xcc, 0, // data, padded
            2, 0, 4, 0, 2, 0, 0, 0, // epb_flags: outbound
            0, 0, 0, 0, // opt_endofopt
            48, 0, 0, 0,
        ];
        assert_eq!(encoder.pending(), expected);
        assert_eq!(packet_block_len(3), expected.len() as u64);

        encoder.clear_pending();
        encoder
            .packet(&Packet {
                interface: 0,
                timestamp_ns: 7,
                data: &[1; 6],
                outbound: false,
            })
            .unwrap();
        let block = encoder.pending();
        assert_eq!(block.len() as u64, packet_block_len(6));
        assert_eq!(&block[20..28], &[6, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&block[36..44], &[2, 0, 4, 0, 1, 0, 0, 0], "inbound flag");
    }

    #[test]
    fn statistics_block_carries_counters_and_times() {
        let mut encoder = Encoder::start(&header(vec![interface("a", "", 0)])).unwrap();
        encoder.clear_pending();
        let statistics = Statistics {
            at: Duration::from_nanos(0x0000_0002_0000_0003),
            start: Duration::from_nanos(5),
            counts: Some(InterfaceStats {
                received: 10,
                dropped_by_us: 2,
                dropped_by_kernel: 1,
            }),
            delivered: 8,
        };
        encoder.statistics(0, &statistics).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            5, 0, 0, 0, 100, 0, 0, 0, // ISB, total length 100
            0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, // interface 0, timestamp high, low
            2, 0, 8, 0, 0, 0, 0, 0, 5, 0, 0, 0, // isb_starttime (high, low)
            3, 0, 8, 0, 2, 0, 0, 0, 3, 0, 0, 0, // isb_endtime
            4, 0, 8, 0, 10, 0, 0, 0, 0, 0, 0, 0, // isb_ifrecv
            5, 0, 8, 0, 2, 0, 0, 0, 0, 0, 0, 0, // isb_ifdrop
            7, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, // isb_osdrop
            8, 0, 8, 0, 8, 0, 0, 0, 0, 0, 0, 0, // isb_usrdeliv
            0, 0, 0, 0, // opt_endofopt
            100, 0, 0, 0,
        ];
        assert_eq!(encoder.pending(), expected);
    }

    #[test]
    fn encoded_counts_every_block() {
        let mut encoder = Encoder::start(&header(vec![interface("a", "d", 0)])).unwrap();
        let start = encoder.encoded();
        encoder
            .packet(&Packet {
                interface: 0,
                timestamp_ns: 1,
                data: &[0; 61],
                outbound: true,
            })
            .unwrap();
        assert_eq!(encoder.encoded(), start + packet_block_len(61));
        assert_eq!(encoder.pending().len() as u64, encoder.encoded());
    }

    #[test]
    fn captured_honours_snaplen_zero_as_unlimited() {
        let frame = [0u8; 100];
        assert_eq!(captured(&frame, 0).len(), 100);
        assert_eq!(captured(&frame, 64).len(), 64);
        assert_eq!(captured(&frame, 100).len(), 100);
        assert_eq!(captured(&frame, 1000).len(), 100);
    }
}
