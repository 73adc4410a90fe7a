//! Convergence: three Linux kernel STP bridges (one per namespace) in a triangle, each link
//! a QEMU-style UDP tunnel (Debian's `vde_plug tap:// udp://` at each end) spliced by one
//! relay-mode `linkscope splice`. The tree blocks one port; `ctl down` on a link of the
//! active path makes that port forward (the kernel's port state, and the TCN BPDUs the
//! splice's L2 view sees from it), and `ctl up` blocks it again.

mod lab;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::netns::Netns;
use lab::prereq::{self, Need};

/// A child killed on drop (vde_plug runs under setsid: it signals its process group).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bridges converge in seconds with these timers (in centiseconds, the kernel's minimums
/// for max_age and forward_delay).
const TIMERS: [(&str, &str); 3] = [
    ("hello_time", "100"),
    ("forward_delay", "200"),
    ("max_age", "600"),
];

fn sh(ns: &Netns, script: &str) {
    let status = ns.command("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

fn read(ns: &Netns, path: &str) -> String {
    let out = ns.command("cat").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One end of a link: the tap in namespace `ns` and the port its vde_plug binds.
struct End {
    ns: usize,
    tap: String,
}

/// Waits up to `limit` for `check` to hold; `state` describes what was seen instead.
fn wait_for(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "{what} within {limit:?}: {}",
            state()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_pulled_cable_in_an_stp_triangle_unblocks_the_blocked_port() {
    let test = "a_pulled_cable_in_an_stp_triangle_unblocks_the_blocked_port";
    if !prereq::ready(test, &[Need::Root, Need::Tun, Need::Iproute]) {
        return;
    }
    if Command::new("vde_plug").arg("-h").output().is_err() {
        prereq::skip(test, "vde_plug (vdeplug) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        Netns::new().unwrap(),
        Netns::new().unwrap(),
        Netns::new().unwrap(),
    ];
    // Bridge 0 is the root, bridge 1 next: the port that blocks is bridge 2's on link 1–2.
    for (i, ns) in hosts.iter().enumerate() {
        ns.ip(["link", "add", "br0", "type", "bridge"]).unwrap();
        let mut script = String::new();
        for (key, value) in TIMERS {
            script += &format!("echo {value} > /sys/class/net/br0/bridge/{key}; ");
        }
        let priority = [4096, 8192, 32768][i];
        script += &format!(
            "echo {priority} > /sys/class/net/br0/bridge/priority; \
             echo 1 > /sys/class/net/br0/bridge/stp_state"
        );
        sh(ns, &script);
        ns.ip(["link", "set", "br0", "up"]).unwrap();
    }
    // Links in the mapping's order: VM 101 is bridge 0, 102 bridge 1, 103 bridge 2.
    let pairs = [(0, 1), (1, 2), (2, 0)];
    let names = ["101:1-102:1", "102:2-103:1", "103:2-101:2"];
    let ports = lab::free_udp_ports::<12>();
    let mut mapping = String::from("defaults:\n  udp_default_ip: 127.0.0.1\nlinks:\n");
    let mut listen = Vec::new();
    let mut plan = Vec::new();
    let tag = std::process::id() % 100_000;
    for (k, &(a, b)) in pairs.iter().enumerate() {
        let [pa, pb, la, lb] = [
            ports[4 * k],
            ports[4 * k + 1],
            ports[4 * k + 2],
            ports[4 * k + 3],
        ];
        let (vm_a, vm_b) = (101 + a as u32, 101 + b as u32);
        let (name_a, name_b) = names[k].split_once('-').unwrap();
        mapping += &format!(
            "  - [{}, {}, {}, {}, {{port_a: {pa}, port_b: {pb}}}]\n",
            vm_a,
            name_a.split(':').nth(1).unwrap(),
            vm_b,
            name_b.split(':').nth(1).unwrap()
        );
        listen.push(format!("127.0.0.1:{la},{lb}"));
        plan.push(
            [(a, pa, la, "a"), (b, pb, lb, "b")]
                .map(|(ns, bound, peer, side)| (ns, format!("lst{tag}{k}{side}"), bound, peer)),
        );
    }
    let mapping_file = dir.path().join("triangle.yaml");
    std::fs::write(&mapping_file, &mapping).unwrap();
    let control = dir.path().join("ctl.sock");
    let report = dir.path().join("report.json");
    let mut splice = Command::new(env!("CARGO_BIN_EXE_linkscope"));
    splice
        .args([
            "splice",
            "-q",
            "--mode",
            "relay",
            "--stats-interval",
            "0",
            "--mapping",
        ])
        .arg(&mapping_file);
    for (name, listen) in names.iter().zip(&listen) {
        splice.args(["--link", name, "--listen", listen]);
    }
    let mut splice = Running(
        splice
            .arg("--control")
            .arg(&control)
            .arg("--json")
            .arg(&report)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("splice"),
    );
    // The splice listens before any vde_plug sends: vde_plug ends on the first "port
    // unreachable" its socket reports.
    let ctl_ok = || {
        Command::new(env!("CARGO_BIN_EXE_linkscope"))
            .args(["ctl", "--control"])
            .arg(&control)
            .args([names[2], "show"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    wait_for(
        Duration::from_secs(30),
        "the splice comes up",
        ctl_ok,
        String::new,
    );
    let mut plugs = Vec::new();
    let ends: Vec<[End; 2]> = plan
        .into_iter()
        .map(|pair| {
            pair.map(|(ns, tap, bound, peer)| {
                let plug = Command::new("setsid")
                    .arg("vde_plug")
                    .arg(format!("tap://{tap}"))
                    .arg(format!("udp://{bound}->127.0.0.1:{peer}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("vde_plug");
                plugs.push(Running(plug));
                End { ns, tap }
            })
        })
        .collect();
    // Each tap appears in this namespace; move it to its bridge's.
    for pair in &ends {
        for end in pair {
            wait_for(
                Duration::from_secs(20),
                "vde_plug creates its tap",
                || std::path::Path::new(&format!("/sys/class/net/{}", end.tap)).exists(),
                || end.tap.clone(),
            );
            lab::run(Command::new("ip").args([
                "link",
                "set",
                &end.tap,
                "netns",
                hosts[end.ns].name(),
            ]))
            .unwrap();
            hosts[end.ns]
                .ip(["link", "set", &end.tap, "master", "br0", "up"])
                .unwrap();
        }
    }
    let state = |end: &End| {
        read(
            &hosts[end.ns],
            &format!("/sys/class/net/{}/brport/state", end.tap),
        )
    };
    let blocked = &ends[1][1];
    let all_states = || {
        ends.iter()
            .flat_map(|pair| pair.iter().map(state))
            .collect::<Vec<String>>()
    };
    // Converged: every port forwarding (3) but bridge 2's on link 1–2, blocking (4).
    let converged = |states: &[String]| {
        states
            .iter()
            .enumerate()
            .all(|(i, s)| if i == 3 { s == "4" } else { s == "3" })
    };
    let shown = || format!("port states {:?}", all_states());
    wait_for(
        Duration::from_secs(90),
        "the triangle converges",
        || converged(&all_states()),
        shown,
    );
    eprintln!("{test}: converged, port states {:?}", all_states());

    // Pull the cable of link 2–0 (bridge 2's root port): the blocked port takes over.
    let ctl = |words: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_linkscope"))
            .args(["ctl", "--control"])
            .arg(&control)
            .args(words)
            .output()
            .unwrap()
    };
    assert!(ctl(&[names[2], "down"]).status.success());
    wait_for(
        Duration::from_secs(60),
        "the blocked port forwards",
        || state(blocked) == "3",
        shown,
    );
    eprintln!("{test}: after down, port states {:?}", all_states());
    assert!(ctl(&[names[2], "up"]).status.success());
    wait_for(
        Duration::from_secs(90),
        "the triangle converges again",
        || converged(&all_states()),
        shown,
    );
    eprintln!("{test}: after up, port states {:?}", all_states());

    let _ = Command::new("kill")
        .args(["-TERM", &splice.0.id().to_string()])
        .status();
    let _ = splice.0.wait();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let link = |name: &str| {
        json["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {json}"))
            .clone()
    };
    // The splice saw the cut link drop, and bridge 2 announce the change (TCN BPDUs) on its
    // new root port, the formerly blocked one: link 1–2 from its end B.
    let cut = link(names[2]);
    assert!(
        cut["directions"][0]["impairment"]["counters"]["dropped_down"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{cut}"
    );
    let took_over = link(names[1]);
    let tcn = took_over["directions"][1]["stp"]["tcn"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        tcn > 0,
        "no TCN from the formerly blocked port: {took_over}"
    );
}
