//! Network namespaces as hosts, joined by veth pairs; deleted on drop.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;

use super::run;

/// A network namespace with a unique name and its loopback up; deleted on drop (which
/// destroys the veths and taps inside it).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Result<Netns, String> {
        let name = super::unique_name("lsns");
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs it,
    /// so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `ip -n NS ARGS…`.
    pub fn ip<I, S>(&self, args: I) -> Result<String, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// The namespace's /proc/net/snmp as "Ip:FragCreates" → value.
    pub fn snmp(&self) -> Result<BTreeMap<String, u64>, String> {
        let text = run(self.command("cat").arg("/proc/net/snmp"))?;
        Ok(parse_snmp(&text))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("lab: {e}");
        }
    }
}

/// Joins `a` and `b` with a veth pair, both ends named `ifname` (no clash: each end lives in
/// its own namespace), with the given addresses (CIDR) and MTU, both up.
pub fn veth(
    a: &Netns,
    a_addr: &str,
    b: &Netns,
    b_addr: &str,
    ifname: &str,
    mtu: u32,
) -> Result<(), String> {
    let mtu = mtu.to_string();
    a.ip([
        "link",
        "add",
        ifname,
        "mtu",
        &mtu,
        "type",
        "veth",
        "peer",
        "name",
        ifname,
        "mtu",
        &mtu,
        "netns",
        b.name(),
    ])?;
    for (ns, addr) in [(a, a_addr), (b, b_addr)] {
        ns.ip(["addr", "add", addr, "dev", ifname])?;
        ns.ip(["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// Parses /proc/net/snmp: pairs of header and value lines per protocol.
pub fn parse_snmp(text: &str) -> BTreeMap<String, u64> {
    let lines: Vec<&str> = text.lines().collect();
    let mut counters = BTreeMap::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let mut names = names.split_whitespace();
        let mut values = values.split_whitespace();
        let (Some(proto), Some(_)) = (names.next(), values.next()) else {
            continue;
        };
        for (name, value) in names.zip(values) {
            if let Ok(v) = value.parse() {
                counters.insert(format!("{proto}{name}"), v);
            }
        }
    }
    counters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_snmp_headers_with_values() {
        let text = "Ip: Forwarding DefaultTTL FragOKs FragCreates\nIp: 1 64 12 36\nUdp: InDatagrams\nUdp: 7\n";
        let snmp = parse_snmp(text);
        assert_eq!(snmp["Ip:FragOKs"], 12);
        assert_eq!(snmp["Ip:FragCreates"], 36);
        assert_eq!(snmp["Udp:InDatagrams"], 7);
    }
}
