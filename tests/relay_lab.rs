//! The relay's endpoints and the planner's TCP transport against real peers:
//! - a QEMU VM on a UDP tunnel reaches, through the engine and a `tap://` or `vxlan://`
//!   endpoint, an address on a Linux bridge or behind the kernel's own vxlan device in a
//!   namespace (the kernel's frames of another VNI dropped and counted). These relays run in
//!   this process (the engine and the endpoints `linkscope relay` builds), in the initial
//!   namespace, where the test makes a bridge or a veth of its own (unique names, deleted on
//!   drop); the addresses pinged live in the test's namespace;
//! - `linkscope relay` processes: between two namespaces as `plan --format relays` says
//!   (jumbo pings unfragmented over TCP, fragmented over the plain UDP tunnel), between a VM
//!   on a QEMU multicast tunnel and one on a UDP tunnel, and through a real ssh session.
//!
//! VM tests: run under `flock /tmp/linkscope-vm.lock`.

mod lab;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

use lab::netns::Netns;
use lab::prereq::{self, Need};
use lab::vm::{self, Guest, Spec};
use linkscope::engine::udp::TunnelEnd;
use linkscope::engine::{Engine, EngineConfig, Link};
use linkscope::relay::Counters as _;
use linkscope::relay::tap::TapEnd;
use linkscope::relay::vxlan::Vxlan;
use linkscope::splice::copy::CopyFilter;

const PINGS: u32 = 5;
const VM_IP: &str = "10.77.0.1";
const PEER_IP: &str = "10.77.0.2";

/// An interface of the initial namespace made by the test; deleted on drop.
struct RootLink(String);

impl Drop for RootLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    lab::run(Command::new("ip").args(args)).unwrap();
}

/// The relay's UDP tunnel end for a VM that binds `127.0.0.1:vm_port`, and the port the VM
/// must send to.
fn tunnel_end(vm_port: u16) -> (TunnelEnd, u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let vm: SocketAddr = ([127, 0, 0, 1], vm_port).into();
    (TunnelEnd::relayed(vm, socket).unwrap(), port)
}

fn engine() -> Engine {
    Engine::start(EngineConfig {
        workers: 1,
        copy: None,
        filter: CopyFilter::All,
        name: "relay-lab".into(),
    })
    .unwrap()
}

/// Boots one VM on a UDP tunnel (binding `vm_port`, sending to `relay_port`) that pings
/// [`PEER_IP`] and checks that every ping was answered.
fn vm_pings(image: &lab::image::Image, vm_port: u16, relay_port: u16) {
    let spec = Spec {
        guest: Guest {
            count: PINGS,
            ..Guest::ping("vm100", &format!("{VM_IP}/24"), PEER_IP)
        },
        net_args: vec![
            "-netdev".into(),
            format!("socket,id=n0,udp=127.0.0.1:{relay_port},localaddr=127.0.0.1:{vm_port}"),
            "-device".into(),
            "virtio-net-pci,netdev=n0,mac=52:54:00:4c:53:01".into(),
        ],
        netns: None,
    };
    let mut vms = vm::start(image, vec![spec]).unwrap();
    let result = vms[0].result().unwrap();
    lab::scenario::check_no_loss(&result, PINGS).unwrap();
}

#[test]
fn tap_joins_a_vm_to_a_linux_bridge() {
    let Some(image) = prereq::vm_image(
        "tap_joins_a_vm_to_a_linux_bridge",
        &[Need::Root, Need::Tun, Need::Iproute, Need::Qemu],
    ) else {
        return;
    };
    // A bridge of the initial namespace with one port, a veth whose other end, in the
    // namespace, holds the address the VM pings.
    let ns = Netns::new().unwrap();
    let bridge = RootLink(lab::unique_name("lsbr"));
    ip(&["link", "add", &bridge.0, "type", "bridge"]);
    ip(&["link", "set", &bridge.0, "up"]);
    let port = RootLink(lab::unique_name("lsbp"));
    ip(&[
        "link",
        "add",
        &port.0,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]);
    ip(&["link", "set", &port.0, "master", &bridge.0, "up"]);
    ns.ip(["addr", "add", &format!("{PEER_IP}/24"), "dev", "eth0"])
        .unwrap();
    ns.ip(["link", "set", "eth0", "up"]).unwrap();

    let tap_name = lab::unique_name("lstp");
    let tap = TapEnd::open(&tap_name, Some(&bridge.0)).unwrap();
    let master = std::fs::read_link(format!("/sys/class/net/{tap_name}/master")).unwrap();
    assert!(master.ends_with(&bridge.0), "{master:?}");
    let [vm_port] = lab::free_udp_ports::<1>();
    let (udp, relay_port) = tunnel_end(vm_port);
    let mut engine = engine();
    engine
        .add_link(Link::pair(
            "vm-tap".into(),
            Box::new(udp),
            Box::new(tap),
            (true, true),
        ))
        .unwrap();
    vm_pings(&image, vm_port, relay_port);
    let stats = engine.stop();
    assert!(stats[0].a_to_b.unwrap().frames() >= u64::from(PINGS));
    assert!(stats[0].b_to_a.unwrap().frames() >= u64::from(PINGS));
    // Closing the endpoint removed the device it created.
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&tap_name)
            .exists()
    );
}

#[test]
fn vxlan_reaches_a_kernel_vxlan_device_and_drops_other_vnis() {
    let Some(image) = prereq::vm_image(
        "vxlan_reaches_a_kernel_vxlan_device_and_drops_other_vnis",
        &[Need::Root, Need::Iproute, Need::Qemu, Need::Busybox],
    ) else {
        return;
    };
    // The underlay: a veth from the initial namespace into the test's, in 198.18.0.0/15
    // (set aside for benchmarks, RFC 2544), one /30 per test run.
    let net = (std::process::id() % 250) as u8 + 1;
    let (here, there) = (format!("198.18.{net}.1"), format!("198.18.{net}.2"));
    let ns = Netns::new().unwrap();
    // No IPv6: the devices would send router solicitations and MLD reports of their own.
    for key in ["all", "default"] {
        lab::run(
            ns.command("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")]),
        )
        .unwrap();
    }
    let underlay = RootLink(lab::unique_name("lsvx"));
    ip(&[
        "link",
        "add",
        &underlay.0,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]);
    ip(&["addr", "add", &format!("{here}/30"), "dev", &underlay.0]);
    ip(&["link", "set", &underlay.0, "up"]);
    ns.ip(["addr", "add", &format!("{there}/30"), "dev", "eth0"])
        .unwrap();
    ns.ip(["link", "set", "eth0", "up"]).unwrap();
    // The VXLAN port: a free one here, which the kernel uses as its dstport there.
    let port = UdpSocket::bind(format!("{here}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vni = 4242u32;
    // vx0 carries our VNI and the address the VM pings; vx1 another VNI, whose frames the
    // relay must drop.
    for (dev, id, addr) in [
        ("vx0", vni, format!("{PEER_IP}/24")),
        ("vx1", vni + 1, "10.78.0.2/24".to_string()),
    ] {
        ns.ip([
            "link",
            "add",
            dev,
            "type",
            "vxlan",
            "id",
            &id.to_string(),
            "remote",
            &here,
            "local",
            &there,
            "dstport",
            &port.to_string(),
        ])
        .unwrap();
        ns.ip(["addr", "add", &addr, "dev", dev]).unwrap();
        ns.ip(["link", "set", dev, "up"]).unwrap();
    }

    let remote: SocketAddr = format!("{there}:{port}").parse().unwrap();
    let vxlan = Vxlan::open(remote, vni, Some(here.parse().unwrap()), None).unwrap();
    assert_eq!(vxlan.local_addr().unwrap().port(), port);
    let stats = vxlan.stats();
    let [vm_port] = lab::free_udp_ports::<1>();
    let (udp, relay_port) = tunnel_end(vm_port);
    let mut engine = engine();
    engine
        .add_link(Link::pair(
            "vm-vxlan".into(),
            Box::new(udp),
            Box::new(vxlan),
            (true, true),
        ))
        .unwrap();
    vm_pings(&image, vm_port, relay_port);

    // The kernel floods vx1's ARP requests to the relay with VNI + 1.
    let other = |name: &str| {
        stats
            .counters()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
            .unwrap()
    };
    let before = other("vxlan_other_vni");
    let forwarded = engine.stats()[0].b_to_a.unwrap().frames();
    let _ = ns
        .command("busybox")
        .args(["ping", "-c", "2", "-W", "1", "10.78.0.9"])
        .output();
    assert!(
        other("vxlan_other_vni") > before,
        "no frame of VNI {} counted",
        vni + 1
    );
    assert_eq!(other("vxlan_bad_header"), 0);
    let stats = engine.stop();
    assert_eq!(
        stats[0].b_to_a.unwrap().frames(),
        forwarded,
        "a frame of another VNI was forwarded"
    );
    assert!(forwarded >= u64::from(PINGS));
}

/// A `linkscope relay` process; killed on drop, stopped with SIGTERM by [`RelayProcess::stop`]
/// (which lets it write its report).
struct RelayProcess(std::process::Child);

impl RelayProcess {
    /// Starts `linkscope relay -q --stats-interval 0 ARGS…` in `ns`, or here.
    fn start(ns: Option<&Netns>, args: &[String]) -> RelayProcess {
        let mut cmd = match ns {
            Some(ns) => ns.command(env!("CARGO_BIN_EXE_linkscope")),
            None => Command::new(env!("CARGO_BIN_EXE_linkscope")),
        };
        cmd.args(["relay", "-q", "--stats-interval", "0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        RelayProcess(cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}")))
    }

    /// SIGTERM, then waits for the exit; the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        lab::signal(self.0.id(), "TERM").unwrap();
        let status = self.0.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each host's `linkscope relay` arguments from `plan --format relays` output, by the host
/// address its `# host` line names (the single quotes a shell would remove, removed).
fn relay_commands(text: &str) -> Vec<(String, Vec<String>)> {
    let mut host = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# host ") {
            host = Some(h.trim().to_string());
        } else if let Some(args) = line.strip_prefix("linkscope relay ") {
            let args = args
                .split(' ')
                .map(|a| a.trim_matches('\'').to_string())
                .collect();
            out.push((host.clone().expect("a # host line first"), args));
        }
    }
    out
}

/// The cross-host scenario twice, one run per transport of the same link: two namespaces
/// joined by a veth of MTU 1500, VMs with host_mtu 9000 and guest MTU 8000 pinging each other
/// with 7,000-byte payloads. Over the plain UDP tunnel each host fragments every large tunnel
/// datagram; over `transport: tcp` (each VM on a loopback tunnel to a relay on its own host,
/// the relays joined by TCP, all as `plan --format relays` says) nothing is fragmented.
#[test]
fn tcp_relays_carry_jumbo_frames_between_hosts_where_udp_fragments() {
    let test = "tcp_relays_carry_jumbo_frames_between_hosts_where_udp_fragments";
    let Some(image) = prereq::vm_image(test, &[Need::Root, Need::Iproute, Need::Qemu]) else {
        return;
    };
    const COUNT: u32 = 5;
    let hosts = [Netns::new().unwrap(), Netns::new().unwrap()];
    let host_ips = lab::scenario::HOST_IPS;
    lab::netns::veth(
        &hosts[0],
        &format!("{}/24", host_ips[0]),
        &hosts[1],
        &format!("{}/24", host_ips[1]),
        "veth0",
        1500,
    )
    .unwrap();
    let vms = lab::scenario::VMS;
    let ports = lab::free_udp_ports::<2>();
    let mut frag_creates = Vec::new();
    for transport in ["udp", "tcp"] {
        let mapping = format!(
            "defaults:\n  host_mtu: 9000\n  udp_ip_by_vm:\n    {}: {}\n    {}: {}\nlinks:\n  - [{}, 1, {}, 1, {{port_a: {}, port_b: {}, transport: {transport}}}]\n",
            vms[0], host_ips[0], vms[1], host_ips[1], vms[0], vms[1], ports[0], ports[1]
        );
        let args = lab::plan::qemu_args(&mapping, lab::plan::Netdev::Socket).unwrap();
        let mut relays = Vec::new();
        if transport == "tcp" {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mapping.yaml");
            std::fs::write(&path, &mapping).unwrap();
            let text = lab::run(
                Command::new(env!("CARGO_BIN_EXE_linkscope"))
                    .arg("plan")
                    .arg(&path)
                    .args(["--format", "relays", "--qm-showcmd-dir"])
                    .arg(dir.path())
                    .arg("--pve-config-dir")
                    .arg(dir.path()),
            )
            .unwrap();
            let commands = relay_commands(&text);
            assert_eq!(commands.len(), 2, "{text}");
            for (host, args) in &commands {
                let index = host_ips.iter().position(|h| h == host).unwrap();
                relays.push(RelayProcess::start(Some(&hosts[index]), args));
            }
        }
        let before = [hosts[0].snmp().unwrap(), hosts[1].snmp().unwrap()];
        let mut running = lab::scenario::boot(
            &image,
            &args,
            lab::scenario::ping_guests(Some(8000), 7000, COUNT),
            [Some(&hosts[0]), Some(&hosts[1])],
        )
        .unwrap();
        for result in lab::scenario::results(&mut running).unwrap() {
            lab::scenario::check_no_loss(&result, COUNT)
                .unwrap_or_else(|e| panic!("over {transport}: {e}"));
        }
        drop(running);
        let after = [hosts[0].snmp().unwrap(), hosts[1].snmp().unwrap()];
        let rise = |h: usize| {
            let at = |m: &std::collections::BTreeMap<String, u64>| {
                m.get("Ip:FragCreates").copied().unwrap_or(0)
            };
            at(&after[h]).saturating_sub(at(&before[h]))
        };
        frag_creates.push((transport, [rise(0), rise(1)]));
        for relay in relays {
            relay.stop();
        }
    }
    eprintln!("FragCreates per host: {frag_creates:?}");
    let [(_, udp), (_, tcp)] = frag_creates[..] else {
        unreachable!()
    };
    assert!(
        udp.iter().all(|&n| n >= u64::from(COUNT)),
        "the UDP tunnel did not fragment: {udp:?}"
    );
    assert_eq!(tcp, [0, 0], "the TCP relays fragmented");
}

/// A VM on a QEMU multicast tunnel (`-netdev socket,mcast=`) and a VM on a UDP tunnel ping
/// each other through `linkscope relay mcast://… udp://…`, all in one namespace with a
/// multicast route on its loopback. Every frame the relay sends to the group comes back to
/// it (multicast loopback, which the VM on the group needs): each is dropped as its own echo,
/// so the number dropped equals the number sent and none is forwarded back.
#[test]
fn mcast_joins_a_qemu_multicast_tunnel_without_echoing_its_own_frames() {
    let test = "mcast_joins_a_qemu_multicast_tunnel_without_echoing_its_own_frames";
    let Some(image) = prereq::vm_image(test, &[Need::Root, Need::Iproute, Need::Qemu]) else {
        return;
    };
    let ns = Netns::new().unwrap();
    ns.ip(["route", "add", "224.0.0.0/4", "dev", "lo"]).unwrap();
    let [group_port, relay_port, vm_port] = lab::free_udp_ports::<3>();
    let group = format!("239.255.{}.1:{group_port}", std::process::id() % 250);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let relay = RelayProcess::start(
        Some(&ns),
        &[
            "--json".into(),
            json.display().to_string(),
            format!("mcast://{group}"),
            format!("udp://127.0.0.1:{relay_port}->127.0.0.1:{vm_port}"),
        ],
    );
    let guests = lab::scenario::ping_guests(None, 56, PINGS);
    let nets = [
        format!("socket,id=n0,mcast={group}"),
        format!("socket,id=n0,udp=127.0.0.1:{relay_port},localaddr=127.0.0.1:{vm_port}"),
    ];
    let specs = guests
        .into_iter()
        .zip(nets)
        .enumerate()
        .map(|(i, (guest, net))| Spec {
            guest,
            net_args: vec![
                "-netdev".into(),
                net,
                "-device".into(),
                format!("virtio-net-pci,netdev=n0,mac=52:54:00:4c:53:1{i}"),
            ],
            netns: Some(&ns),
        })
        .collect();
    let mut vms = vm::start(&image, specs).unwrap();
    for result in lab::scenario::results(&mut vms).unwrap() {
        lab::scenario::check_no_loss(&result, PINGS).unwrap();
    }
    drop(vms);
    assert!(relay.stop().success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let to_group = report["from_odd_endpoints"]["frames"].as_u64().unwrap();
    let from_group = report["from_even_endpoints"]["frames"].as_u64().unwrap();
    let echo = report["endpoints"][0]["mcast_own_echo"].as_u64().unwrap();
    assert!(to_group >= u64::from(PINGS), "{report}");
    assert!(from_group >= u64::from(PINGS), "{report}");
    assert_eq!(
        echo, to_group,
        "every frame sent to the group is its own echo: {report}"
    );
}

/// In a namespace without a multicast route, an mcast endpoint stops the relay before it
/// starts: exit 2, the step and the fix on stderr.
#[test]
fn mcast_without_a_multicast_route_exits_2_naming_the_fix() {
    let test = "mcast_without_a_multicast_route_exits_2_naming_the_fix";
    if !prereq::ready(test, &[Need::Root, Need::Iproute]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let [a, b, c] = lab::free_udp_ports::<3>();
    let out = ns
        .command(env!("CARGO_BIN_EXE_linkscope"))
        .args(["relay", &format!("mcast://239.255.0.1:{a}")])
        .arg(format!("udp://127.0.0.1:{b}->127.0.0.1:{c}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ip route add 224.0.0.0/4 dev lo"),
        "{stderr}"
    );
}

/// An sshd of the test's own (its host key, port and authorized key in a temporary
/// directory, on 127.0.0.1); killed on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        for key in ["hostkey", "id"] {
            lab::run(Command::new("ssh-keygen").args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                &path(key),
            ]))
            .unwrap();
        }
        std::fs::copy(path("id.pub"), path("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
            path("hostkey"),
            path("authorized_keys"),
            path("sshd.pid")
        );
        std::fs::write(path("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &path("sshd_config")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Ready once it accepts connections.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Sshd { dir, port, child }
    }

    /// `ssh …` to this sshd with the test's key, for a shell command line.
    fn ssh(&self) -> String {
        format!(
            "ssh -F /dev/null -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -p {} 127.0.0.1",
            self.dir.path().join("id").display(),
            self.port
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's cross-host form with a real ssh: `linkscope relay udp://… "exec://ssh HOST
/// linkscope relay stdio udp://…"` carries frames both ways through the ssh session; when the
/// local relay stops, ssh is killed, the session ends, and the far relay, its input ended,
/// stops too and frees its port.
#[test]
fn exec_ssh_carries_a_link_through_a_real_ssh_session() {
    let test = "exec_ssh_carries_a_link_through_a_real_ssh_session";
    if !prereq::ready(test, &[Need::Ssh]) {
        return;
    }
    let sshd = Sshd::start();
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    for s in [&a, &b] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
    }
    let [relay_a, relay_b] = lab::free_udp_ports::<2>();
    let far = format!(
        "{} relay stdio 'udp://127.0.0.1:{relay_b}->{}'",
        env!("CARGO_BIN_EXE_linkscope"),
        b.local_addr().unwrap()
    );
    let relay = RelayProcess::start(
        None,
        &[
            format!("udp://127.0.0.1:{relay_a}->{}", a.local_addr().unwrap()),
            format!("exec://{} \"{far}\"", sshd.ssh()),
        ],
    );
    let mut buf = [0; 65_536];
    let mut crosses = |from: &UdpSocket, to: u16, at: &UdpSocket, frame: &[u8]| {
        from.send_to(frame, ("127.0.0.1", to)).unwrap();
        at.recv(&mut buf).is_ok_and(|n| buf[..n] == *frame)
    };
    let first = [0x33; 60];
    assert!(
        (0..15).any(|_| crosses(&a, relay_a, &b, &first)),
        "no frame crossed the ssh session"
    );
    for size in [60, 1514, 9014] {
        let frame: Vec<u8> = (0..size).map(|i| (i % 249) as u8).collect();
        assert!(crosses(&a, relay_a, &b, &frame), "{size} bytes a→b");
        assert!(crosses(&b, relay_b, &a, &frame), "{size} bytes b→a");
    }
    assert!(relay.stop().success());
    // The far relay stopped with the session: its port comes free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", relay_b)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the far relay still holds its port"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
