//! `linkscope plan MAPPING`: `qm set` commands (or QEMU / libvirt / JSON) for a mapping, or
//! the relays that carry its `transport: tcp` links between hosts.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::{self, Mapping, PveSource, Showcmd, qemu::Netdev};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `qm set <vmid> --args "…"`, byte for byte as gen_pve_links_args.py prints it.
    Qm,
    /// Plain QEMU arguments per VM (no PCI bus/addr).
    Qemu,
    /// libvirt `<interface type='udp'>` elements per VM.
    Libvirt,
    /// Everything the plan decided, as JSON.
    Json,
    /// Per host, the `linkscope relay` commands that carry the `transport: tcp` links
    /// between hosts (the host whose address sorts first listens).
    Relays,
    /// The same relays as systemd service units, per host.
    RelaysSystemd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetdevArg {
    /// `-netdev socket,udp=…,localaddr=…`.
    Socket,
    /// `-netdev dgram,…` (QEMU ≥ 7.2).
    Dgram,
}

/// Plan UDP links from a mapping.yaml.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mapping file (defaults and links).
    mapping: PathBuf,
    /// Directory holding the VMs' `<vmid>.conf` (a missing file means no NICs).
    #[arg(long, value_name = "DIR", default_value = "/etc/pve/qemu-server")]
    pve_config_dir: PathBuf,
    /// Directory holding `<vmid>.cmd`, each what `qm showcmd <vmid>` prints. Without it,
    /// `qm showcmd` runs when `qm` is on PATH, else no existing devices are assumed.
    #[arg(long, value_name = "DIR")]
    qm_showcmd_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Qm)]
    format: Format,
    /// Netdev syntax for `--format qemu`.
    #[arg(long, value_enum, default_value_t = NetdevArg::Socket)]
    netdev: NetdevArg,
    /// Route a link through a relay-mode splice: SPEC (link name or end) = IP:PORT_A,PORT_B,
    /// the ports `linkscope splice --mode relay --listen IP:PORT_A,PORT_B` listens on; end A
    /// sends to PORT_A, end B to PORT_B (repeatable).
    #[arg(long, value_name = "SPEC=IP:PORT_A,PORT_B")]
    splice: Vec<String>,
    /// MTU of the path between hosts, for the warning on cross-host links.
    #[arg(long, value_name = "BYTES", default_value_t = 1500)]
    path_mtu: u32,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.netdev == NetdevArg::Dgram && args.format != Format::Qemu {
        return Err(crate::Error::Argument {
            field: "--netdev".into(),
            message: "dgram applies to --format qemu only".into(),
        }
        .into());
    }
    let showcmd = match args.qm_showcmd_dir {
        Some(dir) => Showcmd::Dir(dir),
        None if qm_on_path() => Showcmd::Qm,
        None => Showcmd::Nothing,
    };
    let pve = PveSource {
        config_dir: args.pve_config_dir,
        showcmd,
    };
    let mapping = Mapping::load(&args.mapping)?;
    let mut plan = plan::plan(&mapping, &pve, args.path_mtu)?;
    for text in &args.splice {
        let (spec, listen) = text.split_once('=').ok_or_else(|| crate::Error::Argument {
            field: "--splice".into(),
            message: format!("{text:?}: expected SPEC=IP:PORT_A,PORT_B"),
        })?;
        let (listen_a, listen_b) = crate::splice::parse_listen(listen, "--splice")?;
        plan::relay::through_splice(&mut plan, spec, listen_a, listen_b)?;
    }
    for warning in &plan.warnings {
        eprintln!("linkscope: warning: {warning}");
    }
    let socket = args.format == Format::Qm
        || (args.format == Format::Qemu && args.netdev == NetdevArg::Socket);
    if socket
        && plan
            .links
            .iter()
            .any(|l| l.a.local.is_ipv6() || l.b.local.is_ipv6())
    {
        eprintln!(
            "linkscope: warning: QEMU's -netdev socket takes IPv4 addresses only; for IPv6 links use --format qemu --netdev dgram"
        );
    }
    let text = match args.format {
        Format::Qm => plan::qm::render(&plan),
        Format::Qemu => plan::qemu::render(
            &plan,
            match args.netdev {
                NetdevArg::Socket => Netdev::Socket,
                NetdevArg::Dgram => Netdev::Dgram,
            },
        ),
        Format::Libvirt => plan::libvirt::render(&plan),
        Format::Json => plan::json::plan(&plan),
        Format::Relays => plan::tcp::render_commands(&plan),
        Format::RelaysSystemd => plan::tcp::render_systemd(&plan),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn qm_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("qm").is_file()))
}
