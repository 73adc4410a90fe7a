//! `linkscope compare A B`: two captures of one link, one-way loss, reordering and delay.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::measure::compare::{self, Comparison, DirectionSource, Upstream};

/// Compare two captures of the same link taken at two points.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first capture (pcapng or pcap); taken as upstream when only one direction exists.
    a: PathBuf,
    /// The second capture.
    b: PathBuf,
    /// Print the comparison as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `linkscope compare`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let a = compare::read_capture(&args.a)?;
    let b = compare::read_capture(&args.b)?;
    let comparison = compare::compare(&a, &b);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", human(&comparison));
    }
    Ok(ExitCode::SUCCESS)
}

fn human(c: &Comparison) -> String {
    let mut out = format!("A = {}\nB = {}\n", c.a, c.b);
    for (name, source) in [("A", c.directions_a), ("B", c.directions_b)] {
        match source {
            DirectionSource::SourceMac => out.push_str(&format!(
                "{name} carries no direction flags: directions assigned by source MAC address\n"
            )),
            DirectionSource::Mixed => out.push_str(&format!(
                "{name}: frames without a direction flag assigned by source MAC address\n"
            )),
            DirectionSource::Empty => out.push_str(&format!("{name} holds no frame\n")),
            DirectionSource::Flags => {}
        }
    }
    match c.clock_offset_ms {
        Some(ms) => out.push_str(&format!(
            "clock offset B − A: {ms:.3} ms (estimated from both directions' fastest frames)\n"
        )),
        None => out.push_str(
            "clock offset unknown (one direction only): delays include it; A taken as upstream\n",
        ),
    }
    for d in &c.directions {
        let (up, down) = match d.upstream {
            Upstream::A => ("A", "B"),
            Upstream::B => ("B", "A"),
        };
        out.push_str(&format!(
            "{}: {up} → {down}: {} frames in A, {} in B, {} matched, lost {} ({:.2} %), \
             duplicates {}, reordered {}, unexpected {}, outside the overlap {}\n",
            d.direction,
            d.frames_a,
            d.frames_b,
            d.matched,
            d.lost,
            if d.matched + d.lost == 0 {
                0.0
            } else {
                d.lost as f64 * 100.0 / (d.matched + d.lost) as f64
            },
            d.duplicates,
            d.reordered,
            d.unexpected,
            d.outside_overlap,
        ));
        if let Some(delay) = d.delay_ms {
            out.push_str(&format!(
                "  one-way delay{}: min {:.3} ms, p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3}\n",
                if d.delay_includes_clock_offset {
                    " (includes the clock offset)"
                } else {
                    ""
                },
                delay.min,
                delay.p50,
                delay.p90,
                delay.p99,
                delay.max,
            ));
        }
    }
    out
}
