//! The fuzz targets, one function per decoder, shared by the cargo-fuzz binaries
//! (fuzz_targets/, nightly) and the bounded run of the test suite (tests/fuzz_decoders.rs,
//! stable). Each must never panic on any input; a decoder that accepts an input must
//! re-emit it to something that decodes the same. Each returns true when the input was
//! accepted, so a mutator can keep it as a seed.

use linkscope::bench::frame::{self, Frame, Header, Report};
use linkscope::bench::stats::TestStats;
use linkscope::direction::Direction;
use linkscope::measure::fragment::{Budget, Outer};
use linkscope::measure::meter::{Config, Meter};
use linkscope::plan::LinkNames;
use linkscope::plan::{self, Mapping, PveSource};
use linkscope::wire;

/// Any frame: classification, control decoding and the one-line summary.
pub fn classify(frame: &[u8]) -> bool {
    let _ = wire::summary(frame);
    match wire::classify(frame) {
        Ok(f) => matches!(f.control(), Some(Ok(_))),
        Err(_) => false,
    }
}

/// LLDPDUs.
pub fn lldp(data: &[u8]) -> bool {
    use wire::lldp::Repr;
    let Ok(repr) = Repr::parse(data) else {
        return false;
    };
    let _ = repr.problems();
    let _ = repr.to_string();
    let mut out = Vec::new();
    repr.emit(&mut out).expect("a parsed LLDPDU emits");
    assert_eq!(Repr::parse(&out).expect("re-parse"), repr);
    true
}

/// BPDUs, plain and PVST+.
pub fn stp(data: &[u8]) -> bool {
    use wire::stp::Repr;
    let mut accepted = false;
    for (pvst, parsed) in [(false, Repr::parse(data)), (true, Repr::parse_pvst(data))] {
        if let Ok(repr) = parsed {
            accepted = true;
            let _ = repr.to_string();
            let mut out = Vec::new();
            repr.emit(&mut out).expect("a parsed BPDU emits");
            let again = if pvst {
                Repr::parse_pvst(&out)
            } else {
                Repr::parse(&out)
            };
            assert_eq!(again.expect("re-parse"), repr);
        }
    }
    accepted
}

/// LACPDUs.
pub fn lacp(data: &[u8]) -> bool {
    use wire::lacp::Repr;
    let Ok(repr) = Repr::parse(data) else {
        return false;
    };
    let _ = repr.to_string();
    let mut out = Vec::new();
    repr.emit(&mut out);
    assert_eq!(Repr::parse(&out).expect("re-parse"), repr);
    true
}

/// Marker PDUs.
pub fn marker(data: &[u8]) -> bool {
    use wire::marker::Repr;
    let Ok(repr) = Repr::parse(data) else {
        return false;
    };
    let _ = repr.to_string();
    let mut out = Vec::new();
    repr.emit(&mut out);
    assert_eq!(Repr::parse(&out).expect("re-parse"), repr);
    true
}

/// Capture files (pcap, pcapng): every record is read and its frame classified, until the
/// end or the first error.
pub fn savefile(data: &[u8]) -> bool {
    let source = Box::new(std::io::Cursor::new(data.to_vec()));
    let name = std::path::Path::new("fuzz input");
    let Ok(mut reader) = wire::savefile::Reader::new(name, source, Some(data.len() as u64)) else {
        return false;
    };
    let mut accepted = true;
    while let Some(record) = reader.next_record() {
        match record {
            Ok(record) => {
                classify(&record.data);
            }
            Err(_) => accepted = false,
        }
    }
    accepted
}

/// Bench test frames as a receiver and a sender take them from the network: the header, a
/// report's body, a report request's count, and the receiver's accounting of a data frame.
pub fn bench(data: &[u8]) -> bool {
    let Ok(f) = Frame::new_checked(data) else {
        return false;
    };
    let header = Header::parse(&f);
    let _ = frame::request_sent(&f);
    let mut stats = TestStats::default();
    stats.record(
        header.stream,
        header.sequence,
        data.len(),
        header.sent_ns,
        1,
    );
    stats.record(
        header.stream,
        header.sequence.wrapping_sub(1),
        data.len(),
        0,
        2,
    );
    let _ = stats.totals();
    if let Ok(report) = Report::parse(f.body()) {
        let reply = frame::report(&f, &report);
        let again = Frame::new_checked(&reply[..]).expect("an emitted report is a frame");
        // Compared as printed: a forged jitter may be NaN, which equals nothing.
        let again = Report::parse(again.body()).expect("re-parse");
        assert_eq!(format!("{again:?}"), format!("{report:?}"));
    }
    true
}

/// A splice's meter, fed the input as a frame each way, then read as the status line, the
/// summary and the JSON report read it.
pub fn meter(data: &[u8]) -> bool {
    let mut meter = Meter::new(Config::new(Budget {
        host_mtu: Some(1500),
        path_mtu: 1500,
        outer: Outer::Ipv4,
    }));
    meter.record(Direction::AToB, 1_000, data);
    meter.record(Direction::BToA, 2_000, data);
    meter.expire(u64::MAX);
    let names = LinkNames {
        link: "l".into(),
        a: "a".into(),
        b: "b".into(),
        detail: String::new(),
    };
    let _ = meter.advice();
    let _ = meter.report(&names, Default::default(), 1.0);
    // Inputs of a kind the meter follows (IPv4, IPv6, ARP, tagged) are worth mutating on.
    matches!(
        data.get(12..14),
        Some([0x08, 0x00] | [0x86, 0xdd] | [0x08, 0x06] | [0x81, 0x00])
    )
}

/// mapping.yaml text (the bytes read as UTF-8, invalid sequences replaced): parsed, its
/// links resolved and, when valid, planned and rendered for `qm set`.
pub fn mapping(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Ok(mapping) = Mapping::parse(std::path::Path::new("fuzz.yaml"), &text) else {
        return false;
    };
    let _ = plan::resolve_links(&mapping);
    if let Ok(planned) = plan::plan(&mapping, &PveSource::empty(), 1500) {
        let _ = plan::qm::render(&planned);
    }
    true
}
