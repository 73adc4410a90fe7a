//! `linkscope bench` between two network namespaces joined by a veth pair with MTU 1500: no
//! loss at a moderate rate, a size sweep that shows which sizes the kernels fragment, and
//! segmentation offload at full speed.
//!
//! Needs root and `ip` (iproute2); skips with a reason otherwise, fails with
//! LINKSCOPE_REQUIRE_LAB=1. The namespaces are the lab's (tests/lab/netns.rs).

mod lab;
mod support;

use std::net::SocketAddr;

use assert_cmd::cargo::cargo_bin;
use lab::netns::{self, Netns};
use lab::prereq::{self, Need};
use serde_json::Value;
use support::process::{Listener, json_output};

const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";

/// Two namespaces `a` (10.77.0.1) and `b` (10.77.0.2) joined by a veth pair; removed on drop.
struct Namespaces {
    a: Netns,
    b: Netns,
}

impl Namespaces {
    fn create(mtu: u32) -> Namespaces {
        let a = Netns::new().expect("namespace a");
        let b = Netns::new().expect("namespace b");
        netns::veth(
            &a,
            &format!("{ADDR_A}/24"),
            &b,
            &format!("{ADDR_B}/24"),
            "veth0",
            mtu,
        )
        .expect("veth between a and b");
        Namespaces { a, b }
    }
}

/// `linkscope bench sink` in namespace `b`, killed on drop.
fn sink(ns: &Namespaces) -> Listener {
    let sink = Listener::start(ns.b.command(cargo_bin("linkscope")).args([
        "bench",
        "sink",
        "--listen",
        &format!("{ADDR_B}:0"),
    ]));
    assert_eq!(sink.addr.ip().to_string(), ADDR_B);
    sink
}

fn send(ns: &Namespaces, to: SocketAddr, args: &[&str]) -> Value {
    json_output(
        ns.a.command(cargo_bin("linkscope"))
            .args(["bench", "send", "--to", &to.to_string(), "--json"])
            .args(args),
    )
}

#[test]
fn no_loss_between_namespaces_at_a_moderate_rate() {
    if !prereq::ready(
        "no_loss_between_namespaces_at_a_moderate_rate",
        &[Need::Root, Need::Iproute],
    ) {
        return;
    }
    let ns = Namespaces::create(1500);
    let sink = sink(&ns);
    let run = send(
        &ns,
        sink.addr,
        &["--size", "1470", "--count", "3000", "--rate", "10000"],
    );
    let s = &run["sizes"][0];
    assert_eq!(s["sent"], 3000);
    assert_eq!(s["received"], 3000);
    assert_eq!(s["lost"], 0);
    assert_eq!(s["out_of_order"], 0);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["fragments"]["sender_frag_creates"], 0);
    assert_eq!(s["fragments"]["receiver_reasm_reqds"], 0);
}

#[test]
fn sweep_shows_fragmentation_above_1472_bytes() {
    if !prereq::ready(
        "sweep_shows_fragmentation_above_1472_bytes",
        &[Need::Root, Need::Iproute],
    ) {
        return;
    }
    let ns = Namespaces::create(1500);
    let sink = sink(&ns);
    let count = 200u64;
    let run = send(
        &ns,
        sink.addr,
        &[
            "--size",
            "1400..1600:72",
            "--count",
            &count.to_string(),
            "--rate",
            "4000",
        ],
    );
    let sizes = run["sizes"].as_array().unwrap();
    let seen: Vec<u64> = sizes.iter().map(|s| s["size"].as_u64().unwrap()).collect();
    assert_eq!(seen, [1400, 1472, 1544, 1600]);
    for s in sizes {
        let size = s["size"].as_u64().unwrap();
        assert_eq!(s["received"], count, "size {size}");
        // UDP header + payload in fragments of at most 1480 bytes of IP payload.
        let fragments = if size <= 1472 {
            0
        } else {
            (size + 8).div_ceil(1480)
        };
        assert_eq!(
            s["fragments"]["sender_frag_creates"],
            count * fragments,
            "size {size}"
        );
        assert_eq!(
            s["fragments"]["receiver_reasm_reqds"],
            count * fragments,
            "size {size}"
        );
    }
}

/// Packets the kernel handed to namespace `a`'s end of the veth pair.
fn veth_tx_packets(ns: &Namespaces) -> u64 {
    let json =
        ns.a.ip(["-s", "-j", "link", "show", "veth0"])
            .expect("ip link");
    let links: Value = serde_json::from_str(&json).expect("ip -j output");
    links[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .expect("tx packets")
}

/// Sends `count` frames of `size` bytes at full speed with `extra` options; returns the
/// size's result and the packets the sending veth carried meanwhile.
fn burst(ns: &Namespaces, to: SocketAddr, size: u64, count: u64, extra: &[&str]) -> (Value, u64) {
    let before = veth_tx_packets(ns);
    let size = size.to_string();
    let count = count.to_string();
    let mut args = vec!["--size", &size, "--count", &count, "--rate", "max"];
    args.extend(extra);
    args.extend(["--interval", "0"]);
    let run = send(ns, to, &args);
    (run["sizes"][0].clone(), veth_tx_packets(ns) - before)
}

#[test]
fn segmentation_offload_sends_runs_and_falls_back_above_the_path_mtu() {
    if !prereq::ready(
        "segmentation_offload_sends_runs_and_falls_back_above_the_path_mtu",
        &[Need::Root, Need::Iproute],
    ) {
        return;
    }
    let ns = Namespaces::create(1500);
    let sink = sink(&ns);
    // 20 runs of up to 64 frames: few enough that the sink's buffer holds them all.
    let count = 1280;
    // Each frame arrives as its own datagram, but the veth carried whole runs: far fewer
    // packets than frames (the report request and reply are a few more).
    let (gso, packets) = burst(&ns, sink.addr, 1400, count, &[]);
    assert_eq!(gso["received"], count, "{gso}");
    assert_eq!(gso["out_of_order"], 0);
    assert!(packets < count / 4, "{packets} packets for {count} frames");
    // Without offload, one packet per frame.
    let (each, packets) = burst(&ns, sink.addr, 1400, count, &["--no-gso"]);
    assert_eq!(each["received"], count, "{each}");
    assert!(packets >= count, "{packets} packets for {count} frames");
    // Above the path MTU the kernel cannot segment: the sender falls back to one datagram
    // per frame, which the kernel fragments (two fragments each).
    let (fragmented, packets) = burst(&ns, sink.addr, 1544, count, &[]);
    assert_eq!(fragmented["received"], count, "{fragmented}");
    assert_eq!(fragmented["fragments"]["sender_frag_creates"], 2 * count);
    assert!(packets >= 2 * count, "{packets} packets for {count} frames");
}
