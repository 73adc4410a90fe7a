//! `/metrics`: the lab in Prometheus' text format, through the official client crate
//! (prometheus-client), encoded afresh from a [`LabView`] on every scrape.
//!
//! Per link and direction (labels `node`, `link`, `direction`, and the sending end's `vmid`
//! and `nic` with the receiving end's `peer_vmid` and `peer_nic`, so a user can join them
//! with node metrics): frames, bytes, drops by cause, fragmented frames. Per link: an RTT
//! histogram, whether it is carried, cut, and per end its STP port role (and whether it
//! blocks) and whether its LLDP identity differs from the plan.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::model::{EndView, LabView, LinkState, LinkView, RTT_BUCKETS_MS, StpRole};

/// The content type of [`encode`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Vec<(String, String)>;

fn end_labels(link: &LinkView, end: &EndView, role: &str) -> Labels {
    let mut labels = vec![
        ("node".to_owned(), link.node.clone()),
        ("link".to_owned(), link.name.clone()),
        ("end".to_owned(), role.to_owned()),
        ("vmid".to_owned(), end.vm.to_string()),
    ];
    labels.push(("nic".to_owned(), nic(end)));
    labels
}

fn nic(end: &EndView) -> String {
    end.nic.clone().unwrap_or_else(|| format!("eth{}", end.eth))
}

fn direction_labels(link: &LinkView, direction: &str) -> Labels {
    let (from, to) = if direction == "b>a" {
        (&link.b, &link.a)
    } else {
        (&link.a, &link.b)
    };
    vec![
        ("node".to_owned(), link.node.clone()),
        ("link".to_owned(), link.name.clone()),
        ("direction".to_owned(), direction.to_owned()),
        ("vmid".to_owned(), from.vm.to_string()),
        ("nic".to_owned(), nic(from)),
        ("peer_vmid".to_owned(), to.vm.to_string()),
        ("peer_nic".to_owned(), nic(to)),
    ]
}

fn link_labels(link: &LinkView) -> Labels {
    vec![
        ("node".to_owned(), link.node.clone()),
        ("link".to_owned(), link.name.clone()),
        ("vmid_a".to_owned(), link.a.vm.to_string()),
        ("vmid_b".to_owned(), link.b.vm.to_string()),
    ]
}

#[derive(Debug)]
struct LabCollector(LabView);

/// One metric family: its name, help, type and a sample per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for LabCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let links = &self.0.links;
        let per_direction = || {
            links.iter().flat_map(|link| {
                link.directions
                    .iter()
                    .map(move |(direction, figures)| (link, direction.as_str(), figures))
            })
        };
        family(
            &mut encoder,
            "linkscope_frames",
            "Frames forwarded, per link and direction",
            MetricType::Counter,
            per_direction().map(|(l, d, f)| (direction_labels(l, d), ConstCounter::new(f.frames))),
        )?;
        family(
            &mut encoder,
            "linkscope_bytes",
            "Bytes of Ethernet frames forwarded, per link and direction",
            MetricType::Counter,
            per_direction().map(|(l, d, f)| (direction_labels(l, d), ConstCounter::new(f.bytes))),
        )?;
        family(
            &mut encoder,
            "linkscope_dropped",
            "Frames linkscope dropped, per link, direction and cause",
            MetricType::Counter,
            per_direction().flat_map(|(l, d, f)| {
                f.dropped.iter().map(move |(cause, &n)| {
                    let mut labels = direction_labels(l, d);
                    labels.push(("cause".to_owned(), cause.clone()));
                    (labels, ConstCounter::new(n))
                })
            }),
        )?;
        family(
            &mut encoder,
            "linkscope_fragmented_frames",
            "Frames whose tunnel datagram exceeds the path MTU (the host fragments them)",
            MetricType::Counter,
            per_direction()
                .map(|(l, d, f)| (direction_labels(l, d), ConstCounter::new(f.fragmented))),
        )?;
        family(
            &mut encoder,
            "linkscope_impaired",
            "Frames the link's impairment acted on, per direction and action",
            MetricType::Counter,
            per_direction().flat_map(|(l, d, f)| {
                f.impaired.iter().map(move |(action, &n)| {
                    let mut labels = direction_labels(l, d);
                    labels.push(("action".to_owned(), action.clone()));
                    (labels, ConstCounter::new(n))
                })
            }),
        )?;
        family(
            &mut encoder,
            "linkscope_link_spliced",
            "1 while the link's frames cross linkscope, 0 while it waits for its VMs",
            MetricType::Gauge,
            links.iter().map(|l| {
                let spliced = i64::from(l.state == LinkState::Spliced);
                (link_labels(l), ConstGauge::new(spliced))
            }),
        )?;
        family(
            &mut encoder,
            "linkscope_link_down",
            "1 while the link is cut by a control verb",
            MetricType::Gauge,
            links
                .iter()
                .map(|l| (link_labels(l), ConstGauge::new(i64::from(l.down)))),
        )?;
        let roles = || {
            links.iter().flat_map(|l| {
                [("a", &l.a, l.stp_role.a), ("b", &l.b, l.stp_role.b)]
                    .into_iter()
                    .filter_map(move |(end, view, role)| Some((l, end, view, role?)))
            })
        };
        family(
            &mut encoder,
            "linkscope_stp_role",
            "1 for each end's STP port role (designated, root, alternate), as the lab's BPDUs show",
            MetricType::Gauge,
            roles().map(|(l, end, view, role)| {
                let mut labels = end_labels(l, view, end);
                labels.push(("role".to_owned(), role.name().to_owned()));
                (labels, ConstGauge::new(1))
            }),
        )?;
        family(
            &mut encoder,
            "linkscope_stp_blocking",
            "1 where an end's STP port does not forward (alternate), 0 where it does",
            MetricType::Gauge,
            roles().map(|(l, end, view, role)| {
                let blocking = i64::from(role == StpRole::Alternate);
                (end_labels(l, view, end), ConstGauge::new(blocking))
            }),
        )?;
        family(
            &mut encoder,
            "linkscope_lldp_neighbour_mismatch",
            "1 where an end's LLDP identity differs from the plan, 0 where it matches",
            MetricType::Gauge,
            links.iter().flat_map(|l| {
                [
                    ("a", &l.a, l.lldp_mismatch.a),
                    ("b", &l.b, l.lldp_mismatch.b),
                ]
                .into_iter()
                .filter_map(|(role, end, v)| {
                    v.map(|v| (end_labels(l, end, role), ConstGauge::new(i64::from(v))))
                })
                .collect::<Vec<_>>()
            }),
        )?;
        let mut rtt = encoder.encode_descriptor(
            "linkscope_rtt_seconds",
            "Round-trip times beyond linkscope (ICMP echo, ARP, TCP handshakes)",
            None,
            MetricType::Histogram,
        )?;
        for link in links {
            let Some(view) = &link.rtt_ms else { continue };
            let buckets: Vec<(f64, u64)> = RTT_BUCKETS_MS
                .iter()
                .zip(view.buckets)
                .map(|(&le, n)| (le / 1000.0, n))
                .chain([(f64::INFINITY, view.count)])
                .collect();
            let labels = link_labels(link);
            rtt.encode_family(&labels)?.encode_histogram::<Labels>(
                view.sum_ms / 1000.0,
                view.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition of `lab`.
pub fn encode(lab: &LabView) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(LabCollector(lab.clone())));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}
