//! Commands the tests run: the binary under test, a child killed on drop, a command's
//! output, waiting for a child's exit, a server that announces its address, a command's JSON
//! output.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The linkscope binary under test.
pub fn linkscope() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("linkscope"))
}

/// A child process killed and reaped on drop, so a failed test leaves no process behind.
pub struct Running(pub Child);

impl Running {
    /// Everything the child wrote to its piped standard error, read to its end.
    pub fn stderr(&mut self) -> String {
        read_all(self.0.stderr.take().expect("stderr piped"))
    }

    /// Everything the child wrote to its piped standard output, read to its end.
    pub fn stdout(&mut self) -> String {
        read_all(self.0.stdout.take().expect("stdout piped"))
    }
}

fn read_all(mut pipe: impl std::io::Read) -> String {
    let mut text = String::new();
    pipe.read_to_string(&mut text)
        .expect("read the child's output");
    text
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command and returns its standard output, failing the test on a non-zero exit.
pub fn run(command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("spawn");
    assert!(
        status.success(),
        "{command:?} failed: {status}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).expect("utf-8 output")
}

/// Waits for `child` to exit; fails the test with `failure` if it has not within `deadline`.
pub fn wait_exit(child: &mut Child, deadline: Duration, failure: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(start.elapsed() < deadline, "{failure}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running server (e.g. `linkscope bench sink`, `linkscope mtu --reflect`) whose first line
/// on stdout ends with the address it listens on; killed on drop.
pub struct Listener {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Listener {
    /// Spawns `command` with stdout piped and reads the address from its first line.
    pub fn start(command: &mut Command) -> Listener {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("reads the address line");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Listener { child, addr }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command`, asserts that it succeeds (showing its stderr otherwise) and parses its
/// stdout as one JSON document.
pub fn json_output(command: &mut Command) -> serde_json::Value {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}
