//! Classification never touches the heap: counted with an instrumented global allocator
//! (stats_alloc) around `classify` of every kind of control frame.

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn frame(dst: [u8; 6], tags: &[u16], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
    for t in tags {
        f.extend_from_slice(&[0x81, 0]);
        f.extend_from_slice(&t.to_be_bytes());
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn classify_does_not_allocate() {
    let mut stp = vec![0x42, 0x42, 0x03, 0, 0, 0, 0x80];
    stp.resize(46, 0);
    let pvst = [0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x01, 0x0b, 0, 0, 0, 0x80];
    let frames = [
        frame(
            [1, 0x80, 0xc2, 0, 0, 0x0e],
            &[],
            0x88cc,
            &[2, 7, 4, 1, 2, 3, 4, 5, 6, 0, 0],
        ),
        frame([1, 0x80, 0xc2, 0, 0, 0], &[], 7, &stp),
        frame(
            [1, 0, 0x0c, 0xcc, 0xcc, 0xcd],
            &[10],
            pvst.len() as u16,
            &pvst,
        ),
        frame([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[1; 110]),
        frame([1, 0x80, 0xc2, 0, 0, 2], &[], 0x8809, &[2; 110]),
        frame([0xff; 6], &[1, 2], 0x0800, &[0x45; 20]),
        frame([0xff; 6], &[], 0x0800, &[]),
        vec![1, 2, 3],
    ];
    let region = Region::new(GLOBAL);
    let mut found = 0;
    for f in &frames {
        if let Ok(c) = linkscope::wire::classify(f) {
            found += usize::from(c.protocol().is_some()) + c.vlans.as_slice().len();
        }
    }
    let stats = region.change();
    assert_eq!(found, 8, "five control frames and three VLAN tags");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}
