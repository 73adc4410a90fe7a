//! The splice's measurements against real VMs: fragmentation on a cross-host link
//! with a 1500-byte path, checked against what tcpdump sees on the wire and the kernel's own
//! counters, and round-trip times checked against what the guests' ping prints.
//!
//! Its own test binary, run by cargo after or before tests/lab_vm.rs, never alongside, so
//! the lab's two-VMs-at-once limit ([`lab::vm::MAX_VMS`]) holds across both binaries. Each
//! test checks its prerequisites and skips with a reason (fails under
//! LINKSCOPE_REQUIRE_LAB=1).

// The lab's helpers serve tests/lab_vm.rs too; this binary uses a part of them.
mod lab;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::capture::{self, Tcpdump};
use lab::plan::Netdev;
use lab::prereq::{self, Need};
use lab::scenario;

const PINGS: u32 = 5;

/// A running `linkscope splice`, stopped by SIGTERM (or killed on drop).
struct Splice {
    child: Child,
    json: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Splice {
    /// Starts a quiet splice of `a`–`b` (in `netns` when given) writing its report to `dir`,
    /// and waits until it has a socket bound at `here`, an end on its host
    /// (`/proc/PID/net/udp` is the splice's namespace's table).
    fn start(
        netns: Option<&lab::netns::Netns>,
        [a, b]: [SocketAddr; 2],
        here: SocketAddr,
        extra: &[&str],
        dir: &Path,
        tag: &str,
    ) -> Splice {
        let json = dir.join(format!("{tag}.json"));
        let stderr = dir.join(format!("{tag}.stderr"));
        let bin = assert_cmd::cargo::cargo_bin!("linkscope");
        let mut cmd = match netns {
            Some(ns) => ns.command(bin),
            None => Command::new(bin),
        };
        cmd.args(["splice", "-q", "--a", &a.to_string(), "--b", &b.to_string()])
            .args(["--stats-interval", "0", "--json"])
            .arg(&json)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let splice = Splice {
            child: cmd.spawn().unwrap(),
            json,
            stderr,
        };
        let port = format!(":{:04X}", here.port());
        let table = format!("/proc/{}/net/udp", splice.child.id());
        let bound = |text: String| {
            text.lines().any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|s| s.ends_with(&port))
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&table).is_ok_and(bound) {
            assert!(
                Instant::now() < deadline,
                "the splice never bound {here}: {}",
                std::fs::read_to_string(&splice.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        splice
    }

    /// Stops the splice and returns its JSON report.
    fn stop(mut self) -> serde_json::Value {
        lab::signal(self.child.id(), "TERM").unwrap();
        let status = self.child.wait().unwrap();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "{status}: {stderr}");
        eprintln!("{stderr}");
        let text = std::fs::read_to_string(&self.json).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Splice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

#[test]
fn a_splice_on_each_host_counts_the_fragmented_frames_and_advises_host_mtu() {
    let test = "a_splice_on_each_host_counts_the_fragmented_frames_and_advises_host_mtu";
    let needs = [
        Need::Qemu,
        Need::Root,
        Need::Iproute,
        Need::Tcpdump,
        Need::Tshark,
    ];
    let Some(image) = prereq::vm_image(test, &needs) else {
        return;
    };
    let lab = scenario::CrossHost::new(1500, Netdev::Socket).unwrap();
    let ends = [0, 1].map(|i| addr(scenario::HOST_IPS[i], lab.ports[i]));
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("veth.pcap");
    let tcpdump = Tcpdump::start(Some(&lab.hosts[0]), "veth0", "ip", &pcap).unwrap();
    // On a cross-host link a splice sees the direction arriving at its host: one per host.
    let extra = ["--host-mtu", "4000"];
    let splices = [0, 1].map(|host| {
        Splice::start(
            Some(&lab.hosts[host]),
            ends,
            ends[host],
            &extra,
            dir.path(),
            &format!("host{host}"),
        )
    });
    let seen = scenario::fragmenting_pair(&image, &lab, PINGS).unwrap();
    let [in_host0, in_host1] = splices.map(Splice::stop);
    tcpdump.stop().unwrap();
    for result in &seen.results {
        scenario::check_no_loss(result, PINGS).unwrap();
    }

    // What crossed the veth towards each host in fragments: the first fragment of each
    // tunnel datagram larger than the 1500-byte path.
    let decode = lab.ports.map(capture::decode_udp_as_eth);
    let first_fragments = |to: &str| {
        capture::tshark_fields(
            &pcap,
            &decode,
            &format!("ip.dst == {to} && ip.flags.mf == 1 && ip.frag_offset == 0"),
            &["frame.number"],
        )
        .unwrap()
        .len() as u64
    };
    for (report, host, label, to) in [
        (&in_host1, 1, "a>b", scenario::HOST_IPS[1]),
        (&in_host0, 0, "b>a", scenario::HOST_IPS[0]),
    ] {
        let link = &report["links"][0];
        assert_eq!(link["path_mtu"], 1500, "{link:#}");
        assert_eq!(link["host_mtu"], 4000, "{link:#}");
        let directions = link["directions"].as_array().unwrap();
        assert_eq!(
            directions.len(),
            1,
            "host {host} sees one direction: {link:#}"
        );
        let mtu = &directions[0]["mtu"];
        let fragmented = mtu["fragmented_frames"].as_u64().unwrap();
        let large = first_fragments(to);
        // Each guest's counted pings and its replies to the other's, plus warm-up pings.
        assert!(
            large >= u64::from(2 * PINGS),
            "{large} large datagrams to {to}"
        );
        assert_eq!(fragmented, large, "host {host}: {link:#}");
        assert_eq!(
            mtu["ip_fragments"],
            3 * fragmented,
            "3042-byte frames: 3 fragments"
        );
        let advice = link["advice"].as_array().unwrap();
        let fix = advice
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| a.contains(label))
            .find_map(|a| a.split("set host_mtu ≤ ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok());
        assert!(fix.is_some_and(|n| n <= 1458), "host {host}: {advice:?}");
        // The kernel of the receiving host reassembled them; both hosts fragmented on output.
        let kernel = &report["host"];
        for counter in [
            "ip_reasm_reqds",
            "ip_reasm_oks",
            "ip_frag_oks",
            "ip_frag_creates",
        ] {
            assert!(
                kernel[counter].as_u64().unwrap() > 0,
                "host {host} {counter}: {kernel}"
            );
        }
        assert!(
            kernel["ip_reasm_oks"].as_u64().unwrap() >= fragmented,
            "{kernel}"
        );
    }
}

/// `min/avg/max` of a ping result, in milliseconds.
fn ping_rtt(result: &std::collections::HashMap<String, String>) -> [f64; 3] {
    let text = result.get("rtt").expect("an rtt field");
    let values: Vec<f64> = text.split('/').map(|v| v.parse().unwrap()).collect();
    [values[0], values[1], values[2]]
}

#[test]
fn a_splice_between_two_vms_measures_round_trips_within_what_ping_prints() {
    let test = "a_splice_between_two_vms_measures_round_trips_within_what_ping_prints";
    let Some(image) = prereq::vm_image(test, &[Need::Qemu]) else {
        return;
    };
    let ports = lab::free_udp_ports::<2>();
    let args = scenario::loopback_args(Netdev::Socket, ports).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ends = ports.map(|p| addr("127.0.0.1", p));
    let splice = Splice::start(None, ends, ends[1], &[], dir.path(), "loopback");
    let guests = scenario::ping_guests(None, 56, 10);
    let mut vms = scenario::boot(&image, &args, guests, [None, None]).unwrap();
    let results = scenario::results(&mut vms).unwrap();
    drop(vms);
    let report = splice.stop();
    for result in &results {
        scenario::check_no_loss(result, 10).unwrap();
    }
    let rtts: Vec<[f64; 3]> = results.iter().map(ping_rtt).collect();
    let high = rtts.iter().map(|r| r[2]).fold(0.0, f64::max);
    let echo = &report["links"][0]["rtt_ms"]["icmp_echo"];
    // Both guests' counted pings, and their warm-up pings, which ping does not report.
    assert!(echo["count"].as_u64().unwrap() >= 20, "{echo}");
    // The splice sees each exchange from the middle of the path: its round trip leaves out
    // the pinging guest's own (emulated) stack, so it is at most what ping measures and may
    // be below ping's minimum. It also counts the guests' warm-up pings, which ping leaves
    // out of its summary and which can take close to a second (the first waits for ARP);
    // they are a few of the samples, so the median stays within ping's maximum while the
    // upper percentiles need not.
    let p50 = echo["p50"].as_f64().unwrap();
    assert!(
        0.0 < p50 && p50 <= high,
        "p50 {p50} ms not within (0, ping's max {high}] ms ({rtts:?}): {echo}"
    );
}
