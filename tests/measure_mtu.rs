//! `linkscope mtu` against its own reflector: 65535 on loopback, 1500 across a veth whose
//! far side is behind a router with a 1500-byte link while the near side's own MTU is 9000
//! (so the kernel's view alone would say 9000), and the kernel's view, labelled as such,
//! when no reflector answers.
//!
//! The namespace test needs root and `ip` (iproute2); it skips with a reason otherwise and
//! fails with LINKSCOPE_REQUIRE_LAB=1. The namespaces are the lab's (tests/lab/netns.rs).

mod lab;
mod support;

use std::process::Command;

use assert_cmd::cargo::cargo_bin;
use lab::netns::{self, Netns};
use lab::prereq::{self, Need};
use serde_json::Value;
use support::process::Listener;

/// A running `linkscope mtu --reflect`, killed on drop.
fn reflector(mut command: Command, listen: &str) -> Listener {
    Listener::start(command.args(["mtu", "--reflect", "--listen", listen]))
}

fn probe(command: Command, host: &str, port: u16) -> Value {
    let (status, value) = probe_with(command, host, port, &[]);
    assert_eq!(status, Some(0));
    value
}

fn probe_with(mut command: Command, host: &str, port: u16, extra: &[&str]) -> (Option<i32>, Value) {
    let out = command
        .args(["mtu", "--to", host, "--port", &port.to_string(), "--json"])
        .args(extra)
        .output()
        .expect("runs");
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), value)
}

#[test]
fn loopback_carries_65535_confirmed_by_the_reflector() {
    let reflector = reflector(Command::new(cargo_bin("linkscope")), "127.0.0.1:0");
    let found = probe(
        Command::new(cargo_bin("linkscope")),
        "127.0.0.1",
        reflector.addr.port(),
    );
    assert_eq!(found["path_mtu"], 65535);
    assert_eq!(found["source"], "reflector");
    assert_eq!(found["largest_host_mtu"], 65493);
}

#[test]
fn link_patterns_choose_the_mapping_links_checked() {
    let reflector = reflector(Command::new(cargo_bin("linkscope")), "127.0.0.1:0");
    let dir = tempfile::tempdir().expect("temp dir");
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        "defaults:\n  udp_ip_by_vm: {100: 127.0.0.1, 103: 127.0.0.2, 104: 127.0.0.3}\n\
         links:\n  - [100, 1, 103, 1]\n  - [100, 2, 104, 1]\n",
    )
    .expect("writes the mapping");
    let mapping = mapping.to_str().expect("UTF-8 path");
    let checked = |patterns: &[&str]| -> Vec<String> {
        let mut extra = vec!["--mapping", mapping];
        for p in patterns {
            extra.extend(["--link", p]);
        }
        let (code, found) = probe_with(
            Command::new(cargo_bin("linkscope")),
            "127.0.0.1",
            reflector.addr.port(),
            &extra,
        );
        assert_eq!(code, Some(0), "{found}");
        found["links"]
            .as_array()
            .expect("links checked")
            .iter()
            .map(|l| l["name"].as_str().expect("a name").to_owned())
            .collect()
    };
    assert_eq!(checked(&[]), ["100:1-103:1", "100:2-104:1"]);
    assert_eq!(checked(&["104"]), ["100:2-104:1"]);
    assert_eq!(checked(&["100:*"]), ["100:1-103:1", "100:2-104:1"]);
    let out = Command::new(cargo_bin("linkscope"))
        .args([
            "mtu",
            "--to",
            "127.0.0.1",
            "--mapping",
            mapping,
            "--link",
            "105",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no link '105'"));
}

#[test]
fn without_a_reflector_the_kernel_view_is_labelled_unconfirmed() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let out = Command::new(cargo_bin("linkscope"))
        .args([
            "mtu",
            "--to",
            "127.0.0.1",
            "--timeout-ms",
            "50",
            "--attempts",
            "1",
        ])
        .args([
            "--port",
            &silent.local_addr().expect("bound").port().to_string(),
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the kernel's route MTU, NOT confirmed"),
        "{text}"
    );
    assert!(
        text.contains("largest host_mtu without fragmentation: 65493"),
        "{text}"
    );
}

#[test]
fn a_bad_host_is_an_input_error() {
    Command::new(cargo_bin("linkscope"))
        .args(["mtu", "--to", "no such host.invalid"])
        .output()
        .map(|out| assert_eq!(out.status.code(), Some(2)))
        .expect("runs");
}

/// Hosts `near` (198.18.1.1, veth MTU 9000) and `far` (198.18.2.2) with a router between
/// them whose link to `far` has MTU 1500. Removed on drop.
struct Lab {
    near: Netns,
    router: Netns,
    far: Netns,
}

const FAR: &str = "198.18.2.2";

impl Lab {
    fn create() -> Lab {
        let lab = Lab {
            near: Netns::new().expect("namespace near"),
            router: Netns::new().expect("namespace router"),
            far: Netns::new().expect("namespace far"),
        };
        netns::veth(
            &lab.near,
            "198.18.1.1/24",
            &lab.router,
            "198.18.1.2/24",
            "v0",
            9000,
        )
        .expect("veth near-router");
        netns::veth(
            &lab.router,
            "198.18.2.1/24",
            &lab.far,
            "198.18.2.2/24",
            "v1",
            1500,
        )
        .expect("veth router-far");
        lab.near
            .ip(["route", "add", "default", "via", "198.18.1.2"])
            .expect("near's default route");
        lab.far
            .ip(["route", "add", "default", "via", "198.18.2.1"])
            .expect("far's default route");
        lab::run(
            lab.router
                .command("sysctl")
                .args(["-qw", "net.ipv4.ip_forward=1"]),
        )
        .expect("router forwards");
        lab
    }
}

#[test]
fn finds_1500_behind_a_router_although_the_local_link_carries_9000() {
    if !prereq::ready(
        "finds_1500_behind_a_router_although_the_local_link_carries_9000",
        &[Need::Root, Need::Iproute],
    ) {
        return;
    }
    let lab = Lab::create();
    let reflector = reflector(lab.far.command(cargo_bin("linkscope")), &format!("{FAR}:0"));
    let found = probe(
        lab.near.command(cargo_bin("linkscope")),
        FAR,
        reflector.addr.port(),
    );
    assert_eq!(found["source"], "reflector", "{found}");
    assert_eq!(found["kernel_mtu"], 9000, "{found}");
    assert_eq!(found["path_mtu"], 1500, "{found}");
    assert_eq!(found["largest_host_mtu"], 1458, "{found}");

    // The mapping's cross-host link ends at the probed host: host_mtu 9300 does not fit
    // (exit status 1), 1458 does.
    let dir = tempfile::tempdir().expect("temp dir");
    for (host_mtu, fits, status) in [(9300, false, 1), (1458, true, 0)] {
        let mapping = dir.path().join(format!("mapping-{host_mtu}.yaml"));
        std::fs::write(
            &mapping,
            format!(
                "defaults:\n  host_mtu: {host_mtu}\n  udp_ip_by_vm:\n    100: 198.18.1.1\n    \
                 103: {FAR}\nlinks:\n  - [100, 1, 103, 1]\n"
            ),
        )
        .expect("writes the mapping");
        let mapping = mapping.to_str().expect("UTF-8 path");
        let (code, found) = probe_with(
            lab.near.command(cargo_bin("linkscope")),
            FAR,
            reflector.addr.port(),
            &["--timeout-ms", "100", "--mapping", mapping],
        );
        assert_eq!(code, Some(status), "{found}");
        let links = found["links"].as_array().expect("links checked");
        assert_eq!(links.len(), 1, "{found}");
        assert_eq!(links[0]["name"], "100:1-103:1");
        assert_eq!(links[0]["host_mtu"], host_mtu);
        assert_eq!(links[0]["fits"], fits);
        assert_eq!(links[0]["largest_host_mtu"], 1458);
    }
}
