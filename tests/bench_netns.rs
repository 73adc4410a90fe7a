//! `linkscope bench` between two network namespaces joined by a veth pair with MTU 1500: no
//! loss at a moderate rate, and a size sweep that shows which sizes the kernels fragment.
//!
//! Needs root and `ip` (iproute2); skips with a reason otherwise, fails with
//! LINKSCOPE_REQUIRE_LAB=1. The namespace fixture here is minimal and local; the lab's
//! tests/lab/netns.rs offers the same (it landed after this was written).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

fn prerequisites() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if uid != "0" {
        return Err("needs root for network namespaces".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("needs `ip` from iproute2".into()),
    }
}

/// Follows the lab's conventions (tests/lab/prereq.rs): LINKSCOPE_SKIP_LAB=1 skips,
/// LINKSCOPE_REQUIRE_LAB=1 turns a missing prerequisite into a failure.
fn lab_or_skip() -> bool {
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let missing = if flag("LINKSCOPE_SKIP_LAB") && !flag("LINKSCOPE_REQUIRE_LAB") {
        Err("LINKSCOPE_SKIP_LAB=1".to_string())
    } else {
        prerequisites()
    };
    match missing {
        Ok(()) => true,
        Err(reason) => {
            assert!(
                !flag("LINKSCOPE_REQUIRE_LAB"),
                "lab prerequisite missing (LINKSCOPE_REQUIRE_LAB=1): {reason}"
            );
            eprintln!("SKIP: {reason}");
            false
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces `a` (10.77.0.1) and `b` (10.77.0.2) joined by a veth pair; removed on drop.
struct Namespaces {
    a: String,
    b: String,
}

const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";

impl Namespaces {
    fn create(mtu: u32) -> Namespaces {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("lsb{}x{n}", std::process::id());
        let ns = Namespaces {
            a: format!("{tag}a"),
            b: format!("{tag}b"),
        };
        ip(&["netns", "add", &ns.a]);
        ip(&["netns", "add", &ns.b]);
        let mtu = mtu.to_string();
        ip(&[
            "link", "add", "veth0", "netns", &ns.a, "mtu", &mtu, "type", "veth", "peer", "name",
            "veth0", "netns", &ns.b, "mtu", &mtu,
        ]);
        for (name, addr) in [(&ns.a, ADDR_A), (&ns.b, ADDR_B)] {
            ip(&[
                "-n",
                name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "veth0",
            ]);
            ip(&["-n", name, "link", "set", "veth0", "up"]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        ns
    }

    fn command(&self, ns: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(cargo_bin("linkscope"));
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

struct Sink(Child, String);

impl Sink {
    fn start(ns: &Namespaces) -> Sink {
        let mut child = ns
            .command(&ns.b)
            .args(["bench", "sink", "--listen", &format!("{ADDR_B}:0")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(addr.starts_with(ADDR_B), "{line:?}");
        Sink(child, addr)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn send(ns: &Namespaces, to: &str, args: &[&str]) -> Value {
    let out = ns
        .command(&ns.a)
        .args(["bench", "send", "--to", to, "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn no_loss_between_namespaces_at_a_moderate_rate() {
    if !lab_or_skip() {
        return;
    }
    let ns = Namespaces::create(1500);
    let sink = Sink::start(&ns);
    let run = send(
        &ns,
        &sink.1,
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
    if !lab_or_skip() {
        return;
    }
    let ns = Namespaces::create(1500);
    let sink = Sink::start(&ns);
    let count = 200u64;
    let run = send(
        &ns,
        &sink.1,
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
