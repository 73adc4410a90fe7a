//! `linkscope serve` as a process: emulated QEMU ends on loopback, a real Prometheus scraping
//! `/metrics`, a real headless Chromium on the page, and the API's refusals.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use linkscope::wire::lldp::{self, PortIdSubtype};
use serde_json::{Value, json};
use support::process::linkscope;

/// One link's two emulated ends and the MACs the plan gives them.
struct EndPair {
    name: String,
    a: UdpSocket,
    b: UdpSocket,
    mac_a: [u8; 6],
    mac_b: [u8; 6],
}

fn mac(text: &str) -> [u8; 6] {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// `links` links between VMs 100+2i (eth1) and 101+2i (eth1), their ends bound on loopback
/// ports the kernel picked, written into a mapping with explicit ports. Returns the mapping
/// file and the ends (with the MACs `linkscope links` says the plan gives them).
fn lab(dir: &Path, links: usize) -> (std::path::PathBuf, Vec<EndPair>) {
    let mut text = String::from("links:\n");
    let mut sockets = Vec::new();
    for i in 0..links {
        let a = support::tunnel::end(Some(Duration::from_millis(50)));
        let b = support::tunnel::end(Some(Duration::from_millis(50)));
        let (vm_a, vm_b) = (100 + 2 * i, 101 + 2 * i);
        text.push_str(&format!(
            "  - [{vm_a}, 1, {vm_b}, 1, {{port_a: {}, port_b: {}}}]\n",
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port()
        ));
        sockets.push((format!("{vm_a}:1-{vm_b}:1"), a, b));
    }
    let mapping = dir.join("mapping.yaml");
    std::fs::write(&mapping, text).unwrap();
    let out = linkscope()
        .arg("links")
        .arg(&mapping)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned: Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned = planned["links"].as_array().expect("a JSON list of links");
    let ends = sockets
        .into_iter()
        .map(|(name, a, b)| {
            let link = planned
                .iter()
                .find(|l| l["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} planned"));
            // The plan binds each end where we bound it.
            assert_eq!(
                link["a"]["local"].as_str().unwrap(),
                a.local_addr().unwrap().to_string()
            );
            EndPair {
                mac_a: mac(link["a"]["mac"].as_str().unwrap()),
                mac_b: mac(link["b"]["mac"].as_str().unwrap()),
                name,
                a,
                b,
            }
        })
        .collect();
    (mapping, ends)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn data_frame(from: [u8; 6], to: [u8; 6], seq: u64) -> Vec<u8> {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.resize(64, 0);
    ethernet(to, from, 0x88b5, &payload)
}

/// An LLDPDU whose port ID is the MAC `port` (lldpd's default) and chassis ID `chassis`.
fn lldp_frame(chassis: [u8; 6], port: [u8; 6]) -> Vec<u8> {
    let repr = lldp::Repr::station(
        chassis,
        (PortIdSubtype::MAC_ADDRESS, &port),
        120,
        Some(b"emulated"),
    );
    let mut payload = Vec::new();
    repr.emit(&mut payload).unwrap();
    ethernet([0x01, 0x80, 0xc2, 0, 0, 0x0e], port, 0x88cc, &payload)
}

/// A running `linkscope serve` and its URL; killed (SIGTERM first) on drop.
struct Serve {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    fn start(mapping: &Path, extra: &[&str]) -> Serve {
        let mut child = linkscope()
            .arg("serve")
            .arg(mapping)
            .args(["--listen", "127.0.0.1:0", "--interval", "0.2"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_owned();
        let stderr = Arc::new(Mutex::new(first));
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Serve { child, url, stderr }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut response = Self::agent()
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    fn links(&self) -> Value {
        let (status, text) = self.get("/api/links");
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until every link of the node is spliced.
    fn wait_spliced(&self, count: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let view = self.links();
            let spliced = view["links"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["state"] == "spliced")
                .count();
            if spliced == count {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "{spliced} of {count} links spliced: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` frames each way on every link (A to B's address, B to A's), and reads them
/// at the other end; returns what each end received.
fn exchange(ends: &[EndPair], count: u64) -> Vec<(u64, u64)> {
    let mut buf = [0u8; 2048];
    let mut got = vec![(0, 0); ends.len()];
    for seq in 0..count {
        for pair in ends {
            let (la, lb) = (pair.a.local_addr().unwrap(), pair.b.local_addr().unwrap());
            pair.a
                .send_to(&data_frame(pair.mac_a, pair.mac_b, seq), lb)
                .unwrap();
            pair.b
                .send_to(&data_frame(pair.mac_b, pair.mac_a, seq), la)
                .unwrap();
        }
        for (i, pair) in ends.iter().enumerate() {
            while pair.b.recv(&mut buf).is_ok() {
                got[i].0 += 1;
                pair.b.set_nonblocking(true).unwrap();
            }
            pair.b.set_nonblocking(false).unwrap();
            while pair.a.recv(&mut buf).is_ok() {
                got[i].1 += 1;
                pair.a.set_nonblocking(true).unwrap();
            }
            pair.a.set_nonblocking(false).unwrap();
        }
    }
    got
}

fn prerequisites(test: &str, tools: &[(&str, &str)]) -> bool {
    for (tool, package) in tools {
        let runs = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !runs {
            let reason =
                format!("{test}: skipped: `{tool}` is not installed (Debian package {package})");
            assert!(
                std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
                "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
            );
            eprintln!("{reason}");
            return false;
        }
    }
    true
}

#[test]
fn prometheus_scrapes_frame_counters_equal_to_what_the_ends_sent() {
    if !prerequisites("prometheus", &[("prometheus", "prometheus")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mapping, ends) = lab(dir.path(), 3);
    let serve = Serve::start(&mapping, &[]);
    serve.wait_spliced(3);
    let per_link = [40u64, 25, 10];
    for (pair, &count) in ends.iter().zip(&per_link) {
        exchange(std::slice::from_ref(pair), count);
    }
    let prometheus = support::prometheus::Prometheus::start(&[serve
        .url
        .trim_start_matches("http://")
        .to_owned()]);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let series = prometheus.query("linkscope_frames_total");
        let mut seen = std::collections::BTreeMap::new();
        for (labels, value) in &series {
            let key = (
                labels["link"].as_str().unwrap_or("").to_owned(),
                labels["direction"].as_str().unwrap_or("").to_owned(),
            );
            seen.insert(key, *value);
        }
        let expected: std::collections::BTreeMap<(String, String), f64> = ends
            .iter()
            .zip(&per_link)
            .flat_map(|(pair, &count)| {
                ["a>b", "b>a"].map(|d| ((pair.name.clone(), d.to_owned()), count as f64))
            })
            .collect();
        if seen == expected {
            // The labels join with node metrics: vmid and nic of both ends.
            let (labels, _) = &series[0];
            for key in ["node", "vmid", "nic", "peer_vmid", "peer_nic"] {
                assert!(labels[key].is_string(), "{key} in {labels}");
            }
            break;
        }
        if Instant::now() + Duration::from_secs(1) > deadline {
            eprintln!("{}", serve.get("/metrics").1);
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {seen:?}, expected {expected:?} (targets up: {})",
            prometheus.targets_up()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_grafana_dashboard_asks_only_for_metrics_serve_exposes() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping, _ends) = lab(dir.path(), 1);
    let serve = Serve::start(&mapping, &[]);
    serve.wait_spliced(1);
    let (status, text) = serve.get("/metrics");
    assert_eq!(status, 200);
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-linkscope.json"),
    )
    .unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("linkscope_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = name.strip_suffix("_bucket").unwrap_or(&name);
                assert!(
                    families.contains(family),
                    "{name}: not in /metrics ({families:?})"
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 10);
}

#[test]
fn a_link_is_spliced_when_its_vms_come_and_handed_back_when_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping, ends) = lab(dir.path(), 2);
    // The second link's VMs are not running yet.
    let (name, a_addr, b_addr) = {
        let pair = &ends[1];
        (
            pair.name.clone(),
            pair.a.local_addr().unwrap(),
            pair.b.local_addr().unwrap(),
        )
    };
    let mut ends = ends;
    let late = ends.pop().unwrap();
    drop(late);
    let serve = Serve::start(&mapping, &[]);
    let view = serve.wait_spliced(1);
    let waiting = view["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name.as_str())
        .unwrap();
    assert_eq!(waiting["state"], "waiting");
    // The VMs start: the link is spliced and carries frames.
    let a = linkscope::net::tunnel::endpoint(a_addr).unwrap();
    let b = linkscope::net::tunnel::endpoint(b_addr).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    serve.wait_spliced(2);
    let mut buf = [0; 2048];
    a.send_to(&[0xaa; 60], b_addr).unwrap();
    let (_, from) = b.recv_from(&mut buf).unwrap();
    assert_ne!(from, a_addr, "the frame crossed the splice");
    // They stop: the tunnel is handed back.
    drop((a, b));
    serve.wait_spliced(1);
    assert!(
        serve
            .stderr
            .lock()
            .unwrap()
            .contains(&format!("handed back {name}")),
        "{}",
        serve.stderr.lock().unwrap()
    );
}

#[test]
fn bad_requests_are_refused_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping, ends) = lab(dir.path(), 1);
    // Off loopback without a token: refused before anything starts.
    let out = linkscope()
        .arg("serve")
        .arg(&mapping)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));

    let serve = Serve::start(&mapping, &[]);
    serve.wait_spliced(1);
    let (status, text) = serve.get("/api/links/999:1-998:1");
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    let agent = Serve::agent();
    let post = |path: &str, content_type: &str, body: &str| {
        let mut r = agent
            .post(format!("{}{path}", serve.url))
            .header("Content-Type", content_type)
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let link = format!("/api/links/{}", ends[0].name);
    assert_eq!(
        post(&format!("{link}/down"), "application/json", "{not json").0,
        400
    );
    assert_eq!(post(&format!("{link}/down"), "text/plain", "{}").0, 415);
    assert_eq!(
        post(&format!("{link}/explode"), "application/json", "{}").0,
        400
    );
    assert_eq!(
        post("/api/links/999:1-998:1/down", "application/json", "{}").0,
        404
    );
    let (status, text) = agent
        .post(format!("{}{link}/down", serve.url))
        .header("Content-Type", "application/json")
        .header("Origin", "http://evil.example")
        .send("{}")
        .map(|mut r| (r.status().as_u16(), r.body_mut().read_to_string().unwrap()))
        .unwrap();
    assert_eq!(status, 403, "{text}");
    drop(serve);

    // With a token, every request must carry it.
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let serve = Serve::start(&mapping, &["--token", token.to_str().unwrap()]);
    let (status, _) = serve.get("/api/links");
    assert_eq!(status, 401);
    let (status, _) = serve.get("/metrics");
    assert_eq!(status, 401);
    let mut ok = Serve::agent()
        .get(format!("{}/api/links", serve.url))
        .header("Authorization", "Bearer s3cret-token")
        .call()
        .unwrap();
    assert_eq!(
        ok.status(),
        200,
        "{}",
        ok.body_mut().read_to_string().unwrap()
    );
    // A token file others may read is refused.
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = linkscope()
        .arg("serve")
        .arg(&mapping)
        .args(["--token", token.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Reads a live capture's frames (enhanced packet blocks) from a pcapng byte stream.
fn count_epbs(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if len < 12 || at + len > bytes.len() {
            break;
        }
        if kind == 6 {
            count += 1;
        }
        at += len;
    }
    count
}

#[test]
fn a_capture_client_that_stops_reading_costs_only_its_own_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping, ends) = lab(dir.path(), 1);
    let serve = Serve::start(&mapping, &[]);
    serve.wait_spliced(1);
    let path = |seconds: u32| format!("/api/links/{}/pcapng?duration={seconds}", ends[0].name);
    // A client that never reads (its socket buffers fill, then its queue), and one that
    // reads everything.
    let stalled = std::net::TcpStream::connect(serve.url.trim_start_matches("http://")).unwrap();
    std::io::Write::write_all(
        &mut &stalled,
        format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", path(30)).as_bytes(),
    )
    .unwrap();
    let url = format!("{}{}", serve.url, path(6));
    let reader = std::thread::spawn(move || {
        let mut response = Serve::agent()
            .get(url)
            .config()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .call()
            .unwrap();
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    });
    std::thread::sleep(Duration::from_millis(500));
    // 8,000 frames of 1,400 bytes each way, about 23 MB of capture: far more than the
    // stalled client's socket buffers and queue hold. Paced, so the copy consumer keeps up.
    let frames = 8_000u64;
    let (pair, mut buf) = (&ends[0], [0u8; 2048]);
    let (la, lb) = (pair.a.local_addr().unwrap(), pair.b.local_addr().unwrap());
    let mut got = (0, 0);
    for seq in 0..frames {
        let mut frame = data_frame(pair.mac_a, pair.mac_b, seq);
        frame.resize(1400, 0);
        pair.a.send_to(&frame, lb).unwrap();
        frame[..6].copy_from_slice(&pair.mac_a);
        frame[6..12].copy_from_slice(&pair.mac_b);
        pair.b.send_to(&frame, la).unwrap();
        if seq % 16 == 15 {
            for (socket, count) in [(&pair.b, &mut got.0), (&pair.a, &mut got.1)] {
                socket.set_nonblocking(true).unwrap();
                while socket.recv(&mut buf).is_ok() {
                    *count += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got != (frames, frames) && Instant::now() < deadline {
        for (socket, count) in [(&pair.b, &mut got.0), (&pair.a, &mut got.1)] {
            socket.set_nonblocking(true).unwrap();
            while socket.recv(&mut buf).is_ok() {
                *count += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(got, (frames, frames), "forwarding lost frames");
    // The stalled client lost frames, counted for it alone, while the splice forwarded all.
    std::thread::sleep(Duration::from_millis(600));
    let view = serve.links();
    let link = &view["links"][0];
    let captures = link["captures"].as_array().unwrap();
    assert!(
        captures.iter().any(|c| c["dropped"].as_u64().unwrap() > 0),
        "no client lost frames: {captures:?}"
    );
    let copy_dropped: u64 = ["a>b", "b>a"]
        .iter()
        .map(|d| link["directions"][d]["copy_dropped"].as_u64().unwrap())
        .sum();
    let bytes = reader.join().unwrap();
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section");
    assert_eq!(
        count_epbs(&bytes) as u64,
        2 * frames - copy_dropped,
        "the reading client got every frame that was copied"
    );
    drop(stalled);
}

#[test]
fn the_page_shows_every_link_live_flags_a_stranger_and_cuts_and_restores() {
    if !prerequisites(
        "serve page",
        &[
            ("chromium", "chromium"),
            ("chromedriver", "chromium-driver"),
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mapping, ends) = lab(dir.path(), 10);
    let serve = Serve::start(&mapping, &[]);
    serve.wait_spliced(10);
    // Every end sends 50 frames/s; link 3's end A announces an LLDP identity the plan does
    // not know; the ends count what they receive.
    let stop = Arc::new(AtomicBool::new(false));
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..ends.len()).map(|_| AtomicU64::new(0)).collect());
    let stranger = ends[3].name.clone();
    let cut = ends[5].name.clone();
    let traffic: JoinHandle<Vec<EndPair>> = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut seq = 0;
            for pair in &ends {
                pair.a.set_nonblocking(true).unwrap();
                pair.b.set_nonblocking(true).unwrap();
            }
            while !stop.load(Ordering::SeqCst) {
                for (i, pair) in ends.iter().enumerate() {
                    let (la, lb) = (pair.a.local_addr().unwrap(), pair.b.local_addr().unwrap());
                    let _ = pair.a.send_to(&data_frame(pair.mac_a, pair.mac_b, seq), lb);
                    let _ = pair.b.send_to(&data_frame(pair.mac_b, pair.mac_a, seq), la);
                    if i == 3 && seq % 10 == 0 {
                        let _ = pair.a.send_to(
                            &lldp_frame([2, 0, 0, 0, 0, 0x99], [2, 0, 0, 0, 0, 0x98]),
                            lb,
                        );
                    }
                    while pair.b.recv(&mut buf).is_ok() {
                        received[i].fetch_add(1, Ordering::SeqCst);
                    }
                    while pair.a.recv(&mut buf).is_ok() {
                        received[i].fetch_add(1, Ordering::SeqCst);
                    }
                }
                seq += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            ends
        })
    };
    let browser = support::browser::Browser::start(1400, 900);
    browser.open(&serve.url);
    let long = Duration::from_secs(30);
    browser.wait_for(
        "ten links in the table",
        long,
        "return document.querySelectorAll('#links tr.link').length === 10",
        json!([]),
    );
    browser.wait_for(
        "ten edges in the topology",
        long,
        "return document.querySelectorAll('line.edge').length === 10",
        json!([]),
    );
    // Rates change while traffic flows: the page gets new figures, not one frozen set.
    let rates = "return Array.from(document.querySelectorAll('#links td.rate-ab')).map(c => c.textContent).join('|')";
    let first = browser.wait_for(
        "a non-zero rate",
        long,
        &format!("const r = (function() {{ {rates} }})(); return /[1-9]/.test(r) ? r : null"),
        json!([]),
    );
    let updates = browser.eval("return Number(document.body.dataset.updates)", json!([]));
    browser.wait_for(
        "later updates",
        long,
        "return Number(document.body.dataset.updates) >= arguments[0] + 3",
        json!([updates]),
    );
    let later = browser.eval(rates, json!([]));
    assert!(later.as_str().unwrap().contains("bit/s") && first.is_string());
    // The stranger is flagged, in the table and on the drawing.
    browser.wait_for(
        "the LLDP mismatch flag",
        long,
        "return document.querySelector(`#links tr[data-link=\"${arguments[0]}\"] td.lldp-mismatch`) !== null \
         && document.querySelector(`[data-mismatch=\"${arguments[0]}:a\"]`) !== null",
        json!([stranger]),
    );
    // No other link is flagged.
    let flagged = browser.eval(
        "return document.querySelectorAll('#links td.lldp-mismatch').length",
        json!([]),
    );
    assert_eq!(flagged, json!(1));
    // Cut: traffic on that link stops at the ends; restore: it resumes.
    let index = 5;
    browser.click(&format!("#links tr[data-link=\"{cut}\"]"));
    browser.wait_for(
        "the detail panel",
        long,
        "return document.querySelector('#cut') !== null",
        json!([]),
    );
    browser.click("#cut");
    browser.wait_for(
        "the link shown as cut",
        long,
        "return document.querySelector(`#links tr[data-link=\"${arguments[0]}\"] .badge.down`) !== null",
        json!([cut]),
    );
    std::thread::sleep(Duration::from_millis(500));
    let at_cut = received[index].load(Ordering::SeqCst);
    let other_at_cut = received[0].load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        received[index].load(Ordering::SeqCst),
        at_cut,
        "frames crossed a cut link"
    );
    assert!(
        received[0].load(Ordering::SeqCst) > other_at_cut,
        "other links carry on"
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    browser.screenshot(&screenshot);
    eprintln!("screenshot: {}", screenshot.display());
    browser.click("#restore");
    let deadline = Instant::now() + long;
    while received[index].load(Ordering::SeqCst) <= at_cut + 10 {
        assert!(
            Instant::now() < deadline,
            "the restored link carries nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
}
