//! The deterministic MAC scheme: `prefix:vm_hi:vm_lo:eth` with a locally administered,
//! unicast first byte (VM 100 eth1 with prefix bc:24:99 → be:24:99:00:64:01).

use super::mapping::NicRef;

/// Parses `mac_prefix` as Python's `int(part, 16)` on each of the three `:`-separated parts.
pub(crate) fn parse_prefix(text: &str) -> Result<[u8; 3], String> {
    let lower = text.to_lowercase();
    let parts: Vec<&str> = lower.split(':').collect();
    if parts.len() != 3 {
        return Err(format!("must have 3 bytes (got {text})"));
    }
    let mut bytes = [0u8; 3];
    for (byte, part) in bytes.iter_mut().zip(&parts) {
        let t = part.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let t = t.replace('_', "");
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("contains non-hex bytes: {text}"));
        }
        let significant = t.trim_start_matches('0');
        let significant = if significant.is_empty() {
            "0"
        } else {
            significant
        };
        *byte = u8::from_str_radix(significant, 16)
            .map_err(|_| format!("byte out of range: {text}"))?;
    }
    Ok(bytes)
}

/// Sets the locally administered bit and clears the multicast bit of the first byte.
pub(crate) fn adjust_prefix(mut bytes: [u8; 3]) -> [u8; 3] {
    bytes[0] = (bytes[0] | 0x02) & 0xfe;
    bytes
}

/// The MAC of one NIC, lowercase hex with colons.
pub fn mac(prefix: [u8; 3], nic: NicRef) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        prefix[0],
        prefix[1],
        prefix[2],
        (nic.vm >> 8) & 0xff,
        nic.vm & 0xff,
        nic.eth & 0xff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_readme_example() {
        let prefix = adjust_prefix(parse_prefix("bc:24:99").unwrap());
        assert_eq!(mac(prefix, NicRef { vm: 100, eth: 1 }), "be:24:99:00:64:01");
    }

    #[test]
    fn first_byte_is_local_unicast() {
        assert_eq!(adjust_prefix([0x01, 0, 0]), [0x02, 0, 0]);
        assert_eq!(adjust_prefix([0xff, 0, 0]), [0xfe, 0, 0]);
        assert_eq!(adjust_prefix([0x52, 0x54, 0x00]), [0x52, 0x54, 0x00]);
    }

    #[test]
    fn wide_values_wrap_per_byte() {
        let nic = NicRef {
            vm: 0x12345,
            eth: 0x101,
        };
        assert_eq!(mac([0xbe, 0x24, 0x99], nic), "be:24:99:23:45:01");
    }

    #[test]
    fn prefix_parsing() {
        assert_eq!(parse_prefix("BC:24:0x9"), Ok([0xbc, 0x24, 0x09]));
        assert_eq!(parse_prefix(" 0a : 00 :ff"), Ok([0x0a, 0, 0xff]));
        assert_eq!(parse_prefix("000bc:1:2"), Ok([0xbc, 1, 2]));
        for bad in ["bc:24", "bc:24:99:00", "bc:zz:99", "bc:100:99", "bc::99"] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
    }
}
