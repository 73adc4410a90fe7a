//! `Output::Stdout` live into tshark through a pipe, as in `linkscope splice -w - | tshark -l -i -`.
//!
//! This test runs without libtest's harness (`harness = false`): it starts itself again as
//! the writing process, whose standard output must carry nothing but pcapng (libtest would
//! print its own lines there). The child writes through `Writer` with `Output::Stdout`; the
//! parent pipes that into `tshark -l -i -`.

mod capture_support;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use capture_support::{frame, interface};
use linkscope::capture::{InterfaceStats, Output, Packet, Writer};
use support::process::wait_exit;
use support::wireshark::have;

/// Environment variable that makes this binary the writing child, and in which mode.
const CHILD: &str = "LINKSCOPE_CAPTURE_LIVE_CHILD";
/// Generous bound on how long a hung tshark may keep a test waiting (not a timing assert).
const DEADLINE: Duration = Duration::from_secs(60);
const T0: u64 = 1_700_000_000_000_000_000;

fn main() -> ExitCode {
    match std::env::var(CHILD).as_deref() {
        Ok("pause") => child_pause(),
        Ok("until-closed") => child_until_closed(),
        _ => {
            let tests: [(&str, fn()); 2] = [
                ("live_stdout_is_decoded_while_the_capture_runs", live_stdout),
                ("closed_reader_is_a_broken_pipe_error", closed_reader),
            ];
            for (name, test) in tests {
                test();
                println!("test {name} ... ok");
            }
            ExitCode::SUCCESS
        }
    }
}

fn writer() -> Writer {
    Writer::create(
        &Output::Stdout,
        "live test",
        &[
            interface("vm100:eth1", "end a", 0),
            interface("vm102:eth1", "end b", 0),
        ],
    )
    .expect("writer on standard output")
}

fn write(writer: &mut Writer, n: u32) -> linkscope::Result<()> {
    writer.write(&Packet {
        interface: n % 2,
        timestamp_ns: T0 + u64::from(n),
        data: &frame(n, 60 + n as usize),
        outbound: true,
    })
}

/// Writes 5 frames and flushes, waits for a line on standard input, writes 5 more, finishes.
fn child_pause() -> ExitCode {
    let mut writer = writer();
    for n in 0..5 {
        write(&mut writer, n).unwrap();
    }
    writer.flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    for n in 5..10 {
        write(&mut writer, n).unwrap();
    }
    writer.flush().unwrap();
    writer
        .finish(&[InterfaceStats::default(), InterfaceStats::default()])
        .unwrap();
    ExitCode::SUCCESS
}

/// Writes and flushes until the reader goes away; exits 0 if that surfaced as a broken pipe
/// inside `linkscope::Error::Io`, 3 for any other error.
fn child_until_closed() -> ExitCode {
    let mut writer = writer();
    for n in 0.. {
        let result = write(&mut writer, n).and_then(|()| writer.flush());
        match result {
            Ok(()) => {}
            Err(linkscope::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                return ExitCode::SUCCESS;
            }
            Err(other) => {
                eprintln!("unexpected error: {other}");
                return ExitCode::from(3);
            }
        }
    }
    ExitCode::from(4)
}

/// The writing child piped into tshark, and tshark's output lines as they come.
struct Pipeline {
    child: Child,
    tshark: Child,
    lines: mpsc::Receiver<String>,
}

impl Pipeline {
    fn start(mode: &str, tshark_args: &[&str]) -> Pipeline {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the writing child");
        let mut tshark = Command::new("tshark")
            .args(["-l", "-i", "-"])
            .args(tshark_args)
            .args(["-T", "fields"])
            .args(["-e", "frame.interface_name"])
            .args(["-e", "frame.packet_flags_direction"])
            .args(["-e", "frame.len"])
            .stdin(child.stdout.take().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tshark");
        let (tx, lines) = mpsc::channel();
        let stdout = tshark.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Pipeline {
            child,
            tshark,
            lines,
        }
    }

    /// tshark's next line, None once it closed its output.
    fn next(&mut self) -> Option<String> {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("tshark printed nothing within {DEADLINE:?}: the capture is not live")
            }
        }
    }

    /// Exit statuses of the child and of tshark.
    fn wait(&mut self) -> (ExitStatus, ExitStatus) {
        (
            wait(&mut self.child, "writer"),
            wait(&mut self.tshark, "tshark"),
        )
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for process in [&mut self.child, &mut self.tshark] {
            if process.try_wait().ok().flatten().is_none() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

fn wait(process: &mut Child, what: &str) -> ExitStatus {
    wait_exit(
        process,
        DEADLINE,
        &format!("{what} did not exit within {DEADLINE:?}"),
    )
}

fn expected_line(n: u32) -> String {
    format!("vm10{}:eth1\t0x00000002\t{}", 2 * (n % 2), 60 + n)
}

fn live_stdout() {
    if !have("tshark", "live_stdout_is_decoded_while_the_capture_runs") {
        return;
    }
    let mut pipeline = Pipeline::start("pause", &[]);
    // The writer is paused, its capture not finished: tshark must already show these frames.
    for n in 0..5 {
        assert_eq!(pipeline.next(), Some(expected_line(n)));
    }
    let mut stdin = pipeline.child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    for n in 5..10 {
        assert_eq!(pipeline.next(), Some(expected_line(n)));
    }
    assert_eq!(pipeline.next(), None, "tshark ends with the capture");
    let (child, tshark) = pipeline.wait();
    assert!(child.success() && tshark.success(), "{child} {tshark}");
}

fn closed_reader() {
    if !have("tshark", "closed_reader_is_a_broken_pipe_error") {
        return;
    }
    let mut pipeline = Pipeline::start("until-closed", &["-c", "3"]);
    for n in 0..3 {
        assert_eq!(pipeline.next(), Some(expected_line(n)));
    }
    assert_eq!(pipeline.next(), None, "tshark -c 3 stops after 3 frames");
    let (child, tshark) = pipeline.wait();
    assert!(tshark.success(), "{tshark}");
    assert_eq!(
        child.code(),
        Some(0),
        "the writer must see BrokenPipe inside linkscope::Error::Io"
    );
}
