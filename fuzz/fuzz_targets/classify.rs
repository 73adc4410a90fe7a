//! Any frame: classification, control decoding and the one-line summary never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkscope::wire;

fuzz_target!(|frame: &[u8]| {
    let _ = wire::summary(frame);
    if let Ok(f) = wire::classify(frame) {
        let _ = f.control();
    }
});
