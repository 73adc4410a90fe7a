//! Command-line interface: clap types, argument resolution and one runner per subcommand.
//!
//! Each subcommand lives in its own module with an `Args` struct and a
//! `run(Args) -> anyhow::Result<ExitCode>`. Errors are printed once, here: input errors
//! (a [`crate::Error`] for which [`crate::Error::is_input`] holds) exit with status 2, a
//! closed standard output exits quietly with 0, everything else exits with 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod compare;
mod completions;
mod ctl;
mod decode;
mod demo;
mod extcap;
pub mod impair;
mod links;
mod man;
mod mtu;
mod plan;
mod relay;
mod serve;
mod splice;
mod spliced;
mod stop;

#[derive(Debug, Parser)]
#[command(name = "linkscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan UDP links from a mapping.yaml: `qm set` commands, QEMU, libvirt or JSON.
    Plan(plan::Args),
    /// The intercept plan: every link's endpoints (what each end binds, where it sends).
    Links(links::Args),
    /// A spliced two-VM lab on loopback: no VM, no root; writes demo.pcapng.
    Demo(demo::Args),
    /// Step into running QEMU UDP links and show what crosses them.
    Splice(splice::Args),
    /// Decode LLDP, STP/RSTP/MSTP/PVST+, LACP and Marker frames of pcap / pcapng files
    Decode(decode::Args),
    /// The links of a mapping as Wireshark interfaces (extcap), and their installation.
    Extcap(extcap::Args),
    /// Throughput, loss, jitter and round trips over a tunnel, standing in for a VM.
    Bench(bench::Args),
    /// Compare two captures of one link: one-way loss, duplicates, reordering and delay.
    Compare(compare::Args),
    /// Probe the path MTU towards a host, or answer probes with --reflect.
    Mtu(mtu::Args),
    /// Every link of a lab this node carries, live: a web page, a JSON API, Prometheus metrics.
    Serve(serve::Args),
    /// Join endpoints of any transport (UDP tunnels, TCP/Unix streams, …) into one link.
    Relay(relay::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Write man pages, one per command and subcommand, into a directory.
    Man(man::Args),
    /// Change a running splice or relay: impairment, cable down/up/flap, show.
    Ctl(ctl::Args),
}

/// Parses the command line, runs the subcommand and maps its outcome to an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Links(args) => links::run(args),
        Command::Splice(args) => splice::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Extcap(args) => extcap::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Mtu(args) => mtu::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Ctl(args) => ctl::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Every subcommand, nested ones too, as clap knows them: tests over this list cover a new
/// subcommand without being touched.
#[cfg(test)]
fn subcommands() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            out.push(sub.get_name().to_owned());
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut out);
    out
}

fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprintln!("linkscope: {err:#}");
    match err.downcast_ref::<crate::Error>() {
        Some(e) if e.is_input() => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
