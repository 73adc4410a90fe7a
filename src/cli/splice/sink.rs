//! Where the copy channel's frames go: a capture file, one printed line each, or only a
//! count for `-c` / `-a packets:`.

use crate::capture::Writer;
use crate::cli::spliced::{Printer, capture_layout, limit_flow};
use crate::splice::copy::{Consumer, CopyRecord, Next};
use crate::splice::recorder::Recorder;

use super::options::Options;

/// Where the copy channel's frames go.
pub(super) enum Sink {
    Print(Printer),
    Count(Counter),
    Capture(Box<Recorder>),
}

impl Sink {
    /// The sink the options ask for: the capture with -w, else printed lines unless -q,
    /// else a count when a packet limit needs one; None when no frame needs taking.
    pub(super) fn open(options: &Options) -> crate::Result<Option<Sink>> {
        let packets = options.autostop.packets;
        Ok(if let Some(output) = &options.output {
            let (interfaces, comment) = capture_layout(
                &options.names,
                options.snaplen,
                options.filter.as_ref().map(|f| f.expression()),
            );
            Some(Sink::Capture(Box::new(Recorder::new(
                Writer::create(output, &comment, &interfaces)?,
                packets,
                options.autostop.filesize_kb.map(|kb| kb * 1000),
            ))))
        } else if !options.quiet {
            Some(Sink::Print(Printer::new(options.names.clone(), packets)))
        } else if packets.is_some() {
            Some(Sink::Count(Counter {
                limit: packets,
                seen: 0,
            }))
        } else {
            None
        })
    }
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
pub(super) struct Counter {
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
