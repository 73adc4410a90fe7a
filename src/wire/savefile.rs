//! Reading saved captures: pcap (micro- or nanosecond, either byte order) and pcapng (any
//! number of sections and interfaces, any `if_tsresol`), through pcap-file.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};

use crate::{Error, Result};

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based index among the packets of the file.
    pub index: u64,
    /// Since the Unix epoch.
    pub time: Duration,
    /// Interface name (pcapng `if_name`), if the file says.
    pub interface: Option<String>,
    /// Interface index in its section (0 for pcap).
    pub interface_id: u32,
    pub link_type: DataLink,
    pub data: Vec<u8>,
    /// The frame's length on the wire (more than `data` when the capture cut it).
    pub original_len: u32,
    /// The pcapng `epb_flags` option (bits 0-1: 1 inbound, 2 outbound), if the file says.
    pub flags: Option<u32>,
}

enum Inner {
    /// pcap: the byte order of the record headers, nanosecond timestamps, the link type.
    Pcap {
        big_endian: bool,
        nanos: bool,
        link_type: DataLink,
    },
    /// pcapng: the parser of the current section (None before the first section header)
    /// and whether the section is big-endian.
    PcapNg {
        parser: Option<PcapNgParser>,
        big_endian: bool,
    },
    /// After an error: nothing more is read.
    Done,
}

/// Reads the packets of a pcap or pcapng file in order.
///
/// The framing (pcap record headers, pcapng block lengths) is checked here, so that an error
/// names the byte offset of the record or block at fault and a length that cannot be right
/// is refused before anything is allocated for it; pcap-file decodes each whole pcapng block.
pub struct Reader {
    path: PathBuf,
    source: Box<dyn Read>,
    /// The file's size, when known (a regular file).
    len: Option<u64>,
    inner: Inner,
    /// Byte offset of the next record or block.
    offset: u64,
    index: u64,
}

/// The largest pcap record read: libpcap's and Wireshark's limit for packet data (256 KiB).
pub const MAX_PACKET: u32 = 262_144;

/// The largest pcapng block read (16 MiB): far more than a packet of [`MAX_PACKET`] bytes
/// with its options needs.
pub const MAX_BLOCK: u32 = 16 << 20;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];
/// The section header's byte-order magic 0x1A2B3C4D, as a big-endian section writes it.
const BYTE_ORDER_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
/// Enhanced packet block type.
const EPB: u32 = 6;

/// A read that came up short.
enum Short {
    Io(std::io::Error),
    /// The end of the input after this many bytes.
    Eof(usize),
}

/// Fills `buf`, or says how much was there before the end.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> Result<(), Short> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => return Err(Short::Eof(got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Short::Io(e)),
        }
    }
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let b: [u8; 4] = bytes[at..at + 4].try_into().expect("four bytes");
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

impl Reader {
    /// Opens `path`, telling pcap from pcapng by the magic number.
    pub fn open(path: &Path) -> Result<Reader> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let len = meta.is_file().then_some(meta.len());
        Reader::new(path, Box::new(BufReader::new(file)), len)
    }

    /// Reads a capture from `source`, `len` bytes long when known; `name` names it in errors.
    pub fn new(name: &Path, source: Box<dyn Read>, len: Option<u64>) -> Result<Reader> {
        let mut reader = Reader {
            path: name.to_path_buf(),
            source,
            len,
            inner: Inner::Done,
            offset: 0,
            index: 0,
        };
        let mut magic = [0; 4];
        match read_full(&mut reader.source, &mut magic) {
            Ok(()) => {}
            Err(Short::Eof(_)) => {
                return Err(bad_file(name, "file shorter than a capture header".into()));
            }
            Err(Short::Io(source)) => {
                return Err(Error::Io {
                    path: name.to_path_buf(),
                    source,
                });
            }
        }
        if magic == PCAPNG_MAGIC {
            reader.source = Box::new(Cursor::new(magic).chain(reader.source));
            reader.inner = Inner::PcapNg {
                parser: None,
                big_endian: false,
            };
        } else if PCAP_MAGICS.contains(&magic) {
            let mut header = [0; 24];
            header[..4].copy_from_slice(&magic);
            reader.offset = 4;
            reader.read(&mut header[4..], 0, "pcap file header")?;
            let big_endian = magic[0] == 0xa1;
            reader.inner = Inner::Pcap {
                big_endian,
                nanos: magic == [0xa1, 0xb2, 0x3c, 0x4d] || magic == [0x4d, 0x3c, 0xb2, 0xa1],
                link_type: DataLink::from(u32_at(&header, 20, big_endian) & 0x0fff_ffff),
            };
        } else {
            return Err(bad_file(
                name,
                format!("not a pcap or pcapng file (magic {})", super::hex(&magic)),
            ));
        }
        Ok(reader)
    }

    /// The next packet, `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record>> {
        let record = match self.inner {
            Inner::Done => return None,
            Inner::Pcap { .. } => self.pcap_record(),
            Inner::PcapNg { .. } => self.pcapng_record(),
        };
        match record {
            Ok(Some(record)) => {
                self.index += 1;
                Some(Ok(Record {
                    index: self.index,
                    ..record
                }))
            }
            Ok(None) => {
                self.inner = Inner::Done;
                None
            }
            Err(e) => {
                self.inner = Inner::Done;
                Some(Err(e))
            }
        }
    }

    /// The names (`if_name`) of the interfaces of the current pcapng section, in order; empty
    /// for pcap.
    pub fn interface_names(&self) -> Vec<Option<String>> {
        let Inner::PcapNg {
            parser: Some(parser),
            ..
        } = &self.inner
        else {
            return Vec::new();
        };
        parser
            .interfaces()
            .iter()
            .map(|idb| {
                idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                })
            })
            .collect()
    }

    fn pcap_record(&mut self) -> Result<Option<Record>> {
        let Inner::Pcap {
            big_endian,
            nanos,
            link_type,
        } = self.inner
        else {
            return Ok(None);
        };
        let at = self.offset;
        let mut header = [0; 16];
        if !self.read_or_end(&mut header, "record header")? {
            return Ok(None);
        }
        let captured = u32_at(&header, 8, big_endian);
        if captured > MAX_PACKET {
            return Err(self.error(
                at,
                "record",
                format!(
                    "captured length {captured} exceeds the largest packet ({MAX_PACKET} bytes)"
                ),
            ));
        }
        let mut data = vec![0; captured as usize];
        self.read(&mut data, at, "record")?;
        let fraction = u64::from(u32_at(&header, 4, big_endian));
        let time = Duration::from_secs(u64::from(u32_at(&header, 0, big_endian)))
            + Duration::from_nanos(if nanos { fraction } else { fraction * 1000 });
        Ok(Some(Record {
            index: 0,
            time,
            interface: None,
            interface_id: 0,
            link_type,
            data,
            original_len: u32_at(&header, 12, big_endian),
            flags: None,
        }))
    }

    fn pcapng_record(&mut self) -> Result<Option<Record>> {
        loop {
            let Some((block, at)) = self.pcapng_block()? else {
                return Ok(None);
            };
            let Inner::PcapNg { parser, .. } = &mut self.inner else {
                return Ok(None);
            };
            let parsed = match parser {
                None => PcapNgParser::new(&block).map(|(_, p)| {
                    *parser = Some(p);
                    None
                }),
                Some(p) => p.next_block(&block).map(|(_, block)| {
                    let state = p.state();
                    match block {
                        Block::EnhancedPacket(p) => {
                            let idb = state.interfaces().get(p.interface_id as usize);
                            Some(Record {
                                index: 0,
                                time: p.timestamp,
                                interface: idb.and_then(|idb| {
                                    idb.options.iter().find_map(|o| match o {
                                        InterfaceDescriptionOption::IfName(n) => {
                                            Some(n.to_string())
                                        }
                                        _ => None,
                                    })
                                }),
                                interface_id: p.interface_id,
                                link_type: idb.map_or(DataLink::ETHERNET, |i| i.linktype),
                                original_len: p.original_len,
                                flags: p.options.iter().find_map(|o| match o {
                                    EnhancedPacketOption::Flags(f) => Some(*f),
                                    _ => None,
                                }),
                                data: into_vec(p.data),
                            })
                        }
                        Block::SimplePacket(p) => Some(Record {
                            index: 0,
                            time: Duration::ZERO,
                            interface: None,
                            interface_id: 0,
                            link_type: state
                                .interfaces()
                                .first()
                                .map_or(DataLink::ETHERNET, |i| i.linktype),
                            original_len: p.original_len,
                            flags: None,
                            data: into_vec(p.data),
                        }),
                        _ => None,
                    }
                }),
            };
            match parsed {
                Ok(Some(record)) => return Ok(Some(record)),
                Ok(None) => {}
                Err(e) => return Err(self.error(at, "block", chain(&e))),
            }
        }
    }

    /// The next whole pcapng block and its byte offset, its framing checked: a length that
    /// is no block length, exceeds [`MAX_BLOCK`] or the rest of the file, a trailing length
    /// that differs, an enhanced packet block whose captured length runs past the block.
    fn pcapng_block(&mut self) -> Result<Option<(Vec<u8>, u64)>> {
        let at = self.offset;
        let mut head = [0; 8];
        if !self.read_or_end(&mut head, "block header")? {
            return Ok(None);
        }
        let Inner::PcapNg { mut big_endian, .. } = self.inner else {
            return Ok(None);
        };
        let mut prefix = head.to_vec();
        if head[..4] == PCAPNG_MAGIC {
            // A section header: its byte-order magic says how to read its length.
            let mut order = [0; 4];
            self.read(&mut order, at, "section header block")?;
            big_endian = order == BYTE_ORDER_BE;
            if let Inner::PcapNg {
                big_endian: section,
                ..
            } = &mut self.inner
            {
                *section = big_endian;
            }
            prefix.extend_from_slice(&order);
        }
        let kind = u32_at(&head, 0, big_endian);
        let len = u32_at(&head, 4, big_endian);
        let left = self.len.map(|l| l.saturating_sub(at));
        let wrong = if len < 12 || !len.is_multiple_of(4) {
            Some(format!(
                "block length {len} is not a multiple of 4 of at least 12"
            ))
        } else if len > MAX_BLOCK {
            Some(format!(
                "block length {len} exceeds the largest block read ({} MiB)",
                MAX_BLOCK >> 20
            ))
        } else {
            left.filter(|&left| u64::from(len) > left)
                .map(|left| format!("block length {len} exceeds the {left} bytes left in the file"))
        };
        if let Some(message) = wrong {
            return Err(self.error(at, "block", message));
        }
        let mut block = prefix;
        let start = block.len();
        block.resize(len as usize, 0);
        self.read(&mut block[start..], at, "block")?;
        let trailer = u32_at(&block, len as usize - 4, big_endian);
        if trailer != len {
            return Err(self.error(
                at,
                "block",
                format!("trailing block length {trailer} differs from its length {len}"),
            ));
        }
        if kind == EPB && len >= 32 {
            let captured = u32_at(&block, 20, big_endian);
            let room = len - 32;
            if u64::from(captured).next_multiple_of(4) > u64::from(room) {
                return Err(self.error(
                    at,
                    "enhanced packet block",
                    format!(
                        "captured length {captured} runs past its block ({room} bytes of packet data fit)"
                    ),
                ));
            }
        }
        Ok(Some((block, at)))
    }

    /// Fills `buf` from the record or block at `at`; the end of the file is an error.
    fn read(&mut self, buf: &mut [u8], at: u64, what: &str) -> Result<()> {
        match read_full(&mut self.source, buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(Short::Eof(got)) => {
                let end = self.offset + got as u64;
                Err(self.error(
                    at,
                    what,
                    format!("truncated: the file ends at byte offset {end}"),
                ))
            }
            Err(Short::Io(source)) => {
                self.inner = Inner::Done;
                Err(Error::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// Like [`Reader::read`], but false at a clean end of the file (nothing left).
    fn read_or_end(&mut self, buf: &mut [u8], what: &str) -> Result<bool> {
        let at = self.offset;
        let mut first = [0; 1];
        match self.source.read(&mut first) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        buf[0] = first[0];
        self.offset += 1;
        self.read(&mut buf[1..], at, what)?;
        Ok(true)
    }

    fn error(&mut self, at: u64, what: &str, message: String) -> Error {
        self.inner = Inner::Done;
        bad_file(
            &self.path,
            format!(
                "after packet {}: {what} at byte offset {at}: {message}",
                self.index
            ),
        )
    }
}

fn into_vec(data: Cow<'_, [u8]>) -> Vec<u8> {
    data.into_owned()
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn bad_file(path: &Path, message: String) -> Error {
    Error::Input {
        file: path.to_path_buf(),
        line: None,
        column: None,
        field: "capture".into(),
        message,
    }
}
