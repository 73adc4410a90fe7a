//! A small QMP client (QEMU Machine Protocol, one JSON object per line on a Unix socket):
//! enough to find the netdev behind a NIC by its MAC and pull or plug its cable
//! (`set_link`), so the guest sees its carrier go and come back.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// How long QEMU may take to answer one command.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The longest line we read from QEMU (an `info network` of many NICs fits easily).
const MAX_LINE: u64 = 1 << 20;

/// Errors of a QMP exchange.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("QMP {path}: {message}", path = path.display())]
    Protocol { path: PathBuf, message: String },
}

/// One connection to a VM's QMP socket, past capabilities negotiation.
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation mode.
    pub fn connect(path: &Path) -> Result<Qmp, QmpError> {
        let io = |source| QmpError::Io {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let mut qmp = Qmp {
            path: path.to_owned(),
            reader: BufReader::new(stream.try_clone().map_err(io)?),
            writer: stream,
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            return Err(qmp.protocol(format!("expected a greeting, got {greeting}")));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn protocol(&self, message: String) -> QmpError {
        QmpError::Protocol {
            path: self.path.clone(),
            message,
        }
    }

    fn read(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_line(&mut line)
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(self.protocol("QEMU closed the connection".into()));
        }
        serde_json::from_str(&line).map_err(|e| self.protocol(format!("not JSON: {e}")))
    }

    /// Runs `command` and returns its `return` value; events in between are skipped.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        let request = json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{request}").map_err(|source| QmpError::Io {
            path: self.path.clone(),
            source,
        })?;
        loop {
            let mut reply = self.read()?;
            if let Some(value) = reply.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = reply.get("error") {
                return Err(self.protocol(format!("{command}: {error}")));
            }
        }
    }

    /// The name to give `set_link` for the NIC with `mac`: its netdev's id (the NIC's own
    /// name when it has no netdev), from `info network`.
    pub fn netdev_of_mac(&mut self, mac: &str) -> Result<String, QmpError> {
        let text = self.execute(
            "human-monitor-command",
            json!({"command-line": "info network"}),
        )?;
        let text = text.as_str().unwrap_or_default();
        netdev_in_info_network(text, mac)
            .ok_or_else(|| self.protocol(format!("no NIC with MAC {mac} in `info network`")))
    }

    /// Pulls (`up` false) or plugs back the cable of `name`.
    pub fn set_link(&mut self, name: &str, up: bool) -> Result<(), QmpError> {
        self.execute("set_link", json!({"name": name, "up": up}))
            .map(drop)
    }
}

/// Finds the NIC whose `macaddr=` is `mac` in HMP `info network` output (a NIC line, then
/// its peer indented as ` \ name: …`) and returns the peer's name, or the NIC's.
fn netdev_in_info_network(text: &str, mac: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let is_nic = line
            .split([',', ' '])
            .any(|field| field.eq_ignore_ascii_case(&format!("macaddr={mac}")));
        if !is_nic || line.starts_with(' ') {
            continue;
        }
        let peer = lines
            .peek()
            .and_then(|next| next.trim_start().strip_prefix("\\ "))
            .and_then(|rest| rest.split_once(':'))
            .map(|(name, _)| name.trim().to_owned());
        return peer.or_else(|| line.split_once(':').map(|(name, _)| name.trim().to_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_netdev_behind_a_mac_in_info_network() {
        // As QEMU 7.2 prints it for two NICs with netdev ids n0 and net1.
        let text = "virtio-net-pci.0: index=0,type=nic,model=virtio-net-pci,macaddr=be:24:99:00:64:01\r\n \\ n0: index=0,type=socket,socket: udp=127.0.0.1:4000\r\nnet1: index=0,type=nic,model=virtio-net-pci,macaddr=be:24:99:00:64:02\r\n \\ net1: index=0,type=socket,socket: udp=127.0.0.1:4002\r\n";
        assert_eq!(
            netdev_in_info_network(text, "be:24:99:00:64:01").as_deref(),
            Some("n0")
        );
        assert_eq!(
            netdev_in_info_network(text, "BE:24:99:00:64:02").as_deref(),
            Some("net1")
        );
        assert_eq!(netdev_in_info_network(text, "be:24:99:00:64:03"), None);
    }
}
