//! LLDP: the Link Layer Discovery Protocol data unit (IEEE 802.1AB-2016 clause 8).
//!
//! An LLDPDU is a sequence of TLVs, each with a 7-bit type and a 9-bit length (clause 8.4):
//! Chassis ID, Port ID and Time To Live come first in that order (clause 8.2), End (type 0)
//! closes it. Organisationally specific TLVs (type 127, clause 8.6) decoded here are those
//! of IEEE 802.1 (802.1Q-2018 Annex D: port VLAN ID, port and protocol VLAN ID, VLAN name,
//! link aggregation) and IEEE 802.3 (802.3-2018 clause 79: MAC/PHY configuration, power via
//! MDI, link aggregation, maximum frame size); other TLVs are kept raw.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Error, Layer, be16, be32, check_len, hex};

/// Byte ranges of the TLV header.
pub mod field {
    /// Type (high 7 bits) and length (low 9 bits).
    pub const HEADER: core::ops::Range<usize> = 0..2;
    /// First byte of the value.
    pub const VALUE: usize = 2;
    /// Organisation identifier inside an organisationally specific TLV's value.
    pub const ORG_OUI: core::ops::Range<usize> = 0..3;
    /// Organisationally defined subtype inside the value.
    pub const ORG_SUBTYPE: usize = 3;
    /// Longest value a TLV can carry (9-bit length).
    pub const MAX_VALUE: usize = 511;
}

/// Bytes of a TLV value: borrowed from the frame after [`Repr::parse`], owned after
/// [`Repr::into_owned`] or when built by hand.
pub type Bytes<'a> = Cow<'a, [u8]>;

/// A TLV type (clause 8.4.1); unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlvType(pub u8);

impl TlvType {
    pub const END: Self = Self(0);
    pub const CHASSIS_ID: Self = Self(1);
    pub const PORT_ID: Self = Self(2);
    pub const TTL: Self = Self(3);
    pub const PORT_DESCRIPTION: Self = Self(4);
    pub const SYSTEM_NAME: Self = Self(5);
    pub const SYSTEM_DESCRIPTION: Self = Self(6);
    pub const SYSTEM_CAPABILITIES: Self = Self(7);
    pub const MANAGEMENT_ADDRESS: Self = Self(8);
    pub const ORGANIZATIONAL: Self = Self(127);
}

impl fmt::Display for TlvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::END => "End",
            Self::CHASSIS_ID => "Chassis ID",
            Self::PORT_ID => "Port ID",
            Self::TTL => "Time To Live",
            Self::PORT_DESCRIPTION => "Port Description",
            Self::SYSTEM_NAME => "System Name",
            Self::SYSTEM_DESCRIPTION => "System Description",
            Self::SYSTEM_CAPABILITIES => "System Capabilities",
            Self::MANAGEMENT_ADDRESS => "Management Address",
            Self::ORGANIZATIONAL => "Organizationally Specific",
            Self(t) => return write!(f, "TLV type {t}"),
        };
        f.write_str(name)
    }
}

/// Chassis ID subtype (clause 8.5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChassisIdSubtype(pub u8);

impl ChassisIdSubtype {
    pub const CHASSIS_COMPONENT: Self = Self(1);
    pub const INTERFACE_ALIAS: Self = Self(2);
    pub const PORT_COMPONENT: Self = Self(3);
    pub const MAC_ADDRESS: Self = Self(4);
    pub const NETWORK_ADDRESS: Self = Self(5);
    pub const INTERFACE_NAME: Self = Self(6);
    pub const LOCALLY_ASSIGNED: Self = Self(7);

    /// Short name as shown and in JSON (`mac`, `ifname`, `local`, ...); unknown: the number.
    pub fn name(self) -> String {
        match self {
            Self::CHASSIS_COMPONENT => "chassis".into(),
            Self::INTERFACE_ALIAS => "ifalias".into(),
            Self::PORT_COMPONENT => "port".into(),
            Self::MAC_ADDRESS => "mac".into(),
            Self::NETWORK_ADDRESS => "addr".into(),
            Self::INTERFACE_NAME => "ifname".into(),
            Self::LOCALLY_ASSIGNED => "local".into(),
            Self(n) => n.to_string(),
        }
    }
}

/// Port ID subtype (clause 8.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortIdSubtype(pub u8);

impl PortIdSubtype {
    pub const INTERFACE_ALIAS: Self = Self(1);
    pub const PORT_COMPONENT: Self = Self(2);
    pub const MAC_ADDRESS: Self = Self(3);
    pub const NETWORK_ADDRESS: Self = Self(4);
    pub const INTERFACE_NAME: Self = Self(5);
    pub const AGENT_CIRCUIT_ID: Self = Self(6);
    pub const LOCALLY_ASSIGNED: Self = Self(7);

    /// Short name as shown and in JSON (`mac`, `ifname`, `local`, ...); unknown: the number.
    pub fn name(self) -> String {
        match self {
            Self::INTERFACE_ALIAS => "ifalias".into(),
            Self::PORT_COMPONENT => "port".into(),
            Self::MAC_ADDRESS => "mac".into(),
            Self::NETWORK_ADDRESS => "addr".into(),
            Self::INTERFACE_NAME => "ifname".into(),
            Self::AGENT_CIRCUIT_ID => "circuit".into(),
            Self::LOCALLY_ASSIGNED => "local".into(),
            Self(n) => n.to_string(),
        }
    }
}

/// System capabilities bit map (clause 8.5.8.1), bit 0 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u16);

impl Capabilities {
    /// Names of bits 0 to 10.
    pub const NAMES: [&'static str; 11] = [
        "other",
        "repeater",
        "bridge",
        "wlan_ap",
        "router",
        "telephone",
        "docsis",
        "station",
        "c_vlan",
        "s_vlan",
        "tpmr",
    ];

    /// Names of the bits set; reserved bits as `bitN`.
    pub fn names(self) -> Vec<String> {
        (0..16)
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(|bit| match Self::NAMES.get(bit) {
                Some(name) => (*name).to_string(),
                None => format!("bit{bit}"),
            })
            .collect()
    }
}

/// IANA address family numbers used by network-address subtypes and management addresses.
pub mod address_family {
    pub const IPV4: u8 = 1;
    pub const IPV6: u8 = 2;
    pub const MAC: u8 = 6;
}

/// Renders an address prefixed by its IANA address family: IPv4 / IPv6 / MAC as such,
/// anything else as `family:hex`.
pub fn format_address(family: u8, address: &[u8]) -> String {
    match (family, address.len()) {
        (address_family::IPV4, 4) => {
            Ipv4Addr::new(address[0], address[1], address[2], address[3]).to_string()
        }
        (address_family::IPV6, 16) => {
            let mut a = [0; 16];
            a.copy_from_slice(address);
            Ipv6Addr::from(a).to_string()
        }
        (address_family::MAC, 6) => super::mac(address, 0..6).to_string(),
        _ => format!("{family}:{}", hex(address)),
    }
}

/// Text as sent, non-UTF-8 bytes replaced.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Renders an ID by subtype kind: MAC and network addresses as addresses, printable text as
/// text, anything else as hex.
fn format_id(is_mac: bool, is_address: bool, id: &[u8]) -> String {
    if is_mac && id.len() == 6 {
        super::mac(id, 0..6).to_string()
    } else if is_address && !id.is_empty() {
        format_address(id[0], &id[1..])
    } else if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        text(id)
    } else {
        hex(id)
    }
}

/// A view of one TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// Wraps `buffer`, checking the header and that the value fits.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let data = buffer.as_ref();
        check_len(data, field::VALUE, Layer::Lldp, "TLV header")?;
        let tlv = Self { buffer };
        check_len(
            tlv.buffer.as_ref(),
            field::VALUE + tlv.length(),
            Layer::Lldp,
            "TLV value",
        )?;
        Ok(tlv)
    }

    /// The TLV type.
    pub fn tlv_type(&self) -> TlvType {
        TlvType(self.buffer.as_ref()[0] >> 1)
    }

    /// The value length.
    pub fn length(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::HEADER) & 0x01ff)
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.buffer.as_ref()[field::VALUE..field::VALUE + self.length()]
    }

    /// Header plus value.
    pub fn total_len(&self) -> usize {
        field::VALUE + self.length()
    }
}

/// Iterates over the TLVs of an LLDPDU up to (excluding) End or the end of the data.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    data: &'a [u8],
}

impl<'a> TlvIter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<&'a [u8]>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match Tlv::new_checked(self.data) {
            Ok(tlv) if tlv.tlv_type() == TlvType::END => {
                self.data = &[];
                None
            }
            Ok(tlv) => {
                let (this, rest) = self.data.split_at(tlv.total_len());
                self.data = rest;
                Some(Ok(Tlv { buffer: this }))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

/// OUI of IEEE 802.1 organisationally specific TLVs.
pub const OUI_IEEE_802_1: [u8; 3] = [0x00, 0x80, 0xc2];
/// OUI of IEEE 802.3 organisationally specific TLVs.
pub const OUI_IEEE_802_3: [u8; 3] = [0x00, 0x12, 0x0f];

/// A management address (clause 8.5.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementAddress<'a> {
    /// IANA address family.
    pub family: u8,
    pub address: Bytes<'a>,
    /// Interface numbering subtype: 1 unknown, 2 ifIndex, 3 system port number.
    pub if_subtype: u8,
    pub if_number: u32,
    /// Object identifier, BER encoded; may be empty.
    pub oid: Bytes<'a>,
}

impl ManagementAddress<'_> {
    /// Interface numbering subtype name (`unknown`, `ifindex`, `port`), else the number.
    pub fn if_subtype_name(&self) -> String {
        match self.if_subtype {
            1 => "unknown".into(),
            2 => "ifindex".into(),
            3 => "port".into(),
            n => n.to_string(),
        }
    }

    /// The address as text.
    pub fn address_text(&self) -> String {
        format_address(self.family, &self.address)
    }
}

/// An organisationally specific TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Org<'a> {
    /// 802.1 subtype 1: port VLAN ID.
    PortVlanId(u16),
    /// 802.1 subtype 2: port and protocol VLAN ID.
    ProtocolVlan { flags: u8, ppvid: u16 },
    /// 802.1 subtype 3: VLAN name.
    VlanName { vid: u16, name: Bytes<'a> },
    /// 802.1 subtype 7: link aggregation.
    Dot1LinkAggregation { status: u8, port_id: u32 },
    /// 802.3 subtype 1: MAC/PHY configuration/status.
    MacPhy {
        autoneg: u8,
        pmd_capability: u16,
        mau_type: u16,
    },
    /// 802.3 subtype 2: power via MDI; `extension` holds the 802.3at/bt fields raw.
    Power {
        mdi: u8,
        pair: u8,
        class: u8,
        extension: Bytes<'a>,
    },
    /// 802.3 subtype 3: link aggregation (deprecated by 802.1 subtype 7).
    Dot3LinkAggregation { status: u8, port_id: u32 },
    /// 802.3 subtype 4: maximum frame size.
    MaxFrameSize(u16),
    /// Any other organisation or subtype, raw.
    Other {
        oui: [u8; 3],
        subtype: u8,
        info: Bytes<'a>,
    },
}

impl<'a> Org<'a> {
    fn key(&self) -> ([u8; 3], u8) {
        match self {
            Org::PortVlanId(_) => (OUI_IEEE_802_1, 1),
            Org::ProtocolVlan { .. } => (OUI_IEEE_802_1, 2),
            Org::VlanName { .. } => (OUI_IEEE_802_1, 3),
            Org::Dot1LinkAggregation { .. } => (OUI_IEEE_802_1, 7),
            Org::MacPhy { .. } => (OUI_IEEE_802_3, 1),
            Org::Power { .. } => (OUI_IEEE_802_3, 2),
            Org::Dot3LinkAggregation { .. } => (OUI_IEEE_802_3, 3),
            Org::MaxFrameSize(_) => (OUI_IEEE_802_3, 4),
            Org::Other { oui, subtype, .. } => (*oui, *subtype),
        }
    }

    /// Whether an (OUI, subtype) pair is decoded into a named variant.
    pub fn is_decoded(oui: [u8; 3], subtype: u8) -> bool {
        matches!(
            (oui, subtype),
            (OUI_IEEE_802_1, 1 | 2 | 3 | 7) | (OUI_IEEE_802_3, 1..=4)
        )
    }

    fn parse(value: &'a [u8]) -> Result<Org<'a>, Error> {
        check_len(value, 4, Layer::Lldp, "organizationally specific TLV")?;
        let oui = [value[0], value[1], value[2]];
        let subtype = value[field::ORG_SUBTYPE];
        let info = &value[4..];
        let exact = |len: usize, name: &'static str, expected: &'static str| {
            if info.len() == len {
                Ok(())
            } else {
                Err(Error::Length {
                    layer: Layer::Lldp,
                    field: name,
                    len: info.len(),
                    expected,
                })
            }
        };
        Ok(match (oui, subtype) {
            (OUI_IEEE_802_1, 1) => {
                exact(2, "802.1 port VLAN ID", "2")?;
                Org::PortVlanId(be16(info, 0..2))
            }
            (OUI_IEEE_802_1, 2) => {
                exact(3, "802.1 port and protocol VLAN ID", "3")?;
                Org::ProtocolVlan {
                    flags: info[0],
                    ppvid: be16(info, 1..3),
                }
            }
            (OUI_IEEE_802_1, 3) => {
                check_len(info, 3, Layer::Lldp, "802.1 VLAN name")?;
                let name_len = usize::from(info[2]);
                if info.len() != 3 + name_len {
                    return Err(Error::Length {
                        layer: Layer::Lldp,
                        field: "802.1 VLAN name",
                        len: info.len(),
                        expected: "3 + VLAN name length",
                    });
                }
                Org::VlanName {
                    vid: be16(info, 0..2),
                    name: Cow::Borrowed(&info[3..]),
                }
            }
            (OUI_IEEE_802_1, 7) => {
                exact(5, "802.1 link aggregation", "5")?;
                Org::Dot1LinkAggregation {
                    status: info[0],
                    port_id: be32(info, 1..5),
                }
            }
            (OUI_IEEE_802_3, 1) => {
                exact(5, "802.3 MAC/PHY configuration/status", "5")?;
                Org::MacPhy {
                    autoneg: info[0],
                    pmd_capability: be16(info, 1..3),
                    mau_type: be16(info, 3..5),
                }
            }
            (OUI_IEEE_802_3, 2) => {
                check_len(info, 3, Layer::Lldp, "802.3 power via MDI")?;
                Org::Power {
                    mdi: info[0],
                    pair: info[1],
                    class: info[2],
                    extension: Cow::Borrowed(&info[3..]),
                }
            }
            (OUI_IEEE_802_3, 3) => {
                exact(5, "802.3 link aggregation", "5")?;
                Org::Dot3LinkAggregation {
                    status: info[0],
                    port_id: be32(info, 1..5),
                }
            }
            (OUI_IEEE_802_3, 4) => {
                exact(2, "802.3 maximum frame size", "2")?;
                Org::MaxFrameSize(be16(info, 0..2))
            }
            _ => Org::Other {
                oui,
                subtype,
                info: Cow::Borrowed(info),
            },
        })
    }

    fn emit_info(&self, out: &mut Vec<u8>) {
        match self {
            Org::PortVlanId(v) | Org::MaxFrameSize(v) => out.extend_from_slice(&v.to_be_bytes()),
            Org::ProtocolVlan { flags, ppvid } => {
                out.push(*flags);
                out.extend_from_slice(&ppvid.to_be_bytes());
            }
            Org::VlanName { vid, name } => {
                out.extend_from_slice(&vid.to_be_bytes());
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
            Org::Dot1LinkAggregation { status, port_id }
            | Org::Dot3LinkAggregation { status, port_id } => {
                out.push(*status);
                out.extend_from_slice(&port_id.to_be_bytes());
            }
            Org::MacPhy {
                autoneg,
                pmd_capability,
                mau_type,
            } => {
                out.push(*autoneg);
                out.extend_from_slice(&pmd_capability.to_be_bytes());
                out.extend_from_slice(&mau_type.to_be_bytes());
            }
            Org::Power {
                mdi,
                pair,
                class,
                extension,
            } => {
                out.extend_from_slice(&[*mdi, *pair, *class]);
                out.extend_from_slice(extension);
            }
            Org::Other { info, .. } => out.extend_from_slice(info),
        }
    }
}

impl ManagementAddress<'_> {
    /// A copy that no longer borrows the frame.
    pub fn into_owned(self) -> ManagementAddress<'static> {
        ManagementAddress {
            family: self.family,
            address: Cow::Owned(self.address.into_owned()),
            if_subtype: self.if_subtype,
            if_number: self.if_number,
            oid: Cow::Owned(self.oid.into_owned()),
        }
    }
}

impl Org<'_> {
    /// A copy that no longer borrows the frame.
    pub fn into_owned(self) -> Org<'static> {
        match self {
            Org::PortVlanId(v) => Org::PortVlanId(v),
            Org::ProtocolVlan { flags, ppvid } => Org::ProtocolVlan { flags, ppvid },
            Org::VlanName { vid, name } => Org::VlanName {
                vid,
                name: Cow::Owned(name.into_owned()),
            },
            Org::Dot1LinkAggregation { status, port_id } => {
                Org::Dot1LinkAggregation { status, port_id }
            }
            Org::MacPhy {
                autoneg,
                pmd_capability,
                mau_type,
            } => Org::MacPhy {
                autoneg,
                pmd_capability,
                mau_type,
            },
            Org::Power {
                mdi,
                pair,
                class,
                extension,
            } => Org::Power {
                mdi,
                pair,
                class,
                extension: Cow::Owned(extension.into_owned()),
            },
            Org::Dot3LinkAggregation { status, port_id } => {
                Org::Dot3LinkAggregation { status, port_id }
            }
            Org::MaxFrameSize(v) => Org::MaxFrameSize(v),
            Org::Other { oui, subtype, info } => Org::Other {
                oui,
                subtype,
                info: Cow::Owned(info.into_owned()),
            },
        }
    }
}

/// One TLV: its value borrowed from the frame or owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvRepr<'a> {
    ChassisId {
        subtype: ChassisIdSubtype,
        id: Bytes<'a>,
    },
    PortId {
        subtype: PortIdSubtype,
        id: Bytes<'a>,
    },
    /// Seconds; 0 announces a shutdown.
    Ttl(u16),
    PortDescription(Bytes<'a>),
    SystemName(Bytes<'a>),
    SystemDescription(Bytes<'a>),
    Capabilities {
        available: Capabilities,
        enabled: Capabilities,
    },
    ManagementAddress(ManagementAddress<'a>),
    Org(Org<'a>),
    /// A TLV of a type this decoder does not know (reserved types 9 to 126).
    Unknown {
        tlv_type: TlvType,
        value: Bytes<'a>,
    },
}

impl<'a> TlvRepr<'a> {
    /// A copy that no longer borrows the frame.
    pub fn into_owned(self) -> TlvRepr<'static> {
        let own = |b: Bytes<'_>| -> Bytes<'static> { Cow::Owned(b.into_owned()) };
        match self {
            TlvRepr::ChassisId { subtype, id } => TlvRepr::ChassisId {
                subtype,
                id: own(id),
            },
            TlvRepr::PortId { subtype, id } => TlvRepr::PortId {
                subtype,
                id: own(id),
            },
            TlvRepr::Ttl(t) => TlvRepr::Ttl(t),
            TlvRepr::PortDescription(v) => TlvRepr::PortDescription(own(v)),
            TlvRepr::SystemName(v) => TlvRepr::SystemName(own(v)),
            TlvRepr::SystemDescription(v) => TlvRepr::SystemDescription(own(v)),
            TlvRepr::Capabilities { available, enabled } => {
                TlvRepr::Capabilities { available, enabled }
            }
            TlvRepr::ManagementAddress(m) => TlvRepr::ManagementAddress(m.into_owned()),
            TlvRepr::Org(o) => TlvRepr::Org(o.into_owned()),
            TlvRepr::Unknown { tlv_type, value } => TlvRepr::Unknown {
                tlv_type,
                value: own(value),
            },
        }
    }

    /// The TLV type.
    pub fn tlv_type(&self) -> TlvType {
        match self {
            TlvRepr::ChassisId { .. } => TlvType::CHASSIS_ID,
            TlvRepr::PortId { .. } => TlvType::PORT_ID,
            TlvRepr::Ttl(_) => TlvType::TTL,
            TlvRepr::PortDescription(_) => TlvType::PORT_DESCRIPTION,
            TlvRepr::SystemName(_) => TlvType::SYSTEM_NAME,
            TlvRepr::SystemDescription(_) => TlvType::SYSTEM_DESCRIPTION,
            TlvRepr::Capabilities { .. } => TlvType::SYSTEM_CAPABILITIES,
            TlvRepr::ManagementAddress(_) => TlvType::MANAGEMENT_ADDRESS,
            TlvRepr::Org(_) => TlvType::ORGANIZATIONAL,
            TlvRepr::Unknown { tlv_type, .. } => *tlv_type,
        }
    }

    /// Decodes one TLV.
    pub fn parse(tlv: Tlv<&'a [u8]>) -> Result<TlvRepr<'a>, Error> {
        let v: &'a [u8] = &tlv.buffer[field::VALUE..tlv.total_len()];
        let t = tlv.tlv_type();
        let bad_len = |field: &'static str, expected: &'static str| Error::Length {
            layer: Layer::Lldp,
            field,
            len: v.len(),
            expected,
        };
        Ok(match t {
            TlvType::CHASSIS_ID => {
                if v.len() < 2 {
                    return Err(bad_len("Chassis ID", "2 to 256"));
                }
                TlvRepr::ChassisId {
                    subtype: ChassisIdSubtype(v[0]),
                    id: Cow::Borrowed(&v[1..]),
                }
            }
            TlvType::PORT_ID => {
                if v.len() < 2 {
                    return Err(bad_len("Port ID", "2 to 256"));
                }
                TlvRepr::PortId {
                    subtype: PortIdSubtype(v[0]),
                    id: Cow::Borrowed(&v[1..]),
                }
            }
            TlvType::TTL => {
                if v.len() != 2 {
                    return Err(bad_len("Time To Live", "2"));
                }
                TlvRepr::Ttl(be16(v, 0..2))
            }
            TlvType::PORT_DESCRIPTION => TlvRepr::PortDescription(Cow::Borrowed(v)),
            TlvType::SYSTEM_NAME => TlvRepr::SystemName(Cow::Borrowed(v)),
            TlvType::SYSTEM_DESCRIPTION => TlvRepr::SystemDescription(Cow::Borrowed(v)),
            TlvType::SYSTEM_CAPABILITIES => {
                if v.len() != 4 {
                    return Err(bad_len("System Capabilities", "4"));
                }
                TlvRepr::Capabilities {
                    available: Capabilities(be16(v, 0..2)),
                    enabled: Capabilities(be16(v, 2..4)),
                }
            }
            TlvType::MANAGEMENT_ADDRESS => TlvRepr::ManagementAddress(parse_management(v)?),
            TlvType::ORGANIZATIONAL => TlvRepr::Org(Org::parse(v)?),
            _ => TlvRepr::Unknown {
                tlv_type: t,
                value: Cow::Borrowed(v),
            },
        })
    }

    fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            TlvRepr::ChassisId { subtype, id } => {
                out.push(subtype.0);
                out.extend_from_slice(id);
            }
            TlvRepr::PortId { subtype, id } => {
                out.push(subtype.0);
                out.extend_from_slice(id);
            }
            TlvRepr::Ttl(ttl) => out.extend_from_slice(&ttl.to_be_bytes()),
            TlvRepr::PortDescription(v)
            | TlvRepr::SystemName(v)
            | TlvRepr::SystemDescription(v)
            | TlvRepr::Unknown { value: v, .. } => out.extend_from_slice(v),
            TlvRepr::Capabilities { available, enabled } => {
                out.extend_from_slice(&available.0.to_be_bytes());
                out.extend_from_slice(&enabled.0.to_be_bytes());
            }
            TlvRepr::ManagementAddress(m) => {
                out.push((m.address.len() + 1) as u8);
                out.push(m.family);
                out.extend_from_slice(&m.address);
                out.push(m.if_subtype);
                out.extend_from_slice(&m.if_number.to_be_bytes());
                out.push(m.oid.len() as u8);
                out.extend_from_slice(&m.oid);
            }
            TlvRepr::Org(org) => {
                let (oui, subtype) = org.key();
                out.extend_from_slice(&oui);
                out.push(subtype);
                org.emit_info(out);
            }
        }
    }

    /// Appends header and value to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        self.emit_value(out);
        let len = out.len() - start - field::VALUE;
        if len > field::MAX_VALUE {
            out.truncate(start);
            return Err(Error::TooLong {
                layer: Layer::Lldp,
                field: "TLV value",
                len,
                max: field::MAX_VALUE,
            });
        }
        let header = (u16::from(self.tlv_type().0) << 9) | len as u16;
        out[start..start + 2].copy_from_slice(&header.to_be_bytes());
        Ok(())
    }
}

fn parse_management(v: &[u8]) -> Result<ManagementAddress<'_>, Error> {
    let field_name = "Management Address";
    check_len(v, 1, Layer::Lldp, field_name)?;
    let addr_len = usize::from(v[0]);
    if addr_len < 2 {
        return Err(Error::Length {
            layer: Layer::Lldp,
            field: "management address string",
            len: addr_len,
            expected: "2 to 32",
        });
    }
    let after_addr = 1 + addr_len;
    check_len(v, after_addr + 6, Layer::Lldp, field_name)?;
    let oid_len = usize::from(v[after_addr + 5]);
    if v.len() != after_addr + 6 + oid_len {
        return Err(Error::Length {
            layer: Layer::Lldp,
            field: field_name,
            len: v.len(),
            expected: "consistent with its address and OID string lengths",
        });
    }
    Ok(ManagementAddress {
        family: v[1],
        address: Cow::Borrowed(&v[2..after_addr]),
        if_subtype: v[after_addr],
        if_number: be32(v, after_addr + 1..after_addr + 5),
        oid: Cow::Borrowed(&v[after_addr + 6..]),
    })
}

/// A breach of the TLV order rules of clause 8.2 (reported, not fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A mandatory TLV is not at its place (position 1, 2 or 3).
    Misplaced { tlv_type: TlvType, expected: usize },
    /// A TLV that may appear once appears again.
    Duplicate(TlvType),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Misplaced { tlv_type, expected } => {
                write!(f, "{tlv_type} TLV missing at position {expected}")
            }
            Problem::Duplicate(t) => write!(f, "duplicate {t} TLV"),
        }
    }
}

/// An LLDPDU: its TLVs in order, End excluded (emit appends it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repr<'a> {
    pub tlvs: Vec<TlvRepr<'a>>,
}

impl<'a> Repr<'a> {
    /// What a station says of itself: chassis ID its MAC `chassis`, the port ID `port`
    /// (subtype and ID), `ttl` seconds, and its system name when given.
    pub fn station(
        chassis: [u8; 6],
        port: (PortIdSubtype, &'a [u8]),
        ttl: u16,
        system_name: Option<&'a [u8]>,
    ) -> Repr<'a> {
        let mut tlvs = vec![
            TlvRepr::ChassisId {
                subtype: ChassisIdSubtype::MAC_ADDRESS,
                id: Cow::Owned(chassis.to_vec()),
            },
            TlvRepr::PortId {
                subtype: port.0,
                id: Cow::Borrowed(port.1),
            },
            TlvRepr::Ttl(ttl),
        ];
        tlvs.extend(system_name.map(|name| TlvRepr::SystemName(Cow::Borrowed(name))));
        Repr { tlvs }
    }

    /// Decodes an LLDPDU (the Ethernet payload); bytes after End are ignored.
    pub fn parse(data: &'a [u8]) -> Result<Repr<'a>, Error> {
        let mut tlvs = Vec::with_capacity(TlvIter::new(data).count());
        for tlv in TlvIter::new(data) {
            tlvs.push(TlvRepr::parse(tlv?)?);
        }
        Ok(Repr { tlvs })
    }

    /// A copy that no longer borrows the frame.
    pub fn into_owned(self) -> Repr<'static> {
        Repr {
            tlvs: self.tlvs.into_iter().map(TlvRepr::into_owned).collect(),
        }
    }

    /// Length of the emitted LLDPDU, End TLV included.
    pub fn buffer_len(&self) -> usize {
        let mut out = Vec::new();
        self.emit(&mut out).map_or(0, |()| out.len())
    }

    /// Appends the TLVs and an End TLV to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        for tlv in &self.tlvs {
            tlv.emit(out)?;
        }
        out.extend_from_slice(&[0, 0]);
        Ok(())
    }

    /// Order rules of clause 8.2 that this LLDPDU breaks.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, t) in [TlvType::CHASSIS_ID, TlvType::PORT_ID, TlvType::TTL]
            .into_iter()
            .enumerate()
        {
            if self.tlvs.get(i).map(TlvRepr::tlv_type) != Some(t) {
                problems.push(Problem::Misplaced {
                    tlv_type: t,
                    expected: i + 1,
                });
            }
        }
        let once = [
            TlvType::CHASSIS_ID,
            TlvType::PORT_ID,
            TlvType::TTL,
            TlvType::PORT_DESCRIPTION,
            TlvType::SYSTEM_NAME,
            TlvType::SYSTEM_DESCRIPTION,
            TlvType::SYSTEM_CAPABILITIES,
        ];
        for t in once {
            if self.tlvs.iter().filter(|x| x.tlv_type() == t).count() > 1 {
                problems.push(Problem::Duplicate(t));
            }
        }
        problems
    }

    /// Chassis ID as (subtype name, value text).
    pub fn chassis_id(&self) -> Option<(String, String)> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::ChassisId { subtype, id } => Some((
                subtype.name(),
                format_id(
                    *subtype == ChassisIdSubtype::MAC_ADDRESS,
                    *subtype == ChassisIdSubtype::NETWORK_ADDRESS,
                    id,
                ),
            )),
            _ => None,
        })
    }

    /// Port ID as (subtype name, value text).
    pub fn port_id(&self) -> Option<(String, String)> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::PortId { subtype, id } => Some((
                subtype.name(),
                format_id(
                    *subtype == PortIdSubtype::MAC_ADDRESS,
                    *subtype == PortIdSubtype::NETWORK_ADDRESS,
                    id,
                ),
            )),
            _ => None,
        })
    }

    /// Time to live in seconds (0: the sender shuts down).
    pub fn ttl(&self) -> Option<u16> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::Ttl(ttl) => Some(*ttl),
            _ => None,
        })
    }

    pub fn port_description(&self) -> Option<String> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::PortDescription(v) => Some(text(v)),
            _ => None,
        })
    }

    pub fn system_name(&self) -> Option<String> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::SystemName(v) => Some(text(v)),
            _ => None,
        })
    }

    pub fn system_description(&self) -> Option<String> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::SystemDescription(v) => Some(text(v)),
            _ => None,
        })
    }

    /// Capabilities (available, enabled).
    pub fn capabilities(&self) -> Option<(Capabilities, Capabilities)> {
        self.tlvs.iter().find_map(|t| match t {
            TlvRepr::Capabilities { available, enabled } => Some((*available, *enabled)),
            _ => None,
        })
    }

    pub fn management_addresses(&self) -> impl Iterator<Item = &ManagementAddress<'a>> {
        self.tlvs.iter().filter_map(|t| match t {
            TlvRepr::ManagementAddress(m) => Some(m),
            _ => None,
        })
    }

    pub fn org_tlvs(&self) -> impl Iterator<Item = &Org<'a>> {
        self.tlvs.iter().filter_map(|t| match t {
            TlvRepr::Org(o) => Some(o),
            _ => None,
        })
    }

    pub fn port_vlan_id(&self) -> Option<u16> {
        self.org_tlvs().find_map(|o| match o {
            Org::PortVlanId(v) => Some(*v),
            _ => None,
        })
    }

    pub fn max_frame_size(&self) -> Option<u16> {
        self.org_tlvs().find_map(|o| match o {
            Org::MaxFrameSize(v) => Some(*v),
            _ => None,
        })
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some((subtype, value)) = self.chassis_id() {
            write!(f, "chassis={subtype} {value}")?;
            sep = " ";
        }
        if let Some((subtype, value)) = self.port_id() {
            write!(f, "{sep}port={subtype} {value}")?;
            sep = " ";
        }
        if let Some(ttl) = self.ttl() {
            write!(f, "{sep}ttl={ttl}")?;
            if ttl == 0 {
                f.write_str(" (shutdown)")?;
            }
            sep = " ";
        }
        if let Some(name) = self.system_name() {
            write!(f, "{sep}name={name}")?;
            sep = " ";
        }
        if let Some((_, enabled)) = self.capabilities() {
            let names = enabled.names();
            if !names.is_empty() {
                write!(f, "{sep}caps={}", names.join(","))?;
                sep = " ";
            }
        }
        if let Some(m) = self.management_addresses().next() {
            write!(f, "{sep}mgmt={}", m.address_text())?;
            sep = " ";
        }
        if let Some(vid) = self.port_vlan_id() {
            write!(f, "{sep}pvid={vid}")?;
            sep = " ";
        }
        for p in self.problems() {
            write!(f, "{sep}[{p}]")?;
            sep = " ";
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of a TLV: type << 9 | length.
    fn h(t: u8, len: usize) -> [u8; 2] {
        ((u16::from(t) << 9) | len as u16).to_be_bytes()
    }

    fn tlv(t: u8, value: &[u8]) -> Vec<u8> {
        let mut v = h(t, value.len()).to_vec();
        v.extend_from_slice(value);
        v
    }

    fn pdu(tlvs: &[Vec<u8>]) -> Vec<u8> {
        let mut v: Vec<u8> = tlvs.concat();
        v.extend_from_slice(&[0, 0]);
        v
    }

    fn mandatory() -> Vec<Vec<u8>> {
        vec![
            tlv(1, &[4, 0x52, 0x54, 0, 0, 0, 1]),
            tlv(2, &[5, b'e', b't', b'h', b'1']),
            tlv(3, &[0, 120]),
        ]
    }

    fn with(extra: Vec<u8>) -> Repr<'static> {
        let mut t = mandatory();
        t.push(extra);
        Repr::parse(&pdu(&t)).unwrap().into_owned()
    }

    #[test]
    fn mandatory_tlvs() {
        let bytes = pdu(&mandatory());
        let r = Repr::parse(&bytes).unwrap();
        assert_eq!(
            r.chassis_id(),
            Some(("mac".into(), "52:54:00:00:00:01".into()))
        );
        assert_eq!(r.port_id(), Some(("ifname".into(), "eth1".into())));
        assert_eq!(r.ttl(), Some(120));
        assert!(r.problems().is_empty());
        assert_eq!(
            r.to_string(),
            "chassis=mac 52:54:00:00:00:01 port=ifname eth1 ttl=120"
        );
        let mut out = Vec::new();
        r.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(r.buffer_len(), bytes.len());
    }

    #[test]
    fn every_chassis_and_port_subtype() {
        let cases: [(u8, &[u8], &str, &str); 8] = [
            (1, b"chassis-7", "chassis", "chassis-7"),
            (2, b"uplink", "ifalias", "uplink"),
            (3, b"slot1", "port", "slot1"),
            (4, &[0, 1, 2, 3, 4, 5], "mac", "00:01:02:03:04:05"),
            (5, &[1, 10, 0, 0, 1], "addr", "10.0.0.1"),
            (6, b"eth0", "ifname", "eth0"),
            (7, &[0, 0xff], "local", "00ff"),
            (9, b"x", "9", "x"),
        ];
        for (subtype, id, name, value) in cases {
            let mut v = vec![subtype];
            v.extend_from_slice(id);
            let r = Repr::parse(&pdu(&[tlv(1, &v)])).unwrap().into_owned();
            assert_eq!(r.chassis_id(), Some((name.into(), value.into())));
        }
        let cases: [(u8, &[u8], &str, &str); 8] = [
            (1, b"uplink", "ifalias", "uplink"),
            (2, b"p2", "port", "p2"),
            (3, &[0, 1, 2, 3, 4, 5], "mac", "00:01:02:03:04:05"),
            (
                4,
                &[2, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "addr",
                "fe80::1",
            ),
            (5, b"eth1", "ifname", "eth1"),
            (6, b"c1", "circuit", "c1"),
            (7, b"7", "local", "7"),
            (0, &[1, 2], "0", "0102"),
        ];
        for (subtype, id, name, value) in cases {
            let mut v = vec![subtype];
            v.extend_from_slice(id);
            let r = Repr::parse(&pdu(&[tlv(2, &v)])).unwrap().into_owned();
            assert_eq!(r.port_id(), Some((name.into(), value.into())));
        }
    }

    #[test]
    fn text_tlvs_and_capabilities() {
        let r = with(tlv(4, b"to spine1"));
        assert_eq!(r.port_description().as_deref(), Some("to spine1"));
        let r = with(tlv(5, b"leaf1"));
        assert_eq!(r.system_name().as_deref(), Some("leaf1"));
        let r = with(tlv(6, b"Debian GNU/Linux 12"));
        assert_eq!(
            r.system_description().as_deref(),
            Some("Debian GNU/Linux 12")
        );
        let r = with(tlv(7, &[0x00, 0x14, 0x00, 0x10]));
        let (available, enabled) = r.capabilities().unwrap();
        assert_eq!(available.names(), ["bridge", "router"]);
        assert_eq!(enabled.names(), ["router"]);
        assert_eq!(Capabilities(0x8001).names(), ["other", "bit15"]);
    }

    #[test]
    fn management_address() {
        let v = [5, 1, 192, 0, 2, 1, 2, 0, 0, 0, 3, 2, 0x2b, 0x06];
        let r = with(tlv(8, &v));
        let m = r.management_addresses().next().unwrap();
        assert_eq!(m.address_text(), "192.0.2.1");
        assert_eq!(m.if_subtype_name(), "ifindex");
        assert_eq!(m.if_number, 3);
        assert_eq!(m.oid[..], [0x2b, 0x06]);
        for bad in [
            &v[..13],
            &[1, 1][..],
            &[5, 1, 192, 0, 2, 1, 2, 0, 0, 0, 3, 0, 9][..],
        ] {
            let mut t = mandatory();
            t.push(tlv(8, bad));
            assert!(matches!(
                Repr::parse(&pdu(&t)),
                Err(Error::Length { .. } | Error::Truncated { .. })
            ));
        }
    }

    #[test]
    fn organisational_tlvs() {
        let org = |oui: [u8; 3], subtype: u8, info: &[u8]| {
            let mut v = oui.to_vec();
            v.push(subtype);
            v.extend_from_slice(info);
            with(tlv(127, &v)).org_tlvs().next().unwrap().clone()
        };
        assert_eq!(org(OUI_IEEE_802_1, 1, &[0, 10]), Org::PortVlanId(10));
        assert_eq!(
            org(OUI_IEEE_802_1, 2, &[6, 0, 20]),
            Org::ProtocolVlan {
                flags: 6,
                ppvid: 20
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_1, 3, &[0, 30, 4, b'v', b'l', b'3', b'0']),
            Org::VlanName {
                vid: 30,
                name: b"vl30"[..].into()
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_1, 7, &[3, 0, 0, 0, 9]),
            Org::Dot1LinkAggregation {
                status: 3,
                port_id: 9
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_3, 1, &[3, 0x6c, 0, 0, 16]),
            Org::MacPhy {
                autoneg: 3,
                pmd_capability: 0x6c00,
                mau_type: 16
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_3, 2, &[7, 1, 4, 0x51, 0, 130]),
            Org::Power {
                mdi: 7,
                pair: 1,
                class: 4,
                extension: vec![0x51, 0, 130].into()
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_3, 3, &[1, 0, 0, 0, 2]),
            Org::Dot3LinkAggregation {
                status: 1,
                port_id: 2
            }
        );
        assert_eq!(
            org(OUI_IEEE_802_3, 4, &[0x05, 0xee]),
            Org::MaxFrameSize(1518)
        );
        assert_eq!(
            org([0, 0x12, 0xbb], 1, &[1, 2]),
            Org::Other {
                oui: [0, 0x12, 0xbb],
                subtype: 1,
                info: vec![1, 2].into()
            }
        );
        assert_eq!(
            with(tlv(127, &[0, 0x80, 0xc2, 1, 0, 5])).port_vlan_id(),
            Some(5)
        );
        assert_eq!(
            with(tlv(127, &[0, 0x12, 0x0f, 4, 0x23, 0x28])).max_frame_size(),
            Some(9000)
        );
    }

    #[test]
    fn bad_org_lengths_are_precise() {
        let mut t = mandatory();
        t.push(tlv(127, &[0, 0x80, 0xc2, 1, 0]));
        assert_eq!(
            Repr::parse(&pdu(&t)),
            Err(Error::Length {
                layer: Layer::Lldp,
                field: "802.1 port VLAN ID",
                len: 1,
                expected: "2"
            })
        );
    }

    #[test]
    fn unknown_tlv_kept_raw() {
        let r = with(tlv(42, &[1, 2, 3]));
        assert_eq!(
            r.tlvs[3],
            TlvRepr::Unknown {
                tlv_type: TlvType(42),
                value: vec![1, 2, 3].into()
            }
        );
    }

    #[test]
    fn order_violations_reported_not_fatal() {
        let m = mandatory();
        let bytes = pdu(&[m[1].clone(), m[0].clone(), m[2].clone(), m[2].clone()]);
        let r = Repr::parse(&bytes).unwrap();
        assert_eq!(
            r.problems(),
            [
                Problem::Misplaced {
                    tlv_type: TlvType::CHASSIS_ID,
                    expected: 1
                },
                Problem::Misplaced {
                    tlv_type: TlvType::PORT_ID,
                    expected: 2
                },
                Problem::Duplicate(TlvType::TTL),
            ]
        );
        assert!(r.to_string().contains("[duplicate Time To Live TLV]"));
    }

    #[test]
    fn shutdown_and_padding() {
        let mut t = mandatory();
        t[2] = tlv(3, &[0, 0]);
        let mut bytes = pdu(&t);
        bytes.extend_from_slice(&[0; 20]);
        let r = Repr::parse(&bytes).unwrap();
        assert_eq!(r.ttl(), Some(0));
        assert!(r.to_string().contains("ttl=0 (shutdown)"));
    }

    #[test]
    fn truncation_at_every_length() {
        let mut t = mandatory();
        t.push(tlv(5, b"leaf1"));
        let bytes = pdu(&t);
        let full = Repr::parse(&bytes).unwrap();
        // Cutting inside a TLV is an error; cutting at a TLV boundary yields fewer TLVs.
        let mut boundaries = vec![0];
        for x in &t {
            boundaries.push(boundaries.last().unwrap() + x.len());
        }
        for len in 0..bytes.len() {
            let r = Repr::parse(&bytes[..len]);
            if boundaries.contains(&len) {
                let n = boundaries.iter().position(|&b| b == len).unwrap();
                assert_eq!(r.unwrap().tlvs, full.tlvs[..n.min(full.tlvs.len())]);
            } else {
                assert!(
                    matches!(
                        r,
                        Err(Error::Truncated {
                            layer: Layer::Lldp,
                            ..
                        })
                    ),
                    "length {len}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_fixed_lengths() {
        for (t, v) in [
            (3u8, &[0u8][..]),
            (7, &[0, 0, 0][..]),
            (1, &[4][..]),
            (2, &[][..]),
        ] {
            assert!(matches!(
                Repr::parse(&pdu(&[tlv(t, v)])),
                Err(Error::Length {
                    layer: Layer::Lldp,
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_station_says_its_mac_port_ttl_and_name() {
        let mac = [0xbe, 0x24, 0x99, 0, 0x64, 1];
        let repr = Repr::station(
            mac,
            (PortIdSubtype::INTERFACE_NAME, b"eth1"),
            120,
            Some(b"vm"),
        );
        let mut bytes = Vec::new();
        repr.emit(&mut bytes).unwrap();
        let parsed = Repr::parse(&bytes).unwrap();
        assert_eq!(parsed, repr);
        assert_eq!(
            parsed.tlvs,
            vec![
                TlvRepr::ChassisId {
                    subtype: ChassisIdSubtype::MAC_ADDRESS,
                    id: Cow::Borrowed(&mac[..]),
                },
                TlvRepr::PortId {
                    subtype: PortIdSubtype::INTERFACE_NAME,
                    id: Cow::Borrowed(b"eth1"),
                },
                TlvRepr::Ttl(120),
                TlvRepr::SystemName(Cow::Borrowed(b"vm")),
            ]
        );
        let nameless = Repr::station(mac, (PortIdSubtype::MAC_ADDRESS, &mac), 9, None);
        assert_eq!(nameless.tlvs.len(), 3);
    }

    #[test]
    fn emit_rejects_oversized_values() {
        let r = Repr {
            tlvs: vec![TlvRepr::SystemName(vec![b'x'; 512].into())],
        };
        let mut out = Vec::new();
        assert_eq!(
            r.emit(&mut out),
            Err(Error::TooLong {
                layer: Layer::Lldp,
                field: "TLV value",
                len: 512,
                max: 511
            })
        );
    }
}
