//! `linkscope extcap`: the extcap protocol's answers, `extcap install` found by tshark
//! (`tshark -D`), a capture through tshark on an emulated link, and `--capture --fifo`
//! stopped by SIGTERM (Wireshark's way) leaving a complete pcapng and the link handed back.

mod capture_support;
mod support;

use support::process::{Running, linkscope};

use std::io::Read;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use capture_support::frame;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use support::process::{run, wait_exit};
use support::wireshark::have;

const DEADLINE: Duration = Duration::from_secs(30);

/// A lab of one emulated link on loopback: the two ends' sockets and a mapping naming their
/// ports, in a temporary directory that also serves as HOME for Wireshark.
struct Lab {
    dir: tempfile::TempDir,
    a: UdpSocket,
    b: UdpSocket,
}

impl Lab {
    fn new() -> Lab {
        let end = || support::tunnel::end(Some(Duration::from_millis(100)));
        let (a, b) = (end(), end());
        let dir = tempfile::tempdir().unwrap();
        let mapping = format!(
            "links:\n  - [100, 2, 102, 1, {{port_a: {}, port_b: {}}}]\n  - [101, 1, 102, 2]\n",
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port()
        );
        std::fs::write(dir.path().join("mapping.yaml"), mapping).unwrap();
        Lab { dir, a, b }
    }

    fn mapping(&self) -> std::path::PathBuf {
        self.dir.path().join("mapping.yaml")
    }

    /// Sends `frame` from `from` to `to` until `to` gets a copy whose source tells whether
    /// it came through a splice (`spliced`) or straight from `from`.
    fn until(&self, from: &UdpSocket, to: &UdpSocket, frame: &[u8], spliced: bool) {
        let start = Instant::now();
        let mut buf = [0; 2048];
        while start.elapsed() < DEADLINE {
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
}

#[test]
fn answers_the_extcap_protocol() {
    let lab = Lab::new();
    let ask = |args: &[&str]| {
        run(linkscope()
            .arg("extcap")
            .arg("--mapping")
            .arg(lab.mapping())
            .args(args))
    };
    let interfaces = ask(&["--extcap-interfaces", "--extcap-version=4.0"]);
    let lines: Vec<&str> = interfaces.lines().collect();
    assert_eq!(lines.len(), 3, "{interfaces}");
    assert!(lines[0].starts_with(&format!("extcap {{version={}}}", env!("CARGO_PKG_VERSION"))));
    assert_eq!(
        lines[1],
        "interface {value=linkscope-100:2-102:1}{display=linkscope 100:2-102:1 (vm100:eth2 - vm102:eth1)}"
    );
    assert!(lines[2].starts_with("interface {value=linkscope-101:1-102:2}"));
    let iface = ["--extcap-interface", "linkscope-100:2-102:1"];
    assert_eq!(
        ask(&[&iface[..], &["--extcap-dlts"]].concat()),
        "dlt {number=1}{name=EN10MB}{display=Ethernet}\n"
    );
    assert!(
        ask(&[&iface[..], &["--extcap-config"]].concat())
            .starts_with("arg {number=0}{call=--snaplen}")
    );

    let unknown = linkscope()
        .arg("extcap")
        .arg("--mapping")
        .arg(lab.mapping())
        .args(["--extcap-interface", "eth0", "--extcap-dlts"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("linkscope-100:2-102:1"));
}

#[test]
fn capture_to_a_fifo_stops_on_sigterm_with_a_complete_capture() {
    let lab = Lab::new();
    let fifo = lab.dir.path().join("fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let child = linkscope()
        .arg("extcap")
        .arg("--mapping")
        .arg(lab.mapping())
        .args([
            "--capture",
            "--extcap-interface",
            "linkscope-100:2-102:1",
            "--snaplen",
            "100",
        ])
        .arg("--fifo")
        .arg(&fifo)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        })
    };
    lab.until(&lab.a, &lab.b, &frame(1, 60), true);
    lab.until(&lab.b, &lab.a, &frame(2, 1500), true);
    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut running.0, DEADLINE, "extcap ignored SIGTERM");
    let mut stderr = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(
        stderr, "",
        "Wireshark shows any standard error output as an error"
    );
    lab.until(&lab.a, &lab.b, &frame(3, 60), false);

    let bytes = reader.join().unwrap();
    let mut capture = PcapNgReader::new(&bytes[..]).unwrap();
    let mut names = Vec::new();
    let mut frames = Vec::new();
    let mut received = Vec::new();
    while let Some(block) = capture.next_block() {
        match block.unwrap().0 {
            Block::InterfaceDescription(idb) => {
                assert_eq!(idb.snaplen, 100);
                names.extend(idb.options.iter().filter_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                }));
            }
            Block::EnhancedPacket(epb) => {
                frames.push((epb.interface_id, epb.original_len, epb.data.len()))
            }
            Block::InterfaceStatistics(isb) => {
                received.extend(isb.options.iter().filter_map(|o| match o {
                    InterfaceStatisticsOption::IsbIfRecv(n) => Some(*n),
                    _ => None,
                }))
            }
            _ => {}
        }
    }
    assert_eq!(names, ["vm100:eth2", "vm102:eth1"]);
    assert!(frames.contains(&(0, 60, 60)), "{frames:?}");
    assert!(frames.contains(&(1, 1500, 100)), "{frames:?}");
    let per_end = |i| frames.iter().filter(|f| f.0 == i).count() as u64;
    assert_eq!(received, [per_end(0), per_end(1)]);
}

#[test]
fn tshark_lists_and_captures_the_installed_interfaces() {
    if !have(
        "tshark",
        "tshark_lists_and_captures_the_installed_interfaces",
    ) {
        return;
    }
    let lab = Lab::new();
    let home = lab.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let wireshark = |command: &mut Command| {
        command.env("HOME", &home).env_remove("XDG_CONFIG_HOME");
    };
    let mut install = linkscope();
    wireshark(&mut install);
    let installed = run(install
        .args(["extcap", "install", "--mapping"])
        .arg(lab.mapping()));
    assert!(
        installed.contains(".config/wireshark/extcap/linkscope"),
        "tshark 4.0 looks in ~/.config/wireshark/extcap: {installed}"
    );

    let mut list = Command::new("tshark");
    wireshark(&mut list);
    let listed = run(list.arg("-D"));
    assert!(
        listed.contains("linkscope-100:2-102:1 (linkscope 100:2-102:1 (vm100:eth2 - vm102:eth1))"),
        "{listed}"
    );
    assert!(listed.contains("linkscope-101:1-102:2"), "{listed}");

    let mut capture = Command::new("tshark");
    wireshark(&mut capture);
    let tshark = capture
        .args(["-i", "linkscope-100:2-102:1", "-c", "2", "-T", "fields"])
        .args([
            "-e",
            "frame.interface_name",
            "-e",
            "frame.packet_flags_direction",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(tshark);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let a = lab.a.try_clone().unwrap();
        let to_b = lab.b.local_addr().unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                a.send_to(&frame(1, 60), to_b).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let status = wait_exit(&mut running.0, DEADLINE, "tshark captured nothing");
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    let mut out = String::new();
    running
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("Error by extcap pipe"), "{err}");
    assert_eq!(out, "vm100:eth2\t0x00000002\nvm100:eth2\t0x00000002\n");
    // tshark stopped the extcap: the link is direct again.
    lab.until(&lab.a, &lab.b, &frame(2, 60), false);
    assert!(
        Path::new(&home)
            .join(".config/wireshark/extcap/linkscope")
            .exists()
    );
}
