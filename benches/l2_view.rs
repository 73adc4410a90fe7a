//! Cost per tapped frame of the splice's control-plane view (`measure::l2::View::record`):
//! `cargo bench --bench l2_view`. A data frame (the common case: classified and ignored), a
//! real lldpd LLDPDU and a real kernel-bridge BPDU (decoded, compared with the state held).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use linkscope::measure::l2::View;
use linkscope::splice::Direction;
use linkscope::wire::savefile;

fn first_frame(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/captures")
        .join(file);
    let mut reader = savefile::Reader::open(&path).expect("a committed capture");
    reader
        .next_record()
        .expect("a frame")
        .expect("readable")
        .data
}

/// An Ethernet II IPv4/UDP frame of 1514 bytes (headers only need to classify).
fn data_frame() -> Vec<u8> {
    let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00];
    f.resize(1514, 0x45);
    f
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("l2_view_record");
    group.throughput(Throughput::Elements(1));
    for (name, frame) in [
        ("ipv4_1514", data_frame()),
        ("lldpd_lldpdu", first_frame("lldpd.pcap")),
        ("bridge_config_bpdu", first_frame("bridge.pcapng")),
    ] {
        let mut view = View::new();
        view.record(Direction::AToB, 1, &frame);
        let mut t = 1;
        group.bench_function(name, |b| {
            b.iter(|| {
                t += 1;
                black_box(view.record(Direction::AToB, t, black_box(&frame)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
