//! Hostile mapping files: bytes that are not UTF-8 and files without end are refused with
//! exit status 2 and a message naming the file (and the byte offset), through `plan` and
//! through `extcap --mapping` as Wireshark runs it.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::process::linkscope;

fn output(command: &mut Command) -> (i32, String) {
    let Output { status, stderr, .. } = command.output().expect("spawn");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A valid mapping with one byte that cannot be UTF-8 (0xff) in a comment on line 3.
fn not_utf8() -> (tempfile::TempDir, std::path::PathBuf, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"links:\n  - [100, 1, 101, 1]\n# caf".to_vec();
    let offset = text.len();
    text.extend_from_slice(b"\xff\n");
    let path = dir.path().join("latin1.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path, offset)
}

#[test]
fn a_mapping_that_is_not_utf8_exits_2_with_file_and_byte_offset() {
    let (_dir, path, offset) = not_utf8();
    let (code, stderr) = output(linkscope().arg("plan").arg(&path));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("byte offset {offset}")),
        "{stderr}"
    );
    assert!(stderr.contains(":3:"), "line 3 named: {stderr}");
}

#[test]
fn extcap_refuses_a_mapping_that_is_not_utf8_with_exit_2() {
    let (_dir, path, offset) = not_utf8();
    let (code, stderr) = output(linkscope().arg("extcap").arg("--mapping").arg(&path).args([
        "--extcap-interfaces",
        "--extcap-version",
        "4.0",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("byte offset {offset}")),
        "{stderr}"
    );
}

#[test]
fn dev_zero_as_a_mapping_ends_with_exit_2() {
    let (code, stderr) = output(linkscope().args(["plan", "/dev/zero"]).stdin(Stdio::null()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/dev/zero"), "{stderr}");
    assert!(stderr.contains("16 MiB"), "{stderr}");
}

#[test]
fn an_endless_pipe_as_a_mapping_ends_with_exit_2() {
    let mut child = linkscope()
        .args(["links", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Valid YAML that never ends: a comment line over and over, until the reader stops.
    let writer = std::thread::spawn(move || {
        let line = [b"# endless\n".as_slice(); 1024].concat();
        let mut written = 0u64;
        while stdin.write_all(&line).is_ok() {
            written += line.len() as u64;
        }
        written
    });
    let status = support::process::wait_exit(
        &mut child,
        Duration::from_secs(60),
        "linkscope kept reading an endless pipe",
    );
    let written = writer.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("16 MiB"), "{stderr}");
    assert!(written < 64 << 20, "read {written} bytes before refusing");
}

#[test]
fn an_alias_bomb_and_deep_nesting_exit_2_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..7 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb += &format!("a{i}: &a{i} [{refs}]\n");
    }
    bomb += "links: *a6\n";
    let deep = format!("links: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    for (name, text, says) in [
        ("bomb.yaml", bomb, "budget"),
        ("deep.yaml", deep, "recursion"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, stderr) = output(linkscope().arg("plan").arg(&path));
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("{name}:")) && stderr.contains(says),
            "{stderr}"
        );
    }
}
