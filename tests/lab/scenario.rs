//! Reusable lab scenarios: a VM pair over loopback, and a VM pair across two namespaces
//! ("hosts") joined by a veth with a small MTU, where large guest frames fragment.

use std::collections::{BTreeMap, HashMap};

use super::image::Image;
use super::netns::{self, Netns};
use super::plan::{self, Netdev};
use super::vm::{self, Guest, Spec, Vm};

/// The two VMs of every scenario (VMIDs of the mapping), wired eth1 to eth1.
pub const VMS: [u32; 2] = [100, 102];
/// Their guest addresses.
pub const GUEST_IPS: [&str; 2] = ["10.77.0.1", "10.77.0.2"];

/// Guests pinging each other with `size`-byte payloads, `count` times, at guest MTU `mtu`.
pub fn ping_guests(mtu: Option<u32>, size: u32, count: u32) -> [Guest; 2] {
    [0, 1].map(|i| Guest {
        mtu,
        size,
        count,
        ..Guest::ping(
            &format!("vm{}", VMS[i]),
            &format!("{}/24", GUEST_IPS[i]),
            GUEST_IPS[1 - i],
        )
    })
}

/// Boots `guests` with the plan's QEMU arguments for VMs [`VMS`], in `netns` when given.
pub fn boot(
    image: &Image,
    args: &BTreeMap<u32, Vec<String>>,
    guests: [Guest; 2],
    netns: [Option<&Netns>; 2],
) -> Result<Vec<Vm>, String> {
    let specs = guests
        .into_iter()
        .zip(VMS)
        .zip(netns)
        .map(|((guest, id), netns)| {
            let net_args = args
                .get(&id)
                .cloned()
                .ok_or_else(|| format!("the plan has no VM {id}: {args:?}"))?;
            Ok(Spec {
                guest,
                net_args,
                netns,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    vm::start(image, specs)
}

/// Waits for every VM's result line; an error names the VM and holds its console.
pub fn results(vms: &mut [Vm]) -> Result<Vec<HashMap<String, String>>, String> {
    vms.iter_mut().map(Vm::result).collect()
}

/// Checks a ping result line: `count` sent, all received, 0 % loss.
pub fn check_no_loss(result: &HashMap<String, String>, count: u32) -> Result<(), String> {
    let want = count.to_string();
    let field = |k: &str| result.get(k).map(String::as_str);
    if field("transmitted") == Some(&want)
        && field("received") == Some(&want)
        && field("loss") == Some("0")
    {
        Ok(())
    } else {
        Err(format!(
            "expected {count}/{count} pings answered, 0% loss: {result:?}"
        ))
    }
}

/// The two-VM loopback lab: the plan of a one-link mapping on 127.0.0.1 with `ports`
/// (`port_a` of VM 100, `port_b` of VM 102).
pub fn loopback_args(
    netdev: Netdev,
    ports: [u16; 2],
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    plan::qemu_args(&plan::one_link_mapping(VMS, ports, None), netdev)
}

/// Two namespaces as hosts joined by a veth of MTU `veth_mtu`; VM 100 runs in the first, VM
/// 102 in the second, wired by the plan of a mapping whose `udp_ip_by_vm` holds the veth
/// addresses.
pub struct CrossHost {
    pub hosts: [Netns; 2],
    /// UDP ports of VM 100 (in host 0) and VM 102 (in host 1).
    pub ports: [u16; 2],
    pub args: BTreeMap<u32, Vec<String>>,
}

/// The veth addresses of [`CrossHost`].
pub const HOST_IPS: [&str; 2] = ["192.168.77.1", "192.168.77.2"];

impl CrossHost {
    pub fn new(veth_mtu: u32, netdev: Netdev) -> Result<CrossHost, String> {
        let hosts = [Netns::new()?, Netns::new()?];
        netns::veth(
            &hosts[0],
            &format!("{}/24", HOST_IPS[0]),
            &hosts[1],
            &format!("{}/24", HOST_IPS[1]),
            "veth0",
            veth_mtu,
        )?;
        let ports = super::free_udp_ports::<2>();
        let args = plan::qemu_args(&plan::one_link_mapping(VMS, ports, Some(HOST_IPS)), netdev)?;
        Ok(CrossHost { hosts, ports, args })
    }

    /// Boots the two guests, each in its host.
    pub fn boot(&self, image: &Image, guests: [Guest; 2]) -> Result<Vec<Vm>, String> {
        boot(
            image,
            &self.args,
            guests,
            [Some(&self.hosts[0]), Some(&self.hosts[1])],
        )
    }

    /// Each host's /proc/net/snmp.
    pub fn snmp(&self) -> Result<[BTreeMap<String, u64>; 2], String> {
        Ok([self.hosts[0].snmp()?, self.hosts[1].snmp()?])
    }
}

/// What [`fragmenting_pair`] saw.
pub struct Fragmented {
    pub results: Vec<HashMap<String, String>>,
    pub snmp_before: [BTreeMap<String, u64>; 2],
    pub snmp_after: [BTreeMap<String, u64>; 2],
}

impl Fragmented {
    /// How much `counter` (e.g. "Ip:FragCreates") rose in host `host`.
    pub fn rise(&self, host: usize, counter: &str) -> u64 {
        let at = |m: &BTreeMap<String, u64>| m.get(counter).copied().unwrap_or(0);
        at(&self.snmp_after[host]).saturating_sub(at(&self.snmp_before[host]))
    }
}

/// The cross-host fragmentation scenario: veth MTU 1500, guest MTU 4000, `count` pings of
/// 3000 bytes each way. Every tunnel datagram of a large ping is bigger than the veth MTU,
/// so the hosts fragment and reassemble it.
pub fn fragmenting_pair(image: &Image, lab: &CrossHost, count: u32) -> Result<Fragmented, String> {
    let snmp_before = lab.snmp()?;
    let mut vms = lab.boot(image, ping_guests(Some(4000), 3000, count))?;
    let results = results(&mut vms)?;
    drop(vms);
    let snmp_after = lab.snmp()?;
    Ok(Fragmented {
        results,
        snmp_before,
        snmp_after,
    })
}
