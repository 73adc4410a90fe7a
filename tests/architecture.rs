//! The documentation agrees with the tree: ARCHITECTURE.md's code map names every directory
//! and every module file under src/ and nothing that does not exist; every relative link of
//! README.md, ARCHITECTURE.md and docs/ reaches a file (and a heading, for `#anchor`s);
//! README.md stays a front door (at most 15 KB, the two commands CI and users run); every
//! subcommand clap knows is in README's command table and documented under docs/; every test
//! binary has a row in docs/testing.md.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use support::process::{linkscope, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `src/` paths a code map must name: every directory (`src/x/`) and every `.rs` file but
/// `mod.rs` (its directory stands for it).
fn tree(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(ROOT)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if path.is_dir() {
            out.insert(format!("{rel}/"));
            tree(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().unwrap() != "mod.rs"
        {
            out.insert(rel);
        }
    }
}

/// Every `` `src/…` `` path a text names.
fn named_paths(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("src/") && !s.contains(' '))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_code_map_names_every_module_and_no_other() {
    let arch = read("ARCHITECTURE.md");
    let start = arch
        .find("## Code map")
        .expect("ARCHITECTURE.md has a code map");
    let end = arch[start + 1..]
        .find("\n## ")
        .map_or(arch.len(), |i| start + 1 + i);
    let map: BTreeSet<String> = arch[start..end]
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let mut want = BTreeSet::new();
    tree(&Path::new(ROOT).join("src"), &mut want);
    want.insert("src/lib.rs".into());
    let missing: Vec<_> = want.difference(&map).collect();
    let extra: Vec<_> = map.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ARCHITECTURE.md's code map lacks {missing:?} and names {extra:?}, which do not exist"
    );
    // Paths named anywhere else on the page exist too (module paths like `src/x.rs` only;
    // `{,6}`-style patterns are not paths).
    for path in named_paths(&arch) {
        if !path.contains('{') {
            assert!(
                Path::new(ROOT).join(&path).exists(),
                "ARCHITECTURE.md names {path}"
            );
        }
    }
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("ARCHITECTURE.md"),
    ];
    for entry in fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as
/// dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of `](target)` links that are not URLs.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_link_reaches_a_file_and_heading() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for link in relative_links(&text) {
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}", file.display()));
            } else if !fragment.is_empty()
                && !anchors(&fs::read_to_string(&target).unwrap()).contains(fragment)
            {
                broken.push(format!("{}: {link} (no such heading)", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_is_a_front_door() {
    let readme = read("README.md");
    assert!(
        readme.len() <= 15 * 1024,
        "README.md is {} bytes",
        readme.len()
    );
    assert!(readme.contains("cargo run --release -- demo"));
    assert!(readme.contains("bash scripts/test.sh"));
}

/// The subcommands `linkscope --help` lists (clap's own list), without `help`.
fn subcommands() -> Vec<String> {
    let help = run(linkscope().arg("--help"));
    let list = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_is_in_the_readme_table_and_documented_under_docs() {
    let readme = read("README.md");
    let docs: String = markdown_files()
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("docs"))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    for name in subcommands() {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README.md's command table has no row for {name}"
        );
        assert!(
            docs.contains(&format!("linkscope {name}")),
            "no page under docs/ shows `linkscope {name}`"
        );
    }
}

#[test]
fn every_test_binary_is_in_the_testing_page() {
    let testing = read("docs/testing.md");
    let mut missing = Vec::new();
    for entry in fs::read_dir(Path::new(ROOT).join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if !testing.contains(&format!("| `{name}` |")) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/testing.md has no row for {missing:?}"
    );
}
