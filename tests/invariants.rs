//! The invariants Cargo.toml's `[lints]` enforce, checked by running the compiler on a scratch
//! crate that carries this package's `[lints]` table verbatim and the first lines of the real
//! src/net/sys.rs: an `unsafe` block outside the syscall module fails the build, an
//! undocumented one inside it fails clippy, a documented one inside it passes.
//!
//! The scratch crate has no dependencies, so each check takes about a second.

use std::fs;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The one allowance, spelled in two halves so this file does not hold it.
const ALLOW: &str = concat!("allow(", "unsafe_code)");

/// This package's `[lints.*]` tables, as written in its Cargo.toml.
fn lints_tables() -> String {
    let manifest = fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            inside = line.starts_with("[lints");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        out.contains("unsafe_code") && out.contains("undocumented_unsafe_blocks"),
        "Cargo.toml's [lints] lost a rule:\n{out}"
    );
    out
}

/// The real src/net/sys.rs up to its inner attribute lifting `unsafe_code`: the module's docs
/// and its allowance, exactly as the package has them.
fn sys_header() -> String {
    let sys = fs::read_to_string(Path::new(ROOT).join("src/net/sys.rs")).unwrap();
    let attribute = format!("#![{ALLOW}]");
    let end = sys
        .find(&attribute)
        .expect("src/net/sys.rs allows unsafe_code for itself")
        + attribute.len();
    format!("{}\n", &sys[..end])
}

struct Outcome {
    ok: bool,
    stderr: String,
}

/// Runs `cargo clippy` on a crate with `lib.rs` declaring `net::sys` and `wire`, holding
/// `sys_body` and `wire_body`, under this package's lints.
fn clippy(sys_body: &str, wire_body: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n\n{}",
            lints_tables()
        ),
    )
    .unwrap();
    fs::create_dir_all(root.join("src/net")).unwrap();
    fs::write(
        root.join("src/lib.rs"),
        "//! Scratch.\npub mod net;\npub mod wire;\n",
    )
    .unwrap();
    fs::write(root.join("src/net/mod.rs"), "//! Scratch.\npub mod sys;\n").unwrap();
    fs::write(
        root.join("src/net/sys.rs"),
        format!("{}\n{sys_body}", sys_header()),
    )
    .unwrap();
    fs::write(
        root.join("src/wire.rs"),
        format!("//! Scratch.\n{wire_body}"),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["clippy", "--quiet", "--offline", "--", "-D", "warnings"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    Outcome {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const DOCUMENTED: &str = "/// Reads the first byte.\npub fn first(d: &[u8; 1]) -> u8 {\n    // SAFETY: the array holds one byte, so its pointer is valid for one read.\n    unsafe { *d.as_ptr() }\n}\n";
const UNDOCUMENTED: &str =
    "/// Reads the first byte.\npub fn first(d: &[u8; 1]) -> u8 {\n    unsafe { *d.as_ptr() }\n}\n";

fn clippy_available() -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("LINKSCOPE_REQUIRE_LAB").is_none(),
            "cargo clippy is missing"
        );
        eprintln!("SKIP: cargo clippy is not installed");
    }
    ok
}

#[test]
fn documented_unsafe_in_the_syscall_module_passes() {
    if !clippy_available() {
        return;
    }
    let run = clippy(DOCUMENTED, "");
    assert!(run.ok, "{}", run.stderr);
}

#[test]
fn unsafe_outside_the_syscall_module_fails_even_with_a_safety_comment() {
    if !clippy_available() {
        return;
    }
    let run = clippy("", DOCUMENTED);
    assert!(!run.ok, "an unsafe block in wire.rs passed");
    assert!(
        run.stderr.contains("usage of an `unsafe` block") && run.stderr.contains("src/wire.rs"),
        "{}",
        run.stderr
    );
}

#[test]
fn undocumented_unsafe_in_the_syscall_module_fails() {
    if !clippy_available() {
        return;
    }
    let run = clippy(UNDOCUMENTED, "");
    assert!(!run.ok, "an unsafe block without SAFETY comment passed");
    assert!(
        run.stderr.contains("unsafe block missing a safety comment")
            && run.stderr.contains("src/net/sys.rs"),
        "{}",
        run.stderr
    );
}

/// No file but src/net/sys.rs lifts the lint: the allowance is the one above, nowhere else.
#[test]
fn only_the_syscall_module_allows_unsafe_code() {
    let mut offenders = Vec::new();
    for top in ["src", "bins", "tests", "benches"] {
        visit(&Path::new(ROOT).join(top), &mut |path| {
            let text = fs::read_to_string(path).unwrap();
            let rel = path.strip_prefix(ROOT).unwrap();
            if text.contains(ALLOW) && rel != Path::new("src/net/sys.rs") {
                offenders.push(rel.display().to_string());
            }
        });
    }
    assert!(offenders.is_empty(), "unsafe_code allowed in {offenders:?}");
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(&path);
        }
    }
}

/// One clock and one VLAN walk: `now_ns` is defined in src/clock.rs only, and only
/// src/wire/mod.rs (`wire::untag`) matches on VLAN tag protocol identifiers.
#[test]
fn one_clock_and_one_vlan_walk() {
    let mut offenders = Vec::new();
    visit(&Path::new(ROOT).join("src"), &mut |path| {
        let text = fs::read_to_string(path).unwrap();
        let rel = path.strip_prefix(ROOT).unwrap();
        if text.contains(&["fn ", "now_ns("].concat()) && rel != Path::new("src/clock.rs") {
            offenders.push(format!("{}: its own now_ns", rel.display()));
        }
        let walks = ["VLAN_TAGGED_FRAME", "0x8100 |", "0x88a8 |"]
            .iter()
            .any(|pattern| text.contains(pattern));
        if walks && rel != Path::new("src/wire/mod.rs") {
            offenders.push(format!("{}: its own VLAN tag walk", rel.display()));
        }
    });
    assert!(offenders.is_empty(), "{offenders:#?}");
}
