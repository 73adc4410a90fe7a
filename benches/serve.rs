//! `linkscope serve` at the size of a large lab: 1,000 links.
//!
//! 2 × N emulated QEMU tunnel ends in this process (UDP sockets on 127.0.0.1 with
//! SO_REUSEADDR, as QEMU binds them), a mapping with the N links, then the real binary,
//! `linkscope serve MAPPING --listen 127.0.0.1:0`. Measured:
//!
//! - start: from spawning the process until `/api/links` says every link is spliced;
//! - threads and RSS of the process once every link is spliced and has carried frames;
//! - `/api/links` and `/metrics`: response time (median and maximum of 20 requests, one at a
//!   time) and size;
//! - the page in headless Chromium (WebDriver; skipped with a message when chromedriver is
//!   missing): from navigation until every link's row is drawn, and one full redraw.
//!
//! `cargo bench --bench serve` runs 1,000 links (`SERVE_LINKS=N` for another size); `cargo
//! test --all-targets` runs 10 links as a smoke test.

// The tests' WebDriver client; this harness uses a part of it.
#[allow(dead_code)]
#[path = "../tests/support/browser.rs"]
mod browser;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/harness.rs"]
mod harness;
use harness::{Running, env_number, lab_mapping, nonblocking_end, proc_status};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The body of a GET of `url`.
fn get(agent: &ureq::Agent, url: &str) -> String {
    agent
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap()
}

/// Median and maximum time of `n` GETs of `url`, and the answer's size.
fn timed(url: &str, n: usize) -> (f64, f64, usize) {
    let agent = agent();
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let started = Instant::now();
        size = get(&agent, url).len();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[n - 1], size)
}

fn spliced(url: &str) -> usize {
    let text = get(&agent(), &format!("{url}/api/links"));
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    view["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["state"] == "spliced")
        .count()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let links: usize = env_number("SERVE_LINKS").unwrap_or(if bench { 1000 } else { 10 });
    let ends: Vec<UdpSocket> = (0..2 * links).map(|_| nonblocking_end()).collect();
    let addrs: Vec<SocketAddr> = ends.iter().map(|s| s.local_addr().unwrap()).collect();
    let mapping = lab_mapping(&addrs);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapping.yaml");
    std::fs::write(&path, mapping).unwrap();
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkscope"))
        .arg("serve")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--interval", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let serve = Running(child);
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("serve prints its URL")
        .to_owned();
    while spliced(&url) < links {
        assert!(
            spawned.elapsed() < Duration::from_secs(120),
            "not every link spliced"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let start_ms = spawned.elapsed().as_secs_f64() * 1e3;
    // Ten frames each way on every link, so every meter has something to say.
    let frame = [0x02u8; 64];
    for _ in 0..10 {
        for (i, socket) in ends.iter().enumerate() {
            let _ = socket.send_to(&frame, addrs[i ^ 1]);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2200));
    let pid = serve.0.id();
    let (threads, rss_mb) = (
        proc_status(pid, "Threads:").unwrap_or(0),
        proc_status(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0,
    );
    let requests = if bench { 20 } else { 3 };
    let api = timed(&format!("{url}/api/links"), requests);
    let metrics = timed(&format!("{url}/metrics"), requests);
    println!("linkscope serve with {links} links (emulated QEMU ends on loopback)");
    println!("  start until all spliced  {start_ms:9.0} ms");
    println!("  threads                  {threads:9}");
    println!("  RSS                      {rss_mb:9.1} MB");
    println!(
        "  GET /api/links           {:9.1} ms median, {:.1} ms max, {} kB",
        api.0,
        api.1,
        api.2 / 1000
    );
    println!(
        "  GET /metrics             {:9.1} ms median, {:.1} ms max, {} kB",
        metrics.0,
        metrics.1,
        metrics.2 / 1000
    );
    let chromium = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !chromium {
        println!(
            "  page                     skipped: chromedriver (Debian chromium-driver) is missing"
        );
        return;
    }
    let browser = browser::Browser::start(1600, 1000);
    browser.open(&url);
    let drawn = browser.wait_for(
        "every row",
        Duration::from_secs(120),
        "return document.querySelectorAll('#links tr.link').length === arguments[0] \
           ? performance.now() : null",
        serde_json::json!([links]),
    );
    let redraw = browser.eval(
        "const t = performance.now(); render(); return performance.now() - t",
        serde_json::json!([]),
    );
    println!(
        "  page: every row drawn    {:9.0} ms after navigation (100 ms polling)",
        drawn.as_f64().unwrap()
    );
    println!(
        "  page: one full redraw    {:9.1} ms",
        redraw.as_f64().unwrap()
    );
}
