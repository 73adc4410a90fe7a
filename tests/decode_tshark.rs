//! `linkscope decode --json` compared field by field with tshark's dissection of the same
//! frames: real lldpd LLDPDUs and kernel-bridge BPDUs (testdata/captures/, see
//! README-l2.md there), and RSTP / MSTP / PVST+ / LACP / Marker frames built here and
//! written to a pcap. Skips when tshark is missing, fails then under LINKSCOPE_REQUIRE_LAB=1.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use linkscope::wire::stp::{Body, BridgeId, Config, Flags, Mst, Msti, Version};
use linkscope::wire::{MacAddr, lacp, marker, stp};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde_json::Value;
use support::wireshark::{have, tshark_fields};

/// tshark's fields, one row per frame, one column per field, all occurrences joined by ','.
fn tshark(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    tshark_fields(file, &["-E", "occurrence=a", "-E", "aggregator=,"], fields)
}

fn ours(file: &Path) -> Vec<Value> {
    let out = cargo_bin_cmd!("linkscope")
        .arg("decode")
        .arg("--json")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A tshark number, decimal or 0x-hex.
#[track_caller]
fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn captures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/captures"))
}

#[test]
fn lldpd_capture_matches_tshark() {
    if !have("tshark", "lldpd_capture_matches_tshark") {
        return;
    }
    let file = captures().join("lldpd.pcap");
    let fields = [
        "frame.number",
        "lldp.chassis.id.mac",
        "lldp.port.subtype",
        "lldp.port.id",
        "lldp.port.id.mac",
        "lldp.time_to_live",
        "lldp.tlv.system.name",
        "lldp.tlv.system.desc",
        "lldp.port.desc",
        "lldp.tlv.system_cap",
        "lldp.tlv.enable_system_cap",
        "lldp.mgn.addr.ip4",
        "lldp.mgn.interface.number",
        "frame.time_epoch",
        "eth.src",
    ];
    let theirs = tshark(&file, &fields);
    let ours = ours(&file);
    assert_eq!(ours.len(), theirs.len());
    assert!(
        ours.len() >= 4,
        "the capture holds default, tx-interval 1 and shutdown LLDPDUs"
    );
    let mut shutdowns = 0;
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o["proto"], "lldp");
        assert_eq!(o["frame"].as_u64(), Some(num(&t[0])));
        assert_eq!(o["chassis_id"]["subtype"], "mac");
        assert_eq!(text(&o["chassis_id"]["value"]), t[1]);
        match num(&t[2]) {
            3 => {
                assert_eq!(o["port_id"]["subtype"], "mac");
                assert_eq!(text(&o["port_id"]["value"]), t[4]);
            }
            5 => {
                assert_eq!(o["port_id"]["subtype"], "ifname");
                assert_eq!(text(&o["port_id"]["value"]), t[3]);
            }
            other => panic!("unexpected port subtype {other} in the capture"),
        }
        assert_eq!(o["ttl"].as_u64(), Some(num(&t[5])));
        shutdowns += usize::from(num(&t[5]) == 0);
        assert_eq!(text(&o["system_name"]), t[6]);
        assert_eq!(text(&o["system_description"]), t[7]);
        assert_eq!(text(&o["port_description"]), t[8]);
        for (key, col) in [("available", 9), ("enabled", 10)] {
            let expected = if t[col].is_empty() {
                Value::Null
            } else {
                let names = linkscope::wire::lldp::Capabilities(num(&t[col]) as u16).names();
                serde_json::json!(names)
            };
            let got = if o["capabilities"].is_null() {
                Value::Null
            } else {
                o["capabilities"][key].clone()
            };
            assert_eq!(got, expected, "capabilities {key}");
        }
        let addrs: Vec<String> = o["management_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| text(&m["address"]))
            .collect();
        assert_eq!(addrs.join(","), t[11]);
        let numbers: Vec<String> = o["management_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| text(&m["if_number"]))
            .collect();
        assert_eq!(numbers.join(","), t[12]);
        let time: f64 = t[13].parse().unwrap();
        assert!((o["time"].as_f64().unwrap() - time).abs() < 1e-6);
        assert_eq!(text(&o["src"]), t[14]);
        assert_eq!(o["dst"], "01:80:c2:00:00:0e");
        assert_eq!(o["interface"], Value::Null, "a pcap names no interface");
    }
    assert!(
        shutdowns >= 1,
        "lldpd's shutdown LLDPDU (TTL 0) is in the capture"
    );
    assert!(
        ours.iter().any(|o| o["ttl"] == 120),
        "an LLDPDU with default timers"
    );
    assert!(
        ours.iter().any(|o| o["ttl"] == 4),
        "an LLDPDU after tx-interval 1"
    );
}

/// Compares every STP field of our JSON with tshark's columns (see `STP_FIELDS`).
fn check_stp(o: &Value, t: &[String]) {
    let c = |i: usize| t[i].as_str();
    assert_eq!(o["proto"], "stp");
    assert_eq!(o["frame"].as_u64(), Some(num(c(0))));
    assert_eq!(o["version"].as_u64(), Some(num(c(1))));
    let bpdu_type = num(c(2));
    let kind = o["bpdu_type"].as_str().unwrap();
    assert_eq!(
        (bpdu_type, kind == "tcn"),
        (bpdu_type, bpdu_type == 0x80),
        "type {bpdu_type:#x} is {kind}"
    );
    if kind == "tcn" {
        assert!(o["root"].is_null() && o["flags"].is_null());
        return;
    }
    let f = &o["flags"];
    let role = match f["port_role"].as_str().unwrap() {
        "unknown" => 0,
        "alternate_backup" => 1,
        "root" => 2,
        _ => 3,
    };
    let flags = u64::from(f["tc"] == true)
        | (u64::from(f["proposal"] == true) << 1)
        | (role << 2)
        | (u64::from(f["learning"] == true) << 4)
        | (u64::from(f["forwarding"] == true) << 5)
        | (u64::from(f["agreement"] == true) << 6)
        | (u64::from(f["tc_ack"] == true) << 7);
    assert_eq!(flags, num(c(3)), "flags");
    assert_eq!(o["root"]["priority"].as_u64(), Some(num(c(4))));
    assert_eq!(o["root"]["system_id_ext"].as_u64(), Some(num(c(5))));
    assert_eq!(text(&o["root"]["mac"]), c(6));
    assert_eq!(o["root_path_cost"].as_u64(), Some(num(c(7))));
    assert_eq!(o["bridge"]["priority"].as_u64(), Some(num(c(8))));
    assert_eq!(o["bridge"]["system_id_ext"].as_u64(), Some(num(c(9))));
    assert_eq!(text(&o["bridge"]["mac"]), c(10));
    assert_eq!(o["port_id"].as_u64(), Some(num(c(11))));
    for (key, col) in [
        ("message_age", 12),
        ("max_age", 13),
        ("hello_time", 14),
        ("forward_delay", 15),
    ] {
        let theirs: f64 = c(col).parse().unwrap();
        assert!((o[key].as_f64().unwrap() - theirs).abs() < 1e-9, "{key}");
    }
    let pvst = if c(16).is_empty() {
        Value::Null
    } else {
        num(c(16)).into()
    };
    assert_eq!(o["pvst_vlan"], pvst);
    match &o["mst"] {
        Value::Null => assert!(c(17).is_empty(), "tshark sees MST fields"),
        m => {
            assert_eq!(text(&m["config_name"]), c(17));
            assert_eq!(m["revision"].as_u64(), Some(num(c(18))));
            assert_eq!(text(&m["digest"]), c(19).replace(':', ""));
            assert_eq!(m["cist_internal_root_path_cost"].as_u64(), Some(num(c(20))));
            assert_eq!(text(&m["cist_bridge"]["mac"]), c(21));
            assert_eq!(m["remaining_hops"].as_u64(), Some(num(c(22))));
            let msti = m["msti"].as_array().unwrap();
            let col = |i: usize| -> Vec<u64> {
                if c(i).is_empty() {
                    vec![]
                } else {
                    c(i).split(',').map(num).collect()
                }
            };
            let ids: Vec<u64> = msti.iter().map(|x| x["id"].as_u64().unwrap()).collect();
            assert_eq!(ids, col(23), "MSTI ids");
            let macs: Vec<String> = msti
                .iter()
                .map(|x| text(&x["regional_root"]["mac"]))
                .collect();
            let theirs: Vec<String> = if c(24).is_empty() {
                vec![]
            } else {
                c(24).split(',').map(str::to_string).collect()
            };
            assert_eq!(macs, theirs, "MSTI regional roots");
            let costs: Vec<u64> = msti
                .iter()
                .map(|x| x["internal_root_path_cost"].as_u64().unwrap())
                .collect();
            assert_eq!(costs, col(25), "MSTI costs");
            // tshark shows the priority nibbles: bridge priority / 4096, port priority / 16.
            let bp: Vec<u64> = msti
                .iter()
                .map(|x| x["bridge_priority"].as_u64().unwrap() / 4096)
                .collect();
            assert_eq!(bp, col(26), "MSTI bridge priorities");
            let pp: Vec<u64> = msti
                .iter()
                .map(|x| x["port_priority"].as_u64().unwrap() / 16)
                .collect();
            assert_eq!(pp, col(27), "MSTI port priorities");
            let hops: Vec<u64> = msti
                .iter()
                .map(|x| x["remaining_hops"].as_u64().unwrap())
                .collect();
            assert_eq!(hops, col(28), "MSTI remaining hops");
        }
    }
}

const STP_FIELDS: [&str; 29] = [
    "frame.number",
    "stp.version",
    "stp.type",
    "stp.flags",
    "stp.root.prio",
    "stp.root.ext",
    "stp.root.hw",
    "stp.root.cost",
    "stp.bridge.prio",
    "stp.bridge.ext",
    "stp.bridge.hw",
    "stp.port",
    "stp.msg_age",
    "stp.max_age",
    "stp.hello",
    "stp.forward",
    "stp.pvst.origvlan",
    "mstp.config_name",
    "mstp.config_revision_level",
    "mstp.config_digest",
    "mstp.cist_internal_root_path_cost",
    "mstp.cist_bridge.hw",
    "mstp.cist_remaining_hops",
    "mstp.msti.msti_id",
    "mstp.msti.root.hw",
    "mstp.msti.root_cost",
    "mstp.msti.bridge_priority",
    "mstp.msti.port_priority",
    "mstp.msti.remaining_hops",
];

#[test]
fn kernel_bridge_capture_matches_tshark() {
    if !have("tshark", "kernel_bridge_capture_matches_tshark") {
        return;
    }
    let file = captures().join("bridge.pcapng");
    let theirs = tshark(&file, &STP_FIELDS);
    let ours = ours(&file);
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(&theirs) {
        check_stp(o, t);
        assert_eq!(o["interface"], "eth1", "dumpcap names the interface");
    }
    let kinds: Vec<&str> = ours
        .iter()
        .map(|o| o["bpdu_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"config") && kinds.contains(&"tcn"),
        "{kinds:?}"
    );
    assert!(
        ours.iter().any(|o| o["flags"]["tc_ack"] == true),
        "root acknowledged the TCN"
    );
}

const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0x01];

fn ethernet(dst: [u8; 6], tags: &[u16], ether_type_or_len: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&SRC);
    for vid in tags {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ether_type_or_len.to_be_bytes());
    f.extend_from_slice(payload);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

fn bpdu_frame(r: &stp::Repr, tags: &[u16]) -> Vec<u8> {
    let mut body = Vec::new();
    r.emit(&mut body).unwrap();
    let (dst, llc): ([u8; 6], &[u8]) = if r.pvst_vlan.is_some() {
        (
            [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcd],
            &[0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x01, 0x0b],
        )
    } else {
        ([0x01, 0x80, 0xc2, 0, 0, 0], &[0x42, 0x42, 0x03])
    };
    let mut payload = llc.to_vec();
    payload.extend_from_slice(&body);
    ethernet(dst, tags, payload.len() as u16, &payload)
}

fn bridge(priority: u16, ext: u16, last: u8) -> BridgeId {
    BridgeId {
        priority,
        system_id_ext: ext,
        mac: MacAddr([0x52, 0x54, 0, 0, 0x0c, last]),
    }
}

fn config(flags: u8) -> Config {
    Config {
        flags: Flags(flags),
        root: bridge(8192, 0, 1),
        root_path_cost: 20000,
        bridge: bridge(32768, 0, 2),
        port_id: 0x8003,
        message_age: 256,
        max_age: 20 * 256,
        hello_time: 2 * 256,
        forward_delay: 15 * 256,
    }
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let p = PcapPacket::new(
            Duration::new(1_700_000_000 + i as u64, 0),
            f.len() as u32,
            f.as_slice(),
        )
        .unwrap();
        w.write_packet(&p).unwrap();
    }
}

#[test]
fn built_bpdus_match_tshark() {
    if !have("tshark", "built_bpdus_match_tshark") {
        return;
    }
    let mut region = [0; 32];
    region[..5].copy_from_slice(b"lab-1");
    let mst = Mst {
        config_format: 0,
        config_name: region,
        revision: 3,
        digest: [0x5a; 16],
        cist_internal_root_path_cost: 2000,
        cist_bridge: bridge(32768, 0, 2),
        remaining_hops: 20,
        mstis: vec![
            Msti {
                flags: Flags(0x7c),
                regional_root: bridge(4096, 10, 7),
                internal_root_path_cost: 200,
                bridge_priority: 8192,
                port_priority: 128,
                remaining_hops: 19,
            },
            Msti {
                flags: Flags(0x08),
                regional_root: bridge(61440, 20, 8),
                internal_root_path_cost: 0,
                bridge_priority: 61440,
                port_priority: 240,
                remaining_hops: 18,
            },
        ],
    };
    let reprs = [
        (
            stp::Repr {
                version: Version::STP,
                body: Body::Tcn,
                pvst_vlan: None,
            },
            vec![],
        ),
        (
            stp::Repr {
                version: Version::STP,
                body: Body::Config(config(0x81)),
                pvst_vlan: None,
            },
            vec![],
        ),
        (
            stp::Repr {
                version: Version::RSTP,
                body: Body::Rst(config(0x3e)),
                pvst_vlan: None,
            },
            vec![],
        ),
        (
            stp::Repr {
                version: Version::RSTP,
                body: Body::Rst(config(0x4d)),
                pvst_vlan: None,
            },
            vec![30],
        ),
        (
            stp::Repr {
                version: Version::MSTP,
                body: Body::Mst(config(0x7c), mst),
                pvst_vlan: None,
            },
            vec![],
        ),
        (
            stp::Repr {
                version: Version::RSTP,
                body: Body::Rst(config(0x3c)),
                pvst_vlan: Some(20),
            },
            vec![20],
        ),
        (
            stp::Repr {
                version: Version::STP,
                body: Body::Config(config(0)),
                pvst_vlan: Some(1),
            },
            vec![],
        ),
    ];
    let frames: Vec<Vec<u8>> = reprs.iter().map(|(r, tags)| bpdu_frame(r, tags)).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bpdus.pcap");
    write_pcap(&file, &frames);
    let theirs = tshark(&file, &STP_FIELDS);
    let ours = ours(&file);
    assert_eq!(ours.len(), reprs.len());
    for ((o, t), (_, tags)) in ours.iter().zip(&theirs).zip(&reprs) {
        check_stp(o, t);
        assert_eq!(o["vlan"], serde_json::json!(tags));
    }
    let kinds: Vec<&str> = ours
        .iter()
        .map(|o| o["bpdu_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["tcn", "config", "rst", "rst", "mst", "rst", "config"]
    );
}

fn lacp_info(port: u16, state: u8) -> lacp::Info {
    lacp::Info {
        system_priority: 32768,
        system: MacAddr([0x52, 0x54, 0, 0, 0x1a, port as u8]),
        key: 0x21,
        port_priority: 255,
        port,
        state: lacp::State(state),
    }
}

#[test]
fn built_lacp_and_marker_match_tshark() {
    if !have("tshark", "built_lacp_and_marker_match_tshark") {
        return;
    }
    let slow = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x02];
    let lacps = [
        lacp::Repr {
            version: 1,
            actor: lacp_info(1, 0x3d),
            partner: lacp_info(2, 0x3f),
            collector_max_delay: 0,
        },
        lacp::Repr {
            version: 1,
            actor: lacp_info(3, 0x45),
            partner: lacp_info(0, 0xc2),
            collector_max_delay: 50,
        },
    ];
    let markers = [
        marker::Repr {
            version: 1,
            kind: marker::Kind::REQUEST,
            requester_port: 7,
            requester_system: MacAddr([0x52, 0x54, 0, 0, 0x1a, 7]),
            transaction_id: 0x01020304,
        },
        marker::Repr {
            version: 1,
            kind: marker::Kind::RESPONSE,
            requester_port: 7,
            requester_system: MacAddr([0x52, 0x54, 0, 0, 0x1a, 7]),
            transaction_id: 0x01020304,
        },
    ];
    let mut frames = Vec::new();
    for l in &lacps {
        let mut b = Vec::new();
        l.emit(&mut b);
        frames.push(ethernet(slow, &[], 0x8809, &b));
    }
    for m in &markers {
        let mut b = Vec::new();
        m.emit(&mut b);
        frames.push(ethernet(slow, &[], 0x8809, &b));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.pcap");
    write_pcap(&file, &frames);
    let ours = ours(&file);
    assert_eq!(ours.len(), 4);
    let mut fields = Vec::new();
    for side in ["actor", "partner"] {
        for f in [
            "sys_priority",
            "sysid",
            "key",
            "port_priority",
            "port",
            "state",
        ] {
            fields.push(format!("lacp.{side}.{f}"));
        }
    }
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let theirs = tshark(&file, &fields);
    for (o, t) in ours.iter().zip(&theirs).take(2) {
        assert_eq!(o["proto"], "lacp");
        for (i, side) in ["actor", "partner"].into_iter().enumerate() {
            let s = &o[side];
            let c = |j: usize| t[i * 6 + j].as_str();
            assert_eq!(s["system_priority"].as_u64(), Some(num(c(0))));
            assert_eq!(text(&s["system"]), c(1));
            assert_eq!(s["key"].as_u64(), Some(num(c(2))));
            assert_eq!(s["port_priority"].as_u64(), Some(num(c(3))));
            assert_eq!(s["port"].as_u64(), Some(num(c(4))));
            let names = [
                "activity",
                "timeout",
                "aggregation",
                "synchronization",
                "collecting",
                "distributing",
                "defaulted",
                "expired",
            ];
            let state = names
                .iter()
                .enumerate()
                .map(|(bit, n)| u64::from(s["state"][*n] == true) << bit)
                .sum::<u64>();
            assert_eq!(state, num(c(5)), "{side} state");
        }
    }
    let theirs = tshark(
        &file,
        &[
            "marker.tlvType",
            "marker.requesterPort",
            "marker.requesterSystem",
            "marker.requesterTransId",
        ],
    );
    for (o, t) in ours.iter().zip(&theirs).skip(2) {
        assert_eq!(o["proto"], "marker");
        let first_tlv = t[0].split(',').next().unwrap();
        let kind = if num(first_tlv) == 1 {
            "request"
        } else {
            "response"
        };
        assert_eq!(o["marker_type"], kind);
        assert_eq!(o["requester_port"].as_u64(), Some(num(&t[1])));
        assert_eq!(text(&o["requester_system"]), t[2]);
        assert_eq!(o["transaction_id"].as_u64(), Some(num(&t[3])));
    }
}
