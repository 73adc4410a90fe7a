//! Property: whatever the interfaces and frames, pcap-file's reader gets back exactly what
//! the writer was given (frames cut to the snaplen, original lengths, nanosecond
//! timestamps, direction flags, interface options, statistics).

mod capture_support;
mod support;

use std::borrow::Cow;

use capture_support::blocks;
use linkscope::capture::{Interface, InterfaceStats, Output, Packet, Writer};
use pcap_file::DataLink;
use pcap_file::pcapng::Block;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Frame {
    interface: u32,
    timestamp_ns: u64,
    data: Vec<u8>,
    outbound: bool,
}

fn interfaces() -> impl Strategy<Value = Vec<Interface>> {
    prop::collection::vec(
        (
            ".{0,40}",
            ".{0,80}",
            ".{0,80}",
            prop::option::of(".{1,40}"),
            prop_oneof![Just(0u32), 1u32..2000],
        )
            .prop_map(|(name, description, comment, filter, snaplen)| Interface {
                name,
                description,
                comment,
                filter,
                snaplen,
            }),
        1..5,
    )
}

fn capture() -> impl Strategy<Value = (Vec<Interface>, String, Vec<Frame>, Vec<InterfaceStats>)> {
    interfaces().prop_flat_map(|interfaces| {
        let count = interfaces.len() as u32;
        let frame = (
            0..count,
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..3000),
            any::<bool>(),
        )
            .prop_map(|(interface, timestamp_ns, data, outbound)| Frame {
                interface,
                timestamp_ns,
                data,
                outbound,
            });
        let stats =
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(r, u, k)| InterfaceStats {
                received: r,
                dropped_by_us: u,
                dropped_by_kernel: k,
            });
        (
            Just(interfaces),
            ".{0,100}",
            prop::collection::vec(frame, 0..40),
            prop::collection::vec(stats, count as usize),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pcap_file_reads_back_what_was_written(
        (interfaces, comment, frames, stats) in capture()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prop.pcapng");
        let mut writer = Writer::create(&Output::File(path.clone()), &comment, &interfaces).unwrap();
        for (n, frame) in frames.iter().enumerate() {
            writer.write(&Packet {
                interface: frame.interface,
                timestamp_ns: frame.timestamp_ns,
                data: &frame.data,
                outbound: frame.outbound,
            }).unwrap();
            if n % 7 == 0 {
                writer.flush().unwrap();
            }
        }
        writer.finish(&stats).unwrap();

        let blocks = blocks(&path);
        let n_interfaces = interfaces.len();
        prop_assert_eq!(blocks.len(), 1 + n_interfaces + frames.len() + n_interfaces);

        let Block::SectionHeader(shb) = &blocks[0] else { panic!("no section header") };
        let application = format!("linkscope {}", env!("CARGO_PKG_VERSION"));
        prop_assert!(shb.options.contains(&SectionHeaderOption::UserApplication(Cow::Borrowed(&application))));
        let comments: Vec<_> = shb.options.iter().filter_map(|o| match o {
            SectionHeaderOption::Common(CommonOption::Comment(c)) => Some(c.to_string()),
            _ => None,
        }).collect();
        let expected_comments: Vec<String> = if comment.is_empty() { vec![] } else { vec![comment.clone()] };
        prop_assert_eq!(comments, expected_comments);

        for (interface, block) in interfaces.iter().zip(&blocks[1..=n_interfaces]) {
            let Block::InterfaceDescription(idb) = block else { panic!("expected an IDB: {block:?}") };
            prop_assert_eq!(idb.linktype, DataLink::ETHERNET);
            prop_assert_eq!(idb.snaplen, interface.snaplen);
            prop_assert_eq!(idb.ts_resolution(), InterfaceTsResolution::NANO);
            let mut expected = vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(&interface.name))];
            if !interface.description.is_empty() {
                expected.push(InterfaceDescriptionOption::IfDescription(Cow::Borrowed(&interface.description)));
            }
            if !interface.comment.is_empty() {
                expected.push(InterfaceDescriptionOption::Common(CommonOption::Comment(Cow::Borrowed(&interface.comment))));
            }
            if let Some(filter) = &interface.filter {
                expected.push(InterfaceDescriptionOption::IfFilter(Cow::Owned([&[0u8][..], filter.as_bytes()].concat())));
            }
            expected.push(InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO));
            prop_assert_eq!(&idb.options, &expected);
        }

        let packets = &blocks[1 + n_interfaces..1 + n_interfaces + frames.len()];
        for (frame, block) in frames.iter().zip(packets) {
            let Block::EnhancedPacket(epb) = block else { panic!("expected an EPB: {block:?}") };
            let snaplen = interfaces[frame.interface as usize].snaplen as usize;
            let kept = if snaplen == 0 { frame.data.len() } else { frame.data.len().min(snaplen) };
            prop_assert_eq!(epb.interface_id, frame.interface);
            prop_assert_eq!(epb.timestamp.as_nanos(), u128::from(frame.timestamp_ns));
            prop_assert_eq!(epb.original_len as usize, frame.data.len());
            prop_assert_eq!(&epb.data[..], &frame.data[..kept]);
            let flags = if frame.outbound { 2 } else { 1 };
            prop_assert_eq!(&epb.options, &vec![EnhancedPacketOption::Flags(flags)]);
        }

        for (index, block) in blocks[1 + n_interfaces + frames.len()..].iter().enumerate() {
            let Block::InterfaceStatistics(isb) = block else { panic!("expected an ISB: {block:?}") };
            prop_assert_eq!(isb.interface_id as usize, index);
            let delivered = frames.iter().filter(|f| f.interface as usize == index).count() as u64;
            let counters: Vec<_> = isb.options.iter().filter(|o| !matches!(o,
                InterfaceStatisticsOption::IsbStartTime(_) | InterfaceStatisticsOption::IsbEndTime(_))).cloned().collect();
            prop_assert_eq!(counters, vec![
                InterfaceStatisticsOption::IsbIfRecv(stats[index].received),
                InterfaceStatisticsOption::IsbIfDrop(stats[index].dropped_by_us),
                InterfaceStatisticsOption::IsbOsDrop(stats[index].dropped_by_kernel),
                InterfaceStatisticsOption::IsbUsrDeliv(delivered),
            ]);
        }
    }
}
