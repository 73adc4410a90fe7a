//! `linkscope man DIR`: man pages (clap_mangen), one per command and subcommand
//! (`linkscope.1`, `linkscope-splice.1`, `linkscope-bench-send.1`, ...), written into DIR.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory as _;

/// Write man pages into DIR (created if missing), one per command, and print their paths.
///
/// Install them, e.g.: `linkscope man ~/.local/share/man/man1`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to write into, e.g. ~/.local/share/man/man1.
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for path in write_pages(&args.dir)? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders every page, then writes them into `dir`; returns the paths written.
fn write_pages(dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let pages = pages().map_err(|source| crate::Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| crate::Error::Io { path, source }
    };
    if dir.exists() && !dir.is_dir() {
        return Err(io(dir)(std::io::ErrorKind::NotADirectory.into()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, page) in pages {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// (file name, roff text) of the page of every command and subcommand, the top one first.
fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        out.push((man.get_filename(), page));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), out)?;
        }
        Ok(())
    }
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_every_subcommand_and_the_top_page_names_them_all() {
        let names = super::super::subcommands();
        let pages = pages().unwrap();
        let files: Vec<&str> = pages.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(files[0], "linkscope.1");
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        for cmd in super::super::Cli::command().get_subcommands() {
            let name = cmd.get_name();
            assert!(
                files.contains(&format!("linkscope-{name}.1").as_str()),
                "{files:?}"
            );
            assert!(
                top.contains(&format!("linkscope\\-{name}(1)")),
                "top page: no {name}"
            );
        }
        for name in &names {
            assert!(
                files.iter().any(|f| f.ends_with(&format!("-{name}.1"))),
                "no page for {name}: {files:?}"
            );
        }
    }
}
