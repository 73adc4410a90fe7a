//! The layer-2 control plane of a spliced link, as its frames show it: per direction, the
//! latest LLDP neighbour, STP view and LACP actor/partner state, and the `--expect` check
//! ("do LLDP and STP pass through this link?").
//!
//! [`View::record`] is fed every tapped frame as `(direction, timestamp_ns, bytes)`, like
//! [`Meter`](super::meter::Meter). It classifies the frame with [`wire::classify`] (no
//! allocation) and decodes only LLDP, STP/RSTP/MSTP/PVST+ and LACP frames with the `wire`
//! decoders; it says when what a direction shows has changed, so the splice can print one
//! line per change.
//!
//! Each direction serializes (serde) as a compact object whose keys follow
//! `linkscope decode --json`:
//!
//! ```json
//! { "lldp": { "frames": 3, "last_seen": 1763726400.25,
//!             "chassis_id": {"subtype": "mac", "value": "52:54:00:00:0a:01"},
//!             "port_id": {"subtype": "ifname", "value": "eth1"},
//!             "system_name": "leaf1", "ttl": 120 },
//!   "stp":  { "frames": 9, "last_seen": 1763726401.0, "version": 0, "bpdu_type": "config",
//!             "root": {"priority": 4096, "system_id_ext": 0, "mac": "52:54:00:00:01:00"},
//!             "root_path_cost": 0, "bridge": {...same keys...}, "port_id": 32769,
//!             "flags": {"tc": false, "proposal": false, "port_role": "unknown",
//!                       "learning": false, "forwarding": false, "agreement": false,
//!                       "tc_ack": false},
//!             "pvst_vlan": null, "tcn": 1 },
//!   "lacp": { "frames": 2, "last_seen": 1763726402.5,
//!             "actor": {"system_priority": 65535, "system": "52:54:00:00:0a:01", "key": 9,
//!                       "port_priority": 255, "port": 1,
//!                       "state": {"activity": true, "timeout": false, ...}},
//!             "partner": {...same keys...} },
//!   "malformed": 0 }
//! ```
//!
//! A protocol never seen is `null`. `frames` counts the decoded frames of the protocol,
//! `last_seen` is the newest one's time (seconds since the epoch). STP values come from the
//! newest BPDU that carries them: a TCN BPDU only counts in `tcn` (and in `bpdu_type` as
//! long as no other BPDU was seen). `malformed` counts control frames that failed to decode.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::direction::Direction;
use crate::wire::{self, Control, Protocol, lacp, lldp, stp};

/// The protocols the view follows and `--expect` checks, in their display order.
pub const PROTOCOLS: [Protocol; 3] = [Protocol::Lldp, Protocol::Stp, Protocol::Lacp];

/// A chassis or port ID: subtype name and value text, as `decode --json` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Id {
    pub subtype: String,
    pub value: String,
}

impl Id {
    fn of(id: Option<(String, String)>) -> Option<Id> {
        id.map(|(subtype, value)| Id { subtype, value })
    }
}

/// The LLDP neighbour a direction announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    pub chassis_id: Option<Id>,
    pub port_id: Option<Id>,
    pub system_name: Option<String>,
    /// Seconds; 0 announces a shutdown.
    pub ttl: Option<u16>,
}

impl Neighbour {
    fn of(r: &lldp::Repr<'_>) -> Neighbour {
        Neighbour {
            chassis_id: Id::of(r.chassis_id()),
            port_id: Id::of(r.port_id()),
            system_name: r.system_name(),
            ttl: r.ttl(),
        }
    }
}

/// `chassis=mac 52:54:00:00:0a:01 port=ifname eth1 name=leaf1 ttl=120`.
impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |id: &Option<Id>| {
            id.as_ref()
                .map_or("-".to_string(), |i| format!("{} {}", i.subtype, i.value))
        };
        write!(
            f,
            "chassis={} port={} name={}",
            id(&self.chassis_id),
            id(&self.port_id),
            self.system_name.as_deref().unwrap_or("-")
        )?;
        match self.ttl {
            Some(0) => f.write_str(" ttl=0 (shutdown)"),
            Some(ttl) => write!(f, " ttl={ttl}"),
            None => f.write_str(" ttl=-"),
        }
    }
}

/// A bridge identifier as `decode --json` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bridge(pub stp::BridgeId);

impl Serialize for Bridge {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("priority", &self.0.priority)?;
        m.serialize_entry("system_id_ext", &self.0.system_id_ext)?;
        m.serialize_entry("mac", &self.0.mac.to_string())?;
        m.end()
    }
}

/// BPDU flags as `decode --json` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StpFlags(pub stp::Flags);

impl Serialize for StpFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("tc", &f.tc())?;
        m.serialize_entry("proposal", &f.proposal())?;
        m.serialize_entry("port_role", f.port_role().name())?;
        m.serialize_entry("learning", &f.learning())?;
        m.serialize_entry("forwarding", &f.forwarding())?;
        m.serialize_entry("agreement", &f.agreement())?;
        m.serialize_entry("tc_ack", &f.tc_ack())?;
        m.end()
    }
}

/// The spanning tree as a direction's BPDUs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StpView {
    pub version: u8,
    /// `config`, `rst`, `mst`, or `tcn` while only TCN BPDUs were seen.
    pub bpdu_type: &'static str,
    pub root: Option<Bridge>,
    pub root_path_cost: Option<u32>,
    pub bridge: Option<Bridge>,
    pub port_id: Option<u16>,
    pub flags: Option<StpFlags>,
    pub pvst_vlan: Option<u16>,
    /// TCN BPDUs seen.
    pub tcn: u64,
}

impl StpView {
    /// This view updated by `r`.
    fn updated(old: Option<&StpView>, r: &stp::Repr) -> StpView {
        match (r.config(), old) {
            (None, Some(old)) => StpView {
                tcn: old.tcn + 1,
                ..old.clone()
            },
            (config, old) => StpView {
                version: r.version.0,
                bpdu_type: r.kind_name(),
                root: config.map(|c| Bridge(c.root)),
                root_path_cost: config.map(|c| c.root_path_cost),
                bridge: config.map(|c| Bridge(c.bridge)),
                port_id: config.map(|c| c.port_id),
                flags: config.map(|c| StpFlags(c.flags)),
                pvst_vlan: r.pvst_vlan,
                tcn: old.map_or(0, |o| o.tcn) + u64::from(config.is_none()),
            },
        }
    }
}

/// `config v0 root=4096.0.52:54:00:00:01:00 cost=0 bridge=... port=0x8001 tc tcn=1`; RST and
/// MST BPDUs add `role=...`.
impl fmt::Display for StpView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.bpdu_type, self.version)?;
        if let Some(vlan) = self.pvst_vlan {
            write!(f, " pvst vlan={vlan}")?;
        }
        if let (Some(root), Some(cost), Some(bridge), Some(port), Some(flags)) = (
            self.root,
            self.root_path_cost,
            self.bridge,
            self.port_id,
            self.flags,
        ) {
            write!(
                f,
                " root={} cost={cost} bridge={} port={port:#06x}",
                root.0, bridge.0
            )?;
            // 802.1D configuration BPDUs leave the role bits unused.
            if self.bpdu_type != "config" {
                write!(f, " role={}", flags.0.port_role().name())?;
            }
            let named = [
                (flags.0.tc(), "tc"),
                (flags.0.proposal(), "proposal"),
                (flags.0.learning(), "learning"),
                (flags.0.forwarding(), "forwarding"),
                (flags.0.agreement(), "agreement"),
                (flags.0.tc_ack(), "tc_ack"),
            ];
            for (_, name) in named.iter().filter(|(set, _)| *set) {
                write!(f, " {name}")?;
            }
        }
        if self.tcn > 0 {
            write!(f, " tcn={}", self.tcn)?;
        }
        Ok(())
    }
}

/// LACP actor or partner information as `decode --json` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LacpInfo(pub lacp::Info);

impl Serialize for LacpInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct State(lacp::State);
        impl Serialize for State {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(lacp::State::NAMES.len()))?;
                for (name, set) in self.0.bits() {
                    m.serialize_entry(name, &set)?;
                }
                m.end()
            }
        }
        let i = self.0;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("system_priority", &i.system_priority)?;
        m.serialize_entry("system", &i.system.to_string())?;
        m.serialize_entry("key", &i.key)?;
        m.serialize_entry("port_priority", &i.port_priority)?;
        m.serialize_entry("port", &i.port)?;
        m.serialize_entry("state", &State(i.state))?;
        m.end()
    }
}

/// The LACP state a direction's LACPDUs announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LacpView {
    pub actor: LacpInfo,
    pub partner: LacpInfo,
}

/// `actor (65535,52:54:00:00:0a:01,key 9,port 255.1) AS-YCD-- partner (...) ...`.
impl fmt::Display for LacpView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor {} partner {}", self.actor.0, self.partner.0)
    }
}

/// The newest state of one protocol in one direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latest<T> {
    /// Frames of the protocol decoded.
    pub frames: u64,
    /// Time of the newest, seconds since the Unix epoch.
    pub last_seen: f64,
    #[serde(flatten)]
    pub state: T,
}

/// Updates `slot` with `state`; true when the state is new or differs.
fn update<T: PartialEq>(slot: &mut Option<Latest<T>>, timestamp_ns: u64, state: T) -> bool {
    let last_seen = timestamp_ns as f64 / 1e9;
    match slot {
        Some(latest) => {
            latest.frames += 1;
            latest.last_seen = last_seen;
            let changed = latest.state != state;
            latest.state = state;
            changed
        }
        None => {
            *slot = Some(Latest {
                frames: 1,
                last_seen,
                state,
            });
            true
        }
    }
}

/// What one direction of a link shows of the control plane.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DirectionView {
    lldp: Option<Latest<Neighbour>>,
    stp: Option<Latest<StpView>>,
    lacp: Option<Latest<LacpView>>,
    malformed: u64,
}

impl DirectionView {
    pub fn lldp(&self) -> Option<&Latest<Neighbour>> {
        self.lldp.as_ref()
    }

    pub fn stp(&self) -> Option<&Latest<StpView>> {
        self.stp.as_ref()
    }

    pub fn lacp(&self) -> Option<&Latest<LacpView>> {
        self.lacp.as_ref()
    }

    /// LLDP, STP and LACP frames that failed to decode.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Whether a frame of `protocol` was decoded (Marker: never, it is not followed).
    pub fn seen(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Lldp => self.lldp.is_some(),
            Protocol::Stp => self.stp.is_some(),
            Protocol::Lacp => self.lacp.is_some(),
            Protocol::Marker => false,
        }
    }

    /// [`describe`](Self::describe) for every protocol seen, in [`PROTOCOLS`] order.
    pub fn describe_all(&self) -> Vec<String> {
        PROTOCOLS.iter().filter_map(|&p| self.describe(p)).collect()
    }

    /// One line on the newest state of `protocol`, e.g. `LLDP chassis=mac ... ttl=120`;
    /// `None` when it was never seen.
    pub fn describe(&self, protocol: Protocol) -> Option<String> {
        match protocol {
            Protocol::Lldp => self.lldp.as_ref().map(|l| format!("LLDP {}", l.state)),
            Protocol::Stp => self.stp.as_ref().map(|l| format!("STP {}", l.state)),
            Protocol::Lacp => self.lacp.as_ref().map(|l| format!("LACP {}", l.state)),
            Protocol::Marker => None,
        }
    }
}

/// The control plane of one link, both directions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    directions: [DirectionView; 2],
}

fn slot(direction: Direction) -> usize {
    match direction {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

impl View {
    pub fn new() -> View {
        View::default()
    }

    /// Takes one frame; returns the protocol whose state in `direction` is new or changed.
    /// Frames that are not LLDP, STP or LACP are ignored without allocating.
    pub fn record(
        &mut self,
        direction: Direction,
        timestamp_ns: u64,
        frame: &[u8],
    ) -> Option<Protocol> {
        let frame = wire::classify(frame).ok()?;
        if !matches!(
            frame.protocol(),
            Some(Protocol::Lldp | Protocol::Stp | Protocol::Lacp)
        ) {
            return None;
        }
        let view = &mut self.directions[slot(direction)];
        let changed = match frame.control()? {
            Err(_) => {
                view.malformed += 1;
                return None;
            }
            Ok(Control::Lldp(r)) => update(&mut view.lldp, timestamp_ns, Neighbour::of(&r)),
            Ok(Control::Stp(r)) => {
                let state = StpView::updated(view.stp.as_ref().map(|l| &l.state), &r);
                update(&mut view.stp, timestamp_ns, state)
            }
            Ok(Control::Lacp(r)) => update(
                &mut view.lacp,
                timestamp_ns,
                LacpView {
                    actor: LacpInfo(r.actor),
                    partner: LacpInfo(r.partner),
                },
            ),
            Ok(Control::Marker(_)) => return None,
        };
        changed.then(|| frame.protocol()).flatten()
    }

    /// What `direction` shows.
    pub fn direction(&self, direction: Direction) -> &DirectionView {
        &self.directions[slot(direction)]
    }
}

/// One expected protocol in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expectation {
    pub protocol: Protocol,
    pub direction: Direction,
}

/// `lldp a>b`.
impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol.name(), self.direction.label())
    }
}

/// What `--expect` asks: protocols that must be seen, each in one or both directions, on
/// every link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    wanted: Vec<Expectation>,
}

impl Expect {
    /// Parses `lldp,stp:a>b,lacp:b>a` (one or more texts, comma-separated items). A protocol
    /// without a direction is expected in both. `field` names the option in errors.
    pub fn parse<S: AsRef<str>>(texts: &[S], field: &str) -> crate::Result<Expect> {
        let bad = |item: &str, message: &str| crate::Error::Argument {
            field: field.into(),
            message: format!("{item:?}: {message}"),
        };
        let mut wanted = Vec::new();
        for item in texts.iter().flat_map(|t| t.as_ref().split(',')) {
            let item = item.trim();
            let (name, directions) = match item.split_once(':') {
                None => (item, &Direction::BOTH[..]),
                Some((name, "a>b")) => (name, &[Direction::AToB][..]),
                Some((name, "b>a")) => (name, &[Direction::BToA][..]),
                Some(_) => return Err(bad(item, "the direction must be a>b or b>a")),
            };
            let protocol = PROTOCOLS
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| bad(item, "expected lldp, stp or lacp, optionally :a>b or :b>a"))?;
            wanted.extend(directions.iter().map(|&direction| Expectation {
                protocol,
                direction,
            }));
        }
        if wanted.is_empty() {
            return Err(bad("", "name at least one of lldp, stp, lacp"));
        }
        wanted.sort_unstable_by_key(|e| (e.protocol, slot(e.direction)));
        wanted.dedup();
        Ok(Expect { wanted })
    }

    /// The expectations, sorted by protocol then direction.
    pub fn wanted(&self) -> &[Expectation] {
        &self.wanted
    }

    /// What `view` has not shown yet.
    pub fn missing(&self, view: &View) -> Vec<Expectation> {
        self.wanted
            .iter()
            .filter(|e| !view.direction(e.direction).seen(e.protocol))
            .copied()
            .collect()
    }

    /// Whether every view has shown everything expected.
    pub fn met(&self, views: &[View]) -> bool {
        views.iter().all(|v| {
            self.wanted
                .iter()
                .all(|e| v.direction(e.direction).seen(e.protocol))
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::wire::MacAddr;
    use crate::wire::lldp::PortIdSubtype;

    const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x0a, 0x01];

    fn ethernet(dst: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn lldp_frame(name: &str, ttl: u16) -> Vec<u8> {
        let repr = lldp::Repr::station(
            SRC,
            (PortIdSubtype::INTERFACE_NAME, b"eth1"),
            ttl,
            Some(name.as_bytes()),
        );
        let mut payload = Vec::new();
        repr.emit(&mut payload).unwrap();
        ethernet([0x01, 0x80, 0xc2, 0, 0, 0x0e], 0x88cc, &payload)
    }

    fn bridge(priority: u16, last: u8) -> stp::BridgeId {
        stp::BridgeId {
            priority,
            system_id_ext: 0,
            mac: MacAddr([0x52, 0x54, 0, 0, 1, last]),
        }
    }

    fn stp_frame(body: stp::Body, version: stp::Version) -> Vec<u8> {
        let repr = stp::Repr {
            version,
            body,
            pvst_vlan: None,
        };
        let mut bpdu = vec![0x42, 0x42, 0x03];
        repr.emit(&mut bpdu).unwrap();
        ethernet(
            [0x01, 0x80, 0xc2, 0, 0, 0],
            u16::try_from(bpdu.len()).unwrap(),
            &bpdu,
        )
    }

    fn config(root_priority: u16, flags: u8) -> stp::Body {
        stp::Body::Config(stp::Config {
            flags: stp::Flags(flags),
            root: bridge(root_priority, 0),
            root_path_cost: 4,
            bridge: bridge(32768, 1),
            port_id: 0x8001,
            message_age: 256,
            max_age: 20 * 256,
            hello_time: 2 * 256,
            forward_delay: 15 * 256,
        })
    }

    fn lacp_frame(state: u8) -> Vec<u8> {
        let info = |port, state| lacp::Info {
            system_priority: 65535,
            system: MacAddr(SRC),
            key: 9,
            port_priority: 255,
            port,
            state: lacp::State(state),
        };
        let repr = lacp::Repr {
            version: 1,
            actor: info(1, state),
            partner: info(2, 0x3d),
            collector_max_delay: 0,
        };
        let mut payload = Vec::new();
        repr.emit(&mut payload);
        ethernet([0x01, 0x80, 0xc2, 0, 0, 2], 0x8809, &payload)
    }

    fn arp() -> Vec<u8> {
        ethernet([0xff; 6], 0x0806, &[0; 28])
    }

    #[test]
    fn reports_first_sighting_and_changes_only() {
        let mut view = View::new();
        let a = Direction::AToB;
        assert_eq!(view.record(a, 1, &arp()), None);
        assert_eq!(
            view.record(a, 1, &lldp_frame("leaf1", 120)),
            Some(Protocol::Lldp)
        );
        assert_eq!(view.record(a, 2, &lldp_frame("leaf1", 120)), None);
        assert_eq!(
            view.record(a, 3, &lldp_frame("leaf1", 0)),
            Some(Protocol::Lldp)
        );
        assert_eq!(
            view.record(a, 4, &lldp_frame("leaf2", 0)),
            Some(Protocol::Lldp)
        );
        let lldp = view.direction(a).lldp().unwrap();
        assert_eq!(lldp.frames, 4);
        assert_eq!(lldp.last_seen, 4e-9);
        assert_eq!(lldp.state.system_name.as_deref(), Some("leaf2"));
        assert_eq!(
            view.direction(a).describe(Protocol::Lldp).unwrap(),
            "LLDP chassis=mac 52:54:00:00:0a:01 port=ifname eth1 name=leaf2 ttl=0 (shutdown)"
        );
        assert!(!view.direction(Direction::BToA).seen(Protocol::Lldp));
        assert_eq!(
            view.direction(Direction::BToA).describe(Protocol::Lldp),
            None
        );
    }

    #[test]
    fn stp_keeps_the_configuration_across_tcns() {
        let mut view = View::new();
        let b = Direction::BToA;
        let tcn = stp_frame(stp::Body::Tcn, stp::Version::STP);
        assert_eq!(view.record(b, 1, &tcn), Some(Protocol::Stp));
        assert_eq!(view.direction(b).stp().unwrap().state.bpdu_type, "tcn");
        assert_eq!(view.direction(b).stp().unwrap().state.root, None);
        let plain = stp_frame(config(4096, 0), stp::Version::STP);
        assert_eq!(view.record(b, 2, &plain), Some(Protocol::Stp));
        assert_eq!(view.record(b, 3, &plain), None);
        assert_eq!(view.record(b, 4, &tcn), Some(Protocol::Stp));
        let stp = &view.direction(b).stp().unwrap().state;
        assert_eq!((stp.bpdu_type, stp.tcn), ("config", 2));
        assert_eq!(stp.root, Some(Bridge(bridge(4096, 0))));
        let tc = stp_frame(config(4096, stp::Flags::TC), stp::Version::STP);
        assert_eq!(view.record(b, 5, &tc), Some(Protocol::Stp));
        assert_eq!(
            view.direction(b).describe(Protocol::Stp).unwrap(),
            "STP config v0 root=4096.0.52:54:00:00:01:00 cost=4 bridge=32768.0.52:54:00:00:01:01 \
             port=0x8001 tc tcn=2"
        );
        let rst = stp_frame(
            match config(0, 0x3c) {
                stp::Body::Config(c) => stp::Body::Rst(c),
                _ => unreachable!(),
            },
            stp::Version::RSTP,
        );
        assert_eq!(view.record(b, 6, &rst), Some(Protocol::Stp));
        let stp = &view.direction(b).stp().unwrap().state;
        assert_eq!((stp.version, stp.bpdu_type), (2, "rst"));
        assert_eq!(stp.flags.unwrap().0.port_role(), stp::PortRole::Designated);
    }

    #[test]
    fn lacp_state_changes_and_malformed_frames_count() {
        let mut view = View::new();
        let a = Direction::AToB;
        assert_eq!(view.record(a, 1, &lacp_frame(0x05)), Some(Protocol::Lacp));
        assert_eq!(view.record(a, 2, &lacp_frame(0x05)), None);
        assert_eq!(view.record(a, 3, &lacp_frame(0x3d)), Some(Protocol::Lacp));
        let lacp = &view.direction(a).lacp().unwrap().state;
        assert!(lacp.actor.0.state.synchronization());
        let mut broken = lacp_frame(0x3d);
        broken.truncate(40);
        assert_eq!(view.record(a, 4, &broken), None);
        let mut broken = lldp_frame("x", 1);
        broken[14] = 0x08;
        broken.truncate(16);
        assert_eq!(view.record(a, 5, &broken), None);
        assert_eq!(view.direction(a).malformed(), 2);
        assert_eq!(view.direction(a).lacp().unwrap().frames, 2 + 1);
    }

    #[test]
    fn serializes_with_decode_json_keys() {
        let mut view = View::new();
        let a = Direction::AToB;
        view.record(a, 1_500_000_000, &lldp_frame("leaf1", 120));
        view.record(
            a,
            2_000_000_000,
            &stp_frame(config(4096, 0), stp::Version::STP),
        );
        view.record(a, 3_000_000_000, &lacp_frame(0x3d));
        let json = serde_json::to_value(view.direction(a)).unwrap();
        assert_eq!(
            json["lldp"],
            serde_json::json!({
                "frames": 1, "last_seen": 1.5,
                "chassis_id": {"subtype": "mac", "value": "52:54:00:00:0a:01"},
                "port_id": {"subtype": "ifname", "value": "eth1"},
                "system_name": "leaf1", "ttl": 120,
            })
        );
        assert_eq!(
            json["stp"]["root"],
            serde_json::json!({"priority": 4096, "system_id_ext": 0, "mac": "52:54:00:00:01:00"})
        );
        assert_eq!(json["stp"]["flags"]["port_role"], "unknown");
        assert_eq!(json["stp"]["port_id"], 0x8001);
        assert_eq!(json["stp"]["tcn"], 0);
        assert_eq!(json["lacp"]["actor"]["state"]["synchronization"], true);
        assert_eq!(json["lacp"]["actor"]["state"]["expired"], false);
        assert_eq!(json["lacp"]["partner"]["port"], 2);
        assert_eq!(json["malformed"], 0);
        let quiet = serde_json::to_value(view.direction(Direction::BToA)).unwrap();
        assert_eq!(
            quiet,
            serde_json::json!({"lldp": null, "stp": null, "lacp": null, "malformed": 0})
        );
    }

    #[test]
    fn expect_parses_protocols_and_directions() {
        let e = Expect::parse(&["lldp,stp:a>b", "lacp:b>a,lldp:a>b"], "--expect").unwrap();
        let shown: Vec<String> = e.wanted().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["lldp a>b", "lldp b>a", "stp a>b", "lacp b>a"]);
        for bad in ["", "lldp,", "ospf", "lldp:a<b", "lldp:", "marker", "LLDP"] {
            let err = Expect::parse(&[bad], "--expect").unwrap_err();
            assert!(err.is_input(), "{bad}");
            assert!(err.to_string().contains("--expect"), "{err}");
        }
    }

    #[test]
    fn expect_is_met_when_every_direction_of_every_link_showed_everything() {
        let e = Expect::parse(&["lldp", "stp:b>a"], "--expect").unwrap();
        let mut views = vec![View::new(), View::new()];
        assert!(!e.met(&views));
        for v in &mut views {
            v.record(Direction::AToB, 1, &lldp_frame("x", 120));
            v.record(
                Direction::BToA,
                1,
                &stp_frame(config(0, 0), stp::Version::STP),
            );
        }
        let missing: Vec<String> = e
            .missing(&views[0])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(missing, ["lldp b>a"]);
        views[0].record(Direction::BToA, 2, &lldp_frame("y", 120));
        assert!(!e.met(&views));
        views[1].record(Direction::BToA, 2, &lldp_frame("y", 120));
        assert!(e.met(&views));
        assert!(e.missing(&views[1]).is_empty());
    }
}
