//! `linkscope serve` on two hosts: this test's namespace and a second one joined by a veth
//! pair, a mapping whose VMs live on both, one `serve` per host, and one page (host A's, with
//! `--peer` B) that shows both halves of the lab in a real headless Chromium.
//!
//! Needs root, `ip`, python3 (the emulated VM ends inside the namespaces) and chromium;
//! skips with a reason otherwise, fails with LINKSCOPE_REQUIRE_LAB=1.

mod lab;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use lab::netns::Netns;
use lab::prereq::{self, Need};

/// Emulated QEMU tunnel ends inside a namespace: bound like QEMU binds (SO_REUSEADDR), kept
/// until dropped.
struct Ends {
    child: Child,
    _stdin: ChildStdin,
}

impl Ends {
    fn bind(ns: &Netns, addrs: &[&str]) -> Ends {
        let script = "import socket, sys\n\
            socks = []\n\
            for a in sys.argv[1:]:\n\
            \x20   ip, port = a.rsplit(':', 1)\n\
            \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
            \x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
            \x20   s.bind((ip, int(port)))\n\
            \x20   socks.append(s)\n\
            print('bound', flush=True)\n\
            sys.stdin.read()\n";
        let mut child = ns
            .command("python3")
            .args(["-c", script])
            .args(addrs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "bound", "the emulated ends bound");
        let stdin = child.stdin.take().unwrap();
        Ends {
            child,
            _stdin: stdin,
        }
    }
}

impl Drop for Ends {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `linkscope serve` (`command` runs the binary, in a namespace or not) and its URL;
/// stopped on drop.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(mut command: Command, args: &[&str]) -> Served {
        let mut child = command
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("not serving: {line}"))
            .to_owned();
        Served { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Host A is this test's own network namespace (its VMs' ends are sockets of the test, its
/// page is opened by a WebDriver-driven Chromium here); host B is a namespace joined to it
/// by a veth pair. The subnet is chosen from the process id, and goes with the namespace.
#[test]
fn one_page_shows_both_hosts_through_a_peer() {
    if !prereq::ready("serve on two hosts", &[Need::Root, Need::Iproute])
        || !support::wireshark::have("python3", "serve on two hosts")
        || !support::wireshark::have("chromedriver", "serve on two hosts")
    {
        return;
    }
    let subnet = 100 + std::process::id() % 100;
    let (addr_a, addr_b) = (format!("10.{subnet}.7.1"), format!("10.{subnet}.7.2"));
    let b = Netns::new().expect("namespace b");
    let veth = lab::unique_name("lsv");
    lab::run(Command::new("ip").args([
        "link",
        "add",
        &veth,
        "type",
        "veth",
        "peer",
        "name",
        "lsv",
        "netns",
        b.name(),
    ]))
    .expect("a veth to host B");
    lab::run(Command::new("ip").args(["addr", "add", &format!("{addr_a}/24"), "dev", &veth]))
        .unwrap();
    lab::run(Command::new("ip").args(["link", "set", &veth, "up"])).unwrap();
    b.ip(["addr", "add", &format!("{addr_b}/24"), "dev", "lsv"])
        .unwrap();
    b.ip(["link", "set", "lsv", "up"]).unwrap();
    // Host A's VM ends: sockets of this test, on ports the kernel picked.
    let end =
        |ip: &str| linkscope::net::tunnel::endpoint(format!("{ip}:0").parse().unwrap()).unwrap();
    let (a1, a2, a3) = (end("127.0.0.1"), end("127.0.0.1"), end(&addr_a));
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        format!(
            "defaults:\n  udp_ip_by_vm: {{100: {addr_a}, 101: {addr_a}, 102: {addr_b}, 103: {addr_b}}}\n\
             links:\n  - [100, 1, 101, 1, {{port_a: {}, port_b: {}}}]\n  - [102, 1, 103, 1]\n  \
             - [100, 2, 102, 2, {{port_a: {}}}]\n",
            port(&a1),
            port(&a2),
            port(&a3)
        ),
    )
    .unwrap();
    let out = support::process::linkscope()
        .arg("links")
        .arg(&mapping)
        .arg("--json")
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let local = |name: &str, side: &str| -> String {
        plan["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()[side]["local"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ends_b = Ends::bind(
        &b,
        &[
            &local("102:1-103:1", "a"),
            &local("102:1-103:1", "b"),
            &local("100:2-102:2", "b"),
        ],
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "cluster-token\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let token = token.to_str().unwrap();
    let mapping = mapping.to_str().unwrap();
    let listen_b = format!("{addr_b}:9465");
    let _serve_b = Served::start(
        b.command(cargo_bin("linkscope")),
        &[
            mapping,
            "--node",
            "hostB",
            "--listen",
            &listen_b,
            "--token",
            token,
            "--interval",
            "0.3",
        ],
    );
    let peer = format!("http://{listen_b}");
    let serve_a = Served::start(
        Command::new(cargo_bin("linkscope")),
        &[
            mapping,
            "--node",
            "hostA",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &peer,
            "--peer-token",
            token,
            "--interval",
            "0.3",
        ],
    );
    // Host A's page, in Chromium, lists both nodes' links, spliced.
    let browser = support::browser::Browser::start(1200, 800);
    browser.open(&serve_a.url);
    let rows = browser.wait_for(
        "both hosts' links, spliced",
        Duration::from_secs(60),
        "const rows = Array.from(document.querySelectorAll('#links tr.link'));\
         return rows.length === 4 && rows.every(r => r.querySelector('.badge.spliced'))\
           ? rows.map(r => [r.dataset.node, r.dataset.link]).sort() : null",
        serde_json::json!([]),
    );
    assert_eq!(
        rows,
        serde_json::json!([
            ["hostA", "100:1-101:1"],
            ["hostA", "100:2-102:2"],
            ["hostB", "100:2-102:2"],
            ["hostB", "102:1-103:1"]
        ])
    );
    // Both hosts are drawn, each with its own box of VMs.
    let hosts = browser.eval(
        "return Array.from(document.querySelectorAll('.host text.hostname')).map(t => t.textContent).sort()",
        serde_json::json!([]),
    );
    assert_eq!(hosts, serde_json::json!([addr_a, addr_b]));
    drop((ends_b, a1, a2, a3));
}
