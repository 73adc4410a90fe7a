//! Remote capture: `linkscope extcap install --remote USER@HOST:PORT` against a real OpenSSH
//! server on 127.0.0.1, the remote's links listed by `tshark -D` and captured by tshark over
//! ssh (the remote running `linkscope splice … -w -`), the link handed back when tshark
//! stops; a refused login and a remote without linkscope end with ssh's and the remote's
//! own words instead of a hang.

mod capture_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capture_support::{Lab, Traffic, captured, have_libpcap, is_stp};
use support::process::{Running, linkscope, run, wait_exit};
use support::sshd::{Sshd, linkscope_path};
use support::wireshark::have;

const DEADLINE: Duration = Duration::from_secs(30);

impl Lab {
    /// The lab's link "on the remote" (the same machine), with a HOME for Wireshark.
    fn with_home() -> Lab {
        let lab = Lab::new("");
        std::fs::create_dir(lab.home()).unwrap();
        lab
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `linkscope extcap install --remote …` into the temporary HOME, with ssh `key`.
    fn install(&self, sshd: &Sshd, key: &str, remote_linkscope: &Path) -> std::process::Output {
        let mut command = linkscope();
        command
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .args(["extcap", "install", "--remote"])
            .arg(sshd.remote())
            .arg("--mapping")
            .arg(self.mapping())
            .arg("--remote-linkscope")
            .arg(remote_linkscope);
        for option in sshd.ssh_options(key) {
            command.arg("--ssh-option").arg(option);
        }
        command.output().unwrap()
    }

    fn tshark(&self) -> Command {
        let mut command = Command::new("tshark");
        command
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME");
        command
    }
}

fn ready(test: &str) -> Option<Sshd> {
    if !have("tshark", test) || !have_libpcap(test) {
        return None;
    }
    Sshd::start(test)
}

#[test]
fn tshark_captures_a_remote_link_over_ssh() {
    let Some(sshd) = ready("tshark_captures_a_remote_link_over_ssh") else {
        return;
    };
    let lab = Lab::with_home();
    let installed = lab.install(&sshd, "user_key", &linkscope_path());
    assert!(installed.status.success(), "{installed:?}");
    let said = String::from_utf8_lossy(&installed.stdout);
    assert!(
        said.contains(".config/wireshark/extcap/linkscope-127.0.0.1"),
        "{said}"
    );

    let listed = run(lab.tshark().arg("-D"));
    assert!(
        listed.contains(
            "linkscope-100:2-102:1@127.0.0.1 (linkscope 100:2-102:1 (vm100:eth2 - vm102:eth1) on 127.0.0.1)"
        ),
        "{listed}"
    );

    let file = lab.dir.path().join("remote.pcapng");
    let traffic = Traffic::start(&lab.a, &lab.b);
    let tshark = lab
        .tshark()
        .args(["-i", "linkscope-100:2-102:1@127.0.0.1", "-f", "not stp"])
        .args(["-a", "duration:4", "-w"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(tshark);
    let status = wait_exit(&mut running.0, DEADLINE, "tshark did not stop after 4 s");
    let spliced = traffic.stop();
    let err = running.stderr();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("Error by extcap pipe"), "{err}");

    assert!(
        spliced.iter().any(|f| is_stp(f)),
        "STP crossed the remote splice"
    );
    let frames = captured(&file);
    assert!(!frames.is_empty(), "frames came over ssh");
    assert!(
        !frames.iter().any(|(_, f)| is_stp(f)),
        "the remote applied the filter"
    );
    assert!(
        frames.iter().any(|(i, _)| *i == 0) && frames.iter().any(|(i, _)| *i == 1),
        "frames of both ends"
    );
    let names = support::wireshark::tshark_fields(&file, &[], &["frame.interface_name"]);
    assert!(names.iter().any(|n| n[0] == "vm100:eth2"), "{names:?}");
    // tshark stopped the local extcap, ssh went away, and the remote splice handed the link
    // back even though frames kept coming only until then.
    lab.until_direct();
}

#[test]
fn a_refused_login_ends_the_capture_with_sshs_message() {
    let Some(sshd) = ready("a_refused_login_ends_the_capture_with_sshs_message") else {
        return;
    };
    let lab = Lab::with_home();
    let installed = lab.install(&sshd, "user_key", &linkscope_path());
    assert!(installed.status.success(), "{installed:?}");
    // The key the extcap uses is no longer authorized.
    sshd.authorize("wrong_key");
    let started = Instant::now();
    let tshark = lab
        .tshark()
        .args([
            "-i",
            "linkscope-100:2-102:1@127.0.0.1",
            "-a",
            "duration:60",
            "-w",
        ])
        .arg(lab.dir.path().join("never.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(tshark);
    let status = wait_exit(
        &mut running.0,
        Duration::from_secs(5),
        "tshark still waits 5 s after ssh was refused",
    );
    eprintln!("tshark ended after {:?}", started.elapsed());
    let err = running.stderr();
    assert!(!status.success(), "{status}: {err}");
    assert!(err.contains("Error by extcap pipe"), "{err}");
    assert!(
        err.contains("Permission denied (publickey)"),
        "ssh's own words: {err}"
    );
    assert!(err.contains("BatchMode=yes"), "and what to check: {err}");
}

#[test]
fn install_says_when_the_remote_has_no_linkscope_or_refuses_the_login() {
    let Some(sshd) = ready("install_says_when_the_remote_has_no_linkscope_or_refuses_the_login")
    else {
        return;
    };
    let lab = Lab::with_home();
    let missing = lab.install(&sshd, "user_key", Path::new("/nonexistent/linkscope"));
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/linkscope"), "{err}");
    assert!(err.contains("install linkscope there"), "{err}");

    let refused = lab.install(&sshd, "wrong_key", &linkscope_path());
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    assert!(
        !lab.home()
            .join(".config/wireshark/extcap/linkscope-127.0.0.1")
            .exists(),
        "nothing installed"
    );
}
