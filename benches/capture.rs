//! pcapng writing throughput: enhanced packet blocks per second through `capture::Writer`
//! into /dev/null (so the figure is the encoder and the whole-block buffering, plus one
//! write(2) per 64 KiB), for 64- and 1500-byte frames.
//!
//! `cargo bench --bench capture`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use linkscope::capture::{Interface, Output, Packet, Writer};

fn epb_writing(c: &mut Criterion) {
    let interfaces = [
        Interface {
            name: "vm100:eth1".into(),
            description: "link 100:1-102:1 end a".into(),
            snaplen: 262_144,
            ..Interface::default()
        },
        Interface {
            name: "vm102:eth1".into(),
            description: "link 100:1-102:1 end b".into(),
            snaplen: 262_144,
            ..Interface::default()
        },
    ];
    let mut group = c.benchmark_group("capture_epb");
    for size in [64usize, 1500] {
        let frame: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut writer = Writer::create(
            &Output::File(PathBuf::from("/dev/null")),
            "bench",
            &interfaces,
        )
        .expect("writer on /dev/null");
        let mut n = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                n += 1;
                writer
                    .write(black_box(&Packet {
                        interface: (n & 1) as u32,
                        timestamp_ns: 1_700_000_000_000_000_000 + n,
                        data: &frame,
                        outbound: true,
                    }))
                    .expect("write");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, epb_writing);
criterion_main!(benches);
