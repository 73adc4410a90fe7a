//! The fuzz targets, one function per decoder, shared by the cargo-fuzz binaries
//! (fuzz_targets/, nightly) and the bounded run of the test suite (tests/fuzz_decoders.rs,
//! stable). Each must never panic on any input; a decoder that accepts an input must
//! re-emit it to something that decodes the same. Each returns true when the input was
//! accepted, so a mutator can keep it as a seed.

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
