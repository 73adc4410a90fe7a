//! `linkscope completions bash` and `linkscope man DIR` with the real consumers: bash runs the
//! completion function and offers every subcommand, `man` renders a page for every command.
//! The list of subcommands comes from clap itself (`linkscope --help`, `linkscope X --help`),
//! so a new subcommand is covered without touching this file.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use support::process::{linkscope, run};

/// The subcommands clap lists under "Commands:" in `linkscope [path] --help`, without `help`.
fn commands_of(path: &[&str]) -> Vec<String> {
    let help = run(linkscope().args(path).arg("--help"));
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line == "Commands:" {
            inside = true;
        } else if inside && line.starts_with("  ") {
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                names.push(name.to_owned());
            }
        } else if inside {
            break;
        }
    }
    names
}

/// Every command path: `["plan"]`, `["bench", "send"]`, ...
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        for name in commands_of(&refs) {
            let mut sub = path.clone();
            sub.push(name);
            todo.push(sub.clone());
            paths.push(sub);
        }
    }
    assert!(paths.len() >= 10, "{paths:?}");
    paths
}

fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("LINKSCOPE_REQUIRE_LAB").as_deref() != Ok("1"),
            "{tool} is missing"
        );
        eprintln!("SKIP: {tool} is not installed");
    }
    found
}

/// What bash's completion offers after `linkscope WORDS… ` (an empty word at the end).
fn bash_offers(script: &std::path::Path, words: &[String]) -> BTreeSet<String> {
    let mut line = vec!["linkscope".to_owned()];
    line.extend(words.iter().cloned());
    let quoted: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({} ''); COMP_CWORD={}; COMP_LINE='{} '; COMP_POINT=${{#COMP_LINE}}; _linkscope linkscope '' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        line.len(),
        line.join(" "),
        line.last().unwrap(),
    );
    run(Command::new("bash").args(["--norc", "-c", &program]))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_every_subcommand() {
    if !require("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("linkscope.bash");
    std::fs::write(&script, run(linkscope().args(["completions", "bash"]))).unwrap();
    let paths = command_paths();
    let parents: BTreeSet<Vec<String>> = paths.iter().map(|p| p[..p.len() - 1].to_vec()).collect();
    for parent in parents {
        let offered = bash_offers(&script, &parent);
        for path in paths.iter().filter(|p| p[..p.len() - 1] == parent[..]) {
            let name = path.last().unwrap();
            assert!(
                offered.contains(name),
                "bash does not offer {name} after `linkscope {}`: {offered:?}",
                parent.join(" ")
            );
        }
    }
}

#[test]
fn man_pages_render_for_every_subcommand() {
    if !require("man") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let listed = run(linkscope().arg("man").arg(&out));
    let top = out.join("linkscope.1");
    assert!(
        listed.lines().any(|l| l == top.to_str().unwrap()),
        "{listed}"
    );
    let rendered = |page: &std::path::Path| {
        run(Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANWIDTH", "200")
            .env("MAN_KEEP_FORMATTING", "0"))
    };
    let top_text = rendered(&top);
    for path in command_paths() {
        let name = format!("linkscope-{}", path.join("-"));
        let page = out.join(format!("{name}.1"));
        assert!(page.is_file(), "no {}", page.display());
        assert!(
            rendered(&page).contains(&name),
            "{name}.1 does not render its name"
        );
        if path.len() == 1 {
            assert!(
                top_text.contains(&format!("{name}(1)")),
                "linkscope.1 does not list {name}"
            );
        }
    }
}

#[test]
fn man_into_a_file_is_an_input_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = linkscope().arg("man").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
