//! Wireshark's command-line tools (Debian package tshark): whether they are installed, and
//! tshark's fields of a capture.

use std::path::Path;
use std::process::Command;

use super::process::run;

/// True when `tool` runs; otherwise prints why the test is skipped, or panics when
/// LINKSCOPE_REQUIRE_LAB=1 makes the prerequisite mandatory.
pub fn have(tool: &str, test: &str) -> bool {
    let runs = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let reason = format!("{test}: skipped: `{tool}` is not installed (Debian package tshark)");
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{reason}, and LINKSCOPE_REQUIRE_LAB=1 requires it"
        );
        eprintln!("{reason}");
    }
    runs
}

/// tshark's fields for every frame of `file`, one Vec per frame, one String per field;
/// `options` go before the fields (e.g. `-E occurrence=a`).
pub fn tshark_fields(file: &Path, options: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut command = Command::new("tshark");
    command
        .arg("-r")
        .arg(file)
        .args(["-T", "fields"])
        .args(options);
    for field in fields {
        command.args(["-e", field]);
    }
    run(&mut command)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The pcapng blocks of `bytes` as linkscope writes them (little-endian): the number of
/// blocks and of enhanced packet blocks when the file ends on a whole block, else the byte
/// offset of the first torn one.
pub fn pcapng_blocks(bytes: &[u8]) -> Result<(usize, usize), usize> {
    let (mut at, mut blocks, mut packets) = (0, 0, 0);
    while at < bytes.len() {
        let word = |i: usize| {
            bytes
                .get(i..i + 4)
                .map(|w| u32::from_le_bytes(w.try_into().unwrap()) as usize)
        };
        let (Some(kind), Some(len)) = (word(at), word(at + 4)) else {
            return Err(at);
        };
        if len < 12 || !len.is_multiple_of(4) || word(at + len - 4) != Some(len) {
            return Err(at);
        }
        packets += usize::from(kind == 6);
        blocks += 1;
        at += len;
    }
    Ok((blocks, packets))
}

/// tshark's output for `file`, failing the test when tshark exits with an error or
/// complains on stderr (its warning about running as root aside).
pub fn tshark_reads_cleanly(file: &Path) -> String {
    let out = Command::new("tshark").arg("-r").arg(file).output().unwrap();
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.is_empty() && !l.contains("Running as user"))
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "tshark on {}: {complaints:?}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
