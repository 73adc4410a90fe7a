//! Shared by the capture tests: synthetic frames, interfaces, reading captures back, the
//! one-link lab. A test crate that has this module has `mod support` too.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use linkscope::capture::Interface;
use pcap_file::pcapng::{Block, PcapNgReader};

/// How long [`Lab::until`] keeps sending before it fails the test.
const UNTIL: Duration = Duration::from_secs(30);

/// One emulated link on loopback (100:2-102:1 between the ends `a` and `b`, which wait at
/// most 100 ms per read) and a mapping naming its ports, in a temporary directory the tests
/// also use for HOME and the like.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub a: UdpSocket,
    pub b: UdpSocket,
}

impl Lab {
    /// The link, and `more` lines of links after it in the mapping.
    pub fn new(more: &str) -> Lab {
        let end = || crate::support::tunnel::end(Some(Duration::from_millis(100)));
        let (a, b) = (end(), end());
        let dir = tempfile::tempdir().unwrap();
        let mapping = format!(
            "links:\n  - [100, 2, 102, 1, {{port_a: {}, port_b: {}}}]\n{more}",
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port()
        );
        std::fs::write(dir.path().join("mapping.yaml"), mapping).unwrap();
        Lab { dir, a, b }
    }

    pub fn mapping(&self) -> PathBuf {
        self.dir.path().join("mapping.yaml")
    }

    /// Sends `frame` from `from` to `to` until `to` gets a copy whose source tells whether
    /// it came through a splice (`spliced`) or straight from `from`.
    pub fn until(&self, from: &UdpSocket, to: &UdpSocket, frame: &[u8], spliced: bool) {
        let start = Instant::now();
        let mut buf = [0; 2048];
        while start.elapsed() < UNTIL {
            from.send_to(frame, to.local_addr().unwrap()).unwrap();
            if let Ok((_, source)) = to.recv_from(&mut buf)
                && (source != from.local_addr().unwrap()) == spliced
            {
                return;
            }
        }
        panic!(
            "the link never became {}",
            if spliced { "spliced" } else { "direct" }
        );
    }

    /// Sends frames from a to b until one arrives straight from a: no splice in the path.
    pub fn until_direct(&self) {
        self.until(&self.a, &self.b, &frame(1, 60), false);
    }
}

/// A frame of `len` bytes (at least 18): broadcast destination, a locally administered
/// source, the local experimental EtherType 0x88B5, then `sequence` as 4 bytes, then filler.
pub fn frame(sequence: u32, len: usize) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend([0xbe, 0x24, 0x99, 0x00, 0x64, 0x01, 0x88, 0xb5]);
    frame.extend(sequence.to_be_bytes());
    frame.resize(len.max(18), 0x5a);
    frame
}

/// The sequence number [`frame`] put in, as tshark shows the payload's first 4 bytes.
pub fn sequence_of(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[14..18].try_into().expect("4 bytes"))
}

pub fn interface(name: &str, description: &str, snaplen: u32) -> Interface {
    Interface {
        name: name.into(),
        description: description.into(),
        snaplen,
        ..Interface::default()
    }
}

/// Every block of a pcapng file, parsed by pcap-file.
pub fn blocks(file: &Path) -> Vec<Block<'static>> {
    let bytes = std::fs::read(file).expect("read capture");
    let mut reader = PcapNgReader::new(&bytes[..]).expect("pcapng section header");
    let mut blocks = vec![Block::SectionHeader(reader.section().clone())];
    while let Some(block) = reader.next_block() {
        let (block, _) = block.expect("well-formed block");
        blocks.push(block.into_owned());
    }
    blocks
}

/// An 802.1D configuration BPDU from `src`, as a bridge sends it (LLC, 01:80:c2:00:00:00).
pub fn stp_frame(src: [u8; 6]) -> Vec<u8> {
    let mut frame = vec![0x01, 0x80, 0xc2, 0, 0, 0];
    frame.extend(src);
    frame.extend([0, 38, 0x42, 0x42, 0x03]);
    // Protocol 0, version 0, type config, flags, root id, cost, bridge id, port, timers.
    frame.extend([0, 0, 0, 0, 0x80, 0]);
    frame.extend(src);
    frame.extend([0, 0, 0, 0, 0x80, 0]);
    frame.extend(src);
    frame.extend([0x80, 0x01, 0, 0, 0x14, 0, 0x02, 0, 0x0f, 0]);
    frame.resize(60, 0);
    frame
}

pub fn is_stp(frame: &[u8]) -> bool {
    frame.starts_with(&[0x01, 0x80, 0xc2, 0, 0, 0])
}

/// Both ends send an STP frame and a numbered frame every 20 ms until stopped, and record
/// what reached the other end through the splice (from an address that is not the sender's).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

impl Traffic {
    pub fn start(a: &UdpSocket, b: &UdpSocket) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b) = (a.try_clone().unwrap(), b.try_clone().unwrap());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut spliced = Vec::new();
            let mut buf = [0u8; 2048];
            let mut drain = |socket: &UdpSocket, peer, spliced: &mut Vec<Vec<u8>>| {
                while let Ok((n, source)) = socket.recv_from(&mut buf) {
                    if source != peer {
                        spliced.push(buf[..n].to_vec());
                    }
                }
            };
            let mut sequence = 0;
            while !flag.load(Ordering::SeqCst) {
                for (from, to, mac) in [
                    (&a, to_b, [2, 0, 0, 0, 0, 0xa]),
                    (&b, to_a, [2, 0, 0, 0, 0, 0xb]),
                ] {
                    from.send_to(&stp_frame(mac), to).unwrap();
                    sequence += 1;
                    from.send_to(&frame(sequence, 80), to).unwrap();
                }
                drain(&b, to_a, &mut spliced);
                drain(&a, to_b, &mut spliced);
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(300));
            drain(&b, to_a, &mut spliced);
            drain(&a, to_b, &mut spliced);
            spliced
        });
        Traffic { stop, thread }
    }

    /// Stops sending; the frames that crossed the splice.
    pub fn stop(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The frames of a capture file, with the interface each came in on.
pub fn captured(file: &Path) -> Vec<(u32, Vec<u8>)> {
    blocks(file)
        .into_iter()
        .filter_map(|block| match block {
            Block::EnhancedPacket(epb) => Some((epb.interface_id, epb.data.to_vec())),
            _ => None,
        })
        .collect()
}

/// libpcap loads (tshark's own dependency), or the test is skipped with the reason printed
/// (a failure under LINKSCOPE_REQUIRE_LAB=1).
pub fn have_libpcap(test: &str) -> bool {
    let loads = linkscope::capture::filter::Filter::compile("udp", 0).is_ok();
    if !loads {
        let reason = format!("{test}: skipped: libpcap does not load (Debian package libpcap0.8)");
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
        );
        eprintln!("{reason}");
    }
    loads
}
