//! A real OpenSSH server for remote-capture tests (Debian's openssh-server): `sshd -D` on
//! 127.0.0.1 and a free port, with its own host key, an authorized key made for the test
//! and everything else in a temporary directory; the user is the one running the tests
//! (root login allowed for the test's key only). Stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{Running, run};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    _server: Running,
}

impl Sshd {
    /// Starts the server, or says why the test is skipped (a failure under
    /// LINKSCOPE_REQUIRE_LAB=1) when OpenSSH's server or client is missing.
    pub fn start(test: &str) -> Option<Sshd> {
        let missing = [SSHD, "ssh", "ssh-keygen"].into_iter().find(|tool| {
            Command::new(tool)
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        });
        if let Some(tool) = missing {
            let reason = format!(
                "{test}: skipped: `{tool}` is missing (Debian packages openssh-server, \
                 openssh-client)"
            );
            assert!(
                std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
                "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
            );
            eprintln!("{reason}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for key in ["host_key", "user_key", "wrong_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(path(key)));
        }
        std::fs::copy(path("user_key.pub"), path("authorized_keys")).unwrap();
        let user = run(Command::new("id").arg("-un")).trim().to_owned();
        // sshd takes no listening socket from us: find a free port, then give it that.
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let host_key = std::fs::read_to_string(path("host_key.pub")).unwrap();
        std::fs::write(
            path("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nAllowUsers {user}\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                path("host_key").display(),
                path("authorized_keys").display(),
                path("sshd.pid").display(),
            ),
        )
        .unwrap();
        // The privilege separation directory Debian's sshd wants when started by root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let server = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Running(server);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sshd never listened on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Sshd {
            dir,
            port,
            user,
            _server: server,
        })
    }

    /// `USER@127.0.0.1:PORT`.
    pub fn remote(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The ssh options that make the client use `key` and trust only this server.
    pub fn ssh_options(&self, key: &str) -> Vec<String> {
        let path = |name: &str| self.dir.path().join(name);
        vec![
            format!("IdentityFile={}", path(key).display()),
            "IdentitiesOnly=yes".into(),
            format!("UserKnownHostsFile={}", path("known_hosts").display()),
            "GlobalKnownHostsFile=/dev/null".into(),
            "StrictHostKeyChecking=yes".into(),
        ]
    }

    /// Authorizes only `key` from now on.
    pub fn authorize(&self, key: &str) {
        let path = |name: &str| self.dir.path().join(name);
        std::fs::copy(path(&format!("{key}.pub")), path("authorized_keys")).unwrap();
    }
}

/// The linkscope binary under test, as the remote runs it.
pub fn linkscope_path() -> PathBuf {
    PathBuf::from(assert_cmd::cargo::cargo_bin!("linkscope"))
}
