//! The `qm` renderer: `qm set <vmid> --args "…"` per VM, byte for byte as the PVE UDP link
//! generator prints them.

use std::fmt::Write as _;

use super::{Nic, Plan};

/// The `-netdev` argument of a NIC (IP texts as written in the mapping).
pub fn netdev(nic: &Nic) -> String {
    format!(
        "-netdev socket,id=net{n},udp={}:{},localaddr={}:{}",
        nic.remote_ip,
        nic.remote.port(),
        nic.local_ip,
        nic.local.port(),
        n = nic.net
    )
}

/// The `-device` argument of a NIC; `with_slot` adds `bus=pci.0,addr=0x…` when the plan
/// assigned a slot.
pub fn device(plan: &Plan, nic: &Nic, with_slot: bool) -> String {
    let n = nic.net;
    let mut s = format!("-device {},mac={},netdev=net{n}", plan.model, nic.mac);
    if let (true, Some(slot)) = (with_slot, nic.slot) {
        write!(s, ",bus=pci.0,addr=0x{slot:x}").expect("writing to a String");
    }
    write!(
        s,
        ",id=net{n},rx_queue_size={},tx_queue_size={}",
        plan.rx_queue_size, plan.tx_queue_size
    )
    .expect("writing to a String");
    if plan.host_mtu > 0 {
        write!(s, ",host_mtu={}", plan.host_mtu).expect("writing to a String");
    }
    s
}

/// The whole output.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    if !plan.ports.is_empty() {
        let ports: Vec<String> = plan.ports.keys().map(u16::to_string).collect();
        line(
            &mut out,
            &format!(
                "# UDP ports used: {} (formula: {})",
                ports.join(", "),
                plan.port_scheme.formula()
            ),
        );
    }
    let explicit: Vec<String> = plan
        .ports
        .iter()
        .filter(|(_, (_, explicit))| *explicit)
        .map(|(p, _)| p.to_string())
        .collect();
    if !explicit.is_empty() {
        line(
            &mut out,
            &format!("# Explicit ports from the mapping: {}", explicit.join(", ")),
        );
    }
    if !plan.reused.is_empty() {
        let reused: Vec<String> = plan
            .reused
            .iter()
            .map(|r| format!("VM{}:eth{}->net{}@0x{:x}", r.vm, r.eth, r.net, r.slot))
            .collect();
        line(
            &mut out,
            &format!(
                "# Reused existing NICs (kept PCI addr): {}",
                reused.join(", ")
            ),
        );
    }
    line(
        &mut out,
        "# Existing netN count per VM respected (starting indices for NEW):",
    );
    for (vm, v) in &plan.vms {
        line(
            &mut out,
            &format!("#   VM {vm}: starting new at net{}", v.start_index),
        );
    }
    line(&mut out, "");
    for (vm, v) in &plan.vms {
        let args: Vec<String> = v
            .nics
            .iter()
            .flat_map(|nic| [netdev(nic), device(plan, nic, true)])
            .collect();
        line(&mut out, &format!("# VM {vm}"));
        line(
            &mut out,
            &format!("qm set {vm} --args \"{}\"", args.join(" ")),
        );
    }
    out
}
