//! `linkscope relay` between real QEMU 7.2 VMs: a VM on a stream netdev (`-netdev
//! stream,server=on`, or `-netdev socket,connect=`) and a VM on a UDP tunnel (`-netdev
//! socket,udp=`) ping each other through the relay; the stream VM's QEMU is stopped and
//! started again, and its pings pass again without touching the other VM or the relay.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crate::lab::prereq::{self, Need};
use crate::lab::scenario;
use crate::lab::vm::{self, Guest, Spec};

const PINGS: u32 = 10;

/// Which side of the stream the VM takes.
#[derive(Clone, Copy, Debug)]
enum StreamVm {
    /// `-netdev stream,server=on`: the relay connects (`tcp://`) and reconnects.
    Server,
    /// `-netdev socket,connect=`: the relay listens (`tcp-listen://`); QEMU 7.2 connects
    /// once per start.
    Client,
}

/// A running `linkscope relay`, its standard error collected; killed on drop.
struct Relay {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Relay {
    fn start(args: &[String]) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkscope"))
            .arg("relay")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn linkscope relay");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Relay {
            child,
            stderr: Some(stderr),
        }
    }

    /// SIGTERM; panics unless the relay ran until then and exits successfully.
    fn stop(mut self) -> String {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the relay ended before it was stopped: {}",
            self.stderr.take().unwrap().join().unwrap()
        );
        crate::lab::signal(self.child.id(), "TERM").unwrap();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "relay after SIGTERM: {status}\n{stderr}");
        stderr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn device(mac: &str) -> [String; 2] {
    [
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,mac={mac}"),
    ]
}

/// These tests hold one VM slot (the UDP VM) while they start the other VM again and again:
/// two of them at once would each hold one slot and wait for the other forever.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn restart_survived(test: &str, side: StreamVm) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = prereq::vm_image(test, &[Need::Qemu]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let tcp_port = free_tcp_port();
    let [udp_vm, udp_relay] = crate::lab::free_udp_ports::<2>();
    let (stream_netdev, stream_end) = match side {
        StreamVm::Server => (
            format!(
                "stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port={tcp_port}"
            ),
            format!("tcp://127.0.0.1:{tcp_port}"),
        ),
        StreamVm::Client => (
            format!("socket,id=n0,connect=127.0.0.1:{tcp_port}"),
            format!("tcp-listen://127.0.0.1:{tcp_port}"),
        ),
    };
    let relay = Relay::start(&[
        "-q".into(),
        "--stats-interval".into(),
        "0".into(),
        "--json".into(),
        json.display().to_string(),
        "--name".into(),
        "stream-vm".into(),
        "--name".into(),
        "udp-vm".into(),
        stream_end,
        format!("udp://127.0.0.1:{udp_relay}->127.0.0.1:{udp_vm}"),
    ]);
    // The UDP VM answers pings for the whole test and is never touched.
    let udp_guest = Guest {
        role: "idle".into(),
        hold: Some(900),
        ..Guest::ping(
            "udpvm",
            &format!("{}/24", scenario::GUEST_IPS[1]),
            scenario::GUEST_IPS[0],
        )
    };
    let mut net_args = vec![
        "-netdev".to_string(),
        format!("socket,id=n0,udp=127.0.0.1:{udp_relay},localaddr=127.0.0.1:{udp_vm}"),
    ];
    net_args.extend(device("52:54:00:77:00:02"));
    let mut udp_vm_running = vm::start(
        &image,
        vec![Spec {
            guest: udp_guest,
            net_args,
            netns: None,
        }],
    )
    .unwrap();
    udp_vm_running[0].wait_line("LINKSCOPE-READY ").unwrap();

    for start in 1..=2 {
        let mut net_args = vec!["-netdev".to_string(), stream_netdev.clone()];
        net_args.extend(device("52:54:00:77:00:01"));
        let guest = Guest::ping(
            &format!("streamvm{start}"),
            &format!("{}/24", scenario::GUEST_IPS[0]),
            scenario::GUEST_IPS[1],
        );
        let mut stream_vm = vm::start(
            &image,
            vec![Spec {
                guest,
                net_args,
                netns: None,
            }],
        )
        .unwrap();
        let result = stream_vm[0].result().unwrap();
        scenario::check_no_loss(&result, PINGS)
            .unwrap_or_else(|e| panic!("{side:?}, start {start} of the stream VM: {e}"));
        // Stop its QEMU (killed on drop); the relay and the UDP VM keep running.
        drop(stream_vm);
    }
    assert!(
        udp_vm_running[0].line("LINKSCOPE-POWEROFF").is_none(),
        "the UDP VM was not supposed to stop"
    );
    let stderr = relay.stop();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let connections = report["endpoints"][0]["connections"].as_u64();
    assert_eq!(
        connections,
        Some(2),
        "one connection per VM start: {report}\n{stderr}"
    );
    assert_eq!(report["endpoints"][0]["framing_errors"].as_u64(), Some(0));
}

#[test]
fn a_relay_reconnects_to_a_restarted_stream_server_vm() {
    restart_survived(
        "a_relay_reconnects_to_a_restarted_stream_server_vm",
        StreamVm::Server,
    );
}

#[test]
fn a_relay_takes_back_a_restarted_socket_connect_vm() {
    restart_survived(
        "a_relay_takes_back_a_restarted_socket_connect_vm",
        StreamVm::Client,
    );
}

/// The test's third switch port: an emulated tunnel end that sends its own BPDUs and LLDPDUs
/// and keeps every frame it receives.
struct ThirdEnd {
    received: std::sync::Arc<Mutex<Vec<Vec<u8>>>>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const THIRD_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x77, 0x00, 0x03];

impl ThirdEnd {
    fn start(socket: std::net::UdpSocket, relay: std::net::SocketAddr) -> ThirdEnd {
        use std::sync::atomic::{AtomicBool, Ordering};
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let received = std::sync::Arc::new(Mutex::new(Vec::new()));
        let running = std::sync::Arc::new(AtomicBool::new(true));
        let (rx, flag, store) = (socket, running.clone(), received.clone());
        let own = [
            crate::support_frames::stp_frame(THIRD_MAC, 61440),
            crate::support_frames::lldp_frame(THIRD_MAC, "third"),
        ];
        let thread = std::thread::spawn(move || {
            let mut buf = [0; 65536];
            while flag.load(Ordering::Relaxed) {
                for frame in &own {
                    let _ = rx.send_to(frame, relay);
                }
                while let Ok(n) = rx.recv(&mut buf) {
                    store
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(buf[..n].to_vec());
                }
            }
        });
        ThirdEnd {
            received,
            running,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<Vec<u8>> {
        self.running
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[test]
fn a_switching_relay_joins_two_vms_and_a_third_end_without_echo_or_leaks() {
    let test = "a_switching_relay_joins_two_vms_and_a_third_end_without_echo_or_leaks";
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = prereq::vm_image(test, &[Need::Qemu]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("relay.json");
    let [vm_a, vm_b, relay_a, relay_b, relay_c] = crate::lab::free_udp_ports::<5>();
    let third = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let third_addr = third.local_addr().unwrap();
    let relay = Relay::start(&[
        "--switch".into(),
        "-q".into(),
        "--stats-interval".into(),
        "0".into(),
        "--json".into(),
        json.display().to_string(),
        format!("udp://127.0.0.1:{relay_a}->127.0.0.1:{vm_a}"),
        format!("udp://127.0.0.1:{relay_b}->127.0.0.1:{vm_b}"),
        format!("udp://127.0.0.1:{relay_c}->{third_addr}"),
    ]);
    let third = ThirdEnd::start(third, ([127, 0, 0, 1], relay_c).into());
    let vm_spec = |guest: Guest, relay: u16, own: u16, mac: &str| {
        let mut net_args = vec![
            "-netdev".to_string(),
            format!("socket,id=n0,udp=127.0.0.1:{relay},localaddr=127.0.0.1:{own}"),
        ];
        net_args.extend(device(mac));
        Spec {
            guest,
            net_args,
            netns: None,
        }
    };
    // VM a runs an STP bridge (real BPDUs) and pings VM b, which answers.
    let bridge = Guest {
        role: "bridge".into(),
        ..Guest::ping(
            "vma",
            &format!("{}/24", scenario::GUEST_IPS[0]),
            scenario::GUEST_IPS[1],
        )
    };
    let answering = Guest {
        role: "idle".into(),
        hold: Some(900),
        ..Guest::ping(
            "vmb",
            &format!("{}/24", scenario::GUEST_IPS[1]),
            scenario::GUEST_IPS[0],
        )
    };
    let mut vms = vm::start(
        &image,
        vec![
            vm_spec(bridge, relay_a, vm_a, "52:54:00:77:00:01"),
            vm_spec(answering, relay_b, vm_b, "52:54:00:77:00:02"),
        ],
    )
    .unwrap();
    let result = vms[0].result().unwrap();
    scenario::check_no_loss(&result, PINGS).unwrap();
    drop(vms);
    let received = third.stop();
    relay.stop();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    // The third end got the VM bridge's BPDUs (flooded), never its own frames back, and no
    // unicast frame between the VMs once the switch had learned them (it learns each VM
    // from its first frame, an ARP request or a BPDU, before any unicast is addressed to it).
    let src = |f: &Vec<u8>| f.get(6..12).map(<[u8]>::to_vec);
    let bpdus_from_vm = received
        .iter()
        .filter(|f| f.starts_with(&[0x01, 0x80, 0xc2, 0, 0, 0]))
        .filter(|f| src(f) != Some(THIRD_MAC.to_vec()))
        .count();
    assert!(
        bpdus_from_vm > 0,
        "no BPDU of the VM's bridge reached the third end"
    );
    let echoed = received
        .iter()
        .filter(|f| src(f) == Some(THIRD_MAC.to_vec()))
        .count();
    assert_eq!(echoed, 0, "the third end received its own frames back");
    let leaked: Vec<&Vec<u8>> = received.iter().filter(|f| f[0] & 1 == 0).collect();
    assert!(
        leaked.is_empty(),
        "unicast between the VMs reached the third end: {} frames, first {:02x?}",
        leaked.len(),
        leaked.first().map(|f| &f[..14])
    );
    assert!(
        report["switch"]["entries"].as_u64() >= Some(3),
        "the switch learned both VMs and the third end: {report}"
    );
}
