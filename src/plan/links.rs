//! Links and their endpoints: the intercept plan every command resolves `--link` against.
//!
//! Resolving a mapping into links needs no PVE state: addresses, ports and MACs depend on
//! the mapping alone.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::mac;
use super::mapping::{HostIp, LinkSpec, Mapping, NicRef, Transport};
use crate::direction::Direction;

/// One end of a link: a VM's NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub vm: u32,
    pub eth: u32,
    /// `be:24:99:00:64:01`.
    pub mac: String,
    /// What this NIC binds.
    pub local: SocketAddr,
    /// Where it sends.
    pub remote: SocketAddr,
}

/// A planned point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// `{vmA}:{ethA}-{vmB}:{ethB}`, e.g. `100:1-102:1`.
    pub name: String,
    /// `None` when the mapping's host_mtu is 0 or less (no host_mtu on the device).
    pub host_mtu: Option<u32>,
    pub a: Endpoint,
    pub b: Endpoint,
}

/// The names of a link and its two ends as every output shows them: printed lines, capture
/// interfaces (one per end), the measurements' summary and JSON report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNames {
    /// The link's name, e.g. `100:1-102:1`.
    pub link: String,
    /// End A, e.g. `vm100:eth1`.
    pub a: String,
    /// End B, e.g. `vm102:eth1`.
    pub b: String,
    /// More about the link for capture interface descriptions (addresses, MACs, MTU), e.g.
    /// `, A be:24:99:00:64:01 binds 127.0.0.1:41001, …`; empty when nothing more is known.
    pub detail: String,
}

impl LinkNames {
    /// The names of a planned link's ends (`vm100:eth1`) and the details of its capture
    /// interface descriptions (MACs, bound addresses, host_mtu).
    pub fn planned(link: &Link) -> LinkNames {
        let end = |e: &Endpoint| format!("vm{}:eth{}", e.vm, e.eth);
        let mtu = link
            .host_mtu
            .map_or(String::new(), |m| format!(", host_mtu {m}"));
        LinkNames {
            link: link.name.clone(),
            a: end(&link.a),
            b: end(&link.b),
            detail: format!(
                ", A {} binds {}, B {} binds {}{mtu}",
                link.a.mac, link.a.local, link.b.mac, link.b.local
            ),
        }
    }

    /// A link known only by its ends' bound addresses: `A-B`, each end named by its address.
    pub fn addresses(a: SocketAddr, b: SocketAddr) -> LinkNames {
        LinkNames {
            link: format!("{a}-{b}"),
            a: a.to_string(),
            b: b.to_string(),
            detail: String::new(),
        }
    }

    /// The sending and the receiving end of `direction`.
    pub fn ends(&self, direction: Direction) -> (&str, &str) {
        match direction {
            Direction::AToB => (&self.a, &self.b),
            Direction::BToA => (&self.b, &self.a),
        }
    }
}

/// Which end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

impl Side {
    /// `"a"` or `"b"`.
    pub fn name(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

impl Link {
    /// The endpoint on `side`.
    pub fn end(&self, side: Side) -> &Endpoint {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// True when the two ends bind different IP addresses (the link crosses hosts).
    pub fn crosses_hosts(&self) -> bool {
        self.a.local.ip() != self.b.local.ip()
    }
}

/// A link with what the `qm` renderer repeats verbatim: the IP texts as written.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub link: Link,
    pub ip_a: String,
    pub ip_b: String,
    /// The hosts of a link carried over TCP between relays; its [`Link`] then holds what
    /// each VM sees on its own host (a loopback tunnel to the relay there).
    pub tcp: Option<TcpHosts>,
}

/// The hosts of the two ends of a link with `transport: tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpHosts {
    pub a: HostIp,
    pub b: HostIp,
}

/// Every link of a mapping with its ports, in file order.
#[derive(Debug, Clone)]
pub(crate) struct Resolution {
    pub links: Vec<Resolved>,
    /// Every port given out, with its NIC and whether the mapping gave it explicitly.
    pub ports: BTreeMap<u16, (NicRef, bool)>,
}

/// Resolves addresses, ports and MACs of every link; refuses what cannot be placed.
pub(crate) fn resolve(mapping: &Mapping) -> crate::Result<Resolution> {
    let d = &mapping.defaults;
    let mut ports: BTreeMap<u16, (NicRef, bool)> = BTreeMap::new();
    let mut seen: HashMap<NicRef, usize> = HashMap::new();
    let mut macs: HashMap<String, NicRef> = HashMap::new();
    let mut links = Vec::with_capacity(mapping.links.len());
    for spec in &mapping.links {
        let refuse = |message: String| crate::Error::Input {
            file: mapping.file.clone(),
            line: (spec.at.line > 0).then_some(spec.at.line),
            column: (spec.at.line > 0).then_some(spec.at.column),
            field: spec.field(),
            message,
        };
        let mut ip_a = d.udp_ip_by_vm.get(&spec.a.vm).unwrap_or(&d.udp_default_ip);
        let mut ip_b = d.udp_ip_by_vm.get(&spec.b.vm).unwrap_or(&d.udp_default_ip);
        let host = ip_a.text.clone();
        let loopback = HostIp::loopback();
        if d.loopback_if_same_host
            && ip_a.text == ip_b.text
            && ip_a.text != "127.0.0.1"
            && ip_a.text != "::1"
        {
            ip_a = &loopback;
            ip_b = &loopback;
        }
        let mac_a = mac::mac(d.mac_prefix, spec.a);
        let mac_b = mac::mac(d.mac_prefix, spec.b);
        let port_a = place(mapping, spec, spec.a, spec.port_a, &mut ports).map_err(refuse)?;
        let port_b = place(mapping, spec, spec.b, spec.port_b, &mut ports).map_err(refuse)?;
        for (nic, mac) in [(spec.a, &mac_a), (spec.b, &mac_b)] {
            if let Some(first) = seen.insert(nic, spec.index) {
                return Err(refuse(format!(
                    "Duplicate interface index eth{} for VM {} in links (already in links[{first}])",
                    nic.eth, nic.vm
                )));
            }
            if let Some(other) = macs.insert(mac.clone(), nic) {
                return Err(refuse(format!(
                    "MAC {mac} of VM {} eth{} is also VM {} eth{}'s (a MAC holds 16 bits of the VMID and 8 of the eth index)",
                    nic.vm, nic.eth, other.vm, other.eth
                )));
            }
        }
        let host_mtu = u32::try_from(d.host_mtu).ok().filter(|m| *m > 0);
        let crosses = ip_a.addr != ip_b.addr;
        let transport = match spec.transport {
            Some((Transport::Tcp, at)) if !crosses => {
                return Err(crate::Error::Input {
                    file: mapping.file.clone(),
                    line: (at.line > 0).then_some(at.line),
                    column: (at.line > 0).then_some(at.column),
                    field: format!("{}.transport", spec.field()),
                    message: format!(
                        "tcp carries a link between two hosts, and both ends of this one are on {host}"
                    ),
                });
            }
            Some((given, _)) => given,
            None if crosses => d.cross_host_transport,
            None => Transport::Udp,
        };
        let tcp = (transport == Transport::Tcp).then(|| TcpHosts {
            a: ip_a.clone(),
            b: ip_b.clone(),
        });
        if tcp.is_some() {
            ip_a = &loopback;
            ip_b = &loopback;
        }
        let addr_a = SocketAddr::new(ip_a.addr, port_a);
        let addr_b = SocketAddr::new(ip_b.addr, port_b);
        links.push(Resolved {
            link: Link {
                name: format!("{}:{}-{}:{}", spec.a.vm, spec.a.eth, spec.b.vm, spec.b.eth),
                host_mtu,
                a: Endpoint {
                    vm: spec.a.vm,
                    eth: spec.a.eth,
                    mac: mac_a,
                    local: addr_a,
                    remote: addr_b,
                },
                b: Endpoint {
                    vm: spec.b.vm,
                    eth: spec.b.eth,
                    mac: mac_b,
                    local: addr_b,
                    remote: addr_a,
                },
            },
            ip_a: ip_a.text.clone(),
            ip_b: ip_b.text.clone(),
            tcp,
        });
    }
    Ok(Resolution { links, ports })
}

/// The port of one side: explicit, else from the scheme; refuses a port already given to a
/// different NIC.
fn place(
    mapping: &Mapping,
    spec: &LinkSpec,
    nic: NicRef,
    explicit: Option<u16>,
    ports: &mut BTreeMap<u16, (NicRef, bool)>,
) -> Result<u16, String> {
    let port = match explicit {
        Some(p) => p,
        None => mapping.defaults.port_scheme.port(nic)?,
    };
    match ports.get(&port) {
        Some((prev, _)) if *prev != nic => {
            return Err(format!(
                "Port collision {port} between VM{} eth{} and VM{} eth{} in {}",
                nic.vm,
                nic.eth,
                prev.vm,
                prev.eth,
                spec.field()
            ));
        }
        _ => {
            ports.insert(port, (nic, explicit.is_some()));
        }
    }
    Ok(port)
}

/// What a `--link` names: one link, or every link of a VM. Every command that takes links
/// of a mapping parses them here, so a link is named the same way everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Every link of a VM: `100` or `100:*`.
    Vm(u32),
    /// The link one end belongs to: `100:1` or `100:eth1`.
    End { vm: u32, eth: u32 },
    /// A link by its name, either end first: `100:1-102:1`.
    Link { a: (u32, u32), b: (u32, u32) },
}

impl Pattern {
    /// Parses `100`, `100:*`, `100:1`, `100:eth1` or `100:1-102:1`.
    pub fn parse(text: &str) -> crate::Result<Pattern> {
        let bad = || crate::Error::Argument {
            field: "link".into(),
            message: format!(
                "'{text}' is not a link pattern: expected a VM (100, 100:*), a link end \
                 (100:1, 100:eth1) or a link name (100:1-102:1)"
            ),
        };
        let trimmed = text.trim();
        if let Some((left, right)) = trimmed.split_once('-') {
            let a = parse_end(left, text).map_err(|_| bad())?;
            let b = parse_end(right, text).map_err(|_| bad())?;
            return Ok(Pattern::Link { a, b });
        }
        match trimmed.split_once(':') {
            Some((vm, "*")) => number(vm).map(Pattern::Vm).ok_or_else(bad),
            Some(_) => parse_end(trimmed, text)
                .map(|(vm, eth)| Pattern::End { vm, eth })
                .map_err(|_| bad()),
            None => number(trimmed).map(Pattern::Vm).ok_or_else(bad),
        }
    }

    /// Whether `link` is one the pattern names.
    pub fn matches(&self, link: &Link) -> bool {
        let ends = ((link.a.vm, link.a.eth), (link.b.vm, link.b.eth));
        match *self {
            Pattern::Vm(vm) => link.a.vm == vm || link.b.vm == vm,
            Pattern::End { vm, eth } => ends.0 == (vm, eth) || ends.1 == (vm, eth),
            Pattern::Link { a, b } => ends == (a, b) || ends == (b, a),
        }
    }
}

/// The links `patterns` name (see [`Pattern`]), each once and in mapping order: their
/// union. A pattern that does not parse or names no link of the mapping is an error naming
/// it.
pub fn select<'a, S: AsRef<str>>(
    links: &'a [Link],
    patterns: &[S],
) -> crate::Result<Vec<&'a Link>> {
    let mut chosen = vec![false; links.len()];
    for text in patterns {
        let text = text.as_ref();
        let pattern = Pattern::parse(text)?;
        let mut any = false;
        for (link, chosen) in links.iter().zip(&mut chosen) {
            if pattern.matches(link) {
                *chosen = true;
                any = true;
            }
        }
        if !any {
            return Err(not_found(links, text));
        }
    }
    Ok(links
        .iter()
        .zip(chosen)
        .filter_map(|(link, chosen)| chosen.then_some(link))
        .collect())
}

/// Finds the one link `spec` names: by its name (`100:1-102:1`, either end first) or by one
/// end (`100:2`, `100:eth2`); a VM pattern (`100`, `100:*`) is refused, it may name several.
pub fn find_link<'a>(links: &'a [Link], spec: &str) -> crate::Result<&'a Link> {
    let pattern = Pattern::parse(spec)?;
    if let Pattern::Vm(vm) = pattern {
        return Err(crate::Error::Argument {
            field: "link".into(),
            message: format!(
                "'{spec}' names every link of VM {vm}; name one link (100:1, 100:1-102:1)"
            ),
        });
    }
    links
        .iter()
        .find(|l| pattern.matches(l))
        .ok_or_else(|| not_found(links, spec))
}

/// Finds the link one end (`VM:ETH`, e.g. `100:2` or `100:eth2`) belongs to, and which side
/// that end is.
pub fn find_end<'a>(links: &'a [Link], spec: &str) -> crate::Result<(&'a Link, Side)> {
    let (vm, eth) = parse_end(spec, spec)?;
    links
        .iter()
        .find_map(|l| {
            [Side::A, Side::B]
                .into_iter()
                .find(|s| (l.end(*s).vm, l.end(*s).eth) == (vm, eth))
                .map(|s| (l, s))
        })
        .ok_or_else(|| not_found(links, spec))
}

/// A whole number in decimal digits only (no sign, no blanks).
fn number(s: &str) -> Option<u32> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse::<u32>().ok())
        .flatten()
}

fn parse_end(text: &str, spec: &str) -> crate::Result<(u32, u32)> {
    let bad = || crate::Error::Argument {
        field: "link".into(),
        message: format!(
            "'{spec}' is neither a link name (100:1-102:1) nor a link end (100:1, 100:eth1)"
        ),
    };
    let (vm, eth) = text.trim().split_once(':').ok_or_else(bad)?;
    let eth = match eth.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("eth") => &eth[3..],
        _ => eth,
    };
    Ok((number(vm).ok_or_else(bad)?, number(eth).ok_or_else(bad)?))
}

fn not_found(links: &[Link], spec: &str) -> crate::Error {
    let mut names: Vec<&str> = links.iter().take(8).map(|l| l.name.as_str()).collect();
    if links.len() > names.len() {
        names.push("…");
    }
    crate::Error::Argument {
        field: "link".into(),
        message: format!(
            "no link '{spec}' in the mapping (links: {})",
            names.join(", ")
        ),
    }
}

/// What a frame of host_mtu bytes of payload grows by on the path: its Ethernet header, then
/// UDP and IP headers (14 + 8 + 20 = 42 over IPv4, 14 + 8 + 40 = 62 over IPv6).
pub(crate) fn overhead(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 42,
        IpAddr::V6(_) => 62,
    }
}

/// A planned link for the tests of the modules that take one: 100:1-102:1 on loopback with
/// the legacy ports and MACs, host_mtu 9000.
#[cfg(test)]
pub mod testing {
    use super::{Endpoint, Link};

    pub fn link() -> Link {
        let end = |vm, mac: &str, local: &str, remote: &str| Endpoint {
            vm,
            eth: 1,
            mac: mac.into(),
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        };
        Link {
            name: "100:1-102:1".into(),
            host_mtu: Some(9000),
            a: end(
                100,
                "be:24:99:00:64:01",
                "127.0.0.1:41001",
                "127.0.0.1:41021",
            ),
            b: end(
                102,
                "be:24:99:00:66:01",
                "127.0.0.1:41021",
                "127.0.0.1:41001",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn links(text: &str) -> crate::Result<Vec<Link>> {
        let mapping = Mapping::parse(Path::new("m.yaml"), text)?;
        Ok(resolve(&mapping)?
            .links
            .into_iter()
            .map(|r| r.link)
            .collect())
    }

    #[test]
    fn seed_readme_two_links() {
        let l = links("links:\n  - [100, 1, 102, 1]\n  - [101, 1, 102, 2]\n").unwrap();
        assert_eq!(l[0].name, "100:1-102:1");
        assert_eq!(l[0].a.mac, "be:24:99:00:64:01");
        assert_eq!(l[0].a.local, "127.0.0.1:41001".parse().unwrap());
        assert_eq!(l[0].a.remote, "127.0.0.1:41021".parse().unwrap());
        assert_eq!(l[0].b.local, l[0].a.remote);
        assert_eq!(l[0].b.remote, l[0].a.local);
        assert_eq!(l[0].host_mtu, Some(9300));
        assert_eq!(l[1].b.local.port(), 41022);
    }

    #[test]
    fn lookups() {
        let l = links("links:\n  - [100, 1, 102, 1]\n  - [100, 2, 103, eth4]\n").unwrap();
        assert_eq!(find_link(&l, "100:2-103:4").unwrap().name, "100:2-103:4");
        assert_eq!(
            find_link(&l, "103:eth4-100:eth2").unwrap().name,
            "100:2-103:4"
        );
        assert_eq!(find_link(&l, "102:1").unwrap().name, "100:1-102:1");
        let (link, side) = find_end(&l, "103:ETH4").unwrap();
        assert_eq!((link.name.as_str(), side), ("100:2-103:4", Side::B));
        assert_eq!(link.end(side).mac, "be:24:99:00:67:04");
        assert!(find_end(&l, "100:1-102:1").is_err());
        for bad in ["100:3", "100", "x:1", "100:1-102:2", "100:+1", ""] {
            let err = find_link(&l, bad).unwrap_err();
            assert!(err.is_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn patterns_select_the_union_in_mapping_order() {
        let l = links(
            "links:\n  - [100, 1, 102, 1]\n  - [101, 1, 102, 2]\n  - [100, 2, 103, 1]\n  - [104, 1, 105, 1]\n",
        )
        .unwrap();
        let names = |patterns: &[&str]| -> Vec<String> {
            select(&l, patterns)
                .unwrap()
                .into_iter()
                .map(|link| link.name.clone())
                .collect()
        };
        let vm100 = ["100:1-102:1", "100:2-103:1"];
        assert_eq!(names(&["100"]), vm100);
        assert_eq!(names(&["100:*"]), vm100);
        assert_eq!(names(&[" 100:* "]), vm100);
        assert_eq!(names(&["102"]), ["100:1-102:1", "101:1-102:2"]);
        assert_eq!(names(&["100:eth2"]), ["100:2-103:1"]);
        assert_eq!(names(&["103:1"]), ["100:2-103:1"]);
        assert_eq!(names(&["102:2-101:1"]), ["101:1-102:2"]);
        // A union: each link once, in the mapping's order, whatever the patterns' order.
        assert_eq!(
            names(&["105:1", "100", "100:1", "102:1-100:1"]),
            ["100:1-102:1", "100:2-103:1", "104:1-105:1"]
        );
        assert_eq!(Pattern::parse("100:*").unwrap(), Pattern::Vm(100));
        assert_eq!(
            Pattern::parse("100:eth1").unwrap(),
            Pattern::End { vm: 100, eth: 1 }
        );
    }

    #[test]
    fn a_pattern_that_fails_is_named() {
        let l = links("links:\n  - [100, 1, 102, 1]\n").unwrap();
        for bad in [
            "x",
            "100:",
            "100:*-102:1",
            "100:1-",
            "*",
            "-1",
            "100:eth",
            "100:1:2",
        ] {
            let err = select(&l, &["100", bad]).unwrap_err();
            assert!(err.is_input(), "{bad}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("link: '{bad}' is not a link pattern")),
                "{bad}: {err}"
            );
        }
        for unknown in ["101", "101:*", "100:2", "100:1-103:1"] {
            let err = select(&l, &["100:1", unknown]).unwrap_err();
            assert!(err.is_input(), "{unknown}: {err}");
            assert_eq!(
                err.to_string(),
                format!("link: no link '{unknown}' in the mapping (links: 100:1-102:1)")
            );
        }
        let err = find_link(&l, "100").unwrap_err();
        assert!(
            err.to_string().contains("names every link of VM 100"),
            "{err}"
        );
    }

    #[test]
    fn refusals() {
        let text = "links:\n  - [100, 1, 102, 1]\n  - [102, 1, 103, 1]\n";
        let err = links(text).unwrap_err().to_string();
        assert!(
            err.starts_with("m.yaml:3:5: links[1]: Duplicate interface index eth1 for VM 102"),
            "{err}"
        );
        let err = links("links:\n  - [100, 1, 102, 1, {port_b: 41001}]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Port collision 41001"), "{err}");
        let err = links("links: [[1000, 1, 102, 1]]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("<=999"), "{err}");
        let text =
            "defaults: {port_scheme: stride, port_stride: 300}\nlinks: [[100, 1, 100, 257]]\n";
        assert!(
            links(text)
                .unwrap_err()
                .to_string()
                .contains("MAC be:24:99:00:64:01")
        );
    }

    #[test]
    fn loopback_substitution_and_host_mtu() {
        let text = "defaults:\n  host_mtu: 0\n  udp_ip_by_vm: {100: 10.0.0.1, 102: 10.0.0.1, 103: 10.0.0.2}\nlinks: [[100, 1, 102, 1], [100, 2, 103, 1]]\n";
        let l = links(text).unwrap();
        assert_eq!(l[0].a.local.ip().to_string(), "127.0.0.1");
        assert!(!l[0].crosses_hosts());
        assert_eq!(l[1].a.local, "10.0.0.1:41002".parse().unwrap());
        assert_eq!(l[1].a.remote, "10.0.0.2:41031".parse().unwrap());
        assert!(l[1].crosses_hosts());
        assert_eq!(l[0].host_mtu, None);
    }
}
