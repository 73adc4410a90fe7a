//! Captures with tcpdump and reading them back with tshark.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::netns::Netns;

/// A running `tcpdump -w`; stopped (SIGINT, so it flushes) by [`Tcpdump::stop`] or on drop.
pub struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    /// Captures whole frames on `iface` (inside `netns` when given) matching `filter` into
    /// `file`, returning once tcpdump listens.
    pub fn start(
        netns: Option<&Netns>,
        iface: &str,
        filter: &str,
        file: &Path,
    ) -> Result<Tcpdump, String> {
        let mut cmd = match netns {
            Some(ns) => ns.command("tcpdump"),
            None => Command::new("tcpdump"),
        };
        cmd.args(["-i", iface, "--immediate-mode", "-U", "-s", "0", "-w"])
            .arg(file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        loop {
            line.clear();
            if stderr
                .read_line(&mut line)
                .map_err(|e| format!("tcpdump stderr: {e}"))?
                == 0
            {
                let _ = child.wait();
                return Err(format!("{cmd:?} exited before listening"));
            }
            if line.contains("listening on") {
                break;
            }
        }
        // Keep draining stderr so tcpdump never blocks on it (it prints counts at exit).
        std::thread::Builder::new()
            .name("tcpdump-stderr".into())
            .spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()))
            .map_err(|e| format!("tcpdump stderr thread: {e}"))?;
        Ok(Tcpdump { child })
    }

    /// Stops the capture and waits until the file is complete.
    pub fn stop(mut self) -> Result<(), String> {
        self.interrupt()
    }

    fn interrupt(&mut self) -> Result<(), String> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        super::signal(self.child.id(), "INT")?;
        self.child
            .wait()
            .map(drop)
            .map_err(|e| format!("tcpdump: {e}"))
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if self.interrupt().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// tshark's `-d` argument decoding UDP port `port` as Ethernet: QEMU's tunnel payload.
pub fn decode_udp_as_eth(port: u16) -> String {
    format!("udp.port=={port},eth")
}

/// Reads `file` with tshark and returns, per packet passing the display `filter`, the
/// values of `fields` (`-T fields -E occurrence=a`; several occurrences joined by ',').
pub fn tshark_fields(
    file: &Path,
    decode_as: &[String],
    filter: &str,
    fields: &[&str],
) -> Result<Vec<Vec<String>>, String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    cmd.args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=/t",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = super::run(&mut cmd)?;
    Ok(out
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}
