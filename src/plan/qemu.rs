//! The `qemu` renderer: plain QEMU command-line fragments per VM, no bus/addr (QEMU places
//! the device), with `-netdev socket,udp=…` or the QEMU ≥ 7.2 `-netdev dgram` syntax.

use super::{Nic, Plan, qm};

/// Which `-netdev` backend syntax to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netdev {
    /// `-netdev socket,id=…,udp=REMOTE,localaddr=LOCAL`.
    Socket,
    /// `-netdev dgram,id=…,local.type=inet,…,remote.type=inet,…` (QEMU ≥ 7.2).
    Dgram,
}

fn netdev(nic: &Nic, kind: Netdev) -> String {
    let n = nic.net;
    match kind {
        Netdev::Socket => format!(
            "-netdev socket,id=net{n},udp={},localaddr={}",
            nic.remote, nic.local
        ),
        Netdev::Dgram => format!(
            "-netdev dgram,id=net{n},local.type=inet,local.host={},local.port={},remote.type=inet,remote.host={},remote.port={}",
            nic.local.ip(),
            nic.local.port(),
            nic.remote.ip(),
            nic.remote.port()
        ),
    }
}

/// The arguments of one VM, joined by single spaces.
pub fn args(plan: &Plan, vm: u32, kind: Netdev) -> Option<String> {
    let v = plan.vms.get(&vm)?;
    let args: Vec<String> = v
        .nics
        .iter()
        .flat_map(|nic| [netdev(nic, kind), qm::device(plan, nic, false)])
        .collect();
    Some(args.join(" "))
}

/// `# VM {vm}` and the VM's arguments on one line, per VM ascending.
pub fn render(plan: &Plan, kind: Netdev) -> String {
    let mut out = String::new();
    for &vm in plan.vms.keys() {
        out.push_str(&format!("# VM {vm}\n"));
        out.push_str(&args(plan, vm, kind).unwrap_or_default());
        out.push('\n');
    }
    out
}
