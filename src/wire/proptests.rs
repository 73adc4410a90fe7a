//! Property tests of the whole `wire` module: `parse(emit(x)) == x` for every `Repr`, no
//! panic on arbitrary bytes, raw or behind valid headers, and the views' promise: every
//! accessor of every view that `new_checked` accepted returns without panicking.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::lldp::{Bytes, TlvRepr, TlvType};
use super::lldp::{Capabilities, ChassisIdSubtype, ManagementAddress, Org, PortIdSubtype};
use super::stp::{Body, BridgeId, Config, Flags, Mst, Msti, Version};
use super::{MacAddr, classify, lacp, lldp, marker, stp, summary};

fn raw(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn bytes(min: usize, max: usize) -> impl Strategy<Value = Bytes<'static>> {
    vec(any::<u8>(), min..=max).prop_map(Bytes::Owned)
}

fn org() -> impl Strategy<Value = Org<'static>> {
    prop_oneof![
        any::<u16>().prop_map(Org::PortVlanId),
        (any::<u8>(), any::<u16>()).prop_map(|(flags, ppvid)| Org::ProtocolVlan { flags, ppvid }),
        (any::<u16>(), bytes(0, 32)).prop_map(|(vid, name)| Org::VlanName { vid, name }),
        (any::<u8>(), any::<u32>())
            .prop_map(|(status, port_id)| Org::Dot1LinkAggregation { status, port_id }),
        (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
            |(autoneg, pmd_capability, mau_type)| {
                Org::MacPhy {
                    autoneg,
                    pmd_capability,
                    mau_type,
                }
            }
        ),
        (any::<u8>(), any::<u8>(), any::<u8>(), bytes(0, 20)).prop_map(
            |(mdi, pair, class, extension)| Org::Power {
                mdi,
                pair,
                class,
                extension
            }
        ),
        (any::<u8>(), any::<u32>())
            .prop_map(|(status, port_id)| Org::Dot3LinkAggregation { status, port_id }),
        any::<u16>().prop_map(Org::MaxFrameSize),
        (any::<[u8; 3]>(), any::<u8>(), bytes(0, 200))
            .prop_filter(
                "decoded kinds have their own variant",
                |(oui, subtype, _)| { !Org::is_decoded(*oui, *subtype) }
            )
            .prop_map(|(oui, subtype, info)| Org::Other { oui, subtype, info }),
    ]
}

fn tlv() -> impl Strategy<Value = TlvRepr<'static>> {
    prop_oneof![
        (any::<u8>(), bytes(1, 255)).prop_map(|(s, id)| TlvRepr::ChassisId {
            subtype: ChassisIdSubtype(s),
            id
        }),
        (any::<u8>(), bytes(1, 255)).prop_map(|(s, id)| TlvRepr::PortId {
            subtype: PortIdSubtype(s),
            id
        }),
        any::<u16>().prop_map(TlvRepr::Ttl),
        bytes(0, 255).prop_map(TlvRepr::PortDescription),
        bytes(0, 255).prop_map(TlvRepr::SystemName),
        bytes(0, 255).prop_map(TlvRepr::SystemDescription),
        (any::<u16>(), any::<u16>()).prop_map(|(a, e)| TlvRepr::Capabilities {
            available: Capabilities(a),
            enabled: Capabilities(e)
        }),
        (
            any::<u8>(),
            bytes(1, 31),
            any::<u8>(),
            any::<u32>(),
            bytes(0, 128)
        )
            .prop_map(|(family, address, if_subtype, if_number, oid)| {
                TlvRepr::ManagementAddress(ManagementAddress {
                    family,
                    address,
                    if_subtype,
                    if_number,
                    oid,
                })
            }),
        org().prop_map(TlvRepr::Org),
        (9u8..=126, bytes(0, 100)).prop_map(|(t, value)| TlvRepr::Unknown {
            tlv_type: TlvType(t),
            value
        }),
    ]
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn bridge_id() -> impl Strategy<Value = BridgeId> {
    (0u16..16, 0u16..4096, mac()).prop_map(|(p, system_id_ext, mac)| BridgeId {
        priority: p << 12,
        system_id_ext,
        mac,
    })
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<u8>(),
        bridge_id(),
        any::<u32>(),
        bridge_id(),
        any::<u16>(),
        any::<[u16; 4]>(),
    )
        .prop_map(|(flags, root, root_path_cost, bridge, port_id, t)| Config {
            flags: Flags(flags),
            root,
            root_path_cost,
            bridge,
            port_id,
            message_age: t[0],
            max_age: t[1],
            hello_time: t[2],
            forward_delay: t[3],
        })
}

fn msti() -> impl Strategy<Value = Msti> {
    (
        any::<u8>(),
        bridge_id(),
        any::<u32>(),
        0u16..16,
        0u8..16,
        any::<u8>(),
    )
        .prop_map(
            |(flags, regional_root, cost, bp, pp, remaining_hops)| Msti {
                flags: Flags(flags),
                regional_root,
                internal_root_path_cost: cost,
                bridge_priority: bp << 12,
                port_priority: pp << 4,
                remaining_hops,
            },
        )
}

fn mst() -> impl Strategy<Value = Mst> {
    (
        any::<u8>(),
        any::<[u8; 32]>(),
        any::<u16>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        bridge_id(),
        any::<u8>(),
        vec(msti(), 0..=6),
    )
        .prop_map(
            |(config_format, config_name, revision, digest, cost, cist_bridge, hops, mstis)| Mst {
                config_format,
                config_name,
                revision,
                digest,
                cist_internal_root_path_cost: cost,
                cist_bridge,
                remaining_hops: hops,
                mstis,
            },
        )
}

fn stp_repr() -> impl Strategy<Value = stp::Repr> {
    let body = prop_oneof![
        (any::<u8>(), Just(Body::Tcn)),
        (any::<u8>(), config().prop_map(Body::Config)),
        (any::<u8>(), config().prop_map(Body::Rst)),
        (
            3u8..=255,
            (config(), mst()).prop_map(|(c, m)| Body::Mst(c, m))
        ),
    ];
    (body, proptest::option::of(any::<u16>())).prop_map(|((version, body), vlan)| {
        // Only configuration and RST BPDUs carry the PVST+ TLV.
        let pvst_vlan = vlan.filter(|_| matches!(body, Body::Config(_) | Body::Rst(_)));
        stp::Repr {
            version: Version(version),
            body,
            pvst_vlan,
        }
    })
}

fn lacp_info() -> impl Strategy<Value = lacp::Info> {
    (
        any::<u16>(),
        mac(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(
            |(system_priority, system, key, port_priority, port, state)| lacp::Info {
                system_priority,
                system,
                key,
                port_priority,
                port,
                state: lacp::State(state),
            },
        )
}

/// Valid encodings, damaged: up to four bytes overwritten, a byte of `pinned` (offset, values)
/// set to one of its values (e.g. the BPDU type), and maybe cut short. Most of these fail
/// `new_checked` somewhere; the ones that pass reach every accessor in odd shapes (a TCN
/// header on a long buffer, a long TCN, an MST version 3 length at its limits).
fn damaged(
    valid: impl Strategy<Value = Vec<u8>>,
    pinned: (usize, Vec<u8>),
) -> impl Strategy<Value = Vec<u8>> {
    let (at, values) = pinned;
    (
        valid,
        vec((any::<Index>(), any::<u8>()), 0..=4),
        proptest::option::of(select(values)),
        proptest::option::of(any::<Index>()),
    )
        .prop_map(move |(mut b, edits, pin, cut)| {
            if !b.is_empty() {
                for (i, v) in edits {
                    let i = i.index(b.len());
                    b[i] = v;
                }
            }
            if let Some(v) = pin
                && at < b.len()
            {
                b[at] = v;
            }
            if let Some(cut) = cut {
                b.truncate(cut.index(b.len() + 1));
            }
            b
        })
}

fn bpdu_bytes() -> impl Strategy<Value = Vec<u8>> {
    damaged(
        stp_repr().prop_map(|r| {
            let mut out = Vec::new();
            r.emit(&mut out).unwrap();
            out
        }),
        (3, vec![0x00, 0x02, 0x80]),
    )
}

fn lacpdu_bytes() -> impl Strategy<Value = Vec<u8>> {
    damaged(
        (any::<u8>(), lacp_info(), lacp_info(), any::<u16>()).prop_map(|(v, a, p, d)| {
            let mut out = Vec::new();
            lacp::Repr {
                version: v,
                actor: a,
                partner: p,
                collector_max_delay: d,
            }
            .emit(&mut out);
            out
        }),
        (0, vec![1, 2]),
    )
}

fn marker_bytes() -> impl Strategy<Value = Vec<u8>> {
    damaged(
        (any::<u8>(), 1u8..=2, any::<u16>(), mac(), any::<u32>()).prop_map(
            |(version, kind, port, system, id)| {
                let mut out = Vec::new();
                marker::Repr {
                    version,
                    kind: marker::Kind(kind),
                    requester_port: port,
                    requester_system: system,
                    transaction_id: id,
                }
                .emit(&mut out);
                out
            },
        ),
        (2, vec![1, 2, 3]),
    )
}

fn lldpdu_bytes() -> impl Strategy<Value = Vec<u8>> {
    damaged(
        vec(tlv(), 0..6).prop_map(|tlvs| {
            let mut out = Vec::new();
            lldp::Repr { tlvs }.emit(&mut out).unwrap();
            out
        }),
        (1, vec![0, 1, 0xff]),
    )
}

/// Which views accepted a buffer, after calling every accessor of each.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Accepted {
    #[default]
    Nothing,
    Tcn,
    Config,
    Rst,
    Mst,
}

/// Calls every accessor of `stp::Bpdu`, `stp::ConfigBpdu` and `stp::MstBpdu` on `d` where
/// their `new_checked` accepts it.
fn every_bpdu_accessor(d: &[u8]) -> Accepted {
    if let Ok(c) = stp::ConfigBpdu::new_checked(d) {
        config_accessors(&c);
    }
    if let Ok(m) = stp::MstBpdu::new_checked(d) {
        mst_accessors(&m);
    }
    let Ok(b) = stp::Bpdu::new_checked(d) else {
        return Accepted::Nothing;
    };
    let _ = (b.version(), b.bpdu_type(), b.is_mst());
    assert!(b.bpdu_len() <= d.len());
    if let Some(c) = b.config() {
        config_accessors(&c);
    }
    if let Some(m) = b.mst() {
        mst_accessors(&m);
    }
    match (b.config(), b.mst()) {
        (None, _) => Accepted::Tcn,
        (Some(_), Some(_)) => Accepted::Mst,
        (Some(_), None) if b.bpdu_type() == stp::BpduType::CONFIG => Accepted::Config,
        (Some(_), None) => Accepted::Rst,
    }
}

fn config_accessors<T: AsRef<[u8]>>(c: &stp::ConfigBpdu<T>) {
    let _ = (
        c.flags(),
        c.root_id(),
        c.root_path_cost(),
        c.bridge_id(),
        c.port_id(),
    );
    let _ = (
        c.message_age(),
        c.max_age(),
        c.hello_time(),
        c.forward_delay(),
    );
}

fn mst_accessors<T: AsRef<[u8]>>(m: &stp::MstBpdu<T>) {
    let _ = (
        m.version3_length(),
        m.config_format(),
        m.config_name(),
        m.revision(),
    );
    let _ = (
        m.digest(),
        m.cist_internal_root_path_cost(),
        m.cist_bridge_id(),
    );
    let _ = m.cist_remaining_hops();
    for i in 0..m.msti_count() {
        assert!(m.msti(i).is_some());
    }
    assert_eq!(m.msti(m.msti_count()), None);
}

/// Calls every accessor of `lacp::Lacpdu` where `new_checked` accepts `d`.
fn every_lacpdu_accessor(d: &[u8]) -> bool {
    let Ok(p) = lacp::Lacpdu::new_checked(d) else {
        return false;
    };
    let _ = (p.version(), p.actor(), p.partner(), p.collector_max_delay());
    true
}

/// Calls every accessor of `marker::MarkerPdu` where `new_checked` accepts `d`.
fn every_marker_accessor(d: &[u8]) -> bool {
    let Ok(p) = marker::MarkerPdu::new_checked(d) else {
        return false;
    };
    let _ = (
        p.version(),
        p.kind(),
        p.requester_port(),
        p.requester_system(),
    );
    let _ = p.transaction_id();
    true
}

/// Calls every accessor of `lldp::Tlv` on each TLV `new_checked` accepts, walking `d` as
/// `TlvIter` does and from every offset; returns how many were accepted.
fn every_tlv_accessor(d: &[u8]) -> usize {
    let mut accepted = 0;
    for start in 0..d.len() {
        if let Ok(t) = lldp::Tlv::new_checked(&d[start..]) {
            let _ = (t.tlv_type(), t.value(), t.total_len());
            assert!(t.total_len() <= d.len() - start);
            assert_eq!(t.value().len(), t.length());
            accepted += 1;
        }
    }
    for t in lldp::TlvIter::new(d).flatten() {
        let _ = (t.tlv_type(), t.length(), t.value(), t.total_len());
    }
    accepted
}

/// The generators above reach every view and every BPDU kind through `new_checked`, so the
/// accessor property below is not vacuous.
#[test]
fn damaged_encodings_reach_every_view() {
    let mut runner = TestRunner::deterministic();
    let mut kinds = std::collections::BTreeSet::new();
    let (mut lacp_ok, mut marker_ok, mut tlv_ok) = (0, 0, 0);
    for _ in 0..2000 {
        let b = bpdu_bytes().new_tree(&mut runner).unwrap().current();
        kinds.insert(every_bpdu_accessor(&b));
        lacp_ok += usize::from(every_lacpdu_accessor(
            &lacpdu_bytes().new_tree(&mut runner).unwrap().current(),
        ));
        marker_ok += usize::from(every_marker_accessor(
            &marker_bytes().new_tree(&mut runner).unwrap().current(),
        ));
        tlv_ok += every_tlv_accessor(&lldpdu_bytes().new_tree(&mut runner).unwrap().current());
    }
    use Accepted::*;
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [Nothing, Tcn, Config, Rst, Mst]
    );
    assert!(
        lacp_ok > 0 && marker_ok > 0 && tlv_ok > 0,
        "{lacp_ok} {marker_ok} {tlv_ok}"
    );
}

proptest! {
    #[test]
    fn lldp_round_trip(tlvs in vec(tlv(), 0..8)) {
        let repr = lldp::Repr { tlvs };
        let mut out = Vec::new();
        repr.emit(&mut out).unwrap();
        prop_assert_eq!(out.len(), repr.buffer_len());
        prop_assert_eq!(lldp::Repr::parse(&out).unwrap(), repr);
    }

    #[test]
    fn stp_round_trip(repr in stp_repr()) {
        let mut out = Vec::new();
        repr.emit(&mut out).unwrap();
        prop_assert_eq!(out.len(), repr.buffer_len());
        let back = if repr.pvst_vlan.is_some() {
            stp::Repr::parse_pvst(&out)
        } else {
            stp::Repr::parse(&out)
        };
        prop_assert_eq!(back.unwrap(), repr);
    }

    #[test]
    fn lacp_round_trip(version in any::<u8>(), actor in lacp_info(), partner in lacp_info(),
                       delay in any::<u16>()) {
        let repr = lacp::Repr { version, actor, partner, collector_max_delay: delay };
        let mut out = Vec::new();
        repr.emit(&mut out);
        prop_assert_eq!(out.len(), repr.buffer_len());
        prop_assert_eq!(lacp::Repr::parse(&out).unwrap(), repr);
    }

    #[test]
    fn marker_round_trip(version in any::<u8>(), kind in 1u8..=2, port in any::<u16>(),
                         system in mac(), id in any::<u32>()) {
        let repr = marker::Repr {
            version,
            kind: marker::Kind(kind),
            requester_port: port,
            requester_system: system,
            transaction_id: id,
        };
        let mut out = Vec::new();
        repr.emit(&mut out);
        prop_assert_eq!(out.len(), repr.buffer_len());
        prop_assert_eq!(marker::Repr::parse(&out).unwrap(), repr);
    }

    #[test]
    fn arbitrary_frames_never_panic(frame in raw(300)) {
        let _ = summary(&frame);
        if let Ok(f) = classify(&frame) {
            let _ = f.control();
        }
    }

    #[test]
    fn arbitrary_payloads_behind_valid_headers_never_panic(
        kind in 0usize..6, tag in any::<bool>(), body in raw(300)
    ) {
        let mut frame = vec![1, 0x80, 0xc2, 0, 0, 0, 0x52, 0x54, 0, 0, 0, 1];
        if tag {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        let llc_len = |extra: usize| ((body.len() + extra) as u16).to_be_bytes();
        match kind {
            0 => frame.extend_from_slice(&[0x88, 0xcc]),
            1 => frame.extend_from_slice(&[0x88, 0x09, 1]),
            2 => frame.extend_from_slice(&[0x88, 0x09, 2]),
            3 => {
                frame.extend_from_slice(&llc_len(3));
                frame.extend_from_slice(&[0x42, 0x42, 0x03]);
            }
            4 => {
                frame.extend_from_slice(&llc_len(8));
                frame.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x01, 0x0b]);
            }
            _ => frame.extend_from_slice(&[0x08, 0x00, 0x45]),
        }
        frame.extend_from_slice(&body);
        let _ = summary(&frame);
        let _ = classify(&frame).map(|f| f.control());
        let _ = lldp::Repr::parse(&body);
        let _ = stp::Repr::parse(&body);
        let _ = stp::Repr::parse_pvst(&body);
        let _ = lacp::Repr::parse(&body);
        let _ = marker::Repr::parse(&body);
    }

    #[test]
    fn every_accessor_of_every_checked_view_returns(
        bpdu in bpdu_bytes(), lacpdu in lacpdu_bytes(), marker in marker_bytes(),
        lldpdu in lldpdu_bytes(), junk in raw(200)
    ) {
        for d in [&bpdu, &lacpdu, &marker, &lldpdu, &junk] {
            every_bpdu_accessor(d);
            every_lacpdu_accessor(d);
            every_marker_accessor(d);
            every_tlv_accessor(d);
        }
    }
}
