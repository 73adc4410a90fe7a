//! Prerequisites of lab tests: skip with a reason, or fail under `LINKSCOPE_REQUIRE_LAB=1`.

use std::path::Path;
use std::process::{Command, Stdio};

/// Something a lab test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Effective user id 0 (namespaces, taps, captures).
    Root,
    /// `/dev/net/tun` (taps).
    Tun,
    /// `ip` from iproute2 with namespace support.
    Iproute,
    /// `qemu-system-x86_64`, plus what building the VM image takes (busybox-static, cpio,
    /// dpkg-deb, apt-get).
    Qemu,
    /// Wireshark's `tshark`.
    Tshark,
    /// `tcpdump`.
    Tcpdump,
    /// `lldpd` and `lldpcli`.
    Lldpd,
    /// `busybox` (its applets, e.g. `busybox ping`).
    Busybox,
    /// OpenSSH: `sshd` (run with a configuration of the test's own), `ssh`, `ssh-keygen`,
    /// and as root the privilege separation directory /run/sshd.
    Ssh,
}

impl Need {
    /// Why the need is not met, or `None` when it is.
    fn missing(self) -> Option<String> {
        let tool = |program: &str, arg: &str| -> Option<String> {
            let ok = Command::new(program)
                .arg(arg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            (!ok).then(|| format!("`{program} {arg}` does not run"))
        };
        match self {
            Need::Root => (!is_root()).then(|| "not running as root".to_string()),
            Need::Tun => {
                (!Path::new("/dev/net/tun").exists()).then(|| "no /dev/net/tun".to_string())
            }
            Need::Iproute => tool("ip", "-V"),
            Need::Qemu => tool("qemu-system-x86_64", "--version")
                .or_else(|| {
                    (!Path::new("/bin/busybox").exists())
                        .then(|| "no /bin/busybox (busybox-static)".into())
                })
                .or_else(|| tool("cpio", "--version"))
                .or_else(|| tool("dpkg-deb", "--version"))
                .or_else(|| tool("apt-get", "--version")),
            Need::Tshark => tool("tshark", "--version"),
            Need::Tcpdump => tool("tcpdump", "--version"),
            Need::Lldpd => tool("lldpd", "-v").or_else(|| tool("lldpcli", "-v")),
            Need::Busybox => tool("busybox", "--help"),
            Need::Ssh => (!Path::new("/usr/sbin/sshd").exists())
                .then(|| "no /usr/sbin/sshd (openssh-server)".to_string())
                .or_else(|| tool("ssh", "-V"))
                .or_else(|| {
                    (!Path::new("/usr/bin/ssh-keygen").exists())
                        .then(|| "no ssh-keygen (openssh-client)".into())
                })
                .or_else(|| {
                    (is_root() && !Path::new("/run/sshd").is_dir())
                        .then(|| "no /run/sshd (sshd's privilege separation directory)".into())
                }),
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// True when lab prerequisites are mandatory (`LINKSCOPE_REQUIRE_LAB=1`).
pub fn required() -> bool {
    std::env::var("LINKSCOPE_REQUIRE_LAB").is_ok_and(|v| v == "1")
}

/// True when every need is met. Otherwise prints why `test` is skipped and returns false, or
/// panics under `LINKSCOPE_REQUIRE_LAB=1`. `LINKSCOPE_SKIP_LAB=1` skips every lab test (the
/// fast suite), unless the lab is required.
pub fn ready(test: &str, needs: &[Need]) -> bool {
    if std::env::var("LINKSCOPE_SKIP_LAB").is_ok_and(|v| v == "1") {
        skip(test, "LINKSCOPE_SKIP_LAB=1");
        return false;
    }
    let missing: Vec<String> = needs.iter().filter_map(|n| n.missing()).collect();
    if missing.is_empty() {
        return true;
    }
    skip(test, &missing.join("; "));
    false
}

/// [`ready`] for a VM test: the prerequisites, then the lab's VM image (built on first use).
/// `None` when the test cannot run: it has been skipped with the reason (or failed under
/// `LINKSCOPE_REQUIRE_LAB=1`).
pub fn vm_image(test: &str, needs: &[Need]) -> Option<super::image::Image> {
    if !ready(test, needs) {
        return None;
    }
    match super::image::image() {
        Ok(image) => Some(image),
        Err(e) => {
            skip(test, &e);
            None
        }
    }
}

/// Skips `test` for `reason` (prints it), or panics under `LINKSCOPE_REQUIRE_LAB=1`.
pub fn skip(test: &str, reason: &str) {
    assert!(
        !required(),
        "{test}: lab prerequisite missing (LINKSCOPE_REQUIRE_LAB=1): {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
}
