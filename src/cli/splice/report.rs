//! What `linkscope splice` reports: the start report per link, the status lines, the human
//! summary of the measurements and the JSON report.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::spliced::meter_text::{self, Rates};
use crate::cli::spliced::{print_summary, stdout_error, watch};
use crate::clock::now_ns;
use crate::measure::meter::{Counters, SpliceCounters};
use crate::measure::report::{self, Report};
use crate::measure::snmp::{self, FragCounters};
use crate::plan::LinkNames;
use crate::splice::meters::{self, Meters};
use crate::splice::watch::Views;
use crate::splice::{Direction, LinkConfig, LinkStats, Mode, Survey};

use super::options::Options;
use crate::control::Links;
use crate::impair::{Counters as ImpairCounters, Registry};

/// The start report on standard error: per link and end whether it is local and bound, and
/// which directions this host carries (from `surveys`, one per link).
pub(super) fn start(options: &Options, surveys: &[Survey]) -> io::Result<()> {
    let mut err = io::stderr().lock();
    for ((link, survey), names) in options.links.iter().zip(surveys).zip(&options.names) {
        link_start(link, survey, names, &mut err)?;
    }
    Ok(())
}

/// The start report of one link.
fn link_start(
    link: &LinkConfig,
    survey: &Survey,
    names: &LinkNames,
    err: &mut impl Write,
) -> io::Result<()> {
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
        let bound = match (end.local, end.bound, link.mode) {
            (true, true, _) => "bound",
            (true, false, Mode::Steal) => {
                "not bound yet (a VM started later binds it too, and the splice still receives first)"
            }
            (true, false, Mode::Relay { .. }) => {
                "not bound yet (the relay forwards to it once its VM binds it)"
            }
            (false, _, _) => "not visible from here",
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

/// Where the JSON report goes.
pub(super) enum JsonOut {
    Stdout,
    File(io::BufWriter<std::fs::File>, PathBuf),
}

impl JsonOut {
    pub(super) fn open(path: &Path, capture_on_stdout: bool) -> anyhow::Result<JsonOut> {
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
    pub(super) fn write(&mut self, report: &Report, stream: bool) -> anyhow::Result<()> {
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

/// With more links than this, a status line shows their totals rather than each link.
const STATUS_LINKS_SHOWN: usize = 4;

/// The splice's measurements as the CLI shows them: the meters, the names of the links'
/// ends, the directions each link carries here, and the kernel's counters at the start.
pub(super) struct Measurement {
    pub meters: Meters,
    names: Vec<LinkNames>,
    directions: Vec<Vec<Direction>>,
    family: snmp::Family,
    snmp_start: FragCounters,
    started_ns: u64,
    /// Counters at the last status line, per link, for the current rates.
    last: Vec<[Counters; 2]>,
    last_ns: u64,
    terminal: bool,
}

impl Measurement {
    pub(super) fn new(options: &Options, surveys: &[Survey]) -> anyhow::Result<Measurement> {
        let (links, names) = (&options.links, &options.names);
        let budgets = links
            .iter()
            .zip(&options.host_mtus)
            .map(|(link, mtu)| meters::budget(link, *mtu, options.path_mtu))
            .collect::<crate::Result<Vec<_>>>()?;
        let directions = links
            .iter()
            .zip(surveys)
            .map(|(link, survey)| match link.mode {
                Mode::Steal => survey.stealable(),
                Mode::Relay { .. } => Direction::BOTH.to_vec(),
            })
            .collect();
        let family = links
            .first()
            .map_or(snmp::Family::V4, |l| snmp::Family::of(&meters::peer(l)));
        let now = now_ns();
        Ok(Measurement {
            meters: Meters::new(&budgets),
            names: names.clone(),
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
    /// on a terminal): each link's figures, or with more than [`STATUS_LINKS_SHOWN`] links
    /// their totals and the busiest.
    pub(super) fn status(&mut self, impair: &Registry) -> io::Result<()> {
        let now = now_ns();
        let elapsed_ns = now - self.last_ns.min(now);
        let mut meters = self.meters.lock();
        for meter in meters.iter_mut() {
            meter.expire(now);
        }
        let line = if meters.len() > STATUS_LINKS_SHOWN {
            let rates: Vec<(&str, Rates)> = meters
                .iter()
                .enumerate()
                .map(|(i, meter)| {
                    let rates = Rates::of(meter, &self.directions[i], self.last[i], elapsed_ns);
                    (self.names[i].link.as_str(), rates)
                })
                .collect();
            meter_text::totals_line(&rates)
        } else {
            let parts: Vec<String> = meters
                .iter()
                .enumerate()
                .map(|(i, meter)| {
                    let line = meter_text::status_line(
                        meter,
                        &self.directions[i],
                        self.last[i],
                        elapsed_ns,
                    );
                    format!(
                        "{}: {line}{}",
                        self.names[i].link,
                        impair_status(impair, &self.names[i].link)
                    )
                })
                .collect();
            parts.join("  ")
        };
        for (last, meter) in self.last.iter_mut().zip(meters.iter()) {
            *last = Direction::BOTH.map(|d| meter.counters(d));
        }
        drop(meters);
        self.last_ns = now;
        let mut err = io::stderr().lock();
        if self.terminal {
            write!(err, "\r{line}\x1b[K")?;
        } else {
            writeln!(err, "{line}")?;
        }
        err.flush()
    }

    /// Ends a refreshing status line before other output.
    pub(super) fn end_status(&self) -> io::Result<()> {
        if self.terminal {
            writeln!(io::stderr())?;
        }
        Ok(())
    }

    /// The report as of now, with the splice's own counters and the control-plane views.
    pub(super) fn report(
        &self,
        stats: &[LinkStats],
        views: &Views,
        impair: &Registry,
    ) -> anyhow::Result<Report> {
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
                let mut link = meter.report(&self.names[i], splice, duration_s);
                for (direction, out) in Direction::BOTH.iter().zip(&mut link.directions) {
                    let view = l2.direction(*direction);
                    out.lldp = serde_json::to_value(view.lldp())?;
                    out.stp = serde_json::to_value(view.stp())?;
                    out.lacp = serde_json::to_value(view.lacp())?;
                    out.impairment = impair_json(impair, &self.names[i].link, *direction)?;
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
    pub(super) fn summary(&self, err: &mut impl Write) -> io::Result<()> {
        let duration_s = now_ns().saturating_sub(self.started_ns) as f64 / 1e9;
        let meters = self.meters.lock();
        for (i, meter) in meters.iter().enumerate() {
            write!(
                err,
                "{}",
                meter_text::summary(meter, &self.names[i], &self.directions[i], duration_s)
            )?;
        }
        Ok(())
    }
}

/// The impairment part of a link's status line: each direction's spec and what it did, when
/// it has a spec, a cable pull or counts.
fn impair_status(impair: &Registry, link: &str) -> String {
    let Some(state) = impair.state(link) else {
        return String::new();
    };
    let mut out = String::new();
    for d in &state.directions {
        let c = &d.counters;
        if d.spec.is_empty() && !d.down && c == &ImpairCounters::default() {
            continue;
        }
        out += &format!(
            "  impair {} [{}{}]: dropped {}, delayed {}, dup {}, reord {}, corrupt {}",
            d.direction,
            d.spec,
            if d.down { " DOWN" } else { "" },
            c.dropped(),
            c.delayed,
            c.duplicated,
            c.reordered,
            c.corrupted
        );
    }
    out
}

/// One direction's impairment for the JSON report (null without a stage there).
fn impair_json(
    impair: &Registry,
    link: &str,
    direction: Direction,
) -> serde_json::Result<serde_json::Value> {
    let state = impair.state(link);
    let found = state.as_ref().and_then(|s| {
        s.directions
            .iter()
            .find(|d| d.direction == direction.label())
    });
    match found {
        Some(d) => serde_json::to_value(d),
        None => Ok(serde_json::Value::Null),
    }
}

/// What the splice shows at the end on standard error (its own counters, the measurements'
/// summary, the control plane, the `--expect` verdict) and the final JSON report; returns
/// whether `--expect` passed (true without it).
pub(super) fn finish(
    options: &Options,
    measurement: Option<&Measurement>,
    json: Option<&mut JsonOut>,
    stats: &[LinkStats],
    (views, impair): (&Views, &Registry),
    waited: Duration,
) -> anyhow::Result<bool> {
    let mut err = io::stderr().lock();
    if let Some(m) = measurement {
        m.end_status()?;
    }
    print_summary(stats, &options.names, &mut err)?;
    if let Some(m) = measurement {
        m.summary(&mut err)?;
        if let Some(json) = json {
            json.write(&m.report(stats, views, impair)?, options.json_stream)?;
        }
    }
    let views = views.lock();
    watch::print_summary(&views, stats, &options.names, &mut err)?;
    Ok(match &options.expect {
        Some(expect) => watch::verdict(expect, &views, &options.names, waited, &mut err)?,
        None => true,
    })
}
