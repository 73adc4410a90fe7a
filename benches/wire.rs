//! Classification and decoding throughput of control frames on one core:
//! `cargo bench --bench wire`. Each iteration handles one frame (criterion reports
//! elements per second). Frames are built with the crate's own `emit`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use linkscope::wire::lldp::{
    Capabilities, ChassisIdSubtype, ManagementAddress, Org, PortIdSubtype, TlvRepr,
};
use linkscope::wire::stp::{Body, BridgeId, Config, Flags, Mst, Msti, Version};
use linkscope::wire::{self, MacAddr, lacp, lldp, marker, stp};

const SRC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn ethernet(dst: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An LLDPDU like lldpd's, about 200 bytes on the wire.
fn lldp_frame() -> Vec<u8> {
    let repr = lldp::Repr {
        tlvs: vec![
            TlvRepr::ChassisId {
                subtype: ChassisIdSubtype::MAC_ADDRESS,
                id: SRC[..].into(),
            },
            TlvRepr::PortId {
                subtype: PortIdSubtype::INTERFACE_NAME,
                id: b"eth1"[..].into(),
            },
            TlvRepr::Ttl(120),
            TlvRepr::SystemName(b"leaf1.lab.example"[..].into()),
            TlvRepr::SystemDescription(
                b"Debian GNU/Linux 12 (bookworm) Linux 6.1.0 x86_64"[..].into(),
            ),
            TlvRepr::Capabilities {
                available: Capabilities(0x14),
                enabled: Capabilities(0x04),
            },
            TlvRepr::ManagementAddress(ManagementAddress {
                family: 1,
                address: vec![192, 0, 2, 1].into(),
                if_subtype: 2,
                if_number: 3,
                oid: Default::default(),
            }),
            TlvRepr::PortDescription(b"uplink to spine1 port 7"[..].into()),
            TlvRepr::Org(Org::MacPhy {
                autoneg: 3,
                pmd_capability: 0x6c00,
                mau_type: 16,
            }),
            TlvRepr::Org(Org::MaxFrameSize(9216)),
            TlvRepr::Org(Org::PortVlanId(10)),
            TlvRepr::Org(Org::VlanName {
                vid: 10,
                name: b"servers"[..].into(),
            }),
        ],
    };
    let mut pdu = Vec::new();
    repr.emit(&mut pdu).unwrap();
    ethernet([1, 0x80, 0xc2, 0, 0, 0x0e], 0x88cc, &pdu)
}

fn bridge(priority: u16, last: u8) -> BridgeId {
    BridgeId {
        priority,
        system_id_ext: 0,
        mac: MacAddr([0x52, 0x54, 0, 0, 0, last]),
    }
}

fn config() -> Config {
    Config {
        flags: Flags(0x3c),
        root: bridge(4096, 1),
        root_path_cost: 20000,
        bridge: bridge(32768, 2),
        port_id: 0x8001,
        message_age: 256,
        max_age: 20 * 256,
        hello_time: 2 * 256,
        forward_delay: 15 * 256,
    }
}

fn bpdu_frame(repr: &stp::Repr) -> Vec<u8> {
    let mut body = Vec::new();
    repr.emit(&mut body).unwrap();
    let (dst, llc): ([u8; 6], &[u8]) = if repr.pvst_vlan.is_some() {
        (
            [1, 0, 0x0c, 0xcc, 0xcc, 0xcd],
            &[0xaa, 0xaa, 3, 0, 0, 0x0c, 0x01, 0x0b],
        )
    } else {
        ([1, 0x80, 0xc2, 0, 0, 0], &[0x42, 0x42, 3])
    };
    let mut payload = llc.to_vec();
    payload.extend_from_slice(&body);
    ethernet(dst, payload.len() as u16, &payload)
}

fn bpdus() -> Vec<(&'static str, Vec<u8>)> {
    let msti = Msti {
        flags: Flags(0x3c),
        regional_root: bridge(8192, 3),
        internal_root_path_cost: 2000,
        bridge_priority: 32768,
        port_priority: 128,
        remaining_hops: 19,
    };
    let mst = Mst {
        config_name: [b'r'; 32],
        revision: 1,
        cist_bridge: bridge(32768, 2),
        remaining_hops: 20,
        mstis: vec![msti; 2],
        ..Mst::default()
    };
    let repr = |version, body, pvst_vlan| stp::Repr {
        version,
        body,
        pvst_vlan,
    };
    vec![
        (
            "config",
            bpdu_frame(&repr(Version::STP, Body::Config(config()), None)),
        ),
        ("tcn", bpdu_frame(&repr(Version::STP, Body::Tcn, None))),
        (
            "rst",
            bpdu_frame(&repr(Version::RSTP, Body::Rst(config()), None)),
        ),
        (
            "mst_2msti",
            bpdu_frame(&repr(Version::MSTP, Body::Mst(config(), mst), None)),
        ),
        (
            "pvst_rst",
            bpdu_frame(&repr(Version::RSTP, Body::Rst(config()), Some(10))),
        ),
    ]
}

fn slow_frames() -> Vec<(&'static str, Vec<u8>)> {
    let info = lacp::Info {
        system_priority: 32768,
        system: MacAddr(SRC),
        key: 1,
        port_priority: 255,
        port: 1,
        state: lacp::State(0x3d),
    };
    let mut l = Vec::new();
    lacp::Repr {
        version: 1,
        actor: info,
        partner: info,
        collector_max_delay: 0,
    }
    .emit(&mut l);
    let mut m = Vec::new();
    marker::Repr {
        version: 1,
        kind: marker::Kind::REQUEST,
        requester_port: 1,
        requester_system: MacAddr(SRC),
        transaction_id: 1,
    }
    .emit(&mut m);
    let slow = [1, 0x80, 0xc2, 0, 0, 2];
    vec![
        ("lacp", ethernet(slow, 0x8809, &l)),
        ("marker", ethernet(slow, 0x8809, &m)),
    ]
}

fn decode(frame: &[u8]) -> wire::Control<'_> {
    wire::classify(frame).unwrap().control().unwrap().unwrap()
}

fn benches(c: &mut Criterion) {
    let mut frames = vec![("lldp", lldp_frame())];
    frames.extend(bpdus());
    frames.extend(slow_frames());

    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in &frames {
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{name}_{}B", frame.len())),
            frame,
            |b, f| b.iter(|| wire::classify(black_box(f)).unwrap().protocol()),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("classify_decode");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in &frames {
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{name}_{}B", frame.len())),
            frame,
            |b, f| b.iter(|| decode(black_box(f))),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("summary");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in frames
        .iter()
        .filter(|(n, _)| matches!(*n, "lldp" | "config"))
    {
        g.bench_with_input(BenchmarkId::from_parameter(name), frame, |b, f| {
            b.iter(|| wire::summary(black_box(f)))
        });
    }
    g.finish();
}

criterion_group!(wire_benches, benches);
criterion_main!(wire_benches);
