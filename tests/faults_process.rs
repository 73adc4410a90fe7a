//! A splice under the faults a process meets: `kill -9` in the middle of traffic, SIGTERM
//! with `-w`, and a VM restarting (its QEMU closes and binds its tunnel socket again) while
//! the splice runs. Real `linkscope splice` processes on emulated QEMU ends; tshark checks the
//! captures where it is installed.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::process::{Running, linkscope, wait_exit};
use support::wireshark::{have, pcapng_blocks, tshark_reads_cleanly};

fn end_at(addr: SocketAddr) -> UdpSocket {
    let s = linkscope::net::tunnel::endpoint(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s
}

fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 200];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, tag]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Sends from `from` to `to`'s address until `to` receives a copy whose source `wanted`
/// accepts; returns that source.
fn until_received(
    from: &UdpSocket,
    to: &UdpSocket,
    wanted: impl Fn(SocketAddr) -> bool,
) -> SocketAddr {
    let mut buf = [0; 2048];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        from.send_to(&frame(1), to.local_addr().unwrap()).unwrap();
        if let Ok((_, source)) = to.recv_from(&mut buf)
            && wanted(source)
        {
            return source;
        }
    }
    panic!("nothing arrived as expected");
}

fn splice_writing(a: &UdpSocket, b: &UdpSocket, capture: &Path) -> Running {
    Running(
        linkscope()
            .args(["splice", "-q", "--stats-interval", "0"])
            .args(["--a", &a.local_addr().unwrap().to_string()])
            .args(["--b", &b.local_addr().unwrap().to_string()])
            .arg("-w")
            .arg(capture)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Frames going both ways, every millisecond, until dropped.
struct Traffic {
    done: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(pairs: Vec<(UdpSocket, SocketAddr)>) -> Traffic {
        let done = Arc::new(AtomicBool::new(false));
        let threads = pairs
            .into_iter()
            .map(|(from, to)| {
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut buf = [0; 2048];
                    while !done.load(Ordering::Relaxed) {
                        let _ = from.send_to(&frame(2), to);
                        let _ = from.recv(&mut buf);
                    }
                })
            })
            .collect();
        Traffic { done, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The enhanced packet blocks of a capture that must end on a whole block.
fn packets(capture: &Path) -> usize {
    let bytes = std::fs::read(capture).unwrap();
    pcapng_blocks(&bytes)
        .unwrap_or_else(|torn| panic!("a torn block at byte offset {torn}"))
        .1
}

fn tshark_reads(capture: &Path, test: &str) {
    if have("tshark", test) {
        tshark_reads_cleanly(capture);
    }
}

#[test]
fn kill_9_mid_traffic_leaves_whole_blocks_and_hands_the_tunnel_back() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        end_at("127.0.0.1:0".parse().unwrap()),
        end_at("127.0.0.1:0".parse().unwrap()),
    );
    let capture = dir.path().join("killed.pcapng");
    let mut splice = splice_writing(&a, &b, &capture);
    let direct = a.local_addr().unwrap();
    until_received(&a, &b, |source| source != direct);
    let traffic = Traffic::start(vec![
        (a.try_clone().unwrap(), b.local_addr().unwrap()),
        (b.try_clone().unwrap(), a.local_addr().unwrap()),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    splice.0.kill().unwrap();
    splice.0.wait().unwrap();
    drop(traffic);
    // The kernel closed the steal sockets: the ends reach each other directly again.
    until_received(&a, &b, |source| source == direct);
    let packets = packets(&capture);
    assert!(packets > 10, "{packets} packets");
    tshark_reads(&capture, "kill_9_mid_traffic_leaves_whole_blocks");
}

#[test]
fn sigterm_with_w_finishes_the_capture_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        end_at("127.0.0.1:0".parse().unwrap()),
        end_at("127.0.0.1:0".parse().unwrap()),
    );
    let capture = dir.path().join("term.pcapng");
    let mut splice = splice_writing(&a, &b, &capture);
    let direct = a.local_addr().unwrap();
    until_received(&a, &b, |source| source != direct);
    let traffic = Traffic::start(vec![(a.try_clone().unwrap(), b.local_addr().unwrap())]);
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &splice.0.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(&mut splice.0, Duration::from_secs(10), "SIGTERM");
    drop(traffic);
    let err = splice.stderr();
    assert!(status.success(), "{err}");
    let packets = packets(&capture);
    assert!(packets >= 3, "{packets}");
    let bytes = std::fs::read(&capture).unwrap();
    // The capture ends with one interface statistics block per interface.
    let tail = &bytes[bytes.len() - 4..];
    let last_len = u32::from_le_bytes(tail.try_into().unwrap()) as usize;
    let last = &bytes[bytes.len() - last_len..];
    assert_eq!(
        u32::from_le_bytes(last[..4].try_into().unwrap()),
        5,
        "an ISB last"
    );
    tshark_reads(&capture, "sigterm_with_w_finishes_the_capture_and_exits_0");
}

#[test]
fn a_vm_restarting_during_a_splice_is_spliced_again_without_a_restart_of_the_splice() {
    let (a, b) = (
        end_at("127.0.0.1:0".parse().unwrap()),
        end_at("127.0.0.1:0".parse().unwrap()),
    );
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut splice = splice_writing(&a, &b, &dir.path().join("restart.pcapng"));
    until_received(&a, &b, |source| source != addr_a);
    until_received(&b, &a, |source| source != addr_b);
    // Both VMs restart: QEMU closes its socket and binds the same address again.
    drop((a, b));
    std::thread::sleep(Duration::from_millis(200));
    let (a, b) = (end_at(addr_a), end_at(addr_b));
    until_received(&a, &b, |source| source != addr_a);
    until_received(&b, &a, |source| source != addr_b);
    assert!(splice.0.try_wait().unwrap().is_none(), "the splice runs on");
    Command::new("kill")
        .args(["-INT", &splice.0.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(&mut splice.0, Duration::from_secs(10), "SIGINT");
    assert!(status.success());
}
