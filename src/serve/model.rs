//! What `serve` says about a lab: one [`LinkView`] per link, as `/api/links`, the page and
//! `/metrics` show it. The same JSON comes back from a peer's `/api/links`, so a node can draw
//! the whole cluster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every link one node (or a node and its peers) serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabView {
    /// The node that answered (`--node`, default the host name).
    pub node: String,
    pub links: Vec<LinkView>,
    /// Peers (`--peer URL`) that did not answer the last time they were asked.
    #[serde(default)]
    pub unreachable: Vec<String>,
}

/// Whether a planned link is being carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Spliced: its frames cross linkscope.
    Spliced,
    /// Planned on this node, but no VM socket of it is bound yet.
    Waiting,
}

/// One end of a link as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndView {
    /// `vm100:eth1`.
    pub name: String,
    pub vm: u32,
    pub eth: u32,
    /// The NIC's `netN` on its VM (the QEMU netdev id), when the plan knows it.
    pub nic: Option<String>,
    pub mac: String,
    /// The node (host) the VM runs on, as the mapping's addresses say.
    pub host: String,
    /// The address the VM's tunnel socket binds.
    pub local: String,
}

/// One direction's live figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionFigures {
    pub frames: u64,
    pub bytes: u64,
    /// Frames and bits per second over the last interval.
    pub pps: f64,
    pub bps: f64,
    /// Frames linkscope dropped, by cause (the engine's counter names).
    pub dropped: BTreeMap<String, u64>,
    /// Frames whose tunnel datagram exceeds the path MTU, so the host fragments it.
    pub fragmented: u64,
    /// Frames forwarded whose copy was dropped because measuring and capturing fell
    /// behind (the frames themselves were forwarded).
    #[serde(default)]
    pub copy_dropped: u64,
    /// What the impairment did, by action (dropped_loss, delayed, duplicated, …).
    #[serde(default)]
    pub impaired: BTreeMap<String, u64>,
}

/// One live capture client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFigures {
    /// Frames written to it.
    pub frames: u64,
    /// Frames it lost because it did not read fast enough.
    pub dropped: u64,
}

/// Round-trip times beyond the splice, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RttView {
    pub count: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// Cumulative counts at the bucket bounds of [`RTT_BUCKETS_MS`], for `/metrics`.
    #[serde(default)]
    pub buckets: [u64; RTT_BUCKETS_MS.len()],
    /// Sum of all round trips, in milliseconds.
    #[serde(default)]
    pub sum_ms: f64,
}

/// Upper bounds (ms) of the RTT histogram buckets `/metrics` exposes.
pub const RTT_BUCKETS_MS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0,
];

/// The LLDP neighbour an end announces, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourView {
    pub chassis: Option<String>,
    pub port: Option<String>,
    pub system_name: Option<String>,
}

/// The role of a spanning-tree port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StpRole {
    /// Sends BPDUs on its segment: forwards.
    Designated,
    /// The bridge's way to the root: forwards.
    Root,
    /// Neither: does not forward (blocking or discarding).
    Alternate,
}

impl StpRole {
    /// The name in the JSON and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            StpRole::Designated => "designated",
            StpRole::Root => "root",
            StpRole::Alternate => "alternate",
        }
    }
}

/// A value per end of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerEnd<T> {
    pub a: T,
    pub b: T,
}

/// One link, live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub name: String,
    /// The node serving it.
    pub node: String,
    /// Where its capture and controls live on the server that drew the page:
    /// `/api/links/NAME` on its own node, `/api/peers/N/links/NAME` through a peer.
    pub api: String,
    pub state: LinkState,
    /// Cut (`down`) by a control verb: every frame is dropped.
    pub down: bool,
    /// The active impairment, as its spec, per direction (`a>b: delay=10ms`), or none.
    pub impairment: Option<String>,
    pub a: EndView,
    pub b: EndView,
    pub host_mtu: Option<u32>,
    /// `"a>b"` and `"b>a"`: only the directions this node carries.
    pub directions: BTreeMap<String, DirectionFigures>,
    pub rtt_ms: Option<RttView>,
    /// What each end announces over LLDP (seen on the direction it sends).
    pub neighbour: PerEnd<Option<NeighbourView>>,
    /// True where an end's LLDP identity differs from the plan, null where it cannot be told.
    pub lldp_mismatch: PerEnd<Option<bool>>,
    /// Each end's STP port role, as the lab's BPDUs show it; null where none is seen.
    pub stp_role: PerEnd<Option<StpRole>>,
    /// Live capture clients of the link and the frames they lost by not reading fast
    /// enough (each loses only its own).
    #[serde(default)]
    pub captures: Vec<CaptureFigures>,
    /// The layer-2 control plane per direction (`"a>b"`, `"b>a"`), as `splice --json`
    /// shows it: the latest LLDP neighbour, STP and LACP state.
    pub l2: Option<serde_json::Value>,
    /// The measurement report of the link, as `splice --json` gives it (sizes, MTU,
    /// added latency, round trips, advice), while it is spliced.
    pub report: Option<serde_json::Value>,
}
