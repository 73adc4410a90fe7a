//! `linkscope extcap`: the extcap protocol's answers, `extcap install` found by tshark
//! (`tshark -D`), a capture through tshark on an emulated link, and `--capture --fifo`
//! stopped by SIGTERM (Wireshark's way) leaving a complete pcapng and the link handed back;
//! capture filters through tshark (`-f`), Wireshark's filter check, and an invalid filter
//! ending tshark with libpcap's message instead of a hang.

mod capture_support;
mod support;

use support::process::{Running, linkscope};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use capture_support::{Lab, Traffic, captured, frame, have_libpcap, is_stp};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use support::process::{run, wait_exit};
use support::wireshark::have;

const DEADLINE: Duration = Duration::from_secs(30);

/// How long a failing capture may take to end tshark before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

impl Lab {
    /// Installs the extcap into a fresh HOME for Wireshark (tshark finds the personal extcap
    /// folder from $HOME) and returns that HOME.
    fn install(&self) -> PathBuf {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        run(linkscope()
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .args(["extcap", "install", "--mapping"])
            .arg(self.mapping()));
        home
    }
}

#[test]
fn answers_the_extcap_protocol() {
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
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
    let config = ask(&[&iface[..], &["--extcap-config"]].concat());
    let calls: Vec<&str> = config
        .lines()
        .map(|l| l.split("{call=").nth(1).unwrap().split('}').next().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "--snaplen",
            "--expect",
            "--expect-timeout",
            "--measure",
            "--report",
            "--stats-interval",
            "--host-mtu",
            "--impair",
            "--seed"
        ],
        "{config}"
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
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
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
    let stderr = running.stderr();
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
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
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
    let out = running.stdout();
    let err = running.stderr();
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

/// tshark with the temporary HOME the extcap was installed into.
fn tshark(home: &Path) -> Command {
    let mut command = Command::new("tshark");
    command.env("HOME", home).env_remove("XDG_CONFIG_HOME");
    command
}

#[test]
fn the_filter_check_answers_as_wireshark_expects() {
    if !have_libpcap("the_filter_check_answers_as_wireshark_expects") {
        return;
    }
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    // As Wireshark 4.0 (extcap.c, extcap_verify_capture_filter) and later call it: no
    // --capture; exit 0 either way; nothing on stdout means valid, else its first line is the
    // message shown under the filter field.
    let check = |filter: &str| {
        linkscope()
            .arg("extcap")
            .arg("--mapping")
            .arg(lab.mapping())
            .args(["--extcap-capture-filter", filter])
            .args(["--extcap-interface", "linkscope-100:2-102:1"])
            .output()
            .unwrap()
    };
    for valid in [
        "not stp",
        "udp port 53 or ether proto 0x88cc",
        "vlan 100 and arp",
        "",
    ] {
        let out = check(valid);
        assert!(out.status.success(), "{valid:?}: {out:?}");
        assert_eq!(out.stdout, b"", "{valid:?} is valid");
        assert_eq!(out.stderr, b"", "{valid:?}");
    }
    for invalid in ["udp port", "not stp and", "ether host 1:2:3"] {
        let out = check(invalid);
        assert!(out.status.success(), "{invalid:?}: {out:?}");
        let said = String::from_utf8(out.stdout).unwrap();
        let first = said.lines().next().unwrap_or_default();
        assert!(first.contains(invalid), "{invalid:?}: {said:?}");
        assert!(
            first.contains("syntax error")
                || first.contains("bogus")
                || first.contains("ethernet address"),
            "libpcap's own message for {invalid:?}: {said:?}"
        );
    }
}

#[test]
fn tshark_capture_filter_drops_stp_and_keeps_every_other_frame() {
    let test = "tshark_capture_filter_drops_stp_and_keeps_every_other_frame";
    if !have("tshark", test) || !have_libpcap(test) {
        return;
    }
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let home = lab.install();
    let file = lab.dir.path().join("filtered.pcapng");
    let traffic = Traffic::start(&lab.a, &lab.b);
    let tshark = tshark(&home)
        .args([
            "-i",
            "linkscope-100:2-102:1",
            "-f",
            "not stp",
            "-a",
            "duration:3",
            "-w",
        ])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(tshark);
    let status = wait_exit(&mut running.0, DEADLINE, "tshark did not stop after 3 s");
    let spliced = traffic.stop();
    let err = running.stderr();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("Error by extcap pipe"), "{err}");

    let frames = captured(&file);
    assert!(
        spliced.iter().any(|f| is_stp(f)),
        "STP crossed the splice, so the filter had STP to drop"
    );
    assert!(
        !frames.iter().any(|(_, f)| is_stp(f)),
        "no STP in the capture"
    );
    let mut expected: Vec<u32> = spliced
        .iter()
        .filter(|f| !is_stp(f))
        .map(|f| capture_support::sequence_of(f))
        .collect();
    let mut got: Vec<u32> = frames
        .iter()
        .map(|(_, f)| capture_support::sequence_of(f))
        .collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert!(!got.is_empty());
    // tshark stops reading when its 3 s are up, a moment before it stops the extcap: frames
    // spliced in that moment reach no file. Up to the last frame captured, every frame but
    // STP that crossed the splice is there.
    let last = *got.last().unwrap();
    expected.retain(|s| *s <= last);
    assert_eq!(
        got, expected,
        "every frame but STP that crossed the splice is captured"
    );
    assert!(
        frames.iter().any(|(i, _)| *i == 0) && frames.iter().any(|(i, _)| *i == 1),
        "both ends"
    );
    let protocols = support::wireshark::tshark_fields(&file, &[], &["frame.protocols"]);
    assert!(
        protocols.iter().all(|p| !p[0].contains("stp")),
        "{protocols:?}"
    );
    // What Wireshark shows of the interfaces (Capture File Properties): a description read
    // at a glance, the details in the comment, the capture filter.
    let info = run(Command::new("capinfos").arg(&file));
    for wanted in [
        "Description = vm100:eth2 \u{21c4} vm102:eth1 on link 100:2-102:1\n",
        "Description = vm102:eth1 \u{21c4} vm100:eth2 on link 100:2-102:1\n",
        "Comment = end A of link 100:2-102:1, A ",
        "Comment = end B of link 100:2-102:1, A ",
        "Filter string = not stp\n",
    ] {
        assert!(info.contains(wanted), "{wanted:?} in {info}");
    }
}

#[test]
fn an_invalid_filter_ends_tshark_with_libpcaps_message() {
    let test = "an_invalid_filter_ends_tshark_with_libpcaps_message";
    if !have("tshark", test) || !have_libpcap(test) {
        return;
    }
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let home = lab.install();
    let started = Instant::now();
    let tshark = tshark(&home)
        .args([
            "-i",
            "linkscope-100:2-102:1",
            "-f",
            "udp port",
            "-a",
            "duration:30",
            "-w",
        ])
        .arg(lab.dir.path().join("never.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(tshark);
    // About 1.2 s on a quiet 2-core machine (tshark lists the extcaps, starts dumpcap and
    // ours, which fails at once); the deadline leaves room for a loaded machine, and a hang
    // (the extcap exiting without opening the fifo) never ends at all.
    let status = wait_exit(
        &mut running.0,
        HANG,
        "tshark still waits after starting with an invalid capture filter",
    );
    eprintln!("tshark ended after {:?}", started.elapsed());
    let err = running.stderr();
    assert!(!status.success(), "{status}: {err}");
    assert!(err.contains("Error by extcap pipe"), "{err}");
    assert!(
        err.contains("\"udp port\": can't parse filter expression: syntax error"),
        "{err}"
    );
    // The link was never stolen.
    lab.until(&lab.a, &lab.b, &frame(1, 60), false);
}

/// Runs `linkscope extcap --capture` for the lab's first link with `args`, reading the fifo
/// as dumpcap does; returns the extcap (still running or not) and the reader's thread.
fn extcap_capture(lab: &Lab, args: &[&str]) -> (Running, std::thread::JoinHandle<Vec<u8>>) {
    let fifo = lab.dir.path().join("fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let child = linkscope()
        .arg("extcap")
        .arg("--mapping")
        .arg(lab.mapping())
        .args(["--capture", "--extcap-interface", "linkscope-100:2-102:1"])
        .args(args)
        .arg("--fifo")
        .arg(&fifo)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::fs::File::open(fifo)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    });
    (Running(child), reader)
}

#[test]
fn the_dialogs_expect_ends_the_capture_naming_what_never_came() {
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let (mut running, reader) = extcap_capture(
        &lab,
        &[
            "--expect",
            "lldp:a>b",
            "--expect-timeout",
            "1",
            "--stats-interval",
            "1",
        ],
    );
    let status = wait_exit(&mut running.0, DEADLINE, "--expect never timed out");
    let err = running.stderr();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(
        err.lines().count(),
        1,
        "only the verdict reaches Wireshark's dialog: {err}"
    );
    assert!(
        err.starts_with("expect: FAILED: never seen in ")
            && err.contains("lldp a>b (vm100:eth2 > vm102:eth1) on 100:2-102:1"),
        "{err}"
    );
    // The reader got a whole (empty) capture and its end.
    let bytes = reader.join().unwrap();
    assert!(PcapNgReader::new(&bytes[..]).is_ok());
    lab.until(&lab.a, &lab.b, &frame(1, 60), false);
}

#[test]
fn the_dialogs_impairment_cuts_the_direction_it_names() {
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let (mut running, reader) = extcap_capture(&lab, &["--impair", "a>b:down", "--seed", "7"]);
    // Once the splice is in, B's frames cross and A's are dropped by the pulled a>b cable.
    lab.until(&lab.b, &lab.a, &frame(1, 60), true);
    let mut buf = [0u8; 2048];
    for sequence in 2..7 {
        lab.a
            .send_to(&frame(sequence, 60), lab.b.local_addr().unwrap())
            .unwrap();
    }
    lab.b
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok((_, from)) = lab.b.recv_from(&mut buf) {
        assert_eq!(
            from,
            lab.a.local_addr().unwrap(),
            "only frames straight from A, none through the cut splice"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut running.0, DEADLINE, "extcap ignored SIGTERM");
    let err = running.stderr();
    assert!(status.success(), "{status}: {err}");
    let file = lab.dir.path().join("impaired.pcapng");
    std::fs::write(&file, reader.join().unwrap()).unwrap();
    let frames = captured(&file);
    assert!(!frames.is_empty());
    assert!(
        frames.iter().all(|(interface, _)| *interface == 1),
        "only end B's frames were forwarded and captured: {:?}",
        frames.iter().map(|(i, _)| i).collect::<Vec<_>>()
    );
}

#[test]
fn the_dialogs_measurements_go_into_the_report_file() {
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let report = lab.dir.path().join("report.json");
    let report_arg = report.to_string_lossy().into_owned();
    let (mut running, reader) = extcap_capture(
        &lab,
        &[
            "--measure",
            "--report",
            &report_arg,
            "--stats-interval",
            "0.2",
            "--host-mtu",
            "1400",
        ],
    );
    lab.until(&lab.a, &lab.b, &frame(1, 60), true);
    lab.until(&lab.b, &lab.a, &frame(2, 1500), true);
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut running.0, DEADLINE, "extcap ignored SIGTERM");
    let err = running.stderr();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(
        err, "",
        "Wireshark shows any standard error output as an error"
    );
    assert!(!reader.join().unwrap().is_empty());
    let text = std::fs::read_to_string(&report).unwrap();
    let reports: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        reports.len() >= 2,
        "one object per interval, then the final one: {text}"
    );
    let last = reports.last().unwrap();
    assert_eq!(last["links"][0]["name"], "100:2-102:1");
    assert_eq!(last["links"][0]["host_mtu"], 1400);
    assert_eq!(
        last["links"][0]["directions"].as_array().unwrap().len(),
        2,
        "{last}"
    );
}

#[test]
fn measuring_without_a_report_file_is_explained_in_wireshark() {
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let (mut running, reader) = extcap_capture(&lab, &["--measure"]);
    let status = wait_exit(&mut running.0, DEADLINE, "the extcap hung");
    let err = running.stderr();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("--measure: the measurements go into a JSON report"),
        "{err}"
    );
    // dumpcap's read of the fifo ended: no hang.
    assert!(reader.join().unwrap().is_empty());
}

#[test]
fn wireshark_reads_the_dialog_and_passes_its_options() {
    if !have(
        "tshark",
        "wireshark_reads_the_dialog_and_passes_its_options",
    ) {
        return;
    }
    let lab = Lab::new("  - [101, 1, 102, 2]\n");
    let home = lab.install();
    // Wireshark turns each option of --extcap-config into a preference of the interface
    // (what the dialog edits and remembers).
    let prefs = run(tshark(&home).args(["-G", "currentprefs"]));
    for pref in [
        "snaplen: 0",
        "expect: ",
        "expecttimeout: 60",
        "measure: false",
        "report: ",
        "statsinterval: 1",
        "hostmtu: ",
    ] {
        let line = format!("#extcap.linkscope_100_2_102_1.{pref}");
        assert!(
            prefs.lines().any(|l| l.trim_end() == line.trim_end()),
            "{line:?} in {prefs}"
        );
    }
    // Set as preferences, as the dialog sets them, they reach the capture: --expect with a
    // 1 s timeout ends tshark's capture with the verdict.
    let mut capture = tshark(&home)
        .args(["-i", "linkscope-100:2-102:1", "-a", "duration:60"])
        .args(["-o", "extcap.linkscope_100_2_102_1.expect:lldp:a>b"])
        .args(["-o", "extcap.linkscope_100_2_102_1.expecttimeout:1"])
        .arg("-w")
        .arg(lab.dir.path().join("expect.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Running)
        .unwrap();
    // (tshark's own exit status is 0 here: its capture ended, with the extcap's message.)
    wait_exit(
        &mut capture.0,
        DEADLINE,
        "the --expect timeout never ended tshark",
    );
    let err = capture.stderr();
    assert!(
        err.contains("Error by extcap pipe: expect: FAILED: never seen in")
            && err.contains("lldp a>b (vm100:eth2 > vm102:eth1) on 100:2-102:1"),
        "{err}"
    );
}
