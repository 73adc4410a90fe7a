//! Readers of the existing PVE state of a VM: `<vmid>.conf` (netN indices in use) and the
//! text `qm showcmd <vmid>` prints (existing NICs and used PCI slots).
//!
//! Both follow the reference generator exactly, quirks included: every `netN:` line of the
//! conf counts (snapshot sections too), and a PCI slot on any bus counts as used on pci.0.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// Where the PVE state comes from.
#[derive(Debug, Clone)]
pub struct PveSource {
    /// Directory holding `<vmid>.conf` (on a PVE node /etc/pve/qemu-server).
    pub config_dir: PathBuf,
    pub showcmd: Showcmd,
}

/// Where the `qm showcmd` text comes from.
#[derive(Debug, Clone)]
pub enum Showcmd {
    /// `DIR/<vmid>.cmd` files; a missing file means no devices.
    Dir(PathBuf),
    /// Run `qm showcmd <vmid>`; a failing command means no devices.
    Qm,
    /// Assume no existing devices.
    Nothing,
}

impl PveSource {
    /// A source with no existing state at all (no conf, no devices).
    pub fn empty() -> PveSource {
        PveSource {
            config_dir: PathBuf::new(),
            showcmd: Showcmd::Nothing,
        }
    }

    /// Reads what the planner needs to know about one VM.
    pub fn vm(&self, vm: u32) -> VmState {
        let mut state = VmState {
            highest_net: if self.config_dir.as_os_str().is_empty() {
                None
            } else {
                highest_net_index(&self.config_dir.join(format!("{vm}.conf")))
            },
            ..VmState::default()
        };
        if let Some(text) = self.showcmd_text(vm) {
            state.read_showcmd(&text);
        }
        state
    }

    fn showcmd_text(&self, vm: u32) -> Option<String> {
        match &self.showcmd {
            Showcmd::Nothing => None,
            Showcmd::Dir(dir) => std::fs::read_to_string(dir.join(format!("{vm}.cmd"))).ok(),
            Showcmd::Qm => {
                let out = std::process::Command::new("qm")
                    .args(["showcmd", &vm.to_string()])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .output()
                    .ok()?;
                if out.status.success() {
                    String::from_utf8(out.stdout).ok()
                } else {
                    None
                }
            }
        }
    }
}

/// One VM's existing state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmState {
    /// The highest N of a `netN:` line in the conf, if any.
    pub highest_net: Option<u64>,
    /// Existing virtio-net-pci NICs: lowercase MAC → (netN index, PCI slot).
    pub nics: HashMap<String, (u64, u64)>,
    /// Every PCI slot the showcmd text uses.
    pub used_slots: BTreeSet<u64>,
    /// The largest slot of a virtio-net-pci device.
    pub highest_nic_slot: Option<u64>,
}

static NET_LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^net([0-9]+):").unwrap());
static PCI_ADDR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r",addr=0x([0-9a-fA-F]+)(?:\.0x[0-9a-fA-F]+)?").unwrap());
static NIC_ADDR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)virtio-net-pci[^']*addr=0x([0-9a-f]+)").unwrap());
static NIC_FULL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)virtio-net-pci[^']*mac=([0-9a-f:]+)[^']*netdev=net([0-9]+)[^']*addr=0x([0-9a-f]+)",
    )
    .unwrap()
});

impl VmState {
    /// Reads the text `qm showcmd` printed.
    pub fn read_showcmd(&mut self, text: &str) {
        for m in PCI_ADDR.captures_iter(text) {
            if let Ok(slot) = u64::from_str_radix(&m[1], 16) {
                self.used_slots.insert(slot);
            }
        }
        for m in NIC_ADDR.captures_iter(text) {
            if let Ok(slot) = u64::from_str_radix(&m[1], 16) {
                self.highest_nic_slot = self.highest_nic_slot.max(Some(slot));
            }
        }
        for m in NIC_FULL.captures_iter(text) {
            if let (Ok(net), Ok(slot)) = (m[2].parse(), u64::from_str_radix(&m[3], 16)) {
                self.nics.insert(m[1].to_lowercase(), (net, slot));
            }
        }
    }
}

/// The highest N of the lines matching `^net(\d+):` after trimming, over every line of the
/// file (Python's `splitlines` boundaries); `None` when there is none or the file cannot be
/// read as text.
fn highest_net_index(conf: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(conf).ok()?;
    text.split(is_line_boundary)
        .filter_map(|line| NET_LINE.captures(line.trim()))
        .filter_map(|m| m[1].parse::<u64>().ok())
        .max()
}

/// The characters Python's `str.splitlines` splits on (`\r\n` gives one empty extra piece
/// here, which never matches).
fn is_line_boundary(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0b}'
            | '\u{0c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOWCMD: &str = "/usr/bin/kvm -id 100 -name 'r1' -device 'pci-bridge,id=pci.1,chassis_nr=1,bus=pci.0,addr=0x1e' -device 'VirtIO-Net-PCI,MAC=BE:24:99:00:64:01,netdev=net1,bus=pci.0,addr=0x13,id=net1' -device 'virtio-net-pci,mac=bc:24:11:aa:bb:cc,netdev=net0,bus=pci.0,addr=0x12,id=net0,rx_queue_size=1024' -device 'virtio-scsi-pci,id=scsihw0,bus=pci.1,addr=0x5.0x1' -device 'e1000,mac=bc:24:11:00:00:01,netdev=net2,bus=pci.0,addr=0x14,id=net2'\n";

    #[test]
    fn showcmd_nics_and_slots() {
        let mut state = VmState::default();
        state.read_showcmd(SHOWCMD);
        assert_eq!(state.nics.len(), 2);
        assert_eq!(state.nics["be:24:99:00:64:01"], (1, 0x13));
        assert_eq!(state.nics["bc:24:11:aa:bb:cc"], (0, 0x12));
        assert_eq!(
            state.used_slots.iter().copied().collect::<Vec<_>>(),
            [0x05, 0x12, 0x13, 0x14, 0x1e]
        );
        assert_eq!(state.highest_nic_slot, Some(0x13));
    }

    #[test]
    fn conf_counts_every_net_line() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("100.conf");
        std::fs::write(
            &conf,
            "boot: order=scsi0\nnet0: virtio=BC:24:11:AA:BB:CC,bridge=vmbr0\n  net3: x\nxnet9: y\n\n[snap1]\nnet5: virtio=BC:24:11:00:00:01\u{0b}net7: z\r\n",
        )
        .unwrap();
        assert_eq!(highest_net_index(&conf), Some(7));
        assert_eq!(highest_net_index(&dir.path().join("101.conf")), None);
        std::fs::write(&conf, "name: r1\n").unwrap();
        assert_eq!(highest_net_index(&conf), None);
    }
}
