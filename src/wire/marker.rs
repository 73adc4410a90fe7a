//! The Marker protocol of link aggregation (IEEE 802.1AX-2014 clause 6.5.3).
//!
//! A Marker PDU (slow protocol subtype 2) is 110 bytes: a Marker Information (type 1) or
//! Marker Response Information (type 2) TLV of length 16 (requester port, requester system,
//! requester transaction id, 2 pad bytes), a Terminator TLV and 90 reserved bytes.

use std::fmt;

use super::{Error, Layer, MacAddr, be16, be32, check_slow_pdu, emit_slow_pdu, mac};

/// Byte offsets of the Marker PDU fields.
pub mod field {
    use core::ops::Range;
    pub const SUBTYPE: usize = 0;
    pub const VERSION: usize = 1;
    pub const TLV_TYPE: usize = 2;
    pub const TLV_LENGTH: usize = 3;
    pub const REQUESTER_PORT: Range<usize> = 4..6;
    pub const REQUESTER_SYSTEM: Range<usize> = 6..12;
    pub const TRANSACTION_ID: Range<usize> = 12..16;
    pub const TERMINATOR: Range<usize> = 18..20;
    /// Length of a Marker PDU.
    pub const LEN: usize = crate::wire::SLOW_PDU_LEN;
}

/// Marker TLV type: request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind(pub u8);

impl Kind {
    pub const REQUEST: Self = Self(1);
    pub const RESPONSE: Self = Self(2);
}

/// A view of a Marker PDU (from the subtype byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerPdu<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MarkerPdu<T> {
    /// Wraps `buffer`, checking length, subtype and TLV headers.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = buffer.as_ref();
        check_slow_pdu(d, super::SLOW_SUBTYPE_MARKER, Layer::Marker, "Marker PDU")?;
        let kind = Kind(d[field::TLV_TYPE]);
        if kind != Kind::REQUEST && kind != Kind::RESPONSE {
            return Err(Error::Value {
                layer: Layer::Marker,
                field: "TLV type",
                value: kind.0.into(),
            });
        }
        if d[field::TLV_LENGTH] != 16 {
            return Err(Error::Length {
                layer: Layer::Marker,
                field: "Marker Information TLV",
                len: d[field::TLV_LENGTH].into(),
                expected: "16",
            });
        }
        let terminator = be16(d, field::TERMINATOR);
        if terminator != 0 {
            return Err(Error::Value {
                layer: Layer::Marker,
                field: "Terminator TLV",
                value: terminator.into(),
            });
        }
        Ok(Self { buffer })
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    pub fn kind(&self) -> Kind {
        Kind(self.buffer.as_ref()[field::TLV_TYPE])
    }
    pub fn requester_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::REQUESTER_PORT)
    }
    pub fn requester_system(&self) -> MacAddr {
        mac(self.buffer.as_ref(), field::REQUESTER_SYSTEM)
    }
    pub fn transaction_id(&self) -> u32 {
        be32(self.buffer.as_ref(), field::TRANSACTION_ID)
    }
}

/// A Marker PDU, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub version: u8,
    pub kind: Kind,
    pub requester_port: u16,
    pub requester_system: MacAddr,
    pub transaction_id: u32,
}

impl Repr {
    /// Decodes a Marker PDU from its subtype byte on.
    pub fn parse(data: &[u8]) -> Result<Repr, Error> {
        let pdu = MarkerPdu::new_checked(data)?;
        Ok(Repr {
            version: pdu.version(),
            kind: pdu.kind(),
            requester_port: pdu.requester_port(),
            requester_system: pdu.requester_system(),
            transaction_id: pdu.transaction_id(),
        })
    }

    /// Length of the emitted PDU.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the PDU (from its subtype byte) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let d = emit_slow_pdu(out, super::SLOW_SUBTYPE_MARKER, self.version);
        d[field::TLV_TYPE] = self.kind.0;
        d[field::TLV_LENGTH] = 16;
        d[field::REQUESTER_PORT].copy_from_slice(&self.requester_port.to_be_bytes());
        d[field::REQUESTER_SYSTEM].copy_from_slice(&self.requester_system.0);
        d[field::TRANSACTION_ID].copy_from_slice(&self.transaction_id.to_be_bytes());
    }

    /// `request` or `response`.
    pub fn kind_name(&self) -> &'static str {
        if self.kind == Kind::REQUEST {
            "request"
        } else {
            "response"
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requester={} port={} transaction={}",
            self.kind_name(),
            self.requester_system,
            self.requester_port,
            self.transaction_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Repr {
        Repr {
            version: 1,
            kind,
            requester_port: 3,
            requester_system: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
            transaction_id: 0xdeadbeef,
        }
    }

    #[test]
    fn request_and_response_round_trip() {
        for kind in [Kind::REQUEST, Kind::RESPONSE] {
            let mut b = Vec::new();
            sample(kind).emit(&mut b);
            assert_eq!(b.len(), 110);
            assert_eq!(&b[..4], &[2, 1, kind.0, 16]);
            assert_eq!(&b[12..16], &[0xde, 0xad, 0xbe, 0xef]);
            assert_eq!(Repr::parse(&b).unwrap(), sample(kind));
        }
        assert_eq!(
            sample(Kind::RESPONSE).to_string(),
            "response requester=52:54:00:00:00:01 port=3 transaction=3735928559"
        );
    }

    #[test]
    fn bad_fields_are_precise() {
        let mut b = Vec::new();
        sample(Kind::REQUEST).emit(&mut b);
        let mut x = b.clone();
        x[2] = 3;
        assert_eq!(
            Repr::parse(&x),
            Err(Error::Value {
                layer: Layer::Marker,
                field: "TLV type",
                value: 3
            })
        );
        let mut x = b.clone();
        x[3] = 20;
        assert!(matches!(
            Repr::parse(&x),
            Err(Error::Length { len: 20, .. })
        ));
        let mut x = b.clone();
        x[19] = 1;
        assert!(matches!(
            Repr::parse(&x),
            Err(Error::Value {
                field: "Terminator TLV",
                ..
            })
        ));
        for len in 0..b.len() {
            assert!(matches!(
                Repr::parse(&b[..len]),
                Err(Error::Truncated {
                    layer: Layer::Marker,
                    need: 110,
                    ..
                })
            ));
        }
    }
}
