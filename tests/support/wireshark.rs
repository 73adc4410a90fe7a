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
