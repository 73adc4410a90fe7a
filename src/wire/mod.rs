//! Layer-2 control-plane frames: classification and decoders.
//!
//! [`classify`] splits an Ethernet frame into addresses, VLAN tags and a [`Payload`] without
//! allocating: Ethernet II versus IEEE 802.3 length plus LLC (IEEE 802.2) and SNAP, 802.1Q /
//! 802.1ad tags (parsed with etherparse). The protocol modules follow the smoltcp pattern: a
//! zero-copy view with `new_checked` (after which no accessor panics), field offsets in a
//! `mod field`, and an owned `Repr` with `parse` and `emit`.
//!
//! - [`lldp`]: IEEE 802.1AB LLDPDUs, EtherType 0x88cc whatever the destination (nearest
//!   bridge 01:80:c2:00:00:0e, non-TPMR 01:80:c2:00:00:03 or customer 01:80:c2:00:00:00),
//!   as Wireshark does.
//! - [`stp`]: IEEE 802.1D / 802.1Q BPDUs (STP, RSTP, MSTP) on LLC 42-42-03, and Cisco PVST+
//!   on SNAP 00-00-0c / 0x010b.
//! - [`lacp`] and [`marker`]: IEEE 802.1AX slow protocols (EtherType 0x8809, subtypes 1, 2).
//!
//! [`summary`] renders any frame as one tcpdump-like line.

pub mod lacp;
pub mod lldp;
pub mod marker;
#[cfg(test)]
mod proptests;
pub mod savefile;
pub mod stp;
mod summary;

use std::fmt;
use std::ops::Range;

use etherparse::EtherType;

pub use summary::summary;

/// EtherType of LLDP (IEEE 802.1AB clause 7.2).
pub const ETHERTYPE_LLDP: EtherType = EtherType(0x88cc);
/// Length of the Ethernet header without tags: two addresses and the EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Length of one VLAN tag: TPID and tag control information.
pub const VLAN_TAG_LEN: usize = 4;
/// EtherType of the IEEE 802.3 slow protocols (LACP, Marker, OAM).
pub const ETHERTYPE_SLOW: EtherType = EtherType(0x8809);
/// Slow protocol subtype of LACP (IEEE 802.1AX clause 6.4.2.3).
pub const SLOW_SUBTYPE_LACP: u8 = 1;
/// Slow protocol subtype of the Marker protocol (IEEE 802.1AX clause 6.5.3.3).
pub const SLOW_SUBTYPE_MARKER: u8 = 2;
/// LLC service access point of the Spanning Tree protocols (IEEE 802.1D clause 7.12.3).
pub const LLC_SAP_STP: u8 = 0x42;
/// LLC service access point announcing a SNAP header.
pub const LLC_SAP_SNAP: u8 = 0xaa;
/// LLC control field of an unnumbered information frame.
pub const LLC_CONTROL_UI: u8 = 0x03;
/// Organisation code of Cisco, as used in the PVST+ SNAP header.
pub const OUI_CISCO: [u8; 3] = [0x00, 0x00, 0x0c];
/// SNAP protocol id of PVST+.
pub const SNAP_PID_PVST: u16 = 0x010b;
/// Most VLAN tags [`classify`] accepts in front of the payload.
pub const MAX_VLAN_TAGS: usize = 3;

/// A protocol layer, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Ethernet,
    Vlan,
    Llc,
    Snap,
    Slow,
    Lldp,
    Stp,
    Pvst,
    Lacp,
    Marker,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN tag",
            Layer::Llc => "LLC",
            Layer::Snap => "SNAP",
            Layer::Slow => "slow protocol",
            Layer::Lldp => "LLDP",
            Layer::Stp => "STP",
            Layer::Pvst => "PVST+",
            Layer::Lacp => "LACP",
            Layer::Marker => "Marker",
        })
    }
}

/// Why a frame could not be decoded (or a `Repr` not emitted): which layer, which field,
/// which length or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end before the field does.
    #[error("{layer}: {field} truncated: need {need} bytes, have {have}")]
    Truncated {
        layer: Layer,
        field: &'static str,
        need: usize,
        have: usize,
    },
    /// A length field or a TLV length the standard does not allow.
    #[error("{layer}: {field}: length {len} is invalid (must be {expected})")]
    Length {
        layer: Layer,
        field: &'static str,
        len: usize,
        expected: &'static str,
    },
    /// A field holds a value this decoder does not accept.
    #[error("{layer}: {field}: unsupported value {value:#x}")]
    Value {
        layer: Layer,
        field: &'static str,
        value: u32,
    },
    /// On emit: a value longer than its length field can say.
    #[error("{layer}: {field}: {len} bytes exceed the maximum of {max}")]
    TooLong {
        layer: Layer,
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// Checks that `data` holds at least `need` bytes.
pub(crate) fn check_len(
    data: &[u8],
    need: usize,
    layer: Layer,
    field: &'static str,
) -> Result<(), Error> {
    if data.len() < need {
        Err(Error::Truncated {
            layer,
            field,
            need,
            have: data.len(),
        })
    } else {
        Ok(())
    }
}

/// Length of a LACPDU or a Marker PDU, from the subtype byte (IEEE 802.1AX clauses 6.4.2.3
/// and 6.5.3.3): both are fixed layouts of 110 bytes.
pub(crate) const SLOW_PDU_LEN: usize = 110;

/// Checks the length and the subtype (byte 0) of a LACPDU or a Marker PDU (`name`).
pub(crate) fn check_slow_pdu(
    data: &[u8],
    subtype: u8,
    layer: Layer,
    name: &'static str,
) -> Result<(), Error> {
    check_len(data, SLOW_PDU_LEN, layer, name)?;
    if data[0] != subtype {
        return Err(Error::Value {
            layer,
            field: "subtype",
            value: data[0].into(),
        });
    }
    Ok(())
}

/// Appends a zeroed LACPDU or Marker PDU with its subtype (byte 0) and version (byte 1) set,
/// and returns it for the caller to fill in.
pub(crate) fn emit_slow_pdu(out: &mut Vec<u8>, subtype: u8, version: u8) -> &mut [u8] {
    let start = out.len();
    out.resize(start + SLOW_PDU_LEN, 0);
    let d = &mut out[start..];
    d[0] = subtype;
    d[1] = version;
    d
}

/// The bytes of `field`, a whole range of `data`: indexing the range checks its end against
/// the buffer, not only its start. A range whose width is not `N` is a bug in a `mod field`,
/// which the property tests (every accessor on every checked view) find.
pub(crate) fn array<const N: usize>(data: &[u8], field: Range<usize>) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&data[field]);
    out
}

/// A big-endian u16 field, read whole.
pub(crate) fn be16(data: &[u8], field: Range<usize>) -> u16 {
    u16::from_be_bytes(array(data, field))
}

/// A big-endian u32 field, read whole.
pub(crate) fn be32(data: &[u8], field: Range<usize>) -> u32 {
    u32::from_be_bytes(array(data, field))
}

/// A MAC address field, read whole.
pub(crate) fn mac(data: &[u8], field: Range<usize>) -> MacAddr {
    MacAddr(array(data, field))
}

/// Lower-case hex of `data`, no separators.
pub fn hex(data: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// An IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// The VLAN ids of a frame's tags, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vlans {
    ids: [u16; MAX_VLAN_TAGS],
    len: usize,
}

impl Vlans {
    /// The VLAN ids, outermost first.
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len]
    }
}

/// What an Ethernet frame carries, as found by [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// An LLDPDU (from its first TLV).
    Lldp(&'a [u8]),
    /// A BPDU on LLC 42-42-03 (from its protocol identifier).
    Stp(&'a [u8]),
    /// A PVST+ BPDU on SNAP 00-00-0c / 0x010b (from its protocol identifier).
    Pvst(&'a [u8]),
    /// A LACPDU (from its subtype byte).
    Lacp(&'a [u8]),
    /// A Marker PDU (from its subtype byte).
    Marker(&'a [u8]),
    /// Another slow protocol (OAM, ...), from its subtype byte.
    Slow { subtype: u8, data: &'a [u8] },
    /// Any other Ethernet II payload.
    EtherType(EtherType, &'a [u8]),
    /// Another SNAP payload.
    Snap {
        oui: [u8; 3],
        pid: u16,
        data: &'a [u8],
    },
    /// Another IEEE 802.3 LLC payload (data after the one-byte control field).
    Llc {
        dsap: u8,
        ssap: u8,
        control: u8,
        data: &'a [u8],
    },
}

/// An Ethernet frame split into addresses, tags and payload. Borrowed, never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub vlans: Vlans,
    pub payload: Payload<'a>,
}

/// An Ethernet frame with its VLAN tags stepped over: the one walk over 802.1Q / 802.1ad tags
/// in the crate. Borrowed, never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untagged<'a> {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The tags' VLAN ids, outermost first.
    pub vlans: Vlans,
    /// The EtherType (or IEEE 802.3 length, below 0x0600) after the last tag.
    pub ether_type: EtherType,
    /// What follows it, padding included.
    pub payload: &'a [u8],
}

/// Steps over the VLAN tags of an Ethernet frame (without FCS): up to [`MAX_VLAN_TAGS`] tags
/// with the TPID of 802.1Q (0x8100), 802.1ad (0x88a8) or pre-standard double tagging
/// (0x9100). A few byte reads, no copy of the payload: the forwarding
/// path runs it on every frame it may copy.
#[inline]
pub fn untag(frame: &[u8]) -> Result<Untagged<'_>, Error> {
    let Some((h, mut rest)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
        return Err(Error::Truncated {
            layer: Layer::Ethernet,
            field: "header",
            need: ETHERNET_HEADER_LEN,
            have: frame.len(),
        });
    };
    let mut ether_type = EtherType(u16::from_be_bytes([h[12], h[13]]));
    let mut vlans = Vlans::default();
    while matches!(
        ether_type,
        EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME
    ) {
        if vlans.len == MAX_VLAN_TAGS {
            return Err(Error::Value {
                layer: Layer::Vlan,
                field: "tag count",
                value: MAX_VLAN_TAGS as u32 + 1,
            });
        }
        let Some((tag, after)) = rest.split_first_chunk::<VLAN_TAG_LEN>() else {
            return Err(Error::Truncated {
                layer: Layer::Vlan,
                field: "tag",
                need: VLAN_TAG_LEN,
                have: rest.len(),
            });
        };
        vlans.ids[vlans.len] = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
        vlans.len += 1;
        ether_type = EtherType(u16::from_be_bytes([tag[2], tag[3]]));
        rest = after;
    }
    Ok(Untagged {
        dst: MacAddr([h[0], h[1], h[2], h[3], h[4], h[5]]),
        src: MacAddr([h[6], h[7], h[8], h[9], h[10], h[11]]),
        vlans,
        ether_type,
        payload: rest,
    })
}

/// Splits an Ethernet frame (without FCS) into addresses, VLAN tags and a classified
/// payload. 802.3 frames are cut to their length field, dropping the padding.
pub fn classify(frame: &[u8]) -> Result<Frame<'_>, Error> {
    let Untagged {
        dst,
        src,
        vlans,
        ether_type,
        payload: rest,
    } = untag(frame)?;
    let payload = if ether_type.0 < 0x0600 {
        let len = usize::from(ether_type.0);
        check_len(rest, len, Layer::Ethernet, "802.3 payload")?;
        llc(&rest[..len])?
    } else if ether_type == ETHERTYPE_LLDP {
        Payload::Lldp(rest)
    } else if ether_type == ETHERTYPE_SLOW {
        check_len(rest, 1, Layer::Slow, "subtype")?;
        match rest[0] {
            SLOW_SUBTYPE_LACP => Payload::Lacp(rest),
            SLOW_SUBTYPE_MARKER => Payload::Marker(rest),
            subtype => Payload::Slow {
                subtype,
                data: rest,
            },
        }
    } else {
        Payload::EtherType(ether_type, rest)
    };
    Ok(Frame {
        dst,
        src,
        vlans,
        payload,
    })
}

fn llc(data: &[u8]) -> Result<Payload<'_>, Error> {
    check_len(data, 3, Layer::Llc, "header")?;
    let (dsap, ssap, control) = (data[0], data[1], data[2]);
    let rest = &data[3..];
    Ok(match (dsap, ssap, control) {
        (LLC_SAP_STP, LLC_SAP_STP, LLC_CONTROL_UI) => Payload::Stp(rest),
        (LLC_SAP_SNAP, LLC_SAP_SNAP, LLC_CONTROL_UI) => {
            check_len(rest, 5, Layer::Snap, "header")?;
            let oui = [rest[0], rest[1], rest[2]];
            let pid = be16(rest, 3..5);
            if oui == OUI_CISCO && pid == SNAP_PID_PVST {
                Payload::Pvst(&rest[5..])
            } else {
                Payload::Snap {
                    oui,
                    pid,
                    data: &rest[5..],
                }
            }
        }
        _ => Payload::Llc {
            dsap,
            ssap,
            control,
            data: rest,
        },
    })
}

/// A decoded control-plane PDU (LLDP values borrow the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control<'a> {
    Lldp(lldp::Repr<'a>),
    Stp(stp::Repr),
    Lacp(lacp::Repr),
    Marker(marker::Repr),
}

/// The control protocols [`Frame::control`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Lldp,
    Stp,
    Lacp,
    Marker,
}

impl Protocol {
    /// Lower-case name, as in the JSON `proto` key.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Lldp => "lldp",
            Protocol::Stp => "stp",
            Protocol::Lacp => "lacp",
            Protocol::Marker => "marker",
        }
    }
}

impl Control<'_> {
    /// The protocol of this PDU.
    pub fn protocol(&self) -> Protocol {
        match self {
            Control::Lldp(_) => Protocol::Lldp,
            Control::Stp(_) => Protocol::Stp,
            Control::Lacp(_) => Protocol::Lacp,
            Control::Marker(_) => Protocol::Marker,
        }
    }
}

/// One line of what matters, e.g. `chassis=mac 52:54:00:00:00:01 port=ifname eth1 ttl=120`.
impl fmt::Display for Control<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::Lldp(r) => r.fmt(f),
            Control::Stp(r) => r.fmt(f),
            Control::Lacp(r) => r.fmt(f),
            Control::Marker(r) => r.fmt(f),
        }
    }
}

impl<'a> Frame<'a> {
    /// The control protocol this frame carries, if any (without decoding it).
    pub fn protocol(&self) -> Option<Protocol> {
        match self.payload {
            Payload::Lldp(_) => Some(Protocol::Lldp),
            Payload::Stp(_) | Payload::Pvst(_) => Some(Protocol::Stp),
            Payload::Lacp(_) => Some(Protocol::Lacp),
            Payload::Marker(_) => Some(Protocol::Marker),
            _ => None,
        }
    }

    /// Decodes the control PDU of this frame; `None` when it carries none.
    pub fn control(&self) -> Option<Result<Control<'a>, Error>> {
        Some(match self.payload {
            Payload::Lldp(d) => lldp::Repr::parse(d).map(Control::Lldp),
            Payload::Stp(d) => stp::Repr::parse(d).map(Control::Stp),
            Payload::Pvst(d) => stp::Repr::parse_pvst(d).map(Control::Stp),
            Payload::Lacp(d) => lacp::Repr::parse(d).map(Control::Lacp),
            Payload::Marker(d) => marker::Repr::parse(d).map(Control::Marker),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn eth2(dst: [u8; 6], tags: &[(u16, u16)], ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&SRC);
        for &(tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn lldp_by_ethertype() {
        let f = eth2([1, 0x80, 0xc2, 0, 0, 0x0e], &[], 0x88cc, &[2, 0]);
        let c = classify(&f).unwrap();
        assert_eq!(c.payload, Payload::Lldp(&[2, 0]));
        assert_eq!(c.src, MacAddr(SRC));
        assert_eq!(c.dst.to_string(), "01:80:c2:00:00:0e");
        assert_eq!(c.protocol(), Some(Protocol::Lldp));
    }

    #[test]
    fn stp_llc_cut_to_length() {
        let mut payload = vec![0x42, 0x42, 0x03, 0, 0, 0, 0x80];
        payload.extend_from_slice(&[0; 40]);
        let f = eth2([1, 0x80, 0xc2, 0, 0, 0], &[], 7, &payload);
        let c = classify(&f).unwrap();
        assert_eq!(c.payload, Payload::Stp(&[0, 0, 0, 0x80]));
        assert_eq!(
            c.control(),
            Some(Ok(Control::Stp(stp::Repr {
                version: stp::Version::STP,
                body: stp::Body::Tcn,
                pvst_vlan: None,
            })))
        );
    }

    #[test]
    fn pvst_snap_behind_vlan_tag() {
        let payload = [0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x01, 0x0b, 9, 9];
        let f = eth2(
            [1, 0, 0x0c, 0xcc, 0xcc, 0xcd],
            &[(0x8100, 0x2000 | 20)],
            payload.len() as u16,
            &payload,
        );
        let c = classify(&f).unwrap();
        assert_eq!(c.vlans.as_slice(), &[20]);
        assert_eq!(c.payload, Payload::Pvst(&[9, 9]));
    }

    #[test]
    fn qinq_tags_outermost_first() {
        let f = eth2([2; 6], &[(0x88a8, 100), (0x8100, 200)], 0x0800, &[]);
        let c = classify(&f).unwrap();
        assert_eq!(c.vlans.as_slice(), &[100, 200]);
        assert_eq!(c.payload, Payload::EtherType(EtherType::IPV4, &[]));
        assert_eq!(c.protocol(), None);
        assert_eq!(c.control(), None);
    }

    #[test]
    fn too_many_tags() {
        let tags = [(0x8100, 1); 4];
        let f = eth2([2; 6], &tags, 0x0800, &[]);
        assert_eq!(
            classify(&f),
            Err(Error::Value {
                layer: Layer::Vlan,
                field: "tag count",
                value: 4
            })
        );
    }

    #[test]
    fn slow_protocol_subtypes() {
        let f = eth2([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[1, 1]);
        assert_eq!(classify(&f).unwrap().payload, Payload::Lacp(&[1, 1]));
        let f = eth2([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[2, 1]);
        assert_eq!(classify(&f).unwrap().payload, Payload::Marker(&[2, 1]));
        let f = eth2([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[3, 1]);
        assert_eq!(
            classify(&f).unwrap().payload,
            Payload::Slow {
                subtype: 3,
                data: &[3, 1]
            }
        );
        let f = eth2([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[]);
        assert_eq!(
            classify(&f),
            Err(Error::Truncated {
                layer: Layer::Slow,
                field: "subtype",
                need: 1,
                have: 0
            })
        );
    }

    #[test]
    fn other_llc_and_snap() {
        let f = eth2([2; 6], &[], 4, &[0xfe, 0xfe, 0x03, 0x83]);
        assert_eq!(
            classify(&f).unwrap().payload,
            Payload::Llc {
                dsap: 0xfe,
                ssap: 0xfe,
                control: 3,
                data: &[0x83]
            }
        );
        let f = eth2([2; 6], &[], 8, &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0]);
        assert_eq!(
            classify(&f).unwrap().payload,
            Payload::Snap {
                oui: OUI_CISCO,
                pid: 0x2000,
                data: &[]
            }
        );
    }

    #[test]
    fn truncation_at_every_length() {
        let payload = [0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x01, 0x0b];
        let f = eth2([2; 6], &[(0x8100, 5)], payload.len() as u16, &payload);
        for len in 0..f.len() {
            assert!(
                matches!(classify(&f[..len]), Err(Error::Truncated { .. })),
                "length {len}"
            );
        }
        assert!(classify(&f).is_ok());
    }
}
