//! `linkscope splice` on the tunnel of two real QEMU VMs pinging each other: steal mode
//! started and stopped while the pings run (into a file, then live into tshark), and relay
//! mode with the VMs booted from `linkscope plan --splice`. The VMs' ping results say what
//! the splice cost them; tshark and capinfos read what it captured.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::capture;
use crate::lab::plan::{self, Netdev};
use crate::lab::prereq::{self, Need};
use crate::lab::scenario::{self, GUEST_IPS, VMS};
use crate::lab::vm::Vm;

/// Generous bound on waiting for frames to show up in a capture (not a timing assert: the
/// VMs ping five times a second, so frames normally show within a second or two).
const FRAMES_DEADLINE: Duration = Duration::from_secs(90);

/// The capture interface of each VM's end of the link, in [`VMS`] order.
const INTERFACES: [&str; 2] = ["vm100:eth1", "vm102:eth1"];

/// A running `linkscope splice`; stopped by a signal in [`Splice::stop`], killed on drop.
struct Splice {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Splice {
    /// Starts `linkscope splice ARGS`, its standard output piped (read it with
    /// [`Splice::stdout`]) and its standard error collected.
    fn start(args: &[String]) -> Splice {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkscope"))
            .arg("splice")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn linkscope splice");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::Builder::new()
            .name("splice-stderr".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
            .expect("stderr thread");
        Splice {
            child,
            stderr: Some(stderr),
        }
    }

    fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("piped stdout")
    }

    /// Sends `signal` ("INT", "TERM"), waits for the exit and returns standard error; panics
    /// unless the splice exits successfully.
    fn stop(mut self, signal: &str) -> String {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the splice ended before it was stopped: {}",
            self.stderr.take().unwrap().join().unwrap()
        );
        crate::lab::signal(self.child.id(), signal).unwrap();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(
            status.success(),
            "splice after SIG{signal}: {status}\n{stderr}"
        );
        stderr
    }
}

impl Drop for Splice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the summary the splice printed on stop: frames forwarded both ways, nothing
/// dropped.
fn check_summary(stderr: &str) {
    for (from, to) in [(0, 1), (1, 0)] {
        let head = format!("{} > {}: ", INTERFACES[from], INTERFACES[to]);
        let line = stderr
            .lines()
            .find(|l| l.contains(&head))
            .unwrap_or_else(|| panic!("no summary line for {head}in\n{stderr}"));
        let frames: u64 = line
            .split(&head)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no frame count in {line:?}"));
        assert!(frames > 0, "nothing forwarded: {line}");
        assert!(
            line.contains("dropped: 0 zero-length, 0 foreign source, 0 truncated, 0 unsent"),
            "{line}"
        );
    }
}

/// An ICMP frame as tshark shows it: fields interface, ip.src, icmp.type, direction flags,
/// frame.time_epoch.
const ICMP_FIELDS: [&str; 5] = [
    "frame.interface_name",
    "ip.src",
    "icmp.type",
    "frame.packet_flags_direction",
    "frame.time_epoch",
];

/// Checks every ICMP row (fields [`ICMP_FIELDS`]): on the interface of the VM that sent it,
/// flagged outbound, with a nanosecond timestamp. Returns how many echo requests and
/// replies each interface holds.
fn check_icmp_rows(rows: &[Vec<String>]) -> [[usize; 2]; 2] {
    let mut counts = [[0; 2]; 2];
    for row in rows {
        let [interface, src, kind, flags, time] = &row[..] else {
            panic!("unexpected tshark row {row:?}");
        };
        let end = INTERFACES
            .iter()
            .position(|i| i == interface)
            .unwrap_or_else(|| panic!("frame on an unknown interface: {row:?}"));
        assert_eq!(src, GUEST_IPS[end], "sent by the other VM: {row:?}");
        assert_eq!(flags, "0x00000002", "direction not outbound: {row:?}");
        let fraction = time.split('.').nth(1).unwrap_or_default();
        assert_eq!(fraction.len(), 9, "not nanoseconds: {row:?}");
        match kind.as_str() {
            "8" => counts[end][0] += 1,
            "0" => counts[end][1] += 1,
            _ => panic!("not an echo request or reply: {row:?}"),
        }
    }
    counts
}

/// True when each interface holds at least `n` echo requests and `n` replies.
fn at_least(counts: [[usize; 2]; 2], n: usize) -> bool {
    counts.iter().flatten().all(|&c| c >= n)
}

/// The ICMP frames of a capture file, checked by [`check_icmp_rows`].
fn icmp_in(file: &Path) -> [[usize; 2]; 2] {
    check_icmp_rows(&capture::tshark_fields(file, &[], "icmp", &ICMP_FIELDS).unwrap())
}

/// Waits until `file`, a capture the splice is still writing, holds at least `n` echo
/// requests and replies from each VM (tshark fails until the splice has created it).
fn wait_for_echoes(file: &Path, n: usize) {
    let deadline = Instant::now() + FRAMES_DEADLINE;
    loop {
        let seen = capture::tshark_fields(file, &[], "icmp", &ICMP_FIELDS)
            .map(|rows| check_icmp_rows(&rows));
        if seen.as_ref().is_ok_and(|&counts| at_least(counts, n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {FRAMES_DEADLINE:?}, {} holds fewer than {n} echo requests/replies from each \
             VM: {seen:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// capinfos: the two ends' interfaces, both with nanosecond timestamps (if_tsresol 9).
fn check_capinfos(file: &Path) {
    let info = crate::lab::run(Command::new("capinfos").arg(file)).unwrap();
    assert!(info.contains("Number of interfaces in file: 2"), "{info}");
    assert_eq!(
        info.matches("Time precision = nanoseconds (9)").count(),
        2,
        "{info}"
    );
    for name in INTERFACES {
        assert!(info.contains(&format!("Name = {name}\n")), "{info}");
    }
}

/// Panics unless every VM is still in its counted pings (no result line yet).
fn assert_still_pinging(vms: &[Vm], moment: &str) {
    for vm in vms {
        assert!(
            vm.line("LINKSCOPE-PING ").is_some() && vm.line("LINKSCOPE-RESULT ").is_none(),
            "{moment}: a VM was not in its counted pings; give the test more pings"
        );
    }
}

/// Runs `linkscope splice ARGS -w - | tshark -l -i -` until tshark has decoded at least `n`
/// echo requests and replies from each VM, then stops the splice with SIGTERM. Returns the
/// ICMP rows tshark printed (fields [`ICMP_FIELDS`]) and the splice's standard error.
fn live_into_tshark(args: &[String], n: usize) -> (Vec<Vec<String>>, String) {
    let mut splice = Splice::start(args);
    let mut tshark = Command::new("tshark");
    tshark.args(["-l", "-n", "-i", "-", "-T", "fields", "-E", "separator=/t"]);
    for field in ICMP_FIELDS {
        tshark.args(["-e", field]);
    }
    let mut tshark = tshark
        .stdin(splice.stdout())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tshark");
    let (lines, rows) = mpsc::channel();
    let out = BufReader::new(tshark.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            let row: Vec<String> = line.split('\t').map(str::to_string).collect();
            // Only ICMP: the tunnel also carries ARP.
            if row.get(2).is_some_and(|kind| !kind.is_empty()) && lines.send(row).is_err() {
                break;
            }
        }
    });
    let mut live = Vec::new();
    let deadline = Instant::now() + FRAMES_DEADLINE;
    while !at_least(check_icmp_rows(&live), n) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rows.recv_timeout(left) {
            Ok(row) => live.push(row),
            Err(e) => panic!("tshark decoded only {live:?} while the splice ran: {e}"),
        }
    }
    let stderr = splice.stop("TERM");
    // The splice closed the pipe: tshark reads its end and exits.
    let status = tshark.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "tshark: {status}");
    live.extend(rows.try_iter());
    check_icmp_rows(&live);
    (live, stderr)
}

/// Two VMs wired by `netdev` ping each other `pings` times; while they do, a steal-mode
/// splice writing a file steps in and, on SIGINT, out; with `live`, then a second one
/// writing `-w - | tshark -l -i -` steps in and, on SIGTERM, out. Each VM may lose at most
/// one ping across all these moments; tshark and capinfos check the file.
fn steal_in_and_out(test: &str, netdev: Netdev, pings: u32, live: bool) {
    let Some(image) = prereq::vm_image(test, &[Need::Qemu, Need::Tshark]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = crate::lab::free_udp_ports::<2>();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(&mapping, plan::one_link_mapping(VMS, ports, None)).unwrap();
    let args = scenario::loopback_args(netdev, ports).unwrap();
    let mut vms = scenario::boot(
        &image,
        &args,
        scenario::ping_guests(None, 56, pings),
        [None, None],
    )
    .unwrap();
    for vm in &mut vms {
        vm.wait_line("LINKSCOPE-PING ").unwrap();
    }
    let splice_args = |write: &str| -> Vec<String> {
        vec![
            "--mapping".into(),
            mapping.display().to_string(),
            "--link".into(),
            "100:1".into(),
            "-w".into(),
            write.into(),
        ]
    };

    // Into a file: in while both VMs ping, out on SIGINT.
    let file = dir.path().join("steal.pcapng");
    let splice = Splice::start(&splice_args(&file.display().to_string()));
    wait_for_echoes(&file, 5);
    let stderr = splice.stop("INT");
    assert_still_pinging(&vms, "SIGINT to the file splice");
    check_summary(&stderr);

    if live {
        let (rows, stderr) = live_into_tshark(&splice_args("-"), 5);
        assert_still_pinging(&vms, "SIGTERM to the live splice");
        check_summary(&stderr);
        eprintln!("{test}: live: tshark decoded {} ICMP frames", rows.len());
    }

    for result in scenario::results(&mut vms).unwrap() {
        eprintln!("{test}: {result:?}");
        let count = |key: &str| -> u32 { result[key].parse().unwrap() };
        assert_eq!(count("transmitted"), pings, "{result:?}");
        assert!(
            count("received") + 1 >= pings,
            "more than one ping lost: {result:?}"
        );
    }
    drop(vms);

    let counts = icmp_in(&file);
    eprintln!("{test}: file: echo requests/replies per end {counts:?}");
    assert!(at_least(counts, 5), "{counts:?}");
    check_capinfos(&file);
}

/// 100 pings at five a second (20 s) leave time for two splices to step in and out.
#[test]
fn a_steal_splice_steps_into_and_out_of_pinging_vms() {
    steal_in_and_out(
        "a_steal_splice_steps_into_and_out_of_pinging_vms",
        Netdev::Socket,
        100,
        true,
    );
}

/// QEMU's `-netdev dgram` binds the same way as `-netdev socket,udp=` (SO_REUSEADDR, never
/// connected): the splice steals from it too.
#[test]
fn a_steal_splice_steps_into_and_out_of_a_dgram_tunnel() {
    steal_in_and_out(
        "a_steal_splice_steps_into_and_out_of_a_dgram_tunnel",
        Netdev::Dgram,
        50,
        false,
    );
}

const RELAY_PINGS: u32 = 10;

#[test]
fn vms_planned_through_a_relay_splice_ping_through_it() {
    let test = "vms_planned_through_a_relay_splice_ping_through_it";
    let Some(image) = prereq::vm_image(test, &[Need::Qemu, Need::Tshark]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [vm_a, vm_b, listen_a, listen_b] = crate::lab::free_udp_ports::<4>();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(&mapping, plan::one_link_mapping(VMS, [vm_a, vm_b], None)).unwrap();
    let empty = dir.path().join("pve");
    std::fs::create_dir(&empty).unwrap();
    let listen = format!("127.0.0.1:{listen_a},{listen_b}");
    let planned = crate::lab::run(
        Command::new(env!("CARGO_BIN_EXE_linkscope"))
            .arg("plan")
            .arg(&mapping)
            .args(["--format", "qemu", "--splice"])
            .arg(format!("100:1-102:1={listen}"))
            .arg("--pve-config-dir")
            .arg(&empty)
            .arg("--qm-showcmd-dir")
            .arg(&empty),
    )
    .unwrap();
    let args = plan::parse_qemu_plan(&planned).unwrap();
    // Each VM keeps its own port and sends to the relay's port for its end.
    for (vm, own, to) in [(VMS[0], vm_a, listen_a), (VMS[1], vm_b, listen_b)] {
        let line = args[&vm].join(" ");
        assert!(
            line.contains(&format!("udp=127.0.0.1:{to},localaddr=127.0.0.1:{own}")),
            "VM {vm}: {line}"
        );
    }

    let file = dir.path().join("relay.pcapng");
    let splice = Splice::start(&[
        "--mapping".into(),
        mapping.display().to_string(),
        "--link".into(),
        "100:1".into(),
        "--mode".into(),
        "relay".into(),
        "--listen".into(),
        listen,
        "-w".into(),
        file.display().to_string(),
    ]);
    let mut vms = scenario::boot(
        &image,
        &args,
        scenario::ping_guests(None, 56, RELAY_PINGS),
        [None, None],
    )
    .unwrap();
    for result in scenario::results(&mut vms).unwrap() {
        scenario::check_no_loss(&result, RELAY_PINGS).unwrap();
    }
    drop(vms);
    let stderr = splice.stop("TERM");
    check_summary(&stderr);
    let counts = icmp_in(&file);
    let n = RELAY_PINGS as usize;
    assert!(
        at_least(counts, n),
        "fewer than {n} echoes each way: {counts:?}"
    );
    check_capinfos(&file);
}
