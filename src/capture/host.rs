//! The machine that writes a capture, as the pcapng section header describes it
//! (`shb_hardware`, `shb_os`, `shb_userappl`).
//!
//! Read from `/proc` (the same strings `uname` prints) and `/etc/os-release`, without any
//! system call of our own; a value that cannot be read falls back to what the compiler knows
//! (`std::env::consts`), so the header is never empty.

use std::fs;

/// What the section header says about the machine and the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Host {
    /// CPU model and architecture, e.g. `AMD EPYC (x86_64)`.
    pub hardware: String,
    /// Kernel name and release, then the distribution, e.g.
    /// `Linux 6.1.0-28-amd64, Debian GNU/Linux 12 (bookworm)`.
    pub os: String,
    /// Program name and version, e.g. `linkscope 0.1.0`.
    pub application: String,
}

impl Host {
    /// Describes the running machine and this build of linkscope.
    pub fn current() -> Host {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let ostype = fs::read_to_string("/proc/sys/kernel/ostype").unwrap_or_default();
        let osrelease = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
        Host {
            hardware: hardware(&cpuinfo, std::env::consts::ARCH),
            os: os(&ostype, &osrelease, &os_release),
            application: format!("linkscope {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `model name` of the first CPU in `/proc/cpuinfo` (other architectures call it `Model`,
/// `cpu model` or `Processor`), followed by the architecture in parentheses.
fn hardware(cpuinfo: &str, arch: &str) -> String {
    let model = cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        let value = value.trim();
        let known = ["model name", "Model", "cpu model", "Processor", "cpu"];
        (known.contains(&key) && !value.is_empty()).then_some(value)
    });
    match model {
        Some(model) => format!("{model} ({arch})"),
        None => arch.to_owned(),
    }
}

/// `uname -sr` from `/proc/sys/kernel`, then `PRETTY_NAME` from `/etc/os-release`.
fn os(ostype: &str, osrelease: &str, os_release: &str) -> String {
    let ostype = ostype.trim();
    let kernel = match (ostype.is_empty(), osrelease.trim()) {
        (true, _) => std::env::consts::OS.to_owned(),
        (false, "") => ostype.to_owned(),
        (false, release) => format!("{ostype} {release}"),
    };
    let pretty = os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then_some(value)
    });
    match pretty {
        Some(pretty) => format!("{kernel}, {pretty}"),
        None => kernel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_names_the_cpu_model_and_architecture() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(hardware(cpuinfo, "x86_64"), "AMD EPYC (x86_64)");
        let arm =
            "processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            hardware(arm, "aarch64"),
            "Raspberry Pi 4 Model B Rev 1.4 (aarch64)"
        );
        assert_eq!(hardware("", "riscv64"), "riscv64");
    }

    #[test]
    fn os_is_uname_and_distribution() {
        let release = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os("Linux\n", "6.1.0-28-amd64\n", release),
            "Linux 6.1.0-28-amd64, Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(os("Linux\n", "6.1.0\n", ""), "Linux 6.1.0");
        assert_eq!(
            os("", "", "PRETTY_NAME=Alpine"),
            format!("{}, Alpine", std::env::consts::OS)
        );
    }

    #[test]
    fn current_host_names_this_build() {
        let host = Host::current();
        assert_eq!(
            host.application,
            format!("linkscope {}", env!("CARGO_PKG_VERSION"))
        );
        assert!(!host.hardware.is_empty());
        assert!(!host.os.is_empty());
    }
}
