//! The lab suite: real QEMU VMs wired by `linkscope plan`, namespaces as hosts, lldpd and a
//! kernel STP bridge on taps. Every VM test of the crate belongs in this one binary, so the
//! lab's two-VMs-at-once limit holds for the whole suite. Each test checks its
//! prerequisites and skips with a reason (fails under LINKSCOPE_REQUIRE_LAB=1).

#[path = "lab_vm/impair.rs"]
mod impair;
mod lab;
#[path = "lab_vm/relay.rs"]
mod relay;
#[path = "lab_vm/splice.rs"]
mod splice;
#[path = "support/frames.rs"]
mod support_frames;

use std::time::{Duration, Instant};

use lab::capture::{self, Tcpdump};
use lab::daemons::{self, Lldpd};
use lab::image::Image;
use lab::netns::Netns;
use lab::plan::Netdev;
use lab::prereq::{self, Need};
use lab::scenario;

const PINGS: u32 = 10;

/// Boots the loopback pair with the plan's arguments and checks both guests' pings.
fn loopback_pair_pings(image: &Image, netdev: Netdev, ports: [u16; 2]) {
    let args = scenario::loopback_args(netdev, ports).unwrap();
    for (vm, line) in &args {
        let line = line.join(" ");
        let kind = match netdev {
            Netdev::Socket => "socket,",
            Netdev::Dgram => "dgram,",
        };
        assert!(line.contains(&format!("-netdev {kind}")), "VM {vm}: {line}");
        // Each VM binds its explicit port from the mapping and sends to the other's.
        let own = if *vm == scenario::VMS[0] {
            ports[0]
        } else {
            ports[1]
        };
        let bind = match netdev {
            Netdev::Socket => format!("localaddr=127.0.0.1:{own}"),
            Netdev::Dgram => format!("local.port={own}"),
        };
        assert!(line.contains(&bind), "VM {vm} does not bind {own}: {line}");
    }
    let mut vms = scenario::boot(
        image,
        &args,
        scenario::ping_guests(None, 56, PINGS),
        [None, None],
    )
    .unwrap();
    for result in scenario::results(&mut vms).unwrap() {
        scenario::check_no_loss(&result, PINGS).unwrap();
    }
}

/// Copies a capture into `$LINKSCOPE_RECORD_CAPTURES/name` when that variable is set: how
/// testdata/captures/vm-ping-*.pcap were recorded.
fn record(pcap: &std::path::Path, name: &str, ports: [u16; 2]) {
    if let Some(out) = std::env::var_os("LINKSCOPE_RECORD_CAPTURES") {
        let dest = std::path::Path::new(&out).join(name);
        std::fs::copy(pcap, &dest).unwrap();
        eprintln!("recorded {} (UDP ports {ports:?})", dest.display());
    }
}

/// ICMP echo requests and replies each guest sent, from its planned port, in a host-side
/// capture decoded with `decode`.
fn check_echoes(pcap: &std::path::Path, decode: &[String], ports: [u16; 2], count: u32) {
    let icmp = capture::tshark_fields(
        pcap,
        decode,
        "icmp",
        &["udp.srcport", "ip.src", "icmp.type"],
    )
    .unwrap();
    // ip.src holds the outer (127.0.0.1) and the inner address: the guest's is the last.
    let inner = |field: &str| field.rsplit(',').next().unwrap_or_default().to_string();
    for (port, src) in ports.iter().zip(scenario::GUEST_IPS) {
        let port = port.to_string();
        for (kind, name) in [("8", "echo requests"), ("0", "echo replies")] {
            let n = icmp
                .iter()
                .filter(|r| r[0] == port && inner(&r[1]) == src && r[2] == kind)
                .count();
            assert!(
                n >= count as usize,
                "{src}: {n} {name} from port {port}: {icmp:?}"
            );
        }
    }
}

#[test]
fn vms_ping_over_the_planned_udp_socket_tunnel() {
    let test = "vms_ping_over_the_planned_udp_socket_tunnel";
    let needs = [Need::Qemu, Need::Root, Need::Tcpdump, Need::Tshark];
    let Some(image) = prereq::vm_image(test, &needs) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("capture.pcap");
    let ports = lab::free_udp_ports::<2>();
    let filter = format!("udp port {} or udp port {}", ports[0], ports[1]);
    let tcpdump = Tcpdump::start(None, "lo", &filter, &pcap).unwrap();
    loopback_pair_pings(&image, Netdev::Socket, ports);
    tcpdump.stop().unwrap();

    // The host-side capture decodes as the guests' Ethernet frames: ARP, then ICMP echo
    // both ways, each frame one datagram from the sender's planned port.
    let decode = ports.map(capture::decode_udp_as_eth);
    let arp =
        capture::tshark_fields(&pcap, &decode, "arp.opcode == 1", &["arp.src.proto_ipv4"]).unwrap();
    assert!(
        arp.iter()
            .any(|r| scenario::GUEST_IPS.contains(&r[0].as_str())),
        "no ARP request from a guest: {arp:?}"
    );
    record(&pcap, "vm-ping-udp-socket.pcap", ports);
    check_echoes(&pcap, &decode, ports, PINGS);
}

#[test]
fn a_vm_stp_bridge_sends_bpdus_over_the_tunnel_and_forwards() {
    let test = "a_vm_stp_bridge_sends_bpdus_over_the_tunnel_and_forwards";
    let needs = [Need::Qemu, Need::Root, Need::Tcpdump, Need::Tshark];
    let Some(image) = prereq::vm_image(test, &needs) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("capture.pcap");
    let ports = lab::free_udp_ports::<2>();
    let filter = format!("udp port {} or udp port {}", ports[0], ports[1]);
    let tcpdump = Tcpdump::start(None, "lo", &filter, &pcap).unwrap();
    let args = scenario::loopback_args(Netdev::Socket, ports).unwrap();
    let mut guests = scenario::ping_guests(None, 56, PINGS);
    guests[0].role = "bridge".into();
    let mut vms = scenario::boot(&image, &args, guests, [None, None]).unwrap();
    let ready = lab::vm::fields(&vms[0].wait_line("LINKSCOPE-READY ").unwrap());
    let bridge = lab::vm::fields(&vms[0].wait_line("LINKSCOPE-BRIDGE ").unwrap());
    assert_eq!(bridge["ports"], "eth0:3", "eth0 not forwarding: {bridge:?}");
    for result in scenario::results(&mut vms).unwrap() {
        scenario::check_no_loss(&result, PINGS).unwrap();
    }
    drop(vms);
    tcpdump.stop().unwrap();

    // The guest bridge is root (alone) and its config BPDUs cross the tunnel from VM 100's
    // port, naming eth0's MAC as root and bridge.
    let decode = ports.map(capture::decode_udp_as_eth);
    let stp = capture::tshark_fields(
        &pcap,
        &decode,
        "stp",
        &["udp.srcport", "stp.root.hw", "stp.bridge.hw"],
    )
    .unwrap();
    let mac = &ready["mac"];
    let ours = [ports[0].to_string(), mac.clone(), mac.clone()];
    assert!(
        stp.iter().any(|r| r[..] == ours[..]),
        "no BPDU {ours:?}: {stp:?}"
    );
    check_echoes(&pcap, &decode, ports, PINGS);
    record(&pcap, "vm-ping-through-stp-bridge.pcap", ports);
}

#[test]
fn vms_ping_over_the_planned_dgram_tunnel() {
    let test = "vms_ping_over_the_planned_dgram_tunnel";
    let Some(image) = prereq::vm_image(test, &[Need::Qemu]) else {
        return;
    };
    loopback_pair_pings(&image, Netdev::Dgram, lab::free_udp_ports::<2>());
}

#[test]
fn vms_on_two_hosts_ping_with_fragmented_tunnel_datagrams() {
    let test = "vms_on_two_hosts_ping_with_fragmented_tunnel_datagrams";
    let needs = [
        Need::Qemu,
        Need::Root,
        Need::Iproute,
        Need::Tcpdump,
        Need::Tshark,
    ];
    let Some(image) = prereq::vm_image(test, &needs) else {
        return;
    };
    let lab = scenario::CrossHost::new(1500, Netdev::Socket).unwrap();
    for (vm, line) in &lab.args {
        let line = line.join(" ");
        for (host, port) in scenario::HOST_IPS.iter().zip(lab.ports) {
            assert!(
                line.contains(&format!("{host}:{port}")),
                "VM {vm}: not {host}:{port}: {line}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("capture.pcap");
    let tcpdump = Tcpdump::start(Some(&lab.hosts[0]), "veth0", "ip", &pcap).unwrap();
    let seen = scenario::fragmenting_pair(&image, &lab, 5).unwrap();
    tcpdump.stop().unwrap();
    record(&pcap, "vm-ping-fragmented-veth.pcap", lab.ports);
    for result in &seen.results {
        scenario::check_no_loss(result, 5).unwrap();
        assert_eq!(result["size"], "3000");
    }
    for host in 0..2 {
        // Each host sends large datagrams (fragments them) and receives them (reassembles).
        assert!(
            seen.rise(host, "Ip:FragCreates") >= 10,
            "host {host}: {:?}",
            seen.snmp_after[host]
        );
        assert!(
            seen.rise(host, "Ip:FragOKs") >= 5,
            "host {host}: {:?}",
            seen.snmp_after[host]
        );
        assert!(
            seen.rise(host, "Ip:ReasmOKs") >= 5,
            "host {host}: {:?}",
            seen.snmp_after[host]
        );
    }
    // On the veth, every large tunnel datagram is in fragments; tshark reassembles them into
    // the guests' 3000-byte echoes.
    let decode = lab.ports.map(capture::decode_udp_as_eth);
    let later = capture::tshark_fields(&pcap, &decode, "ip.frag_offset > 0", &["ip.src"]).unwrap();
    assert!(
        later.len() >= 20,
        "{} non-first fragments on the veth",
        later.len()
    );
    let sizes = capture::tshark_fields(&pcap, &decode, "icmp.type == 8", &["data.len"]).unwrap();
    assert!(
        sizes.iter().all(|r| r[0] == "3000"),
        "echo payloads {sizes:?}"
    );
    check_echoes(&pcap, &decode, lab.ports, 5);
}

const LLDP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
const STP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];

/// Reads frames from `tap` until `want` accepts one, for up to `timeout`.
fn read_until(
    tap: &linkscope::net::tap::Tap,
    timeout: Duration,
    want: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0; 65536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(n) = tap.recv_timeout(&mut buf, left).unwrap()
            && want(&buf[..n])
        {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// The TTL of an LLDPDU (TLV type 3), walking the TLVs after the Ethernet header.
fn lldp_ttl(frame: &[u8]) -> Option<u16> {
    if frame.len() < 14 || frame[..6] != LLDP_MULTICAST || frame[12..14] != [0x88, 0xcc] {
        return None;
    }
    let mut tlvs = &frame[14..];
    while tlvs.len() >= 2 {
        let kind = tlvs[0] >> 1;
        let len = usize::from(tlvs[0] & 1) << 8 | usize::from(tlvs[1]);
        let value = tlvs.get(2..2 + len)?;
        if kind == 3 && len == 2 {
            return Some(u16::from_be_bytes([value[0], value[1]]));
        }
        tlvs = &tlvs[2 + len..];
    }
    None
}

#[test]
fn lldpd_on_a_tap_sends_and_hears_lldpdus() {
    let test = "lldpd_on_a_tap_sends_and_hears_lldpdus";
    if !prereq::ready(test, &[Need::Root, Need::Tun, Need::Iproute, Need::Lldpd]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let tap = daemons::tap_in(&ns).unwrap();
    let lldpd = Lldpd::start(&ns, tap.name(), Some(1)).unwrap();

    // tx-interval 1 with the default hold of 4 gives TTL 4.
    let frame = read_until(&tap, Duration::from_secs(30), |f| lldp_ttl(f) == Some(4));
    assert!(
        frame.is_some(),
        "no LLDPDU with TTL 4 from lldpd on {}",
        tap.name()
    );

    // An LLDPDU written into the tap reaches lldpd as a neighbour.
    let mut ours = Vec::new();
    ours.extend_from_slice(&LLDP_MULTICAST);
    ours.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xcc]);
    ours.extend_from_slice(&[0x02, 0x07, 0x04, 0x02, 0, 0, 0, 0, 0x01]); // chassis: MAC
    ours.extend_from_slice(&[0x04, 0x06, 0x05, b'p', b'r', b'o', b'b', b'e']); // port: ifname
    ours.extend_from_slice(&[0x06, 0x02, 0x00, 0x78]); // TTL 120
    ours.extend_from_slice(&[0x0a, 0x0d]); // system name
    ours.extend_from_slice(b"linkscope-lab");
    ours.extend_from_slice(&[0x00, 0x00]); // end
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tap.send(&ours).unwrap();
        let neighbours = lldpd
            .lldpcli(&["show", "neighbors", "-f", "keyvalue"])
            .unwrap();
        if neighbours.contains("chassis.name=linkscope-lab") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lldpd never listed our LLDPDU: {neighbours}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // SIGTERM: lldpd announces its shutdown with TTL 0.
    lldpd.terminate().unwrap();
    let frame = read_until(&tap, Duration::from_secs(10), |f| lldp_ttl(f) == Some(0));
    assert!(frame.is_some(), "no shutdown LLDPDU (TTL 0) after SIGTERM");
}

/// A config BPDU's root identifier (priority and MAC), after the 802.3 header and LLC.
fn config_bpdu_root(frame: &[u8]) -> Option<[u8; 8]> {
    let is_config = frame.len() >= 14 + 3 + 35
        && frame[..6] == STP_MULTICAST
        && frame[14..17] == [0x42, 0x42, 0x03]
        && frame[17..21] == [0, 0, 0, 0];
    is_config.then(|| frame[22..30].try_into().unwrap())
}

#[test]
fn kernel_stp_bridge_on_a_tap_sends_and_hears_bpdus() {
    let test = "kernel_stp_bridge_on_a_tap_sends_and_hears_bpdus";
    if !prereq::ready(test, &[Need::Root, Need::Tun, Need::Iproute]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let tap = daemons::tap_in(&ns).unwrap();
    daemons::stp_bridge(&ns, "br0", &[tap.name()]).unwrap();
    let sysfs =
        |file: &str| lab::run(ns.command("cat").arg(format!("/sys/class/net/br0/{file}"))).unwrap();
    let bridge_mac: Vec<u8> = sysfs("address")
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();

    // Alone, the bridge is root and says so every hello time.
    let root = read_until(&tap, Duration::from_secs(30), |f| {
        config_bpdu_root(f).is_some()
    })
    .and_then(|f| config_bpdu_root(&f))
    .expect("no config BPDU from the bridge");
    assert_eq!(
        root[2..],
        bridge_mac[..],
        "root {root:02x?} is not the bridge itself"
    );

    // A better root (priority 0) claimed through the tap takes over.
    let mut bpdu = Vec::new();
    bpdu.extend_from_slice(&STP_MULTICAST);
    bpdu.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x00, 0x26, 0x42, 0x42, 0x03]);
    bpdu.extend_from_slice(&[0, 0, 0, 0, 0]); // protocol, version, config, flags
    bpdu.extend_from_slice(&[0, 0, 0x02, 0, 0, 0, 0, 0x02]); // root
    bpdu.extend_from_slice(&[0, 0, 0, 0]); // cost
    bpdu.extend_from_slice(&[0, 0, 0x02, 0, 0, 0, 0, 0x02]); // bridge
    bpdu.extend_from_slice(&[0x80, 0x01, 0, 0, 0x14, 0, 0x02, 0, 0x0f, 0]); // port, ages, hello, delay
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tap.send(&bpdu).unwrap();
        let root_id = sysfs("bridge/root_id");
        if root_id.trim() == "0000.020000000002" {
            break;
        }
        assert!(Instant::now() < deadline, "bridge kept root {root_id}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
