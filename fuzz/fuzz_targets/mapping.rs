//! cargo-fuzz target: `mapping` of the shared targets (fuzz/targets.rs).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::mapping(data);
});
