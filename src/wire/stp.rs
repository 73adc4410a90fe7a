//! Spanning tree BPDUs: STP (IEEE 802.1D-2004 clause 9.3), RSTP (802.1D-2004 clause 9.3.3)
//! and MSTP (IEEE 802.1Q-2018 clause 14.6), plus Cisco PVST+, whose BPDU is followed by an
//! originating-VLAN TLV (type 0, length 2).
//!
//! BPDU validation follows 802.1Q clause 14.4: type 0x00 is a configuration BPDU (35
//! bytes), 0x80 a topology change notification (4 bytes), 0x02 an RST BPDU (36 bytes) that
//! is an MST BPDU when the version is 3 or more and at least 102 bytes are present. Timers
//! are in units of 1/256 s.

use std::fmt;

use super::{Error, Layer, MacAddr, be16, be32, check_len, hex, mac};

/// Byte ranges of the BPDU fields.
pub mod field {
    use core::ops::Range;
    pub const PROTOCOL_ID: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const BPDU_TYPE: usize = 3;
    pub const FLAGS: usize = 4;
    pub const ROOT_ID: Range<usize> = 5..13;
    pub const ROOT_PATH_COST: Range<usize> = 13..17;
    pub const BRIDGE_ID: Range<usize> = 17..25;
    pub const PORT_ID: Range<usize> = 25..27;
    pub const MESSAGE_AGE: Range<usize> = 27..29;
    pub const MAX_AGE: Range<usize> = 29..31;
    pub const HELLO_TIME: Range<usize> = 31..33;
    pub const FORWARD_DELAY: Range<usize> = 33..35;
    pub const VERSION1_LENGTH: usize = 35;
    pub const VERSION3_LENGTH: Range<usize> = 36..38;
    pub const MST_CONFIG_FORMAT: usize = 38;
    pub const MST_CONFIG_NAME: Range<usize> = 39..71;
    pub const MST_REVISION: Range<usize> = 71..73;
    pub const MST_DIGEST: Range<usize> = 73..89;
    pub const CIST_INTERNAL_ROOT_PATH_COST: Range<usize> = 89..93;
    pub const CIST_BRIDGE_ID: Range<usize> = 93..101;
    pub const CIST_REMAINING_HOPS: usize = 101;
    pub const MSTI: usize = 102;
    /// Offsets inside one 16-byte MSTI configuration message.
    pub mod msti {
        use core::ops::Range;
        pub const FLAGS: usize = 0;
        pub const REGIONAL_ROOT: Range<usize> = 1..9;
        pub const INTERNAL_ROOT_PATH_COST: Range<usize> = 9..13;
        pub const BRIDGE_PRIORITY: usize = 13;
        pub const PORT_PRIORITY: usize = 14;
        pub const REMAINING_HOPS: usize = 15;
        pub const LEN: usize = 16;
    }
}

/// Length of a TCN BPDU.
pub const TCN_LEN: usize = 4;
/// Length of a configuration BPDU.
pub const CONFIG_LEN: usize = 35;
/// Length of an RST BPDU.
pub const RST_LEN: usize = 36;
/// Length of an MST BPDU without MSTI records.
pub const MST_LEN: usize = field::MSTI;
/// Version 3 length of an MST BPDU without MSTI records.
pub const MST_V3_BASE: usize = MST_LEN - field::MST_CONFIG_FORMAT;
/// Most MSTI records an MST BPDU carries.
pub const MAX_MSTI: usize = 64;

/// Protocol version identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u8);

impl Version {
    pub const STP: Self = Self(0);
    pub const RSTP: Self = Self(2);
    pub const MSTP: Self = Self(3);
}

/// BPDU type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BpduType(pub u8);

impl BpduType {
    pub const CONFIG: Self = Self(0x00);
    pub const RST: Self = Self(0x02);
    pub const TCN: Self = Self(0x80);
}

/// Port role encoded in the flags (802.1Q clause 14.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortRole {
    Unknown,
    AlternateBackup,
    Root,
    Designated,
}

impl PortRole {
    /// Name as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PortRole::Unknown => "unknown",
            PortRole::AlternateBackup => "alternate_backup",
            PortRole::Root => "root",
            PortRole::Designated => "designated",
        }
    }
}

/// BPDU flags (802.1Q clause 14.6 a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const TC: u8 = 0x01;
    pub const PROPOSAL: u8 = 0x02;
    pub const ROLE_MASK: u8 = 0x0c;
    pub const LEARNING: u8 = 0x10;
    pub const FORWARDING: u8 = 0x20;
    pub const AGREEMENT: u8 = 0x40;
    pub const TC_ACK: u8 = 0x80;

    pub fn tc(self) -> bool {
        self.0 & Self::TC != 0
    }
    pub fn proposal(self) -> bool {
        self.0 & Self::PROPOSAL != 0
    }
    pub fn port_role(self) -> PortRole {
        match (self.0 & Self::ROLE_MASK) >> 2 {
            0 => PortRole::Unknown,
            1 => PortRole::AlternateBackup,
            2 => PortRole::Root,
            _ => PortRole::Designated,
        }
    }
    pub fn learning(self) -> bool {
        self.0 & Self::LEARNING != 0
    }
    pub fn forwarding(self) -> bool {
        self.0 & Self::FORWARDING != 0
    }
    pub fn agreement(self) -> bool {
        self.0 & Self::AGREEMENT != 0
    }
    pub fn tc_ack(self) -> bool {
        self.0 & Self::TC_ACK != 0
    }
}

/// A bridge identifier: 4-bit priority (as a multiple of 4096), 12-bit system ID extension,
/// MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BridgeId {
    /// The priority as people write it (0, 4096, ..., 61440).
    pub priority: u16,
    pub system_id_ext: u16,
    pub mac: MacAddr,
}

impl BridgeId {
    fn parse(b: &[u8]) -> Self {
        let p = be16(b, 0..2);
        BridgeId {
            priority: p & 0xf000,
            system_id_ext: p & 0x0fff,
            mac: mac(b, 2..8),
        }
    }

    fn emit(&self, out: &mut [u8]) {
        let p = (self.priority & 0xf000) | (self.system_id_ext & 0x0fff);
        out[..2].copy_from_slice(&p.to_be_bytes());
        out[2..8].copy_from_slice(&self.mac.0);
    }
}

/// `32768.0.52:54:00:00:00:01`: priority, system ID extension, MAC.
impl fmt::Display for BridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.priority, self.system_id_ext, self.mac)
    }
}

/// A view of a BPDU of any kind. [`Bpdu::new_checked`] checks the protocol identifier, the
/// BPDU type and that every field of that type is present; the fields a TCN does not have are
/// behind [`Bpdu::config`] and [`Bpdu::mst`], so no accessor reads past a 4-byte TCN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpdu<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Bpdu<T> {
    /// Wraps `buffer`, checking the protocol identifier and that the fields of its type are
    /// all present (for MST, every MSTI record the version 3 length announces).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = buffer.as_ref();
        check_len(d, TCN_LEN, Layer::Stp, "header")?;
        let protocol = be16(d, field::PROTOCOL_ID);
        if protocol != 0 {
            return Err(Error::Value {
                layer: Layer::Stp,
                field: "protocol identifier",
                value: protocol.into(),
            });
        }
        match BpduType(d[field::BPDU_TYPE]) {
            BpduType::TCN => {}
            BpduType::CONFIG => {
                ConfigBpdu::new_checked(d)?;
            }
            BpduType::RST => {
                check_len(d, RST_LEN, Layer::Stp, "RST BPDU")?;
                if carries_mst(d) {
                    MstBpdu::new_checked(d)?;
                }
            }
            BpduType(t) => {
                return Err(Error::Value {
                    layer: Layer::Stp,
                    field: "BPDU type",
                    value: t.into(),
                });
            }
        }
        Ok(Self { buffer })
    }

    fn d(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn version(&self) -> Version {
        Version(self.d()[field::VERSION])
    }
    pub fn bpdu_type(&self) -> BpduType {
        BpduType(self.d()[field::BPDU_TYPE])
    }
    /// True for an RST BPDU that carries MST fields.
    pub fn is_mst(&self) -> bool {
        self.bpdu_type() == BpduType::RST && carries_mst(self.d())
    }
    /// Length of the BPDU proper (what follows is padding or a PVST+ TLV).
    pub fn bpdu_len(&self) -> usize {
        match (self.bpdu_type(), self.mst()) {
            (BpduType::TCN, _) => TCN_LEN,
            (BpduType::CONFIG, _) => CONFIG_LEN,
            (_, Some(mst)) => field::MST_CONFIG_FORMAT + mst.version3_length(),
            _ => RST_LEN,
        }
    }
    /// The fields of configuration, RST and MST BPDUs; `None` for a TCN.
    pub fn config(&self) -> Option<ConfigBpdu<&[u8]>> {
        (self.bpdu_type() != BpduType::TCN).then(|| ConfigBpdu { buffer: self.d() })
    }
    /// The MST fields of an MST BPDU; `None` for other kinds.
    pub fn mst(&self) -> Option<MstBpdu<&[u8]>> {
        self.is_mst().then(|| MstBpdu { buffer: self.d() })
    }
}

/// An RST BPDU of version 3 or more that is long enough for the MST fields is an MST BPDU
/// (802.1Q clause 14.4); a shorter one is read as RST.
fn carries_mst(d: &[u8]) -> bool {
    d[field::VERSION] >= Version::MSTP.0 && d.len() >= MST_LEN
}

/// A view of the fields configuration, RST and MST BPDUs share (bytes 4 to 34): flags, root,
/// cost, bridge, port and timers. [`ConfigBpdu::new_checked`] checks that all 35 bytes are
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigBpdu<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ConfigBpdu<T> {
    /// Wraps `buffer`, checking that it holds the fields up to the forward delay.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check_len(
            buffer.as_ref(),
            CONFIG_LEN,
            Layer::Stp,
            "configuration BPDU",
        )?;
        Ok(Self { buffer })
    }

    fn d(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn flags(&self) -> Flags {
        Flags(self.d()[field::FLAGS])
    }
    pub fn root_id(&self) -> BridgeId {
        BridgeId::parse(&self.d()[field::ROOT_ID])
    }
    pub fn root_path_cost(&self) -> u32 {
        be32(self.d(), field::ROOT_PATH_COST)
    }
    pub fn bridge_id(&self) -> BridgeId {
        BridgeId::parse(&self.d()[field::BRIDGE_ID])
    }
    pub fn port_id(&self) -> u16 {
        be16(self.d(), field::PORT_ID)
    }
    pub fn message_age(&self) -> u16 {
        be16(self.d(), field::MESSAGE_AGE)
    }
    pub fn max_age(&self) -> u16 {
        be16(self.d(), field::MAX_AGE)
    }
    pub fn hello_time(&self) -> u16 {
        be16(self.d(), field::HELLO_TIME)
    }
    pub fn forward_delay(&self) -> u16 {
        be16(self.d(), field::FORWARD_DELAY)
    }
}

/// A view of the MST fields of an MST BPDU (bytes 36 on: version 3 length, MST configuration
/// identifier, CIST fields, MSTI records). [`MstBpdu::new_checked`] checks the version 3
/// length and that every MSTI record it announces is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MstBpdu<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MstBpdu<T> {
    /// Wraps `buffer` (a whole BPDU, from its protocol identifier), checking its MST fields.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = buffer.as_ref();
        check_len(d, MST_LEN, Layer::Stp, "MST BPDU")?;
        let v3 = usize::from(be16(d, field::VERSION3_LENGTH));
        if v3 < MST_V3_BASE
            || !(v3 - MST_V3_BASE).is_multiple_of(field::msti::LEN)
            || (v3 - MST_V3_BASE) / field::msti::LEN > MAX_MSTI
        {
            return Err(Error::Length {
                layer: Layer::Stp,
                field: "MST version 3 length",
                len: v3,
                expected: "64 + 16 per MSTI, at most 64 MSTIs",
            });
        }
        check_len(
            d,
            field::MST_CONFIG_FORMAT + v3,
            Layer::Stp,
            "MSTI configuration messages",
        )?;
        Ok(Self { buffer })
    }

    fn d(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Version 3 length: the bytes from the configuration format selector on.
    pub fn version3_length(&self) -> usize {
        usize::from(be16(self.d(), field::VERSION3_LENGTH))
    }
    /// Number of MSTI records.
    pub fn msti_count(&self) -> usize {
        (self.version3_length() - MST_V3_BASE) / field::msti::LEN
    }
    pub fn config_format(&self) -> u8 {
        self.d()[field::MST_CONFIG_FORMAT]
    }
    /// The configuration name, NUL padded.
    pub fn config_name(&self) -> [u8; 32] {
        super::array(self.d(), field::MST_CONFIG_NAME)
    }
    pub fn revision(&self) -> u16 {
        be16(self.d(), field::MST_REVISION)
    }
    pub fn digest(&self) -> [u8; 16] {
        super::array(self.d(), field::MST_DIGEST)
    }
    pub fn cist_internal_root_path_cost(&self) -> u32 {
        be32(self.d(), field::CIST_INTERNAL_ROOT_PATH_COST)
    }
    pub fn cist_bridge_id(&self) -> BridgeId {
        BridgeId::parse(&self.d()[field::CIST_BRIDGE_ID])
    }
    pub fn cist_remaining_hops(&self) -> u8 {
        self.d()[field::CIST_REMAINING_HOPS]
    }
    /// MSTI record `i` (0-based); `None` from [`MstBpdu::msti_count`] on.
    pub fn msti(&self, i: usize) -> Option<Msti> {
        use field::msti as f;
        if i >= self.msti_count() {
            return None;
        }
        let start = field::MSTI + i * f::LEN;
        let r = &self.d()[start..start + f::LEN];
        Some(Msti {
            flags: Flags(r[f::FLAGS]),
            regional_root: BridgeId::parse(&r[f::REGIONAL_ROOT]),
            internal_root_path_cost: be32(r, f::INTERNAL_ROOT_PATH_COST),
            bridge_priority: u16::from(r[f::BRIDGE_PRIORITY] >> 4) << 12,
            port_priority: (r[f::PORT_PRIORITY] >> 4) << 4,
            remaining_hops: r[f::REMAINING_HOPS],
        })
    }
}

/// The fields shared by configuration, RST and MST BPDUs; timers in 1/256 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Config {
    pub flags: Flags,
    pub root: BridgeId,
    pub root_path_cost: u32,
    pub bridge: BridgeId,
    pub port_id: u16,
    pub message_age: u16,
    pub max_age: u16,
    pub hello_time: u16,
    pub forward_delay: u16,
}

impl Config {
    /// What a bridge that believes itself root sends from port 0x8001 (priority 128, port 1):
    /// itself as root at cost 0, message age 0 and 802.1D's default timers (max age 20 s,
    /// hello 2 s, forward delay 15 s).
    pub fn root(bridge: BridgeId) -> Config {
        Config {
            flags: Flags(0),
            root: bridge,
            root_path_cost: 0,
            bridge,
            port_id: 0x8001,
            message_age: 0,
            max_age: 20 * 256,
            hello_time: 2 * 256,
            forward_delay: 15 * 256,
        }
    }
}

/// One MSTI configuration message (802.1Q clause 14.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Msti {
    pub flags: Flags,
    /// Its system ID extension is the MSTI id.
    pub regional_root: BridgeId,
    pub internal_root_path_cost: u32,
    /// As people write it: a multiple of 4096.
    pub bridge_priority: u16,
    /// As people write it: a multiple of 16.
    pub port_priority: u8,
    pub remaining_hops: u8,
}

/// The MST part of an MST BPDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Mst {
    pub config_format: u8,
    /// NUL padded.
    pub config_name: [u8; 32],
    pub revision: u16,
    pub digest: [u8; 16],
    pub cist_internal_root_path_cost: u32,
    pub cist_bridge: BridgeId,
    pub remaining_hops: u8,
    pub mstis: Vec<Msti>,
}

impl Mst {
    /// The configuration name without its NUL padding.
    pub fn config_name_text(&self) -> String {
        let end = self
            .config_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.config_name.len());
        String::from_utf8_lossy(&self.config_name[..end]).into_owned()
    }

    /// The digest in hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }
}

/// What a BPDU carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    Tcn,
    Config(Config),
    Rst(Config),
    Mst(Config, Mst),
}

/// A BPDU, owned. For PVST+, `pvst_vlan` is the originating VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    pub version: Version,
    pub body: Body,
    pub pvst_vlan: Option<u16>,
}

/// PVST+ originating-VLAN TLV: type 0, length 2, VLAN.
const PVST_TLV_LEN: usize = 6;
/// Offset of the PVST+ TLV in configuration and RST BPDUs.
pub const PVST_TLV: usize = 36;

impl Repr {
    /// Decodes an 802.1D / 802.1Q BPDU (the LLC payload); bytes after it are ignored.
    pub fn parse(data: &[u8]) -> Result<Repr, Error> {
        let bpdu = Bpdu::new_checked(data)?;
        let body = match (bpdu.config(), bpdu.mst()) {
            (None, _) => Body::Tcn,
            (Some(c), Some(m)) => Body::Mst(parse_config(&c), parse_mst(&m)),
            (Some(c), None) if bpdu.bpdu_type() == BpduType::CONFIG => {
                Body::Config(parse_config(&c))
            }
            (Some(c), None) => Body::Rst(parse_config(&c)),
        };
        Ok(Repr {
            version: bpdu.version(),
            body,
            pvst_vlan: None,
        })
    }

    /// Decodes a PVST+ BPDU (the SNAP payload): a configuration or RST BPDU with its
    /// originating-VLAN TLV; TCN and MST BPDUs carry none.
    pub fn parse_pvst(data: &[u8]) -> Result<Repr, Error> {
        let mut repr = Repr::parse(data)?;
        if !matches!(repr.body, Body::Config(_) | Body::Rst(_)) {
            return Ok(repr);
        }
        let at = PVST_TLV;
        let tlv = data.get(at..).unwrap_or_default();
        check_len(tlv, PVST_TLV_LEN, Layer::Pvst, "originating VLAN TLV")?;
        let (t, len) = (be16(tlv, 0..2), be16(tlv, 2..4));
        if t != 0 {
            return Err(Error::Value {
                layer: Layer::Pvst,
                field: "TLV type",
                value: t.into(),
            });
        }
        if len != 2 {
            return Err(Error::Length {
                layer: Layer::Pvst,
                field: "originating VLAN TLV",
                len: len.into(),
                expected: "2",
            });
        }
        repr.pvst_vlan = Some(be16(tlv, 4..6));
        Ok(repr)
    }

    /// The BPDU type of the body.
    pub fn bpdu_type(&self) -> BpduType {
        match self.body {
            Body::Tcn => BpduType::TCN,
            Body::Config(_) => BpduType::CONFIG,
            Body::Rst(_) | Body::Mst(..) => BpduType::RST,
        }
    }

    /// The configuration fields, unless TCN.
    pub fn config(&self) -> Option<&Config> {
        match &self.body {
            Body::Tcn => None,
            Body::Config(c) | Body::Rst(c) | Body::Mst(c, _) => Some(c),
        }
    }

    /// The MST part, if any.
    pub fn mst(&self) -> Option<&Mst> {
        match &self.body {
            Body::Mst(_, m) => Some(m),
            _ => None,
        }
    }

    /// `config`, `tcn`, `rst` or `mst`.
    pub fn kind_name(&self) -> &'static str {
        match self.body {
            Body::Tcn => "tcn",
            Body::Config(_) => "config",
            Body::Rst(_) => "rst",
            Body::Mst(..) => "mst",
        }
    }

    /// Length of the emitted BPDU (with the PVST+ TLV when `pvst_vlan` is set).
    pub fn buffer_len(&self) -> usize {
        let bpdu = match &self.body {
            Body::Tcn => TCN_LEN,
            Body::Config(_) => CONFIG_LEN,
            Body::Rst(_) => RST_LEN,
            Body::Mst(_, m) => MST_LEN + m.mstis.len() * field::msti::LEN,
        };
        if self.pvst_vlan.is_some() {
            PVST_TLV + PVST_TLV_LEN
        } else {
            bpdu
        }
    }

    /// Appends the BPDU (and the PVST+ TLV when `pvst_vlan` is set) to `out`. A PVST+ TLV
    /// only follows configuration and RST BPDUs.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.pvst_vlan.is_some() && !matches!(self.body, Body::Config(_) | Body::Rst(_)) {
            return Err(Error::Value {
                layer: Layer::Pvst,
                field: "BPDU type",
                value: self.bpdu_type().0.into(),
            });
        }
        if let Body::Mst(_, m) = &self.body
            && m.mstis.len() > MAX_MSTI
        {
            return Err(Error::TooLong {
                layer: Layer::Stp,
                field: "MSTI configuration messages",
                len: m.mstis.len(),
                max: MAX_MSTI,
            });
        }
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        let b = &mut out[start..];
        b[field::VERSION] = self.version.0;
        b[field::BPDU_TYPE] = self.bpdu_type().0;
        if let Some(c) = self.config() {
            b[field::FLAGS] = c.flags.0;
            c.root.emit(&mut b[field::ROOT_ID]);
            b[field::ROOT_PATH_COST].copy_from_slice(&c.root_path_cost.to_be_bytes());
            c.bridge.emit(&mut b[field::BRIDGE_ID]);
            b[field::PORT_ID].copy_from_slice(&c.port_id.to_be_bytes());
            b[field::MESSAGE_AGE].copy_from_slice(&c.message_age.to_be_bytes());
            b[field::MAX_AGE].copy_from_slice(&c.max_age.to_be_bytes());
            b[field::HELLO_TIME].copy_from_slice(&c.hello_time.to_be_bytes());
            b[field::FORWARD_DELAY].copy_from_slice(&c.forward_delay.to_be_bytes());
        }
        if let Some(m) = self.mst() {
            let v3 = (MST_V3_BASE + m.mstis.len() * field::msti::LEN) as u16;
            b[field::VERSION3_LENGTH].copy_from_slice(&v3.to_be_bytes());
            b[field::MST_CONFIG_FORMAT] = m.config_format;
            b[field::MST_CONFIG_NAME].copy_from_slice(&m.config_name);
            b[field::MST_REVISION].copy_from_slice(&m.revision.to_be_bytes());
            b[field::MST_DIGEST].copy_from_slice(&m.digest);
            b[field::CIST_INTERNAL_ROOT_PATH_COST]
                .copy_from_slice(&m.cist_internal_root_path_cost.to_be_bytes());
            m.cist_bridge.emit(&mut b[field::CIST_BRIDGE_ID]);
            b[field::CIST_REMAINING_HOPS] = m.remaining_hops;
            for (i, x) in m.mstis.iter().enumerate() {
                use field::msti as f;
                let r = &mut b[field::MSTI + i * f::LEN..][..f::LEN];
                r[f::FLAGS] = x.flags.0;
                x.regional_root.emit(&mut r[f::REGIONAL_ROOT]);
                r[f::INTERNAL_ROOT_PATH_COST]
                    .copy_from_slice(&x.internal_root_path_cost.to_be_bytes());
                r[f::BRIDGE_PRIORITY] = ((x.bridge_priority >> 12) << 4) as u8;
                r[f::PORT_PRIORITY] = (x.port_priority >> 4) << 4;
                r[f::REMAINING_HOPS] = x.remaining_hops;
            }
        }
        if let Some(vlan) = self.pvst_vlan {
            let at = b.len() - PVST_TLV_LEN;
            b[at + 2..at + 4].copy_from_slice(&2u16.to_be_bytes());
            b[at + 4..].copy_from_slice(&vlan.to_be_bytes());
        }
        Ok(())
    }
}

fn parse_config(c: &ConfigBpdu<&[u8]>) -> Config {
    Config {
        flags: c.flags(),
        root: c.root_id(),
        root_path_cost: c.root_path_cost(),
        bridge: c.bridge_id(),
        port_id: c.port_id(),
        message_age: c.message_age(),
        max_age: c.max_age(),
        hello_time: c.hello_time(),
        forward_delay: c.forward_delay(),
    }
}

fn parse_mst(m: &MstBpdu<&[u8]>) -> Mst {
    Mst {
        config_format: m.config_format(),
        config_name: m.config_name(),
        revision: m.revision(),
        digest: m.digest(),
        cist_internal_root_path_cost: m.cist_internal_root_path_cost(),
        cist_bridge: m.cist_bridge_id(),
        remaining_hops: m.cist_remaining_hops(),
        mstis: (0..m.msti_count()).filter_map(|i| m.msti(i)).collect(),
    }
}

/// Seconds from a timer in 1/256 s.
pub fn seconds(timer: u16) -> f64 {
    f64::from(timer) / 256.0
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.kind_name();
        write!(f, "{name} v{}", self.version.0)?;
        if let Some(vlan) = self.pvst_vlan {
            write!(f, " pvst vlan={vlan}")?;
        }
        if let Some(c) = self.config() {
            write!(
                f,
                " root={} cost={} bridge={} port={:#06x}",
                c.root, c.root_path_cost, c.bridge, c.port_id
            )?;
            if self.bpdu_type() == BpduType::RST {
                write!(f, " role={}", c.flags.port_role().name())?;
            }
            let flags = [
                (c.flags.tc(), "tc"),
                (c.flags.proposal(), "proposal"),
                (c.flags.learning(), "learning"),
                (c.flags.forwarding(), "forwarding"),
                (c.flags.agreement(), "agreement"),
                (c.flags.tc_ack(), "tc_ack"),
            ];
            let set: Vec<&str> = flags.iter().filter(|f| f.0).map(|f| f.1).collect();
            if !set.is_empty() {
                write!(f, " flags={}", set.join(","))?;
            }
            write!(
                f,
                " hello={} max_age={} fwd_delay={}",
                seconds(c.hello_time),
                seconds(c.max_age),
                seconds(c.forward_delay)
            )?;
        }
        if let Some(m) = self.mst() {
            write!(
                f,
                " region={:?} rev={} mstis={}",
                m.config_name_text(),
                m.revision,
                m.mstis.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration BPDU as a Linux bridge sends it: priority 32768, MAC 52:54:00:00:00:01.
    pub(crate) const CONFIG: [u8; 35] = [
        0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x04, 0x80, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0x02, 0x80, 0x02, 0x01, 0x00, 0x14,
        0x00, 0x02, 0x00, 0x0f, 0x00,
    ];

    fn bridge(priority: u16, ext: u16, last: u8) -> BridgeId {
        BridgeId {
            priority,
            system_id_ext: ext,
            mac: MacAddr([0x52, 0x54, 0, 0, 0, last]),
        }
    }

    fn config() -> Config {
        Config {
            flags: Flags(0x01),
            root: bridge(32768, 0, 1),
            root_path_cost: 4,
            bridge: bridge(32768, 1, 2),
            port_id: 0x8002,
            message_age: 256,
            max_age: 20 * 256,
            hello_time: 2 * 256,
            forward_delay: 15 * 256,
        }
    }

    fn emit(r: &Repr) -> Vec<u8> {
        let mut out = Vec::new();
        r.emit(&mut out).unwrap();
        out
    }

    #[test]
    fn config_bpdu() {
        let r = Repr::parse(&CONFIG).unwrap();
        assert_eq!(
            r,
            Repr {
                version: Version::STP,
                body: Body::Config(config()),
                pvst_vlan: None
            }
        );
        assert_eq!(emit(&r), CONFIG);
        let text = r.to_string();
        assert!(
            text.starts_with("config v0 root=32768.0.52:54:00:00:00:01 cost=4"),
            "{text}"
        );
        assert!(text.contains("flags=tc"), "{text}");
    }

    #[test]
    fn tcn_bpdu() {
        let r = Repr::parse(&[0, 0, 0, 0x80]).unwrap();
        assert_eq!(r.body, Body::Tcn);
        assert_eq!(r.kind_name(), "tcn");
        assert_eq!(emit(&r), [0, 0, 0, 0x80]);
    }

    /// A 4-byte TCN passes `new_checked`; the configuration fields it does not have are not
    /// reachable, so nothing reads past its end (flags and root ID once did).
    #[test]
    fn four_byte_tcn_has_no_configuration_fields() {
        let tcn = [0, 0, 0, 0x80];
        let bpdu = Bpdu::new_checked(&tcn[..]).unwrap();
        assert_eq!(bpdu.bpdu_type(), BpduType::TCN);
        assert_eq!(bpdu.bpdu_len(), TCN_LEN);
        assert!(bpdu.config().is_none());
        assert!(bpdu.mst().is_none());
        assert!(ConfigBpdu::new_checked(&tcn[..]).is_err());
        assert!(MstBpdu::new_checked(&tcn[..]).is_err());
        // A TCN header on a long buffer is still a TCN.
        let mut long = CONFIG;
        long[field::BPDU_TYPE] = BpduType::TCN.0;
        assert!(Bpdu::new_checked(&long[..]).unwrap().config().is_none());
    }

    #[test]
    fn rst_bpdu_flags() {
        let mut c = config();
        c.flags = Flags(0x7e);
        let r = Repr {
            version: Version::RSTP,
            body: Body::Rst(c),
            pvst_vlan: None,
        };
        let bytes = emit(&r);
        assert_eq!(bytes.len(), RST_LEN);
        assert_eq!(bytes[field::BPDU_TYPE], 2);
        let back = Repr::parse(&bytes).unwrap();
        assert_eq!(back, r);
        let f = back.config().unwrap().flags;
        assert!(!f.tc() && f.proposal() && f.learning() && f.forwarding() && f.agreement());
        assert!(!f.tc_ack());
        assert_eq!(f.port_role(), PortRole::Designated);
        assert_eq!(Flags(0x04).port_role(), PortRole::AlternateBackup);
        assert_eq!(Flags(0x08).port_role(), PortRole::Root);
        assert_eq!(Flags(0x80).port_role(), PortRole::Unknown);
        assert!(Flags(0x80).tc_ack());
    }

    fn mst_repr(n: usize) -> Repr {
        let mut name = [0; 32];
        name[..6].copy_from_slice(b"region");
        Repr {
            version: Version::MSTP,
            body: Body::Mst(
                config(),
                Mst {
                    config_format: 0,
                    config_name: name,
                    revision: 7,
                    digest: [0xac; 16],
                    cist_internal_root_path_cost: 20000,
                    cist_bridge: bridge(4096, 0, 3),
                    remaining_hops: 20,
                    mstis: (1..=n as u16)
                        .map(|i| Msti {
                            flags: Flags(0x3c),
                            regional_root: bridge(8192, i, 4),
                            internal_root_path_cost: 2000,
                            bridge_priority: 8192,
                            port_priority: 128,
                            remaining_hops: 19,
                        })
                        .collect(),
                },
            ),
            pvst_vlan: None,
        }
    }

    #[test]
    fn mst_bpdu_with_mstis() {
        let r = mst_repr(2);
        let bytes = emit(&r);
        assert_eq!(bytes.len(), 102 + 32);
        assert_eq!(be16(&bytes, field::VERSION3_LENGTH), 96);
        assert_eq!(bytes[field::MSTI + field::msti::BRIDGE_PRIORITY], 0x20);
        assert_eq!(bytes[field::MSTI + field::msti::PORT_PRIORITY], 0x80);
        let back = Repr::parse(&bytes).unwrap();
        assert_eq!(back, r);
        let m = back.mst().unwrap();
        assert_eq!(m.config_name_text(), "region");
        assert_eq!(m.digest_hex(), "ac".repeat(16));
        assert_eq!(m.mstis[1].regional_root.system_id_ext, 2);
    }

    #[test]
    fn mst_bad_version3_length() {
        let mut bytes = emit(&mst_repr(0));
        bytes[field::VERSION3_LENGTH.end - 1] = 65;
        assert_eq!(
            Repr::parse(&bytes),
            Err(Error::Length {
                layer: Layer::Stp,
                field: "MST version 3 length",
                len: 65,
                expected: "64 + 16 per MSTI, at most 64 MSTIs"
            })
        );
    }

    #[test]
    fn short_version3_is_rst() {
        let mut bytes = emit(&Repr {
            version: Version::MSTP,
            body: Body::Rst(config()),
            pvst_vlan: None,
        });
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(Repr::parse(&bytes).unwrap().kind_name(), "rst");
    }

    #[test]
    fn pvst_vlan_tlv() {
        let r = Repr {
            version: Version::RSTP,
            body: Body::Rst(config()),
            pvst_vlan: Some(20),
        };
        let bytes = emit(&r);
        assert_eq!(&bytes[RST_LEN..], &[0, 0, 0, 2, 0, 20]);
        let config_pvst = Repr {
            version: Version::STP,
            body: Body::Config(config()),
            pvst_vlan: Some(30),
        };
        let config_bytes = emit(&config_pvst);
        assert_eq!(&config_bytes[CONFIG_LEN..], &[0, 0, 0, 0, 2, 0, 30]);
        assert_eq!(Repr::parse_pvst(&config_bytes).unwrap(), config_pvst);
        let tcn = [0, 0, 0, 0x80];
        assert_eq!(Repr::parse_pvst(&tcn).unwrap().pvst_vlan, None);
        let mut out = Vec::new();
        assert_eq!(
            Repr {
                version: Version::STP,
                body: Body::Tcn,
                pvst_vlan: Some(1)
            }
            .emit(&mut out),
            Err(Error::Value {
                layer: Layer::Pvst,
                field: "BPDU type",
                value: 0x80
            })
        );
        assert_eq!(Repr::parse_pvst(&bytes).unwrap(), r);
        assert!(r.to_string().contains("pvst vlan=20"));
        let mut bad = bytes.clone();
        bad[RST_LEN + 1] = 1;
        assert_eq!(
            Repr::parse_pvst(&bad),
            Err(Error::Value {
                layer: Layer::Pvst,
                field: "TLV type",
                value: 1
            })
        );
        bad = bytes.clone();
        bad[RST_LEN + 3] = 3;
        assert!(matches!(
            Repr::parse_pvst(&bad),
            Err(Error::Length {
                layer: Layer::Pvst,
                ..
            })
        ));
    }

    #[test]
    fn bad_protocol_and_type() {
        assert_eq!(
            Repr::parse(&[0, 1, 0, 0x80]),
            Err(Error::Value {
                layer: Layer::Stp,
                field: "protocol identifier",
                value: 1
            })
        );
        assert_eq!(
            Repr::parse(&[0, 0, 0, 0x81]),
            Err(Error::Value {
                layer: Layer::Stp,
                field: "BPDU type",
                value: 0x81
            })
        );
    }

    #[test]
    fn truncation_at_every_length() {
        let kinds = [
            emit(&Repr {
                version: Version::STP,
                body: Body::Tcn,
                pvst_vlan: None,
            }),
            CONFIG.to_vec(),
            emit(&Repr {
                version: Version::RSTP,
                body: Body::Rst(config()),
                pvst_vlan: None,
            }),
            emit(&mst_repr(3)),
        ];
        for bytes in &kinds {
            assert!(Repr::parse(bytes).is_ok());
            for len in 0..bytes.len() {
                let r = Repr::parse(&bytes[..len]);
                // An MST BPDU cut below 102 bytes is a valid RST BPDU (802.1Q 14.4).
                if len >= RST_LEN && bytes.len() > MST_LEN && len < MST_LEN {
                    assert_eq!(r.unwrap().kind_name(), "rst");
                } else {
                    assert!(
                        matches!(
                            r,
                            Err(Error::Truncated {
                                layer: Layer::Stp,
                                ..
                            })
                        ),
                        "{len}"
                    );
                }
            }
        }
        let pvst = emit(&Repr {
            version: Version::STP,
            body: Body::Config(config()),
            pvst_vlan: Some(1),
        });
        for len in CONFIG_LEN..pvst.len() {
            assert!(matches!(
                Repr::parse_pvst(&pvst[..len]),
                Err(Error::Truncated {
                    layer: Layer::Pvst,
                    ..
                })
            ));
        }
    }
}
