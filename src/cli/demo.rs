//! `linkscope demo`: a spliced lab on loopback, no VM and no root needed.
//!
//! Two emulated QEMU ends (vm100:eth1 and vm102:eth1) exchange ARP, ICMP echo, LLDP and STP
//! frames over a UDP tunnel. After a second a splice steps in (steal mode), prints, measures
//! and records what crosses, and steps out a second before the end; then a summary shows
//! what the splice measured (volume, round trips, fragmentation against host_mtu), the
//! control plane it saw, what each end saw, and how much of it came through the splice.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::spliced::{Printer, capture_layout, join, meter_text, print_summary, watch};
use crate::capture::{Output, Writer};
use crate::plan::LinkNames;
use crate::splice::copy::{self, Consumer, CopyRecord, Next};
use crate::splice::demo::{Identity, Vm, VmCounts};
use crate::splice::meters::{self, Metered, Meters};
use crate::splice::recorder::Recorder;
use crate::splice::watch::{Views, Watched};
use crate::splice::{CopyFilter, Direction, LinkConfig, Mode, Splice, SpliceConfig};

/// The host_mtu a planned link has by default (mapping.yaml's default).
const DEMO_HOST_MTU: u32 = 9300;

/// Run a spliced two-VM lab on loopback for a few seconds and write demo.pcapng.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the capture.
    #[arg(short = 'w', value_name = "FILE", default_value = "demo.pcapng")]
    write: PathBuf,
    /// How long the lab runs; the splice is in for all but the first and the last second.
    #[arg(long, value_name = "SECONDS", default_value_t = 4, value_parser = clap::value_parser!(u64).range(3..=3600))]
    seconds: u64,
    /// Print nothing per frame.
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Records every frame and prints it too.
struct Tee {
    recorder: Recorder,
    printer: Option<Printer>,
}

impl Consumer for Tee {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        if let Some(printer) = &mut self.printer {
            printer.record(record)?;
        }
        self.recorder.record(record)
    }

    fn flush(&mut self) -> crate::Result<()> {
        if let Some(printer) = &mut self.printer {
            printer.flush()?;
        }
        self.recorder.flush()
    }
}

/// Sleeps until `until` or until `stop` is set; false when stopped early.
fn wait(until: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn report(name: &str, c: &VmCounts) {
    eprintln!(
        "{name}: sent {} frames, received {} ({} through the splice): {} ARP, {} ICMP, {} LLDP, \
         {} STP, {} other",
        c.sent, c.received, c.spliced, c.arp, c.icmp, c.lldp, c.stp, c.other
    );
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = super::stop::flag()?;

    let (a_id, b_id) = (Identity::demo(0, true), Identity::demo(2, false));
    let (socket_a, socket_b) = (Vm::bind()?, Vm::bind()?);
    let (la, lb) = (socket_a.local_addr()?, socket_b.local_addr()?);
    let names = vec![LinkNames {
        link: "100:1-102:1".into(),
        a: "vm100:eth1".into(),
        b: "vm102:eth1".into(),
        detail: format!(", emulated on loopback, A binds {la}, B binds {lb}"),
    }];
    let (interfaces, comment) = capture_layout(&names, 0, None);
    let writer = Writer::create(&Output::File(args.write.clone()), &comment, &interfaces)?;

    let started = Instant::now();
    let vm_a = Vm::start(socket_a, lb, a_id.clone(), b_id.ip)?;
    let vm_b = Vm::start(socket_b, la, b_id, a_id.ip)?;
    eprintln!(
        "vm100:eth1 ({la}) and vm102:eth1 ({lb}) talk over a UDP tunnel: ARP, ICMP echo, LLDP, STP"
    );

    let total = Duration::from_secs(args.seconds);
    let link = LinkConfig {
        name: names[0].link.clone(),
        a: la,
        b: lb,
        mode: Mode::Steal,
    };
    let meters = Meters::new(&[meters::budget(&link, Some(DEMO_HOST_MTU), None)?]);
    let views = Views::new(1);
    let mut stats = Vec::new();
    let mut recorded = 0;
    let mut spliced_for = Duration::ZERO;
    if wait(started + Duration::from_secs(1), &stop) {
        eprintln!("splice steps in (steal mode; no reconfiguration, no restart)");
        let (sender, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
        let tee = Tee {
            recorder: Recorder::new(writer, None, None),
            printer: (!args.quiet).then(|| Printer::new(names.clone(), None)),
        };
        let watched = Watched::new(
            views.clone(),
            None,
            watch::printer(names.clone()),
            Some(tee),
        );
        let consumer = copy::spawn(
            receiver,
            Metered::new(meters.clone(), Some(watched), stop.clone()),
            stop.clone(),
        )?;
        let config = SpliceConfig {
            links: vec![link],
            copy: CopyFilter::All,
            workers: 1,
        };
        let splice_stop = Arc::new(AtomicBool::new(false));
        let splice = Splice::start(&config, Some(sender), splice_stop)?;
        let stepped_in = Instant::now();
        wait(started + total - Duration::from_secs(1), &stop);
        stats = splice.stop();
        spliced_for = stepped_in.elapsed();
        eprintln!("splice steps out: the tunnel is direct again");
        let tee = join(consumer)?
            .into_inner()?
            .and_then(Watched::into_inner)
            .context("the demo's capture consumer is gone")?;
        recorded = tee.recorder.frames();
        tee.recorder.finish(&stats)?;
        wait(started + total, &stop);
    } else {
        writer.finish(&[Default::default(); 2])?;
    }
    let counts = Vm::stop_all(vec![vm_a, vm_b]);
    let (a, b) = (&counts[0], &counts[1]);

    eprintln!();
    let mut err = std::io::stderr().lock();
    print_summary(&stats, &names, &mut err)?;
    eprint!(
        "{}",
        meter_text::summary(
            &meters.lock()[0],
            &names[0],
            &Direction::BOTH,
            spliced_for.as_secs_f64()
        )
    );
    watch::print_summary(&views.lock(), &stats, &names, &mut err)?;
    drop(err);
    report("vm100:eth1", a);
    report("vm102:eth1", b);
    eprintln!(
        "pings from vm100: {} sent, {} answered",
        a.pings_sent, a.pings_answered
    );
    eprintln!(
        "{}: {recorded} frames (open it in Wireshark, or: tshark -r {})",
        args.write.display(),
        args.write.display()
    );
    Ok(ExitCode::SUCCESS)
}
