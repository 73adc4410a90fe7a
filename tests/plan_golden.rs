//! Golden tests of `linkscope plan` and `linkscope links` over testdata/plan/.
//!
//! Each directory there is one case: `mapping.yaml`, optionally `pve/` (the PVE state:
//! `<vmid>.conf` and `<vmid>.cmd`, the text `qm showcmd` prints; without it the empty
//! state), and the expected results, each derived by hand from the generator's rules:
//! - `expected.qm` / `.qemu` / `.dgram` / `.libvirt` / `.relays` / `.relays-systemd`: stdout
//!   of `plan` in that format;
//! - `expected.links` / `expected.links.json`: stdout of `links` / `links --json`;
//! - `expected.stderr`: the warnings of `plan` (absent: stderr must be empty), or for one
//!   format `expected.FORMAT.stderr`;
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
        let warnings = std::fs::read_to_string(case.join(format!("{file}.stderr")))
            .or_else(|_| std::fs::read_to_string(case.join("expected.stderr")))
            .unwrap_or_default();
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
        (
            "expected.relays",
            &["plan", "mapping.yaml", "--format", "relays"],
        ),
        (
            "expected.relays-systemd",
            &["plan", "mapping.yaml", "--format", "relays-systemd"],
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
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing mapping is the user's to fix"
    );
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

/// Without `--qm-showcmd-dir`, `plan` runs `qm showcmd <vmid>` when `qm` is on PATH (a
/// stand-in script here, printing the case's showcmd text), and assumes no devices when the
/// command fails or `qm` is absent.
#[test]
fn showcmd_comes_from_qm_on_path() {
    use std::os::unix::fs::PermissionsExt as _;
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/plan/reuse-lowest-free");
    let bin = tempfile::tempdir().unwrap();
    let qm = bin.path().join("qm");
    std::fs::write(
        &qm,
        format!(
            "#!/bin/sh\n[ \"$1\" = showcmd ] || exit 3\nf='{}/pve/'\"$2\".cmd\n[ -f \"$f\" ] || exit 2\ncat \"$f\"\n",
            case.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&qm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |path: &std::ffi::OsStr| {
        Command::cargo_bin("linkscope")
            .unwrap()
            .current_dir(&case)
            .env("PATH", path)
            .args(["plan", "mapping.yaml", "--pve-config-dir", "pve"])
            .output()
            .unwrap()
    };
    let system = std::env::var_os("PATH").unwrap_or_default();
    let mut with_qm = std::ffi::OsString::from(bin.path());
    with_qm.push(":");
    with_qm.push(&system);
    let out = run(&with_qm);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected = std::fs::read_to_string(case.join("expected.qm")).unwrap();
    assert_eq!(text(&out.stdout), expected);

    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path().as_os_str());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("# Reused"), "{stdout}");
    assert!(
        stdout.contains("netdev=net5,bus=pci.0,addr=0x2,"),
        "{stdout}"
    );
}

#[test]
fn json_plan_holds_every_decision() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/plan/reuse-lowest-free");
    let out = linkscope(&case, &["plan", "mapping.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["port_scheme"], "legacy");
    assert_eq!(plan["port_formula"], "4+VMID+ethIndex");
    assert_eq!(plan["pci_alloc_strategy"], "lowest_free");
    assert_eq!(plan["ports"][0]["port"], 41001);
    assert_eq!(plan["ports"][0]["explicit"], false);
    let vm100 = &plan["vms"][0];
    assert_eq!(vm100["vm"], 100);
    assert_eq!(vm100["start_index"], 5);
    let nic = &vm100["nics"][0];
    assert_eq!(nic["net"], 1);
    assert_eq!(nic["slot"], "0x13");
    assert_eq!(nic["reused"], true);
    assert_eq!(nic["link"], "100:1-102:1");
    assert_eq!(nic["side"], "a");
    assert_eq!(nic["local"], "127.0.0.1:41001");
    assert_eq!(vm100["nics"][1]["slot"], "0x3");
    assert_eq!(vm100["nics"][1]["reused"], false);
    let qm = std::fs::read_to_string(case.join("expected.qm")).unwrap();
    let line = qm.lines().find(|l| l.starts_with("qm set 100 ")).unwrap();
    assert_eq!(
        line,
        format!(
            "qm set 100 --args \"{}\"",
            vm100["qm_args"].as_str().unwrap()
        )
    );
    let links = linkscope(&case, &["links", "mapping.yaml", "--json"]);
    let links: serde_json::Value = serde_json::from_slice(&links.stdout).unwrap();
    assert_eq!(links["links"], plan["links"]);
}

#[test]
fn links_shows_what_link_patterns_select() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mapping.yaml"),
        "links:\n  - [100, 1, 102, 1]\n  - [101, 1, 102, 2]\n  - [100, 2, 103, 1]\n",
    )
    .unwrap();
    let names = |patterns: &[&str]| -> Vec<String> {
        let mut args = vec!["links", "mapping.yaml", "--json"];
        for p in patterns {
            args.extend(["--link", p]);
        }
        let out = linkscope(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&[]).len(), 3);
    assert_eq!(names(&["100"]), ["100:1-102:1", "100:2-103:1"]);
    assert_eq!(
        names(&["103:1", "102:*"]),
        ["100:1-102:1", "101:1-102:2", "100:2-103:1"]
    );
    let out = linkscope(dir.path(), &["links", "mapping.yaml", "--link", "104"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no link '104'"),
        "{}",
        text(&out.stderr)
    );
}
