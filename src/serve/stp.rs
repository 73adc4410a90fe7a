//! Which STP ports of a lab do not forward, as the BPDUs crossing its links show.
//!
//! An 802.1D bridge sends configuration BPDUs only on its designated ports; a root port and a
//! blocked (alternate) port only receive them. One link cannot tell a root port from a
//! blocked one, the whole lab can: of a bridge's ports that only receive, the one with the
//! best received priority vector (root, root path cost, sending bridge, sending port) is its
//! root port and the others block. An RSTP BPDU says its port's role outright: an end that
//! sends one with the alternate/backup role blocks.
//!
//! Only what the lab's spliced links show counts: a bridge whose root port is on a link this
//! node does not carry would have its best visible port taken for the root port, so a port is
//! marked only when the bridge has a better one in view (never a false "blocking" from a lone
//! receiving port).

use std::collections::BTreeMap;

use crate::direction::Direction;
use crate::measure::l2::{StpView, View};
use crate::wire::stp::PortRole;

use super::model::LinkView;

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

/// Sets `stp_blocking` on every link end whose port does not forward. `views[i]` is the
/// layer-2 view of `links[i]`, `None` while it is not spliced.
pub fn mark_blocking(links: &mut [LinkView], views: &[Option<&View>], now_ns: u64) {
    let now_s = now_ns as f64 / 1e9;
    // Per VM: its receive-only ports, as (link index, end is A, received vector).
    let mut receiving: BTreeMap<u32, Vec<(usize, bool, Vector)>> = BTreeMap::new();
    for (index, view) in views.iter().enumerate() {
        let Some(view) = view else { continue };
        for (end_is_a, sends, receives) in [
            (true, Direction::AToB, Direction::BToA),
            (false, Direction::BToA, Direction::AToB),
        ] {
            let sent = fresh(view, sends, now_s);
            if sent
                .and_then(|s| s.flags)
                .is_some_and(|f| f.0.port_role() == PortRole::AlternateBackup)
            {
                set(&mut links[index], end_is_a);
                continue;
            }
            if sent.is_some() {
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
            if vector == best && !root_taken {
                root_taken = true;
            } else {
                set(&mut links[index], end_is_a);
            }
        }
    }
}

fn set(link: &mut LinkView, end_is_a: bool) {
    if end_is_a {
        link.stp_blocking.a = true;
    } else {
        link.stp_blocking.b = true;
    }
}
