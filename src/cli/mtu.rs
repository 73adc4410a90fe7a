//! `linkscope mtu`: the path MTU between two hosts and the largest host_mtu it allows.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

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
    /// Check every cross-host link of this mapping.yaml against the path MTU found
    /// (exit status 1 when one does not fit).
    #[arg(long, value_name = "FILE", conflicts_with = "reflect")]
    mapping: Option<std::path::PathBuf>,
    /// With --mapping: check only the links these patterns name (as `splice --link`: 100,
    /// 100:*, 100:1, 100:1-102:1); repeatable.
    #[arg(long, value_name = "PATTERN", requires = "mapping")]
    link: Vec<String>,
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
    let links = match &args.mapping {
        Some(path) => {
            let links = crate::plan::load_links(path)?;
            Some(if args.link.is_empty() {
                links
            } else {
                crate::plan::select(&links, &args.link)?
                    .into_iter()
                    .cloned()
                    .collect()
            })
        }
        None => None,
    };
    let found = pmtu::probe(&ProbeConfig {
        target,
        timeout: Duration::from_millis(args.timeout_ms),
        attempts: args.attempts,
    })?;
    let checks = links
        .as_deref()
        .map(|links| check_links(links, target, &found, args.vlan_tags));
    if args.json {
        let mut value = json(target, &found, args.vlan_tags);
        if let Some(checks) = &checks {
            value["links"] = serde_json::to_value(&checks.links)?;
        }
        println!("{value}");
    } else {
        print!("{}", human(target, &found, args.vlan_tags));
        if let Some(checks) = &checks {
            print!("{}", checks.human());
        }
    }
    let all_fit = checks.is_none_or(|c| c.links.iter().all(|l| l.fits));
    Ok(if all_fit {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The guest MTU QEMU's virtio-net gives a guest when the NIC has no host_mtu.
const DEFAULT_GUEST_MTU: u32 = 1500;

#[derive(Debug, serde::Serialize)]
struct LinkCheck {
    name: String,
    /// null when the mapping sets none (the guest's default 1500 is checked).
    host_mtu: Option<u32>,
    largest_host_mtu: u32,
    fits: bool,
}

struct Checks {
    links: Vec<LinkCheck>,
    /// True when no cross-host link ends at the probed address, so all were checked.
    unrelated: bool,
}

impl Checks {
    fn human(&self) -> String {
        let mut out = String::new();
        if self.links.is_empty() {
            out.push_str("no cross-host link among the links checked\n");
        } else if self.unrelated {
            out.push_str(
                "no cross-host link checked ends at the probed address: \
                 checking them all against this path\n",
            );
        }
        for l in &self.links {
            let mtu = match l.host_mtu {
                Some(m) => format!("host_mtu {m}"),
                None => format!("no host_mtu (guest default {DEFAULT_GUEST_MTU})"),
            };
            if l.fits {
                out.push_str(&format!(
                    "{}: {mtu} fits (≤ {})\n",
                    l.name, l.largest_host_mtu
                ));
            } else {
                out.push_str(&format!(
                    "{}: {mtu} is too large: its large frames will be fragmented; set host_mtu ≤ {}\n",
                    l.name, l.largest_host_mtu
                ));
            }
        }
        out
    }
}

/// Checks the cross-host links (ends bound on different addresses) that end at the probed
/// address, or all cross-host links when none does.
fn check_links(
    links: &[crate::plan::Link],
    target: SocketAddr,
    found: &PathMtu,
    vlan_tags: u32,
) -> Checks {
    let cross: Vec<_> = links
        .iter()
        .filter(|l| l.a.local.ip() != l.b.local.ip())
        .collect();
    let at_target: Vec<_> = cross
        .iter()
        .copied()
        .filter(|l| l.a.local.ip() == target.ip() || l.b.local.ip() == target.ip())
        .collect();
    let unrelated = at_target.is_empty();
    let chosen = if unrelated { cross } else { at_target };
    let largest = found.largest_host_mtu(vlan_tags);
    Checks {
        links: chosen
            .into_iter()
            .map(|l| LinkCheck {
                name: l.name.clone(),
                host_mtu: l.host_mtu,
                largest_host_mtu: largest,
                fits: l.host_mtu.unwrap_or(DEFAULT_GUEST_MTU) <= largest,
            })
            .collect(),
        unrelated,
    }
}

fn reflect(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let reflector = Reflector::bind(listen)?;
    let stop = super::stop::flag()?;
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
