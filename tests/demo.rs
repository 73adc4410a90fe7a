//! `linkscope demo`: the embedded lab runs without root or VMs, the splice steps in and out,
//! and demo.pcapng holds ARP, ICMP, LLDP and STP on interfaces named after both ends.

mod support;

use std::process::Command;

use support::process::{linkscope, run};
use support::wireshark::have;

#[test]
fn the_demo_splices_a_live_link_and_writes_demo_pcapng() {
    let dir = tempfile::tempdir().unwrap();
    let out = linkscope()
        .current_dir(dir.path())
        .args(["demo", "-q", "--seconds", "4"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "-q prints no frames");
    assert!(
        err.contains("splice steps in") && err.contains("splice steps out"),
        "{err}"
    );
    assert!(err.contains("vm100:eth1 > vm102:eth1:"), "{err}");
    // What the splice measured and saw of the control plane, per direction.
    assert!(err.contains("rtt icmp echo: "), "{err}");
    assert!(err.contains("0 echo, 0 ARP, 0 SYN unanswered"), "{err}");
    for (from, to, vm) in [
        ("vm100:eth1", "vm102:eth1", "vm100"),
        ("vm102:eth1", "vm100:eth1", "vm102"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{from} > {to}: LLDP"))
                    && l.contains(&format!("name={vm}"))
                    && l.contains("STP config")),
            "no control-plane summary for {from} > {to} in\n{err}"
        );
    }
    let capture = dir.path().join("demo.pcapng");
    assert!(capture.is_file(), "{err}");

    if !have(
        "tshark",
        "the_demo_splices_a_live_link_and_writes_demo_pcapng: tshark part",
    ) {
        return;
    }
    let text = run(Command::new("tshark").arg("-r").arg(&capture).args([
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "frame.protocols",
    ]));
    for protocol in ["arp", "icmp", "lldp", "stp"] {
        for end in ["vm100:eth1", "vm102:eth1"] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(end) && l.split([':', '\t']).any(|p| p == protocol)),
                "no {protocol} from {end} in\n{text}"
            );
        }
    }
}
