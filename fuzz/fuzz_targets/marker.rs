//! Marker PDUs: no panic, and whatever parses re-emits to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkscope::wire::marker::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse(data) {
        let _ = repr.to_string();
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(Repr::parse(&out).expect("re-parse"), repr);
    }
});
