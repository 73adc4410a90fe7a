//! The STP role of every port of a lab (designated, root, alternate: not forwarding), as the
//! BPDUs crossing its links show.
//!
//! An 802.1D bridge sends configuration BPDUs only on its designated ports; a root port and a
//! blocked (alternate) port only receive them. One link cannot tell a root port from a
//! blocked one, the whole lab can: of a bridge's ports that only receive, the one with the
//! best received priority vector (root, root path cost, sending bridge, sending port) is its
//! root port and the others are alternate (they block); a port that sends BPDUs is designated.
//! An RSTP BPDU says its port's role outright.
//!
//! Only what the lab's spliced links show counts: a bridge whose root port is on a link this
//! node does not carry would have its best visible port taken for the root port, so a port is
//! marked only when the bridge has a better one in view (never a false "blocking" from a lone
//! receiving port).

use std::collections::BTreeMap;

use crate::direction::Direction;
use crate::measure::l2::{StpView, View};
use crate::wire::stp::PortRole;

use super::model::{LinkView, StpRole};

/// A BPDU older than this (seconds) no longer says what a port does: 802.1D's default max age.
const FRESH_S: f64 = 20.0;

/// The priority vector a receiving port compares (lower is better).
type Vector = (u64, u32, u64, u16);

fn bridge_key(b: &crate::measure::l2::Bridge) -> u64 {
    let mac = b.0.mac.0;
    let mut key = u64::from(b.0.priority | b.0.system_id_ext);
    for byte in mac {
        key = key << 8 | u64::from(byte);
    }
    key
}

fn vector(stp: &StpView) -> Option<Vector> {
    Some((
        bridge_key(stp.root.as_ref()?),
        stp.root_path_cost?,
        bridge_key(stp.bridge.as_ref()?),
        stp.port_id?,
    ))
}

/// The fresh STP state the end sending in `direction` shows, if any.
fn fresh(view: &View, direction: Direction, now_s: f64) -> Option<&StpView> {
    view.direction(direction)
        .stp()
        .filter(|latest| now_s - latest.last_seen <= FRESH_S)
        .map(|latest| &latest.state)
}

/// Sets `stp_role` on every link end whose BPDUs (sent or received within max age) say what
/// its port is. `views[i]` is the layer-2 view of `links[i]`, `None` while it is not spliced.
pub fn mark_roles(links: &mut [LinkView], views: &[Option<&View>], now_ns: u64) {
    let now_s = now_ns as f64 / 1e9;
    // Per VM: its receive-only ports, as (link index, end is A, received vector).
    let mut receiving: BTreeMap<u32, Vec<(usize, bool, Vector)>> = BTreeMap::new();
    for (index, view) in views.iter().enumerate() {
        let Some(view) = view else { continue };
        for (end_is_a, sends, receives) in [
            (true, Direction::AToB, Direction::BToA),
            (false, Direction::BToA, Direction::AToB),
        ] {
            if let Some(sent) = fresh(view, sends, now_s) {
                let role = match sent.flags.map(|f| f.0.port_role()) {
                    Some(PortRole::AlternateBackup) => StpRole::Alternate,
                    Some(PortRole::Root) => StpRole::Root,
                    _ => StpRole::Designated,
                };
                set(&mut links[index], end_is_a, role);
                continue;
            }
            if let Some(received) = fresh(view, receives, now_s).and_then(vector) {
                let link = &links[index];
                let vm = if end_is_a { link.a.vm } else { link.b.vm };
                receiving
                    .entry(vm)
                    .or_default()
                    .push((index, end_is_a, received));
            }
        }
    }
    for ports in receiving.values() {
        let Some(best) = ports.iter().map(|p| p.2).min() else {
            continue;
        };
        let mut root_taken = false;
        for &(index, end_is_a, vector) in ports {
            let role = if vector == best && !root_taken {
                root_taken = true;
                StpRole::Root
            } else {
                StpRole::Alternate
            };
            set(&mut links[index], end_is_a, role);
        }
    }
}

fn set(link: &mut LinkView, end_is_a: bool, role: StpRole) {
    if end_is_a {
        link.stp_role.a = Some(role);
    } else {
        link.stp_role.b = Some(role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::model::{EndView, LinkState, PerEnd};
    use crate::wire::MacAddr;
    use crate::wire::stp::{self, BridgeId, Config};

    fn id(priority: u16, last: u8) -> BridgeId {
        BridgeId {
            priority,
            system_id_ext: 0,
            mac: MacAddr([0x52, 0x54, 0, 0, 0, last]),
        }
    }

    /// A configuration BPDU from `bridge`'s port `port`, for the root `root` at `cost`; an
    /// RST BPDU with `flags` when given.
    fn bpdu(bridge: BridgeId, port: u16, root: BridgeId, cost: u32) -> Vec<u8> {
        frame(bridge, port, root, cost, None)
    }

    fn frame(
        bridge: BridgeId,
        port: u16,
        root: BridgeId,
        cost: u32,
        rst_flags: Option<u8>,
    ) -> Vec<u8> {
        let config = Config {
            root,
            root_path_cost: cost,
            bridge,
            port_id: port,
            flags: stp::Flags(rst_flags.unwrap_or(0)),
            ..Config::root(bridge)
        };
        let repr = match rst_flags {
            Some(_) => stp::Repr {
                version: stp::Version::RSTP,
                body: stp::Body::Rst(config),
                pvst_vlan: None,
            },
            None => stp::Repr {
                version: stp::Version::STP,
                body: stp::Body::Config(config),
                pvst_vlan: None,
            },
        };
        let mut llc = vec![0x42, 0x42, 0x03];
        repr.emit(&mut llc).unwrap();
        let mut frame = vec![0x01, 0x80, 0xc2, 0, 0, 0];
        frame.extend_from_slice(&bridge.mac.0);
        frame.extend_from_slice(&(llc.len() as u16).to_be_bytes());
        frame.extend_from_slice(&llc);
        frame
    }

    fn link(name: &str, vm_a: u32, vm_b: u32) -> LinkView {
        let end = |vm: u32| EndView {
            name: format!("vm{vm}:eth1"),
            vm,
            eth: 1,
            nic: None,
            mac: String::new(),
            host: "h".into(),
            local: String::new(),
        };
        LinkView {
            name: name.into(),
            node: "n".into(),
            api: String::new(),
            state: LinkState::Spliced,
            down: false,
            impairment: None,
            a: end(vm_a),
            b: end(vm_b),
            host_mtu: None,
            directions: Default::default(),
            rtt_ms: None,
            neighbour: PerEnd::default(),
            lldp_mismatch: PerEnd::default(),
            stp_role: PerEnd::default(),
            l2: None,
            captures: Vec::new(),
            report: None,
        }
    }

    #[test]
    fn in_a_triangle_the_worse_receiving_port_of_the_far_bridge_is_alternate() {
        // Root R (VM 1), bridges X (VM 2) and Y (VM 3, the higher ID, so it sends nothing
        // once converged): R–X, R–Y, X–Y.
        let (r, x) = (id(4096, 1), id(32768, 2));
        let now_ns = 1_000_000_000_000u64;
        let mut views = [View::new(), View::new(), View::new()];
        // R designated towards X and Y; X designated towards Y at cost 19; Y sends nothing.
        views[0].record(Direction::AToB, now_ns, &bpdu(r, 0x8001, r, 0));
        views[1].record(Direction::AToB, now_ns, &bpdu(r, 0x8002, r, 0));
        views[2].record(Direction::AToB, now_ns, &bpdu(x, 0x8002, r, 19));
        let mut links = vec![link("1-2", 1, 2), link("1-3", 1, 3), link("2-3", 2, 3)];
        let refs: Vec<Option<&View>> = views.iter().map(Some).collect();
        mark_roles(&mut links, &refs, now_ns);
        let roles: Vec<(Option<StpRole>, Option<StpRole>)> =
            links.iter().map(|l| (l.stp_role.a, l.stp_role.b)).collect();
        use StpRole::*;
        assert_eq!(
            roles,
            [
                (Some(Designated), Some(Root)),
                (Some(Designated), Some(Root)),
                (Some(Designated), Some(Alternate))
            ]
        );
        // A stale view (older than max age) says nothing.
        let mut links = vec![link("1-2", 1, 2), link("1-3", 1, 3), link("2-3", 2, 3)];
        mark_roles(&mut links, &refs, now_ns + 60_000_000_000);
        assert!(links.iter().all(|l| l.stp_role == PerEnd::default()));
    }

    #[test]
    fn an_rstp_alternate_port_is_alternate_by_its_own_word() {
        let (r, x) = (id(4096, 1), id(32768, 2));
        // Flags: port role alternate/backup (01 in bits 2–3).
        let alternate = frame(x, 0x8001, r, 19, Some(0x04));
        let mut view = View::new();
        view.record(Direction::BToA, 1_000_000_000, &alternate);
        let mut links = vec![link("1-2", 1, 2)];
        mark_roles(&mut links, &[Some(&view)], 1_000_000_000);
        assert_eq!(links[0].stp_role.b, Some(StpRole::Alternate));
        // A, which only receives, has this as its one (so its best) way to the root.
        assert_eq!(links[0].stp_role.a, Some(StpRole::Root));
    }
}
