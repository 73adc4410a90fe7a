//! `linkscope decode` as a user runs it: text and JSON output, the JSON key contract,
//! `--all`, pcapng with several interfaces and time resolutions, malformed frames, bad files.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use linkscope::wire::MacAddr;
use linkscope::wire::lacp;
use linkscope::wire::stp::{self, Body, BridgeId, Config, Flags, Version};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use serde_json::Value;

fn captures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/captures"))
}

fn run(args: &[&str], file: &Path) -> (i32, String, String) {
    let out = cargo_bin_cmd!("linkscope")
        .arg("decode")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

const COMMON: [&str; 7] = ["dst", "frame", "interface", "proto", "src", "time", "vlan"];

fn with_common(extra: &[&'static str]) -> Vec<&'static str> {
    let mut k: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
    k.sort_unstable();
    k
}

#[test]
fn text_lines_and_summary_for_real_lldpd_frames() {
    let (code, out, _) = run(&[], &captures().join("lldpd.pcap"));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("LLDP") && lines[0].contains("chassis=mac 52:54:00:00:0a:01"),
        "{out}"
    );
    assert!(out.contains("port=ifname eth1 ttl=4 name=leaf1"), "{out}");
    assert!(out.contains("ttl=0 (shutdown)"), "{out}");
    assert_eq!(*lines.last().unwrap(), "-- if0: 8 frames, lldp 8, other 0");
}

#[test]
fn json_keys_are_the_contract() {
    let (code, out, _) = run(&["--json"], &captures().join("lldpd.pcap"));
    assert_eq!(code, 0);
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        keys(&first),
        with_common(&[
            "capabilities",
            "chassis_id",
            "management_addresses",
            "max_frame_size",
            "org_tlvs",
            "port_description",
            "port_id",
            "port_vlan_id",
            "system_description",
            "system_name",
            "ttl",
            "unknown_tlvs",
        ])
    );
    assert_eq!(keys(&first["chassis_id"]), ["subtype", "value"]);
    assert_eq!(keys(&first["capabilities"]), ["available", "enabled"]);
    assert_eq!(
        keys(&first["management_addresses"][0]),
        ["address", "if_number", "if_subtype"]
    );
    assert_eq!(keys(&first["org_tlvs"][0]), ["hex", "oui", "subtype"]);
    assert_eq!(first["vlan"], serde_json::json!([]));

    let (_, out, _) = run(&["--json"], &captures().join("bridge.pcapng"));
    let config: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        keys(&config),
        with_common(&[
            "bpdu_type",
            "bridge",
            "flags",
            "forward_delay",
            "hello_time",
            "max_age",
            "message_age",
            "mst",
            "port_id",
            "pvst_vlan",
            "root",
            "root_path_cost",
            "version",
        ])
    );
    assert_eq!(
        keys(&config["flags"]),
        [
            "agreement",
            "forwarding",
            "learning",
            "port_role",
            "proposal",
            "tc",
            "tc_ack"
        ]
    );
    assert_eq!(keys(&config["root"]), ["mac", "priority", "system_id_ext"]);
    assert_eq!(config["root"]["priority"], 4096);
    assert_eq!(config["hello_time"], 1.0);
}

fn frame(dst: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 9]);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A pcapng with two interfaces: `vm100:eth2` in microseconds, `vm101:eth1` in nanoseconds.
fn write_two_interfaces(path: &Path, packets: &[(u32, Vec<u8>)]) {
    let mut w = PcapNgWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (name, resol) in [
        ("vm100:eth2", InterfaceTsResolution::MICRO),
        ("vm101:eth1", InterfaceTsResolution::NANO),
    ] {
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
        idb.options
            .push(InterfaceDescriptionOption::IfName(Cow::Borrowed(name)));
        idb.options
            .push(InterfaceDescriptionOption::IfTsResol(resol));
        w.write_pcapng_block(idb).unwrap();
    }
    for (i, (interface_id, data)) in packets.iter().enumerate() {
        let epb = EnhancedPacketBlock {
            interface_id: *interface_id,
            timestamp: Duration::new(1_700_000_000 + i as u64, 123_456_789),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
}

fn lacpdu() -> Vec<u8> {
    let info = lacp::Info {
        system_priority: 32768,
        system: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
        key: 1,
        port_priority: 255,
        port: 2,
        state: lacp::State(0x3d),
    };
    let mut b = Vec::new();
    lacp::Repr {
        version: 1,
        actor: info,
        partner: info,
        collector_max_delay: 0,
    }
    .emit(&mut b);
    b
}

fn rst_llc() -> Vec<u8> {
    let id = BridgeId {
        priority: 32768,
        system_id_ext: 1,
        mac: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
    };
    let r = stp::Repr {
        version: Version::RSTP,
        body: Body::Rst(Config {
            flags: Flags(0x3c),
            root: id,
            bridge: id,
            ..Config::default()
        }),
        pvst_vlan: None,
    };
    let mut b = vec![0x42, 0x42, 0x03];
    r.emit(&mut b).unwrap();
    b
}

#[test]
fn several_interfaces_resolutions_malformed_frames_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.pcapng");
    let slow = [1, 0x80, 0xc2, 0, 0, 2];
    let rst = rst_llc();
    write_two_interfaces(
        &file,
        &[
            (0, frame(slow, 0x8809, &lacpdu())),
            (1, frame([1, 0x80, 0xc2, 0, 0, 0], rst.len() as u16, &rst)),
            (1, frame(slow, 0x8809, &lacpdu()[..50])),
            (0, frame([0xff; 6], 0x0800, &[0x45])),
            (0, frame([0xff; 6], 0x0800, &[0x45])),
            (1, frame([0xff; 6], 0x86dd, &[])),
        ],
    );
    let (code, out, _) = run(&["--json"], &file);
    assert_eq!(code, 0);
    let objs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3, "three control frames: {out}");

    assert_eq!(objs[0]["proto"], "lacp");
    assert_eq!(objs[0]["interface"], "vm100:eth2");
    assert_eq!(objs[0]["frame"], 1);
    assert_eq!(
        objs[0]["time"], 1_700_000_000.123456,
        "microsecond interface"
    );
    assert_eq!(keys(&objs[0]), with_common(&["actor", "partner"]));
    assert_eq!(
        keys(&objs[0]["actor"]),
        [
            "key",
            "port",
            "port_priority",
            "state",
            "system",
            "system_priority"
        ]
    );
    assert_eq!(
        keys(&objs[0]["actor"]["state"]),
        [
            "activity",
            "aggregation",
            "collecting",
            "defaulted",
            "distributing",
            "expired",
            "synchronization",
            "timeout"
        ]
    );
    assert_eq!(objs[0]["actor"]["state"]["synchronization"], true);

    assert_eq!(objs[1]["proto"], "stp");
    assert_eq!(objs[1]["interface"], "vm101:eth1");
    let time = objs[1]["time"].as_f64().unwrap();
    assert!(
        (time - 1_700_000_001.123_456_8).abs() < 1e-6,
        "nanosecond interface: {time}"
    );
    assert_eq!(objs[1]["bpdu_type"], "rst");
    assert_eq!(objs[1]["flags"]["port_role"], "designated");
    assert_eq!(objs[1]["bridge"]["system_id_ext"], 1);

    assert_eq!(objs[2]["frame"], 3);
    assert_eq!(keys(&objs[2]), with_common(&["error"]));
    assert_eq!(
        objs[2]["error"],
        "LACP: LACPDU truncated: need 110 bytes, have 50"
    );

    let (code, out, _) = run(&["--all"], &file);
    assert_eq!(code, 0);
    assert!(out.contains("malformed: LACP: LACPDU truncated"), "{out}");
    assert!(
        out.contains("-- vm100:eth2: 3 frames, lacp 1, other 2\n   ethertype 0x0800: 2\n"),
        "{out}"
    );
    assert!(out.contains("-- vm101:eth1: 3 frames, lacp 1, stp 1, 1 undecodable, other 1\n   ethertype 0x86dd: 1\n"), "{out}");
}

#[test]
fn bad_files_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello world").unwrap();
    let (code, _, err) = run(&[], &file);
    assert_eq!(code, 2);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap or pcapng file"),
        "{err}"
    );

    let mut truncated = std::fs::read(captures().join("lldpd.pcap")).unwrap();
    truncated.truncate(truncated.len() - 10);
    let file = dir.path().join("cut.pcap");
    std::fs::write(&file, truncated).unwrap();
    let (code, out, err) = run(&[], &file);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cut.pcap") && err.contains("after packet 7"),
        "{err}"
    );
    assert_eq!(
        out.lines().count(),
        7,
        "the frames before the cut are shown: {out}"
    );

    let (code, _, err) = run(&[], &dir.path().join("missing.pcap"));
    assert_eq!(code, 2, "a missing input file is the user's to fix: {err}");
    assert!(err.contains("missing.pcap"), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause, once: {err}"
    );
}
