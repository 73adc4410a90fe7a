//! A link's measurements as text: the status line of each stats interval and the summary at
//! the end of a run, from what [`Meter`] counted.

use crate::measure::meter::{Counters, Exchange, FlowProtocol, Meter, SpliceCounters};
use crate::plan::LinkNames;
use crate::splice::Direction;

/// One status line: per direction the frame and bit rates since `earlier` (taken
/// `elapsed_ns` before), the share of frames fragmented so far, the unanswered requests and
/// retransmissions so far, and the echo RTT median, e.g.
/// `a>b 812 fr/s 9.7 Mbit/s frag 37 % lost 2 | b>a 811 fr/s 9.6 Mbit/s | rtt 0.41 ms`.
/// Only `directions` are shown (a splice may see one direction only).
pub(in crate::cli) fn status_line(
    meter: &Meter,
    directions: &[Direction],
    earlier: [Counters; 2],
    elapsed_ns: u64,
) -> String {
    let mut parts: Vec<String> = directions
        .iter()
        .map(|&direction| {
            let counters = meter.counters(direction);
            let (pps, bps) = counters.rates_since(&earlier[slot(direction)], elapsed_ns);
            let mut part = format!(
                "{} {pps:.0} fr/s {:.1} Mbit/s",
                direction.label(),
                bps / 1e6
            );
            let fragmented = meter.mtu(direction).fragmented_frames;
            if fragmented > 0 {
                part.push_str(&format!(
                    " frag {:.0} %",
                    fragmented as f64 * 100.0 / counters.frames as f64
                ));
            }
            let lost = lost(meter, direction);
            if lost > 0 {
                part.push_str(&format!(" lost {lost}"));
            }
            part
        })
        .collect();
    if let Some(p50) = meter.rtt(Exchange::IcmpEcho).p50 {
        parts.push(format!("rtt {p50:.2} ms"));
    }
    parts.join(" | ")
}

/// What one link carried between two status lines, and its loss so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(in crate::cli) struct Rates {
    /// Frames per second, over the directions shown.
    pub pps: f64,
    /// Bits per second, over the directions shown.
    pub bps: f64,
    /// Unanswered requests and retransmissions so far.
    pub lost: u64,
}

impl Rates {
    /// The rates of `meter` over `directions` since `earlier`, taken `elapsed_ns` before.
    pub(in crate::cli) fn of(
        meter: &Meter,
        directions: &[Direction],
        earlier: [Counters; 2],
        elapsed_ns: u64,
    ) -> Rates {
        directions.iter().fold(Rates::default(), |sum, &direction| {
            let (pps, bps) = meter
                .counters(direction)
                .rates_since(&earlier[slot(direction)], elapsed_ns);
            Rates {
                pps: sum.pps + pps,
                bps: sum.bps + bps,
                lost: sum.lost + lost(meter, direction),
            }
        })
    }
}

/// The status line of many links: their total rates and loss, how many carried frames,
/// and the busiest, e.g. `200 links, 37 carrying frames: 2000 fr/s 1.2 Mbit/s lost 3 |
/// busiest 100:1-102:1 400 fr/s`.
pub(in crate::cli) fn totals_line(links: &[(&str, Rates)]) -> String {
    let pps: f64 = links.iter().map(|(_, r)| r.pps).sum();
    let bps: f64 = links.iter().map(|(_, r)| r.bps).sum();
    let lost: u64 = links.iter().map(|(_, r)| r.lost).sum();
    let carrying = links.iter().filter(|(_, r)| r.pps > 0.0).count();
    let mut line = format!(
        "{} links, {carrying} carrying frames: {pps:.0} fr/s {:.1} Mbit/s",
        links.len(),
        bps / 1e6
    );
    if lost > 0 {
        line.push_str(&format!(" lost {lost}"));
    }
    if let Some((name, busiest)) = links
        .iter()
        .filter(|(_, r)| r.pps > 0.0)
        .max_by(|x, y| x.1.pps.total_cmp(&y.1.pps))
    {
        line.push_str(&format!(" | busiest {name} {:.0} fr/s", busiest.pps));
    }
    line
}

/// Unanswered requests and retransmissions in `direction` so far.
fn lost(meter: &Meter, direction: Direction) -> u64 {
    Exchange::ALL
        .iter()
        .map(|&e| meter.unanswered(direction, e))
        .sum::<u64>()
        + meter.retransmissions(direction)
}

/// The human summary at the end of a run: one block per direction, the round trips, the
/// lossiest flows (at most five) and the advice. Only `directions` get a block (a splice may
/// see one direction only).
pub(in crate::cli) fn summary(
    meter: &Meter,
    names: &LinkNames,
    directions: &[Direction],
    duration_s: f64,
) -> String {
    let report = meter.report(names, [SpliceCounters::default(); 2], duration_s);
    let mut out = format!("link {}\n", report.name);
    for &direction in directions {
        let d = &report.directions[slot(direction)];
        out.push_str(&format!(
            "  {} > {}: {} frames, {} bytes, {:.0} fr/s, {:.2} Mbit/s",
            d.from,
            d.to,
            d.frames,
            d.bytes,
            d.pps,
            d.bps / 1e6
        ));
        if let (Some(min), Some(p50), Some(max)) = (d.sizes.min, d.sizes.p50, d.sizes.max) {
            out.push_str(&format!(", sizes {min}/{p50}/{max} (min/p50/max)"));
        }
        out.push('\n');
        out.push_str(&format!(
            "    beyond the splice: {} echo, {} ARP, {} SYN unanswered; {} TCP retransmissions\n",
            meter.unanswered(direction, Exchange::IcmpEcho),
            meter.unanswered(direction, Exchange::Arp),
            meter.unanswered(direction, Exchange::TcpHandshake),
            meter.retransmissions(direction),
        ));
        let mtu = d.mtu;
        if mtu.exceeds_host_mtu + mtu.fragmented_frames + mtu.unsendable > 0 {
            out.push_str(&format!(
                "    mtu: {} fragmented into {} IP fragments, {} unsendable, {} above host_mtu\n",
                mtu.fragmented_frames, mtu.ip_fragments, mtu.unsendable, mtu.exceeds_host_mtu,
            ));
        }
    }
    for (name, rtt) in [
        ("icmp echo", report.rtt_ms.icmp_echo),
        ("arp", report.rtt_ms.arp),
        ("tcp handshake", report.rtt_ms.tcp_handshake),
    ] {
        if let (Some(p50), Some(p90), Some(p99), Some(max)) = (rtt.p50, rtt.p90, rtt.p99, rtt.max) {
            out.push_str(&format!(
                "  rtt {name}: {} pairs, p50 {p50:.3} ms, p90 {p90:.3}, p99 {p99:.3}, max {max:.3}\n",
                rtt.count
            ));
        }
    }
    for (direction, flow, loss) in meter.lossy_flows().into_iter().take(5) {
        let ports = if flow.protocol == FlowProtocol::Tcp {
            format!(" ports {} > {}", flow.source_port, flow.destination_port)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  lossy flow {} {:?} {} > {}{ports}: {} unanswered, {} retransmissions\n",
            direction.label(),
            flow.protocol,
            flow.source,
            flow.destination,
            loss.unanswered,
            loss.retransmissions,
        ));
    }
    for line in &report.advice {
        out.push_str(&format!("  advice: {line}\n"));
    }
    out
}

/// The index of a direction in the meter's per-direction arrays (a>b first).
fn slot(direction: Direction) -> usize {
    match direction {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;
    use crate::measure::fragment::{Budget, Outer};
    use crate::measure::meter::Config;

    const MS: u64 = 1_000_000;

    /// An ICMP echo request (a>b, 10.0.0.1 to 10.0.0.2) or reply (b>a) with 3000 bytes of
    /// payload.
    fn echo(request: bool, seq: u16) -> Vec<u8> {
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (mac_a, mac_b) = (
            [0xbe, 0x24, 0x99, 0, 0x64, 1],
            [0xbe, 0x24, 0x99, 0, 0x66, 1],
        );
        let mut frame = Vec::new();
        if request {
            PacketBuilder::ethernet2(mac_a, mac_b)
                .ipv4(a, b, 64)
                .icmpv4_echo_request(7, seq)
                .write(&mut frame, &[0x5a; 3000])
        } else {
            PacketBuilder::ethernet2(mac_b, mac_a)
                .ipv4(b, a, 64)
                .icmpv4_echo_reply(7, seq)
                .write(&mut frame, &[0x5a; 3000])
        }
        .expect("builds");
        frame
    }

    #[test]
    fn status_line_and_summary_show_rates_loss_and_advice() {
        let mut m = Meter::new(Config::new(Budget {
            host_mtu: Some(9000),
            path_mtu: 1500,
            outer: Outer::Ipv4,
        }));
        for seq in 0..4u16 {
            let t = u64::from(seq) * 250 * MS;
            m.record(Direction::AToB, t, &echo(true, seq));
            if seq != 2 {
                m.record(Direction::BToA, t + MS, &echo(false, seq));
            }
        }
        m.expire(60_000 * MS);
        let line = status_line(
            &m,
            &Direction::BOTH,
            [Counters::default(); 2],
            1_000_000_000,
        );
        assert_eq!(
            line,
            "a>b 4 fr/s 0.1 Mbit/s frag 100 % lost 1 | b>a 3 fr/s 0.1 Mbit/s frag 100 % | rtt 1.00 ms"
        );
        let names = LinkNames {
            link: "100:1-102:1".into(),
            a: "100:1".into(),
            b: "102:1".into(),
            detail: String::new(),
        };
        let summary = summary(&m, &names, &Direction::BOTH, 1.0);
        assert!(summary.contains("100:1 > 102:1: 4 frames"), "{summary}");
        assert!(
            summary.contains("1 echo, 0 ARP, 0 SYN unanswered"),
            "{summary}"
        );
        assert!(summary.contains("rtt icmp echo: 3 pairs"), "{summary}");
        assert!(
            summary.contains("lossy flow a>b IcmpEcho 10.0.0.1 > 10.0.0.2"),
            "{summary}"
        );
        assert!(
            summary.contains("advice: host_mtu 9000 on a 1500-byte path: 100 % of a>b frames were fragmented; set host_mtu ≤ 1458"),
            "{summary}"
        );
    }

    #[test]
    fn many_links_show_their_totals_and_the_busiest() {
        let rates = |pps: f64, lost| Rates {
            pps,
            bps: pps * 8000.0,
            lost,
        };
        let links = [
            ("100:1-102:1", rates(10.0, 0)),
            ("101:1-102:2", rates(0.0, 2)),
            ("100:2-103:1", rates(30.0, 1)),
            ("104:1-105:1", rates(0.0, 0)),
            ("104:2-105:2", rates(0.0, 0)),
        ];
        assert_eq!(
            totals_line(&links),
            "5 links, 2 carrying frames: 40 fr/s 0.3 Mbit/s lost 3 | busiest 100:2-103:1 30 fr/s"
        );
        let idle = [("100:1-102:1", Rates::default()); 5];
        assert_eq!(
            totals_line(&idle),
            "5 links, 0 carrying frames: 0 fr/s 0.0 Mbit/s"
        );
    }
}
