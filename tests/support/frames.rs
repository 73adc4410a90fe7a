//! Control frames built with the wire Reprs, as the tests send them across a splice or a
//! relay.

use linkscope::wire::lldp::{self, PortIdSubtype};
use linkscope::wire::{MacAddr, stp};

/// An Ethernet II frame (or an 802.3 frame when `ether_type` is a length).
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An LLDPDU from `src`: chassis = its MAC, port eth1, TTL 120, system name `name`.
pub fn lldp_frame(src: [u8; 6], name: &str) -> Vec<u8> {
    let repr = lldp::Repr::station(
        src,
        (PortIdSubtype::INTERFACE_NAME, b"eth1"),
        120,
        Some(name.as_bytes()),
    );
    let mut payload = Vec::new();
    repr.emit(&mut payload).unwrap();
    ethernet([0x01, 0x80, 0xc2, 0, 0, 0x0e], src, 0x88cc, &payload)
}

/// An 802.1D configuration BPDU of a root bridge with MAC `src` and `priority`.
pub fn stp_frame(src: [u8; 6], priority: u16) -> Vec<u8> {
    let id = stp::BridgeId {
        priority,
        system_id_ext: 0,
        mac: MacAddr(src),
    };
    let repr = stp::Repr {
        version: stp::Version::STP,
        body: stp::Body::Config(stp::Config::root(id)),
        pvst_vlan: None,
    };
    let mut llc = vec![0x42, 0x42, 0x03];
    repr.emit(&mut llc).unwrap();
    let len = u16::try_from(llc.len()).unwrap();
    ethernet([0x01, 0x80, 0xc2, 0, 0, 0], src, len, &llc)
}
