//! One-line, tcpdump-like summaries of Ethernet frames.

use std::fmt::Write;

use etherparse::{ArpOperation, EtherType, IcmpEchoHeader, LaxNetSlice, LaxSlicedPacket};
use etherparse::{Icmpv4Type, Icmpv6Type, TransportSlice};

use super::{Frame, Payload, classify};

/// A one-line summary of an Ethernet frame: addresses, VLAN tags, then what it carries
/// (LLDP, STP, LACP, Marker decoded; ARP, IPv4/IPv6 with ICMP, UDP, TCP; else the
/// EtherType or LLC header). Never panics; undecodable parts are said to be so.
pub fn summary(frame: &[u8]) -> String {
    let f = match classify(frame) {
        Ok(f) => f,
        Err(e) => return format!("malformed frame ({} bytes): {e}", frame.len()),
    };
    let mut out = format!("{} > {}", f.src, f.dst);
    for vlan in f.vlans.as_slice() {
        let _ = write!(out, " vlan {vlan}");
    }
    out.push_str(", ");
    match f.control() {
        Some(Ok(c)) => {
            let _ = write!(out, "{} {c}", c.protocol().name().to_uppercase());
        }
        Some(Err(e)) => {
            let name = f.protocol().map_or("?", |p| p.name());
            let _ = write!(out, "{} malformed: {e}", name.to_uppercase());
        }
        None => other(&mut out, &f, frame),
    }
    out
}

fn other(out: &mut String, f: &Frame<'_>, frame: &[u8]) {
    match f.payload {
        Payload::EtherType(EtherType::IPV4 | EtherType::IPV6 | EtherType::ARP, _) => {
            net(out, frame);
        }
        Payload::EtherType(t, d) => {
            let _ = write!(out, "ethertype {:#06x}, length {}", t.0, d.len());
        }
        Payload::Slow { subtype, data } => {
            let _ = write!(
                out,
                "slow protocol subtype {subtype}, length {}",
                data.len()
            );
        }
        Payload::Snap { oui, pid, data } => {
            let _ = write!(
                out,
                "SNAP oui {:02x}{:02x}{:02x} pid {pid:#06x}, length {}",
                oui[0],
                oui[1],
                oui[2],
                data.len()
            );
        }
        Payload::Llc {
            dsap,
            ssap,
            control,
            data,
        } => {
            let _ = write!(
                out,
                "LLC dsap {dsap:#04x} ssap {ssap:#04x} control {control:#04x}, length {}",
                data.len()
            );
        }
        Payload::Lldp(_)
        | Payload::Stp(_)
        | Payload::Pvst(_)
        | Payload::Lacp(_)
        | Payload::Marker(_) => {}
    }
}

fn net(out: &mut String, frame: &[u8]) {
    let p = match LaxSlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => {
            let _ = write!(out, "malformed: {e}");
            return;
        }
    };
    let (src, dst) = match &p.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                h.source_addr().to_string(),
                h.destination_addr().to_string(),
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                h.source_addr().to_string(),
                h.destination_addr().to_string(),
            )
        }
        Some(LaxNetSlice::Arp(arp)) => {
            let spa = ip_text(arp.sender_protocol_addr());
            let tpa = ip_text(arp.target_protocol_addr());
            match arp.operation() {
                ArpOperation::REQUEST => {
                    let _ = write!(out, "ARP who-has {tpa} tell {spa}");
                }
                ArpOperation::REPLY => {
                    let _ = write!(
                        out,
                        "ARP reply {spa} is-at {}",
                        hw_text(arp.sender_hw_addr())
                    );
                }
                op => {
                    let _ = write!(out, "ARP operation {}", op.0);
                }
            }
            return;
        }
        None => {
            match &p.stop_err {
                Some((e, _)) => {
                    let _ = write!(out, "malformed: {e}");
                }
                None => out.push_str("empty network layer"),
            }
            return;
        }
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let _ = write!(
                out,
                "UDP {src}.{} > {dst}.{}, length {}",
                u.source_port(),
                u.destination_port(),
                u.payload().len()
            );
        }
        Some(TransportSlice::Tcp(t)) => {
            let mut flags = String::new();
            for (set, c) in [
                (t.syn(), 'S'),
                (t.fin(), 'F'),
                (t.rst(), 'R'),
                (t.psh(), 'P'),
                (t.ack(), '.'),
            ] {
                if set {
                    flags.push(c);
                }
            }
            let _ = write!(
                out,
                "TCP {src}.{} > {dst}.{} [{flags}] seq {}, length {}",
                t.source_port(),
                t.destination_port(),
                t.sequence_number(),
                t.payload().len()
            );
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let _ = write!(out, "ICMP {src} > {dst}: ");
            match i.icmp_type() {
                Icmpv4Type::EchoRequest(e) => echo(out, "echo request", e),
                Icmpv4Type::EchoReply(e) => echo(out, "echo reply", e),
                _ => {
                    let _ = write!(out, "type {} code {}", i.type_u8(), i.code_u8());
                }
            }
            let _ = write!(out, ", length {}", i.payload().len());
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let _ = write!(out, "ICMP6 {src} > {dst}: ");
            match i.icmp_type() {
                Icmpv6Type::EchoRequest(e) => echo(out, "echo request", e),
                Icmpv6Type::EchoReply(e) => echo(out, "echo reply", e),
                _ => {
                    let _ = write!(out, "type {} code {}", i.type_u8(), i.code_u8());
                }
            }
            let _ = write!(out, ", length {}", i.payload().len());
        }
        Some(TransportSlice::Igmp(i)) => {
            let _ = write!(out, "IGMP {src} > {dst}: type {:#04x}", i.type_u8());
        }
        None => {
            let proto = match &p.net {
                Some(LaxNetSlice::Ipv4(ip)) => ip.header().protocol().0,
                Some(LaxNetSlice::Ipv6(ip)) => ip.payload().ip_number.0,
                _ => 0,
            };
            let _ = write!(out, "IP {src} > {dst}: protocol {proto}");
            if let Some((e, _)) = &p.stop_err {
                let _ = write!(out, " (malformed: {e})");
            }
        }
    }
}

fn echo(out: &mut String, what: &str, e: IcmpEchoHeader) {
    let _ = write!(out, "{what} id {} seq {}", e.id, e.seq);
}

fn ip_text(addr: &[u8]) -> String {
    match addr {
        [a, b, c, d] => std::net::Ipv4Addr::new(*a, *b, *c, *d).to_string(),
        other => super::hex(other),
    }
}

fn hw_text(addr: &[u8]) -> String {
    if addr.len() == 6 {
        super::mac(addr, 0..6).to_string()
    } else {
        super::hex(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
    const B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

    #[test]
    fn udp_tcp_icmp() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5000, 6000)
            .write(&mut f, &[0; 10])
            .unwrap();
        assert_eq!(
            summary(&f),
            "52:54:00:00:00:01 > 52:54:00:00:00:02, UDP 10.0.0.1.5000 > 10.0.0.2.6000, length 10"
        );
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 100, 1000)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        assert!(summary(&f).ends_with("vlan 7, TCP 10.0.0.1.1 > 10.0.0.2.2 [S] seq 100, length 0"));
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv6([0xfe; 16], [0xfd; 16], 64)
            .icmpv6_echo_request(3, 4)
            .write(&mut f, &[1; 8])
            .unwrap();
        let s = summary(&f);
        assert!(
            s.contains("ICMP6 ") && s.ends_with("echo request id 3 seq 4, length 8"),
            "{s}"
        );
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_reply(3, 4)
            .write(&mut f, &[])
            .unwrap();
        assert!(summary(&f).ends_with("ICMP 10.0.0.1 > 10.0.0.2: echo reply id 3 seq 4, length 0"));
    }

    #[test]
    fn arp_and_others() {
        let mut f = [0xff; 6].to_vec();
        f.extend_from_slice(&A);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&A);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 2]);
        assert_eq!(
            summary(&f),
            "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 10.0.0.2 tell 10.0.0.1"
        );
        let mut f = B.to_vec();
        f.extend_from_slice(&A);
        f.extend_from_slice(&[0x88, 0xb5, 1, 2]);
        assert!(summary(&f).ends_with("ethertype 0x88b5, length 2"));
        assert_eq!(
            summary(&[1, 2, 3]),
            "malformed frame (3 bytes): Ethernet: header truncated: need 14 bytes, have 3"
        );
    }

    #[test]
    fn control_frames() {
        let mut f = [1, 0x80, 0xc2, 0, 0, 0].to_vec();
        f.extend_from_slice(&A);
        f.extend_from_slice(&[0, 7, 0x42, 0x42, 3, 0, 0, 0, 0x80]);
        assert_eq!(
            summary(&f),
            "52:54:00:00:00:01 > 01:80:c2:00:00:00, STP tcn v0"
        );
        let mut f = [1, 0x80, 0xc2, 0, 0, 0x0e].to_vec();
        f.extend_from_slice(&A);
        f.extend_from_slice(&[0x88, 0xcc, 2, 5]);
        assert_eq!(
            summary(&f),
            "52:54:00:00:00:01 > 01:80:c2:00:00:0e, LLDP malformed: LLDP: TLV value truncated: need 7 bytes, have 2"
        );
    }
}
