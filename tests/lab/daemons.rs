//! Taps inside namespaces, lldpd on them, kernel STP bridges.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use linkscope::net::tap::Tap;

use super::netns::Netns;
use super::run;

/// Opens a new tap (a unique name, gone when the returned [`Tap`] drops), moves it into
/// `ns` and sets it up there. Our process keeps reading and writing its frames.
pub fn tap_in(ns: &Netns) -> Result<Tap, String> {
    let tap = Tap::open(&super::unique_name("lst")).map_err(|e| e.to_string())?;
    run(std::process::Command::new("ip").args(["link", "set", tap.name(), "netns", ns.name()]))?;
    ns.ip(["link", "set", tap.name(), "up"])?;
    Ok(tap)
}

/// An lldpd limited to one interface of a namespace, with its own control socket; killed on
/// drop, or stopped with SIGTERM by [`Lldpd::terminate`] (which makes it send a shutdown
/// LLDPDU).
pub struct Lldpd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lldpd {
    /// Starts `lldpd -d -I iface -u SOCKET` in `ns`; with `tx_interval`, sets it through
    /// `lldpcli configure lldp tx-interval`.
    pub fn start(ns: &Netns, iface: &str, tx_interval: Option<u32>) -> Result<Lldpd, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let socket = dir.path().join("lldpd.socket");
        let mut cmd = ns.command("lldpd");
        cmd.args(["-d", "-I", iface, "-u"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
        let lldpd = Lldpd {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while lldpd.lldpcli(&["show", "configuration"]).is_err() {
            if Instant::now() > deadline {
                return Err("lldpd did not answer on its control socket within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(interval) = tx_interval {
            lldpd.lldpcli(&["configure", "lldp", "tx-interval", &interval.to_string()])?;
        }
        Ok(lldpd)
    }

    /// Runs `lldpcli -u SOCKET ARGS…` and returns its output.
    pub fn lldpcli(&self, args: &[&str]) -> Result<String, String> {
        run(std::process::Command::new("lldpcli")
            .arg("-u")
            .arg(&self.socket)
            .args(args))
    }

    /// Sends SIGTERM and waits for lldpd to exit.
    pub fn terminate(mut self) -> Result<(), String> {
        super::signal(self.child.id(), "TERM")?;
        self.child
            .wait()
            .map(drop)
            .map_err(|e| format!("lldpd: {e}"))
    }
}

impl Drop for Lldpd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SIGTERM lets lldpd's privilege-separated child exit with it.
            let _ = super::signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Creates bridge `bridge` in `ns` running kernel STP (802.1D; hello time 1 s, forward
/// delay 2 s) with `ports` enslaved and everything up.
pub fn stp_bridge(ns: &Netns, bridge: &str, ports: &[&str]) -> Result<(), String> {
    ns.ip([
        "link",
        "add",
        bridge,
        "type",
        "bridge",
        "stp_state",
        "1",
        "hello_time",
        "100",
        "forward_delay",
        "200",
    ])?;
    for port in ports {
        ns.ip(["link", "set", port, "master", bridge])?;
        ns.ip(["link", "set", port, "up"])?;
    }
    ns.ip(["link", "set", bridge, "up"])?;
    Ok(())
}
