//! `linkscope splice`: step into running QEMU UDP tunnels, relay every frame unchanged, and
//! show what crosses them.

pub(super) mod watch;

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::capture::{Interface, Output, Writer};
use crate::measure::l2::Expect;
use crate::measure::meter::{Counters, Ends, SpliceCounters};
use crate::measure::report::{self, Report};
use crate::measure::snmp::{self, FragCounters};
use crate::splice::copy::{self, Consumer, CopyRecord, Next};
use crate::splice::meters::{self, Metered, Meters};
use crate::splice::recorder::Recorder;
use crate::splice::watch::{Views, Watched};
use crate::splice::{
    CopyFilter, Direction, LinkConfig, LinkStats, Mode, Splice, SpliceConfig, Survey,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    /// Share the VMs' bound addresses: no reconfiguration, no restart.
    Steal,
    /// Own the ports given by --listen; the VMs must send to them (see `plan --splice`).
    Relay,
}

/// Step into running QEMU UDP socket links and show what crosses them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mapping.yaml the links are planned from.
    #[arg(long, value_name = "FILE", requires = "link")]
    mapping: Option<PathBuf>,
    /// A link of the mapping: its name (100:1-102:1) or one of its ends (100:1, 100:eth1);
    /// repeatable, all links go into one capture.
    #[arg(long, value_name = "SPEC", requires = "mapping")]
    link: Vec<String>,
    /// End A's bound address (the address its QEMU netdev binds), IP:PORT.
    #[arg(
        long = "a",
        value_name = "IP:PORT",
        requires = "end_b",
        conflicts_with = "mapping"
    )]
    end_a: Option<SocketAddr>,
    /// End B's bound address, IP:PORT.
    #[arg(long = "b", value_name = "IP:PORT", requires = "end_a")]
    end_b: Option<SocketAddr>,
    /// steal (default): share the VMs' addresses; relay: own the --listen ports.
    #[arg(long, value_enum, default_value = "steal")]
    mode: ModeArg,
    /// Relay mode: IP:PORT_A,PORT_B, the ports end A and end B send to (one per link, in
    /// order).
    #[arg(long, value_name = "IP:PORT_A,PORT_B")]
    listen: Vec<String>,
    /// Write pcapng to FILE, or to standard output with `-w -` (flushed per batch, for
    /// `| wireshark -k -i -`); without -w, one line per frame is printed.
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<PathBuf>,
    /// Keep at most SNAPLEN bytes of each frame in the capture (0: whole frames).
    #[arg(short = 's', value_name = "SNAPLEN", default_value_t = 0)]
    snaplen: u32,
    /// Ring buffer (with -w FILE): filesize:KB, duration:SECONDS, files:N, as dumpcap.
    #[arg(short = 'b', value_name = "COND")]
    ring: Vec<String>,
    /// Stop after COUNT frames.
    #[arg(short = 'c', value_name = "COUNT")]
    count: Option<u64>,
    /// Stop automatically: duration:SECONDS, packets:N or filesize:KB (repeatable; the
    /// first reached wins).
    #[arg(short = 'a', value_name = "COND")]
    autostop: Vec<String>,
    /// Print nothing per frame (only the start report, the status lines and the summary).
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The links' host_mtu for the fragmentation figures (default: each link's host_mtu in
    /// the mapping; none without a mapping).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..))]
    host_mtu: Option<u32>,
    /// The path MTU between the tunnel's hosts (default: the kernel's route MTU towards the
    /// peer, 65535 on loopback).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..))]
    path_mtu: Option<u32>,
    /// Forwarding threads: every link lives on one of them (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// Seconds between status lines on standard error (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    stats_interval: f64,
    /// Write the JSON report at the end to FILE, or to standard output with `--json -`.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// With --json: also write one JSON report per stats interval, one object a line.
    #[arg(long, requires = "json")]
    json_stream: bool,
    /// Measure nothing: no status lines, no summary of the measurements, no report.
    #[arg(long, conflicts_with_all = ["json", "host_mtu", "path_mtu"])]
    no_measure: bool,
    /// Exit 0 as soon as these control protocols have crossed every link, else exit 1 after
    /// --timeout naming what never came: lldp, stp, lacp, each optionally :a>b or :b>a
    /// (default: both directions); comma-separated, repeatable.
    #[arg(long, value_name = "PROTO[:DIR],...")]
    expect: Vec<String>,
    /// With --expect: how long to wait, in seconds [default: 60].
    #[arg(long, value_name = "SECONDS", requires = "expect")]
    timeout: Option<f64>,
}

/// The names of a link's two ends, as printed and as capture interface names.
#[derive(Debug, Clone)]
pub(super) struct LinkNames {
    pub link: String,
    pub a: String,
    pub b: String,
    /// More about the link for capture interface descriptions (addresses, MACs, MTU).
    pub detail: String,
}

impl LinkNames {
    /// The names of a planned link's ends (`vm100:eth1`) and the details of its capture
    /// interface descriptions (MACs, bound addresses, host_mtu).
    pub(super) fn planned(link: &crate::plan::Link) -> LinkNames {
        let end = |e: &crate::plan::Endpoint| format!("vm{}:eth{}", e.vm, e.eth);
        let mtu = link
            .host_mtu
            .map_or(String::new(), |m| format!(", host_mtu {m}"));
        LinkNames {
            link: link.name.clone(),
            a: end(&link.a),
            b: end(&link.b),
            detail: format!(
                ", A {} binds {}, B {} binds {}{mtu}",
                link.a.mac, link.a.local, link.b.mac, link.b.local
            ),
        }
    }

    fn ends(&self, direction: Direction) -> (&str, &str) {
        match direction {
            Direction::AToB => (&self.a, &self.b),
            Direction::BToA => (&self.b, &self.a),
        }
    }
}

/// Autostop conditions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Autostop {
    duration: Option<Duration>,
    packets: Option<u64>,
    filesize_kb: Option<u64>,
}

/// Splits `KEY:N` with N a whole number of at least 1.
fn condition<'t>(text: &'t str, field: &str, expected: &str) -> crate::Result<(&'t str, u64)> {
    let bad = |message: &str| crate::Error::Argument {
        field: field.into(),
        message: format!("{text:?}: {message}"),
    };
    let (key, value) = text.split_once(':').ok_or_else(|| bad(expected))?;
    let value: u64 = value
        .parse()
        .map_err(|_| bad("the value is not a whole number"))?;
    if value == 0 {
        return Err(bad("the value must be at least 1"));
    }
    Ok((key, value))
}

fn min_some<T: Ord>(old: Option<T>, new: T) -> Option<T> {
    Some(match old {
        Some(old) => old.min(new),
        None => new,
    })
}

fn parse_autostop(conditions: &[String], count: Option<u64>) -> crate::Result<Autostop> {
    const EXPECTED: &str = "expected duration:SECONDS, packets:N or filesize:KB";
    let mut stop = Autostop {
        packets: count,
        ..Autostop::default()
    };
    for text in conditions {
        match condition(text, "-a", EXPECTED)? {
            ("duration", v) => stop.duration = min_some(stop.duration, Duration::from_secs(v)),
            ("packets", v) => stop.packets = min_some(stop.packets, v),
            ("filesize", v) => stop.filesize_kb = min_some(stop.filesize_kb, v),
            _ => {
                return Err(crate::Error::Argument {
                    field: "-a".into(),
                    message: format!("{text:?}: {EXPECTED}"),
                });
            }
        }
    }
    Ok(stop)
}

/// Resolves -w and -b into a capture output.
fn parse_output(write: Option<&Path>, ring: &[String]) -> crate::Result<Option<Output>> {
    const EXPECTED: &str = "expected filesize:KB, duration:SECONDS or files:N";
    let Some(path) = write else {
        return if ring.is_empty() {
            Ok(None)
        } else {
            Err(crate::Error::Argument {
                field: "-b".into(),
                message: "a ring buffer needs -w FILE".into(),
            })
        };
    };
    if path == Path::new("-") {
        return if ring.is_empty() {
            Ok(Some(Output::Stdout))
        } else {
            Err(crate::Error::Argument {
                field: "-b".into(),
                message: "a ring buffer needs -w FILE, not standard output".into(),
            })
        };
    }
    if ring.is_empty() {
        return Ok(Some(Output::File(path.to_owned())));
    }
    let (mut filesize_kb, mut duration, mut files) = (None, None, None);
    for text in ring {
        match condition(text, "-b", EXPECTED)? {
            ("filesize", v) => filesize_kb = Some(v),
            ("duration", v) => duration = Some(Duration::from_secs(v)),
            ("files", v) => files = Some(u32::try_from(v).unwrap_or(u32::MAX)),
            _ => {
                return Err(crate::Error::Argument {
                    field: "-b".into(),
                    message: format!("{text:?}: {EXPECTED}"),
                });
            }
        }
    }
    Ok(Some(Output::Ring {
        path: path.to_owned(),
        filesize_kb,
        duration,
        files,
    }))
}

/// The links to splice, their names, and their host_mtu from the mapping.
type Resolved = (Vec<LinkConfig>, Vec<LinkNames>, Vec<Option<u32>>);

fn resolve(args: &Args) -> crate::Result<Resolved> {
    let (links, names, host_mtus): Resolved = if let Some(mapping) = &args.mapping {
        let planned = crate::plan::load_links(mapping)?;
        let mut chosen: Vec<&crate::plan::Link> = Vec::new();
        for spec in &args.link {
            let link = crate::plan::find_link(&planned, spec)?;
            if chosen.iter().any(|c| c.name == link.name) {
                return Err(crate::Error::Argument {
                    field: "--link".into(),
                    message: format!("{spec}: link {} is already selected", link.name),
                });
            }
            chosen.push(link);
        }
        chosen
            .into_iter()
            .enumerate()
            .map(|(i, link)| {
                let names = LinkNames::planned(link);
                let config = mode(args, i).map(|mode| LinkConfig {
                    name: link.name.clone(),
                    a: link.a.local,
                    b: link.b.local,
                    mode,
                });
                config.map(|c| (c, names, link.host_mtu))
            })
            .collect::<crate::Result<Vec<_>>>()?
            .into_iter()
            .fold(Resolved::default(), |mut all, (c, n, m)| {
                all.0.push(c);
                all.1.push(n);
                all.2.push(m);
                all
            })
    } else {
        let (Some(a), Some(b)) = (args.end_a, args.end_b) else {
            return Err(crate::Error::Argument {
                field: "--a/--b".into(),
                message: "name the links to splice: --mapping FILE --link SPEC, or --a IP:PORT \
                          --b IP:PORT"
                    .into(),
            });
        };
        let name = format!("{a}-{b}");
        let config = LinkConfig {
            name: name.clone(),
            a,
            b,
            mode: mode(args, 0)?,
        };
        let names = LinkNames {
            link: name,
            a: a.to_string(),
            b: b.to_string(),
            detail: String::new(),
        };
        (vec![config], vec![names], vec![None])
    };
    if args.listen.len() > links.len() {
        return Err(crate::Error::Argument {
            field: "--listen".into(),
            message: format!(
                "{} --listen for {} link(s): give one per link",
                args.listen.len(),
                links.len()
            ),
        });
    }
    Ok((links, names, host_mtus))
}

fn mode(args: &Args, link: usize) -> crate::Result<Mode> {
    match args.mode {
        ModeArg::Steal if args.listen.is_empty() => Ok(Mode::Steal),
        ModeArg::Steal => Err(crate::Error::Argument {
            field: "--listen".into(),
            message: "only relay mode listens; add --mode relay".into(),
        }),
        ModeArg::Relay => {
            let text = args
                .listen
                .get(link)
                .ok_or_else(|| crate::Error::Argument {
                    field: "--listen".into(),
                    message: format!(
                        "relay mode needs one --listen per link ({} given)",
                        args.listen.len()
                    ),
                })?;
            let (listen_a, listen_b) = crate::splice::parse_listen(text, "--listen")?;
            Ok(Mode::Relay { listen_a, listen_b })
        }
    }
}

/// The start report: per end whether it is local and bound, and which directions this host
/// carries.
fn report_start(link: &LinkConfig, names: &LinkNames, err: &mut impl Write) -> anyhow::Result<()> {
    let survey = Survey::of(link)?;
    match link.mode {
        Mode::Steal => writeln!(err, "splicing {} (steal mode)", names.link)?,
        Mode::Relay { listen_a, listen_b } => writeln!(
            err,
            "splicing {} (relay mode: end A sends to {listen_a}, end B to {listen_b})",
            names.link
        )?,
    }
    for (label, name, end) in [("A", &names.a, survey.a), ("B", &names.b, survey.b)] {
        let place = if end.local {
            "on this host"
        } else {
            "on another host"
        };
        let bound = match (end.local, end.bound) {
            (true, true) => "bound",
            (true, false) => {
                "not bound yet (a VM started later binds it too, and the splice still receives first)"
            }
            (false, _) => "not visible from here",
        };
        if *name == end.addr.to_string() {
            writeln!(err, "  end {label} {name}: {place}, {bound}")?;
        } else {
            writeln!(err, "  end {label} {name} ({}): {place}, {bound}", end.addr)?;
        }
    }
    if link.mode == Mode::Steal {
        match survey.stealable().as_slice() {
            [_, _] => writeln!(err, "  both directions are visible from this host")?,
            [direction] => {
                let (from, to) = names.ends(*direction);
                writeln!(
                    err,
                    "  only {from} > {to} arrives at this host and is spliced; for the other \
                     direction run a splice on the host of {from}, or use --mode relay"
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The capture's interfaces (two per link, A then B) and its section comment.
pub(super) fn capture_layout(names: &[LinkNames], snaplen: u32) -> (Vec<Interface>, String) {
    let interfaces = names
        .iter()
        .flat_map(|n| {
            [(&n.a, "A", &n.b), (&n.b, "B", &n.a)].map(|(end, label, peer)| Interface {
                name: end.clone(),
                description: format!("link {} end {label} (peer {peer}){}", n.link, n.detail),
                snaplen,
            })
        })
        .collect();
    let links: Vec<&str> = names.iter().map(|n| n.link.as_str()).collect();
    (
        interfaces,
        format!("linkscope splice of {}", links.join(", ")),
    )
}

/// Prints one line per frame on standard output.
pub(super) struct Printer {
    out: io::BufWriter<io::Stdout>,
    names: Vec<LinkNames>,
    limit: Option<u64>,
    seen: u64,
}

impl Printer {
    /// Prints frames of the links named by `names`, asking to stop after `limit`.
    pub(super) fn new(names: Vec<LinkNames>, limit: Option<u64>) -> Printer {
        Printer {
            out: io::BufWriter::new(io::stdout()),
            names,
            limit,
            seen: 0,
        }
    }
}

impl Consumer for Printer {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        let names = &self.names[record.link];
        let (from, to) = names.ends(record.direction);
        writeln!(
            self.out,
            "{} {} {from} > {to} {} bytes: {}",
            time_of_day(record.timestamp_ns),
            names.link,
            record.data.len(),
            crate::wire::summary(record.data)
        )
        .map_err(stdout_error)?;
        self.seen += 1;
        Ok(limit_flow(self.seen, self.limit))
    }

    fn flush(&mut self) -> crate::Result<()> {
        self.out.flush().map_err(stdout_error)
    }
}

/// Where the copy channel's frames go.
enum Sink {
    Print(Printer),
    Count(Counter),
    Capture(Box<Recorder>),
}

impl Consumer for Sink {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        match self {
            Sink::Print(p) => p.record(record),
            Sink::Count(c) => c.record(record),
            Sink::Capture(c) => c.record(record),
        }
    }

    fn flush(&mut self) -> crate::Result<()> {
        match self {
            Sink::Print(p) => p.flush(),
            Sink::Count(c) => c.flush(),
            Sink::Capture(c) => c.flush(),
        }
    }
}

/// Counts frames for `-c` / `-a packets:` when nothing is printed or written.
struct Counter {
    limit: Option<u64>,
    seen: u64,
}

impl Consumer for Counter {
    fn record(&mut self, _: &CopyRecord<'_>) -> crate::Result<Next> {
        self.seen += 1;
        Ok(limit_flow(self.seen, self.limit))
    }

    fn flush(&mut self) -> crate::Result<()> {
        Ok(())
    }
}

fn limit_flow(seen: u64, limit: Option<u64>) -> Next {
    if limit.is_some_and(|l| seen >= l) {
        Next::Stop
    } else {
        Next::Continue
    }
}

fn stdout_error(source: io::Error) -> crate::Error {
    crate::Error::Io {
        path: "standard output".into(),
        source,
    }
}

/// `HH:MM:SS.nnnnnnnnn` (UTC) of a timestamp in nanoseconds since the epoch.
fn time_of_day(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ns % 1_000_000_000
    )
}

pub(super) fn print_summary(
    stats: &[LinkStats],
    names: &[LinkNames],
    err: &mut impl Write,
) -> io::Result<()> {
    for (link, names) in stats.iter().zip(names) {
        for direction in Direction::BOTH {
            let Some(s) = link.direction(direction) else {
                continue;
            };
            let (from, to) = names.ends(direction);
            writeln!(
                err,
                "{} {from} > {to}: {} frames, {} bytes forwarded; dropped: {} zero-length, {} \
                 foreign source, {} truncated, {} unsent, {} by the kernel; copies dropped: {}",
                link.name,
                s.frames(),
                s.bytes(),
                s.zero_length(),
                s.foreign_source(),
                s.truncated(),
                s.send_error(),
                s.kernel_rx_overflow(),
                s.copy_dropped()
            )?;
        }
    }
    Ok(())
}

/// Where the JSON report goes.
enum JsonOut {
    Stdout,
    File(io::BufWriter<std::fs::File>, PathBuf),
}

impl JsonOut {
    fn open(path: &Path, capture_on_stdout: bool) -> anyhow::Result<JsonOut> {
        if path == Path::new("-") {
            if capture_on_stdout {
                return Err(crate::Error::Argument {
                    field: "--json".into(),
                    message: "standard output carries the capture (-w -); write the report to \
                              a file"
                        .into(),
                }
                .into());
            }
            return Ok(JsonOut::Stdout);
        }
        let file = std::fs::File::create(path).map_err(|source| crate::Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(JsonOut::File(io::BufWriter::new(file), path.to_owned()))
    }

    /// Writes `report` as one line (`stream`) or pretty-printed, and flushes it.
    fn write(&mut self, report: &Report, stream: bool) -> anyhow::Result<()> {
        let text = if stream {
            serde_json::to_string(report)?
        } else {
            serde_json::to_string_pretty(report)?
        };
        match self {
            JsonOut::Stdout => {
                let mut out = io::stdout().lock();
                writeln!(out, "{text}")
                    .and_then(|()| out.flush())
                    .map_err(stdout_error)?;
            }
            JsonOut::File(out, path) => {
                writeln!(out, "{text}")
                    .and_then(|()| out.flush())
                    .map_err(|source| crate::Error::Io {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

/// The splice's measurements as the CLI shows them: the meters, the names of the links'
/// ends, the directions each link carries here, and the kernel's counters at the start.
struct Measurement {
    meters: Meters,
    ends: Vec<Ends>,
    directions: Vec<Vec<Direction>>,
    family: snmp::Family,
    snmp_start: FragCounters,
    started_ns: u64,
    /// Counters at the last status line, per link, for the current rates.
    last: Vec<[Counters; 2]>,
    last_ns: u64,
    terminal: bool,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Measurement {
    fn new(
        args: &Args,
        links: &[LinkConfig],
        names: &[LinkNames],
        host_mtus: &[Option<u32>],
    ) -> anyhow::Result<Measurement> {
        let budgets = links
            .iter()
            .zip(host_mtus)
            .map(|(link, mtu)| meters::budget(link, args.host_mtu.or(*mtu), args.path_mtu))
            .collect::<crate::Result<Vec<_>>>()?;
        let directions = links
            .iter()
            .map(|link| match link.mode {
                Mode::Steal => Survey::of(link).map(|s| s.stealable()),
                Mode::Relay { .. } => Ok(Direction::BOTH.to_vec()),
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let family = links
            .first()
            .map_or(snmp::Family::V4, |l| snmp::Family::of(&meters::peer(l)));
        let now = now_ns();
        Ok(Measurement {
            meters: Meters::new(&budgets),
            ends: names
                .iter()
                .map(|n| Ends {
                    name: n.link.clone(),
                    a: n.a.clone(),
                    b: n.b.clone(),
                })
                .collect(),
            directions,
            family,
            snmp_start: FragCounters::read(family)?,
            started_ns: now,
            last: vec![[Counters::default(); 2]; links.len()],
            last_ns: now,
            terminal: io::stderr().is_terminal(),
        })
    }

    /// Counts overdue requests as unanswered and prints one status line (a refreshing one
    /// on a terminal).
    fn status(&mut self) -> io::Result<()> {
        let now = now_ns();
        let mut meters = self.meters.lock();
        let mut parts = Vec::new();
        for (i, meter) in meters.iter_mut().enumerate() {
            meter.expire(now);
            let line = meter.status_line(
                &self.directions[i],
                self.last[i],
                now - self.last_ns.min(now),
            );
            parts.push(format!("{}: {line}", self.ends[i].name));
            self.last[i] = Direction::BOTH.map(|d| meter.counters(d));
        }
        drop(meters);
        self.last_ns = now;
        let line = parts.join("  ");
        let mut err = io::stderr().lock();
        if self.terminal {
            write!(err, "\r{line}\x1b[K")?;
        } else {
            writeln!(err, "{line}")?;
        }
        err.flush()
    }

    /// Ends a refreshing status line before other output.
    fn end_status(&self) -> io::Result<()> {
        if self.terminal {
            writeln!(io::stderr())?;
        }
        Ok(())
    }

    /// The report as of now, with the splice's own counters and the control-plane views.
    fn report(&self, stats: &[LinkStats], views: &Views) -> anyhow::Result<Report> {
        let now = now_ns();
        let duration_s = now.saturating_sub(self.started_ns) as f64 / 1e9;
        let snmp_now = FragCounters::read(self.family)?;
        let mut meters = self.meters.lock();
        let views = views.lock();
        let links = meters
            .iter_mut()
            .zip(views.iter())
            .enumerate()
            .map(|(i, (meter, l2))| {
                meter.expire(now);
                let splice = Direction::BOTH.map(|d| {
                    let s = stats
                        .get(i)
                        .and_then(|l| l.direction(d))
                        .copied()
                        .unwrap_or_default();
                    SpliceCounters {
                        dropped: report::Dropped {
                            kernel_rx_overflow: s.kernel_rx_overflow(),
                            send_error: s.send_error(),
                            foreign_source: s.foreign_source(),
                            zero_length: s.zero_length(),
                            truncated: s.truncated(),
                        },
                        capture_dropped: s.copy_dropped(),
                    }
                });
                let mut link = meter.report(&self.ends[i], splice, duration_s);
                for (direction, out) in Direction::BOTH.iter().zip(&mut link.directions) {
                    let view = l2.direction(*direction);
                    out.lldp = serde_json::to_value(view.lldp())?;
                    out.stp = serde_json::to_value(view.stp())?;
                    out.lacp = serde_json::to_value(view.lacp())?;
                }
                let seen = &self.directions[i];
                let mut directions = std::mem::take(&mut link.directions).into_iter();
                link.directions = Direction::BOTH
                    .iter()
                    .filter_map(|d| {
                        let next = directions.next();
                        if seen.contains(d) { next } else { None }
                    })
                    .collect();
                Ok(link)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Report {
            version: 1,
            duration_s,
            links,
            host: report::Host::from(snmp_now - self.snmp_start),
        })
    }

    /// The human summary of every link.
    fn summary(&self, err: &mut impl Write) -> io::Result<()> {
        let duration_s = now_ns().saturating_sub(self.started_ns) as f64 / 1e9;
        let meters = self.meters.lock();
        for (i, meter) in meters.iter().enumerate() {
            write!(
                err,
                "{}",
                meter.summary(&self.ends[i], &self.directions[i], duration_s)
            )?;
        }
        Ok(())
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = stop.clone();
    ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst))
        .context("installing the signal handler")?;
    let (links, names, host_mtus) = resolve(&args)?;
    let autostop = parse_autostop(&args.autostop, args.count)?;
    let expect = if args.expect.is_empty() {
        None
    } else {
        Some(Expect::parse(&args.expect, "--expect")?)
    };
    let expect_timeout = watch::timeout(args.timeout)?;
    if !(args.stats_interval.is_finite() && args.stats_interval >= 0.0) {
        return Err(crate::Error::Argument {
            field: "--stats-interval".into(),
            message: format!(
                "{}: expected a number of seconds, 0 or more",
                args.stats_interval
            ),
        }
        .into());
    }
    let output = parse_output(args.write.as_deref(), &args.ring)?;
    let mut json = args
        .json
        .as_deref()
        .map(|path| JsonOut::open(path, matches!(output, Some(Output::Stdout))))
        .transpose()?;
    let mut err = io::stderr().lock();
    for (link, names) in links.iter().zip(&names) {
        report_start(link, names, &mut err)?;
    }
    drop(err);
    let mut measurement = if args.no_measure {
        None
    } else {
        Some(Measurement::new(&args, &links, &names, &host_mtus)?)
    };

    let sink = if let Some(output) = &output {
        let (interfaces, comment) = capture_layout(&names, args.snaplen);
        Some(Sink::Capture(Box::new(Recorder::new(
            Writer::create(output, &comment, &interfaces)?,
            autostop.packets,
            autostop.filesize_kb.map(|kb| kb * 1000),
        ))))
    } else if !args.quiet {
        Some(Sink::Print(Printer::new(names.clone(), autostop.packets)))
    } else if autostop.packets.is_some() {
        Some(Sink::Count(Counter {
            limit: autostop.packets,
            seen: 0,
        }))
    } else {
        None
    };
    // With nothing that takes every frame, only the layer-2 view consumes the copies.
    let copy = if sink.is_none() && measurement.is_none() {
        CopyFilter::Control
    } else {
        CopyFilter::All
    };
    let config = SpliceConfig {
        links,
        copy,
        workers: args.workers.map_or(0, usize::from),
    };
    let views = Views::new(config.links.len());
    let watched = Watched::new(
        views.clone(),
        expect.clone(),
        watch::printer(names.clone()),
        sink,
    );
    let meters = measurement
        .as_ref()
        .map_or_else(|| Meters::new(&[]), |m| m.meters.clone());
    let (copies, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
    let consumer = copy::spawn(receiver, Metered::new(meters, Some(watched)), stop.clone())?;

    let splice = Splice::start(&config, Some(copies), stop.clone())?;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.stats_interval);
    let mut next_status = started + interval;
    while !stop.load(Ordering::SeqCst) {
        if autostop.duration.is_some_and(|d| started.elapsed() >= d)
            || (expect.is_some() && started.elapsed() >= expect_timeout)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if let Some(m) = &mut measurement
            && !interval.is_zero()
            && Instant::now() >= next_status
        {
            next_status += interval;
            m.status()?;
            if let Some(json) = &mut json
                && args.json_stream
            {
                json.write(&m.report(&splice.stats(), &views)?, true)?;
            }
        }
    }
    let stats = splice.stop();
    let waited = started.elapsed();
    let sink = join(consumer).map(|c| c.into_inner().and_then(Watched::into_inner));
    let outcome = match sink {
        Ok(Some(Sink::Capture(recorder))) => recorder.finish(&stats).map_err(anyhow::Error::from),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    let mut err = io::stderr().lock();
    if let Some(m) = &measurement {
        m.end_status()?;
    }
    print_summary(&stats, &names, &mut err)?;
    if let Some(m) = &measurement {
        m.summary(&mut err)?;
        if let Some(json) = &mut json {
            json.write(&m.report(&stats, &views)?, args.json_stream)?;
        }
    }
    let views = views.lock();
    watch::print_summary(&views, &stats, &names, &mut err)?;
    let passed = match &expect {
        Some(expect) => watch::verdict(expect, &views, &names, waited, &mut err)?,
        None => true,
    };
    outcome?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn join<C>(
    handle: std::thread::JoinHandle<(C, crate::Result<()>)>,
) -> anyhow::Result<C> {
    let (consumer, outcome) = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the copy consumer thread panicked"))?;
    outcome?;
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_link_ends_become_named_described_interfaces() {
        let link = crate::plan::links::testing::link();
        let (interfaces, comment) = capture_layout(&[LinkNames::planned(&link)], 128);
        let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["vm100:eth1", "vm102:eth1"]);
        assert_eq!(
            interfaces[0].description,
            "link 100:1-102:1 end A (peer vm102:eth1), A be:24:99:00:64:01 binds \
             127.0.0.1:41001, B be:24:99:00:66:01 binds 127.0.0.1:41021, host_mtu 9000"
        );
        assert!(
            interfaces[1]
                .description
                .starts_with("link 100:1-102:1 end B (peer vm100:eth1)")
        );
        assert_eq!(interfaces[1].snaplen, 128);
        assert_eq!(comment, "linkscope splice of 100:1-102:1");
    }

    #[test]
    fn autostop_keeps_the_first_limit_reached() {
        let conditions = [
            "duration:5".to_string(),
            "packets:10".into(),
            "duration:3".into(),
        ];
        let stop = parse_autostop(&conditions, Some(7)).unwrap();
        assert_eq!(stop.duration, Some(Duration::from_secs(3)));
        assert_eq!(stop.packets, Some(7));
        assert!(parse_autostop(&["bytes:1".into()], None).is_err());
        assert!(parse_autostop(&["packets:0".into()], None).is_err());
    }

    #[test]
    fn time_of_day_is_utc_with_nanoseconds() {
        assert_eq!(
            time_of_day(86_400_000_000_000 + 3_723_000_000_042),
            "01:02:03.000000042"
        );
    }
}
