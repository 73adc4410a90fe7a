//! The demo lab: two emulated QEMU ends on loopback, speaking the tunnel framing (one raw
//! Ethernet frame per UDP datagram, sockets opened as QEMU opens them), so a splice can step
//! in and out of a live link without any VM.
//!
//! Each [`Vm`] runs a thread that sends, like a small host with a bridge would, an ARP
//! request and an ICMP echo request to its peer every 200 ms (end A only), an LLDPDU and an
//! STP configuration BPDU every second, and answers the peer's ARP and echo requests.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etherparse::{
    EtherType, Icmpv4Type, LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice,
};

use crate::net::tunnel;
use crate::wire::{ETHERTYPE_LLDP, MacAddr, lldp, stp};

const LLDP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
const STP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];
const BROADCAST: [u8; 6] = [0xff; 6];

/// Who an emulated VM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// System name, e.g. `vm100`.
    pub name: String,
    /// Interface name, e.g. `eth1`.
    pub port: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    /// STP bridge priority (the lower one becomes root).
    pub bridge_priority: u16,
    /// Whether this end starts the pings (the other answers).
    pub pings: bool,
}

impl Identity {
    /// VM `100 + vm` of the demo lab: `vm1NN`, `eth1`, the planner's MAC
    /// (be:24:99:00:VMID:01), 10.0.0.(1 + vm); the pinging end has the lower bridge priority
    /// and becomes STP root.
    pub fn demo(vm: u8, pings: bool) -> Identity {
        Identity {
            name: format!("vm1{vm:02}"),
            port: "eth1".into(),
            mac: [0xbe, 0x24, 0x99, 0x00, 0x64 + vm, 0x01],
            ip: Ipv4Addr::new(10, 0, 0, 1 + vm),
            bridge_priority: if pings { 4096 } else { 32768 },
            pings,
        }
    }
}

/// What an emulated VM saw, by kind. Frames that came from the peer's own bound address
/// came direct; the rest came through a splice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmCounts {
    pub sent: u64,
    pub received: u64,
    pub spliced: u64,
    pub arp: u64,
    pub icmp: u64,
    pub lldp: u64,
    pub stp: u64,
    pub other: u64,
    pub pings_sent: u64,
    pub pings_answered: u64,
}

/// A running emulated VM.
pub struct Vm {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<VmCounts>>,
}

impl Vm {
    /// Opens the VM's tunnel socket on an ephemeral loopback port (as QEMU's UDP netdev:
    /// SO_REUSEADDR, unconnected). Call [`Vm::start`] once the peer's address is known.
    pub fn bind() -> std::io::Result<UdpSocket> {
        tunnel::endpoint(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts the VM's thread on `socket`, sending to `peer` (whose bound address it is).
    pub fn start(
        socket: UdpSocket,
        peer: SocketAddr,
        me: Identity,
        peer_ip: Ipv4Addr,
    ) -> std::io::Result<Vm> {
        let local = socket.local_addr()?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("demo-{}", me.name))
            .spawn(move || run(&socket, peer, &me, peer_ip, &flag))?;
        Ok(Vm {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// The VM's bound address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Stops the VM and returns its counts.
    pub fn stop(mut self) -> VmCounts {
        self.halt()
    }

    /// Stops several VMs at once (all stop sending before any is joined) and returns their
    /// counts in order.
    pub fn stop_all(vms: Vec<Vm>) -> Vec<VmCounts> {
        for vm in &vms {
            vm.stop.store(true, Ordering::SeqCst);
        }
        vms.into_iter().map(Vm::stop).collect()
    }

    fn halt(&mut self) -> VmCounts {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(
    socket: &UdpSocket,
    peer: SocketAddr,
    me: &Identity,
    peer_ip: Ipv4Addr,
    stop: &AtomicBool,
) -> VmCounts {
    let mut counts = VmCounts::default();
    let mut buf = vec![0u8; 65536];
    // Offset from whole seconds, so nothing is sent just as the demo's phases change.
    let mut next_ping = Instant::now() + Duration::from_millis(100);
    let mut next_hello = Instant::now() + Duration::from_millis(500);
    let mut next_probe = Instant::now();
    let mut sequence: u16 = 0;
    // The peer's MAC once ARP has resolved it, as a real stack's neighbour table holds it.
    let mut neighbour: Option<[u8; 6]> = None;
    let send = |frame: &[u8], counts: &mut VmCounts| {
        if socket.send_to(frame, peer).is_ok() {
            counts.sent += 1;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if me.pings && now >= next_ping {
            next_ping = now + Duration::from_millis(200);
            match neighbour {
                // Resolve the peer first (broadcast), and ping only once it has answered.
                None => send(&arp(me, peer_ip, BROADCAST, None), &mut counts),
                Some(mac) => {
                    // Confirm the neighbour now and then with a unicast request, as Linux
                    // probes a stale entry.
                    if now >= next_probe {
                        next_probe = now + Duration::from_secs(1);
                        send(&arp(me, peer_ip, mac, None), &mut counts);
                    }
                    sequence = sequence.wrapping_add(1);
                    send(&echo(me, mac, peer_ip, sequence, false), &mut counts);
                    counts.pings_sent += 1;
                }
            }
        }
        if now >= next_hello {
            next_hello = now + Duration::from_secs(1);
            send(&lldpdu(me), &mut counts);
            send(&bpdu(me), &mut counts);
        }
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        counts.received += 1;
        if from != peer {
            counts.spliced += 1;
        }
        if let Some(reply) = answer(&buf[..n], me, &mut neighbour, &mut counts) {
            send(&reply, &mut counts);
        }
    }
    counts
}

/// Classifies a received frame, learns the sender's MAC from ARP addressed to us into
/// `neighbour`, and builds the answer to an ARP or echo request for us.
fn answer(
    frame: &[u8],
    me: &Identity,
    neighbour: &mut Option<[u8; 6]>,
    counts: &mut VmCounts,
) -> Option<Vec<u8>> {
    if frame.len() < 14 {
        counts.other += 1;
        return None;
    }
    let ethertype = EtherType(u16::from_be_bytes([frame[12], frame[13]]));
    if frame[..6] == STP_MULTICAST {
        counts.stp += 1;
        return None;
    }
    match ethertype {
        ETHERTYPE_LLDP => {
            counts.lldp += 1;
            None
        }
        EtherType::ARP if frame.len() >= 42 => {
            counts.arp += 1;
            let op = u16::from_be_bytes([frame[20], frame[21]]);
            let target = Ipv4Addr::new(frame[38], frame[39], frame[40], frame[41]);
            let sender_ip = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
            let sender_mac: [u8; 6] = frame[22..28].try_into().ok()?;
            if target != me.ip {
                return None;
            }
            *neighbour = Some(sender_mac);
            (op == 1).then(|| arp(me, sender_ip, sender_mac, Some(sender_mac)))
        }
        _ => {
            let Ok(packet) = SlicedPacket::from_ethernet(frame) else {
                counts.other += 1;
                return None;
            };
            let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) =
                (&packet.net, &packet.transport)
            else {
                counts.other += 1;
                return None;
            };
            counts.icmp += 1;
            let Some(LinkSlice::Ethernet2(ethernet)) = &packet.link else {
                return None;
            };
            let source = ethernet.source();
            match icmp.icmp_type() {
                Icmpv4Type::EchoRequest(e) if ip.header().destination_addr() == me.ip => {
                    Some(echo(me, source, ip.header().source_addr(), e.seq, true))
                }
                Icmpv4Type::EchoReply(_) => {
                    counts.pings_answered += 1;
                    None
                }
                _ => None,
            }
        }
    }
}

/// An ARP request for `target` sent to `destination` (broadcast, or the known MAC when
/// confirming a neighbour), or with `reply_to` a reply to that MAC.
fn arp(
    me: &Identity,
    target: Ipv4Addr,
    destination: [u8; 6],
    reply_to: Option<[u8; 6]>,
) -> Vec<u8> {
    let (op, target_mac) = match reply_to {
        Some(mac) => (2u16, mac),
        None => (1u16, [0; 6]),
    };
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&destination);
    f.extend_from_slice(&me.mac);
    f.extend_from_slice(&EtherType::ARP.0.to_be_bytes());
    // Hardware Ethernet (1), protocol IPv4, address lengths 6 and 4, operation.
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&me.mac);
    f.extend_from_slice(&me.ip.octets());
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&target.octets());
    f
}

/// An ICMP echo request (or reply) of 56 payload bytes, like ping's.
fn echo(me: &Identity, destination: [u8; 6], to: Ipv4Addr, sequence: u16, reply: bool) -> Vec<u8> {
    let builder =
        PacketBuilder::ethernet2(me.mac, destination).ipv4(me.ip.octets(), to.octets(), 64);
    let payload: Vec<u8> = (0..56u8).collect();
    let builder = if reply {
        builder.icmpv4_echo_reply(0x4c53, sequence)
    } else {
        builder.icmpv4_echo_request(0x4c53, sequence)
    };
    let mut f = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut f, &payload)
        .expect("writing into a Vec cannot fail");
    f
}

/// An LLDPDU naming this VM and port, TTL 120 s.
fn lldpdu(me: &Identity) -> Vec<u8> {
    let repr = lldp::Repr::station(
        me.mac,
        (lldp::PortIdSubtype::INTERFACE_NAME, me.port.as_bytes()),
        120,
        Some(me.name.as_bytes()),
    );
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&LLDP_MULTICAST);
    f.extend_from_slice(&me.mac);
    f.extend_from_slice(&ETHERTYPE_LLDP.0.to_be_bytes());
    repr.emit(&mut f).expect("short TLVs always fit");
    f
}

/// An 802.1D configuration BPDU from this VM's bridge, claiming to be root.
fn bpdu(me: &Identity) -> Vec<u8> {
    let bridge = stp::BridgeId {
        priority: me.bridge_priority,
        system_id_ext: 0,
        mac: MacAddr(me.mac),
    };
    let repr = stp::Repr {
        version: stp::Version::STP,
        body: stp::Body::Config(stp::Config::root(bridge)),
        pvst_vlan: None,
    };
    let mut bpdu = Vec::with_capacity(40);
    repr.emit(&mut bpdu)
        .expect("a configuration BPDU always fits");
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&STP_MULTICAST);
    f.extend_from_slice(&me.mac);
    // 802.3 length: LLC header (DSAP 0x42, SSAP 0x42, UI) plus the BPDU.
    f.extend_from_slice(&((bpdu.len() + 3) as u16).to_be_bytes());
    f.extend_from_slice(&[0x42, 0x42, 0x03]);
    f.extend_from_slice(&bpdu);
    // Pad to the 60-byte Ethernet minimum, as a NIC would.
    f.resize(f.len().max(60), 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(pings: bool) -> Identity {
        Identity {
            name: "vm100".into(),
            port: "eth1".into(),
            mac: [0xbe, 0x24, 0x99, 0, 0x64, 1],
            ip: Ipv4Addr::new(10, 0, 0, 1),
            bridge_priority: 4096,
            pings,
        }
    }

    #[test]
    fn frames_decode_as_what_they_are() {
        let me = identity(true);
        assert!(
            crate::wire::summary(&lldpdu(&me)).contains("LLDP"),
            "{}",
            crate::wire::summary(&lldpdu(&me))
        );
        assert!(
            crate::wire::summary(&bpdu(&me)).contains("STP"),
            "{}",
            crate::wire::summary(&bpdu(&me))
        );
        let request = arp(&me, Ipv4Addr::new(10, 0, 0, 2), BROADCAST, None);
        assert!(crate::wire::summary(&request).contains("ARP"));
        let ping = echo(&me, BROADCAST, Ipv4Addr::new(10, 0, 0, 2), 1, false);
        assert!(
            crate::wire::summary(&ping).contains("ICMP"),
            "{}",
            crate::wire::summary(&ping)
        );
    }

    #[test]
    fn requests_for_us_are_answered() {
        let a = identity(true);
        let b = Identity {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            mac: [0xbe, 0x24, 0x99, 0, 0x66, 1],
            ..identity(false)
        };
        let mut counts = VmCounts::default();
        let (mut a_knows, mut b_knows) = (None, None);
        let reply = answer(
            &arp(&a, b.ip, BROADCAST, None),
            &b,
            &mut b_knows,
            &mut counts,
        )
        .expect("an ARP reply");
        assert_eq!(&reply[..6], &a.mac);
        assert_eq!(
            b_knows,
            Some(a.mac),
            "a request for us teaches the sender's MAC"
        );
        assert!(answer(&reply, &a, &mut a_knows, &mut counts).is_none());
        assert_eq!(a_knows, Some(b.mac), "the reply teaches the peer's MAC");
        let reply = answer(
            &echo(&a, b.mac, b.ip, 7, false),
            &b,
            &mut b_knows,
            &mut counts,
        )
        .expect("an echo reply");
        assert_eq!(&reply[..6], &a.mac, "echo replies are unicast");
        answer(&reply, &a, &mut a_knows, &mut counts);
        assert_eq!((counts.arp, counts.icmp, counts.pings_answered), (2, 2, 1));
        assert!(answer(&lldpdu(&a), &b, &mut b_knows, &mut counts).is_none());
        assert!(answer(&bpdu(&a), &b, &mut b_knows, &mut counts).is_none());
        assert_eq!((counts.lldp, counts.stp), (1, 1));
    }
}
