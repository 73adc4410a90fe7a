//! UDP port schemes: which port each NIC binds.
//!
//! - `legacy` (default): the reference generator's formula, the decimal digits of the
//!   first digit of `udp_port_base`, the VMID and the eth index read as one number (base
//!   40000, VM 100, eth 1 → 41001). It holds VMIDs up to 999 and eth indices up to 9.
//! - `stride`: `udp_port_base + (vmid − port_first_vmid) × port_stride + eth`. Each VM owns a
//!   block of `port_stride` consecutive ports, so two NICs never share a port (eth must stay
//!   below the stride) and a port depends only on its own VM and eth: adding links never
//!   moves an existing port.
//!
//! Per-link explicit ports (`{port_a, port_b}`) bypass the scheme; collisions with any other
//! NIC's port are refused by the planner.

use super::mapping::NicRef;

/// How ports are derived from (VM, eth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortScheme {
    /// `{digit}{vmid}{eth}` read as a number.
    Legacy { digit: u8 },
    /// `base + (vmid − first_vmid) × stride + eth`.
    Stride {
        base: u32,
        stride: u32,
        first_vmid: u32,
    },
}

impl PortScheme {
    /// The scheme's name in `port_scheme`.
    pub fn name(&self) -> &'static str {
        match self {
            PortScheme::Legacy { .. } => "legacy",
            PortScheme::Stride { .. } => "stride",
        }
    }

    /// The formula as the `qm` output's header states it.
    pub fn formula(&self) -> String {
        match self {
            PortScheme::Legacy { digit } => format!("{digit}+VMID+ethIndex"),
            PortScheme::Stride {
                base,
                stride,
                first_vmid,
            } => format!("{base}+(VMID-{first_vmid})*{stride}+ethIndex"),
        }
    }

    /// The port of `nic`, or why this scheme cannot place it.
    pub fn port(&self, nic: NicRef) -> Result<u16, String> {
        let port = match *self {
            PortScheme::Legacy { digit } => {
                if nic.vm > 999 || nic.eth > 9 {
                    return Err(format!(
                        "VMID {} must be <=999 and eth index {} <=9 with the legacy port scheme (use `port_scheme: stride` or an explicit port)",
                        nic.vm, nic.eth
                    ));
                }
                format!("{digit}{}{}", nic.vm, nic.eth)
                    .parse::<u64>()
                    .unwrap_or(u64::MAX)
            }
            PortScheme::Stride {
                base,
                stride,
                first_vmid,
            } => {
                if nic.vm < first_vmid {
                    return Err(format!(
                        "VMID {} is below port_first_vmid {first_vmid}",
                        nic.vm
                    ));
                }
                if nic.eth >= stride {
                    return Err(format!(
                        "eth index {} does not fit port_stride {stride} (eth must be below it)",
                        nic.eth
                    ));
                }
                u64::from(base)
                    + u64::from(nic.vm - first_vmid) * u64::from(stride)
                    + u64::from(nic.eth)
            }
        };
        u16::try_from(port).map_err(|_| match self {
            PortScheme::Legacy { .. } => format!("Port {port} out of range"),
            PortScheme::Stride { .. } => format!(
                "port {port} of VM {} eth{} is above 65535 (lower udp_port_base or port_stride, or raise port_first_vmid)",
                nic.vm, nic.eth
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(vm: u32, eth: u32) -> NicRef {
        NicRef { vm, eth }
    }

    #[test]
    fn legacy_formula() {
        let s = PortScheme::Legacy { digit: 4 };
        assert_eq!(s.port(nic(100, 1)), Ok(41001));
        assert_eq!(s.port(nic(102, 1)), Ok(41021));
        assert_eq!(s.port(nic(5, 0)), Ok(450));
        assert_eq!(PortScheme::Legacy { digit: 0 }.port(nic(0, 0)), Ok(0));
        assert!(s.port(nic(1000, 1)).is_err());
        assert!(s.port(nic(100, 10)).is_err());
        assert_eq!(
            PortScheme::Legacy { digit: 6 }.port(nic(600, 0)),
            Err("Port 66000 out of range".into())
        );
        assert_eq!(PortScheme::Legacy { digit: 6 }.port(nic(553, 5)), Ok(65535));
    }

    #[test]
    fn stride_formula_and_limits() {
        let s = PortScheme::Stride {
            base: 10000,
            stride: 32,
            first_vmid: 100,
        };
        assert_eq!(s.port(nic(100, 0)), Ok(10000));
        assert_eq!(s.port(nic(1234, 31)), Ok(10000 + 1134 * 32 + 31));
        assert!(s.port(nic(99, 0)).unwrap_err().contains("port_first_vmid"));
        assert!(s.port(nic(100, 32)).unwrap_err().contains("port_stride"));
        assert!(s.port(nic(1836, 0)).unwrap_err().contains("above 65535"));
        assert!(s.port(nic(u32::MAX, 0)).is_err());
    }
}
