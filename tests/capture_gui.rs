//! The real Wireshark GUI (Debian's wireshark-qt) under Xvfb with the installed extcap:
//! `wireshark -k -i linkscope-… -a duration:5 -w F` captures frames of both ends, and an
//! invalid capture filter ends in Wireshark's error dialog (found with xdotool) instead of
//! a capture that hangs. Screenshots (ImageMagick's `import`) are kept under
//! target/test-artifacts/.

mod capture_support;
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use capture_support::{Lab, Traffic, captured, have_libpcap};
use support::process::{Running, linkscope, run};

const DEADLINE: Duration = Duration::from_secs(30);

/// The tools the GUI tests drive, with their Debian packages.
const TOOLS: [(&str, &str, &str); 4] = [
    ("wireshark", "--version", "wireshark-qt"),
    ("Xvfb", "-help", "xvfb"),
    ("xdotool", "--version", "xdotool"),
    ("import", "-version", "imagemagick"),
];

fn ready(test: &str) -> bool {
    let missing = TOOLS.iter().find(|(tool, arg, _)| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    });
    if let Some((tool, _, package)) = missing {
        let reason =
            format!("{test}: skipped: `{tool}` is not installed (Debian package {package})");
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
        );
        eprintln!("{reason}");
        return false;
    }
    have_libpcap(test)
}

/// A virtual X display (Xvfb picks a free display number itself), stopped on drop.
struct Display {
    number: String,
    _server: Running,
}

impl Display {
    fn start() -> Display {
        let mut server = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number = line.trim().to_owned();
        assert!(!number.is_empty(), "Xvfb named no display");
        Display {
            number: format!(":{number}"),
            _server: Running(server),
        }
    }

    /// Saves the whole screen as `name` under target/test-artifacts and prints the path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        run(Command::new("import")
            .args(["-display", &self.number, "-window", "root"])
            .arg(&path));
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Wireshark's visible windows whose title is exactly `title`.
    fn windows(&self, title: &str) -> Vec<String> {
        let xdotool = |args: &[&str]| {
            let out = Command::new("xdotool")
                .args(args)
                .env("DISPLAY", &self.number)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        xdotool(&["search", "--onlyvisible", "--class", "wireshark"])
            .lines()
            .filter(|id| xdotool(&["getwindowname", id]).trim_end() == title)
            .map(str::to_owned)
            .collect()
    }
}

impl Lab {
    /// The lab's link, and the extcap installed into a temporary HOME for Wireshark (with a
    /// runtime directory of its own).
    fn with_extcap() -> Lab {
        let lab = Lab::new("");
        let dir = lab.dir.path();
        for sub in ["home", "runtime"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        run(linkscope()
            .env("HOME", dir.join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .args(["extcap", "install", "--mapping"])
            .arg(lab.mapping()));
        lab
    }

    /// Starts `wireshark ARGS` on `display`; its standard error lines arrive on the
    /// receiver.
    fn wireshark(&self, display: &Display, args: &[&str]) -> (Running, mpsc::Receiver<String>) {
        let mut child = Command::new("wireshark")
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .env("DISPLAY", &display.number)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, receiver) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        (Running(child), receiver)
    }
}

/// Waits for a line containing `wanted` among Wireshark's standard error lines; returns the
/// lines seen.
fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < DEADLINE {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(wanted);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
    panic!("Wireshark never said {wanted:?}: {seen:#?}");
}

#[test]
fn wireshark_captures_both_ends_of_a_link() {
    if !ready("wireshark_captures_both_ends_of_a_link") {
        return;
    }
    let display = Display::start();
    let lab = Lab::with_extcap();
    let file = lab.dir.path().join("gui.pcapng");
    let traffic = Traffic::start(&lab.a, &lab.b);
    let file_arg = file.to_string_lossy().into_owned();
    let (mut wireshark, lines) = lab.wireshark(
        &display,
        &[
            "-k",
            "-i",
            "linkscope-100:2-102:1",
            "-a",
            "duration:5",
            "-w",
            &file_arg,
        ],
    );
    // The GUI stays open after its autostop; its log says when the capture is over.
    let said = wait_for_line(&lines, "Capture stopped.");
    display.screenshot("wireshark-capture.png");
    let _ = wireshark.0.kill();
    let _ = wireshark.0.wait();
    traffic.stop();
    assert!(
        !said.iter().any(|l| l.contains("Error by extcap")),
        "{said:#?}"
    );
    let frames = captured(&file);
    assert!(
        frames.iter().any(|(i, _)| *i == 0) && frames.iter().any(|(i, _)| *i == 1),
        "frames of both ends in {} frames",
        frames.len()
    );
    lab.until_direct();
}

#[test]
fn an_invalid_filter_ends_in_wiresharks_error_dialog() {
    if !ready("an_invalid_filter_ends_in_wiresharks_error_dialog") {
        return;
    }
    let display = Display::start();
    let lab = Lab::with_extcap();
    let file = lab.dir.path().join("never.pcapng");
    let file_arg = file.to_string_lossy().into_owned();
    let (mut wireshark, lines) = lab.wireshark(
        &display,
        &[
            "-k",
            "-i",
            "linkscope-100:2-102:1",
            "-f",
            "udp port",
            "-a",
            "duration:60",
            "-w",
            &file_arg,
        ],
    );
    // The capture ends at once (not after 60 s, not never) ...
    let said = wait_for_line(&lines, "Capture stopped.");
    // ... and a dialog titled "Wireshark" shows the extcap's message (libpcap's, as the
    // tshark test reads it) beside the main window.
    let start = Instant::now();
    while display.windows("Wireshark").is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "no error dialog appeared: {said:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    display.screenshot("wireshark-invalid-filter.png");
    let _ = wireshark.0.kill();
    let _ = wireshark.0.wait();
    // The link was never stolen.
    lab.until_direct();
}
