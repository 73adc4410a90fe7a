//! `vxlan://REMOTE_IP[:PORT]?vni=N[&local=IP[:PORT]]`: Ethernet frames in VXLAN (RFC 7348),
//! interoperating with the Linux kernel's vxlan device (`ip link add vx0 type vxlan id N
//! remote IP local IP dstport 4789`).
//!
//! Every frame travels as one UDP datagram: the 8-byte VXLAN header (RFC 7348 §5: flags with
//! the I bit set, 24 reserved bits, the 24-bit VNI, 8 reserved bits), then the frame. The
//! endpoint binds `local` (default: any address of the remote's family) on the local port
//! (default: the remote's port, 4789 unless given, as the kernel binds its `dstport`), sends
//! to the remote, and takes datagrams from the remote's address only, from any source port
//! (the kernel picks the source port per flow, RFC 7348 §5). A datagram whose VNI is not
//! ours, whose flags are not exactly the I bit (the kernel, without extensions enabled,
//! drops those too) or that is too short to hold a header and an Ethernet header is dropped
//! and counted (`vxlan_other_vni`, `vxlan_bad_header`). The reserved fields are ignored on
//! receipt and sent as zero (RFC 7348 §5).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::endpoint::Counters;
use crate::clock::now_ns;
use crate::engine::BATCH;
use crate::engine::endpoint::{Endpoint, Inbox, Received};
use crate::net::batch::{SendBatch, SendOutcome};

/// The VXLAN header's size.
pub const HEADER: usize = 8;

/// The flags byte with only the I bit (a valid VNI follows) set.
const FLAG_I: u8 = 0x08;

/// The smallest datagram worth forwarding: a header and an Ethernet header.
const MIN_DATAGRAM: usize = HEADER + 14;

/// The largest datagram received: anything UDP can carry.
const MAX_DATAGRAM: usize = 65_535;

/// Why a datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too short, or flags other than exactly the I bit.
    BadHeader,
    /// A well-formed header with another VNI.
    OtherVni(u32),
}

/// The header in front of a frame of network `vni` (the upper 8 bits of `vni` are ignored).
pub fn header(vni: u32) -> [u8; HEADER] {
    let v = vni.to_be_bytes();
    [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// The frame inside `datagram` when it belongs to network `vni`.
pub fn frame(datagram: &[u8], vni: u32) -> Result<&[u8], Refusal> {
    if datagram.len() < MIN_DATAGRAM || datagram[0] != FLAG_I {
        return Err(Refusal::BadHeader);
    }
    let got = u32::from_be_bytes([0, datagram[4], datagram[5], datagram[6]]);
    if got != vni {
        return Err(Refusal::OtherVni(got));
    }
    Ok(&datagram[HEADER..])
}

/// A VXLAN tunnel to one remote, as a relay endpoint.
#[derive(Debug)]
pub struct Vxlan {
    socket: UdpSocket,
    remote: SocketAddr,
    vni: u32,
    /// One received datagram.
    datagram: Box<[u8]>,
    /// Headers and frames of one send, back to back.
    outgoing: Vec<u8>,
    stats: Arc<VxlanStats>,
}

/// Datagrams from the remote a VXLAN endpoint dropped.
#[derive(Debug, Default)]
pub struct VxlanStats {
    other_vni: AtomicU64,
    bad_header: AtomicU64,
}

impl Counters for VxlanStats {
    /// `vxlan_other_vni`: another network's; `vxlan_bad_header`: not VXLAN as configured.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("vxlan_other_vni", self.other_vni.load(Ordering::Relaxed)),
            ("vxlan_bad_header", self.bad_header.load(Ordering::Relaxed)),
        ]
    }
}

impl Vxlan {
    /// Binds the local end (`local`, default any address; `local_port`, default the remote's
    /// port). A bind failure names the address.
    pub fn open(
        remote: SocketAddr,
        vni: u32,
        local: Option<IpAddr>,
        local_port: Option<u16>,
    ) -> crate::Result<Vxlan> {
        let ip = local.unwrap_or(match remote {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let bind = SocketAddr::new(ip, local_port.unwrap_or(remote.port()));
        let socket = UdpSocket::bind(bind)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|source| crate::Error::Socket {
                addr: bind,
                op: "bind (vxlan)",
                source,
            })?;
        Ok(Vxlan {
            socket,
            remote,
            vni,
            datagram: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            outgoing: Vec::new(),
            stats: Arc::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The endpoint's own counters, shared with whoever reports them.
    pub fn stats(&self) -> Arc<VxlanStats> {
        self.stats.clone()
    }
}

impl Endpoint for Vxlan {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.socket.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.socket.as_raw_fd()))
    }

    fn receive(&mut self, inbox: &mut Inbox) -> io::Result<()> {
        while !inbox.is_full() {
            let (len, source) = self.socket.recv_from(&mut self.datagram)?;
            let datagram = &self.datagram[..len];
            // Another host's datagrams are left to the peer check (counted there); only the
            // remote's are judged by their header.
            if source.ip() == self.remote.ip() {
                match frame(datagram, self.vni) {
                    Ok(frame) => {
                        inbox.push(frame, now_ns(), Some(source));
                    }
                    Err(Refusal::OtherVni(_)) => {
                        self.stats.other_vni.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Refusal::BadHeader) => {
                        self.stats.bad_header.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                inbox.push(datagram, now_ns(), Some(source));
            }
        }
        Ok(())
    }

    fn accepts(&self, received: &Received) -> bool {
        received.source.is_some_and(|s| s.ip() == self.remote.ip())
    }

    fn send(&mut self, batch: &mut SendBatch, frames: &[&[u8]]) -> SendOutcome {
        let header = header(self.vni);
        let mut outcome = SendOutcome::default();
        for run in frames.chunks(BATCH) {
            self.outgoing.clear();
            for frame in run {
                self.outgoing.extend_from_slice(&header);
                self.outgoing.extend_from_slice(frame);
            }
            let mut datagrams: [&[u8]; BATCH] = [&[]; BATCH];
            let mut at = 0;
            for (slot, frame) in datagrams.iter_mut().zip(run) {
                let end = at + HEADER + frame.len();
                *slot = &self.outgoing[at..end];
                at = end;
            }
            outcome.add(batch.send(&self.socket, Some(self.remote), &datagrams[..run.len()]));
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7348 §5's layout: flags 0x08, reserved, VNI 0x123456, reserved.
    const HEADER_0X123456: [u8; 8] = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];

    #[test]
    fn header_layout_and_round_trip() {
        assert_eq!(header(0x123456), HEADER_0X123456);
        let mut datagram = HEADER_0X123456.to_vec();
        datagram.extend_from_slice(&[0xab; 60]);
        assert_eq!(frame(&datagram, 0x123456), Ok(&[0xab; 60][..]));
    }

    #[test]
    fn refusals() {
        let mut datagram = HEADER_0X123456.to_vec();
        datagram.extend_from_slice(&[0; 14]);
        assert_eq!(frame(&datagram, 7), Err(Refusal::OtherVni(0x123456)));
        assert_eq!(frame(&datagram[..21], 0x123456), Err(Refusal::BadHeader));
        for flags in [0x00, 0x0c, 0x88] {
            datagram[0] = flags;
            assert_eq!(
                frame(&datagram, 0x123456),
                Err(Refusal::BadHeader),
                "{flags:#x}"
            );
        }
        datagram[0] = FLAG_I;
        datagram[1] = 0xff;
        datagram[7] = 0xff;
        assert!(
            frame(&datagram, 0x123456).is_ok(),
            "reserved bits are ignored"
        );
    }

    #[test]
    fn a_port_in_use_is_named() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Vxlan::open(addr, 1, Some(addr.ip()), None).unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
