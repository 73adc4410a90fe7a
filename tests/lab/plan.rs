//! VM network arguments from `linkscope plan --format qemu` for a mapping the test writes.

use std::collections::BTreeMap;
use std::process::Command;

/// QEMU netdev flavour of `linkscope plan --format qemu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Netdev {
    /// `-netdev socket,udp=…,localaddr=…` (the default).
    Socket,
    /// `-netdev dgram,…` (`--netdev dgram`, QEMU ≥ 7.2).
    Dgram,
}

/// A one-link mapping `[vm_a, 1, vm_b, 1]` with explicit ports (`port_a`, `port_b`) and,
/// when given, each VM's tunnel address (`udp_ip_by_vm`).
pub fn one_link_mapping(vms: [u32; 2], ports: [u16; 2], ips: Option<[&str; 2]>) -> String {
    let mut yaml = String::from("defaults:\n");
    match ips {
        Some([a, b]) => {
            yaml += &format!(
                "  udp_ip_by_vm:\n    {}: {a}\n    {}: {b}\n",
                vms[0], vms[1]
            );
        }
        None => yaml += "  udp_default_ip: 127.0.0.1\n",
    }
    yaml += &format!(
        "links:\n  - [{}, 1, {}, 1, {{port_a: {}, port_b: {}}}]\n",
        vms[0], vms[1], ports[0], ports[1]
    );
    yaml
}

/// Runs `linkscope plan MAPPING --format qemu` (with no PVE state) on `mapping_yaml` and
/// returns each VM's QEMU arguments.
pub fn qemu_args(mapping_yaml: &str, netdev: Netdev) -> Result<BTreeMap<u32, Vec<String>>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mapping = dir.path().join("mapping.yaml");
    let empty = dir.path().join("pve");
    std::fs::write(&mapping, mapping_yaml).map_err(|e| format!("{}: {e}", mapping.display()))?;
    std::fs::create_dir(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkscope"));
    cmd.arg("plan")
        .arg(&mapping)
        .args(["--format", "qemu"])
        .arg("--pve-config-dir")
        .arg(&empty)
        .arg("--qm-showcmd-dir")
        .arg(&empty);
    if netdev == Netdev::Dgram {
        cmd.args(["--netdev", "dgram"]);
    }
    let out = super::run(&mut cmd)?;
    parse_qemu_plan(&out)
}

/// Parses `# VM N` header lines, each followed by one line of space-separated arguments.
pub fn parse_qemu_plan(text: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    let mut vms = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(vm) = line.strip_prefix("# VM ") else {
            continue;
        };
        let vm: u32 = vm.trim().parse().map_err(|e| format!("{line:?}: {e}"))?;
        let args = lines
            .next()
            .ok_or_else(|| format!("no arguments after {line:?}"))?;
        vms.insert(vm, args.split(' ').map(str::to_string).collect());
    }
    if vms.is_empty() {
        return Err(format!("no `# VM` sections in plan output:\n{text}"));
    }
    Ok(vms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_vms_argument_line() {
        let text = "# VM 100\n-netdev socket,id=net0 -device virtio-net-pci,netdev=net0\n# VM 102\n-netdev dgram,id=net0\n";
        let vms = parse_qemu_plan(text).unwrap();
        assert_eq!(
            vms[&100],
            [
                "-netdev",
                "socket,id=net0",
                "-device",
                "virtio-net-pci,netdev=net0"
            ]
        );
        assert_eq!(vms[&102], ["-netdev", "dgram,id=net0"]);
        assert!(parse_qemu_plan("qm set 100 --args \"\"\n").is_err());
        assert!(parse_qemu_plan("# VM 100\n").is_err());
    }

    #[test]
    fn writes_explicit_ports_and_addresses() {
        let yaml = one_link_mapping([100, 102], [4001, 4002], Some(["10.0.0.1", "10.0.0.2"]));
        assert!(
            yaml.contains("    100: 10.0.0.1\n    102: 10.0.0.2\n"),
            "{yaml}"
        );
        assert!(
            yaml.ends_with("  - [100, 1, 102, 1, {port_a: 4001, port_b: 4002}]\n"),
            "{yaml}"
        );
    }
}
