//! Golden tests of `linkscope plan` and `linkscope links` over testdata/plan/.
//!
//! Each directory there is one case: `mapping.yaml`, optionally `pve/` (the PVE state:
//! `<vmid>.conf` and `<vmid>.cmd`, the text `qm showcmd` prints; without it the empty
//! state), and the expected results, each derived by hand from the generator's rules:
//! - `expected.qm` / `.qemu` / `.dgram` / `.libvirt`: stdout of `plan` in that format;
//! - `expected.links` / `expected.links.json`: stdout of `links` / `links --json`;
//! - `expected.stderr`: the warnings of `plan` (absent: stderr must be empty);
//! - `expected.refusal`: `plan` refuses: exit 2, nothing on stdout, one line on stderr
//!   starting with this text.
//!
//! Commands run inside the case directory, so messages name `mapping.yaml`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/plan");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("mapping.yaml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "found only {} cases", cases.len());
    cases
}

fn linkscope(case: &Path, args: &[&str]) -> std::process::Output {
    let state = if case.join("pve").is_dir() {
        "pve".to_owned()
    } else {
        "../empty".to_owned()
    };
    let mut cmd = Command::cargo_bin("linkscope").unwrap();
    cmd.current_dir(case).args(args);
    if args[0] == "plan" {
        cmd.args(["--pve-config-dir", &state, "--qm-showcmd-dir", &state]);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn check_output(case: &Path, file: &str, args: &[&str]) -> bool {
    let Ok(expected) = std::fs::read_to_string(case.join(file)) else {
        return false;
    };
    let out = linkscope(case, args);
    let name = case.file_name().unwrap().to_string_lossy();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name} {args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), expected, "{name}: stdout of {args:?}");
    if args[0] == "plan" {
        let warnings = std::fs::read_to_string(case.join("expected.stderr")).unwrap_or_default();
        assert_eq!(text(&out.stderr), warnings, "{name}: stderr of {args:?}");
    }
    true
}

#[test]
fn every_case_matches_its_expected_output() {
    let formats: &[(&str, &[&str])] = &[
        ("expected.qm", &["plan", "mapping.yaml"]),
        (
            "expected.qemu",
            &["plan", "mapping.yaml", "--format", "qemu"],
        ),
        (
            "expected.dgram",
            &[
                "plan",
                "mapping.yaml",
                "--format",
                "qemu",
                "--netdev",
                "dgram",
            ],
        ),
        (
            "expected.libvirt",
            &["plan", "mapping.yaml", "--format", "libvirt"],
        ),
        ("expected.links", &["links", "mapping.yaml"]),
        ("expected.links.json", &["links", "mapping.yaml", "--json"]),
    ];
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let mut checked = 0;
        for (file, args) in formats {
            checked += usize::from(check_output(&case, file, args));
        }
        if let Ok(expected) = std::fs::read_to_string(case.join("expected.refusal")) {
            let out = linkscope(&case, &["plan", "mapping.yaml"]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{name}: stdout {:?}",
                text(&out.stdout)
            );
            assert!(
                stderr.starts_with(expected.trim_end()),
                "{name}: stderr {stderr:?}, expected it to start with {expected:?}"
            );
            assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
            checked += 1;
        }
        assert!(checked > 0, "{name}: no expected file");
    }
}

#[test]
fn missing_mapping_file_is_an_error_naming_it() {
    let out = Command::cargo_bin("linkscope")
        .unwrap()
        .args([
            "plan",
            "/nonexistent/mapping.yaml",
            "--qm-showcmd-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("/nonexistent/mapping.yaml"));
}

#[test]
fn dgram_needs_the_qemu_format() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/plan/readme");
    let out = linkscope(&case, &["plan", "mapping.yaml", "--netdev", "dgram"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "linkscope: --netdev: dgram applies to --format qemu only\n"
    );
}

#[test]
fn ipv6_links_warn_for_the_socket_backend_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mapping.yaml"),
        "defaults:\n  udp_ip_by_vm: {100: 'fd00::1', 102: 'fd00::2'}\n  host_mtu: 1400\nlinks:\n  - [100, 1, 102, 1]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("pve")).unwrap();
    let socket = linkscope(dir.path(), &["plan", "mapping.yaml", "--format", "qemu"]);
    assert!(text(&socket.stderr).contains("IPv4 addresses only"));
    assert!(text(&socket.stdout).contains("udp=[fd00::2]:41021,localaddr=[fd00::1]:41001"));
    let dgram = linkscope(
        dir.path(),
        &[
            "plan",
            "mapping.yaml",
            "--format",
            "qemu",
            "--netdev",
            "dgram",
        ],
    );
    assert_eq!(text(&dgram.stderr), "");
    assert!(text(&dgram.stdout).contains(
        "local.host=fd00::1,local.port=41001,remote.type=inet,remote.host=fd00::2,remote.port=41021"
    ));
}
