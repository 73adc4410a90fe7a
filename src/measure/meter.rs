//! Passive measurements of one link, fed one tapped frame at a time.
//!
//! The splice hands every frame it forwards to [`Meter::record`] as `(direction,
//! timestamp_ns, bytes)`; the meter never blocks and never allocates per frame, except when
//! it starts tracking a request, a TCP flow or a lossy flow, all in tables with a fixed cap.
//!
//! What it computes, per direction:
//! - volume: frames, bytes and a frame-size histogram;
//! - frames against host_mtu and the path MTU ([`fragment`](super::fragment));
//! - loss inferred beyond the splice: ICMP/ICMPv6 echo requests and ARP requests left
//!   unanswered for a grace time, TCP segments seen again with a sequence range already
//!   seen (retransmissions), also per flow;
//! - round-trip times beyond the splice from request/response pairs seen in both
//!   directions: ICMP/ICMPv6 echo, ARP, TCP SYN → SYN/ACK;
//! - the splice's own added delay, when the splice reports it ([`Meter::record_added_latency`]).
//!
//! A request counts as unanswered (in the direction it travelled) once it is older than the
//! grace time; a request repeated before its answer (ARP retries do this) counts the earlier
//! copy as unanswered. Requests still within the grace time when the run ends are counted
//! in neither figure ([`Meter::pending`]).

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    ArpOperation, ArpPacketSlice, EtherType, Icmpv4Slice, Icmpv4Type, Icmpv6Slice, Icmpv6Type,
    IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice,
};
use hdrhistogram::Histogram;

use super::fast_map::FastMap;
use super::fragment::{Budget, Seen, advice};
use super::pending::{Pending, Request};
use super::report;
use crate::plan::LinkNames;
use crate::wire;

pub use crate::direction::Direction;

/// The slot of a direction in per-direction arrays.
fn slot(direction: Direction) -> usize {
    match direction {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

/// What a meter needs to know about its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// host_mtu, path MTU and tunnel family.
    pub budget: Budget,
    /// How long a request may wait for its response before it counts as unanswered.
    pub grace_ns: u64,
    /// Cap on requests awaiting a response (per kind); more are not tracked.
    pub max_pending: usize,
    /// Cap on TCP flows followed for retransmissions, and on flows listed with loss.
    pub max_flows: usize,
}

impl Config {
    /// A configuration with a 3 s grace time and tables of 16384 requests (per kind) and
    /// flows: room for 5000 requests a second in flight, and under 24 MiB per link full.
    pub fn new(budget: Budget) -> Config {
        Config {
            budget,
            grace_ns: 3_000_000_000,
            max_pending: 16_384,
            max_flows: 16_384,
        }
    }
}

/// The kind of request/response pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exchange {
    IcmpEcho,
    Arp,
    TcpHandshake,
}

impl Exchange {
    /// Every kind, in the order the figures list them.
    pub const ALL: [Exchange; 3] = [Exchange::IcmpEcho, Exchange::Arp, Exchange::TcpHandshake];
}

/// A flow as the loss figures name it. Ports are zero for ICMP and ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub protocol: FlowProtocol,
    pub source: IpAddr,
    pub destination: IpAddr,
    pub source_port: u16,
    pub destination_port: u16,
}

/// The protocol of a [`Flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowProtocol {
    IcmpEcho,
    Arp,
    Tcp,
}

/// Loss inferred on one flow, in the direction of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowLoss {
    pub unanswered: u64,
    pub retransmissions: u64,
}

/// Frames and bytes seen so far in one direction, for rates between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
}

impl Counters {
    /// Frames per second and bits per second between `earlier` and `self`, `elapsed_ns` apart.
    pub fn rates_since(&self, earlier: &Counters, elapsed_ns: u64) -> (f64, f64) {
        if elapsed_ns == 0 {
            return (0.0, 0.0);
        }
        let seconds = elapsed_ns as f64 / 1e9;
        (
            (self.frames - earlier.frames) as f64 / seconds,
            (self.bytes - earlier.bytes) as f64 * 8.0 / seconds,
        )
    }
}

/// What the splice counted itself in one direction (the meter cannot see these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpliceCounters {
    pub dropped: report::Dropped,
    pub capture_dropped: u64,
}

/// Round trips of every kind as [`Meter::rtt_histogram`] gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttHistogram<const N: usize> {
    pub count: u64,
    pub sum_ms: f64,
    /// Round trips at or below each bound, cumulative.
    pub buckets: [u64; N],
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// Measurements of one link; see the module documentation.
#[derive(Debug, Clone)]
pub struct Meter {
    config: Config,
    directions: [DirectionMeter; 2],
    echo: Pending<EchoKey>,
    arp: Pending<ArpKey>,
    syn: Pending<SynKey>,
    rtt: [RttMeter; 3],
    tcp: FastMap<TcpFlow, TcpState>,
    tcp_untracked: u64,
    /// While the TCP flow table is full, it is swept for idle flows no earlier than this.
    tcp_sweep_ns: u64,
    lossy: FastMap<(Direction, Flow), FlowLoss>,
    lossy_untracked: u64,
    frames: u64,
}

impl Meter {
    /// A meter with empty tables.
    pub fn new(config: Config) -> Meter {
        Meter {
            config,
            directions: [DirectionMeter::new(), DirectionMeter::new()],
            echo: Pending::new(config.max_pending),
            arp: Pending::new(config.max_pending),
            syn: Pending::new(config.max_pending),
            rtt: [RttMeter::new(), RttMeter::new(), RttMeter::new()],
            tcp: FastMap::default(),
            tcp_untracked: 0,
            tcp_sweep_ns: 0,
            lossy: FastMap::default(),
            lossy_untracked: 0,
            frames: 0,
        }
    }

    /// The configuration the meter was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Accounts one frame travelling in `direction`, seen at `timestamp_ns`.
    pub fn record(&mut self, direction: Direction, timestamp_ns: u64, frame: &[u8]) {
        self.frames += 1;
        if self.frames.is_multiple_of(1024) {
            self.expire(timestamp_ns);
        }
        let (vlan_tags, network) = ethernet(frame);
        let len = frame.len() as u32;
        let fit = self.config.budget.fit(len, vlan_tags);
        self.directions[slot(direction)].account(len, vlan_tags, fit);
        if let Some((ether_type, packet)) = network {
            self.inspect(direction, timestamp_ns, ether_type, packet);
        }
    }

    /// Accounts the splice's own delay for one frame: from its receive timestamp to the
    /// return of the send that forwarded it.
    pub fn record_added_latency(&mut self, direction: Direction, latency_ns: u64) {
        self.directions[slot(direction)]
            .added_latency
            .record(latency_ns);
    }

    /// Counts requests older than the grace time at `now_ns` as unanswered. [`record`]
    /// calls this every 1024 frames; call it before reading figures.
    ///
    /// [`record`]: Meter::record
    pub fn expire(&mut self, now_ns: u64) {
        let deadline = now_ns.saturating_sub(self.config.grace_ns);
        let mut lost = Vec::new();
        self.echo
            .expire(deadline, |d, flow| lost.push((Exchange::IcmpEcho, d, flow)));
        self.arp
            .expire(deadline, |d, flow| lost.push((Exchange::Arp, d, flow)));
        self.syn.expire(deadline, |d, flow| {
            lost.push((Exchange::TcpHandshake, d, flow))
        });
        for (exchange, direction, flow) in lost {
            self.directions[slot(direction)].unanswered[exchange as usize] += 1;
            self.note_loss(direction, flow, |l| l.unanswered += 1);
        }
    }

    /// Frames and bytes so far in `direction`.
    pub fn counters(&self, direction: Direction) -> Counters {
        let d = &self.directions[slot(direction)];
        Counters {
            frames: d.frames,
            bytes: d.bytes,
        }
    }

    /// Requests of `exchange` sent in `direction` and never answered (so far).
    pub fn unanswered(&self, direction: Direction, exchange: Exchange) -> u64 {
        self.directions[slot(direction)].unanswered[exchange as usize]
    }

    /// The frames of `direction` against host_mtu and the path MTU, so far.
    pub fn mtu(&self, direction: Direction) -> report::Mtu {
        self.directions[slot(direction)].mtu
    }

    /// TCP retransmissions seen travelling in `direction`.
    pub fn retransmissions(&self, direction: Direction) -> u64 {
        self.directions[slot(direction)].retransmissions
    }

    /// Requests still waiting for their response, within the grace time.
    pub fn pending(&self) -> usize {
        self.echo.waiting() + self.arp.waiting() + self.syn.waiting()
    }

    /// Requests and flows not followed because a table was full.
    pub fn untracked(&self) -> u64 {
        self.echo.untracked()
            + self.arp.untracked()
            + self.syn.untracked()
            + self.tcp_untracked
            + self.lossy_untracked
    }

    /// Flows with inferred loss, the lossiest first, each with the direction it travelled.
    pub fn lossy_flows(&self) -> Vec<(Direction, Flow, FlowLoss)> {
        let mut flows: Vec<_> = self.lossy.iter().map(|(&(d, f), &l)| (d, f, l)).collect();
        flows.sort_by(|x, y| {
            (y.2.unanswered + y.2.retransmissions)
                .cmp(&(x.2.unanswered + x.2.retransmissions))
                .then((slot(x.0), x.1).cmp(&(slot(y.0), y.1)))
        });
        flows
    }

    /// The round-trip figures of one kind of exchange, in milliseconds.
    pub fn rtt(&self, exchange: Exchange) -> report::Rtt {
        let meter = &self.rtt[exchange as usize];
        let unanswered = self
            .directions
            .iter()
            .map(|d| d.unanswered[exchange as usize])
            .sum();
        // The histogram answers with the top of a bucket (3 significant digits); the exact
        // maximum bounds it, so a percentile never reads above the max.
        let quantile = |q: f64| {
            (!meter.histogram.is_empty())
                .then(|| meter.histogram.value_at_quantile(q).min(meter.max_us) as f64 / 1000.0)
        };
        report::Rtt {
            count: meter.histogram.len(),
            unanswered,
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            max: (!meter.histogram.is_empty()).then_some(meter.max_us as f64 / 1000.0),
        }
    }

    /// Every round trip of every kind so far, as a histogram with upper bounds `bounds_ms`
    /// (cumulative counts per bound, as Prometheus wants them), with the count, the sum and
    /// the median and 99th percentile in milliseconds.
    pub fn rtt_histogram<const N: usize>(&self, bounds_ms: &[f64; N]) -> RttHistogram<N> {
        let mut all = RttHistogram {
            count: 0,
            sum_ms: 0.0,
            buckets: [0; N],
            p50: None,
            p99: None,
        };
        let mut merged: Option<Histogram<u64>> = None;
        for meter in &self.rtt {
            all.count += meter.histogram.len();
            all.sum_ms += meter.histogram.mean() * meter.histogram.len() as f64 / 1000.0;
            for (bucket, bound) in all.buckets.iter_mut().zip(bounds_ms) {
                *bucket += meter.histogram.count_between(0, (bound * 1000.0) as u64);
            }
            match &mut merged {
                Some(m) => m
                    .add(&*meter.histogram)
                    .expect("auto-resizing histograms take any other's values"),
                None => merged = Some((*meter.histogram).clone()),
            }
        }
        if let Some(m) = merged.filter(|m| !m.is_empty()) {
            let max_us = self.rtt.iter().map(|r| r.max_us).max().unwrap_or(0);
            all.p50 = Some(m.value_at_quantile(0.5).min(max_us) as f64 / 1000.0);
            all.p99 = Some(m.value_at_quantile(0.99).min(max_us) as f64 / 1000.0);
        }
        all
    }

    /// Frames of `direction` whose tunnel datagram the host fragments (above the path MTU).
    pub fn fragmented(&self, direction: Direction) -> u64 {
        self.directions[slot(direction)].mtu.fragmented_frames
    }

    /// The advice lines for this link, one per problem and direction.
    pub fn advice(&self) -> Vec<String> {
        Direction::BOTH
            .iter()
            .flat_map(|&direction| {
                let d = &self.directions[slot(direction)];
                advice(
                    &self.config.budget,
                    &Seen {
                        direction: direction.label(),
                        frames: d.frames,
                        fragmented_frames: d.mtu.fragmented_frames,
                        unsendable: d.mtu.unsendable,
                        exceeds_host_mtu: d.mtu.exceeds_host_mtu,
                        max_frame: d.max_frame,
                        max_vlan_tags: d.max_vlan_tags,
                    },
                )
            })
            .collect()
    }

    /// The link's part of the JSON report over a run of `duration_s` seconds. The LLDP,
    /// STP and LACP summaries are null: the decoders fill them.
    pub fn report(
        &self,
        names: &LinkNames,
        splice: [SpliceCounters; 2],
        duration_s: f64,
    ) -> report::LinkReport {
        let directions = Direction::BOTH
            .iter()
            .map(|&direction| {
                let (from, to) = names.ends(direction);
                self.directions[slot(direction)].report(
                    from,
                    to,
                    splice[slot(direction)],
                    duration_s,
                )
            })
            .collect();
        report::LinkReport {
            name: names.link.clone(),
            host_mtu: self.config.budget.host_mtu,
            path_mtu: self.config.budget.path_mtu,
            directions,
            rtt_ms: report::RttSet {
                icmp_echo: self.rtt(Exchange::IcmpEcho),
                arp: self.rtt(Exchange::Arp),
                tcp_handshake: self.rtt(Exchange::TcpHandshake),
            },
            tcp_retransmissions: self.directions.iter().map(|d| d.retransmissions).sum(),
            advice: self.advice(),
        }
    }

    fn inspect(&mut self, direction: Direction, ts: u64, ether_type: EtherType, packet: &[u8]) {
        let (source, destination, protocol, payload) = match ether_type {
            EtherType::IPV4 => {
                let Ok(ip) = Ipv4HeaderSlice::from_slice(packet) else {
                    return;
                };
                // Fragments carry no complete transport header and payload.
                if ip.more_fragments() || ip.fragments_offset().value() != 0 {
                    return;
                }
                let end = usize::from(ip.total_len()).min(packet.len());
                let start = ip.slice().len().min(end);
                (
                    IpAddr::V4(ip.source_addr()),
                    IpAddr::V4(ip.destination_addr()),
                    ip.protocol(),
                    &packet[start..end],
                )
            }
            EtherType::IPV6 => {
                let Ok(ip) = Ipv6HeaderSlice::from_slice(packet) else {
                    return;
                };
                let end = (40 + usize::from(ip.payload_length())).min(packet.len());
                (
                    IpAddr::V6(ip.source_addr()),
                    IpAddr::V6(ip.destination_addr()),
                    ip.next_header(),
                    &packet[40.min(end)..end],
                )
            }
            EtherType::ARP => {
                if let Ok(arp) = ArpPacketSlice::from_slice(packet)
                    && let (Ok(sender), Ok(target)) = (
                        <[u8; 4]>::try_from(arp.sender_protocol_addr()),
                        <[u8; 4]>::try_from(arp.target_protocol_addr()),
                    )
                {
                    self.arp_packet(direction, ts, arp.operation(), sender, target);
                }
                return;
            }
            _ => return,
        };
        let echo = |id, seq, request| {
            let key = EchoKey {
                source,
                destination,
                id,
                seq,
            };
            (key, request)
        };
        let exchange = match protocol {
            IpNumber::ICMP => match Icmpv4Slice::from_slice(payload).map(|i| i.icmp_type()) {
                Ok(Icmpv4Type::EchoRequest(h)) => Some(echo(h.id, h.seq, true)),
                Ok(Icmpv4Type::EchoReply(h)) => Some(echo(h.id, h.seq, false)),
                _ => None,
            },
            IpNumber::IPV6_ICMP => match Icmpv6Slice::from_slice(payload).map(|i| i.icmp_type()) {
                Ok(Icmpv6Type::EchoRequest(h)) => Some(echo(h.id, h.seq, true)),
                Ok(Icmpv6Type::EchoReply(h)) => Some(echo(h.id, h.seq, false)),
                _ => None,
            },
            IpNumber::TCP => {
                if let Ok(tcp) = TcpHeaderSlice::from_slice(payload) {
                    let flow = TcpFlow {
                        source,
                        destination,
                        source_port: tcp.source_port(),
                        destination_port: tcp.destination_port(),
                    };
                    let segment = Segment {
                        seq: tcp.sequence_number(),
                        ack: tcp.acknowledgment_number(),
                        len: (payload.len() - tcp.slice().len()) as u32,
                        syn: tcp.syn(),
                        fin: tcp.fin(),
                        has_ack: tcp.ack(),
                    };
                    self.tcp_segment(direction, ts, flow, segment);
                }
                None
            }
            _ => None,
        };
        if let Some((key, request)) = exchange {
            if request {
                if let Some(rtt) = self.echo.answered_early(&key, ts, direction) {
                    self.rtt[Exchange::IcmpEcho as usize].record(rtt);
                } else {
                    let replaced = self.echo.request(key, ts, direction);
                    self.replaced(Exchange::IcmpEcho, direction, replaced);
                }
            } else if let Some(rtt) = self.echo.response(&key.reversed(), ts, direction) {
                self.rtt[Exchange::IcmpEcho as usize].record(rtt);
            }
        }
    }

    fn arp_packet(
        &mut self,
        direction: Direction,
        ts: u64,
        operation: ArpOperation,
        sender: [u8; 4],
        target: [u8; 4],
    ) {
        // Probes (sender 0.0.0.0) and announcements (sender = target) expect no reply.
        if sender == [0; 4] || sender == target {
            return;
        }
        if operation == ArpOperation::REQUEST {
            let key = ArpKey {
                requester: Ipv4Addr::from(sender),
                target: Ipv4Addr::from(target),
            };
            if let Some(rtt) = self.arp.answered_early(&key, ts, direction) {
                self.rtt[Exchange::Arp as usize].record(rtt);
            } else {
                let replaced = self.arp.request(key, ts, direction);
                self.replaced(Exchange::Arp, direction, replaced);
            }
        } else if operation == ArpOperation::REPLY {
            let key = ArpKey {
                requester: Ipv4Addr::from(target),
                target: Ipv4Addr::from(sender),
            };
            if let Some(rtt) = self.arp.response(&key, ts, direction) {
                self.rtt[Exchange::Arp as usize].record(rtt);
            }
        }
    }

    fn replaced(&mut self, exchange: Exchange, direction: Direction, replaced: Option<Flow>) {
        if let Some(flow) = replaced {
            self.directions[slot(direction)].unanswered[exchange as usize] += 1;
            self.note_loss(direction, flow, |l| l.unanswered += 1);
        }
    }

    fn tcp_segment(&mut self, direction: Direction, ts: u64, flow: TcpFlow, s: Segment) {
        if s.syn && !s.has_ack {
            let key = SynKey { flow, isn: s.seq };
            if let Some(rtt) = self.syn.answered_early(&key, ts, direction) {
                self.rtt[Exchange::TcpHandshake as usize].record(rtt);
            } else {
                let replaced = self.syn.request(key, ts, direction);
                self.replaced(Exchange::TcpHandshake, direction, replaced);
            }
        } else if s.syn {
            let key = SynKey {
                flow: flow.reversed(),
                isn: s.ack.wrapping_sub(1),
            };
            if let Some(rtt) = self.syn.response(&key, ts, direction) {
                self.rtt[Exchange::TcpHandshake as usize].record(rtt);
            }
        }
        let span = s.len + u32::from(s.syn) + u32::from(s.fin);
        if span == 0 {
            return;
        }
        let end = s.seq.wrapping_add(span);
        if let Some(state) = self.tcp.get_mut(&flow) {
            state.last_ns = ts;
            // `end` at or before the highest end seen: the whole range was seen already.
            // A one-byte keep-alive probe re-sends the byte just below it: not a loss.
            let behind = state.highest_end.wrapping_sub(end) as i32;
            let keepalive = s.len == 1 && !s.syn && !s.fin && behind == 0;
            if behind >= 0 && !keepalive {
                self.directions[slot(direction)].retransmissions += 1;
                let flow = flow.named(FlowProtocol::Tcp);
                self.note_loss(direction, flow, |l| l.retransmissions += 1);
            } else if behind < 0 {
                state.highest_end = end;
            }
            return;
        }
        if self.tcp.len() >= self.config.max_flows {
            // A sweep walks the whole table: at most one per TCP_SWEEP_NS, so a flood of new
            // flows into a full table costs a lookup each, not a walk each.
            if ts >= self.tcp_sweep_ns {
                self.tcp_sweep_ns = ts.saturating_add(TCP_SWEEP_NS);
                let idle_before = ts.saturating_sub(TCP_IDLE_NS);
                self.tcp.retain(|_, state| state.last_ns >= idle_before);
            }
            if self.tcp.len() >= self.config.max_flows {
                self.tcp_untracked += 1;
                return;
            }
        }
        self.tcp.insert(
            flow,
            TcpState {
                highest_end: end,
                last_ns: ts,
            },
        );
    }

    fn note_loss(&mut self, direction: Direction, flow: Flow, add: impl FnOnce(&mut FlowLoss)) {
        if let Some(loss) = self.lossy.get_mut(&(direction, flow)) {
            add(loss);
        } else if self.lossy.len() < self.config.max_flows {
            let mut loss = FlowLoss::default();
            add(&mut loss);
            self.lossy.insert((direction, flow), loss);
        } else {
            self.lossy_untracked += 1;
        }
    }
}

/// The number of VLAN tags and the network-layer packet with its EtherType, when the frame
/// has a whole Ethernet header and at most three whole tags ([`wire::untag`]); else no tags
/// and no packet.
fn ethernet(frame: &[u8]) -> (u32, Option<(EtherType, &[u8])>) {
    match wire::untag(frame) {
        Ok(u) => (
            u.vlans.as_slice().len() as u32,
            Some((u.ether_type, u.payload)),
        ),
        Err(_) => (0, None),
    }
}

/// A TCP flow idle this long may be forgotten when the flow table is full.
const TCP_IDLE_NS: u64 = 60_000_000_000;

/// A full TCP flow table is swept for idle flows at most this often (by frame time).
const TCP_SWEEP_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone)]
struct DirectionMeter {
    frames: u64,
    bytes: u64,
    min_frame: u32,
    max_frame: u32,
    max_vlan_tags: u32,
    sizes: Growing,
    mtu: report::Mtu,
    added_latency: Growing,
    unanswered: [u64; 3],
    retransmissions: u64,
}

impl DirectionMeter {
    fn new() -> DirectionMeter {
        DirectionMeter {
            frames: 0,
            bytes: 0,
            min_frame: u32::MAX,
            max_frame: 0,
            max_vlan_tags: 0,
            sizes: Growing::new(1 << 17),
            mtu: report::Mtu::default(),
            added_latency: Growing::new(60_000_000_000),
            unanswered: [0; 3],
            retransmissions: 0,
        }
    }

    fn account(&mut self, len: u32, vlan_tags: u32, fit: super::fragment::Fit) {
        self.frames += 1;
        self.bytes += u64::from(len);
        self.min_frame = self.min_frame.min(len);
        self.max_frame = self.max_frame.max(len);
        self.max_vlan_tags = self.max_vlan_tags.max(vlan_tags);
        self.sizes.record(u64::from(len));
        self.mtu.exceeds_host_mtu += u64::from(fit.exceeds_host_mtu);
        self.mtu.unsendable += u64::from(fit.unsendable);
        if fit.fragments > 1 {
            self.mtu.fragmented_frames += 1;
            self.mtu.ip_fragments += u64::from(fit.fragments);
        }
    }

    fn report(
        &self,
        from: &str,
        to: &str,
        splice: SpliceCounters,
        duration_s: f64,
    ) -> report::DirectionReport {
        let any = self.frames > 0;
        let size_at = |q: f64| {
            self.sizes
                .value_at_quantile(q)
                .clamp(u64::from(self.min_frame), u64::from(self.max_frame))
        };
        let per_second = |n: f64| {
            if duration_s > 0.0 {
                n / duration_s
            } else {
                0.0
            }
        };
        let latency = |q: f64| {
            (!self.added_latency.is_empty())
                .then(|| self.added_latency.value_at_quantile(q) as f64 / 1000.0)
        };
        report::DirectionReport {
            from: from.to_string(),
            to: to.to_string(),
            frames: self.frames,
            bytes: self.bytes,
            pps: per_second(self.frames as f64),
            bps: per_second(self.bytes as f64 * 8.0),
            dropped: splice.dropped,
            capture_dropped: splice.capture_dropped,
            sizes: report::Sizes {
                min: any.then_some(u64::from(self.min_frame)),
                max: any.then_some(u64::from(self.max_frame)),
                // Bucket tops (3 significant digits), bounded by the exact extremes.
                p50: any.then(|| size_at(0.5)),
                p99: any.then(|| size_at(0.99)),
            },
            mtu: self.mtu,
            added_latency_us: report::AddedLatency {
                p50: latency(0.5),
                p99: latency(0.99),
                max: (!self.added_latency.is_empty())
                    .then(|| self.added_latency.max() as f64 / 1000.0),
            },
            lldp: serde_json::Value::Null,
            stp: serde_json::Value::Null,
            lacp: serde_json::Value::Null,
            impairment: serde_json::Value::Null,
        }
    }
}

/// A histogram (three significant digits) that takes memory only as the values recorded
/// need it, up to a ceiling; a larger value counts as the ceiling. A meter of an idle link
/// holds a few kilobytes instead of the megabyte full-range histograms take, so a lab of a
/// thousand measured links costs what its traffic needs.
#[derive(Debug, Clone)]
struct Growing {
    histogram: Histogram<u64>,
    ceiling: u64,
}

impl Growing {
    fn new(ceiling: u64) -> Growing {
        let mut histogram = Histogram::new_with_bounds(1, 2, 3).expect("valid histogram bounds");
        histogram.auto(true);
        Growing { histogram, ceiling }
    }

    fn record(&mut self, value: u64) {
        // Growing only fails when the counts would not fit in memory's address space.
        let _ = self.histogram.record(value.clamp(1, self.ceiling));
    }
}

impl std::ops::Deref for Growing {
    type Target = Histogram<u64>;

    fn deref(&self) -> &Histogram<u64> {
        &self.histogram
    }
}

#[derive(Debug, Clone)]
struct RttMeter {
    histogram: Growing,
    max_us: u64,
}

impl RttMeter {
    fn new() -> RttMeter {
        RttMeter {
            histogram: Growing::new(3_600_000_000),
            max_us: 0,
        }
    }

    fn record(&mut self, rtt_ns: u64) {
        let us = (rtt_ns / 1000).max(1);
        self.max_us = self.max_us.max(us);
        self.histogram.record(us);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EchoKey {
    source: IpAddr,
    destination: IpAddr,
    id: u16,
    seq: u16,
}

impl EchoKey {
    fn reversed(self) -> EchoKey {
        EchoKey {
            source: self.destination,
            destination: self.source,
            ..self
        }
    }
}

impl Request for EchoKey {
    fn flow(&self) -> Flow {
        Flow {
            protocol: FlowProtocol::IcmpEcho,
            source: self.source,
            destination: self.destination,
            source_port: 0,
            destination_port: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ArpKey {
    requester: Ipv4Addr,
    target: Ipv4Addr,
}

impl Request for ArpKey {
    fn flow(&self) -> Flow {
        Flow {
            protocol: FlowProtocol::Arp,
            source: IpAddr::V4(self.requester),
            destination: IpAddr::V4(self.target),
            source_port: 0,
            destination_port: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TcpFlow {
    source: IpAddr,
    destination: IpAddr,
    source_port: u16,
    destination_port: u16,
}

impl TcpFlow {
    fn reversed(self) -> TcpFlow {
        TcpFlow {
            source: self.destination,
            destination: self.source,
            source_port: self.destination_port,
            destination_port: self.source_port,
        }
    }

    fn named(self, protocol: FlowProtocol) -> Flow {
        Flow {
            protocol,
            source: self.source,
            destination: self.destination,
            source_port: self.source_port,
            destination_port: self.destination_port,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SynKey {
    flow: TcpFlow,
    isn: u32,
}

impl Request for SynKey {
    fn flow(&self) -> Flow {
        self.flow.named(FlowProtocol::Tcp)
    }
}

#[derive(Debug, Clone, Copy)]
struct TcpState {
    highest_end: u32,
    last_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u32,
    ack: u32,
    len: u32,
    syn: bool,
    fin: bool,
    has_ack: bool,
}

#[cfg(test)]
mod tests {
    use etherparse::{ArpHardwareId, ArpPacket, EtherType, PacketBuilder, VlanId};

    use super::*;
    use crate::measure::fragment::Outer;

    const MAC_A: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x64, 1];
    const MAC_B: [u8; 6] = [0xbe, 0x24, 0x99, 0, 0x66, 1];
    const IP_A: [u8; 4] = [10, 0, 0, 1];
    const IP_B: [u8; 4] = [10, 0, 0, 2];
    const MS: u64 = 1_000_000;

    fn config(host_mtu: Option<u32>, path_mtu: u32) -> Config {
        Config::new(Budget {
            host_mtu,
            path_mtu,
            outer: Outer::Ipv4,
        })
    }

    fn meter(host_mtu: Option<u32>, path_mtu: u32) -> Meter {
        Meter::new(config(host_mtu, path_mtu))
    }

    /// A TCP segment from A's port `port` to B's port 80.
    fn tcp_from_a(port: u16) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(IP_A, IP_B, 64)
            .tcp(port, 80, 1, 100)
            .write(&mut frame, &[0; 10])
            .expect("builds");
        frame
    }

    fn echo(request: bool, from_a: bool, seq: u16, payload: usize) -> Vec<u8> {
        let (sm, dm, si, di) = if from_a {
            (MAC_A, MAC_B, IP_A, IP_B)
        } else {
            (MAC_B, MAC_A, IP_B, IP_A)
        };
        let ip = PacketBuilder::ethernet2(sm, dm).ipv4(si, di, 64);
        let step = if request {
            ip.icmpv4_echo_request(7, seq)
        } else {
            ip.icmpv4_echo_reply(7, seq)
        };
        let mut frame = Vec::new();
        step.write(&mut frame, &vec![0x5a; payload])
            .expect("builds");
        frame
    }

    fn arp(operation: ArpOperation, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let packet = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            operation,
            &MAC_A,
            &sender,
            &MAC_B,
            &target,
        )
        .expect("valid ARP");
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .arp(packet)
            .write(&mut frame)
            .expect("builds");
        frame
    }

    fn tcp(from_a: bool, seq: u32, ack: Option<u32>, syn: bool, payload: usize) -> Vec<u8> {
        let (si, di, sp, dp) = if from_a {
            (IP_A, IP_B, 40000, 80)
        } else {
            (IP_B, IP_A, 80, 40000)
        };
        let mut step = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(si, di, 64)
            .tcp(sp, dp, seq, 1000);
        if syn {
            step = step.syn();
        }
        if let Some(ack) = ack {
            step = step.ack(ack);
        }
        let mut frame = Vec::new();
        step.write(&mut frame, &vec![1; payload]).expect("builds");
        frame
    }

    #[test]
    fn counts_volume_and_sizes_per_direction() {
        let mut m = meter(None, 65535);
        for i in 0..10 {
            m.record(Direction::AToB, i * MS, &[0u8; 60]);
        }
        m.record(Direction::BToA, 0, &[0u8; 1514]);
        assert_eq!(
            m.counters(Direction::AToB),
            Counters {
                frames: 10,
                bytes: 600
            }
        );
        let ends = LinkNames {
            link: "100:1-102:1".into(),
            a: "100:1".into(),
            b: "102:1".into(),
            detail: String::new(),
        };
        let r = m.report(&ends, [SpliceCounters::default(); 2], 2.0);
        assert_eq!(r.directions[0].from, "100:1");
        assert_eq!(r.directions[1].from, "102:1");
        assert_eq!(r.directions[0].pps, 5.0);
        assert_eq!(r.directions[0].bps, 2400.0);
        assert_eq!(r.directions[1].sizes.min, Some(1514));
        assert_eq!(r.directions[1].sizes.max, Some(1514));
        assert_eq!(r.directions[0].sizes.p50, Some(60));
        assert_eq!(r.rtt_ms.icmp_echo.p50, None);
        let (pps, bps) = m
            .counters(Direction::AToB)
            .rates_since(&Counters::default(), 1_000_000_000);
        assert_eq!((pps, bps), (10.0, 4800.0));
    }

    #[test]
    fn echo_pairs_give_rtt_and_lost_requests_count_after_grace() {
        let mut m = meter(None, 65535);
        for seq in 0..10u16 {
            let t = u64::from(seq) * 1000 * MS;
            m.record(Direction::AToB, t, &echo(true, true, seq, 56));
            if seq % 3 != 0 {
                m.record(Direction::BToA, t + 2 * MS, &echo(false, false, seq, 56));
            }
        }
        m.expire(9000 * MS);
        // seq 0 and 3 are older than 3 s; 6 and 9 are still within the grace time.
        assert_eq!(m.unanswered(Direction::AToB, Exchange::IcmpEcho), 2);
        assert_eq!(m.pending(), 2);
        m.expire(20_000 * MS);
        assert_eq!(m.unanswered(Direction::AToB, Exchange::IcmpEcho), 4);
        let rtt = m.rtt(Exchange::IcmpEcho);
        assert_eq!(rtt.count, 6);
        assert_eq!(rtt.unanswered, 4);
        assert_eq!(rtt.p50, Some(2.0));
        assert_eq!(rtt.max, Some(2.0));
        let flows = m.lossy_flows();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].0, Direction::AToB);
        assert_eq!(flows[0].1.protocol, FlowProtocol::IcmpEcho);
        assert_eq!(flows[0].2.unanswered, 4);
    }

    #[test]
    fn percentiles_never_read_beyond_the_extremes() {
        let mut m = meter(None, 1500);
        for seq in 0..10 {
            // 3042-byte frames: the histogram's bucket top is above 3042.
            m.record(
                Direction::AToB,
                seq * MS,
                &echo(true, true, seq as u16, 3000),
            );
            m.record(
                Direction::BToA,
                seq * MS + 7_174_321,
                &echo(false, false, seq as u16, 3000),
            );
        }
        let ends = LinkNames {
            link: "l".into(),
            a: "a".into(),
            b: "b".into(),
            detail: String::new(),
        };
        let sizes = m
            .report(&ends, [SpliceCounters::default(); 2], 1.0)
            .directions[0]
            .sizes;
        assert_eq!(
            (sizes.p50, sizes.p99, sizes.max),
            (Some(3042), Some(3042), Some(3042))
        );
        let rtt = m.rtt(Exchange::IcmpEcho);
        assert!(rtt.p99 <= rtt.max && rtt.p50 <= rtt.max, "{rtt:?}");
    }

    #[test]
    fn a_reply_handed_over_before_its_request_still_pairs() {
        let mut m = meter(None, 65535);
        // The splice's two directions reach the meter independently: the reply (received
        // 2 ms after the request) can come first.
        m.record(Direction::BToA, 2 * MS, &echo(false, false, 7, 56));
        m.record(Direction::AToB, 0, &echo(true, true, 7, 56));
        m.expire(60_000 * MS);
        let rtt = m.rtt(Exchange::IcmpEcho);
        assert_eq!((rtt.count, rtt.unanswered, rtt.p50), (1, 0, Some(2.0)));
        // An unsolicited reply is forgotten after the grace time, not paired later.
        m.record(Direction::BToA, 61_000 * MS, &echo(false, false, 8, 56));
        m.expire(70_000 * MS);
        m.record(Direction::AToB, 71_000 * MS, &echo(true, true, 8, 56));
        m.expire(80_000 * MS);
        assert_eq!(m.rtt(Exchange::IcmpEcho).count, 1);
        assert_eq!(m.unanswered(Direction::AToB, Exchange::IcmpEcho), 1);
    }

    #[test]
    fn a_reply_in_the_same_direction_is_no_answer() {
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &echo(true, true, 1, 8));
        // A reply addressed back to A but travelling a>b cannot answer a request seen a>b.
        m.record(Direction::AToB, MS, &echo(false, false, 1, 8));
        assert_eq!(m.rtt(Exchange::IcmpEcho).count, 0);
    }

    #[test]
    fn arp_requests_retried_before_an_answer_count_as_unanswered() {
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &arp(ArpOperation::REQUEST, IP_A, IP_B));
        m.record(
            Direction::AToB,
            1000 * MS,
            &arp(ArpOperation::REQUEST, IP_A, IP_B),
        );
        m.record(
            Direction::BToA,
            1001 * MS,
            &arp(ArpOperation::REPLY, IP_B, IP_A),
        );
        // Gratuitous ARP and probes expect no reply.
        m.record(Direction::AToB, 0, &arp(ArpOperation::REQUEST, IP_A, IP_A));
        m.record(
            Direction::AToB,
            0,
            &arp(ArpOperation::REQUEST, [0; 4], IP_B),
        );
        m.expire(60_000 * MS);
        assert_eq!(m.unanswered(Direction::AToB, Exchange::Arp), 1);
        let rtt = m.rtt(Exchange::Arp);
        assert_eq!((rtt.count, rtt.max), (1, Some(1.0)));
    }

    #[test]
    fn syn_to_syn_ack_is_the_handshake_rtt_and_resent_data_a_retransmission() {
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &tcp(true, 1000, None, true, 0));
        m.record(
            Direction::BToA,
            5 * MS,
            &tcp(false, 7000, Some(1001), true, 0),
        );
        m.record(
            Direction::AToB,
            6 * MS,
            &tcp(true, 1001, Some(7001), false, 0),
        );
        m.record(
            Direction::AToB,
            7 * MS,
            &tcp(true, 1001, Some(7001), false, 100),
        );
        m.record(
            Direction::AToB,
            8 * MS,
            &tcp(true, 1101, Some(7001), false, 100),
        );
        // The first segment again: a retransmission.
        m.record(
            Direction::AToB,
            9 * MS,
            &tcp(true, 1001, Some(7001), false, 100),
        );
        // A keep-alive probe (one byte just below the next sequence number) is not.
        m.record(
            Direction::AToB,
            10 * MS,
            &tcp(true, 1200, Some(7001), false, 1),
        );
        m.record(
            Direction::BToA,
            10 * MS,
            &tcp(false, 7001, Some(1201), false, 0),
        );
        let rtt = m.rtt(Exchange::TcpHandshake);
        assert_eq!(rtt.count, 1);
        // hdrhistogram keeps three significant digits.
        assert!(rtt.p50.is_some_and(|ms| (ms - 5.0).abs() < 0.01), "{rtt:?}");
        assert_eq!(m.retransmissions(Direction::AToB), 1);
        assert_eq!(m.retransmissions(Direction::BToA), 0);
        let flows = m.lossy_flows();
        assert_eq!(flows[0].1.destination_port, 80);
        assert_eq!(flows[0].2.retransmissions, 1);
    }

    #[test]
    fn keepalive_rule_needs_the_byte_just_below_the_highest_end() {
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &tcp(true, 1, Some(1), false, 100));
        // One byte re-sent in the middle of a range: a retransmission, not a keep-alive.
        m.record(Direction::AToB, MS, &tcp(true, 50, Some(1), false, 1));
        assert_eq!(m.retransmissions(Direction::AToB), 1);
    }

    #[test]
    fn frames_are_classified_against_host_mtu_and_path_mtu() {
        let mut m = meter(Some(1500), 1500);
        m.record(Direction::AToB, 0, &echo(true, true, 1, 1472 - 42));
        m.record(Direction::AToB, 0, &echo(true, true, 2, 1473 - 42));
        m.record(Direction::AToB, 0, &echo(true, true, 3, 3014 - 42));
        m.record(Direction::AToB, 0, &vec![0u8; 65508]);
        let mut tagged = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(VlanId::try_new(10).expect("valid id"))
            .ipv4(IP_A, IP_B, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut tagged, &[0; 1518 - 46])
            .expect("builds");
        assert_eq!(tagged.len(), 1518);
        m.record(Direction::BToA, 0, &tagged);
        let ends = LinkNames {
            link: "l".into(),
            a: "a".into(),
            b: "b".into(),
            detail: String::new(),
        };
        let r = m.report(&ends, [SpliceCounters::default(); 2], 1.0);
        assert_eq!(
            r.directions[0].mtu,
            report::Mtu {
                exceeds_host_mtu: 2,
                fragmented_frames: 2,
                ip_fragments: 5,
                unsendable: 1,
            }
        );
        // 1518 bytes with one tag is exactly host_mtu 1500 + 18, but 1546 on the wire.
        assert_eq!(r.directions[1].mtu.exceeds_host_mtu, 0);
        assert_eq!(r.directions[1].mtu.fragmented_frames, 1);
        assert_eq!(r.advice.len(), 4);
        assert!(r.advice[0].starts_with("host_mtu 1500 on a 1500-byte path: 50 % of a>b"));
        assert!(r.advice[3].contains("set host_mtu ≤ 1454"));
    }

    #[test]
    fn pending_tables_are_capped_and_never_invent_loss() {
        let mut config = config(None, 65535);
        config.max_pending = 4;
        let mut m = Meter::new(config);
        for seq in 0..10 {
            m.record(Direction::AToB, 0, &echo(true, true, seq, 8));
        }
        assert_eq!(m.pending(), 4);
        assert_eq!(m.untracked(), 6);
        for seq in 0..10 {
            m.record(Direction::BToA, MS, &echo(false, false, seq, 8));
        }
        m.expire(u64::MAX);
        assert_eq!(m.rtt(Exchange::IcmpEcho).count, 4);
        assert_eq!(m.unanswered(Direction::AToB, Exchange::IcmpEcho), 0);
    }

    #[test]
    fn tcp_flow_table_is_capped() {
        let mut config = config(None, 65535);
        config.max_flows = 2;
        let mut m = Meter::new(config);
        for port in 0..5u16 {
            m.record(Direction::AToB, 0, &tcp_from_a(port));
        }
        assert_eq!(m.tcp.len(), 2);
        assert_eq!(m.untracked(), 3);
    }

    #[test]
    fn a_full_tcp_flow_table_is_swept_at_most_once_a_second() {
        let mut config = config(None, 65535);
        config.max_flows = 2;
        let mut m = Meter::new(config);
        let flow = |m: &mut Meter, port: u16, ts: u64| {
            m.record(Direction::AToB, ts, &tcp_from_a(port));
        };
        let half = TCP_SWEEP_NS / 2;
        flow(&mut m, 1, 0);
        flow(&mut m, 2, half);
        // Full; flow 1 is idle: the sweep forgets it and flow 3 is followed.
        flow(&mut m, 3, TCP_IDLE_NS + half / 2);
        assert_eq!(m.untracked(), 0);
        // Flow 2 is idle now too, but the last sweep was less than a second ago.
        flow(&mut m, 4, TCP_IDLE_NS + half + half / 2);
        assert_eq!(m.untracked(), 1);
        // A second after the last sweep: swept again, flow 2 is forgotten, flow 5 followed.
        flow(&mut m, 5, TCP_IDLE_NS + half / 2 + TCP_SWEEP_NS);
        assert_eq!(m.untracked(), 1);
        assert_eq!(m.tcp.len(), 2);
    }

    #[test]
    fn an_idle_meter_holds_small_histograms_that_grow_with_what_they_record() {
        let mut m = meter(Some(1500), 1500);
        let slots = |m: &Meter| {
            m.directions
                .iter()
                .map(|d| d.sizes.distinct_values() + d.added_latency.distinct_values())
                .chain(m.rtt.iter().map(|r| r.histogram.distinct_values()))
                .sum::<usize>()
        };
        // Full-range histograms hold about 120,000 counters between them.
        assert!(slots(&m) < 20_000, "{} counters while idle", slots(&m));
        m.record_added_latency(Direction::AToB, 50_000_000_000);
        m.record_added_latency(Direction::AToB, 70_000_000_000);
        let names = LinkNames {
            link: "l".into(),
            a: "a".into(),
            b: "b".into(),
            detail: String::new(),
        };
        let r = m.report(&names, [SpliceCounters::default(); 2], 1.0);
        // Both count, the one above the 60 s ceiling as the ceiling.
        let p50 = r.directions[0].added_latency_us.p50.unwrap();
        assert!((p50 / 50e6 - 1.0).abs() < 1e-3, "{p50}");
        assert_eq!(
            r.directions[0]
                .added_latency_us
                .max
                .map(|v| (v / 1e6).round()),
            Some(60.0)
        );
    }

    #[test]
    fn added_latency_is_reported_in_microseconds() {
        let mut m = meter(None, 65535);
        for us in 1..=100u64 {
            m.record_added_latency(Direction::AToB, us * 1000);
        }
        let ends = LinkNames {
            link: "l".into(),
            a: "a".into(),
            b: "b".into(),
            detail: String::new(),
        };
        let r = m.report(&ends, [SpliceCounters::default(); 2], 1.0);
        let l = r.directions[0].added_latency_us;
        assert_eq!(l.p50.map(f64::round), Some(50.0));
        assert_eq!(l.max.map(f64::round), Some(100.0));
        assert_eq!(r.directions[1].added_latency_us.p50, None);
    }

    #[test]
    fn icmpv6_echo_pairs_are_matched_too() {
        let a: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let b: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut request = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(a, b, 64)
            .icmpv6_echo_request(9, 1)
            .write(&mut request, &[0; 8])
            .expect("builds");
        let mut reply = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv6(b, a, 64)
            .icmpv6_echo_reply(9, 1)
            .write(&mut reply, &[0; 8])
            .expect("builds");
        let mut m = meter(None, 65535);
        m.record(Direction::BToA, 0, &request);
        m.record(Direction::AToB, 3 * MS, &reply);
        let rtt = m.rtt(Exchange::IcmpEcho);
        assert_eq!(rtt.count, 1);
        assert!(rtt.p50.is_some_and(|ms| (ms - 3.0).abs() < 0.01));
    }

    #[test]
    fn double_tagged_frames_are_parsed_and_their_tags_counted() {
        let inner = echo(true, true, 1, 8);
        // Insert an 802.1ad and an 802.1Q tag after the MAC addresses.
        let mut frame = inner[..12].to_vec();
        frame.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
        frame.extend_from_slice(&inner[12..]);
        assert_eq!(ethernet(&frame).0, 2);
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &frame);
        m.record(Direction::BToA, MS, &echo(false, false, 1, 8));
        assert_eq!(m.rtt(Exchange::IcmpEcho).count, 1);
    }

    #[test]
    fn ip_fragments_are_not_read_as_transport_headers() {
        let mut frame = echo(true, true, 1, 8);
        // Set "more fragments" in the IPv4 header (byte 6 of the header, 14 + 6).
        frame[20] |= 0x20;
        let mut m = meter(None, 65535);
        m.record(Direction::AToB, 0, &frame);
        assert_eq!(m.pending(), 0);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(frame in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), ts in 0u64..u64::MAX) {
            let mut m = meter(Some(1500), 1500);
            m.record(Direction::AToB, ts, &frame);
            m.record(Direction::BToA, ts, &frame);
            m.expire(ts);
        }
    }
}
