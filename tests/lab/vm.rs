//! QEMU VMs (TCG) booting the lab image: start with given network arguments, read the serial
//! console, wait for result lines, kill on drop. At most [`MAX_VMS`] run at once in this
//! process; a group of VMs takes its slots all at once, so groups never deadlock.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::image::Image;
use super::netns::Netns;

/// VMs running at once in this process (TCG is CPU-bound; the machines have two cores).
pub const MAX_VMS: usize = 2;

/// How long a VM may take to print an awaited line. Generous: TCG boots in about 2 s on an
/// idle machine, but the CI machine is shared.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(240);

/// What a VM's /init does, from the `ls.*` kernel arguments (see build-image.sh).
#[derive(Clone, Debug)]
pub struct Guest {
    pub name: String,
    /// "ping", "bridge", "bond" or "idle".
    pub role: String,
    /// Address with prefix length, e.g. "10.77.0.1/24".
    pub addr: String,
    pub peer: Option<String>,
    pub mtu: Option<u32>,
    /// Ping payload bytes.
    pub size: u32,
    /// Counted pings (after the warm-up that covers the first ARP).
    pub count: u32,
    /// Seconds to keep answering after the result before powering off (the image's
    /// default, 30 s, when `None`).
    pub hold: Option<u32>,
}

impl Guest {
    /// A guest that pings `peer` `count` times with 56-byte payloads.
    pub fn ping(name: &str, addr: &str, peer: &str) -> Guest {
        Guest {
            name: name.into(),
            role: "ping".into(),
            addr: addr.into(),
            peer: Some(peer.into()),
            mtu: None,
            size: 56,
            count: 10,
            hold: None,
        }
    }

    /// The kernel command line. `no_timer_check`: on a loaded host TCG runs too slowly for
    /// the kernel's IO-APIC timer check, which then panics ("IO-APIC + timer doesn't work").
    fn kernel_args(&self) -> String {
        let mut args = format!(
            "console=ttyS0 quiet panic=-1 no_timer_check ls.name={} ls.role={} ls.addr={} ls.size={} ls.count={}",
            self.name, self.role, self.addr, self.size, self.count
        );
        if let Some(peer) = &self.peer {
            args += &format!(" ls.peer={peer}");
        }
        if let Some(mtu) = self.mtu {
            args += &format!(" ls.mtu={mtu}");
        }
        if let Some(hold) = self.hold {
            args += &format!(" ls.hold={hold}");
        }
        args
    }
}

/// One VM to start: its guest job, its QEMU network arguments (`-netdev … -device …`, e.g.
/// one VM's line of `linkscope plan --format qemu`), and the namespace to run it in.
pub struct Spec<'a> {
    pub guest: Guest,
    pub net_args: Vec<String>,
    pub netns: Option<&'a Netns>,
}

struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    used: Mutex::new(0),
    freed: Condvar::new(),
};

/// `n` VM slots, returned when the last VM of the group drops.
struct SlotGuard(usize);

impl SlotGuard {
    fn take(n: usize) -> SlotGuard {
        assert!(
            n <= MAX_VMS,
            "a group of {n} VMs exceeds the lab's {MAX_VMS}"
        );
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + n > MAX_VMS {
            used = SLOTS.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += n;
        SlotGuard(n)
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.0;
        SLOTS.freed.notify_all();
    }
}

#[derive(Default)]
struct Console {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl Console {
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
        self.grew.notify_all();
    }
}

/// A running VM; killed on drop.
pub struct Vm {
    name: String,
    child: Child,
    console: Arc<Console>,
    _slots: Arc<SlotGuard>,
}

/// Starts a group of VMs (at most [`MAX_VMS`]), waiting for free slots first.
pub fn start(image: &Image, specs: Vec<Spec<'_>>) -> Result<Vec<Vm>, String> {
    let slots = Arc::new(SlotGuard::take(specs.len()));
    specs
        .into_iter()
        .map(|spec| Vm::start(image, spec, slots.clone()))
        .collect()
}

impl Vm {
    fn start(image: &Image, spec: Spec<'_>, slots: Arc<SlotGuard>) -> Result<Vm, String> {
        let mut cmd = match spec.netns {
            Some(ns) => ns.command("qemu-system-x86_64"),
            None => Command::new("qemu-system-x86_64"),
        };
        cmd.args([
            "-accel",
            "tcg",
            "-m",
            "192",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .arg("-append")
        .arg(spec.guest.kernel_args())
        .args(without_option_roms(&spec.net_args))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
        let console = Arc::new(Console::default());
        let name = spec.guest.name.clone();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, prefix) in [
            (Box::new(stdout) as Box<dyn Read + Send>, ""),
            (Box::new(stderr), "qemu stderr: "),
        ] {
            let console = console.clone();
            std::thread::Builder::new()
                .name(format!("vm-{name}-console"))
                .spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        console.push(format!("{prefix}{}", line.trim_end_matches('\r')));
                    }
                })
                .map_err(|e| format!("console thread: {e}"))?;
        }
        Ok(Vm {
            name,
            child,
            console,
            _slots: slots,
        })
    }

    /// Waits for the first console line starting with `prefix` (e.g. "LINKSCOPE-RESULT"),
    /// up to [`LINE_TIMEOUT`]; an error holds the whole console so far.
    pub fn wait_line(&mut self, prefix: &str) -> Result<String, String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let mut lines = self.console.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = lines.iter().find(|l| l.starts_with(prefix)) {
                return Ok(line.clone());
            }
            let now = Instant::now();
            let exited = self.child.try_wait().ok().flatten();
            if now >= deadline || exited.is_some() {
                let why = match exited {
                    Some(status) => format!("QEMU exited ({status})"),
                    None => format!("timed out after {LINE_TIMEOUT:?}"),
                };
                return Err(format!(
                    "VM {}: no {prefix} line: {why}; console:\n{}",
                    self.name,
                    lines.join("\n")
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(500));
            lines = self
                .console
                .grew
                .wait_timeout(lines, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the first console line starting with `LINKSCOPE-` that contains `text`.
    pub fn wait_line_containing(&mut self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            {
                let lines = self.console.lines.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(line) = lines
                    .iter()
                    .find(|l| l.starts_with("LINKSCOPE-") && l.contains(text))
                {
                    return Ok(line.clone());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "VM {}: no line with {text:?}; console:\n{}",
                        self.name,
                        lines.join("\n")
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every console line so far starting with `prefix`, without waiting.
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        let lines = self.console.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The first console line so far starting with `prefix`, without waiting.
    pub fn line(&self, prefix: &str) -> Option<String> {
        let lines = self.console.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().find(|l| l.starts_with(prefix)).cloned()
    }

    /// Waits for the `LINKSCOPE-RESULT` line and returns its key=value fields.
    pub fn result(&mut self) -> Result<HashMap<String, String>, String> {
        self.wait_line("LINKSCOPE-RESULT ")
            .map(|line| fields(&line))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The key=value words of a LINKSCOPE- line.
pub fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `romfile=` on every `-device` argument: skips loading the NIC's iPXE option ROM, which
/// the lab kernel boots without.
fn without_option_roms(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut device = false;
    for arg in args {
        if device && !arg.contains("romfile=") {
            out.push(format!("{arg},romfile="));
        } else {
            out.push(arg.clone());
        }
        device = arg == "-device";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_roms_are_skipped_on_devices_only() {
        let args: Vec<String> = [
            "-netdev",
            "socket,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            without_option_roms(&args),
            [
                "-netdev",
                "socket,id=n0",
                "-device",
                "virtio-net-pci,netdev=n0,romfile="
            ]
        );
    }

    #[test]
    fn result_lines_split_into_fields() {
        let f = fields("LINKSCOPE-RESULT name=vm100 transmitted=10 loss=0");
        assert_eq!(f["name"], "vm100");
        assert_eq!(f["loss"], "0");
        assert_eq!(f.len(), 3);
    }
}
