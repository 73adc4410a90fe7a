//! linkscope: plan, splice, capture and measure QEMU UDP socket links.
//!
//! Virtual labs (Proxmox VE, QEMU/KVM, libvirt, GNS3, netlab) wire VMs point-to-point with
//! QEMU UDP socket tunnels: every Ethernet frame travels raw as one UDP datagram to the peer's
//! bound port. This crate plans those links from a `mapping.yaml`, steps into running links,
//! and shows and measures what crosses them.
//!
//! The library never sees command-line types: [`cli`] resolves arguments and files into
//! plain configuration structs and hands them to the modules below.

pub mod bench;
pub mod capture;
pub mod cli;
pub mod measure;
pub mod net;
pub mod plan;
pub mod splice;
pub mod wire;

use std::path::PathBuf;

/// Errors of the library. Input errors (a bad file, a bad argument value) are the user's to
/// fix and make the command exit with status 2; see [`Error::is_input`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input in a file, located as precisely as the parser allows.
    #[error("{}{}: {field}: {message}", file.display(), location(*line, *column))]
    Input {
        file: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        field: String,
        message: String,
    },
    /// A bad value given on the command line or in a configuration struct.
    #[error("{field}: {message}")]
    Argument { field: String, message: String },
    /// An I/O error on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A capture block pcap-file refused to encode (a value outside what pcapng can hold).
    #[error("{}: cannot encode a pcapng block: {source}", path.display())]
    Pcapng {
        path: PathBuf,
        #[source]
        source: pcap_file::pcapng::PcapNgWriteError,
    },
    /// A socket operation failed.
    #[error("{op} on {addr}: {source}")]
    Socket {
        addr: std::net::SocketAddr,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The receiving end of a benchmark did not answer.
    #[error(
        "no report from {peer} within {waited:?}: is `linkscope bench sink` or `reflect` running there?"
    )]
    NoReport {
        peer: std::net::SocketAddr,
        waited: std::time::Duration,
    },
}

impl Error {
    /// True for errors caused by what the user gave us (exit status 2).
    pub fn is_input(&self) -> bool {
        matches!(self, Error::Input { .. } | Error::Argument { .. })
    }
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
