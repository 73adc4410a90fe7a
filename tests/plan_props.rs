//! Property tests of the planner: for random valid mappings, every NIC gets its own port and
//! MAC, each end sends to the other's bound address, and `links --json` agrees with the
//! `links` of `plan --format json`; arbitrary text never makes the loader panic.

mod support;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use assert_cmd::cargo::cargo_bin;
use proptest::prelude::*;
use serde_json::Value;
use support::process::json_output;

/// A valid mapping: distinct NICs paired into links.
#[derive(Debug, Clone)]
struct Spec {
    stride: bool,
    host_mtu: i32,
    loopback: bool,
    hosts: Vec<(u32, u8)>,
    nics: Vec<(u32, u32)>,
    explicit: Vec<Option<u16>>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (any::<bool>(), 1usize..24)
        .prop_flat_map(|(stride, links)| {
            // Legacy: VMID ≤ 999, eth ≤ 9. Stride (base 10000, stride 32, first VMID 100):
            // VMIDs 100..1000, eth < 32, ports below 40000.
            let nic = if stride {
                (100u32..1000, 0u32..32).boxed()
            } else {
                (0u32..1000, 0u32..10).boxed()
            };
            (
                Just(stride),
                -10i32..70000,
                any::<bool>(),
                prop::collection::vec((0u32..1000, 0u8..3), 0..6),
                prop::collection::hash_set(nic, links * 2),
                // Explicit ports above every scheme port (50000..), so never colliding.
                prop::collection::vec(prop::option::weighted(0.2, 50000u16..=65535), links * 2),
            )
        })
        .prop_map(|(stride, host_mtu, loopback, hosts, nics, explicit)| Spec {
            stride,
            host_mtu,
            loopback,
            hosts,
            nics: nics.into_iter().collect(),
            explicit,
        })
}

impl Spec {
    fn yaml(&self) -> String {
        let mut y = String::from("defaults:\n");
        if self.stride {
            y.push_str("  port_scheme: stride\n");
        }
        writeln!(y, "  host_mtu: {}", self.host_mtu).unwrap();
        writeln!(
            y,
            "  loopback_if_same_host: {}",
            if self.loopback { "yes" } else { "no" }
        )
        .unwrap();
        y.push_str("  udp_ip_by_vm:\n");
        let mut seen = HashSet::new();
        for (vm, host) in &self.hosts {
            if seen.insert(vm) {
                writeln!(y, "    {vm}: 10.0.0.{}", host + 1).unwrap();
            }
        }
        if seen.is_empty() {
            y.truncate(y.len() - "  udp_ip_by_vm:\n".len());
        }
        y.push_str("links:\n");
        let mut used = HashSet::new();
        for (pair, ports) in self.nics.chunks(2).zip(self.explicit.chunks(2)) {
            let [(va, ea), (vb, eb)] = [pair[0], pair[1]];
            write!(y, "  - [{va}, eth{ea}, {vb}, {eb}").unwrap();
            let mut extra = Vec::new();
            for (key, port) in ["port_a", "port_b"].iter().zip(ports) {
                if let Some(p) = port.filter(|p| used.insert(*p)) {
                    extra.push(format!("{key}: {p}"));
                }
            }
            if !extra.is_empty() {
                write!(y, ", {{{}}}", extra.join(", ")).unwrap();
            }
            y.push_str("]\n");
        }
        y
    }
}

fn run(dir: &Path, args: &[&str]) -> Value {
    json_output(
        std::process::Command::new(cargo_bin("linkscope"))
            .current_dir(dir)
            .args(args),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ports_and_macs_unique_and_links_agree_with_plan(spec in spec()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mapping.yaml"), spec.yaml()).unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let empty = empty.to_str().unwrap();
        let links = run(dir.path(), &["links", "mapping.yaml", "--json"]);
        let plan = run(dir.path(), &[
            "plan", "mapping.yaml", "--format", "json",
            "--pve-config-dir", empty, "--qm-showcmd-dir", empty,
        ]);
        prop_assert_eq!(&links["links"], &plan["links"]);
        let links = links["links"].as_array().unwrap();
        prop_assert_eq!(links.len(), spec.nics.len() / 2);
        let (mut ports, mut macs) = (HashSet::new(), HashSet::new());
        for link in links {
            for (end, other) in [("a", "b"), ("b", "a")] {
                let local = link[end]["local"].as_str().unwrap();
                let port: u16 = local.rsplit(':').next().unwrap().parse().unwrap();
                prop_assert!(ports.insert(port), "port {} twice", port);
                prop_assert!(macs.insert(link[end]["mac"].as_str().unwrap().to_owned()));
                prop_assert_eq!(&link[end]["remote"], &link[other]["local"]);
            }
            let host_mtu = link["host_mtu"].as_i64();
            prop_assert_eq!(host_mtu, (spec.host_mtu > 0).then_some(i64::from(spec.host_mtu)));
        }
        let nics: usize = plan["vms"].as_array().unwrap().iter()
            .map(|vm| vm["nics"].as_array().unwrap().len()).sum();
        prop_assert_eq!(nics, spec.nics.len());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(defaults|links|eth|- |\\[|\\]|\\{|\\}|:|,| |\\n|[0-9a-zé€_]{1,8}){0,40}") {
        let _ = linkscope::plan::Mapping::parse(Path::new("m.yaml"), &text)
            .and_then(|m| linkscope::plan::plan(&m, &linkscope::plan::PveSource::empty(), 1500));
    }

    #[test]
    fn arbitrary_showcmd_never_panics(text in "(virtio-net-pci|mac=|netdev=net|addr=0x|,|'| |[0-9a-fA-F:]{1,6}|\\.0x){0,40}") {
        let mut state = linkscope::plan::pve::VmState::default();
        state.read_showcmd(&text);
    }
}

/// Any YAML scalar a user might put anywhere.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u32..70000).prop_map(|v| v.to_string()),
        (0u32..20).prop_map(|v| format!("eth{v}")),
        Just("~".to_owned()),
        Just("yes".to_owned()),
        Just("08".to_owned()),
        Just("1.5".to_owned()),
        Just("'aaé1'".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("bc:24:99".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        "[a-z_:.0-9]{0,10}",
    ]
}

const KEYS: &[&str] = &[
    "model",
    "host_mtu",
    "rx_queue_size",
    "mac_prefix",
    "udp_port_base",
    "udp_default_ip",
    "loopback_if_same_host",
    "auto_pci_addr",
    "pci_alloc_strategy",
    "port_scheme",
    "port_stride",
    "port_first_vmid",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mappings_of_arbitrary_scalars_never_panic(
        defaults in prop::collection::vec((0..KEYS.len(), scalar()), 0..6),
        links in prop::collection::vec(prop::collection::vec(scalar(), 0..6), 1..5),
    ) {
        let mut y = String::from("defaults:\n");
        let mut seen = HashSet::new();
        for (key, value) in &defaults {
            if seen.insert(key) {
                writeln!(y, "  {}: {value}", KEYS[*key]).unwrap();
            }
        }
        if seen.is_empty() {
            y.clear();
        }
        y.push_str("links:\n");
        for link in &links {
            writeln!(y, "  - [{}]", link.join(", ")).unwrap();
        }
        let result = linkscope::plan::Mapping::parse(Path::new("m.yaml"), &y)
            .and_then(|m| linkscope::plan::plan(&m, &linkscope::plan::PveSource::empty(), 1500));
        if let Err(err) = result {
            prop_assert!(err.is_input(), "{err}");
        }
    }
}
