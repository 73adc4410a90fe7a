//! `linkscope relay` against real peers, each relay a process in the test's namespaces:
//! - a QEMU VM on a UDP tunnel reaches, through `tap://…?bridge=`, an address on a Linux
//!   bridge, and through `vxlan://`, an address behind the kernel's own vxlan device in
//!   another namespace (the kernel's frames of another VNI dropped and counted);
//! - between two namespaces as `plan --format relays` says: jumbo pings unfragmented over
//!   TCP, fragmented over the plain UDP tunnel;
//! - between a VM on a QEMU multicast tunnel and one on a UDP tunnel, none of the relay's own
//!   frames coming back; without a multicast route, exit 2;
//! - through a real ssh session (`exec://ssh … linkscope relay stdio …`).
//!
//! VM tests: run under `flock /tmp/linkscope-vm.lock`.

mod lab;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;

use lab::netns::Netns;
use lab::prereq::{self, Need};
use lab::vm::{self, Guest, Spec};

const PINGS: u32 = 5;
const VM_IP: &str = "10.77.0.1";
const PEER_IP: &str = "10.77.0.2";

/// Boots one VM in `ns` on a UDP tunnel (binding `127.0.0.1:vm_port`, sending to
/// `127.0.0.1:relay_port`) that pings [`PEER_IP`], and checks that every ping was answered.
fn vm_pings(image: &lab::image::Image, ns: &Netns, vm_port: u16, relay_port: u16) {
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
        netns: Some(ns),
    };
    let mut vms = vm::start(image, vec![spec]).unwrap();
    let result = vms[0].result().unwrap();
    lab::scenario::check_no_loss(&result, PINGS).unwrap();
}

/// The relay's JSON report.
fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Waits until `ip -n NS link show DEV` prints `text`.
fn wait_link(ns: &Netns, dev: &str, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shown = ns.ip(["link", "show", dev]).unwrap_or_default();
        if shown.contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{dev} never showed {text:?}: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A Linux bridge in a namespace holds the address the VM pings; the relay, in the same
/// namespace, creates a tap, brings it up and enslaves it to the bridge (`?bridge=`); the tap
/// is gone when the relay stops.
#[test]
fn tap_joins_a_vm_to_a_linux_bridge() {
    let Some(image) = prereq::vm_image(
        "tap_joins_a_vm_to_a_linux_bridge",
        &[Need::Root, Need::Tun, Need::Iproute, Need::Qemu],
    ) else {
        return;
    };
    let ns = Netns::new().unwrap();
    ns.ip(["link", "add", "br0", "type", "bridge"]).unwrap();
    ns.ip(["addr", "add", &format!("{PEER_IP}/24"), "dev", "br0"])
        .unwrap();
    ns.ip(["link", "set", "br0", "up"]).unwrap();
    let tap = lab::unique_name("lstp");
    let [vm_port, relay_port] = lab::free_udp_ports::<2>();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let relay = RelayProcess::start(
        Some(&ns),
        &[
            "--json".into(),
            json.display().to_string(),
            format!("tap://{tap}?bridge=br0"),
            format!("udp://127.0.0.1:{relay_port}->127.0.0.1:{vm_port}"),
        ],
    );
    wait_link(&ns, &tap, "master br0");
    wait_link(&ns, &tap, "UP");
    vm_pings(&image, &ns, vm_port, relay_port);
    assert!(relay.stop().success());
    let report = report(&json);
    for direction in ["from_even_endpoints", "from_odd_endpoints"] {
        let frames = report[direction]["frames"].as_u64().unwrap();
        assert!(frames >= u64::from(PINGS), "{report}");
    }
    assert!(
        ns.ip(["link", "show", &tap]).is_err(),
        "the tap outlived the relay"
    );
}

/// Two namespaces joined by a veth: in one the relay and the VM, in the other the kernel's
/// vxlan devices, vx0 with our VNI (holding the address the VM pings) and vx1 with the next
/// VNI, whose frames the relay drops and counts.
#[test]
fn vxlan_reaches_a_kernel_vxlan_device_and_drops_other_vnis() {
    let Some(image) = prereq::vm_image(
        "vxlan_reaches_a_kernel_vxlan_device_and_drops_other_vnis",
        &[Need::Root, Need::Iproute, Need::Qemu, Need::Busybox],
    ) else {
        return;
    };
    let hosts = [Netns::new().unwrap(), Netns::new().unwrap()];
    let [here, there] = lab::scenario::HOST_IPS;
    lab::netns::veth(
        &hosts[0],
        &format!("{here}/24"),
        &hosts[1],
        &format!("{there}/24"),
        "veth0",
        1500,
    )
    .unwrap();
    // No IPv6: the devices would send router solicitations and MLD reports of their own.
    for key in ["all", "default"] {
        lab::run(
            hosts[1]
                .command("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")]),
        )
        .unwrap();
    }
    let [port, vm_port, relay_port] = lab::free_udp_ports::<3>();
    let vni = 4242u32;
    for (dev, id, addr) in [
        ("vx0", vni, format!("{PEER_IP}/24")),
        ("vx1", vni + 1, "10.78.0.2/24".to_string()),
    ] {
        hosts[1]
            .ip([
                "link",
                "add",
                dev,
                "type",
                "vxlan",
                "id",
                &id.to_string(),
                "remote",
                here,
                "local",
                there,
                "dstport",
                &port.to_string(),
            ])
            .unwrap();
        hosts[1].ip(["addr", "add", &addr, "dev", dev]).unwrap();
        hosts[1].ip(["link", "set", dev, "up"]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let relay = RelayProcess::start(
        Some(&hosts[0]),
        &[
            "--json".into(),
            json.display().to_string(),
            format!("vxlan://{there}:{port}?vni={vni}&local={here}"),
            format!("udp://127.0.0.1:{relay_port}->127.0.0.1:{vm_port}"),
        ],
    );
    vm_pings(&image, &hosts[0], vm_port, relay_port);
    // vx1's ARP requests reach the relay with VNI + 1.
    let _ = hosts[1]
        .command("busybox")
        .args(["ping", "-c", "2", "-W", "1", "10.78.0.9"])
        .output();
    assert!(relay.stop().success());
    let report = report(&json);
    let vxlan = &report["endpoints"][0];
    assert!(
        vxlan["vxlan_other_vni"].as_u64().unwrap() >= 1,
        "no frame of VNI {} counted: {report}",
        vni + 1
    );
    assert_eq!(vxlan["vxlan_bad_header"], 0, "{report}");
    for direction in ["from_even_endpoints", "from_odd_endpoints"] {
        let frames = report[direction]["frames"].as_u64().unwrap();
        assert!(frames >= u64::from(PINGS), "{report}");
    }
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

/// A persistent tap already in the bridge (`ip tuntap add`, `ip link set … master`) is
/// attached as it is: the relay runs, and the device and its bridge port outlive it.
#[test]
fn a_persistent_tap_already_in_the_bridge_is_attached_and_stays() {
    let test = "a_persistent_tap_already_in_the_bridge_is_attached_and_stays";
    if !prereq::ready(test, &[Need::Root, Need::Tun, Need::Iproute]) {
        return;
    }
    let ns = Netns::new().unwrap();
    ns.ip(["link", "add", "br0", "type", "bridge"]).unwrap();
    ns.ip(["tuntap", "add", "tap0", "mode", "tap"]).unwrap();
    ns.ip(["link", "set", "tap0", "master", "br0"]).unwrap();
    let [a, b] = lab::free_udp_ports::<2>();
    let out = ns
        .command(env!("CARGO_BIN_EXE_linkscope"))
        .args(["relay", "-q", "-a", "duration:1", "tap://tap0?bridge=br0"])
        .arg(format!("udp://127.0.0.1:{a}->127.0.0.1:{b}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let shown = ns.ip(["link", "show", "tap0"]).unwrap();
    assert!(shown.contains("master br0"), "{shown}");
}
