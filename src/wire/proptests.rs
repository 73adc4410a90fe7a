//! Property tests of the whole `wire` module: `parse(emit(x)) == x` for every `Repr`, and
//! no panic on arbitrary bytes, raw or behind valid headers.

use proptest::collection::vec;
use proptest::prelude::*;

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
}
