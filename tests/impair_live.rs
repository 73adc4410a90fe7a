//! Impairment on a live relay-mode splice, measured by `linkscope bench send` against
//! `bench sink` / `bench reflect` (seeded, so every run makes the same choices), and changed
//! while it runs with `linkscope ctl`.
//!
//! Figures come from the frames themselves (bench's counts, the kernel's receive
//! timestamps in the splice's capture), never from how long the test slept.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::process::{Listener, Running, linkscope, wait_exit};

/// A splice in relay mode between a bench sender's address (A) and a sink or reflector (B).
struct Lab {
    splice: Running,
    sink: Listener,
    sender: SocketAddr,
    listen_a: SocketAddr,
    name: String,
    control: PathBuf,
    report: PathBuf,
    dir: tempfile::TempDir,
}

fn free_ports<const N: usize>() -> [u16; N] {
    let sockets: Vec<std::net::UdpSocket> = (0..N)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| sockets[i].local_addr().expect("addr").port())
}

impl Lab {
    /// Starts the sink (`reflect` or `sink`) and the splice with `args` added.
    fn start(role: &str, args: &[&str]) -> Lab {
        Lab::start_capturing(role, args, false)
    }

    /// [`Lab::start`], the splice writing what it forwards to [`Lab::capture`] when `capture`.
    fn start_capturing(role: &str, args: &[&str], capture: bool) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Listener::start(linkscope().args(["bench", role, "--listen", "127.0.0.1:0"]));
        let [a, la, lb] = free_ports::<3>();
        let sender: SocketAddr = format!("127.0.0.1:{a}").parse().unwrap();
        let listen_a: SocketAddr = format!("127.0.0.1:{la}").parse().unwrap();
        let control = dir.path().join("ctl.sock");
        let report = dir.path().join("report.json");
        let name = format!("{sender}-{}", sink.addr);
        let child = linkscope()
            .args(["splice", "-q", "--mode", "relay", "--stats-interval", "0"])
            .args(["--listen", &format!("127.0.0.1:{la},{lb}")])
            .args(["--a", &sender.to_string(), "--b", &sink.addr.to_string()])
            .args(["--seed", "7", "--control"])
            .arg(&control)
            .arg("--json")
            .arg(&report)
            .args(if capture {
                vec!["-w".into(), dir.path().join("capture.pcapng")]
            } else {
                Vec::new()
            })
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn splice");
        let lab = Lab {
            splice: Running(child),
            sink,
            sender,
            listen_a,
            name,
            control,
            report,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lab.ctl(&["show"]).status.success() {
            assert!(Instant::now() < deadline, "the splice never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
        lab
    }

    fn capture(&self) -> PathBuf {
        self.dir.path().join("capture.pcapng")
    }

    fn ctl(&self, words: &[&str]) -> Output {
        linkscope()
            .arg("ctl")
            .arg("--control")
            .arg(&self.control)
            .arg(&self.name)
            .args(words)
            .output()
            .expect("run ctl")
    }

    /// `bench send` towards the splice; the JSON result of its only size.
    fn send(&self, args: &[&str]) -> serde_json::Value {
        let out = linkscope()
            .args(["bench", "send", "--json", "--interval", "0"])
            .args(["--local", &self.sender.to_string()])
            .args(["--to", &self.listen_a.to_string()])
            .args(args)
            .output()
            .expect("bench send");
        assert!(
            out.status.success(),
            "bench send: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        json["sizes"].clone()
    }

    /// Stops the splice (SIGTERM) and returns its JSON report's first link and the bench
    /// data frames it captured (with [`Lab::start_capturing`]).
    fn stop_capturing(self) -> (serde_json::Value, Vec<(u64, u64)>) {
        let capture = self.capture();
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("capture.pcapng");
        let link = self.stop_keeping(Some((&capture, &kept)));
        (link, captured_frames(&kept))
    }

    /// Stops the splice (SIGTERM) and returns its JSON report's first link and every frame
    /// it captured.
    fn stop_capturing_raw(self) -> (serde_json::Value, Vec<Vec<u8>>) {
        let capture = self.capture();
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("capture.pcapng");
        let link = self.stop_keeping(Some((&capture, &kept)));
        (link, captured_bytes(&kept))
    }

    /// Stops the splice (SIGTERM) and returns its JSON report's first link.
    fn stop(self) -> serde_json::Value {
        self.stop_keeping(None)
    }

    fn stop_keeping(mut self, keep: Option<(&Path, &Path)>) -> serde_json::Value {
        let pid = self.splice.0.id();
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        let status = wait_exit(
            &mut self.splice.0,
            Duration::from_secs(20),
            "the splice did not stop",
        );
        let mut err = String::new();
        if let Some(mut stderr) = self.splice.0.stderr.take() {
            use std::io::Read;
            let _ = stderr.read_to_string(&mut err);
        }
        assert!(status.success(), "splice: {status}: {err}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.report).expect("report"))
                .expect("report JSON");
        if let Some((from, to)) = keep {
            std::fs::copy(from, to).expect("keep the capture");
        }
        let _ = (&self.sink, self.dir.path());
        report["links"][0].clone()
    }
}

/// The impairment counters of direction `index` (0: a>b) in a report link.
fn counters(link: &serde_json::Value, index: usize) -> serde_json::Value {
    link["directions"][index]["impairment"]["counters"].clone()
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn delay_both_ways_adds_twice_the_delay_to_the_round_trip() {
    let lab = Lab::start("reflect", &["--impair", "delay=10ms"]);
    let sizes = lab.send(&["--rate", "500", "--size", "200", "--count", "1000"]);
    let rtt = &sizes[0]["rtt_us"];
    let p50 = rtt["p50"].as_f64().unwrap_or_else(|| panic!("{sizes}"));
    assert!((20_000.0..=21_500.0).contains(&p50), "RTT p50 {p50} us");
    let link = lab.stop();
    assert!(u(&counters(&link, 0)["delayed"]) >= 1000, "{link}");
    assert!(u(&counters(&link, 1)["delayed"]) >= 1000, "{link}");
    // The splice's own added latency leaves out the 10 ms it was asked to add.
    let own = link["directions"][0]["added_latency_us"]["p50"]
        .as_f64()
        .expect("added latency");
    assert!(own < 5_000.0, "own added latency p50 {own} us");
}

#[test]
fn loss_drops_its_share_and_the_stage_counts_exactly_what_bench_lost() {
    let lab = Lab::start("sink", &["--impair", "a>b:loss=10%"]);
    let sizes = lab.send(&["--rate", "10000", "--size", "200", "--count", "20000"]);
    let lost = u(&sizes[0]["lost"]);
    assert_eq!(u(&sizes[0]["sent"]), 20_000);
    assert_eq!(u(&sizes[0]["receiver_drops"]), 0, "{sizes}");
    assert!((1800..=2200).contains(&lost), "lost {lost}");
    let link = lab.stop();
    assert_eq!(u(&counters(&link, 0)["dropped_loss"]), lost, "{link}");
    // Losses linkscope did not cause stay apart: none here.
    assert_eq!(
        u(&link["directions"][0]["dropped"]["kernel_rx_overflow"]),
        0
    );
}

#[test]
fn rate_limits_what_arrives_to_the_bucket_rate() {
    let lab = Lab::start("sink", &["--impair", "a>b:rate=50Mbit limit=200"]);
    let sizes = lab.send(&[
        "--rate",
        "70Mbit",
        "--size",
        "1470",
        "--duration",
        "3",
        "--drain",
        "0.5",
    ]);
    let bps = sizes[0]["payload_bits_per_second"].as_f64().expect("rate");
    assert!(
        (49e6..=51e6).contains(&bps),
        "received {bps} bit/s: {sizes}"
    );
    let link = lab.stop();
    assert!(u(&counters(&link, 0)["queue_drops"]) > 0, "{link}");
}

#[test]
fn mtu_drops_exactly_the_longer_frames() {
    let lab = Lab::start("sink", &["--impair", "mtu=1400"]);
    let sizes = lab.send(&["--rate", "2000", "--size", "1400,1401", "--count", "500"]);
    assert_eq!((u(&sizes[0]["size"]), u(&sizes[0]["lost"])), (1400, 0));
    assert_eq!((u(&sizes[1]["size"]), u(&sizes[1]["received"])), (1401, 0));
    let link = lab.stop();
    assert_eq!(u(&counters(&link, 0)["dropped_mtu"]), 500, "{link}");
}

#[test]
fn duplicates_are_what_bench_counts() {
    let lab = Lab::start("sink", &["--impair", "a>b:duplicate=5%"]);
    let sizes = lab.send(&["--rate", "5000", "--size", "200", "--count", "10000"]);
    let duplicates = u(&sizes[0]["duplicates"]);
    assert!((350..=650).contains(&duplicates), "{sizes}");
    assert_eq!(u(&sizes[0]["lost"]), 0);
    let link = lab.stop();
    assert_eq!(u(&counters(&link, 0)["duplicated"]), duplicates, "{link}");
}

#[test]
fn reordered_frames_are_what_bench_counts_out_of_order() {
    let lab = Lab::start("sink", &["--impair", "a>b:delay=5ms reorder=2% gap=3"]);
    let sizes = lab.send(&["--rate", "2000", "--size", "200", "--count", "6000"]);
    let out_of_order = u(&sizes[0]["out_of_order"]);
    assert!(out_of_order > 100, "{sizes}");
    assert_eq!(u(&sizes[0]["lost"]), 0);
    let link = lab.stop();
    assert_eq!(u(&counters(&link, 0)["reordered"]), out_of_order, "{link}");
}

/// Every frame end A sent (interface 0) in a pcapng capture of one link, in order.
fn captured_bytes(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("capture");
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).expect("pcapng");
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(packet) = block.expect("a block").0
            && packet.interface_id == 0
        {
            out.push(packet.data.to_vec());
        }
    }
    out
}

/// Reads the sequence numbers and receive timestamps (ns) of the bench data frames in a
/// pcapng capture (one frame per block: the splice's capture of what it forwarded).
fn captured_frames(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).expect("capture");
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).expect("pcapng");
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(packet) = block.expect("a block").0 {
            let data = &packet.data;
            // Bench data frames: EtherType 0x88B5, kind 1 (data); sequence at 24..32.
            if data.len() >= 48 && data[12..14] == [0x88, 0xB5] && data[15] == 1 {
                let seq = u64::from_be_bytes(data[24..32].try_into().unwrap());
                out.push((seq, packet.timestamp.as_nanos() as u64));
            }
        }
    }
    out
}

#[test]
fn gemodel_bursts_last_one_over_r_on_average() {
    let lab = Lab::start_capturing("sink", &["--impair", "a>b:gemodel=2%,10%"], true);
    let sizes = lab.send(&["--rate", "10000", "--size", "100", "--count", "30000"]);
    let (_, frames) = lab.stop_capturing();
    assert_eq!(frames.len() as u64, u(&sizes[0]["received"]));
    // Each gap in the sequence numbers is one burst of losses.
    let (mut bursts, mut lost) = (0u64, 0u64);
    for pair in frames.windows(2) {
        let gap = pair[1].0 - pair[0].0 - 1;
        if gap > 0 {
            bursts += 1;
            lost += gap;
        }
    }
    let mean = lost as f64 / bursts as f64;
    assert!(bursts > 30, "{bursts} bursts");
    assert!(
        (9.0..=11.0).contains(&mean),
        "mean burst {mean} frames, 1/r = 10"
    );
}

#[test]
fn flap_edges_fall_where_they_were_asked_for() {
    let lab = Lab::start_capturing("sink", &[], true);
    let ctl = lab.ctl(&["flap", "1,1,2"]);
    assert!(ctl.status.success(), "{ctl:?}");
    let sizes = lab.send(&["--rate", "1000", "--size", "100", "--duration", "4.5"]);
    let (link, frames) = lab.stop_capturing();
    assert!(u(&sizes[0]["lost"]) >= 900, "{sizes}");
    // Two outages; each gap between the last frame before and the first after is the down
    // time (1 s) plus at most a frame interval.
    let gaps: Vec<f64> = frames
        .windows(2)
        .map(|p| (p[1].1 - p[0].1) as f64 / 1e6)
        .filter(|ms| *ms > 100.0)
        .collect();
    assert!(
        gaps.len() == 2 || gaps.len() == 1,
        "outages {gaps:?} (the first may start before the first frame)"
    );
    for gap in &gaps {
        assert!(
            (950.0..=1050.0).contains(gap),
            "outage {gap} ms in {gaps:?}"
        );
    }
    assert!(u(&counters(&link, 0)["dropped_down"]) > 900, "{link}");
}

#[test]
fn ctl_changes_a_running_link_and_shows_it() {
    let lab = Lab::start("sink", &[]);
    // Data frames of 200 bytes are dropped, bench's small report frames pass.
    let out = lab.ctl(&["impair", "a>b:mtu=150"]);
    assert!(out.status.success(), "{out:?}");
    let sizes = lab.send(&["--rate", "1000", "--size", "200", "--count", "200"]);
    assert_eq!(u(&sizes[0]["received"]), 0, "{sizes}");
    let show = lab.ctl(&["show", "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(state["directions"][0]["spec"], "mtu=150");
    assert_eq!(state["directions"][0]["counters"]["dropped_mtu"], 200);
    assert_eq!(state["directions"][1]["spec"], "");
    // Down: nothing passes, not even bench's report request.
    assert!(lab.ctl(&["down"]).status.success());
    let failed = linkscope()
        .args([
            "bench",
            "send",
            "--interval",
            "0",
            "--count",
            "100",
            "--rate",
            "1000",
        ])
        .args(["--local", &lab.sender.to_string()])
        .args(["--to", &lab.listen_a.to_string()])
        .output()
        .unwrap();
    assert!(
        !failed.status.success(),
        "bench got a report through a pulled cable"
    );
    let text = String::from_utf8(lab.ctl(&["show"]).stdout).unwrap();
    assert!(text.contains("a>b mtu=150 [down]: dropped "), "{text}");
    let show = lab.ctl(&["show", "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let down = u(&state["directions"][0]["counters"]["dropped_down"]);
    assert!(down > 0, "{state}");
    assert!(lab.ctl(&["clear"]).status.success());
    let sizes = lab.send(&["--rate", "1000", "--size", "200", "--count", "100"]);
    assert_eq!(u(&sizes[0]["lost"]), 0, "{sizes}");
    let text = String::from_utf8(lab.ctl(&["show"]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "a>b -: dropped {} (loss 0, down {down}, mtu 200",
            200 + down
        )),
        "{text}"
    );
    let _ = lab.stop();
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    let out = linkscope()
        .args(["splice", "--a", "127.0.0.1:1", "--b", "127.0.0.1:2"])
        .args(["--impair", "delay=10ms colour=red"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--impair: colour: unknown key"), "{err}");

    let lab = Lab::start("sink", &[]);
    let out = lab.ctl(&["impair", "loss=5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loss: "),
        "{out:?}"
    );
    let out = linkscope()
        .args(["ctl", "--control"])
        .arg(&lab.control)
        .args(["100:1-102:1", "down"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown link \"100:1-102:1\""),
        "{out:?}"
    );
    let nowhere = lab.dir.path().join("none.sock");
    let out = linkscope()
        .args(["ctl", "--control"])
        .arg(&nowhere)
        .args([&lab.name, "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // No --control and no running splice in the default directory.
    let empty = tempfile::tempdir().unwrap();
    let out = linkscope()
        .env("XDG_RUNTIME_DIR", empty.path())
        .args(["ctl", &lab.name, "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running splice or relay"),
        "{out:?}"
    );
    let _ = lab.stop();
}

#[test]
fn the_default_control_socket_is_found_by_link_name_and_is_owner_only() {
    let runtime = tempfile::tempdir().unwrap();
    let sink = Listener::start(linkscope().args(["bench", "sink", "--listen", "127.0.0.1:0"]));
    let [a, la, lb] = free_ports::<3>();
    let name = format!("127.0.0.1:{a}-{}", sink.addr);
    let splice = Running(
        linkscope()
            .env("XDG_RUNTIME_DIR", runtime.path())
            .args(["splice", "-q", "--mode", "relay", "--no-measure"])
            .args(["--listen", &format!("127.0.0.1:{la},{lb}")])
            .args([
                "--a",
                &format!("127.0.0.1:{a}"),
                "--b",
                &sink.addr.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = runtime
        .path()
        .join("linkscope")
        .join(format!("{}.sock", splice.0.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let ctl = || {
        linkscope()
            .env("XDG_RUNTIME_DIR", runtime.path())
            .args(["ctl", &name, "show"])
            .output()
            .unwrap()
    };
    while !ctl().status.success() {
        assert!(Instant::now() < deadline, "no control socket at {socket:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&socket).expect("the default socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // A socket another user owns is refused before connecting.
    if meta.uid() == 0 {
        std::process::Command::new("chown")
            .args(["65534"])
            .arg(&socket)
            .status()
            .unwrap();
        let out = ctl();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("refused: the socket belongs to uid 65534"),
            "{out:?}"
        );
        // And a peer of another user is refused by the server (SO_PEERCRED), even when the
        // file's mode would let it connect.
        for (path, mode) in [
            (runtime.path().to_path_buf(), "755"),
            (socket.parent().unwrap().to_path_buf(), "755"),
            (socket.clone(), "666"),
        ] {
            Command::new("chmod").arg(mode).arg(&path).status().unwrap();
        }
        if Path::new("/usr/bin/setpriv").exists() {
            let out = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(assert_cmd::cargo::cargo_bin!("linkscope"))
                .args(["ctl", "--control"])
                .arg(&socket)
                .args([&name, "down"])
                .output()
                .unwrap();
            assert_ne!(out.status.code(), Some(0), "{out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("refused"), "{err}");
        } else {
            println!("setpriv missing: the server-side peer check was not exercised");
        }
    } else {
        println!("not root: cannot give the socket to another user; owner checks skipped");
    }
}

/// The UDP payloads towards `port` in a classic pcap that tcpdump wrote on loopback.
fn udp_payloads_to(path: &Path, port: u16) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("tcpdump's capture");
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).expect("pcap");
    let mut out = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a packet");
        if let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(packet.data())
            && let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport
            && udp.destination_port() == port
        {
            out.push(udp.payload().to_vec());
        }
    }
    out
}

#[test]
fn corrupted_frames_differ_in_one_bit_and_are_exactly_those_counted() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("LINKSCOPE_REQUIRE_LAB").is_none(),
            "tcpdump is missing"
        );
        println!("skipped: tcpdump is not installed");
        return;
    }
    let lab = Lab::start_capturing("sink", &["--impair", "a>b:corrupt=5%"], true);
    // What the sender sent, captured on loopback before the splice.
    let before = lab.dir.path().join("before.pcap");
    let mut tcpdump = Running(
        Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-U",
                "-n",
                "--immediate-mode",
                "-B",
                "65536",
                "-w",
            ])
            .arg(&before)
            .arg(format!("udp and dst port {}", lab.listen_a.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump"),
    );
    {
        use std::io::BufRead;
        let stderr = tcpdump.0.stderr.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(stderr)
            .read_line(&mut line)
            .expect("tcpdump starts");
        assert!(line.contains("listening"), "{line}");
    }
    // bench itself cannot tell a corrupted frame (no checksum; a flipped sequence bit even
    // shows as loss or reordering): the two captures are the measure.
    lab.send(&[
        "--no-gso", "--rate", "1000", "--size", "200", "--count", "4000",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &tcpdump.0.id().to_string()])
        .status()
        .unwrap();
    let _ = wait_exit(
        &mut tcpdump.0,
        Duration::from_secs(10),
        "tcpdump did not stop",
    );
    let sent = udp_payloads_to(&before, lab.listen_a.port());
    let (link, captured) = lab.stop_capturing_raw();
    let after = captured;
    // Every frame A sent, bench's report requests included (the stage may corrupt those too).
    let data = sent.iter().filter(|f| f.len() == 200).count();
    assert_eq!(data, 4000, "tcpdump missed frames");
    assert_eq!(
        after.len(),
        sent.len(),
        "captured {}: {}",
        after.len(),
        link["directions"][0]
    );
    let mut changed = 0u64;
    for (a, b) in sent.iter().zip(&after) {
        let bits: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
        assert!(bits <= 1, "a frame with {bits} bits flipped");
        changed += u64::from(bits);
    }
    assert!(
        (120..=280).contains(&changed),
        "{changed} corrupted of 4000"
    );
    assert_eq!(u(&counters(&link, 0)["corrupted"]), changed, "{link}");
}
