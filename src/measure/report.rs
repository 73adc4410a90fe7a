//! The JSON report of a measured splice (`--json`), version 1.
//!
//! The keys are a contract with users' scripts: change them only with a new `version`.
//! Figures a single splice cannot know are `null`, never a made-up zero.

use serde::Serialize;

/// The whole report: `{"version":1, "duration_s", "links":[…], "host":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub version: u32,
    pub duration_s: f64,
    pub links: Vec<LinkReport>,
    pub host: Host,
}

/// One spliced link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    pub name: String,
    pub host_mtu: Option<u32>,
    pub path_mtu: u32,
    pub directions: Vec<DirectionReport>,
    pub rtt_ms: RttSet,
    pub tcp_retransmissions: u64,
    pub advice: Vec<String>,
}

/// One direction of a link, e.g. from "a" to "b".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionReport {
    pub from: String,
    pub to: String,
    pub frames: u64,
    pub bytes: u64,
    /// Average frames per second over the run.
    pub pps: f64,
    /// Average bits per second of Ethernet frames over the run.
    pub bps: f64,
    pub dropped: Dropped,
    /// Tap copies dropped because the capture could not keep up; the frames were forwarded.
    pub capture_dropped: u64,
    pub sizes: Sizes,
    pub mtu: Mtu,
    pub added_latency_us: AddedLatency,
    /// The decoders' summary of LLDP on this direction; null when none was seen.
    pub lldp: serde_json::Value,
    /// The decoders' summary of STP on this direction; null when none was seen.
    pub stp: serde_json::Value,
    /// The decoders' summary of LACP on this direction; null when none was seen.
    pub lacp: serde_json::Value,
    /// What the impairment asked for and did on this direction (spec, down, held, counters),
    /// apart from `dropped`, which counts only losses linkscope did not cause; null without
    /// an impairment stage.
    pub impairment: serde_json::Value,
}

/// Frames the splice itself lost, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Dropped {
    /// The kernel's receive queue overflowed (SO_RXQ_OVFL).
    pub kernel_rx_overflow: u64,
    /// Forwarding failed with an error from `send`.
    pub send_error: u64,
    /// Datagrams from a source other than the expected peer (not forwarded, by design).
    pub foreign_source: u64,
    /// Zero-length datagrams (never forwarded: QEMU takes one as end of stream).
    pub zero_length: u64,
    /// Datagrams longer than the receive slot (never forwarded cut).
    pub truncated: u64,
}

/// Frame sizes in bytes (Ethernet header included, no FCS); null without frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Sizes {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
}

/// Frames against host_mtu and the path MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Mtu {
    pub exceeds_host_mtu: u64,
    pub fragmented_frames: u64,
    pub ip_fragments: u64,
    pub unsendable: u64,
}

/// The splice's own added delay (receive timestamp to send return), in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct AddedLatency {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Round-trip times beyond the splice, by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RttSet {
    pub icmp_echo: Rtt,
    pub arp: Rtt,
    pub tcp_handshake: Rtt,
}

/// Round-trip times of one kind of request/response pair, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Rtt {
    /// Pairs matched.
    pub count: u64,
    /// Requests with no response within the grace time.
    pub unanswered: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// The kernel's IP fragmentation counters (/proc/net/snmp), as deltas over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Host {
    pub ip_frag_creates: u64,
    pub ip_frag_oks: u64,
    pub ip_reasm_reqds: u64,
    pub ip_reasm_oks: u64,
    pub ip_reasm_fails: u64,
}

impl From<super::snmp::FragCounters> for Host {
    /// The report's names for a difference of two snapshots of the kernel's counters.
    fn from(delta: super::snmp::FragCounters) -> Host {
        Host {
            ip_frag_creates: delta.frag_creates,
            ip_frag_oks: delta.frag_oks,
            ip_reasm_reqds: delta.reasm_reqds,
            ip_reasm_oks: delta.reasm_oks,
            ip_reasm_fails: delta.reasm_fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_takes_the_kernel_counters_by_name() {
        let delta = super::super::snmp::FragCounters {
            reasm_reqds: 1,
            reasm_oks: 2,
            reasm_fails: 3,
            frag_oks: 4,
            frag_creates: 5,
        };
        assert_eq!(
            Host::from(delta),
            Host {
                ip_frag_creates: 5,
                ip_frag_oks: 4,
                ip_reasm_reqds: 1,
                ip_reasm_oks: 2,
                ip_reasm_fails: 3,
            }
        );
    }

    #[track_caller]
    fn assert_keys(value: &serde_json::Value, expected: &[&str]) {
        let mut have: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        have.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(have, expected);
    }

    #[test]
    fn keys_are_exactly_the_contract() {
        let direction = DirectionReport {
            from: "a".into(),
            to: "b".into(),
            frames: 0,
            bytes: 0,
            pps: 0.0,
            bps: 0.0,
            dropped: Dropped::default(),
            capture_dropped: 0,
            sizes: Sizes::default(),
            mtu: Mtu::default(),
            added_latency_us: AddedLatency::default(),
            lldp: serde_json::Value::Null,
            stp: serde_json::Value::Null,
            lacp: serde_json::Value::Null,
            impairment: serde_json::Value::Null,
        };
        let report = Report {
            version: 1,
            duration_s: 1.5,
            links: vec![LinkReport {
                name: "100:1-102:1".into(),
                host_mtu: Some(9000),
                path_mtu: 1500,
                directions: vec![direction],
                rtt_ms: RttSet::default(),
                tcp_retransmissions: 0,
                advice: vec![],
            }],
            host: Host::default(),
        };
        let v = serde_json::to_value(&report).expect("serializes");
        assert_keys(&v, &["version", "duration_s", "links", "host"]);
        let link = &v["links"][0];
        assert_keys(
            link,
            &[
                "name",
                "host_mtu",
                "path_mtu",
                "directions",
                "rtt_ms",
                "tcp_retransmissions",
                "advice",
            ],
        );
        let d = &link["directions"][0];
        assert_keys(
            d,
            &[
                "from",
                "to",
                "frames",
                "bytes",
                "pps",
                "bps",
                "dropped",
                "capture_dropped",
                "sizes",
                "mtu",
                "added_latency_us",
                "lldp",
                "stp",
                "lacp",
                "impairment",
            ],
        );
        assert_keys(
            &d["dropped"],
            &[
                "kernel_rx_overflow",
                "send_error",
                "foreign_source",
                "zero_length",
                "truncated",
            ],
        );
        assert_keys(&d["sizes"], &["min", "max", "p50", "p99"]);
        assert_keys(
            &d["mtu"],
            &[
                "exceeds_host_mtu",
                "fragmented_frames",
                "ip_fragments",
                "unsendable",
            ],
        );
        assert_keys(&d["added_latency_us"], &["p50", "p99", "max"]);
        assert_keys(&link["rtt_ms"], &["icmp_echo", "arp", "tcp_handshake"]);
        for kind in ["icmp_echo", "arp", "tcp_handshake"] {
            assert_keys(
                &link["rtt_ms"][kind],
                &["count", "unanswered", "p50", "p90", "p99", "max"],
            );
        }
        assert_keys(
            &v["host"],
            &[
                "ip_frag_creates",
                "ip_frag_oks",
                "ip_reasm_reqds",
                "ip_reasm_oks",
                "ip_reasm_fails",
            ],
        );
    }
}
