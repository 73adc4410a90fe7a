//! `linkscope completions SHELL`: a shell completion script on standard output
//! (clap_complete), for every subcommand and option the command line has.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

/// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
///
/// Install it, e.g.:
/// `linkscope completions bash > ~/.local/share/bash-completion/completions/linkscope`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let script = script(args.shell);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`.
fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "linkscope", &mut script);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_script_completes_every_subcommand() {
        let names = super::super::subcommands();
        assert!(names.len() >= 10, "{names:?}");
        // How each script spells "NAME completes here": a case label, a described value.
        type Spelling = fn(&str) -> String;
        let forms: [(Shell, Spelling); 3] = [
            (Shell::Bash, |n| format!(",{n})")),
            (Shell::Zsh, |n| format!("'{n}:")),
            (Shell::Fish, |n| format!("-a \"{n}\"")),
        ];
        for (shell, form) in forms {
            let script = String::from_utf8(script(shell)).unwrap();
            for name in &names {
                assert!(script.contains(&form(name)), "{shell}: no {name}");
            }
        }
    }
}
