//! `linkscope mtu`: the path MTU between two hosts and the largest host_mtu it allows.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::measure::pmtu::{self, PathMtu, ProbeConfig, Reflector, Source};

/// The UDP port of the reflector when none is given.
const DEFAULT_PORT: u16 = 7447;

/// Probe the path MTU towards a host running `linkscope mtu --reflect`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["to", "reflect"]))]
pub struct Args {
    /// The host to probe (name or address), where `linkscope mtu --reflect` runs.
    #[arg(long, value_name = "HOST")]
    to: Option<String>,
    /// The reflector's UDP port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Answer probes instead of sending them.
    #[arg(long, conflicts_with = "to")]
    reflect: bool,
    /// Where the reflector listens (port 0 picks a free one; the address is printed).
    #[arg(
        long,
        value_name = "IP:PORT",
        requires = "reflect",
        default_value = "0.0.0.0:7447"
    )]
    listen: SocketAddr,
    /// How long to wait for each probe's answer, in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    timeout_ms: u64,
    /// Probes per size before the size counts as too large.
    #[arg(long, default_value_t = 3, value_name = "N")]
    attempts: u32,
    /// VLAN tags the guests put on their frames (each needs 4 bytes).
    #[arg(long, default_value_t = 0, value_name = "N")]
    vlan_tags: u32,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `linkscope mtu`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.reflect {
        return reflect(args.listen);
    }
    let host = args.to.as_deref().unwrap_or_default();
    let target = (host, args.port)
        .to_socket_addrs()
        .map_err(|e| crate::Error::Argument {
            field: "--to".into(),
            message: format!("{host}: {e}"),
        })?
        .next()
        .ok_or_else(|| crate::Error::Argument {
            field: "--to".into(),
            message: format!("{host}: no address"),
        })?;
    let found = pmtu::probe(&ProbeConfig {
        target,
        timeout: Duration::from_millis(args.timeout_ms),
        attempts: args.attempts,
    })?;
    if args.json {
        println!("{}", json(target, &found, args.vlan_tags));
    } else {
        print!("{}", human(target, &found, args.vlan_tags));
    }
    Ok(ExitCode::SUCCESS)
}

fn reflect(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let reflector = Reflector::bind(listen)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the signal handler")?;
    }
    println!("reflecting path-MTU probes on {}", reflector.local_addr()?);
    std::io::Write::flush(&mut std::io::stdout())?;
    let answered = reflector.serve(&stop)?;
    eprintln!("answered {answered} probes");
    Ok(ExitCode::SUCCESS)
}

fn human(target: SocketAddr, found: &PathMtu, vlan_tags: u32) -> String {
    let family = match found.outer {
        crate::measure::fragment::Outer::Ipv4 => "IPv4",
        crate::measure::fragment::Outer::Ipv6 => "IPv6",
    };
    let how = match found.source {
        Source::Reflector => format!(
            "confirmed end to end by the reflector in {} probes; the kernel's route MTU is {}",
            found.probes, found.kernel_mtu
        ),
        Source::Kernel => format!(
            "the kernel's route MTU, NOT confirmed: no reflector answered at {target} \
             (run `linkscope mtu --reflect --listen IP:PORT` there)"
        ),
    };
    let tags = match vlan_tags {
        0 => "untagged frames; 4 less per VLAN tag".to_string(),
        n => format!("frames with {n} VLAN tag(s)"),
    };
    format!(
        "path MTU to {target}: {} bytes ({how})\n\
         largest host_mtu without fragmentation: {} ({family} tunnel, {tags})\n",
        found.path_mtu,
        found.largest_host_mtu(vlan_tags),
    )
}

fn json(target: SocketAddr, found: &PathMtu, vlan_tags: u32) -> serde_json::Value {
    serde_json::json!({
        "target": target.to_string(),
        "path_mtu": found.path_mtu,
        "source": match found.source {
            Source::Reflector => "reflector",
            Source::Kernel => "kernel",
        },
        "kernel_mtu": found.kernel_mtu,
        "probes": found.probes,
        "vlan_tags": vlan_tags,
        "largest_host_mtu": found.largest_host_mtu(vlan_tags),
    })
}
