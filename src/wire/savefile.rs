//! Reading saved captures: pcap (micro- or nanosecond, either byte order) and pcapng (any
//! number of sections and interfaces, any `if_tsresol`), through pcap-file.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

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
}

enum Inner {
    Pcap(PcapReader<Box<dyn Read>>),
    PcapNg(PcapNgReader<Box<dyn Read>>),
    /// After an error: the readers cannot resume after a malformed block.
    Done,
}

/// Reads the packets of a pcap or pcapng file in order.
pub struct Reader {
    path: PathBuf,
    inner: Inner,
    index: u64,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];

impl Reader {
    /// Opens `path`, telling pcap from pcapng by the magic number.
    pub fn open(path: &Path) -> Result<Reader> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io)?);
        let mut magic = [0; 4];
        file.read_exact(&mut magic).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad_file(path, "file shorter than a capture header".into())
            } else {
                io(e)
            }
        })?;
        let stream: Box<dyn Read> = Box::new(Cursor::new(magic).chain(file));
        let inner = if magic == PCAPNG_MAGIC {
            Inner::PcapNg(PcapNgReader::new(stream).map_err(|e| bad_file(path, chain(&e)))?)
        } else if PCAP_MAGICS.contains(&magic) {
            Inner::Pcap(PcapReader::new(stream).map_err(|e| bad_file(path, chain(&e)))?)
        } else {
            return Err(bad_file(
                path,
                format!("not a pcap or pcapng file (magic {})", super::hex(&magic)),
            ));
        };
        Ok(Reader {
            path: path.to_path_buf(),
            inner,
            index: 0,
        })
    }

    /// The next packet, `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record>> {
        loop {
            let record = match &mut self.inner {
                Inner::Done => return None,
                Inner::Pcap(r) => {
                    let link_type = r.header().datalink;
                    match r.next_packet()? {
                        Ok(p) => Record {
                            index: 0,
                            time: p.timestamp(),
                            interface: None,
                            interface_id: 0,
                            link_type,
                            data: p.data().to_vec(),
                        },
                        Err(e) => return Some(Err(self.error(chain(&e)))),
                    }
                }
                Inner::PcapNg(r) => match r.next_block()? {
                    Ok((Block::EnhancedPacket(p), state)) => {
                        let idb = state.interfaces().get(p.interface_id as usize);
                        Record {
                            index: 0,
                            time: p.timestamp,
                            interface: idb.and_then(|idb| {
                                idb.options.iter().find_map(|o| match o {
                                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                                    _ => None,
                                })
                            }),
                            interface_id: p.interface_id,
                            link_type: idb.map_or(DataLink::ETHERNET, |i| i.linktype),
                            data: into_vec(p.data),
                        }
                    }
                    Ok((Block::SimplePacket(p), state)) => Record {
                        index: 0,
                        time: Duration::ZERO,
                        interface: None,
                        interface_id: 0,
                        link_type: state
                            .interfaces()
                            .first()
                            .map_or(DataLink::ETHERNET, |i| i.linktype),
                        data: into_vec(p.data),
                    },
                    Ok(_) => continue,
                    Err(e) => return Some(Err(self.error(chain(&e)))),
                },
            };
            self.index += 1;
            return Some(Ok(Record {
                index: self.index,
                ..record
            }));
        }
    }

    fn error(&mut self, message: String) -> Error {
        let e = bad_file(
            &self.path,
            format!("after packet {}: {message}", self.index),
        );
        self.inner = Inner::Done;
        e
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
