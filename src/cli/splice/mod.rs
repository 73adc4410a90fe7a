//! `linkscope splice`: step into running QEMU UDP tunnels, relay every frame unchanged, and
//! show what crosses them.
//!
//! [`args`] is the command line as clap parses it; [`options`] checks it and fills in every
//! default; [`sink`] takes the copied frames (capture, printed lines, a count); [`report`]
//! writes the start report, the status lines, the summary and the JSON report; [`run`] ties
//! them together.

mod args;
mod options;
mod report;
mod sink;
mod takeover;

use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::spliced::{join, watch};
use crate::capture::Output;
use crate::capture::filter::Filtered;
use crate::impair::{Live, Registry};
use crate::splice::copy;
use crate::splice::meters::{Metered, Meters};
use crate::splice::watch::{Views, Watched};
use crate::splice::{CopyFilter, Splice, SpliceConfig, Survey};

pub use args::Args;
use options::Options;
use report::{JsonOut, Measurement};
use sink::Sink;
use takeover::Takeovers;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = crate::cli::stop::flag()?;
    let options = Options::from_args(args)?;
    let capture_on_stdout = matches!(options.output, Some(Output::Stdout));
    let mut json = options
        .json
        .as_deref()
        .map(|path| JsonOut::open(path, capture_on_stdout))
        .transpose()?;
    // One reading of the kernel's socket tables for every link.
    let surveys = Survey::all(&options.links)?;
    report::start(&options, &surveys)?;
    let mut measurement = if options.measure {
        Some(Measurement::new(&options, &surveys)?)
    } else {
        None
    };

    let sink = Sink::open(&options)?.map(|sink| Filtered::new(sink, options.filter.clone()));
    // With nothing that takes every frame, only the layer-2 view consumes the copies.
    let copy = if sink.is_none() && measurement.is_none() {
        CopyFilter::Control
    } else {
        CopyFilter::All
    };
    let views = Views::new(options.links.len());
    let watched = Watched::new(
        views.clone(),
        options.expect.clone(),
        watch::printer(options.names.clone()),
        sink,
    );
    let meters = measurement
        .as_ref()
        .map_or_else(|| Meters::new(&[]), |m| m.meters.clone());
    let (copies, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
    let consumer = copy::spawn(
        receiver,
        Metered::new(meters, Some(watched), stop.clone()),
        stop.clone(),
    )?;

    let config = SpliceConfig {
        links: options.links.clone(),
        copy,
        workers: options.workers,
    };
    let live = Live::start(options.impair.clone())?;
    match live.control() {
        Ok(path) => eprintln!(
            "control: {} (linkscope ctl LINK impair|clear|down|up|flap|show)",
            path.display()
        ),
        Err(e) => {
            let cause = std::error::Error::source(e).map_or(String::new(), |s| format!(": {s}"));
            eprintln!("linkscope: no control socket ({e}{cause}); give --control PATH")
        }
    }
    let splice =
        Splice::start_with_stages(&config, Some(copies), stop.clone(), Some(live.stages()))?;
    let mut takeovers = Takeovers::new(&options);
    let waited = carry(
        &options,
        &stop,
        (&splice, live.registry()),
        measurement.as_mut(),
        json.as_mut(),
        &views,
        &mut takeovers,
    )?;
    let stats = splice.stop();
    let sink = join(consumer).and_then(|c| {
        Ok(c.into_inner()?
            .and_then(Watched::into_inner)
            .map(Filtered::into_inner))
    });
    let outcome = match sink {
        Ok(Some(Sink::Capture(recorder))) => recorder.finish(&stats).map_err(anyhow::Error::from),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    let passed = report::finish(
        &options,
        measurement.as_ref(),
        json.as_mut(),
        &stats,
        (&views, live.registry()),
        waited,
    )?;
    let gaps = takeovers.finish(&mut io::stderr().lock())?;
    outcome?;
    Ok(if passed && !gaps {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Carries the links until stopped (Ctrl-C, -c, -a or the --expect timeout), with a status
/// line (and a streamed JSON report) per stats interval; returns how long it carried them.
fn carry(
    options: &Options,
    stop: &AtomicBool,
    (splice, impair): (&Splice, &Registry),
    mut measurement: Option<&mut Measurement>,
    mut json: Option<&mut JsonOut>,
    views: &Views,
    takeovers: &mut Takeovers,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let interval = options.stats_interval;
    let mut next_status = started + interval;
    let mut next_takeover_check = started;
    while !stop.load(Ordering::SeqCst) {
        if options
            .autostop
            .duration
            .is_some_and(|d| started.elapsed() >= d)
            || (options.expect.is_some() && started.elapsed() >= options.expect_timeout)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next_takeover_check {
            next_takeover_check = Instant::now() + takeovers.check(&mut io::stderr().lock())?;
        }
        if let Some(m) = &mut measurement
            && !interval.is_zero()
            && Instant::now() >= next_status
        {
            next_status += interval;
            m.status(impair)?;
            if let Some(json) = &mut json
                && options.json_stream
            {
                json.write(&m.report(&splice.stats(), views, impair)?, true)?;
            }
        }
    }
    Ok(started.elapsed())
}
