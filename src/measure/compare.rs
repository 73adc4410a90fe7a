//! Two captures of one link from two points: one-way loss, duplicates, reordering, delay.
//!
//! Frames are matched by content: a 64-bit hash of the captured bytes and the original
//! length, the k-th copy in one capture with the k-th copy in the other. Each capture's
//! frames are split by direction:
//! - pcapng written by `linkscope splice` has one interface per link end (named like
//!   `vm100:eth2`) and marks each frame outbound on its sender's interface (the epb_flags
//!   direction bits); a frame marked inbound on one of exactly two interfaces was sent by
//!   the other one;
//! - frames without a direction flag (plain pcap, tcpdump, dumpcap) are assigned to a
//!   direction by their source MAC address, and the comparison says so.
//!
//! In each direction one capture is upstream (the frames pass it first). With both
//! directions present, the upstream capture of a direction is the one that makes the
//! smallest delays of both directions add up positive: the direction with the larger
//! minimum of t(B) − t(A) travels from A to B. The clock offset between the captures is then
//! estimated as half the difference of the two directions' minimum delays (assuming the
//! fastest frame takes as long each way, as NTP does), and delays are corrected by it. With
//! one direction only, A is taken as upstream (give the upstream capture first) and delays
//! include the unknown clock offset.
//!
//! Frames of the upstream capture before its first or after its last matched frame are
//! counted apart ("outside the overlap"), not as lost: the two captures rarely start and
//! stop at the same moment.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use serde::Serialize;

use crate::wire::savefile;

/// Which way a frame travelled, as far as a capture tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Way {
    /// Sent by the named link end (interface name).
    From(String),
    /// Received by the named interface; its sender is unknown.
    To(String),
    /// Sent by the station with this source MAC address.
    FromMac([u8; 6]),
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Way::From(name) => write!(f, "from {name}"),
            Way::To(name) => write!(f, "to {name}"),
            Way::FromMac(m) => write!(
                f,
                "from {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// One frame of a capture, reduced to what the comparison needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub timestamp_ns: u64,
    pub way: Way,
    pub hash: u64,
}

/// How a capture's frames were assigned to directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionSource {
    /// Every frame carried a pcapng direction flag.
    Flags,
    /// No frame carried one: directions come from source MAC addresses.
    SourceMac,
    /// Some frames carried one, the others were assigned by source MAC address.
    Mixed,
    /// The capture holds no frame.
    Empty,
}

/// A capture file read for comparison.
#[derive(Debug, Clone)]
pub struct Capture {
    pub path: PathBuf,
    pub frames: Vec<Frame>,
    pub direction_source: DirectionSource,
}

/// Reads a pcapng or pcap file of Ethernet frames (with [`savefile::Reader`], as `decode`).
pub fn read_capture(path: &Path) -> crate::Result<Capture> {
    let mut reader = savefile::Reader::open(path)?;
    let mut frames = Vec::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let id = record.interface_id as usize;
        if record.link_type != DataLink::ETHERNET {
            return Err(bad(
                path,
                format!("interface {id} is {:?}, not Ethernet", record.link_type),
            ));
        }
        let names = reader.interface_names();
        let name = |id: usize| {
            names
                .get(id)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("interface {id}"))
        };
        let way = match record.flags.map(|f| f & 0b11) {
            Some(2) => Way::From(name(id)),
            Some(1) if names.len() == 2 => Way::From(name(1 - id)),
            Some(1) => Way::To(name(id)),
            _ => source_mac(&record.data),
        };
        frames.push(Frame {
            timestamp_ns: record.time.as_nanos() as u64,
            way,
            hash: content_hash(&record.data, record.original_len),
        });
    }
    let flagged = frames
        .iter()
        .filter(|f| !matches!(f.way, Way::FromMac(_)))
        .count();
    let direction_source = match (flagged, frames.len()) {
        (_, 0) => DirectionSource::Empty,
        (0, _) => DirectionSource::SourceMac,
        (n, all) if n == all => DirectionSource::Flags,
        _ => DirectionSource::Mixed,
    };
    Ok(Capture {
        path: path.to_path_buf(),
        frames,
        direction_source,
    })
}

fn bad(path: &Path, message: String) -> crate::Error {
    crate::Error::Input {
        file: path.to_path_buf(),
        line: None,
        column: None,
        field: "capture".into(),
        message,
    }
}

fn source_mac(frame: &[u8]) -> Way {
    let mut mac = [0u8; 6];
    if let Some(source) = frame.get(6..12) {
        mac.copy_from_slice(source);
    }
    Way::FromMac(mac)
}

/// The content hash frames are matched by.
pub fn content_hash(data: &[u8], original_len: u32) -> u64 {
    let mut hasher = DefaultHasher::new();
    original_len.hash(&mut hasher);
    data.hash(&mut hasher);
    hasher.finish()
}

/// Which capture a direction passes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    A,
    B,
}

/// One-way delay percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delay {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The comparison of one direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionComparison {
    /// E.g. "from vm100:eth2" or "from be:24:99:00:64:01".
    pub direction: String,
    pub upstream: Upstream,
    pub frames_a: u64,
    pub frames_b: u64,
    /// Frames seen in both captures.
    pub matched: u64,
    /// Frames seen upstream and not downstream, within the overlap.
    pub lost: u64,
    /// Extra copies downstream of a frame seen upstream.
    pub duplicates: u64,
    /// Frames seen downstream that never passed upstream.
    pub unexpected: u64,
    /// Frames before or after the span both captures saw.
    pub outside_overlap: u64,
    /// Frames that arrived downstream after a frame sent later than them.
    pub reordered: u64,
    /// Downstream time minus upstream time, corrected by the clock offset when known.
    pub delay_ms: Option<Delay>,
    /// True when `delay_ms` includes the unknown offset between the captures' clocks.
    pub delay_includes_clock_offset: bool,
}

/// The comparison of two captures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub version: u32,
    pub a: String,
    pub b: String,
    pub directions_a: DirectionSource,
    pub directions_b: DirectionSource,
    /// B's clock minus A's clock in milliseconds, when both directions allow estimating it.
    pub clock_offset_ms: Option<f64>,
    pub directions: Vec<DirectionComparison>,
}

/// Compares two captures; see the module documentation.
pub fn compare(a: &Capture, b: &Capture) -> Comparison {
    let mut ways: BTreeMap<&Way, (Vec<&Frame>, Vec<&Frame>)> = BTreeMap::new();
    for f in &a.frames {
        ways.entry(&f.way).or_default().0.push(f);
    }
    for f in &b.frames {
        ways.entry(&f.way).or_default().1.push(f);
    }
    let mut matched: Vec<(&Way, Matching)> = ways
        .into_iter()
        .map(|(way, (mut fa, mut fb))| {
            fa.sort_by_key(|f| f.timestamp_ns);
            fb.sort_by_key(|f| f.timestamp_ns);
            (way, Matching::new(fa, fb))
        })
        .collect();
    // Orientation: with two directions having matches, the larger minimum of t(B) − t(A)
    // travels from A to B, and the clock offset follows.
    let with_pairs: Vec<usize> = (0..matched.len())
        .filter(|&i| !matched[i].1.pairs.is_empty())
        .collect();
    let mut clock_offset_ns = None;
    if let [x, y] = with_pairs[..] {
        let min_x = matched[x].1.min_b_minus_a();
        let min_y = matched[y].1.min_b_minus_a();
        let (ab, ba) = if min_x >= min_y { (x, y) } else { (y, x) };
        matched[ba].1.upstream = Upstream::B;
        // min over A→B of (tB − tA) = δ + θ; min over B→A of (tA − tB) = δ' − θ.
        let forward = matched[ab].1.min_b_minus_a();
        let backward = -matched[ba].1.min_b_minus_a();
        clock_offset_ns = Some((forward - backward) as f64 / 2.0);
    }
    let directions = matched
        .iter()
        .map(|(way, m)| m.summarize(way, clock_offset_ns))
        .collect();
    Comparison {
        version: 1,
        a: a.path.display().to_string(),
        b: b.path.display().to_string(),
        directions_a: a.direction_source,
        directions_b: b.direction_source,
        clock_offset_ms: clock_offset_ns.map(|ns| ns / 1e6),
        directions,
    }
}

/// The frames of one direction in both captures, matched.
struct Matching<'a> {
    a: Vec<&'a Frame>,
    b: Vec<&'a Frame>,
    /// (index in A, index in B), in B's order.
    pairs: Vec<(usize, usize)>,
    upstream: Upstream,
}

impl<'a> Matching<'a> {
    fn new(a: Vec<&'a Frame>, b: Vec<&'a Frame>) -> Matching<'a> {
        let mut copies: HashMap<u64, VecDeque<usize>> = HashMap::new();
        for (i, f) in a.iter().enumerate() {
            copies.entry(f.hash).or_default().push_back(i);
        }
        let pairs = b
            .iter()
            .enumerate()
            .filter_map(|(j, f)| {
                copies
                    .get_mut(&f.hash)
                    .and_then(VecDeque::pop_front)
                    .map(|i| (i, j))
            })
            .collect();
        Matching {
            a,
            b,
            pairs,
            upstream: Upstream::A,
        }
    }

    fn min_b_minus_a(&self) -> i64 {
        self.pairs
            .iter()
            .map(|&(i, j)| self.b[j].timestamp_ns as i64 - self.a[i].timestamp_ns as i64)
            .min()
            .unwrap_or(0)
    }

    fn summarize(&self, way: &Way, clock_offset_ns: Option<f64>) -> DirectionComparison {
        // Index pairs as (upstream, downstream), in downstream order.
        let (up, down) = match self.upstream {
            Upstream::A => (&self.a, &self.b),
            Upstream::B => (&self.b, &self.a),
        };
        let mut pairs: Vec<(usize, usize)> = match self.upstream {
            Upstream::A => self.pairs.clone(),
            Upstream::B => self.pairs.iter().map(|&(i, j)| (j, i)).collect(),
        };
        pairs.sort_unstable_by_key(|&(_, d)| d);
        let mut up_matched = vec![false; up.len()];
        let mut down_matched = vec![false; down.len()];
        for &(u, d) in &pairs {
            up_matched[u] = true;
            down_matched[d] = true;
        }
        let up_span = span(&up_matched);
        let down_span = span(&down_matched);
        let mut lost = 0;
        let mut outside = 0;
        for (u, _) in up.iter().enumerate().filter(|&(u, _)| !up_matched[u]) {
            if up_span.as_ref().is_some_and(|s| s.contains(&u)) {
                lost += 1;
            } else {
                outside += 1;
            }
        }
        let up_hashes: std::collections::HashSet<u64> = up.iter().map(|f| f.hash).collect();
        let (mut duplicates, mut unexpected) = (0, 0);
        for (d, f) in down.iter().enumerate().filter(|&(d, _)| !down_matched[d]) {
            if up_hashes.contains(&f.hash) {
                duplicates += 1;
            } else if down_span.as_ref().is_some_and(|s| s.contains(&d)) {
                unexpected += 1;
            } else {
                outside += 1;
            }
        }
        let mut reordered = 0;
        let mut latest_up = None;
        for &(u, _) in &pairs {
            match latest_up {
                Some(latest) if u < latest => reordered += 1,
                _ => latest_up = Some(u),
            }
        }
        let sign = match self.upstream {
            Upstream::A => 1.0,
            Upstream::B => -1.0,
        };
        let mut delays: Vec<f64> = pairs
            .iter()
            .map(|&(u, d)| {
                let raw = down[d].timestamp_ns as f64 - up[u].timestamp_ns as f64;
                // raw = δ + θ when A is upstream, δ − θ when B is.
                raw - sign * clock_offset_ns.unwrap_or(0.0)
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        let delay_ms = (!delays.is_empty()).then(|| {
            let at = |q: f64| {
                let rank = ((q * delays.len() as f64).ceil() as usize).clamp(1, delays.len());
                delays[rank - 1] / 1e6
            };
            Delay {
                min: delays[0] / 1e6,
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                max: delays[delays.len() - 1] / 1e6,
            }
        });
        DirectionComparison {
            direction: way.to_string(),
            upstream: self.upstream,
            frames_a: self.a.len() as u64,
            frames_b: self.b.len() as u64,
            matched: pairs.len() as u64,
            lost,
            duplicates,
            unexpected,
            outside_overlap: outside,
            reordered,
            delay_ms,
            delay_includes_clock_offset: clock_offset_ns.is_none(),
        }
    }
}

/// The index range from the first to the last `true`.
fn span(marks: &[bool]) -> Option<std::ops::RangeInclusive<usize>> {
    let first = marks.iter().position(|&m| m)?;
    let last = marks.iter().rposition(|&m| m)?;
    Some(first..=last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t_ms: u64, way: &str, content: u64) -> Frame {
        Frame {
            timestamp_ns: t_ms * 1_000_000,
            way: Way::From(way.into()),
            hash: content,
        }
    }

    fn capture(frames: Vec<Frame>) -> Capture {
        Capture {
            path: "x.pcapng".into(),
            frames,
            direction_source: DirectionSource::Flags,
        }
    }

    #[test]
    fn loss_duplicates_reordering_in_one_direction() {
        let a = capture((0..10).map(|i| frame(i * 10, "vm100:eth1", i)).collect());
        // Frame 3 lost, frame 5 duplicated, frames 7 and 8 swapped; 1 ms later.
        let order = [0, 1, 2, 4, 5, 5, 6, 8, 7, 9];
        let b = capture(
            order
                .iter()
                .enumerate()
                .map(|(k, &i)| frame(k as u64 * 10 + 1, "vm100:eth1", i))
                .collect(),
        );
        let c = compare(&a, &b);
        assert_eq!(c.clock_offset_ms, None);
        let d = &c.directions[0];
        assert_eq!(d.direction, "from vm100:eth1");
        assert_eq!(d.upstream, Upstream::A);
        assert_eq!(
            (d.matched, d.lost, d.duplicates, d.reordered, d.unexpected),
            (9, 1, 1, 1, 0)
        );
        assert!(d.delay_includes_clock_offset);
    }

    #[test]
    fn both_directions_give_the_clock_offset_and_the_orientation() {
        // B's clock runs 500 ms ahead; 2 ms each way. a>b passes A first, b>a passes B first.
        let mut fa = Vec::new();
        let mut fb = Vec::new();
        for i in 0..5u64 {
            fa.push(frame(i * 100, "a", i));
            fb.push(frame(i * 100 + 2 + 500, "a", i));
            fb.push(frame(i * 100 + 50 + 500, "b", 100 + i));
            fa.push(frame(i * 100 + 52, "b", 100 + i));
        }
        let c = compare(&capture(fa), &capture(fb));
        assert_eq!(c.clock_offset_ms, Some(500.0));
        let ab = &c.directions[0];
        let ba = &c.directions[1];
        assert_eq!((ab.upstream, ba.upstream), (Upstream::A, Upstream::B));
        assert_eq!(ab.delay_ms.map(|d| d.p50), Some(2.0));
        assert_eq!(ba.delay_ms.map(|d| d.max), Some(2.0));
        assert!(!ab.delay_includes_clock_offset);
    }

    #[test]
    fn frames_outside_the_common_span_are_not_loss() {
        let a = capture((0..10).map(|i| frame(i, "x", i)).collect());
        let b = capture((2..8).map(|i| frame(i, "x", i)).collect());
        let d = &compare(&a, &b).directions[0];
        assert_eq!((d.lost, d.outside_overlap, d.matched), (0, 4, 6));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_files_never_panic(
            pcapng in proptest::bool::ANY,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("x");
            // A valid header, then anything.
            let mut bytes = Vec::new();
            if pcapng {
                let mut w = pcap_file::pcapng::PcapNgWriter::new(&mut bytes).expect("header");
                let idb = pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
                w.write_pcapng_block(idb).expect("interface");
            } else {
                pcap_file::pcap::PcapWriter::new(&mut bytes).expect("header");
            }
            bytes.extend(body);
            std::fs::write(&path, bytes).expect("writes");
            let _ = read_capture(&path);
        }
    }
}
