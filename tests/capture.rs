//! The pcapng writer checked with Wireshark's own readers (tshark, capinfos) and pcap-file:
//! section header, interfaces, nanosecond timestamps, direction flags, snaplen, statistics,
//! ring buffer rotation and naming.

mod capture_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use capture_support::{blocks, frame, interface, sequence_of};
use linkscope::capture::{InterfaceStats, Output, Packet, Writer};
use pcap_file::pcapng::Block;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use support::process::run;
use support::wireshark::{have, tshark_fields};

const T0: u64 = 1_700_000_000_123_456_789;

fn two_ends(snaplen_b: u32) -> Vec<linkscope::capture::Interface> {
    vec![
        interface(
            "vm100:eth1",
            "link 100:1-102:1 end a, mac be:24:99:00:64:01, 127.0.0.1:41001, host_mtu 9000",
            65535,
        ),
        interface("vm102:eth1", "link 100:1-102:1 end b", snaplen_b),
    ]
}

fn packet(interface: u32, timestamp_ns: u64, data: &[u8], outbound: bool) -> Packet<'_> {
    Packet {
        interface,
        timestamp_ns,
        data,
        outbound,
    }
}

#[test]
fn tshark_reads_interfaces_directions_nanoseconds_and_snaplen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.pcapng");
    let mut writer = Writer::create(
        &Output::File(path.clone()),
        "linkscope splice 100:1-102:1",
        &two_ends(128),
    )
    .unwrap();
    let frames = [frame(1, 100), frame(2, 1500), frame(3, 60)];
    writer.write(&packet(0, T0, &frames[0], true)).unwrap();
    writer.write(&packet(1, T0 + 1, &frames[1], true)).unwrap();
    writer
        .write(&packet(0, T0 + 1_000_000_001, &frames[2], false))
        .unwrap();
    writer
        .finish(&[
            InterfaceStats {
                received: 2,
                dropped_by_us: 0,
                dropped_by_kernel: 0,
            },
            InterfaceStats {
                received: 1,
                dropped_by_us: 0,
                dropped_by_kernel: 0,
            },
        ])
        .unwrap();
    if !have(
        "tshark",
        "tshark_reads_interfaces_directions_nanoseconds_and_snaplen",
    ) {
        return;
    }
    let rows = tshark_fields(
        &path,
        &[],
        &[
            "frame.interface_id",
            "frame.interface_name",
            "frame.interface_description",
            "frame.packet_flags_direction",
            "frame.len",
            "frame.cap_len",
            "frame.time_epoch",
            "eth.type",
        ],
    );
    let expected = [
        [
            "0",
            "vm100:eth1",
            "link 100:1-102:1 end a, mac be:24:99:00:64:01, 127.0.0.1:41001, host_mtu 9000",
            "0x00000002",
            "100",
            "100",
            "1700000000.123456789",
            "0x88b5",
        ],
        [
            "1",
            "vm102:eth1",
            "link 100:1-102:1 end b",
            "0x00000002",
            "1500",
            "128",
            "1700000000.123456790",
            "0x88b5",
        ],
        [
            "0",
            "vm100:eth1",
            "link 100:1-102:1 end a, mac be:24:99:00:64:01, 127.0.0.1:41001, host_mtu 9000",
            "0x00000001",
            "60",
            "60",
            "1700000001.123456790",
            "0x88b5",
        ],
    ];
    assert_eq!(rows, expected.map(|row| row.map(str::to_owned)));

    let info = run(Command::new("capinfos").arg(&path));
    let version = env!("CARGO_PKG_VERSION");
    for line in [
        format!("Capture application: linkscope {version}"),
        "Capture comment:     linkscope splice 100:1-102:1".to_owned(),
        "Number of interfaces in file: 2".to_owned(),
        "Name = vm100:eth1".to_owned(),
        "Name = vm102:eth1".to_owned(),
        "Encapsulation = Ethernet (1 - ether)".to_owned(),
        "Capture length = 128".to_owned(),
        "Capture length = 65535".to_owned(),
        "File timestamp precision:  nanoseconds (9)".to_owned(),
    ] {
        assert!(info.contains(&line), "capinfos lacks {line:?}:\n{info}");
    }
    assert_eq!(
        info.matches("Time precision = nanoseconds (9)").count(),
        2,
        "{info}"
    );
    assert_eq!(
        info.matches("Number of stat entries = 1").count(),
        2,
        "{info}"
    );
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(
        field("Capture oper-sys:").contains(release.trim()),
        "{info}"
    );
    assert!(
        field("Capture hardware:").contains(std::env::consts::ARCH),
        "{info}"
    );
}

#[test]
fn statistics_blocks_carry_the_callers_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.pcapng");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let mut writer = Writer::create(&Output::File(path.clone()), "", &two_ends(0)).unwrap();
    for n in 0..3 {
        writer
            .write(&packet(1, T0 + n, &frame(n as u32, 64), true))
            .unwrap();
    }
    let counts = [
        InterfaceStats {
            received: 7,
            dropped_by_us: 5,
            dropped_by_kernel: 2,
        },
        InterfaceStats {
            received: 3,
            dropped_by_us: 0,
            dropped_by_kernel: 0,
        },
    ];
    writer.finish(&counts).unwrap();

    let statistics: Vec<_> = blocks(&path)
        .into_iter()
        .filter_map(|block| match block {
            Block::InterfaceStatistics(isb) => Some(isb),
            _ => None,
        })
        .collect();
    assert_eq!(statistics.len(), 2);
    for (index, isb) in statistics.iter().enumerate() {
        assert_eq!(isb.interface_id, index as u32);
        assert!(isb.timestamp >= before);
        let mut start = None;
        let mut end = None;
        let mut numbers = Vec::new();
        for option in &isb.options {
            match option {
                InterfaceStatisticsOption::IsbStartTime(t) => start = Some(*t),
                InterfaceStatisticsOption::IsbEndTime(t) => end = Some(*t),
                InterfaceStatisticsOption::IsbIfRecv(n) => numbers.push(("ifrecv", *n)),
                InterfaceStatisticsOption::IsbIfDrop(n) => numbers.push(("ifdrop", *n)),
                InterfaceStatisticsOption::IsbOsDrop(n) => numbers.push(("osdrop", *n)),
                InterfaceStatisticsOption::IsbUsrDeliv(n) => numbers.push(("usrdeliv", *n)),
                other => panic!("unexpected option {other:?}"),
            }
        }
        let (start, end) = (start.unwrap(), end.unwrap());
        assert!(before <= start && start <= end && end == isb.timestamp);
        let delivered = if index == 1 { 3 } else { 0 };
        assert_eq!(
            numbers,
            [
                ("ifrecv", counts[index].received),
                ("ifdrop", counts[index].dropped_by_us),
                ("osdrop", counts[index].dropped_by_kernel),
                ("usrdeliv", delivered),
            ]
        );
    }
}

#[test]
fn flushed_bytes_are_on_disk_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.pcapng");
    let mut writer = Writer::create(&Output::File(path.clone()), "c", &two_ends(0)).unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        size(),
        writer.bytes_written(),
        "headers are written at once"
    );
    let header = writer.bytes_written();
    writer.write(&packet(0, T0, &frame(1, 61), true)).unwrap();
    assert_eq!(writer.bytes_written(), header + 12 + 20 + 64 + 12);
    writer.flush().unwrap();
    assert_eq!(size(), writer.bytes_written());
    // A capture that is never finished (the process dies, the caller errs out) still ends on
    // a whole block: pcap-file reads every frame written.
    writer.write(&packet(1, T0, &frame(2, 70), false)).unwrap();
    drop(writer);
    let frames = blocks(&path)
        .iter()
        .filter(|b| matches!(b, Block::EnhancedPacket(_)))
        .count();
    assert_eq!(frames, 2);
}

#[test]
fn misuse_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/x.pcapng");
    let err = Writer::create(&Output::File(missing), "", &two_ends(0)).unwrap_err();
    assert!(err.is_input(), "{err}");
    assert!(err.to_string().contains("cannot create"), "{err}");

    let err = Writer::create(&Output::File(dir.path().join("none.pcapng")), "", &[]).unwrap_err();
    assert!(err.is_input(), "{err}");

    let path = dir.path().join("misuse.pcapng");
    let mut writer = Writer::create(&Output::File(path.clone()), "", &two_ends(0)).unwrap();
    let err = writer
        .write(&packet(2, T0, &frame(1, 60), true))
        .unwrap_err();
    assert!(
        err.to_string().contains("interface 2 does not exist"),
        "{err}"
    );
    writer.write(&packet(1, T0, &frame(1, 60), true)).unwrap();
    let err = writer.finish(&[InterfaceStats::default()]).unwrap_err();
    assert!(
        err.to_string().contains("1 entries for 2 interfaces"),
        "{err}"
    );
    assert_eq!(
        blocks(&path)
            .iter()
            .filter(|b| matches!(b, Block::EnhancedPacket(_)))
            .count(),
        1
    );
}

/// Ring files of a capture at `dir`/`stem`.pcapng, sorted by their number, checked against
/// dumpcap's pattern `{stem}_NNNNN_YYYYmmddHHMMSS.pcapng`; returns (number, path).
fn ring_files(dir: &Path, stem: &str) -> Vec<(u32, PathBuf)> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let rest = name
                .strip_prefix(&format!("{stem}_"))
                .and_then(|r| r.strip_suffix(".pcapng"))
                .unwrap_or_else(|| panic!("{name} is not a ring file of {stem}"));
            let (number, time) = rest.split_once('_').expect("NNNNN_TIME");
            assert_eq!(number.len(), 5, "{name}");
            assert_eq!(time.len(), 14, "{name}");
            assert!(time.bytes().all(|b| b.is_ascii_digit()), "{name}");
            assert!(time.starts_with("20"), "{name}");
            (number.parse().unwrap(), path)
        })
        .collect();
    files.sort();
    files
}

fn sequences(path: &Path) -> Vec<u32> {
    blocks(path)
        .iter()
        .filter_map(|b| match b {
            Block::EnhancedPacket(epb) => Some(sequence_of(&epb.data)),
            _ => None,
        })
        .collect()
}

#[test]
fn ring_switches_by_size_with_dumpcap_names_and_complete_files() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output::Ring {
        path: dir.path().join("ring.pcapng"),
        filesize_kb: Some(2),
        duration: None,
        files: None,
    };
    let mut writer = Writer::create(&output, "ring test", &two_ends(0)).unwrap();
    let mut largest_at_switch = 0;
    let mut previous = writer.bytes_written();
    for n in 0..20u32 {
        writer
            .write(&packet(n % 2, T0 + u64::from(n), &frame(n, 500), true))
            .unwrap();
        if writer.bytes_written() < previous {
            largest_at_switch = largest_at_switch.max(previous);
        }
        previous = writer.bytes_written();
    }
    writer
        .finish(&[InterfaceStats::default(), InterfaceStats::default()])
        .unwrap();
    // A file switches at the first frame after it reached 2000 bytes: never more than one
    // frame (544 bytes) beyond.
    assert!((2000..2000 + 544).contains(&largest_at_switch));

    let files = ring_files(dir.path(), "ring");
    let numbers: Vec<u32> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=files.len() as u32).collect::<Vec<_>>());
    assert!(files.len() >= 4, "{files:?}");
    let all: Vec<u32> = files.iter().flat_map(|(_, p)| sequences(p)).collect();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
    for (_, path) in &files {
        let kinds: Vec<&str> = blocks(path)
            .iter()
            .map(|b| match b {
                Block::SectionHeader(_) => "shb",
                Block::InterfaceDescription(_) => "idb",
                Block::EnhancedPacket(_) => "epb",
                Block::InterfaceStatistics(_) => "isb",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds[..3], ["shb", "idb", "idb"], "{path:?}");
        assert_eq!(kinds[kinds.len() - 2..], ["isb", "isb"], "{path:?}");
        assert!(kinds[3..kinds.len() - 2].iter().all(|k| *k == "epb"));
    }
    if !have(
        "capinfos",
        "ring_switches_by_size_with_dumpcap_names_and_complete_files",
    ) {
        return;
    }
    for (_, path) in &files {
        let info = run(Command::new("capinfos").arg(path));
        assert!(info.contains("Capture comment:     ring test"), "{info}");
        assert_eq!(
            info.matches("Number of stat entries = 1").count(),
            2,
            "{info}"
        );
    }
}

#[test]
fn ring_keeps_only_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output::Ring {
        path: dir.path().join("keep.pcapng"),
        filesize_kb: Some(1),
        duration: None,
        files: Some(3),
    };
    let mut writer = Writer::create(&output, "", &two_ends(0)).unwrap();
    for n in 0..30u32 {
        writer.write(&packet(0, T0, &frame(n, 900), true)).unwrap();
    }
    writer
        .finish(&[InterfaceStats::default(), InterfaceStats::default()])
        .unwrap();
    let files = ring_files(dir.path(), "keep");
    let numbers: Vec<u32> = files.iter().map(|(n, _)| *n).collect();
    // Each 900-byte frame fills a 1 kB file: one frame per file, 30 files, the last 3 kept.
    assert_eq!(numbers, [28, 29, 30]);
    assert_eq!(sequences(&files[2].1), [29]);
}

#[test]
fn ring_switches_by_duration() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output::Ring {
        path: dir.path().join("timed"),
        filesize_kb: None,
        duration: Some(Duration::from_millis(100)),
        files: None,
    };
    let mut writer = Writer::create(&output, "", &two_ends(0)).unwrap();
    writer.write(&packet(0, T0, &frame(1, 60), true)).unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    writer.write(&packet(1, T0, &frame(2, 60), true)).unwrap();
    writer
        .finish(&[InterfaceStats::default(), InterfaceStats::default()])
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("timed_00001_") && names[1].starts_with("timed_00002_"));
    assert!(names.iter().all(|n| n.len() == "timed_00001_".len() + 14));
    assert_eq!(sequences(&dir.path().join(&names[1])), [2]);
}
