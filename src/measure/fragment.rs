//! How an Ethernet frame fares inside the UDP tunnel: host_mtu, path MTU and IP fragments.
//!
//! QEMU sends each frame as the payload of one UDP datagram. The outer packet is the frame
//! plus 8 bytes of UDP header plus 20 bytes of IPv4 header (28 in all) or 40 bytes of IPv6
//! header (48 in all). When that exceeds the path MTU the kernel fragments the datagram
//! (RFC 791 §2.3; RFC 8200 §4.5 adds an 8-byte Fragment header on IPv6), and every fragment
//! lost loses the whole frame. A datagram whose UDP payload exceeds 65507 bytes (IPv4) or
//! 65527 bytes (IPv6) cannot be sent at all: QEMU's `sendto` fails and the frame vanishes.
//!
//! A guest NIC's `host_mtu` is the guest's IP MTU, so its largest frame is host_mtu + 14
//! bytes (+4 per 802.1Q tag). The largest host_mtu that avoids fragmentation on a path is
//! path − 42 on IPv4 and path − 62 on IPv6 (4 less per VLAN tag).

/// Ethernet header without VLAN tags.
pub const ETHERNET_HEADER: u32 = 14;
/// One 802.1Q / 802.1ad tag.
pub const VLAN_TAG: u32 = 4;
/// Largest UDP payload of an IPv4 datagram: 65535 − 20 − 8.
pub const MAX_UDP_PAYLOAD_V4: u32 = 65507;
/// Largest UDP payload of an IPv6 datagram without jumbograms: 65535 − 8.
pub const MAX_UDP_PAYLOAD_V6: u32 = 65527;
/// The path MTU assumed on loopback: the largest IPv4 packet.
pub const LOOPBACK_PATH_MTU: u32 = 65535;

/// The family of the outer (tunnel) IP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    Ipv4,
    Ipv6,
}

impl Outer {
    /// The outer IP and UDP headers added to each frame: 28 on IPv4, 48 on IPv6.
    pub fn overhead(self) -> u32 {
        match self {
            Outer::Ipv4 => 28,
            Outer::Ipv6 => 48,
        }
    }

    /// The largest frame that fits one UDP datagram at all.
    pub fn max_frame(self) -> u32 {
        match self {
            Outer::Ipv4 => MAX_UDP_PAYLOAD_V4,
            Outer::Ipv6 => MAX_UDP_PAYLOAD_V6,
        }
    }

    /// The largest host_mtu whose frames cross a path of `path_mtu` bytes unfragmented:
    /// path − 42 on IPv4, path − 62 on IPv6, 4 less per VLAN tag.
    pub fn largest_host_mtu(self, path_mtu: u32, vlan_tags: u32) -> u32 {
        path_mtu.saturating_sub(self.overhead() + ETHERNET_HEADER + VLAN_TAG * vlan_tags)
    }

    /// The number of IP fragments one datagram carrying `frame_len` bytes becomes on a path
    /// of `path_mtu` bytes (1 when it fits). Each fragment carries a multiple of 8 bytes of
    /// the IP payload (the UDP header and the frame), except the last one.
    pub fn fragments(self, frame_len: u32, path_mtu: u32) -> u32 {
        if frame_len + self.overhead() <= path_mtu {
            return 1;
        }
        let per_fragment = match self {
            Outer::Ipv4 => path_mtu.saturating_sub(20),
            Outer::Ipv6 => path_mtu.saturating_sub(48),
        } / 8
            * 8;
        if per_fragment == 0 {
            return u32::MAX;
        }
        (frame_len + 8).div_ceil(per_fragment)
    }
}

/// What a frame's size means for the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fit {
    /// Larger than host_mtu + 14 (+4 per VLAN tag): the guest sent more than its NIC allows.
    pub exceeds_host_mtu: bool,
    /// Number of IP fragments the datagram becomes; 1 when it crosses whole, 0 when unsendable.
    pub fragments: u32,
    /// Larger than the largest UDP payload: QEMU cannot send it at all.
    pub unsendable: bool,
}

/// The MTU figures of one link, against which each frame is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The guests' host_mtu on this link, when known.
    pub host_mtu: Option<u32>,
    /// The path MTU between the tunnel endpoints.
    pub path_mtu: u32,
    /// The family of the tunnel's packets.
    pub outer: Outer,
}

impl Budget {
    /// Classifies a frame of `frame_len` bytes carrying `vlan_tags` VLAN tags.
    pub fn fit(&self, frame_len: u32, vlan_tags: u32) -> Fit {
        let exceeds_host_mtu = self
            .host_mtu
            .is_some_and(|mtu| frame_len > mtu + ETHERNET_HEADER + VLAN_TAG * vlan_tags);
        if frame_len > self.outer.max_frame() {
            return Fit {
                exceeds_host_mtu,
                fragments: 0,
                unsendable: true,
            };
        }
        Fit {
            exceeds_host_mtu,
            fragments: self.outer.fragments(frame_len, self.path_mtu),
            unsendable: false,
        }
    }
}

/// What one direction of a link showed, as input to [`advice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen<'a> {
    /// The direction's label, e.g. "b>a".
    pub direction: &'a str,
    pub frames: u64,
    pub fragmented_frames: u64,
    pub unsendable: u64,
    pub exceeds_host_mtu: u64,
    /// The largest frame seen.
    pub max_frame: u32,
    /// The most VLAN tags seen on one frame.
    pub max_vlan_tags: u32,
}

/// One line of advice per problem seen in a direction, empty when the link is fine.
///
/// ```
/// use linkscope::measure::fragment::{advice, Budget, Outer, Seen};
/// let budget = Budget { host_mtu: Some(9000), path_mtu: 1500, outer: Outer::Ipv4 };
/// let seen = Seen { direction: "b>a", frames: 100, fragmented_frames: 37, unsendable: 0,
///                   exceeds_host_mtu: 0, max_frame: 9014, max_vlan_tags: 0 };
/// assert_eq!(advice(&budget, &seen), vec![
///     "host_mtu 9000 on a 1500-byte path: 37 % of b>a frames were fragmented; \
///      set host_mtu ≤ 1458 or raise the path MTU".to_string()]);
/// ```
pub fn advice(budget: &Budget, seen: &Seen<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    if seen.frames == 0 {
        return lines;
    }
    let fix = budget
        .outer
        .largest_host_mtu(budget.path_mtu, seen.max_vlan_tags);
    let host = match budget.host_mtu {
        Some(mtu) => format!("host_mtu {mtu}"),
        None => format!("frames up to {} bytes", seen.max_frame),
    };
    if seen.fragmented_frames > 0 {
        lines.push(format!(
            "{host} on a {}-byte path: {} % of {} frames were fragmented; set host_mtu ≤ {fix} or raise the path MTU",
            budget.path_mtu,
            percent(seen.fragmented_frames, seen.frames),
            seen.direction,
        ));
    }
    if seen.unsendable > 0 {
        let (limit, family) = match budget.outer {
            Outer::Ipv4 => (MAX_UDP_PAYLOAD_V4, "IPv4"),
            Outer::Ipv6 => (MAX_UDP_PAYLOAD_V6, "IPv6"),
        };
        lines.push(format!(
            "{host}: {} {} frames above {limit} bytes cannot be sent over {family} UDP and are lost; set host_mtu ≤ {fix}",
            seen.unsendable, seen.direction,
        ));
    }
    if seen.exceeds_host_mtu > 0
        && let Some(mtu) = budget.host_mtu
    {
        lines.push(format!(
            "{} {} frames exceed host_mtu {mtu} (largest {} bytes): set the guest's interface MTU ≤ {mtu}",
            seen.exceeds_host_mtu, seen.direction, seen.max_frame,
        ));
    }
    lines
}

/// `part` as a whole percentage of `whole`, rounded to nearest; 1 rather than 0 when
/// `part` is not zero, so a rare problem never reads as "0 %".
fn percent(part: u64, whole: u64) -> u64 {
    let p = (part * 100 + whole / 2) / whole;
    if p == 0 && part > 0 { 1 } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_1500: Budget = Budget {
        host_mtu: Some(9000),
        path_mtu: 1500,
        outer: Outer::Ipv4,
    };

    #[test]
    fn largest_host_mtu_per_family_and_tags() {
        assert_eq!(Outer::Ipv4.largest_host_mtu(1500, 0), 1458);
        assert_eq!(Outer::Ipv6.largest_host_mtu(1500, 0), 1438);
        assert_eq!(Outer::Ipv4.largest_host_mtu(1500, 1), 1454);
        assert_eq!(Outer::Ipv4.largest_host_mtu(65535, 0), 65493);
    }

    #[test]
    fn a_frame_of_host_mtu_plus_headers_fits_exactly() {
        // host_mtu 1458 → frame 1472 → datagram 1500 on the wire.
        assert_eq!(V4_1500.fit(1472, 0).fragments, 1);
        assert_eq!(V4_1500.fit(1473, 0).fragments, 2);
        // IPv6: 1452 + 48 = 1500.
        let v6 = Budget {
            outer: Outer::Ipv6,
            ..V4_1500
        };
        assert_eq!(v6.fit(1452, 0).fragments, 1);
        assert_eq!(v6.fit(1453, 0).fragments, 2);
    }

    #[test]
    fn fragment_counts_follow_eight_byte_offsets() {
        // IPv4 1500: 1480 bytes of IP payload per fragment; a 3014-byte frame (ping -s 2972
        // with MTU 3000 guest) is 3022 bytes of UDP → 3 fragments.
        assert_eq!(Outer::Ipv4.fragments(3014, 1500), 3);
        assert_eq!(Outer::Ipv4.fragments(9014, 1500), 7);
        // IPv6 1500: 1448 bytes per fragment (1500 − 40 − 8 = 1452, rounded down to 8s).
        assert_eq!(Outer::Ipv6.fragments(2888, 1500), 2);
        assert_eq!(Outer::Ipv6.fragments(2889, 1500), 3);
    }

    #[test]
    fn host_mtu_limit_counts_vlan_tags() {
        let b = Budget {
            host_mtu: Some(1500),
            path_mtu: 65535,
            outer: Outer::Ipv4,
        };
        assert!(!b.fit(1514, 0).exceeds_host_mtu);
        assert!(b.fit(1515, 0).exceeds_host_mtu);
        assert!(!b.fit(1518, 1).exceeds_host_mtu);
        assert!(b.fit(1519, 1).exceeds_host_mtu);
        let unknown = Budget {
            host_mtu: None,
            ..b
        };
        assert!(!unknown.fit(9000, 0).exceeds_host_mtu);
    }

    #[test]
    fn above_65507_is_unsendable_over_ipv4() {
        let b = Budget {
            host_mtu: None,
            path_mtu: 65535,
            outer: Outer::Ipv4,
        };
        assert_eq!(
            b.fit(65507, 0),
            Fit {
                exceeds_host_mtu: false,
                fragments: 1,
                unsendable: false
            }
        );
        assert!(b.fit(65508, 0).unsendable);
        assert_eq!(b.fit(65508, 0).fragments, 0);
    }

    #[test]
    fn advice_names_every_problem_and_nothing_when_fine() {
        let seen = Seen {
            direction: "a>b",
            frames: 3,
            fragmented_frames: 1,
            unsendable: 1,
            exceeds_host_mtu: 1,
            max_frame: 65600,
            max_vlan_tags: 1,
        };
        let lines = advice(&V4_1500, &seen);
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "host_mtu 9000 on a 1500-byte path: 33 % of a>b frames were fragmented; set host_mtu ≤ 1454 or raise the path MTU"
        );
        assert!(lines[1].contains("1 a>b frames above 65507 bytes cannot be sent over IPv4 UDP"));
        assert!(lines[2].contains("exceed host_mtu 9000"));
        let fine = Seen {
            fragmented_frames: 0,
            unsendable: 0,
            exceeds_host_mtu: 0,
            ..seen
        };
        assert!(advice(&V4_1500, &fine).is_empty());
    }

    #[test]
    fn rare_problems_never_read_as_zero_percent() {
        assert_eq!(percent(1, 1000), 1);
        assert_eq!(percent(0, 1000), 0);
        assert_eq!(percent(37, 100), 37);
    }
}
