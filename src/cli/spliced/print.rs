//! What a splice shows on standard output and standard error: one line per frame, and the
//! splice's own counters at the end.

use std::io::{self, Write};

use crate::splice::copy::{Consumer, CopyRecord, Next};
use crate::splice::{Direction, LinkStats};

use crate::plan::LinkNames;

/// Prints one line per frame on standard output.
pub(in crate::cli) struct Printer {
    out: io::BufWriter<io::Stdout>,
    names: Vec<LinkNames>,
    limit: Option<u64>,
    seen: u64,
}

impl Printer {
    /// Prints frames of the links named by `names`, asking to stop after `limit`.
    pub(in crate::cli) fn new(names: Vec<LinkNames>, limit: Option<u64>) -> Printer {
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

/// Stop once `seen` reaches `limit`.
pub(in crate::cli) fn limit_flow(seen: u64, limit: Option<u64>) -> Next {
    if limit.is_some_and(|l| seen >= l) {
        Next::Stop
    } else {
        Next::Continue
    }
}

pub(in crate::cli) fn stdout_error(source: io::Error) -> crate::Error {
    crate::Error::Io {
        path: "standard output".into(),
        source,
    }
}

/// `HH:MM:SS.nnnnnnnnn` (UTC) of a timestamp in nanoseconds since the epoch.
pub(in crate::cli) fn time_of_day(ns: u64) -> String {
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

/// One line per direction of each link: what the splice forwarded and dropped.
pub(in crate::cli) fn print_summary(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_is_utc_with_nanoseconds() {
        assert_eq!(
            time_of_day(86_400_000_000_000 + 3_723_000_000_042),
            "01:02:03.000000042"
        );
    }
}
