//! The kernel's IP fragmentation and reassembly counters (RFC 4293 `ipSystemStats`:
//! `ReasmReqds`, `ReasmOKs`, `ReasmFails`, `OutFragOKs`, `OutFragCreates`), read from
//! `/proc/net/snmp` (IPv4, the `Ip:` lines) and `/proc/net/snmp6` (IPv6, `Ip6…` lines).
//!
//! The counters are per network namespace and count every datagram of the namespace, so a
//! measurement takes the difference of two snapshots around the traffic it cares about.

use std::ops::Sub;
use std::path::Path;

use crate::{Error, Result};

/// Path of the IPv4 counters.
pub const SNMP_PATH: &str = "/proc/net/snmp";
/// Path of the IPv6 counters.
pub const SNMP6_PATH: &str = "/proc/net/snmp6";

/// IP family whose counters to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of a socket address.
    pub fn of(addr: &std::net::SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A snapshot (or, after subtraction, a difference) of the fragmentation counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragCounters {
    /// Datagrams that needed reassembly (one per received fragment).
    pub reasm_reqds: u64,
    /// Datagrams reassembled.
    pub reasm_oks: u64,
    /// Reassembly failures.
    pub reasm_fails: u64,
    /// Datagrams fragmented on output.
    pub frag_oks: u64,
    /// Fragments created on output.
    pub frag_creates: u64,
}

impl FragCounters {
    /// Reads the current counters of `family` in this process's network namespace.
    pub fn read(family: Family) -> Result<FragCounters> {
        let path = match family {
            Family::V4 => SNMP_PATH,
            Family::V6 => SNMP6_PATH,
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        match family {
            Family::V4 => FragCounters::parse_snmp(&text, Path::new(path)),
            Family::V6 => FragCounters::parse_snmp6(&text, Path::new(path)),
        }
    }

    /// Parses the `Ip:` header and value lines of `/proc/net/snmp`; `file` names the text in
    /// errors.
    pub fn parse_snmp(text: &str, file: &Path) -> Result<FragCounters> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("Ip: "));
        let bad = |line: Option<usize>, message: String| Error::Input {
            file: file.to_path_buf(),
            line,
            column: None,
            field: "Ip".into(),
            message,
        };
        let (_, names) = lines
            .next()
            .ok_or_else(|| bad(None, "no `Ip:` header line".into()))?;
        let (index, values) = lines
            .next()
            .ok_or_else(|| bad(None, "no `Ip:` value line".into()))?;
        let names: Vec<&str> = names.split_whitespace().skip(1).collect();
        let values: Vec<&str> = values.split_whitespace().skip(1).collect();
        if names.len() != values.len() {
            return Err(bad(
                Some(index + 1),
                format!("{} names but {} values", names.len(), values.len()),
            ));
        }
        let find = |name: &str| -> Result<u64> {
            let at = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| bad(Some(index), format!("no counter `{name}`")))?;
            values[at]
                .parse()
                .map_err(|_| bad(Some(index + 1), format!("`{name}` is not a number")))
        };
        Ok(FragCounters {
            reasm_reqds: find("ReasmReqds")?,
            reasm_oks: find("ReasmOKs")?,
            reasm_fails: find("ReasmFails")?,
            frag_oks: find("FragOKs")?,
            frag_creates: find("FragCreates")?,
        })
    }

    /// Parses the `Ip6…` name/value lines of `/proc/net/snmp6`.
    pub fn parse_snmp6(text: &str, file: &Path) -> Result<FragCounters> {
        let find = |name: &str| -> Result<u64> {
            let (index, line) = text
                .lines()
                .enumerate()
                .find(|(_, l)| l.split_whitespace().next() == Some(name))
                .ok_or_else(|| Error::Input {
                    file: file.to_path_buf(),
                    line: None,
                    column: None,
                    field: name.into(),
                    message: "counter missing".into(),
                })?;
            line.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Error::Input {
                    file: file.to_path_buf(),
                    line: Some(index + 1),
                    column: None,
                    field: name.into(),
                    message: "value is not a number".into(),
                })
        };
        Ok(FragCounters {
            reasm_reqds: find("Ip6ReasmReqds")?,
            reasm_oks: find("Ip6ReasmOKs")?,
            reasm_fails: find("Ip6ReasmFails")?,
            frag_oks: find("Ip6FragOKs")?,
            frag_creates: find("Ip6FragCreates")?,
        })
    }
}

impl Sub for FragCounters {
    type Output = FragCounters;

    /// The counts between two snapshots (`later - earlier`), saturating at zero.
    fn sub(self, earlier: FragCounters) -> FragCounters {
        FragCounters {
            reasm_reqds: self.reasm_reqds.saturating_sub(earlier.reasm_reqds),
            reasm_oks: self.reasm_oks.saturating_sub(earlier.reasm_oks),
            reasm_fails: self.reasm_fails.saturating_sub(earlier.reasm_fails),
            frag_oks: self.frag_oks.saturating_sub(earlier.frag_oks),
            frag_creates: self.frag_creates.saturating_sub(earlier.frag_creates),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SNMP: &str = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 2 64 4578 0 0 0 0 0 4578 2811 0 0 0 12 6 1 3 0 9 2811
Icmp: InMsgs InErrors
Icmp: 0 0
";

    static SNMP6: &str = "Ip6InReceives                   \t5
Ip6ReasmTimeout                 \t0
Ip6ReasmReqds                   \t4
Ip6ReasmOKs                     \t2
Ip6ReasmFails                   \t0
Ip6FragOKs                      \t1
Ip6FragFails                    \t0
Ip6FragCreates                  \t3
";

    #[test]
    fn parses_ipv4_counters() {
        let c = FragCounters::parse_snmp(SNMP, Path::new("snmp")).unwrap();
        assert_eq!(
            c,
            FragCounters {
                reasm_reqds: 12,
                reasm_oks: 6,
                reasm_fails: 1,
                frag_oks: 3,
                frag_creates: 9
            }
        );
    }

    #[test]
    fn parses_ipv6_counters() {
        let c = FragCounters::parse_snmp6(SNMP6, Path::new("snmp6")).unwrap();
        assert_eq!(c.reasm_reqds, 4);
        assert_eq!(c.reasm_oks, 2);
        assert_eq!(c.frag_oks, 1);
        assert_eq!(c.frag_creates, 3);
    }

    #[test]
    fn rejects_truncated_value_line() {
        let text = "Ip: ReasmReqds ReasmOKs\nIp: 1\n";
        let err = FragCounters::parse_snmp(text, Path::new("snmp")).unwrap_err();
        assert!(err.is_input());
        assert!(err.to_string().contains("2 names but 1 values"), "{err}");
    }

    #[test]
    fn difference_saturates() {
        let a = FragCounters {
            frag_creates: 5,
            ..FragCounters::default()
        };
        let b = FragCounters {
            frag_creates: 7,
            reasm_reqds: 2,
            ..FragCounters::default()
        };
        assert_eq!((b - a).frag_creates, 2);
        assert_eq!((b - a).reasm_reqds, 2);
        assert_eq!((a - b).frag_creates, 0);
    }

    #[test]
    fn reads_this_namespace() {
        FragCounters::read(Family::V4).unwrap();
    }
}
