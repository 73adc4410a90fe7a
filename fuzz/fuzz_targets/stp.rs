//! BPDUs, plain and PVST+: no panic, and whatever parses re-emits to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkscope::wire::stp::Repr;

fuzz_target!(|data: &[u8]| {
    for (pvst, parsed) in [(false, Repr::parse(data)), (true, Repr::parse_pvst(data))] {
        if let Ok(repr) = parsed {
            let _ = repr.to_string();
            let mut out = Vec::new();
            repr.emit(&mut out).expect("a parsed BPDU emits");
            let again = if pvst { Repr::parse_pvst(&out) } else { Repr::parse(&out) };
            assert_eq!(again.expect("re-parse"), repr);
        }
    }
});
