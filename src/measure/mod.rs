//! Measurements: per-frame meters (volume, inferred loss, round-trip times, fragmentation
//! against host_mtu), the layer-2 control-plane view and its `--expect` check, the kernel's
//! fragmentation counters, the JSON report, path-MTU probing and capture comparison.

pub mod compare;
mod fast_map;
pub mod fragment;
pub mod l2;
pub mod meter;
mod pending;
pub mod pmtu;
pub mod report;
pub mod snmp;
