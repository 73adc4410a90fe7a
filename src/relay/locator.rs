//! Relay endpoints written as locators, in the style vde_plug users know
//! (`udp://5000->127.0.0.1:6000`, `tcp://host:7000`, `tap://tap0?bridge=br0`).
//!
//! [`Locator`] is the parsed form of every endpoint `linkscope relay` accepts; it only
//! checks syntax and ranges. Opening it (binding, connecting, creating a device) is the
//! endpoint's job. A malformed locator is an [`Error::Argument`] naming the locator and the
//! part that is wrong (`PEER_PORT`, `vni`, …), so the command exits with status 2.
//!
//! | locator | meaning |
//! |---|---|
//! | `udp://[BIND_IP:]BIND_PORT->PEER_IP:PEER_PORT` | a QEMU UDP tunnel end (`-netdev socket,udp=`, `dgram`) |
//! | `tcp://HOST:PORT` | connect (and reconnect) to a stream listener in QEMU's framing |
//! | `tcp-listen://IP:PORT[?from=NET,…]` | accept a stream client (only from the addresses NET, IP or IP/PREFIX, with `from`); a new connection replaces the old one |
//! | `unix://PATH`, `unix-listen://PATH` | the same over Unix stream sockets |
//! | `tap://NAME[?bridge=BR]` | a TAP device, created if missing, optionally enslaved to BR |
//! | `vxlan://REMOTE_IP[:PORT]?vni=N[&local=IP[:PORT]]` | RFC 7348 VXLAN (default port 4789) |
//! | `mcast://GROUP:PORT[?local=IP]` | a QEMU multicast tunnel (`-netdev socket,mcast=`) |
//! | `exec://COMMAND` | a child process (`sh -c COMMAND`), frames on its stdin/stdout |
//! | `stdio` | our own stdin/stdout |
//!
//! IPv6 addresses are written in brackets wherever a port follows (`[::1]:5000`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// The UDP port of VXLAN (IANA, RFC 7348 §5).
pub const VXLAN_PORT: u16 = 4789;

/// The largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// The longest interface name Linux accepts (IFNAMSIZ less the terminating NUL).
pub const IFNAME_MAX: usize = 15;

/// The longest Unix socket path Linux accepts (`sun_path` less the terminating NUL).
pub const UNIX_PATH_MAX: usize = 107;

/// One endpoint of a relay, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// `udp://[BIND_IP:]BIND_PORT->PEER_IP:PEER_PORT`: binds `bind`, sends to and accepts
    /// only from `peer`. Without BIND_IP, the unspecified address of the peer's family.
    Udp { bind: SocketAddr, peer: SocketAddr },
    /// `tcp://HOST:PORT`: connects to a stream listener, reconnecting while the relay runs.
    /// HOST is an IP address or a name (resolved at each connection attempt).
    Tcp { host: String, port: u16 },
    /// `tcp-listen://IP:PORT[?from=NET,…]`: listens; the newest connection is the peer. With
    /// `from`, a connection from any other address is closed at once and the peer stays.
    TcpListen { listen: SocketAddr, from: Allowed },
    /// `unix://PATH`: connects to a Unix stream listener, reconnecting while the relay runs.
    Unix { path: PathBuf },
    /// `unix-listen://PATH`: listens on a Unix stream socket; the newest connection is the
    /// peer.
    UnixListen { path: PathBuf },
    /// `tap://NAME[?bridge=BR]`: a TAP device, created if missing and brought up; with
    /// `bridge`, enslaved to that Linux bridge.
    Tap {
        name: String,
        bridge: Option<String>,
    },
    /// `vxlan://REMOTE_IP[:PORT]?vni=N[&local=IP[:PORT]]`: VXLAN to `remote` (port 4789 by
    /// default) with network identifier `vni`; `local` and `local_port` choose the bound
    /// address (`local_port` is only ever given together with `local`).
    Vxlan {
        remote: SocketAddr,
        vni: u32,
        local: Option<IpAddr>,
        local_port: Option<u16>,
    },
    /// `mcast://GROUP:PORT[?local=IP]`: a QEMU multicast tunnel on `group`, joined on the
    /// interface that has address `local` (default: the kernel's choice).
    Mcast {
        group: SocketAddr,
        local: Option<IpAddr>,
    },
    /// `exec://COMMAND`: a child process run as `sh -c COMMAND`, frames in the stream
    /// framing on its standard input and output.
    Exec { command: String },
    /// `stdio`: frames in the stream framing on our own standard input and output.
    Stdio,
}

impl Locator {
    /// The scheme, as written before `://` (`stdio` for [`Locator::Stdio`]).
    pub fn scheme(&self) -> &'static str {
        match self {
            Locator::Udp { .. } => "udp",
            Locator::Tcp { .. } => "tcp",
            Locator::TcpListen { .. } => "tcp-listen",
            Locator::Unix { .. } => "unix",
            Locator::UnixListen { .. } => "unix-listen",
            Locator::Tap { .. } => "tap",
            Locator::Vxlan { .. } => "vxlan",
            Locator::Mcast { .. } => "mcast",
            Locator::Exec { .. } => "exec",
            Locator::Stdio => "stdio",
        }
    }

    /// Parses one locator; see the [module documentation](self) for the forms.
    pub fn parse(text: &str) -> crate::Result<Locator> {
        let bad = |part: &str, message: String| Error::Argument {
            field: format!("endpoint `{text}`"),
            message: format!("{part}: {message}"),
        };
        if text == "stdio" {
            return Ok(Locator::Stdio);
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad(
                "scheme",
                "expected SCHEME://… (udp, tcp, tcp-listen, unix, unix-listen, tap, vxlan, \
                 mcast, exec) or stdio"
                    .into(),
            ));
        };
        let parsed = match scheme {
            "udp" => udp(rest),
            "tcp" => tcp(rest),
            "tcp-listen" => tcp_listen(rest),
            "unix" => unix_path(rest).map(|path| Locator::Unix { path }),
            "unix-listen" => unix_path(rest).map(|path| Locator::UnixListen { path }),
            "tap" => tap(rest),
            "vxlan" => vxlan(rest),
            "mcast" => mcast(rest),
            "exec" => exec(rest),
            _ => Err(Bad::new(
                "scheme",
                format!(
                    "unknown scheme `{scheme}` (udp, tcp, tcp-listen, unix, unix-listen, tap, \
                     vxlan, mcast, exec, stdio)"
                ),
            )),
        };
        parsed.map_err(|b| bad(&b.part, b.message))
    }
}

impl FromStr for Locator {
    type Err = Error;

    fn from_str(text: &str) -> crate::Result<Locator> {
        Locator::parse(text)
    }
}

/// Writes the locator back in the form [`Locator::parse`] reads (a canonical form: a
/// defaulted BIND_IP or VXLAN port is written out).
impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme();
        match self {
            Locator::Udp { bind, peer } => write!(f, "{scheme}://{bind}->{peer}"),
            Locator::Tcp { host, port } => match host.parse::<Ipv6Addr>() {
                Ok(_) => write!(f, "{scheme}://[{host}]:{port}"),
                Err(_) => write!(f, "{scheme}://{host}:{port}"),
            },
            Locator::TcpListen { listen, from } if from.is_anyone() => {
                write!(f, "{scheme}://{listen}")
            }
            Locator::TcpListen { listen, from } => write!(f, "{scheme}://{listen}?from={from}"),
            Locator::Unix { path } | Locator::UnixListen { path } => {
                write!(f, "{scheme}://{}", path.display())
            }
            Locator::Tap { name, bridge } => {
                write!(f, "{scheme}://{name}")?;
                match bridge {
                    Some(br) => write!(f, "?bridge={br}"),
                    None => Ok(()),
                }
            }
            Locator::Vxlan {
                remote,
                vni,
                local,
                local_port,
            } => {
                write!(f, "{scheme}://{remote}?vni={vni}")?;
                match (local, local_port) {
                    (Some(ip), Some(port)) => write!(f, "&local={}", SocketAddr::new(*ip, *port)),
                    (Some(ip), None) => write!(f, "&local={}", bracketed(*ip)),
                    _ => Ok(()),
                }
            }
            Locator::Mcast { group, local } => {
                write!(f, "{scheme}://{group}")?;
                match local {
                    Some(ip) => write!(f, "?local={ip}"),
                    None => Ok(()),
                }
            }
            Locator::Exec { command } => write!(f, "{scheme}://{command}"),
            Locator::Stdio => f.write_str(scheme),
        }
    }
}

fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// What is wrong, and in which part of the locator.
#[derive(Debug)]
struct Bad {
    part: String,
    message: String,
}

impl Bad {
    fn new(part: &str, message: impl Into<String>) -> Bad {
        Bad {
            part: part.to_owned(),
            message: message.into(),
        }
    }
}

type Parsed<T> = Result<T, Bad>;

/// Splits `HOST:PORT` (HOST possibly `[v6]`) into the host as written (without brackets)
/// and the port text. `host_part`/`port_part` name the parts in errors.
fn split_host_port<'a>(
    text: &'a str,
    host_part: &str,
    port_part: &str,
) -> Parsed<(&'a str, &'a str)> {
    if let Some(inner) = text.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(Bad::new(host_part, format!("`{text}` has `[` without `]`")));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(Bad::new(
                port_part,
                format!("missing after `[{host}]` (write [IP]:PORT)"),
            ));
        };
        return Ok((host, port));
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(Bad::new(
            host_part,
            format!("`{host}`: write an IPv6 address in brackets, [IP]:PORT"),
        )),
        Some((host, port)) => Ok((host, port)),
        None => Err(Bad::new(
            port_part,
            format!("missing in `{text}` (write {host_part}:{port_part})"),
        )),
    }
}

fn port(text: &str, part: &str) -> Parsed<u16> {
    match text.parse::<u16>() {
        Ok(0) => Err(Bad::new(
            part,
            "0 is not a port here (give the port to use)",
        )),
        Ok(p) if !text.starts_with('+') => Ok(p),
        _ => Err(Bad::new(
            part,
            format!("`{text}` is not a port number (1-65535)"),
        )),
    }
}

fn ip(text: &str, part: &str) -> Parsed<IpAddr> {
    text.parse::<IpAddr>()
        .map_err(|_| Bad::new(part, format!("`{text}` is not an IP address")))
}

fn socket_addr(text: &str, host_part: &str, port_part: &str) -> Parsed<SocketAddr> {
    let (host, p) = split_host_port(text, host_part, port_part)?;
    Ok(SocketAddr::new(ip(host, host_part)?, port(p, port_part)?))
}

fn udp(rest: &str) -> Parsed<Locator> {
    let Some((bind, peer)) = rest.split_once("->") else {
        return Err(Bad::new(
            "->",
            "missing: write udp://[BIND_IP:]BIND_PORT->PEER_IP:PEER_PORT",
        ));
    };
    let peer = socket_addr(peer, "PEER_IP", "PEER_PORT")?;
    let bind = if bind.contains(':') {
        socket_addr(bind, "BIND_IP", "BIND_PORT")?
    } else {
        let unspecified = match peer {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        SocketAddr::new(unspecified, port(bind, "BIND_PORT")?)
    };
    if bind.is_ipv4() != peer.is_ipv4() {
        return Err(Bad::new(
            "BIND_IP",
            format!(
                "{} and the peer {} are of different address families",
                bind.ip(),
                peer.ip()
            ),
        ));
    }
    if peer.ip().is_unspecified() || peer.ip().is_multicast() {
        return Err(Bad::new(
            "PEER_IP",
            format!(
                "{} cannot be a tunnel peer (use mcast:// for a group)",
                peer.ip()
            ),
        ));
    }
    Ok(Locator::Udp { bind, peer })
}

fn tcp(rest: &str) -> Parsed<Locator> {
    let (host, p) = split_host_port(rest, "HOST", "PORT")?;
    let port = port(p, "PORT")?;
    if host.is_empty() {
        return Err(Bad::new("HOST", "empty (write tcp://HOST:PORT)"));
    }
    if rest.starts_with('[') {
        host.parse::<Ipv6Addr>()
            .map_err(|_| Bad::new("HOST", format!("`{host}` is not an IPv6 address")))?;
    } else if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(Bad::new(
            "HOST",
            format!("`{host}` is neither an IP address nor a host name"),
        ));
    }
    Ok(Locator::Tcp {
        host: host.to_owned(),
        port,
    })
}

fn tcp_listen(rest: &str) -> Parsed<Locator> {
    let (body, pairs) = query(rest, &["from"])?;
    let listen = socket_addr(body, "IP", "PORT")?;
    let from = match value(&pairs, "from") {
        Some(list) => Allowed::parse(list)?,
        None => Allowed::default(),
    };
    Ok(Locator::TcpListen { listen, from })
}

/// The addresses a listener accepts connections from: networks written `IP` or
/// `IP/PREFIX`; none written, anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed(Vec<(IpAddr, u8)>);

impl Allowed {
    fn parse(list: &str) -> Parsed<Allowed> {
        let mut nets = Vec::new();
        for item in list.split(',') {
            let (ip, prefix) = match item.split_once('/') {
                Some((ip, prefix)) => (ip, Some(prefix)),
                None => (item, None),
            };
            let ip: IpAddr = ip.parse().map_err(|_| {
                Bad::new(
                    "from",
                    format!("`{item}` is not an IP address or IP/PREFIX"),
                )
            })?;
            let ip = ip.to_canonical();
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => bits,
                Some(p) => p.parse::<u8>().ok().filter(|&p| p <= bits).ok_or_else(|| {
                    Bad::new("from", format!("`{item}`: PREFIX must be 0 to {bits}"))
                })?,
            };
            nets.push((ip, prefix));
        }
        Ok(Allowed(nets))
    }

    /// True when no `from` was given.
    pub fn is_anyone(&self) -> bool {
        self.0.is_empty()
    }

    /// True when a connection from `ip` may be the peer (an IPv4-mapped IPv6 address counts
    /// as the IPv4 address).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.is_anyone()
            || self.0.iter().any(|&(net, prefix)| match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            })
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (ip, prefix)) in self.0.iter().enumerate() {
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            let sep = if i == 0 { "" } else { "," };
            if *prefix == bits {
                write!(f, "{sep}{ip}")?;
            } else {
                write!(f, "{sep}{ip}/{prefix}")?;
            }
        }
        Ok(())
    }
}

fn unix_path(rest: &str) -> Parsed<PathBuf> {
    if rest.is_empty() {
        return Err(Bad::new("PATH", "empty"));
    }
    if rest.contains('\0') {
        return Err(Bad::new("PATH", "contains a NUL byte"));
    }
    if rest.len() > UNIX_PATH_MAX {
        return Err(Bad::new(
            "PATH",
            format!(
                "{} bytes, longer than the {UNIX_PATH_MAX} a Unix socket path may have",
                rest.len()
            ),
        ));
    }
    Ok(PathBuf::from(rest))
}

/// Splits `BODY?key=value&key=value`, checking each key against `allowed` and refusing
/// repeats.
fn query<'a>(rest: &'a str, allowed: &[&str]) -> Parsed<(&'a str, Vec<(&'a str, &'a str)>)> {
    let Some((body, q)) = rest.split_once('?') else {
        return Ok((rest, Vec::new()));
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for item in q.split('&') {
        let Some((key, value)) = item.split_once('=') else {
            return Err(Bad::new(item, "expected KEY=VALUE"));
        };
        if !allowed.contains(&key) {
            return Err(Bad::new(
                key,
                format!("unknown option (known: {})", allowed.join(", ")),
            ));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(Bad::new(key, "given twice"));
        }
        if value.is_empty() {
            return Err(Bad::new(key, "empty value"));
        }
        pairs.push((key, value));
    }
    Ok((body, pairs))
}

fn value<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn ifname(text: &str, part: &str) -> Parsed<String> {
    if text.is_empty() {
        return Err(Bad::new(part, "empty interface name"));
    }
    if text.len() > IFNAME_MAX {
        return Err(Bad::new(
            part,
            format!("`{text}` is longer than the {IFNAME_MAX} bytes an interface name may have"),
        ));
    }
    if text == "."
        || text == ".."
        || text
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(Bad::new(
            part,
            format!("`{text}` is not a valid interface name (no `/`, `:` or spaces)"),
        ));
    }
    Ok(text.to_owned())
}

fn tap(rest: &str) -> Parsed<Locator> {
    let (name, pairs) = query(rest, &["bridge"])?;
    Ok(Locator::Tap {
        name: ifname(name, "NAME")?,
        bridge: value(&pairs, "bridge")
            .map(|b| ifname(b, "bridge"))
            .transpose()?,
    })
}

fn vxlan(rest: &str) -> Parsed<Locator> {
    let (remote, pairs) = query(rest, &["vni", "local"])?;
    let remote = if let Some(inner) = remote.strip_prefix('[').filter(|_| !remote.contains("]:")) {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(Bad::new(
                "REMOTE_IP",
                format!("`{remote}` has `[` without `]`"),
            ));
        };
        SocketAddr::new(ip(inner, "REMOTE_IP")?, VXLAN_PORT)
    } else if remote.contains(':') {
        socket_addr(remote, "REMOTE_IP", "PORT")?
    } else {
        SocketAddr::new(ip(remote, "REMOTE_IP")?, VXLAN_PORT)
    };
    if remote.ip().is_unspecified() {
        return Err(Bad::new(
            "REMOTE_IP",
            "the unspecified address cannot be a remote",
        ));
    }
    let Some(vni) = value(&pairs, "vni") else {
        return Err(Bad::new("vni", "missing: write ?vni=N (0-16777215)"));
    };
    let vni = match vni.parse::<u32>() {
        Ok(n) if n <= VNI_MAX && !vni.starts_with('+') => n,
        _ => {
            return Err(Bad::new(
                "vni",
                format!("`{vni}` is not a VXLAN network identifier (0-{VNI_MAX})"),
            ));
        }
    };
    let (local, local_port) = match value(&pairs, "local") {
        None => (None, None),
        Some(text) if text.starts_with('[') && text.ends_with(']') => {
            (Some(ip(&text[1..text.len() - 1], "local")?), None)
        }
        Some(text) if text.starts_with('[') || text.matches(':').count() == 1 => {
            let addr = socket_addr(text, "local", "local PORT")?;
            (Some(addr.ip()), Some(addr.port()))
        }
        Some(text) => (Some(ip(text, "local")?), None),
    };
    if local.is_some_and(|l| l.is_ipv4() != remote.is_ipv4()) {
        return Err(Bad::new(
            "local",
            "of a different address family than REMOTE_IP",
        ));
    }
    Ok(Locator::Vxlan {
        remote,
        vni,
        local,
        local_port,
    })
}

fn mcast(rest: &str) -> Parsed<Locator> {
    let (group, pairs) = query(rest, &["local"])?;
    let group = socket_addr(group, "GROUP", "PORT")?;
    if !group.ip().is_multicast() {
        return Err(Bad::new(
            "GROUP",
            format!("{} is not a multicast address", group.ip()),
        ));
    }
    let local = value(&pairs, "local").map(|l| ip(l, "local")).transpose()?;
    if local.is_some_and(|l| l.is_ipv4() != group.is_ipv4()) {
        return Err(Bad::new(
            "local",
            "of a different address family than GROUP",
        ));
    }
    Ok(Locator::Mcast { group, local })
}

fn exec(rest: &str) -> Parsed<Locator> {
    if rest.trim().is_empty() {
        return Err(Bad::new("COMMAND", "empty"));
    }
    if rest.contains('\0') {
        return Err(Bad::new("COMMAND", "contains a NUL byte"));
    }
    Ok(Locator::Exec {
        command: rest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Locator {
        Locator::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The error's text, which must name `part`.
    fn err(text: &str, part: &str) -> String {
        let e = Locator::parse(text).expect_err(text);
        let msg = e.to_string();
        assert!(e.is_input(), "{msg}");
        assert!(msg.contains(&format!("`{text}`")), "{msg}");
        assert!(
            msg.contains(&format!("{part}: ")),
            "{text}: `{msg}` does not name {part}"
        );
        msg
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(
            ok("udp://5000->127.0.0.1:6000"),
            Locator::Udp {
                bind: "0.0.0.0:5000".parse().unwrap(),
                peer: "127.0.0.1:6000".parse().unwrap()
            }
        );
        assert_eq!(
            ok("udp://127.0.0.2:5000->127.0.0.1:6000"),
            Locator::Udp {
                bind: "127.0.0.2:5000".parse().unwrap(),
                peer: "127.0.0.1:6000".parse().unwrap()
            }
        );
        assert_eq!(
            ok("udp://[::1]:5000->[::1]:6000"),
            Locator::Udp {
                bind: "[::1]:5000".parse().unwrap(),
                peer: "[::1]:6000".parse().unwrap()
            }
        );
        assert_eq!(
            ok("udp://5000->[::1]:6000"),
            Locator::Udp {
                bind: "[::]:5000".parse().unwrap(),
                peer: "[::1]:6000".parse().unwrap()
            }
        );
        assert_eq!(
            ok("tcp://host-a.example:7000"),
            Locator::Tcp {
                host: "host-a.example".into(),
                port: 7000
            }
        );
        assert_eq!(
            ok("tcp://[fe80::1]:7000"),
            Locator::Tcp {
                host: "fe80::1".into(),
                port: 7000
            }
        );
        assert_eq!(
            ok("tcp-listen://0.0.0.0:7000"),
            Locator::TcpListen {
                listen: "0.0.0.0:7000".parse().unwrap(),
                from: Allowed::default(),
            }
        );
        let Locator::TcpListen { from, .. } =
            ok("tcp-listen://0.0.0.0:7000?from=10.0.0.2,192.168.8.0/22,fd00::/8")
        else {
            panic!("a tcp-listen locator");
        };
        assert_eq!(from.to_string(), "10.0.0.2,192.168.8.0/22,fd00::/8");
        assert!(from.allows("10.0.0.2".parse().unwrap()));
        assert!(!from.allows("10.0.0.3".parse().unwrap()));
        assert!(from.allows("192.168.11.255".parse().unwrap()));
        assert!(!from.allows("192.168.12.0".parse().unwrap()));
        assert!(
            from.allows("::ffff:10.0.0.2".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(from.allows("fd12::1".parse().unwrap()));
        assert!(!from.allows("fe80::1".parse().unwrap()));
        let Locator::TcpListen { from, .. } = ok("tcp-listen://[::]:7000?from=0.0.0.0/0") else {
            panic!("a tcp-listen locator");
        };
        assert!(from.allows("203.0.113.9".parse().unwrap()));
        assert!(
            !from.allows("2001:db8::1".parse().unwrap()),
            "an IPv4 net allows no IPv6"
        );
        assert_eq!(
            ok("unix:///run/vm100.sock"),
            Locator::Unix {
                path: "/run/vm100.sock".into()
            }
        );
        assert_eq!(
            ok("unix-listen://relative.sock"),
            Locator::UnixListen {
                path: "relative.sock".into()
            }
        );
        assert_eq!(
            ok("tap://tap0"),
            Locator::Tap {
                name: "tap0".into(),
                bridge: None
            }
        );
        assert_eq!(
            ok("tap://tap0?bridge=vmbr0"),
            Locator::Tap {
                name: "tap0".into(),
                bridge: Some("vmbr0".into())
            }
        );
        assert_eq!(
            ok("vxlan://10.0.0.2?vni=42"),
            Locator::Vxlan {
                remote: "10.0.0.2:4789".parse().unwrap(),
                vni: 42,
                local: None,
                local_port: None
            }
        );
        assert_eq!(
            ok("vxlan://10.0.0.2:8472?vni=16777215&local=10.0.0.1:8472"),
            Locator::Vxlan {
                remote: "10.0.0.2:8472".parse().unwrap(),
                vni: VNI_MAX,
                local: Some("10.0.0.1".parse().unwrap()),
                local_port: Some(8472)
            }
        );
        assert_eq!(
            ok("vxlan://[fd00::2]?local=fd00::1&vni=7"),
            Locator::Vxlan {
                remote: "[fd00::2]:4789".parse().unwrap(),
                vni: 7,
                local: Some("fd00::1".parse().unwrap()),
                local_port: None
            }
        );
        assert_eq!(
            ok("mcast://230.0.0.1:1234?local=127.0.0.1"),
            Locator::Mcast {
                group: "230.0.0.1:1234".parse().unwrap(),
                local: Some("127.0.0.1".parse().unwrap())
            }
        );
        assert_eq!(
            ok("exec://ssh host-b linkscope relay stdio udp://5000->127.0.0.1:6000"),
            Locator::Exec {
                command: "ssh host-b linkscope relay stdio udp://5000->127.0.0.1:6000".into()
            }
        );
        assert_eq!(ok("stdio"), Locator::Stdio);
    }

    #[test]
    fn display_reads_back() {
        for text in [
            "udp://5000->127.0.0.1:6000",
            "udp://[::1]:5000->[::1]:6000",
            "tcp://host-a:7000",
            "tcp://[::1]:7000",
            "tcp-listen://127.0.0.1:7000",
            "tcp-listen://0.0.0.0:7000?from=10.0.0.2,10.1.0.0/16",
            "unix:///tmp/a.sock",
            "unix-listen://b.sock",
            "tap://tap0?bridge=br0",
            "tap://tap0",
            "vxlan://10.0.0.2?vni=1&local=10.0.0.1",
            "vxlan://[fd00::2]:9?vni=1&local=[fd00::1]:9",
            "vxlan://[fd00::2]?vni=1&local=fd00::1",
            "mcast://230.0.0.1:1234",
            "mcast://[ff02::1]:1234?local=::1",
            "exec://cat",
            "stdio",
        ] {
            let parsed = ok(text);
            assert_eq!(ok(&parsed.to_string()), parsed, "{text} → {parsed}");
        }
        assert_eq!(
            ok("udp://5000->127.0.0.1:6000").to_string(),
            "udp://0.0.0.0:5000->127.0.0.1:6000"
        );
    }

    #[test]
    fn malformed_locators_name_the_part() {
        err("udp5000->1.2.3.4:5", "scheme");
        err("ftp://x", "scheme");
        err("udp://5000-1.2.3.4:5", "->");
        err("udp://5000->1.2.3.4", "PEER_PORT");
        err("udp://5000->1.2.3.4:99999", "PEER_PORT");
        err("udp://5000->1.2.3:5", "PEER_IP");
        err("udp://5000->0.0.0.0:5", "PEER_IP");
        err("udp://5000->239.1.1.1:5", "PEER_IP");
        err("udp://x->1.2.3.4:5", "BIND_PORT");
        err("udp://0->1.2.3.4:5", "BIND_PORT");
        err("udp://1.2.3:5000->1.2.3.4:5", "BIND_IP");
        err("udp://[::1]:5000->1.2.3.4:5", "BIND_IP");
        err("udp://::1:5000->1.2.3.4:5", "BIND_IP");
        err("tcp://:7000", "HOST");
        err("tcp://host", "PORT");
        err("tcp://ho st:7000", "HOST");
        err("tcp://[::1:7000", "HOST");
        err("tcp://[zz]:7000", "HOST");
        err("tcp://h:+7", "PORT");
        err("tcp-listen://localhost:7000", "IP");
        err("tcp-listen://127.0.0.1:", "PORT");
        err("tcp-listen://127.0.0.1:7000?from=somehost", "from");
        err("tcp-listen://127.0.0.1:7000?from=10.0.0.0/33", "from");
        err("tcp-listen://127.0.0.1:7000?from=::/129", "from");
        err("tcp-listen://127.0.0.1:7000?from=", "from");
        err("tcp-listen://127.0.0.1:7000?peer=10.0.0.1", "peer");
        err("unix://", "PATH");
        let long = format!("unix://{}", "x".repeat(UNIX_PATH_MAX + 1));
        err(&long, "PATH");
        err("tap://", "NAME");
        err("tap://a/b", "NAME");
        err("tap://a-name-too-long-for-linux", "NAME");
        err("tap://tap0?bridge=", "bridge");
        err("tap://tap0?brige=br0", "brige");
        err("tap://tap0?bridge=a&bridge=b", "bridge");
        err("tap://tap0?bridge", "bridge");
        err("vxlan://10.0.0.2", "vni");
        err("vxlan://10.0.0.2?vni=16777216", "vni");
        err("vxlan://10.0.0.2?vni=-1", "vni");
        err("vxlan://10.0.0.x?vni=1", "REMOTE_IP");
        err("vxlan://fd00::2?vni=1", "REMOTE_IP");
        err("vxlan://10.0.0.2:0?vni=1", "PORT");
        err("vxlan://10.0.0.2?vni=1&local=10.0.0", "local");
        err("vxlan://10.0.0.2?vni=1&local=fd00::1", "local");
        err("vxlan://10.0.0.2?vni=1&local=10.0.0.1:x", "local PORT");
        err("mcast://10.0.0.1:1234", "GROUP");
        err("mcast://230.0.0.1", "PORT");
        err("mcast://230.0.0.1:1234?local=x", "local");
        err("mcast://230.0.0.1:1234?ttl=1", "ttl");
        err("exec://", "COMMAND");
        err("exec://  ", "COMMAND");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
            let _ = Locator::parse(&text);
        }

        #[test]
        fn scheme_prefixed_text_never_panics(
            scheme in proptest::sample::select(vec![
                "udp://", "tcp://", "tcp-listen://", "unix://", "unix-listen://", "tap://",
                "vxlan://", "mcast://", "exec://",
            ]),
            rest in "[0-9a-f:.\\[\\]?&=>-]{0,40}",
        ) {
            if let Ok(parsed) = Locator::parse(&format!("{scheme}{rest}")) {
                proptest::prop_assert_eq!(Locator::parse(&parsed.to_string()).unwrap(), parsed);
            }
        }
    }
}
