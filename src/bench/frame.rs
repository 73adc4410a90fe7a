//! The test frames of `linkscope bench`.
//!
//! Every tunnel datagram is one Ethernet II frame with the local experimental EtherType
//! 0x88B5 (IEEE Std 802-2014, clause 9.2.2, "Local Experimental EtherType 1"), so Wireshark,
//! tcpdump and our splice see valid frames. After the 14-byte Ethernet header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 14 | 1 | version (1) |
//! | 15 | 1 | kind: 1 data, 2 echo, 3 report request, 4 report |
//! | 16 | 2 | stream id |
//! | 18 | 2 | reserved, zero |
//! | 20 | 4 | test id (one per size of a run) |
//! | 24 | 8 | sequence number (data, echo) or request number (report request, report) |
//! | 32 | 8 | send timestamp, ns since the Unix epoch, sender's clock |
//! | 40 | 8 | receive timestamp at the reflector (echo), else zero |
//! | 48 | … | data: padding; report request: frames sent so far; report: [`Report`] |
//!
//! All integers are big-endian. A frame's size is the whole Ethernet frame without FCS,
//! which is the tunnel datagram's UDP payload.

use crate::measure::snmp::FragCounters;

/// The EtherType of test frames.
pub const ETHER_TYPE: u16 = 0x88B5;
/// Smallest test frame (the Ethernet minimum without FCS).
pub const MIN_SIZE: usize = 60;
/// Largest test frame (the largest IPv4 UDP payload).
pub const MAX_SIZE: usize = 65507;
/// Bytes of the Ethernet and test headers.
pub const HEADER_LEN: usize = 48;
/// Version written into every frame.
pub const VERSION: u8 = 1;

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHER_TYPE: Field = 12..14;
    pub const VERSION: usize = 14;
    pub const KIND: usize = 15;
    pub const STREAM: Field = 16..18;
    pub const TEST: Field = 20..24;
    pub const SEQUENCE: Field = 24..32;
    pub const SENT: Field = 32..40;
    pub const REFLECTED: Field = 40..48;
    pub const BODY: usize = 48;
}

/// What a test frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(pub u8);

impl Kind {
    /// A counted test frame, sender to receiver.
    pub const DATA: Kind = Kind(1);
    /// A data frame returned by a reflector.
    pub const ECHO: Kind = Kind(2);
    /// The sender asks the receiver for its counts of one test.
    pub const REPORT_REQUEST: Kind = Kind(3);
    /// The receiver's counts of one test.
    pub const REPORT: Kind = Kind(4);
}

/// Why bytes are not a test frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("EtherType {0:#06x} is not 0x88b5")]
    EtherType(u16),
    #[error("test frame version {0} is not 1")]
    Version(u8),
}

/// A view of a test frame; after [`Frame::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

fn u64_at(b: &[u8], f: field::Field) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[f]);
    u64::from_be_bytes(v)
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks length, EtherType and version.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, FrameError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(FrameError::Truncated {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let ether_type = u16::from_be_bytes([b[12], b[13]]);
        if ether_type != ETHER_TYPE {
            return Err(FrameError::EtherType(ether_type));
        }
        if b[field::VERSION] != VERSION {
            return Err(FrameError::Version(b[field::VERSION]));
        }
        Ok(Frame { buffer })
    }

    pub fn kind(&self) -> Kind {
        Kind(self.buffer.as_ref()[field::KIND])
    }

    pub fn stream(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::STREAM.start], b[field::STREAM.start + 1]])
    }

    pub fn test(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::TEST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn sequence(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::SEQUENCE)
    }

    pub fn sent_ns(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::SENT)
    }

    pub fn reflected_ns(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::REFLECTED)
    }

    /// Bytes after the test header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..]
    }

    /// The whole frame.
    pub fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_kind(&mut self, kind: Kind) {
        self.buffer.as_mut()[field::KIND] = kind.0;
    }

    pub fn set_sequence(&mut self, sequence: u64) {
        self.buffer.as_mut()[field::SEQUENCE].copy_from_slice(&sequence.to_be_bytes());
    }

    pub fn set_sent_ns(&mut self, ns: u64) {
        self.buffer.as_mut()[field::SENT].copy_from_slice(&ns.to_be_bytes());
    }

    pub fn set_reflected_ns(&mut self, ns: u64) {
        self.buffer.as_mut()[field::REFLECTED].copy_from_slice(&ns.to_be_bytes());
    }

    /// Swaps source and destination MAC addresses (a reflector returning a frame).
    pub fn swap_macs(&mut self) {
        let b = self.buffer.as_mut();
        let (dst, rest) = b.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
}

/// The fixed header fields of a frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub kind: Kind,
    pub stream: u16,
    pub test: u32,
    pub sequence: u64,
    pub sent_ns: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf` and zeroes the rest.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        buf[field::DST].copy_from_slice(&self.dst);
        buf[field::SRC].copy_from_slice(&self.src);
        buf[field::ETHER_TYPE].copy_from_slice(&ETHER_TYPE.to_be_bytes());
        buf[field::VERSION] = VERSION;
        buf[field::KIND] = self.kind.0;
        buf[field::STREAM].copy_from_slice(&self.stream.to_be_bytes());
        buf[field::TEST].copy_from_slice(&self.test.to_be_bytes());
        buf[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        buf[field::SENT].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Header {
        let b = frame.bytes();
        let mut dst = [0; 6];
        dst.copy_from_slice(&b[field::DST]);
        let mut src = [0; 6];
        src.copy_from_slice(&b[field::SRC]);
        Header {
            dst,
            src,
            kind: frame.kind(),
            stream: frame.stream(),
            test: frame.test(),
            sequence: frame.sequence(),
            sent_ns: frame.sent_ns(),
        }
    }
}

/// The receiver's cumulative counts of one test, carried in a report frame's body.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Report {
    /// The sender's count of frames sent, copied from the request being answered.
    pub sent: u64,
    /// Distinct data frames received.
    pub received: u64,
    /// Frames that arrived after a frame with a higher sequence number of the same stream.
    pub out_of_order: u64,
    /// Frames received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Bytes of the distinct frames received.
    pub bytes: u64,
    /// RFC 3550 interarrival jitter, ns, averaged over the streams.
    pub jitter_ns: f64,
    /// Receive time of the first data frame (ns since the Unix epoch, receiver's clock).
    pub first_ns: u64,
    /// Receive time of the last data frame.
    pub last_ns: u64,
    /// The receiver's fragmentation counters since the test began.
    pub fragments: FragCounters,
    /// Datagrams the receiving socket dropped for lack of buffer space since the test began
    /// (the receiving process, not the path, lost them).
    pub receiver_drops: u64,
}

/// Bytes of a report body.
pub const REPORT_LEN: usize = 13 * 8;

impl Report {
    /// Writes the report into `body` (at least [`REPORT_LEN`] bytes).
    pub fn emit(&self, body: &mut [u8]) {
        let values = [
            self.sent,
            self.received,
            self.out_of_order,
            self.duplicates,
            self.bytes,
            self.jitter_ns.to_bits(),
            self.first_ns,
            self.last_ns,
            self.fragments.reasm_reqds,
            self.fragments.reasm_oks,
            self.fragments.reasm_fails,
            self.fragments.frag_creates,
            self.receiver_drops,
        ];
        for (chunk, v) in body.chunks_exact_mut(8).zip(values) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Reads a report body.
    pub fn parse(body: &[u8]) -> Result<Report, FrameError> {
        if body.len() < REPORT_LEN {
            return Err(FrameError::Truncated {
                need: HEADER_LEN + REPORT_LEN,
                have: HEADER_LEN + body.len(),
            });
        }
        let v = |i: usize| u64_at(body, i * 8..i * 8 + 8);
        Ok(Report {
            sent: v(0),
            received: v(1),
            out_of_order: v(2),
            duplicates: v(3),
            bytes: v(4),
            jitter_ns: f64::from_bits(v(5)),
            first_ns: v(6),
            last_ns: v(7),
            fragments: FragCounters {
                reasm_reqds: v(8),
                reasm_oks: v(9),
                reasm_fails: v(10),
                frag_oks: 0,
                frag_creates: v(11),
            },
            receiver_drops: v(12),
        })
    }
}

/// Builds a report request: `sent` is the sender's count so far, `request` its number.
pub fn report_request(header: &Header, request: u64, sent: u64) -> Vec<u8> {
    let mut buf = vec![0; MIN_SIZE];
    Header {
        kind: Kind::REPORT_REQUEST,
        sequence: request,
        ..*header
    }
    .emit(&mut buf);
    buf[field::BODY..field::BODY + 8].copy_from_slice(&sent.to_be_bytes());
    buf
}

/// The sender's count carried by a report request.
pub fn request_sent<T: AsRef<[u8]>>(frame: &Frame<T>) -> u64 {
    let body = frame.body();
    if body.len() < 8 {
        return 0;
    }
    u64_at(body, 0..8)
}

/// Builds the report answering `request` (a checked report-request frame).
pub fn report<T: AsRef<[u8]>>(request: &Frame<T>, report: &Report) -> Vec<u8> {
    let mut header = Header::parse(request);
    std::mem::swap(&mut header.dst, &mut header.src);
    header.kind = Kind::REPORT;
    let mut buf = vec![0; HEADER_LEN + REPORT_LEN];
    header.emit(&mut buf);
    report.emit(&mut buf[field::BODY..]);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> Header {
        Header {
            dst: [2, 0x4c, 0x53, 0, 0, 2],
            src: [2, 0x4c, 0x53, 0, 0, 1],
            kind: Kind::DATA,
            stream: 3,
            test: 0xdead_beef,
            sequence: 42,
            sent_ns: 1_700_000_000_000_000_000,
        }
    }

    #[test]
    fn data_frame_layout() {
        let mut buf = [0xffu8; 60];
        header().emit(&mut buf);
        assert_eq!(&buf[12..16], &[0x88, 0xb5, 1, 1]);
        assert_eq!(&buf[16..18], &[0, 3]);
        assert_eq!(&buf[20..24], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf[31], 42);
        assert!(buf[48..].iter().all(|b| *b == 0));
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(Header::parse(&f), header());
        assert_eq!(f.reflected_ns(), 0);
    }

    #[test]
    fn etherparse_sees_the_ethertype() {
        let mut buf = [0u8; 60];
        header().emit(&mut buf);
        let eth = etherparse::Ethernet2HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(eth.ether_type(), etherparse::EtherType(0x88b5));
        assert_eq!(eth.source(), [2, 0x4c, 0x53, 0, 0, 1]);
    }

    #[test]
    fn echo_swaps_and_stamps() {
        let mut buf = vec![0u8; 64];
        header().emit(&mut buf);
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.set_kind(Kind::ECHO);
        f.set_reflected_ns(7);
        f.swap_macs();
        let h = Header::parse(&f);
        assert_eq!(h.src, header().dst);
        assert_eq!(h.dst, header().src);
        assert_eq!(f.kind(), Kind::ECHO);
        assert_eq!(f.reflected_ns(), 7);
    }

    #[test]
    fn rejects_other_frames() {
        assert_eq!(
            Frame::new_checked(&[0u8; 20][..]).unwrap_err(),
            FrameError::Truncated { need: 48, have: 20 }
        );
        let mut buf = [0u8; 60];
        header().emit(&mut buf);
        buf[12] = 0x08;
        buf[13] = 0x00;
        assert_eq!(
            Frame::new_checked(&buf[..]).unwrap_err(),
            FrameError::EtherType(0x0800)
        );
        header().emit(&mut buf);
        buf[14] = 9;
        assert_eq!(
            Frame::new_checked(&buf[..]).unwrap_err(),
            FrameError::Version(9)
        );
    }

    #[test]
    fn request_and_report_round_trip() {
        let req = report_request(&header(), 5, 1000);
        let f = Frame::new_checked(&req[..]).unwrap();
        assert_eq!(f.kind(), Kind::REPORT_REQUEST);
        assert_eq!(f.sequence(), 5);
        assert_eq!(request_sent(&f), 1000);
        let r = Report {
            sent: 1000,
            received: 990,
            out_of_order: 3,
            duplicates: 2,
            bytes: 990 * 64,
            jitter_ns: 1234.5,
            first_ns: 10,
            last_ns: 20,
            fragments: FragCounters {
                reasm_reqds: 4,
                reasm_oks: 2,
                reasm_fails: 0,
                frag_oks: 0,
                frag_creates: 1,
            },
            receiver_drops: 5,
        };
        let rep = report(&f, &r);
        let g = Frame::new_checked(&rep[..]).unwrap();
        assert_eq!(g.kind(), Kind::REPORT);
        assert_eq!(g.sequence(), 5);
        assert_eq!(g.test(), header().test);
        assert_eq!(Report::parse(g.body()).unwrap(), r);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(f) = Frame::new_checked(&bytes[..]) {
                let _ = Header::parse(&f);
                let _ = (f.reflected_ns(), request_sent(&f));
                let _ = Report::parse(f.body());
            }
        }

        #[test]
        fn header_round_trips(stream: u16, test: u32, sequence: u64, sent_ns: u64, kind: u8,
                              size in 48usize..200) {
            let h = Header { kind: Kind(kind), stream, test, sequence, sent_ns, ..header() };
            let mut buf = vec![0u8; size];
            h.emit(&mut buf);
            let f = Frame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Header::parse(&f), h);
        }
    }
}
