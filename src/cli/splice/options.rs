//! From the command line to what the splice does: every check and every default of
//! `linkscope splice` in one place ([`Options::from_args`]), so that the rest only reads
//! validated options.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capture::Output;
use crate::capture::filter::Filter;
use crate::cli::impair::LinkEnds;
use crate::impair::ImpairConfig;
use crate::measure::l2::Expect;
use crate::net::udp_owners;
use crate::splice::{LinkConfig, Mode};

use super::args::{Args, ModeArg};
use crate::plan::LinkNames;

/// How long `--expect` waits without `--timeout`.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(60);

/// A validated `linkscope splice` command line.
pub(super) struct Options {
    /// The links to splice, in the order given.
    pub links: Vec<LinkConfig>,
    /// The names of each link's ends, as printed and in the capture.
    pub names: Vec<LinkNames>,
    /// Each link's host_mtu for the fragmentation figures: --host-mtu, else the mapping's.
    pub host_mtus: Vec<Option<u32>>,
    /// The path MTU between the tunnel's hosts (None: the kernel's route MTU).
    pub path_mtu: Option<u32>,
    pub autostop: Autostop,
    /// The control protocols `--expect` waits for, and for how long.
    pub expect: Option<Expect>,
    pub expect_timeout: Duration,
    /// Between status lines (zero: none).
    pub stats_interval: Duration,
    /// Where the capture goes (None: no capture).
    pub output: Option<Output>,
    pub snaplen: u32,
    /// The capture filter (-f): which frames the capture, the printed lines and -c take.
    pub filter: Option<Filter>,
    /// Print nothing per frame.
    pub quiet: bool,
    /// Meter the links (status lines, summary, report); false with --no-measure.
    pub measure: bool,
    /// Where the JSON report goes (`-`: standard output).
    pub json: Option<PathBuf>,
    /// Also write one JSON report per stats interval.
    pub json_stream: bool,
    /// Forwarding threads (0: one per core).
    pub workers: usize,
    /// Impairment, control socket and QMP targets.
    pub impair: ImpairConfig,
}

impl Options {
    /// Checks `args` and fills in every default; an error names the argument at fault.
    pub(super) fn from_args(args: Args) -> crate::Result<Options> {
        let (links, names, host_mtus) = resolve(&args)?;
        for link in &links {
            check_link(link)?;
        }
        if !args.force {
            // One reading of the socket tables for every link.
            let connected = udp_owners::Connected::read().map_err(|source| crate::Error::Io {
                path: "/proc/net/udp".into(),
                source,
            })?;
            for link in &links {
                refuse_spliced(link, &connected)?;
            }
        }
        if args.count == Some(0) {
            return Err(crate::Error::Argument {
                field: "-c".into(),
                message: "0: the count must be at least 1 (leave -c out for no limit)".into(),
            });
        }
        let impair = args.impair.resolve(&link_ends(&args, &links)?)?;
        let autostop = parse_autostop(&args.autostop, args.count)?;
        let expect = if args.expect.is_empty() {
            None
        } else {
            Some(Expect::parse(&args.expect, "--expect")?)
        };
        let expect_timeout = timeout(args.timeout)?;
        let stats_interval = stats_interval(args.stats_interval)?;
        let output = parse_output(args.write.as_deref(), &args.ring)?;
        let filter = args
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| Filter::compile(f, args.snaplen))
            .transpose()?;
        Ok(Options {
            links,
            names,
            host_mtus: host_mtus
                .into_iter()
                .map(|mtu| args.host_mtu.or(mtu))
                .collect(),
            path_mtu: args.path_mtu,
            workers: args.workers.map_or(0, usize::from),
            autostop,
            expect,
            expect_timeout,
            stats_interval,
            output,
            snaplen: args.snaplen,
            filter,
            quiet: args.quiet,
            measure: !args.no_measure,
            json: args.json,
            json_stream: args.json_stream,
            impair,
        })
    }
}

/// Autostop conditions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Autostop {
    pub duration: Option<Duration>,
    pub packets: Option<u64>,
    pub filesize_kb: Option<u64>,
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

/// The `--timeout` of `--expect`, in seconds.
fn timeout(seconds: Option<f64>) -> crate::Result<Duration> {
    match seconds {
        None => Ok(EXPECT_TIMEOUT),
        Some(s) if s.is_finite() && s > 0.0 && s <= 1e9 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(crate::Error::Argument {
            field: "--timeout".into(),
            message: format!("{s}: expected a number of seconds above 0"),
        }),
    }
}

/// The `--stats-interval`, in seconds (0: no status lines).
fn stats_interval(seconds: f64) -> crate::Result<Duration> {
    if seconds >= 0.0
        && let Ok(interval) = Duration::try_from_secs_f64(seconds)
    {
        return Ok(interval);
    }
    Err(crate::Error::Argument {
        field: "--stats-interval".into(),
        message: format!("{seconds}: expected a number of seconds, 0 or more"),
    })
}

/// Refuses a link whose ends cannot be two tunnel ends (the same address, port 0, two
/// address families), and a relay that would listen on an end's own port.
fn check_link(link: &LinkConfig) -> crate::Result<()> {
    let bad = |field: &str, message: String| crate::Error::Argument {
        field: field.into(),
        message: format!("{}: {message}", link.name),
    };
    let family = |addr: SocketAddr| if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    if link.a == link.b {
        return Err(bad(
            "--a/--b",
            format!(
                "both ends are the same address {}: a link joins two ends",
                link.a
            ),
        ));
    }
    for (field, end) in [("--a", link.a), ("--b", link.b)] {
        if end.port() == 0 {
            return Err(bad(
                field,
                format!("{end}: port 0 is no tunnel end's port (QEMU binds a fixed port)"),
            ));
        }
    }
    if link.a.is_ipv4() != link.b.is_ipv4() {
        return Err(bad(
            "--a/--b",
            format!(
                "end A {} is {} and end B {} is {}: both ends of a tunnel use one family",
                link.a,
                family(link.a),
                link.b,
                family(link.b)
            ),
        ));
    }
    if let Mode::Relay { listen_a, listen_b } = link.mode {
        for listen in [listen_a, listen_b] {
            if listen.port() == 0 {
                return Err(bad(
                    "--listen",
                    format!("{listen}: port 0 is no port the ends can be told to send to"),
                ));
            }
            if listen.is_ipv4() != link.a.is_ipv4() {
                return Err(bad(
                    "--listen",
                    format!(
                        "{listen} is {} and the ends are {}: listen in the ends' family",
                        family(listen),
                        family(link.a)
                    ),
                ));
            }
            for (label, end) in [("A", link.a), ("B", link.b)] {
                let same_host = listen.ip() == end.ip() || listen.ip().is_unspecified();
                if same_host && listen.port() == end.port() {
                    return Err(bad(
                        "--listen",
                        format!(
                            "{listen} is end {label}'s own port {end}: a relay listens on the \
                             ports the ends send to, not on the ones they bind (`linkscope \
                             plan --splice` gives both ends new peer ports)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Refuses to steal a link another splice already holds: a socket bound to one end's
/// address and connected to the other's (what a steal-mode splice opens; QEMU never
/// connects), named by its process where /proc tells.
fn refuse_spliced(link: &LinkConfig, connected: &udp_owners::Connected) -> crate::Result<()> {
    if link.mode != Mode::Steal {
        return Ok(());
    }
    for (to, from) in [(link.b, link.a), (link.a, link.b)] {
        let inodes = connected.on(to, from);
        if inodes.is_empty() {
            continue;
        }
        let holder = udp_owners::describe(inodes);
        return Err(crate::Error::Argument {
            field: "link".into(),
            message: format!(
                "{}: already spliced: {holder} holds a socket on {to} connected to {from}; \
                 stop that splice first, or pass --force to take the tunnel from it (it will \
                 notice and report the gap)",
                link.name
            ),
        });
    }
    Ok(())
}

/// The VMs and MACs of the ends of `links`, for `--qmp` (none without a mapping).
fn link_ends(args: &Args, links: &[LinkConfig]) -> crate::Result<Vec<LinkEnds>> {
    let Some(mapping) = &args.mapping else {
        return Ok(Vec::new());
    };
    let planned = crate::plan::load_links(mapping)?;
    Ok(planned
        .iter()
        .filter(|link| links.iter().any(|l| l.name == link.name))
        .map(|link| LinkEnds {
            name: link.name.clone(),
            ends: [&link.a, &link.b].map(|e| (e.vm, e.mac.clone())).to_vec(),
        })
        .collect())
}

/// The links to splice, their names, and their host_mtu from the mapping.
type Resolved = (Vec<LinkConfig>, Vec<LinkNames>, Vec<Option<u32>>);

fn resolve(args: &Args) -> crate::Result<Resolved> {
    let (links, names, host_mtus): Resolved = if let Some(mapping) = &args.mapping {
        let planned = crate::plan::load_links(mapping)?;
        let chosen = if args.all {
            planned.iter().collect()
        } else {
            crate::plan::select(&planned, &args.link)?
        };
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
                message: "name the links to splice: --mapping FILE --link PATTERN (or --all), \
                          or --a IP:PORT --b IP:PORT"
                    .into(),
            });
        };
        let names = LinkNames::addresses(a, b);
        let config = LinkConfig {
            name: names.link.clone(),
            a,
            b,
            mode: mode(args, 0)?,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn timeout_must_be_positive() {
        assert_eq!(timeout(None).unwrap(), Duration::from_secs(60));
        assert_eq!(timeout(Some(0.5)).unwrap(), Duration::from_millis(500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(timeout(Some(bad)).unwrap_err().is_input());
        }
    }

    #[test]
    fn stats_interval_is_zero_or_more_seconds() {
        assert_eq!(stats_interval(0.0).unwrap(), Duration::ZERO);
        assert_eq!(stats_interval(0.25).unwrap(), Duration::from_millis(250));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(stats_interval(bad).unwrap_err().is_input());
        }
    }
}
