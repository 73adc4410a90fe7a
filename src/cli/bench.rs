//! `linkscope bench`: send, sink, reflect.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Subcommand;

use crate::bench::receiver::{Receiver, ReceiverConfig};
use crate::bench::sender::{self, Event, IntervalResult, Limit, SendConfig, SizeResult};
use crate::bench::spec::{self, Rate};
use crate::bench::stats::MAX_STREAMS;
use crate::plan::{self, Endpoint, Side};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Send test frames to a sink or reflector and print both ends' view.
    Send(SendArgs),
    /// Count test frames and report the counts to the sender in-band.
    Sink(ListenArgs),
    /// Like sink, and return every test frame to its sender (round-trip times).
    Reflect(ListenArgs),
}

#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Address to bind, IP:PORT (port 0: any free port, printed on start).
    #[arg(
        long,
        value_name = "IP:PORT",
        required_unless_present = "mapping",
        conflicts_with = "mapping"
    )]
    listen: Option<SocketAddr>,
    /// Accept test frames only from this sender, IP[:PORT] (no port: any port of that
    /// address); frames from elsewhere are refused and counted. Not implied by --mapping:
    /// a splice in steal mode forwards from a port of its own.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_peer)]
    peer: Option<SocketAddr>,
    #[command(flatten)]
    planned: Planned,
}

/// `IP:PORT`, or `IP` for any port of that address (port 0).
fn parse_peer(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 0))
        })
        .map_err(|_| format!("`{text}` is not IP or IP:PORT"))
}

/// Stand in for one NIC of a planned link instead of giving addresses.
#[derive(Debug, clap::Args)]
struct Planned {
    /// The mapping.yaml that plans the link.
    #[arg(long, value_name = "FILE", requires = "end")]
    mapping: Option<PathBuf>,
    /// The NIC to stand in for, VM:ETH (`100:1`, `100:eth1`): bind its address, send to its peer.
    #[arg(long = "as", id = "end", value_name = "VM:ETH", requires = "mapping")]
    end: Option<String>,
}

impl Planned {
    /// (this NIC, its peer) when a mapping is given.
    fn resolve(&self) -> anyhow::Result<Option<(Endpoint, Endpoint)>> {
        let (Some(mapping), Some(end)) = (&self.mapping, &self.end) else {
            return Ok(None);
        };
        let links = plan::load_links(mapping)?;
        let (link, side) = plan::find_end(&links, end)?;
        let peer = match side {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        Ok(Some((link.end(side).clone(), link.end(peer).clone())))
    }
}

fn missing_address(field: &str) -> crate::Error {
    crate::Error::Argument {
        field: field.into(),
        message: format!("give {field} IP:PORT or --mapping FILE --as VM:ETH"),
    }
}

fn mac(text: &str) -> Result<[u8; 6], crate::Error> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = parts
            .next()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| crate::Error::Argument {
                field: "--as".into(),
                message: format!("planned MAC `{text}` is not six hex bytes"),
            })?;
    }
    Ok(mac)
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// Address to bind, IP:PORT [default: any port on the unspecified address].
    #[arg(long, value_name = "IP:PORT", conflicts_with = "mapping")]
    local: Option<SocketAddr>,
    /// The sink or reflector, IP:PORT.
    #[arg(
        long,
        value_name = "IP:PORT",
        required_unless_present = "mapping",
        conflicts_with = "mapping"
    )]
    to: Option<SocketAddr>,
    #[command(flatten)]
    planned: Planned,
    /// Frames/s (`1000`, `50kpps`), payload bit/s with a unit (`100M`, `2Gbit`) or `max`.
    #[arg(long, default_value = "1000")]
    rate: String,
    /// Frame size(s) in bytes (= tunnel UDP payload): `1470`, `64,512,1470`, `64..9018:512`.
    #[arg(long, default_value = "1470")]
    size: String,
    /// Seconds to send each size [default: 10 unless --count].
    #[arg(long, value_name = "S", conflicts_with = "count")]
    duration: Option<f64>,
    /// Frames to send per size (all streams together).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Seconds of uncounted frames before each size.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    warmup: f64,
    /// Parallel flows (one thread and stream id each), at most 256 (what a receiver counts).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_STREAMS as i64))]
    streams: u16,
    /// Seconds between interval reports; 0 for none.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    interval: f64,
    /// Path MTU for the on-wire bit rate (outer headers and fragments) [default: the
    /// kernel's route MTU towards the receiver; 65535 on loopback].
    #[arg(long, value_name = "BYTES")]
    path_mtu: Option<u32>,
    /// Seconds to wait after the last frame of a size for frames in flight.
    #[arg(long, value_name = "S", default_value_t = 0.2)]
    drain: f64,
    /// Send each frame through the stack on its own instead of handing the kernel runs of
    /// up to 64 frames to cut into datagrams (UDP GSO, used where the path allows): slower,
    /// but a capture on this host then shows every frame separately, as QEMU sends them.
    #[arg(long)]
    no_gso: bool,
    /// Print the whole run as one JSON document.
    #[arg(long, conflicts_with = "json_stream")]
    json: bool,
    /// Print one JSON object per interval and per size, one per line.
    #[arg(long)]
    json_stream: bool,
}

/// Runs `linkscope bench`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = super::stop::flag()?;
    match args.command {
        BenchCommand::Send(a) => send(a, &stop),
        BenchCommand::Sink(a) => listen(a, false, &stop),
        BenchCommand::Reflect(a) => listen(a, true, &stop),
    }
}

fn listen(args: ListenArgs, reflect: bool, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    // A planned end answers its planned peer, as the VM it stands in for would.
    let (listen, reply_to) = match (args.planned.resolve()?, args.listen) {
        (Some((me, _)), _) => (me.local, Some(me.remote)),
        (None, Some(listen)) => (listen, None),
        (None, None) => return Err(missing_address("--listen").into()),
    };
    let mut receiver = Receiver::bind(&ReceiverConfig {
        listen,
        reflect,
        peer: args.peer,
        reply_to,
    })?;
    let role = if reflect { "reflect" } else { "sink" };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "linkscope bench {role}: listening on {}",
        receiver.local_addr()?
    )?;
    out.flush()?;
    drop(out);
    receiver.run(stop)?;
    eprintln!(
        "linkscope bench {role}: test frames: {} accounted, {} refused (from a source other \
         than --peer, beyond {} streams per test, or a sequence number far ahead), {} dropped \
         by the receiving socket; {} datagrams that were not test frames ignored",
        receiver.accepted(),
        receiver.refused(),
        MAX_STREAMS,
        receiver.dropped(),
        receiver.foreign()
    );
    Ok(ExitCode::SUCCESS)
}

fn seconds(field: &str, value: f64) -> Result<Duration, crate::Error> {
    Duration::try_from_secs_f64(value).map_err(|_| crate::Error::Argument {
        field: field.into(),
        message: format!("{value} is not a duration in seconds"),
    })
}

fn send(args: SendArgs, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let limit = match (args.count, args.duration) {
        (Some(0), _) => {
            return Err(crate::Error::Argument {
                field: "--count".into(),
                message: "must be at least 1".into(),
            }
            .into());
        }
        (Some(n), _) => Limit::Count(n),
        (None, d) => Limit::Duration(seconds("--duration", d.unwrap_or(10.0))?),
    };
    let mut src_mac = [0x02, 0x4c, 0x53, 0, 0, 1];
    let mut dst_mac = [0x02, 0x4c, 0x53, 0, 0, 2];
    let (local, to) = match (args.planned.resolve()?, args.to) {
        (Some((me, peer)), _) => {
            src_mac = mac(&me.mac)?;
            dst_mac = mac(&peer.mac)?;
            (me.local, me.remote)
        }
        (None, Some(to)) => {
            let any = match to {
                SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
                SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            };
            (args.local.unwrap_or(any), to)
        }
        (None, None) => return Err(missing_address("--to").into()),
    };
    let interval = seconds("--interval", args.interval)?;
    let config = SendConfig {
        local,
        to,
        sizes: spec::parse_sizes(&args.size)?,
        rate: Rate::parse(&args.rate)?,
        limit,
        warmup: seconds("--warmup", args.warmup)?,
        streams: args.streams,
        interval: (!interval.is_zero()).then_some(interval),
        src_mac,
        dst_mac,
        path_mtu: match args.path_mtu {
            Some(mtu) => mtu,
            None => crate::measure::pmtu::route_path_mtu(to)?,
        },
        drain: seconds("--drain", args.drain)?,
        report_timeout: Duration::from_secs(3),
        segmented: !args.no_gso,
    };
    let progress = args.json && std::io::stderr().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut failed: Option<std::io::Error> = None;
    let mut on_event = |event: Event| {
        let written = match event {
            Event::Interval(i) if args.json_stream => {
                writeln!(out, "{}", serde_json::json!({"interval": i}))
            }
            Event::Size(s) if args.json_stream => {
                writeln!(out, "{}", serde_json::json!({"size": s}))
            }
            Event::Interval(i) if progress => {
                eprint!(
                    "\r{} B  {:6.1} s  {:>10.0} frames/s  lost {:.2} %   ",
                    i.size, i.end_s, i.figures.pps, i.figures.lost_pct
                );
                Ok(())
            }
            Event::Interval(i) if !args.json => writeln!(out, "{}", interval_line(i)),
            Event::Size(_) if progress => {
                eprintln!();
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = written
            && failed.is_none()
        {
            failed = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    };
    let result = sender::run(&config, stop, &mut on_event)?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
    } else if !args.json_stream {
        writeln!(out, "{}", table(&result.sizes, &config))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rate(bits: f64) -> String {
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else {
        format!("{:.2} Mbit/s", bits / 1e6)
    }
}

fn interval_line(i: &IntervalResult) -> String {
    let rtt = i
        .figures
        .rtt_us
        .map(|r| format!("  rtt p50 {:.1} us p99 {:.1} us", r.p50, r.p99))
        .unwrap_or_default();
    format!(
        "{:>5} B {:6.2}-{:6.2} s  sent {:>9}  received {:>9}  lost {:>7} ({:.2} %, {} by the receiving socket)  out-of-order {}  duplicates {}  {:.0} frames/s  payload {}  wire {}  jitter {:.3} ms{rtt}",
        i.size,
        i.start_s,
        i.end_s,
        i.figures.sent,
        i.figures.received,
        i.figures.lost,
        i.figures.lost_pct,
        i.figures.receiver_drops,
        i.figures.out_of_order,
        i.figures.duplicates,
        i.figures.pps,
        rate(i.figures.payload_bits_per_second),
        rate(i.figures.wire_bits_per_second),
        i.figures.jitter_ms,
    )
}

fn table(sizes: &[SizeResult], config: &SendConfig) -> String {
    let mut t = format!(
        "{:>6} {:>10} {:>10} {:>8} {:>7} {:>6} {:>5} {:>10} {:>12} {:>12} {:>9} {:>21} {:>11}\n",
        "size",
        "sent",
        "received",
        "lost",
        "lost%",
        "ooo",
        "dup",
        "frames/s",
        "payload",
        "wire",
        "jitter",
        "rtt min/p50/p99 us",
        "frag tx/rx"
    );
    for s in sizes {
        let rtt = s.figures.rtt_us.map_or_else(
            || "-".to_string(),
            |r| format!("{:.0}/{:.0}/{:.0}", r.min, r.p50, r.p99),
        );
        t += &format!(
            "{:>6} {:>10} {:>10} {:>8} {:>7.2} {:>6} {:>5} {:>10.0} {:>12} {:>12} {:>6.3} ms {:>21} {:>11}\n",
            s.size,
            s.figures.sent,
            s.figures.received,
            s.figures.lost,
            s.figures.lost_pct,
            s.figures.out_of_order,
            s.figures.duplicates,
            s.figures.pps,
            rate(s.figures.payload_bits_per_second),
            rate(s.figures.wire_bits_per_second),
            s.figures.jitter_ms,
            rtt,
            format!(
                "{}/{}",
                s.fragments.sender_frag_creates, s.fragments.receiver_reasm_reqds
            ),
        );
    }
    for s in sizes.iter().filter(|s| s.figures.receiver_drops > 0) {
        t += &format!(
            "{:>6}: {} of the lost frames were dropped by the receiving socket's buffer: the receiving process, not the path, was the limit\n",
            s.size, s.figures.receiver_drops
        );
    }
    t += &format!(
        "payload: tunnel frames (UDP payload) received, comparable with iperf3; wire: with outer Ethernet/IP/UDP headers and fragment headers at path MTU {}",
        config.path_mtu
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args as _;

    #[test]
    fn arguments_are_consistent() {
        Args::augment_args(clap::Command::new("bench")).debug_assert();
    }

    #[test]
    fn planned_macs_parse() {
        assert_eq!(
            mac("be:24:99:00:64:01").unwrap(),
            [0xbe, 0x24, 0x99, 0, 0x64, 1]
        );
        assert!(mac("be:24:99").unwrap_err().is_input());
        assert!(mac("zz:24:99:00:64:01").unwrap_err().is_input());
    }
}
