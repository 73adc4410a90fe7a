//! `linkscope relay ENDPOINT ENDPOINT [ENDPOINT…]`: joins endpoints of any transport (QEMU
//! UDP tunnels, TCP and Unix streams in QEMU's framing, …) into one link, point to point, as
//! a hub or as a learning switch.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::impair::{ImpairArgs, LinkEnds};
use super::spliced::{meter_text, time_of_day};
use crate::capture::filter::{Filter, Filtered};
use crate::capture::{Interface, InterfaceStats, Output, Packet, Writer};
use crate::direction::Direction;
use crate::impair::{ImpairConfig, Live};
use crate::measure::fragment::{Budget, Outer};
use crate::measure::l2::{Expect, Expectation, View};
use crate::measure::meter::{Counters, Exchange, SpliceCounters};
use crate::plan::LinkNames;
use crate::relay::{Locator, Mode, Relay, RelayConfig, RelayStats, endpoint, switch};
use crate::splice::copy::{self, Consumer, CopyFilter, CopyRecord, Next};
use crate::splice::meters::{Metered, Meters};
use crate::splice::recorder;
use crate::splice::watch::{Change, OnChange, Views, Watched};

/// Join endpoints of any transport into one link.
#[derive(Debug, clap::Args)]
#[command(after_help = "ENDPOINTS:
  udp://[BIND_IP:]BIND_PORT->PEER_IP:PEER_PORT   a QEMU UDP tunnel end (-netdev socket,udp= / dgram)
  tcp://HOST:PORT          connect to -netdev stream,server=on / socket,listen= (reconnects)
  tcp-listen://IP:PORT[?from=IP[/PREFIX],…]   accept -netdev socket,connect= / stream,server=off
                           (newest wins; with from, only from those addresses)
  unix://PATH, unix-listen://PATH   the same over Unix stream sockets
  tap://NAME[?bridge=BR]   vxlan://REMOTE_IP[:PORT]?vni=N[&local=IP[:PORT]]
  mcast://GROUP:PORT[?local=IP]   exec://COMMAND   stdio")]
pub struct Args {
    /// The endpoints, as locators (see below); two make a point-to-point link, more need
    /// --hub or --switch.
    #[arg(value_name = "ENDPOINT", num_args = 2.., required = true)]
    endpoints: Vec<Locator>,
    /// Every frame goes to every other endpoint.
    #[arg(long, conflicts_with = "switch")]
    hub: bool,
    /// Learn which endpoint each MAC address is behind; unknown and group addresses flood.
    #[arg(long)]
    switch: bool,
    /// With --switch: forget an address this many seconds after it was last seen.
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "switch",
        default_value_t = 300
    )]
    aging: u64,
    /// With --switch: the most addresses learned (more are counted as `full`).
    #[arg(long, value_name = "N", requires = "switch", default_value_t = switch::DEFAULT_CAPACITY)]
    max_macs: usize,
    /// Impairment of a point-to-point relay (`--impair`, `--seed`, `--control`; see
    /// docs/impair.md): the relay's link is named `relay` for `linkscope ctl`.
    #[command(flatten)]
    impair: ImpairArgs,
    /// A name for each endpoint in order (printed and as capture interface names; default:
    /// the locator); repeatable.
    #[arg(long, value_name = "NAME")]
    name: Vec<String>,
    /// Write pcapng to FILE (one interface per endpoint), or to standard output with `-w -`.
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<PathBuf>,
    /// A capture filter in libpcap syntax (e.g. `not stp`, `icmp`): only the frames it passes
    /// are written, printed and counted for -c; forwarding and the measurements see every
    /// frame. Needs libpcap (libpcap0.8).
    #[arg(short = 'f', value_name = "FILTER")]
    filter: Option<String>,
    /// Stop after COUNT frames.
    #[arg(short = 'c', value_name = "COUNT")]
    count: Option<u64>,
    /// Stop automatically: duration:SECONDS or packets:N (repeatable; the first reached
    /// wins).
    #[arg(short = 'a', value_name = "COND")]
    autostop: Vec<String>,
    /// Print nothing per frame (only the status lines and the summary).
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Seconds between status lines on standard error (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    stats_interval: f64,
    /// Write the JSON report at the end to FILE, or to standard output with `--json -`.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Exit 0 as soon as these control protocols have come from every endpoint, else exit 1
    /// after --timeout naming what never came: lldp, stp, lacp, each optionally :a>b (only
    /// from the first endpoint, and the 3rd, 5th, …) or :b>a (the 2nd, 4th, …);
    /// comma-separated, repeatable.
    #[arg(long, value_name = "PROTO[:DIR],...")]
    expect: Vec<String>,
    /// Measure nothing: no rates in the status lines, no summary of the measurements, no
    /// measurements in the report.
    #[arg(long)]
    no_measure: bool,
    /// With --expect: how long to wait, in seconds [default: 60].
    #[arg(long, value_name = "SECONDS", requires = "expect")]
    timeout: Option<f64>,
}

/// The validated command line.
struct Options {
    mode: Mode,
    names: Vec<String>,
    output: Option<Output>,
    packets: Option<u64>,
    duration: Option<Duration>,
    quiet: bool,
    stats_interval: Duration,
    json: Option<PathBuf>,
    expect: Option<Expect>,
    expect_timeout: Duration,
    measure: bool,
    /// -f: which frames the capture, the printed lines and -c take.
    filter: Option<Filter>,
    /// The impairment stages and control socket of a point-to-point relay.
    impair: ImpairConfig,
}

/// Warns about a TCP listener that any host reaching it can take the link from.
fn warn_open_listeners(endpoints: &[Locator]) {
    for endpoint in endpoints {
        if let Locator::TcpListen { listen, from } = endpoint
            && from.is_anyone()
            && !listen.ip().is_loopback()
        {
            eprintln!(
                "linkscope: {endpoint}: any host that reaches {listen} may connect, and its \
                 connection replaces the peer's; add ?from=IP[/PREFIX] to take the peer only \
                 from there"
            );
        }
    }
}

fn options(args: &Args) -> crate::Result<Options> {
    let bad = |field: &str, message: String| crate::Error::Argument {
        field: field.into(),
        message,
    };
    let mode = if args.switch {
        if args.aging == 0 {
            return Err(bad("--aging", "must be at least 1 second".into()));
        }
        Mode::Switch {
            aging: Duration::from_secs(args.aging),
            capacity: args.max_macs.max(1),
        }
    } else if args.hub {
        Mode::Hub
    } else {
        Mode::Pair
    };
    mode.check(args.endpoints.len())?;
    if args.name.len() > args.endpoints.len() {
        return Err(bad(
            "--name",
            format!(
                "{} names for {} endpoints",
                args.name.len(),
                args.endpoints.len()
            ),
        ));
    }
    let names = args
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| args.name.get(i).cloned().unwrap_or_else(|| e.to_string()))
        .collect();
    let (mut packets, mut duration) = (args.count, None);
    for text in &args.autostop {
        let parsed = text
            .split_once(':')
            .and_then(|(k, v)| Some((k, v.parse::<u64>().ok().filter(|&v| v > 0)?)));
        match parsed {
            Some(("duration", v)) => {
                duration = Some(duration.map_or(v, |d: u64| d.min(v)));
            }
            Some(("packets", v)) => packets = Some(packets.map_or(v, |p| p.min(v))),
            _ => {
                return Err(bad(
                    "-a",
                    format!("{text:?}: expected duration:SECONDS or packets:N (N ≥ 1)"),
                ));
            }
        }
    }
    if !(args.stats_interval.is_finite() && args.stats_interval >= 0.0) {
        return Err(bad(
            "--stats-interval",
            format!("{}: not a number of seconds", args.stats_interval),
        ));
    }
    let expect = if args.expect.is_empty() {
        None
    } else {
        Some(Expect::parse(&args.expect, "--expect")?)
    };
    let expect_timeout = match args.timeout {
        None => Duration::from_secs(60),
        Some(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64(t),
        Some(t) => {
            return Err(bad(
                "--timeout",
                format!("{t}: not a positive number of seconds"),
            ));
        }
    };
    let output = args.write.as_ref().map(|path| {
        if path.as_os_str() == "-" {
            Output::Stdout
        } else {
            Output::File(path.clone())
        }
    });
    // `stdio` frames own standard input and output: nothing else may read or write them.
    let stdio = args
        .endpoints
        .iter()
        .filter(|e| matches!(e, Locator::Stdio))
        .count();
    if stdio > 1 {
        return Err(bad(
            "ENDPOINT",
            format!("stdio given {stdio} times: there is one standard input and output"),
        ));
    }
    if stdio == 1 {
        let taken = "standard output carries the frames of the stdio endpoint";
        if matches!(output, Some(Output::Stdout)) {
            return Err(bad("-w -", taken.into()));
        }
        if args.json.as_ref().is_some_and(|p| p.as_os_str() == "-") {
            return Err(bad("--json -", taken.into()));
        }
    }
    Ok(Options {
        mode,
        names,
        output,
        packets,
        duration: duration.map(Duration::from_secs),
        quiet: args.quiet || stdio == 1,
        stats_interval: Duration::from_secs_f64(args.stats_interval),
        json: args.json.clone(),
        expect,
        expect_timeout,
        measure: !args.no_measure,
        filter: args
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| Filter::compile(f, 0))
            .transpose()?,
        impair: impair(args, mode)?,
    })
}

/// The relay's link, as `linkscope ctl` names it.
const LINK: &str = "relay";

/// `--impair`, `--seed`, `--control`, `--qmp`: for a point-to-point relay only (a hub or a
/// switch has a route per endpoint, not two directions).
fn impair(args: &Args, mode: Mode) -> crate::Result<ImpairConfig> {
    let asked = !args.impair.impair.is_empty() || !args.impair.qmp.is_empty();
    if asked && mode != Mode::Pair {
        return Err(crate::Error::Argument {
            field: "--impair".into(),
            message: "impairs the two directions of a point-to-point relay; a hub or a switch \
                      has none"
                .into(),
        });
    }
    args.impair.resolve(&[LinkEnds {
        name: LINK.into(),
        ends: Vec::new(),
    }])
}

/// Takes the copies: writes the capture (one interface per endpoint), prints a line per
/// frame unless quiet, and stops the relay after a frame count.
struct Sink {
    writer: Option<Writer>,
    names: Vec<String>,
    print: bool,
    limit: Option<u64>,
    frames: u64,
    /// Frames recorded per endpoint.
    per_endpoint: Vec<u64>,
}

impl Consumer for Sink {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        let interface = recorder::interface(record.link, record.direction);
        if let Some(writer) = &mut self.writer {
            writer.write(&Packet {
                interface,
                timestamp_ns: record.timestamp_ns,
                data: record.data,
                outbound: true,
            })?;
        }
        if let Some(n) = self.per_endpoint.get_mut(interface as usize) {
            *n += 1;
        }
        if self.print {
            let name = self
                .names
                .get(interface as usize)
                .map_or("?", String::as_str);
            let line = format!(
                "{name} > {} bytes {}\n",
                record.data.len(),
                crate::wire::summary(record.data)
            );
            io::stdout()
                .write_all(line.as_bytes())
                .map_err(|source| crate::Error::Io {
                    path: "-".into(),
                    source,
                })?;
        }
        self.frames += 1;
        Ok(if self.limit.is_some_and(|n| self.frames >= n) {
            Next::Stop
        } else {
            Next::Continue
        })
    }

    fn flush(&mut self) -> crate::Result<()> {
        match &mut self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = super::stop::flag()?;
    let options = options(&args)?;
    warn_open_listeners(&args.endpoints);
    if matches!(options.output, Some(Output::Stdout)) && io::stdout().is_terminal() {
        anyhow::bail!(crate::Error::Argument {
            field: "-w -".into(),
            message: "standard output is a terminal; pipe it (| wireshark -k -i -)".into(),
        });
    }
    let mut opened = Vec::with_capacity(args.endpoints.len());
    for locator in &args.endpoints {
        opened.push(endpoint::open(locator)?);
    }
    let writer = options
        .output
        .as_ref()
        .map(|output| {
            let interfaces: Vec<Interface> = options
                .names
                .iter()
                .zip(&args.endpoints)
                .map(|(name, locator)| Interface {
                    name: name.clone(),
                    description: format!("linkscope relay endpoint {locator}"),
                    snaplen: 0,
                    filter: options.filter.as_ref().map(|f| f.expression().to_owned()),
                    ..Interface::default()
                })
                .collect();
            Writer::create(output, "linkscope relay", &interfaces)
        })
        .transpose()?;
    let print = !options.quiet && !matches!(options.output, Some(Output::Stdout));
    let everything = writer.is_some() || print || options.packets.is_some() || options.measure;
    let sink = Sink {
        writer,
        names: options.names.clone(),
        print,
        limit: options.packets,
        frames: 0,
        per_endpoint: vec![0; args.endpoints.len()],
    };
    // The layer-2 view watches every endpoint's control frames: copies carry link i / 2 and
    // direction i % 2 for endpoint i (see crate::relay).
    let pairs = options.names.len().div_ceil(2);
    let views = Views::new(pairs);
    let watched = Watched::new(
        views.clone(),
        None,
        on_change(options.names.clone()),
        Some(Filtered::new(sink, options.filter.clone())),
    );
    // The meters see the frames as the splice's do: one meter per pair of endpoints (a
    // pair's echo requests and replies meet in one meter). Frames cross streams here, not
    // a UDP path of known MTU: no fragmentation budget.
    let budget = Budget {
        host_mtu: None,
        path_mtu: u32::from(u16::MAX),
        outer: Outer::Ipv4,
    };
    let meters = Meters::new(&vec![budget; if options.measure { pairs } else { 0 }]);
    let (copies, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
    let consumer = copy::spawn(
        receiver,
        Metered::new(meters.clone(), Some(watched), stop.clone()),
        stop.clone(),
    )?;
    let live = match options.mode {
        Mode::Pair => {
            let live = Live::start(options.impair.clone())?;
            match live.control() {
                Ok(path) => eprintln!(
                    "control: {} (linkscope ctl {LINK} impair|clear|down|up|flap|show)",
                    path.display()
                ),
                Err(e) => eprintln!("linkscope: no control socket ({e}); give --control PATH"),
            }
            Some(live)
        }
        _ => None,
    };
    let stages = live.as_ref().map(|live| {
        let registry = live.registry_handle();
        Box::new(move |direction| vec![registry.stage(0, LINK, direction)])
            as crate::relay::DirectionStages
    });
    let relay = Relay::start(RelayConfig {
        endpoints: opened,
        mode: options.mode,
        name: LINK.into(),
        copy: Some(copies),
        filter: if everything {
            CopyFilter::All
        } else {
            CopyFilter::Control
        },
        stages,
    })?;
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "relay: {} ({})",
        options.names.join(" ⇄ "),
        match options.mode {
            Mode::Pair => "point to point".to_string(),
            Mode::Hub => "hub".to_string(),
            Mode::Switch { aging, capacity } => format!(
                "switch, aging {} s, up to {capacity} addresses",
                aging.as_secs()
            ),
        }
    )?;
    drop(err);
    let started = Instant::now();
    let mut next_status = started + options.stats_interval;
    let n = options.names.len();
    let mut last = vec![[Counters::default(); 2]; pairs];
    let mut last_at = Instant::now();
    while !stop.load(Ordering::SeqCst) && options.duration.is_none_or(|d| started.elapsed() < d) {
        if let Some(expect) = &options.expect
            && (missing(expect, &views.lock(), n).is_empty()
                || started.elapsed() >= options.expect_timeout)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if !options.stats_interval.is_zero() && Instant::now() >= next_status {
            next_status += options.stats_interval;
            let mut line = status(&relay.stats(), &options.names);
            let elapsed_ns = last_at.elapsed().as_nanos() as u64;
            last_at = Instant::now();
            line.push_str(&rates(&meters, &options.names, &mut last, elapsed_ns));
            eprintln!("{line}");
        }
    }
    let stats = relay.stop()?;
    let (metered, outcome) = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the copy consumer panicked"))?;
    let sink = metered
        .into_inner()?
        .and_then(Watched::into_inner)
        .map(Filtered::into_inner)
        .ok_or_else(|| anyhow::anyhow!("the copy consumer lost its sink"))?;
    if let Some(writer) = sink.writer {
        let interfaces: Vec<InterfaceStats> = if options.names.len() == 2 {
            recorder::interface_stats(std::slice::from_ref(&stats.link))
        } else {
            sink.per_endpoint
                .iter()
                .map(|&received| InterfaceStats {
                    received,
                    ..InterfaceStats::default()
                })
                .collect()
        };
        writer.finish(&interfaces)?;
    }
    outcome?;
    eprintln!("{}", status(&stats, &options.names));
    for (name, counters) in options.names.iter().zip(&stats.endpoints) {
        for (key, value) in counters {
            match *key {
                "exit_code" => eprintln!("relay: {name}: the child exited with status {value}"),
                "exit_signal" => eprintln!("relay: {name}: the child was ended by signal {value}"),
                _ => {}
            }
        }
    }
    let views = views.lock().clone();
    let carried = started.elapsed();
    let ends = pair_ends(&options.names);
    let mut err = io::stderr().lock();
    for (meter, ends) in meters.lock().iter().zip(&ends) {
        let directions = present(ends);
        let text = meter_text::summary(meter, ends, &directions, carried.as_secs_f64());
        write!(err, "{text}")?;
    }
    l2_summary(&views, &options.names, &mut err)?;
    let passed = match &options.expect {
        Some(expect) => verdict(expect, &views, &options.names, started.elapsed(), &mut err)?,
        None => true,
    };
    drop(err);
    if let Some(path) = &options.json {
        let mut report = json_report(&stats, &options.names, carried);
        let measured: Vec<_> = meters
            .lock()
            .iter()
            .zip(&ends)
            .map(|(meter, ends)| {
                meter.report(ends, [SpliceCounters::default(); 2], carried.as_secs_f64())
            })
            .collect();
        if options.measure {
            report["measurements"] = serde_json::to_value(measured)?;
        }
        let text = serde_json::to_string_pretty(&report)? + "\n";
        if path.as_os_str() == "-" {
            io::stdout().write_all(text.as_bytes())?;
        } else {
            std::fs::write(path, text).map_err(|source| crate::Error::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The endpoints of each pair (endpoint 2k as A, 2k + 1 as B; an odd last one has no B), as
/// the meters name them.
fn pair_ends(names: &[String]) -> Vec<LinkNames> {
    names
        .chunks(2)
        .map(|pair| LinkNames {
            link: pair.join(" ⇄ "),
            a: pair[0].clone(),
            b: pair.get(1).cloned().unwrap_or_default(),
            detail: String::new(),
        })
        .collect()
}

/// The directions of a pair that have an endpoint sending them.
fn present(ends: &LinkNames) -> Vec<Direction> {
    if ends.b.is_empty() {
        vec![Direction::AToB]
    } else {
        Direction::BOTH.to_vec()
    }
}

/// Each endpoint's frame and bit rate since the last call, and each pair's echo round trip
/// (p50); empty when nothing is measured.
fn rates(meters: &Meters, names: &[String], last: &mut [[Counters; 2]], elapsed_ns: u64) -> String {
    let meters = meters.lock();
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let (pair, direction) = (
            i / 2,
            if i % 2 == 0 {
                Direction::AToB
            } else {
                Direction::BToA
            },
        );
        let Some(meter) = meters.get(pair) else {
            continue;
        };
        let slot = i % 2;
        let now = meter.counters(direction);
        let (pps, bps) = now.rates_since(&last[pair][slot], elapsed_ns);
        last[pair][slot] = now;
        out.push_str(&format!(" | {name} {pps:.0} fr/s {:.1} Mbit/s", bps / 1e6));
    }
    for meter in meters.iter() {
        if let Some(p50) = meter.rtt(Exchange::IcmpEcho).p50 {
            out.push_str(&format!(" | rtt {p50:.2} ms"));
        }
    }
    out
}

/// The endpoint whose frames a copy of link `link`, `direction` holds.
fn endpoint_of(link: usize, direction: Direction) -> usize {
    link * 2
        + match direction {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
}

/// Prints each change of what an endpoint shows (LLDP neighbour, STP view, LACP state) on
/// standard error.
fn on_change(names: Vec<String>) -> OnChange {
    Box::new(move |c: &Change<'_>| {
        let Some(name) = names.get(endpoint_of(c.link, c.direction)) else {
            return;
        };
        if let Some(text) = c.view.describe(c.protocol) {
            // A closed standard error must not stop the relay.
            let _ = writeln!(
                io::stderr(),
                "{} {name} > {text}",
                time_of_day(c.timestamp_ns)
            );
        }
    })
}

/// What `expect` still waits for, per endpoint (of `n`).
fn missing(expect: &Expect, views: &[View], n: usize) -> Vec<(Expectation, usize)> {
    views
        .iter()
        .enumerate()
        .flat_map(|(link, view)| {
            expect
                .missing(view)
                .into_iter()
                .map(move |e| (e, endpoint_of(link, e.direction)))
        })
        .filter(|(_, endpoint)| *endpoint < n)
        .collect()
}

/// One line per endpoint that sent control frames: the newest state of each protocol.
fn l2_summary(views: &[View], names: &[String], err: &mut impl Write) -> io::Result<()> {
    for (i, name) in names.iter().enumerate() {
        let direction = if i % 2 == 0 {
            Direction::AToB
        } else {
            Direction::BToA
        };
        let Some(view) = views.get(i / 2) else {
            continue;
        };
        let shown = view.direction(direction);
        let parts = shown.describe_all();
        if !parts.is_empty() {
            writeln!(err, "{name} >: {}", parts.join("; "))?;
        }
    }
    Ok(())
}

/// Prints whether every endpoint showed every expected protocol, naming what never came;
/// returns whether it did.
fn verdict(
    expect: &Expect,
    views: &[View],
    names: &[String],
    waited: Duration,
    err: &mut impl Write,
) -> io::Result<bool> {
    let missing: Vec<String> = missing(expect, views, names.len())
        .into_iter()
        .map(|(e, endpoint)| format!("{} from {}", e.protocol.name(), names[endpoint]))
        .collect();
    super::spliced::watch::print_verdict(expect, &missing, "", waited, err)
}

/// One status line: the link's frames each way and each endpoint's own counters that are
/// not zero.
fn status(stats: &RelayStats, names: &[String]) -> String {
    let mut total = crate::splice::stats::DirectionStats::default();
    for d in [&stats.link.a_to_b, &stats.link.b_to_a]
        .into_iter()
        .flatten()
    {
        total += *d;
    }
    let mut line = format!("relay: {} frames forwarded", total.frames());
    for (what, n) in [
        ("not sent", total.send_error()),
        ("from strangers", total.foreign_source()),
        ("zero-length", total.zero_length()),
        ("not copied", total.copy_dropped()),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    for (name, counters) in names.iter().zip(&stats.endpoints) {
        let set: Vec<String> = counters
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !set.is_empty() {
            line.push_str(&format!("; {name}: {}", set.join(", ")));
        }
    }
    if let Some(table) = stats.table {
        line.push_str(&format!(
            "; switch: {} addresses, {} filtered, {} not learned (full), {} moves",
            table.entries, table.filtered, table.full, table.moves
        ));
    }
    line
}

fn json_report(stats: &RelayStats, names: &[String], carried: Duration) -> serde_json::Value {
    let direction = |d: Option<&crate::splice::stats::DirectionStats>| {
        d.map(|d| {
            serde_json::json!({
                "frames": d.frames(),
                "bytes": d.bytes(),
                "foreign_source": d.foreign_source(),
                "zero_length": d.zero_length(),
                "truncated": d.truncated(),
                "send_error": d.send_error(),
                "kernel_rx_overflow": d.kernel_rx_overflow(),
                "copy_dropped": d.copy_dropped(),
                "stage_dropped": d.stage_dropped(),
            })
        })
    };
    let endpoints: Vec<serde_json::Value> = names
        .iter()
        .zip(&stats.endpoints)
        .map(|(name, counters)| {
            let mut object = serde_json::Map::new();
            object.insert("name".into(), name.clone().into());
            for (k, v) in counters {
                object.insert((*k).into(), (*v).into());
            }
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::json!({
        "seconds": carried.as_secs_f64(),
        "from_even_endpoints": direction(stats.link.a_to_b.as_ref()),
        "from_odd_endpoints": direction(stats.link.b_to_a.as_ref()),
        "endpoints": endpoints,
        "switch": stats.table.map(|t| serde_json::json!({
            "entries": t.entries,
            "filtered": t.filtered,
            "full": t.full,
            "moves": t.moves,
        })),
    })
}
