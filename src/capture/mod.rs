//! The capture sink: pcapng for Wireshark, to a file, to standard output or to a ring buffer.
//!
//! Every file (every ring file too) is a complete pcapng section: a section header naming
//! linkscope and its version, the OS, the hardware and the caller's comment (the links); one
//! interface description per link end (linktype Ethernet, `if_tsresol` 9 = nanoseconds, the
//! snaplen); an enhanced packet block per frame with the direction flag; an interface
//! statistics block per interface when the file ends. The private modules `pcapng` (block
//! layout), `output` (how bytes reach the file or pipe) and `ring` (the ring buffer) say more;
//! [`extcap`] answers Wireshark's extcap protocol; [`filter`] compiles and runs capture
//! filters in libpcap syntax.
//!
//! The splice calls [`Writer::write`] for each frame and [`Writer::flush`] after each batch
//! from its consumer thread, then [`Writer::finish`] with its counters.

pub mod extcap;
pub mod filter;
mod host;
mod output;
mod pcapng;
mod ring;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use self::output::Sink;
use self::pcapng::{Encoder, Header, Statistics};
use self::ring::Ring;

/// One captured interface: a link end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// `if_name`, e.g. `vm100:eth2`, or `127.0.0.1:40001` without a mapping.
    pub name: String,
    /// `if_description`, what Wireshark shows for the interface (Capture File Properties,
    /// the interface column), e.g. `vm100:eth1 ⇄ vm102:eth1 on link 100:1-102:1`; empty for
    /// none.
    pub description: String,
    /// The interface description's `opt_comment`: the details (the link's ends, MACs,
    /// bound addresses, host_mtu); empty for none.
    pub comment: String,
    /// `if_filter`: the capture filter the frames passed (libpcap syntax), as dumpcap writes
    /// it; Wireshark shows it in Capture File Properties.
    pub filter: Option<String>,
    /// Bytes kept of each frame; 0 keeps frames whole.
    pub snaplen: u32,
}

/// The caller's counters for one interface, written in its statistics block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Frames received on this end (`isb_ifrecv`).
    pub received: u64,
    /// Frames the tap dropped because the capture fell behind (`isb_ifdrop`).
    pub dropped_by_us: u64,
    /// Frames the kernel dropped before we read them, e.g. SO_RXQ_OVFL (`isb_osdrop`).
    pub dropped_by_kernel: u64,
}

/// One frame to write.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Index into the interfaces given to [`Writer::create`].
    pub interface: u32,
    /// Receive time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The whole frame; the writer cuts it to the interface's snaplen.
    pub data: &'a [u8],
    /// Sent by this interface's end (`epb_flags` direction 2) rather than received by it (1).
    pub outbound: bool,
}

/// Where the capture goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// One file, written in place while the capture runs (`-w FILE`).
    File(PathBuf),
    /// Standard output, for `| wireshark -k -i -` or `| tshark -l -i -` (`-w -`).
    Stdout,
    /// A ring of files named like dumpcap's (`-w FILE -b ...`): switch files once one reaches
    /// `filesize_kb` kB (1000 bytes) or has been open for `duration`, keep the newest `files`.
    Ring {
        path: PathBuf,
        filesize_kb: Option<u64>,
        duration: Option<Duration>,
        files: Option<u32>,
    },
}

/// Encoded bytes kept in memory before they are written even without [`Writer::flush`].
const PENDING_LIMIT: usize = 1 << 16;

/// Writes a pcapng capture; see the module documentation.
#[derive(Debug)]
pub struct Writer {
    header: Header,
    encoder: Encoder,
    sink: Sink,
    ring: Option<Ring>,
    /// When the current file was opened.
    opened: Instant,
    /// Frames in the current file.
    frames_in_file: u64,
    /// When the capture started, since the Unix epoch.
    started: Duration,
    /// Frames written per interface since the capture started.
    delivered: Vec<u64>,
    finished: bool,
}

impl Writer {
    /// Opens the output and writes the section header and interface descriptions.
    /// A file or ring path that cannot be created is an input error (exit status 2).
    pub fn create(
        output: &Output,
        section_comment: &str,
        interfaces: &[Interface],
    ) -> crate::Result<Writer> {
        if interfaces.is_empty() {
            return Err(crate::Error::Argument {
                field: "capture interfaces".into(),
                message: "a capture needs at least one interface".into(),
            });
        }
        let header = Header {
            host: host::Host::current(),
            comment: section_comment.to_owned(),
            interfaces: interfaces.to_vec(),
        };
        let now = SystemTime::now();
        let (sink, ring) = match output {
            Output::File(path) => (create_file(path)?, None),
            Output::Stdout => (Sink::stdout()?, None),
            Output::Ring {
                path,
                filesize_kb,
                duration,
                files,
            } => {
                let mut ring = Ring::new(path, *filesize_kb, *duration, *files)?;
                let first = ring.next_path(now);
                let sink = create_file(&first)?;
                ring.retire(first);
                (sink, Some(ring))
            }
        };
        let encoder = Encoder::start(&header).map_err(|source| crate::Error::Pcapng {
            path: sink.path().to_owned(),
            source,
        })?;
        let mut writer = Writer {
            header,
            encoder,
            sink,
            ring,
            opened: Instant::now(),
            frames_in_file: 0,
            started: since_epoch(now),
            delivered: vec![0; interfaces.len()],
            finished: false,
        };
        writer.drain()?;
        Ok(writer)
    }

    /// Writes one frame as an enhanced packet block (switching ring files first when due).
    pub fn write(&mut self, packet: &Packet) -> crate::Result<()> {
        let index = packet.interface as usize;
        if index >= self.delivered.len() {
            return Err(crate::Error::Argument {
                field: "packet.interface".into(),
                message: format!(
                    "interface {} does not exist (the capture has {})",
                    packet.interface,
                    self.delivered.len()
                ),
            });
        }
        self.rotate_if_due()?;
        self.encoder
            .packet(packet)
            .map_err(|source| self.encoding_error(source))?;
        self.delivered[index] += 1;
        self.frames_in_file += 1;
        if self.encoder.pending().len() >= PENDING_LIMIT {
            self.drain()?;
        }
        Ok(())
    }

    /// Hands every encoded block to the file or pipe, so a live reader sees them now.
    pub fn flush(&mut self) -> crate::Result<()> {
        self.rotate_if_due()?;
        self.drain()
    }

    /// Size of the current file once flushed, in bytes (for autostop `filesize`).
    pub fn bytes_written(&self) -> u64 {
        self.encoder.encoded()
    }

    /// Writes an interface statistics block per interface with the caller's counters (one
    /// entry per interface, in order), then everything still pending.
    pub fn finish(mut self, stats: &[InterfaceStats]) -> crate::Result<()> {
        if stats.len() != self.delivered.len() {
            self.drain()?;
            return Err(crate::Error::Argument {
                field: "capture statistics".into(),
                message: format!(
                    "{} entries for {} interfaces",
                    stats.len(),
                    self.delivered.len()
                ),
            });
        }
        self.statistics(Some(stats))?;
        self.finished = true;
        self.drain()
    }

    /// Closes the current ring file with its statistics and opens the next one.
    fn rotate_if_due(&mut self) -> crate::Result<()> {
        let due = self.ring.as_ref().is_some_and(|ring| {
            ring.due(
                self.encoder.encoded(),
                self.frames_in_file,
                self.opened.elapsed(),
            )
        });
        if !due {
            return Ok(());
        }
        self.statistics(None)?;
        self.drain()?;
        let Some(ring) = self.ring.as_mut() else {
            return Ok(());
        };
        let path = ring.next_path(SystemTime::now());
        let sink = Sink::create(&path).map_err(|source| crate::Error::Io {
            path: path.clone(),
            source,
        })?;
        let old = ring.retire(path);
        self.sink = sink;
        self.encoder =
            Encoder::start(&self.header).map_err(|source| self.encoding_error(source))?;
        self.opened = Instant::now();
        self.frames_in_file = 0;
        for path in old {
            // As dumpcap: a file someone already moved or deleted is no reason to stop.
            let _ = std::fs::remove_file(path);
        }
        self.drain()
    }

    /// One statistics block per interface, stamped now.
    fn statistics(&mut self, counts: Option<&[InterfaceStats]>) -> crate::Result<()> {
        let at = since_epoch(SystemTime::now());
        for (index, delivered) in self.delivered.iter().enumerate() {
            let statistics = Statistics {
                at,
                start: self.started,
                counts: counts.map(|c| c[index]),
                delivered: *delivered,
            };
            self.encoder
                .statistics(index as u32, &statistics)
                .map_err(|source| crate::Error::Pcapng {
                    path: self.sink.path().to_owned(),
                    source,
                })?;
        }
        Ok(())
    }

    fn drain(&mut self) -> crate::Result<()> {
        if !self.encoder.pending().is_empty() {
            self.sink.write(self.encoder.pending())?;
            self.encoder.clear_pending();
        }
        Ok(())
    }

    fn encoding_error(&self, source: ::pcap_file::pcapng::PcapNgWriteError) -> crate::Error {
        crate::Error::Pcapng {
            path: self.sink.path().to_owned(),
            source,
        }
    }
}

impl Drop for Writer {
    /// A writer dropped without [`Writer::finish`] (an error elsewhere, a panic) still writes
    /// the whole blocks it holds, so the file ends on a block boundary.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.drain();
        }
    }
}

/// A capture encoded in memory for one live reader (a `serve` client): the section header
/// and interface descriptions first, then a block per frame; the reader takes what has
/// accumulated with [`Stream::take`]. Every take ends on a block boundary.
#[derive(Debug)]
pub struct Stream {
    encoder: Encoder,
}

/// The path pcapng errors of a [`Stream`] name.
const STREAM_PATH: &str = "live capture";

impl Stream {
    /// Starts the section: its header naming linkscope and `comment`, one interface
    /// description per interface.
    pub fn start(comment: &str, interfaces: &[Interface]) -> crate::Result<Stream> {
        let header = Header {
            host: host::Host::current(),
            comment: comment.to_owned(),
            interfaces: interfaces.to_vec(),
        };
        let encoder = Encoder::start(&header).map_err(|source| crate::Error::Pcapng {
            path: STREAM_PATH.into(),
            source,
        })?;
        Ok(Stream { encoder })
    }

    /// Appends one frame's enhanced packet block.
    pub fn packet(&mut self, packet: &Packet) -> crate::Result<()> {
        self.encoder
            .packet(packet)
            .map_err(|source| crate::Error::Pcapng {
                path: STREAM_PATH.into(),
                source,
            })
    }

    /// The blocks encoded since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        let blocks = self.encoder.pending().to_vec();
        self.encoder.clear_pending();
        blocks
    }
}

fn create_file(path: &Path) -> crate::Result<Sink> {
    Sink::create(path).map_err(|e| crate::Error::Argument {
        field: "output".into(),
        message: format!("{}: cannot create: {e}", path.display()),
    })
}

fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}
