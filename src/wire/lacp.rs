//! LACP: the Link Aggregation Control Protocol data unit (IEEE 802.1AX-2014 clause 6.4.2).
//!
//! A LACPDU (slow protocol subtype 1) is 110 bytes of fixed layout: Actor Information TLV
//! (type 1, length 20), Partner Information TLV (type 2, length 20), Collector Information
//! TLV (type 3, length 16), Terminator TLV (type 0, length 0) and 50 reserved bytes.

use std::fmt;

use super::{Error, Layer, MacAddr, be16, check_slow_pdu, emit_slow_pdu, mac};

/// Byte offsets of the LACPDU fields.
pub mod field {
    use core::ops::Range;
    pub const SUBTYPE: usize = 0;
    pub const VERSION: usize = 1;
    pub const ACTOR_TLV: usize = 2;
    pub const PARTNER_TLV: usize = 22;
    pub const COLLECTOR_TLV: usize = 42;
    pub const COLLECTOR_MAX_DELAY: Range<usize> = 44..46;
    pub const TERMINATOR_TLV: usize = 58;
    /// Offsets inside an Actor or Partner Information TLV (from its type byte).
    pub mod info {
        use core::ops::Range;
        pub const TYPE: usize = 0;
        pub const LENGTH: usize = 1;
        pub const SYSTEM_PRIORITY: Range<usize> = 2..4;
        pub const SYSTEM: Range<usize> = 4..10;
        pub const KEY: Range<usize> = 10..12;
        pub const PORT_PRIORITY: Range<usize> = 12..14;
        pub const PORT: Range<usize> = 14..16;
        pub const STATE: usize = 16;
        pub const LEN: usize = 20;
    }
    /// Length of a LACPDU.
    pub const LEN: usize = crate::wire::SLOW_PDU_LEN;
}

/// TLV types of a LACPDU.
pub mod tlv_type {
    pub const TERMINATOR: u8 = 0;
    pub const ACTOR: u8 = 1;
    pub const PARTNER: u8 = 2;
    pub const COLLECTOR: u8 = 3;
}

/// Actor or partner state bits (802.1AX clause 6.4.2.3 m).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct State(pub u8);

impl State {
    /// Bit names, bit 0 first.
    pub const NAMES: [&'static str; 8] = [
        "activity",
        "timeout",
        "aggregation",
        "synchronization",
        "collecting",
        "distributing",
        "defaulted",
        "expired",
    ];

    /// (name, set) for each of the eight bits.
    pub fn bits(self) -> impl Iterator<Item = (&'static str, bool)> {
        Self::NAMES
            .iter()
            .enumerate()
            .map(move |(i, name)| (*name, self.0 & (1 << i) != 0))
    }

    pub fn activity(self) -> bool {
        self.0 & 0x01 != 0
    }
    pub fn synchronization(self) -> bool {
        self.0 & 0x08 != 0
    }
    pub fn collecting(self) -> bool {
        self.0 & 0x10 != 0
    }
    pub fn distributing(self) -> bool {
        self.0 & 0x20 != 0
    }
}

/// Short letters like Linux bonding's debug output: A(ctive) S(hort timeout) G(gregatable)
/// Y(nc) C(ollecting) D(istributing) F (defaulted) E(xpired); `-` for clear bits.
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in "ASGYCDFE".chars().enumerate() {
            let set = self.0 & (1 << i) != 0;
            write!(f, "{}", if set { c } else { '-' })?;
        }
        Ok(())
    }
}

/// Actor or partner information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Info {
    pub system_priority: u16,
    pub system: MacAddr,
    pub key: u16,
    pub port_priority: u16,
    pub port: u16,
    pub state: State,
}

impl Info {
    fn parse(d: &[u8]) -> Info {
        use field::info as f;
        Info {
            system_priority: be16(d, f::SYSTEM_PRIORITY),
            system: mac(d, f::SYSTEM),
            key: be16(d, f::KEY),
            port_priority: be16(d, f::PORT_PRIORITY),
            port: be16(d, f::PORT),
            state: State(d[f::STATE]),
        }
    }

    fn emit(&self, tlv_type: u8, d: &mut [u8]) {
        use field::info as f;
        d[f::TYPE] = tlv_type;
        d[f::LENGTH] = f::LEN as u8;
        d[f::SYSTEM_PRIORITY].copy_from_slice(&self.system_priority.to_be_bytes());
        d[f::SYSTEM].copy_from_slice(&self.system.0);
        d[f::KEY].copy_from_slice(&self.key.to_be_bytes());
        d[f::PORT_PRIORITY].copy_from_slice(&self.port_priority.to_be_bytes());
        d[f::PORT].copy_from_slice(&self.port.to_be_bytes());
        d[f::STATE] = self.state.0;
    }
}

/// `(32768,52:54:00:00:00:01,key 1,port 32768.1) AS-YCD--`.
impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({},{},key {},port {}.{}) {}",
            self.system_priority, self.system, self.key, self.port_priority, self.port, self.state
        )
    }
}

/// A view of a LACPDU (from the subtype byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lacpdu<T: AsRef<[u8]>> {
    buffer: T,
}

fn check_tlv(d: &[u8], at: usize, t: u8, len: u8, layer: Layer) -> Result<(), Error> {
    if d[at] != t {
        return Err(Error::Value {
            layer,
            field: "TLV type",
            value: d[at].into(),
        });
    }
    if d[at + 1] != len {
        return Err(Error::Length {
            layer,
            field: match t {
                tlv_type::ACTOR => "Actor Information TLV",
                tlv_type::PARTNER => "Partner Information TLV",
                tlv_type::COLLECTOR => "Collector Information TLV",
                tlv_type::TERMINATOR => "Terminator TLV",
                _ => "Marker Information TLV",
            },
            len: d[at + 1].into(),
            expected: match len {
                20 => "20",
                16 => "16",
                _ => "0",
            },
        });
    }
    Ok(())
}

impl<T: AsRef<[u8]>> Lacpdu<T> {
    /// Wraps `buffer`, checking length, subtype and the four TLV headers.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = buffer.as_ref();
        check_slow_pdu(d, super::SLOW_SUBTYPE_LACP, Layer::Lacp, "LACPDU")?;
        check_tlv(d, field::ACTOR_TLV, tlv_type::ACTOR, 20, Layer::Lacp)?;
        check_tlv(d, field::PARTNER_TLV, tlv_type::PARTNER, 20, Layer::Lacp)?;
        check_tlv(
            d,
            field::COLLECTOR_TLV,
            tlv_type::COLLECTOR,
            16,
            Layer::Lacp,
        )?;
        check_tlv(
            d,
            field::TERMINATOR_TLV,
            tlv_type::TERMINATOR,
            0,
            Layer::Lacp,
        )?;
        Ok(Self { buffer })
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    pub fn actor(&self) -> Info {
        Info::parse(&self.buffer.as_ref()[field::ACTOR_TLV..])
    }
    pub fn partner(&self) -> Info {
        Info::parse(&self.buffer.as_ref()[field::PARTNER_TLV..])
    }
    /// Collector max delay in tens of microseconds.
    pub fn collector_max_delay(&self) -> u16 {
        be16(self.buffer.as_ref(), field::COLLECTOR_MAX_DELAY)
    }
}

/// A LACPDU, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    pub version: u8,
    pub actor: Info,
    pub partner: Info,
    /// Tens of microseconds.
    pub collector_max_delay: u16,
}

impl Repr {
    /// Decodes a LACPDU from its subtype byte on.
    pub fn parse(data: &[u8]) -> Result<Repr, Error> {
        let pdu = Lacpdu::new_checked(data)?;
        Ok(Repr {
            version: pdu.version(),
            actor: pdu.actor(),
            partner: pdu.partner(),
            collector_max_delay: pdu.collector_max_delay(),
        })
    }

    /// Length of the emitted LACPDU.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the LACPDU (from its subtype byte) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let d = emit_slow_pdu(out, super::SLOW_SUBTYPE_LACP, self.version);
        self.actor.emit(tlv_type::ACTOR, &mut d[field::ACTOR_TLV..]);
        self.partner
            .emit(tlv_type::PARTNER, &mut d[field::PARTNER_TLV..]);
        d[field::COLLECTOR_TLV] = tlv_type::COLLECTOR;
        d[field::COLLECTOR_TLV + 1] = 16;
        d[field::COLLECTOR_MAX_DELAY].copy_from_slice(&self.collector_max_delay.to_be_bytes());
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor={} partner={}", self.actor, self.partner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Repr {
        Repr {
            version: 1,
            actor: Info {
                system_priority: 65535,
                system: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
                key: 9,
                port_priority: 255,
                port: 1,
                state: State(0x3d),
            },
            partner: Info {
                system_priority: 32768,
                system: MacAddr([0x52, 0x54, 0, 0, 0, 2]),
                key: 15,
                port_priority: 32768,
                port: 3,
                state: State(0x47),
            },
            collector_max_delay: 5,
        }
    }

    fn bytes() -> Vec<u8> {
        let mut out = Vec::new();
        sample().emit(&mut out);
        out
    }

    #[test]
    fn layout_and_round_trip() {
        let b = bytes();
        assert_eq!(b.len(), 110);
        assert_eq!(&b[..4], &[1, 1, 1, 20]);
        assert_eq!(&b[4..6], &[0xff, 0xff]);
        assert_eq!(b[18], 0x3d);
        assert_eq!(&b[22..24], &[2, 20]);
        assert_eq!(&b[42..46], &[3, 16, 0, 5]);
        assert_eq!(&b[58..60], &[0, 0]);
        assert_eq!(Repr::parse(&b).unwrap(), sample());
    }

    #[test]
    fn state_bits_named() {
        let s = sample().actor.state;
        let set: Vec<&str> = s.bits().filter(|b| b.1).map(|b| b.0).collect();
        assert_eq!(
            set,
            [
                "activity",
                "aggregation",
                "synchronization",
                "collecting",
                "distributing"
            ]
        );
        assert_eq!(s.to_string(), "A-GYCD--");
        assert!(s.activity() && s.synchronization() && s.collecting() && s.distributing());
        assert_eq!(State(0xc2).to_string(), "-S----FE");
        assert_eq!(
            sample().to_string(),
            "actor=(65535,52:54:00:00:00:01,key 9,port 255.1) A-GYCD-- \
             partner=(32768,52:54:00:00:00:02,key 15,port 32768.3) ASG---F-"
        );
    }

    #[test]
    fn bad_tlvs_are_precise() {
        let mut b = bytes();
        b[22] = 9;
        assert_eq!(
            Repr::parse(&b),
            Err(Error::Value {
                layer: Layer::Lacp,
                field: "TLV type",
                value: 9
            })
        );
        let mut b = bytes();
        b[43] = 15;
        assert_eq!(
            Repr::parse(&b),
            Err(Error::Length {
                layer: Layer::Lacp,
                field: "Collector Information TLV",
                len: 15,
                expected: "16"
            })
        );
        let mut b = bytes();
        b[0] = 2;
        assert!(matches!(
            Repr::parse(&b),
            Err(Error::Value {
                field: "subtype",
                ..
            })
        ));
    }

    #[test]
    fn truncation_at_every_length() {
        let b = bytes();
        for len in 0..b.len() {
            assert_eq!(
                Repr::parse(&b[..len]),
                Err(Error::Truncated {
                    layer: Layer::Lacp,
                    field: "LACPDU",
                    need: 110,
                    have: len
                })
            );
        }
    }
}
