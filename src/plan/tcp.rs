//! Links carried over TCP between hosts (`transport: tcp`, `defaults.cross_host_transport:
//! tcp`): the `linkscope relay` commands that carry them (`plan --format relays`) and the same
//! as systemd units (`plan --format relays-systemd`).
//!
//! A UDP tunnel between hosts fragments every frame larger than the path MTU allows. For a
//! link carried over TCP, each VM keeps a plain UDP tunnel, on loopback, to a relay on its
//! own host, and the two relays carry the frames between the hosts in one TCP connection
//! (QEMU's stream framing). The tunnel on each host mirrors the original link: the VM binds
//! its own port and sends to the port the other VM would bind, which the relay binds (that
//! port is free on this host: the other VM is elsewhere). Between the hosts, the host whose
//! address sorts first (numerically, IPv4 before IPv6) listens on the TCP port equal to its
//! VM's UDP port; the other host connects to it and reconnects whenever the connection
//! drops.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{Link, Plan, Side, TcpHosts};
use crate::plan::mapping::HostIp;

/// One relay of one host: one link's end that lives there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The link's name, e.g. `100:2-103:1`.
    pub link: String,
    /// The side of the link whose VM runs on this host.
    pub side: Side,
    /// This host and the other one, as written in the mapping.
    pub host: HostIp,
    pub other_host: HostIp,
    /// The relay's UDP tunnel end: it binds `bind` and exchanges frames with the VM at
    /// `vm`, both on loopback.
    pub bind: SocketAddr,
    pub vm: SocketAddr,
    /// True on the host that listens; false on the one that connects.
    pub listens: bool,
    /// The TCP address the listening host listens on and the other connects to.
    pub tcp: SocketAddr,
    /// VM and eth of this end and of the other one, for the comments.
    pub here: (u32, u32),
    pub there: (u32, u32),
}

impl Relay {
    /// The two endpoints as `linkscope relay` takes them: the UDP tunnel end, then the TCP
    /// end (`tcp-listen://` on the listening host, `tcp://` on the other).
    pub fn endpoints(&self) -> [String; 2] {
        let udp = format!("udp://{}->{}", self.bind, self.vm);
        let tcp = if self.listens {
            format!("tcp-listen://{}?from={}", self.tcp, self.other_host.addr)
        } else {
            format!("tcp://{}", self.tcp)
        };
        [udp, tcp]
    }

    /// [`Relay::endpoints`] ready for a shell: the UDP locator quoted (its `->` holds a
    /// `>`), and the listening one (its `?from=` holds a glob character).
    pub fn args(&self) -> [String; 2] {
        let [udp, tcp] = self.endpoints();
        let tcp = if tcp.contains('?') {
            format!("'{tcp}'")
        } else {
            tcp
        };
        [format!("'{udp}'"), tcp]
    }
}

/// Every relay the plan needs, per host (ordered by address), each host's in link order.
pub fn relays(plan: &Plan) -> BTreeMap<IpAddr, Vec<Relay>> {
    let mut hosts: BTreeMap<IpAddr, Vec<Relay>> = BTreeMap::new();
    for (&index, hosts_of_link) in &plan.tcp {
        let link = &plan.links[index];
        for side in [Side::A, Side::B] {
            let relay = relay(link, hosts_of_link, side);
            hosts.entry(relay.host.addr).or_default().push(relay);
        }
    }
    hosts
}

fn relay(link: &Link, hosts: &TcpHosts, side: Side) -> Relay {
    let (here, there, host, other_host) = match side {
        Side::A => (&link.a, &link.b, &hosts.a, &hosts.b),
        Side::B => (&link.b, &link.a, &hosts.b, &hosts.a),
    };
    let listens = host.addr < other_host.addr;
    let (listener, listener_end) = if listens {
        (host, here)
    } else {
        (other_host, there)
    };
    Relay {
        link: link.name.clone(),
        side,
        host: host.clone(),
        other_host: other_host.clone(),
        bind: here.remote,
        vm: here.local,
        listens,
        tcp: SocketAddr::new(listener.addr, listener_end.local.port()),
        here: (here.vm, here.eth),
        there: (there.vm, there.eth),
    }
}

fn describe(relay: &Relay) -> String {
    let role = if relay.listens {
        format!("listens on TCP {}", relay.tcp)
    } else {
        format!("connects to TCP {}", relay.tcp)
    };
    format!(
        "{}: VM {} eth{} here, VM {} eth{} on {}; {role}",
        relay.link, relay.here.0, relay.here.1, relay.there.0, relay.there.1, relay.other_host.text
    )
}

const HEADER: &str = "\
# linkscope relays for the links carried over TCP between hosts (transport: tcp).
# On each host, one relay per link: the VM's UDP tunnel on loopback <-> TCP to the other host.
# The host whose address sorts first listens; the other connects, and reconnects when the
# connection drops.
";

/// `plan --format relays`: per host, a comment naming it, then one `linkscope relay`
/// command per link, each after a comment saying what it joins and which side listens.
pub fn render_commands(plan: &Plan) -> String {
    let hosts = relays(plan);
    let mut out = String::from(HEADER);
    if hosts.is_empty() {
        out.push_str("# (no link of this mapping is carried over TCP)\n");
    }
    for relays in hosts.values() {
        let _ = writeln!(out, "\n# host {}", relays[0].host.text);
        for relay in relays {
            let [udp, tcp] = relay.args();
            let _ = writeln!(out, "# {}", describe(relay));
            let _ = writeln!(out, "linkscope relay {udp} {tcp}");
        }
    }
    out
}

/// The unit name of a relay: `linkscope-relay-100-2-103-1.service`.
pub fn unit_name(relay: &Relay) -> String {
    let name: String = relay
        .link
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("linkscope-relay-{name}.service")
}

/// `plan --format relays-systemd`: per host, one systemd service per relay, each preceded by
/// the path to write it to. The relay restarts whenever it stops; it needs no privilege
/// (UDP and TCP ports above 1023), so it runs as a transient user (DynamicUser).
pub fn render_systemd(plan: &Plan) -> String {
    let hosts = relays(plan);
    let mut out = String::from(HEADER);
    out.push_str(
        "# Write each unit below to the path given on its host, then\n# `systemctl daemon-reload && systemctl enable --now UNIT`.\n",
    );
    if hosts.is_empty() {
        out.push_str("# (no link of this mapping is carried over TCP)\n");
    }
    for relays in hosts.values() {
        let _ = writeln!(out, "\n# host {}", relays[0].host.text);
        for relay in relays {
            let [udp, tcp] = relay.args();
            let _ = write!(
                out,
                "\n# file: /etc/systemd/system/{unit}\n\
                 [Unit]\n\
                 Description=linkscope relay of link {desc}\n\
                 Wants=network-online.target\n\
                 After=network-online.target\n\
                 \n\
                 [Service]\n\
                 ExecStart=linkscope relay {udp} {tcp}\n\
                 Restart=always\n\
                 RestartSec=1\n\
                 DynamicUser=yes\n\
                 \n\
                 [Install]\n\
                 WantedBy=multi-user.target\n",
                unit = unit_name(relay),
                desc = describe(relay),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Mapping, PveSource, Showcmd};
    use std::path::Path;

    fn plan(text: &str) -> crate::Result<Plan> {
        let mapping = Mapping::parse(Path::new("m.yaml"), text)?;
        let pve = PveSource {
            config_dir: "/nonexistent".into(),
            showcmd: Showcmd::Nothing,
        };
        crate::plan::plan(&mapping, &pve, 1500)
    }

    const TWO_HOSTS: &str = "defaults:\n  udp_ip_by_vm: {100: 10.0.0.2, 103: 10.0.0.1, 104: 10.0.0.2}\nlinks:\n  - [100, 1, 103, 1, {transport: tcp}]\n  - [100, 2, 103, 2]\n  - [100, 3, 104, 1]\n";

    #[test]
    fn each_vm_tunnels_on_loopback_to_a_relay_that_binds_the_other_vms_port() {
        let p = plan(TWO_HOSTS).unwrap();
        assert_eq!(p.tcp.keys().copied().collect::<Vec<_>>(), vec![0]);
        let link = &p.links[0];
        assert_eq!(link.a.local, "127.0.0.1:41001".parse().unwrap());
        assert_eq!(link.a.remote, "127.0.0.1:41031".parse().unwrap());
        assert_eq!(link.b.local, link.a.remote);
        assert!(!link.crosses_hosts());
        assert!(p.links[1].crosses_hosts(), "udp is the default");
        let hosts = relays(&p);
        let first = &hosts[&"10.0.0.1".parse::<IpAddr>().unwrap()];
        let second = &hosts[&"10.0.0.2".parse::<IpAddr>().unwrap()];
        assert_eq!((first.len(), second.len()), (1, 1));
        // 10.0.0.1 sorts first: VM 103's host listens on VM 103's port.
        assert!(first[0].listens && !second[0].listens);
        assert_eq!(first[0].side, Side::B);
        assert_eq!(
            first[0].args(),
            [
                "'udp://127.0.0.1:41001->127.0.0.1:41031'".to_owned(),
                "'tcp-listen://10.0.0.1:41031?from=10.0.0.2'".to_owned()
            ]
        );
        assert_eq!(
            second[0].args(),
            [
                "'udp://127.0.0.1:41031->127.0.0.1:41001'".to_owned(),
                "tcp://10.0.0.1:41031".to_owned()
            ]
        );
        assert_eq!(unit_name(&first[0]), "linkscope-relay-100-1-103-1.service");
        // What the relay parses back: the UDP end binds the other VM's port and talks to
        // this host's VM; the connecting side targets the listener.
        for relay in [&first[0], &second[0]] {
            let [udp, tcp] = relay.args();
            assert_eq!(udp, format!("'{}'", relay.endpoints()[0]));
            match crate::relay::Locator::parse(&relay.endpoints()[0]).unwrap() {
                crate::relay::Locator::Udp { bind, peer } => {
                    assert_eq!((bind, peer), (relay.bind, relay.vm));
                }
                other => panic!("{other:?}"),
            }
            let tcp = crate::relay::Locator::parse(tcp.trim_matches('\'')).unwrap();
            assert_eq!(tcp.to_string().starts_with("tcp-listen://"), relay.listens);
            if let crate::relay::Locator::TcpListen { from, .. } = &tcp {
                assert!(from.allows(relay.other_host.addr) && !from.allows(relay.host.addr));
            }
        }
    }

    #[test]
    fn the_default_applies_to_cross_host_links_only_and_a_link_may_opt_out() {
        let text = "defaults:\n  cross_host_transport: TCP\n  udp_ip_by_vm: {100: 10.0.0.2, 103: 10.0.0.1}\nlinks:\n  - [100, 1, 103, 1]\n  - [100, 2, 103, 2, {transport: udp}]\n  - [100, 3, 102, 1]\n  - [101, 1, 102, 2]\n";
        let p = plan(text).unwrap();
        assert_eq!(p.tcp.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert!(p.links[1].crosses_hosts());
        assert!(p.warnings.iter().any(|w| w.contains("100:2-103:2")));
        assert!(!p.warnings.iter().any(|w| w.contains("100:1-103:1")));
    }

    #[test]
    fn refusals_name_the_place() {
        let err = plan("links:\n  - [100, 1, 102, 1, {transport: tcp}]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "m.yaml:2:34: links[0].transport: tcp carries a link between two hosts"
            ),
            "{err}"
        );
        let err = plan("links:\n  - [100, 1, 102, 1, {transport: sctp}]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.yaml:2:34: links[0].transport: unknown transport 'sctp'"),
            "{err}"
        );
        let err = plan("defaults:\n  cross_host_transport: [tcp]\nlinks: [[100, 1, 102, 1]]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.yaml:2:25: defaults.cross_host_transport: expected a string"),
            "{err}"
        );
    }

    #[test]
    fn the_json_plan_lists_the_relays_when_there_are_any() {
        let json: serde_json::Value =
            serde_json::from_str(&crate::plan::json::plan(&plan(TWO_HOSTS).unwrap())).unwrap();
        assert_eq!(
            json["relays"],
            serde_json::json!([
                {"link": "100:1-103:1", "host": "10.0.0.1", "listens": true,
                 "endpoints": ["udp://127.0.0.1:41001->127.0.0.1:41031", "tcp-listen://10.0.0.1:41031?from=10.0.0.2"]},
                {"link": "100:1-103:1", "host": "10.0.0.2", "listens": false,
                 "endpoints": ["udp://127.0.0.1:41031->127.0.0.1:41001", "tcp://10.0.0.1:41031"]},
            ])
        );
        let none = crate::plan::json::plan(&plan("links: [[100, 1, 102, 1]]\n").unwrap());
        assert!(!none.contains("\"relays\""), "{none}");
    }

    #[test]
    fn no_tcp_link_says_so() {
        let p = plan("links: [[100, 1, 102, 1]]\n").unwrap();
        assert!(render_commands(&p).contains("no link of this mapping is carried over TCP"));
        assert!(!render_systemd(&p).contains("[Service]"));
    }
}
