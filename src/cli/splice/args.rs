//! The command line of `linkscope splice`, as clap parses it; [`super::options`] checks it
//! and fills in the defaults.

use crate::cli::impair::ImpairArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ModeArg {
    /// Share the VMs' bound addresses: no reconfiguration, no restart.
    Steal,
    /// Own the ports given by --listen; the VMs must send to them (see `plan --splice`).
    Relay,
}

/// Step into running QEMU UDP socket links and show what crosses them.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("links").args(["link", "all"]))]
pub struct Args {
    /// The mapping.yaml the links are planned from.
    #[arg(long, value_name = "FILE", requires = "links")]
    pub(super) mapping: Option<PathBuf>,
    /// Links of the mapping: a link's name (100:1-102:1), one end's link (100:1, 100:eth1)
    /// or every link of a VM (100, 100:*); repeatable: every link named, once each and in
    /// the mapping's order, goes into one capture.
    #[arg(long, value_name = "PATTERN", requires = "mapping")]
    pub(super) link: Vec<String>,
    /// Every link of the mapping.
    #[arg(long, requires = "mapping")]
    pub(super) all: bool,
    /// End A's bound address (the address its QEMU netdev binds), IP:PORT.
    #[arg(
        long = "a",
        value_name = "IP:PORT",
        requires = "end_b",
        conflicts_with = "mapping"
    )]
    pub(super) end_a: Option<SocketAddr>,
    /// End B's bound address, IP:PORT.
    #[arg(long = "b", value_name = "IP:PORT", requires = "end_a")]
    pub(super) end_b: Option<SocketAddr>,
    /// Steal a link even when another splice holds it: that one loses the tunnel (and
    /// reports the gap) until this one ends.
    #[arg(long)]
    pub(super) force: bool,
    /// steal (default): share the VMs' addresses; relay: own the --listen ports.
    #[arg(long, value_enum, default_value = "steal")]
    pub(super) mode: ModeArg,
    /// Relay mode: IP:PORT_A,PORT_B, the ports end A and end B send to (one per link, in
    /// the links' order, which is the mapping's).
    #[arg(long, value_name = "IP:PORT_A,PORT_B")]
    pub(super) listen: Vec<String>,
    /// Write pcapng to FILE, or to standard output with `-w -` (flushed per batch, for
    /// `| wireshark -k -i -`); without -w, one line per frame is printed.
    #[arg(short = 'w', value_name = "FILE")]
    pub(super) write: Option<PathBuf>,
    /// Keep at most SNAPLEN bytes of each frame in the capture (0: whole frames).
    #[arg(short = 's', value_name = "SNAPLEN", default_value_t = 0)]
    pub(super) snaplen: u32,
    /// Capture filter in libpcap syntax, as tcpdump's and dumpcap's (e.g. 'not stp'): only
    /// the frames it passes are written, printed and counted for -c; forwarding, the
    /// measurements and --expect still see every frame. Needs libpcap (libpcap0.8).
    #[arg(short = 'f', value_name = "FILTER")]
    pub(super) filter: Option<String>,
    /// Ring buffer (with -w FILE): filesize:KB, duration:SECONDS, files:N, as dumpcap.
    #[arg(short = 'b', value_name = "COND")]
    pub(super) ring: Vec<String>,
    /// Stop after COUNT frames.
    #[arg(short = 'c', value_name = "COUNT")]
    pub(super) count: Option<u64>,
    /// Stop automatically: duration:SECONDS, packets:N or filesize:KB (repeatable; the
    /// first reached wins).
    #[arg(short = 'a', value_name = "COND")]
    pub(super) autostop: Vec<String>,
    /// Print nothing per frame (only the start report, the status lines and the summary).
    #[arg(short = 'q', long)]
    pub(super) quiet: bool,
    /// The links' host_mtu for the fragmentation figures (default: each link's host_mtu in
    /// the mapping; none without a mapping).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..))]
    pub(super) host_mtu: Option<u32>,
    /// The path MTU between the tunnel's hosts (default: the kernel's route MTU towards the
    /// peer, 65535 on loopback).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..))]
    pub(super) path_mtu: Option<u32>,
    /// Forwarding threads: every link lives on one of them (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) workers: Option<u16>,
    /// Seconds between status lines on standard error (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub(super) stats_interval: f64,
    /// Write the JSON report at the end to FILE, or to standard output with `--json -`.
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// With --json: also write one JSON report per stats interval, one object a line.
    #[arg(long, requires = "json")]
    pub(super) json_stream: bool,
    /// Measure nothing: no status lines, no summary of the measurements, no report.
    #[arg(long, conflicts_with_all = ["json", "host_mtu", "path_mtu"])]
    pub(super) no_measure: bool,
    /// Exit 0 as soon as these control protocols have crossed every link, else exit 1 after
    /// --timeout naming what never came: lldp, stp, lacp, each optionally :a>b or :b>a
    /// (default: both directions); comma-separated, repeatable.
    #[arg(long, value_name = "PROTO[:DIR],...")]
    pub(super) expect: Vec<String>,
    /// With --expect: how long to wait, in seconds [default: 60].
    #[arg(long, value_name = "SECONDS", requires = "expect")]
    pub(super) timeout: Option<f64>,
    #[command(flatten)]
    pub(super) impair: ImpairArgs,
}
