//! The link planner: `mapping.yaml` in; `qm set` commands, QEMU or libvirt fragments, JSON
//! and the intercept plan (every link's endpoints) out.
//!
//! With the `qm` renderer the output is byte for byte what the PVE UDP link generator
//! (gen_pve_links_args.py) prints for the same mapping and PVE state: same ports, MACs, netN
//! indices and PCI slots, so users can switch without their VMs changing.
//!
//! - [`mapping`]: the mapping model and its loading from YAML (positions in every refusal);
//! - [`ports`]: the port schemes; [`mac`]: the MAC scheme;
//! - [`pve`]: readers of the existing PVE state (`<vmid>.conf`, `qm showcmd`);
//! - [`pci`]: PCI slot allocation;
//! - [`links`]: links and endpoints, lookup by name or end;
//! - [`qm`], [`qemu`], [`libvirt`], [`json`]: the renderers;
//! - [`tcp`]: the relays that carry `transport: tcp` links between hosts.

pub mod json;
pub mod libvirt;
pub mod links;
pub mod mac;
pub mod mapping;
pub mod pci;
pub mod ports;
pub mod pve;
pub mod qemu;
pub mod qm;
pub mod relay;
pub mod tcp;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

pub use links::{Endpoint, Link, LinkNames, Pattern, Side, TcpHosts, find_end, find_link, select};
pub use mapping::{Mapping, NicRef, PciStrategy, Transport};
pub use ports::PortScheme;
pub use pve::{PveSource, Showcmd};

/// Loads a mapping and resolves its links (no PVE state needed).
pub fn load_links(mapping: &Path) -> crate::Result<Vec<Link>> {
    resolve_links(&Mapping::load(mapping)?)
}

/// Resolves the links of a loaded mapping: addresses, ports and MACs, in file order.
pub fn resolve_links(mapping: &Mapping) -> crate::Result<Vec<Link>> {
    Ok(links::resolve(mapping)?
        .links
        .into_iter()
        .map(|r| r.link)
        .collect())
}

/// Everything the planner decided.
#[derive(Debug, Clone)]
pub struct Plan {
    pub model: String,
    /// As written in the mapping; 0 or less means no host_mtu.
    pub host_mtu: i64,
    pub rx_queue_size: i64,
    pub tx_queue_size: i64,
    pub auto_pci_addr: bool,
    pub pci_alloc_strategy: PciStrategy,
    pub port_scheme: PortScheme,
    /// Every link, in file order.
    pub links: Vec<Link>,
    /// The links carried over TCP between relays (`transport: tcp`), by index in
    /// [`Plan::links`], with their two hosts.
    pub tcp: BTreeMap<usize, TcpHosts>,
    /// Every port given out: its NIC and whether the mapping gave it explicitly.
    pub ports: BTreeMap<u16, (NicRef, bool)>,
    /// Per VM ascending: the first netN for new NICs and the NICs in the order made.
    pub vms: BTreeMap<u32, VmPlan>,
    /// NICs found in the PVE state and kept (netN and PCI slot), in order of reuse; only
    /// when PCI addresses are assigned (not with auto_pci_addr), as the generator lists them.
    pub reused: Vec<Reuse>,
    /// Warnings for stderr (mapping oddities, MTU advice).
    pub warnings: Vec<String>,
}

/// One VM's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPlan {
    /// 1 + the highest netN of the VM's conf, or 0.
    pub start_index: u64,
    pub nics: Vec<Nic>,
}

/// One NIC of a VM as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub eth: u32,
    /// The N of `netN` (netdev and device id).
    pub net: u64,
    /// The PCI slot on pci.0, `None` with auto_pci_addr.
    pub slot: Option<u64>,
    /// True when an existing NIC with this MAC was found and its netN kept.
    pub reused: bool,
    pub mac: String,
    /// The index of its link in [`Plan::links`] and its side.
    pub link: usize,
    pub side: Side,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The IP texts as the mapping wrote them (the `qm` output repeats them verbatim).
    pub local_ip: String,
    pub remote_ip: String,
}

/// A reused NIC, for the `qm` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    pub vm: u32,
    pub eth: u32,
    pub net: u64,
    pub slot: u64,
}

/// Plans a loaded mapping against the PVE state in `pve`. `path_mtu` is the MTU of the path
/// between hosts, for the warning on links that cross hosts.
pub fn plan(mapping: &Mapping, pve: &PveSource, path_mtu: u32) -> crate::Result<Plan> {
    let d = &mapping.defaults;
    let resolution = links::resolve(mapping)?;
    let vm_ids: BTreeSet<u32> = mapping
        .links
        .iter()
        .flat_map(|l| [l.a.vm, l.b.vm])
        .collect();
    let mut states = BTreeMap::new();
    let mut vms = BTreeMap::new();
    for &vm in &vm_ids {
        let state = pve.vm(vm);
        let start_index = state.highest_net.map_or(0, |n| n.saturating_add(1));
        let slots = pci::Slots::new(&state.used_slots, state.highest_nic_slot);
        states.insert(vm, (state, slots, start_index));
        vms.insert(
            vm,
            VmPlan {
                start_index,
                nics: Vec::new(),
            },
        );
    }
    let mut reused = Vec::new();
    for (index, (spec, resolved)) in mapping.links.iter().zip(&resolution.links).enumerate() {
        let link = &resolved.link;
        for side in [Side::A, Side::B] {
            let end = link.end(side);
            let (state, slots, next) = states.get_mut(&end.vm).expect("every VM of a link");
            let existing = state.nics.get(&end.mac).copied();
            let net = match existing {
                Some((net, _)) => net,
                None => {
                    let net = *next;
                    *next = next.saturating_add(1);
                    net
                }
            };
            let slot = if d.auto_pci_addr {
                None
            } else if let Some((_, slot)) = existing {
                slots.keep(slot);
                reused.push(Reuse {
                    vm: end.vm,
                    eth: end.eth,
                    net,
                    slot,
                });
                Some(slot)
            } else {
                Some(slots.allocate(d.pci_alloc_strategy).ok_or_else(|| crate::Error::Input {
                    file: mapping.file.clone(),
                    line: (spec.at.line > 0).then_some(spec.at.line),
                    column: (spec.at.line > 0).then_some(spec.at.column),
                    field: spec.field(),
                    message: format!(
                        "PCI slots 0x02-0x1d exhausted for VM {}; set auto_pci_addr: true or free a slot",
                        end.vm
                    ),
                })?)
            };
            let (local_ip, remote_ip) = match side {
                Side::A => (&resolved.ip_a, &resolved.ip_b),
                Side::B => (&resolved.ip_b, &resolved.ip_a),
            };
            vms.get_mut(&end.vm)
                .expect("every VM of a link")
                .nics
                .push(Nic {
                    eth: end.eth,
                    net,
                    slot,
                    reused: existing.is_some(),
                    mac: end.mac.clone(),
                    link: index,
                    side,
                    local: end.local,
                    remote: end.remote,
                    local_ip: local_ip.clone(),
                    remote_ip: remote_ip.clone(),
                });
        }
    }
    let mut tcp = BTreeMap::new();
    let mut links = Vec::with_capacity(resolution.links.len());
    for (index, resolved) in resolution.links.into_iter().enumerate() {
        if let Some(hosts) = resolved.tcp {
            tcp.insert(index, hosts);
        }
        links.push(resolved.link);
    }
    let mut warnings = mapping.warnings.clone();
    warnings.extend(mtu_warnings(mapping, &links, path_mtu));
    Ok(Plan {
        model: d.model.clone(),
        host_mtu: d.host_mtu,
        rx_queue_size: d.rx_queue_size,
        tx_queue_size: d.tx_queue_size,
        auto_pci_addr: d.auto_pci_addr,
        pci_alloc_strategy: d.pci_alloc_strategy,
        port_scheme: d.port_scheme,
        links,
        tcp,
        ports: resolution.ports,
        vms,
        reused,
        warnings,
    })
}

/// The largest Ethernet payload of a frame that fits one IPv4 UDP datagram (65507 − 14);
/// QEMU's sendto fails on larger frames and drops them.
pub const MAX_UDP_HOST_MTU: i64 = 65493;

/// Warnings about host_mtu: above what one UDP datagram can carry, and above what the path
/// between hosts carries without fragmenting (for links whose ends are on different IPs).
pub fn mtu_warnings(mapping: &Mapping, links: &[Link], path_mtu: u32) -> Vec<String> {
    let d = &mapping.defaults;
    let at = |field: &str| {
        let pos = d.host_mtu_at;
        let place = if pos.line > 0 {
            format!("{}:{}:{}", mapping.file.display(), pos.line, pos.column)
        } else {
            format!("{} (default)", mapping.file.display())
        };
        format!("{place}: {field}")
    };
    let mut warnings = Vec::new();
    if d.host_mtu > MAX_UDP_HOST_MTU {
        warnings.push(format!(
            "{}: host_mtu {} is above {MAX_UDP_HOST_MTU}, the largest frame payload one IPv4 UDP datagram carries (65507 - 14): QEMU drops larger frames",
            at("defaults.host_mtu"),
            d.host_mtu
        ));
    }
    for link in links.iter().filter(|l| l.crosses_hosts()) {
        let Some(host_mtu) = link.host_mtu else {
            continue;
        };
        let overhead = links::overhead(link.a.local.ip());
        let limit = i64::from(path_mtu) - i64::from(overhead);
        if i64::from(host_mtu) > limit {
            warnings.push(format!(
                "{}: link {} crosses hosts ({} - {}): host_mtu {host_mtu} is above path MTU {path_mtu} - {overhead} = {limit}, so every larger frame is fragmented (set host_mtu <= {limit}, raise the path MTU (--path-mtu) or carry the link over TCP: transport: tcp)",
                at("defaults.host_mtu"),
                link.name,
                link.a.local.ip(),
                link.b.local.ip()
            ));
        }
    }
    warnings
}
