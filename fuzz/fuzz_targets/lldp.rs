//! LLDPDUs: no panic, and whatever parses re-emits to something that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkscope::wire::lldp::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse(data) {
        let _ = repr.problems();
        let _ = repr.to_string();
        let mut out = Vec::new();
        repr.emit(&mut out).expect("a parsed LLDPDU emits");
        assert_eq!(Repr::parse(&out).expect("re-parse"), repr);
    }
});
