//! Planning a 5,000-link mapping (10,000 NICs on 2,000 VMs, stride port scheme): YAML
//! loading, planning (ports, MACs, netN, PCI slots) and the `qm` rendering, each alone and
//! end to end.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use linkscope::plan::{self, Mapping, PveSource};

const VMS: u32 = 2000;
const NICS_PER_VM: u32 = 5;

/// 5,000 links: NIC k is VM 100 + k mod 2000, eth k / 2000; link i joins NICs 2i and 2i+1.
fn mapping_text() -> String {
    let mut y = String::from(
        "defaults:\n  port_scheme: stride\n  udp_port_base: 10000\n  port_stride: 8\n  port_first_vmid: 100\nlinks:\n",
    );
    let nic = |k: u32| (100 + k % VMS, k / VMS);
    for i in 0..VMS * NICS_PER_VM / 2 {
        let ((va, ea), (vb, eb)) = (nic(2 * i), nic(2 * i + 1));
        writeln!(y, "  - [{va}, {ea}, {vb}, {eb}]").unwrap();
    }
    y
}

fn bench(c: &mut Criterion) {
    let text = mapping_text();
    let file = Path::new("mapping.yaml");
    let pve = PveSource::empty();
    let mapping = Mapping::parse(file, &text).unwrap();
    assert_eq!(mapping.links.len(), 5000);
    let planned = plan::plan(&mapping, &pve, 1500).unwrap();
    let mut group = c.benchmark_group("plan_5000_links");
    group.sample_size(10);
    group.bench_function("load_yaml", |b| {
        b.iter(|| Mapping::parse(file, black_box(&text)).unwrap())
    });
    group.bench_function("plan", |b| {
        b.iter(|| plan::plan(black_box(&mapping), &pve, 1500).unwrap())
    });
    group.bench_function("render_qm", |b| {
        b.iter(|| plan::qm::render(black_box(&planned)))
    });
    group.bench_function("end_to_end", |b| {
        b.iter(|| {
            let mapping = Mapping::parse(file, black_box(&text)).unwrap();
            plan::qm::render(&plan::plan(&mapping, &pve, 1500).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
