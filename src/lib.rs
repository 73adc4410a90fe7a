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
pub mod clock;
pub mod control;
pub mod direction;
pub mod engine;
pub mod impair;
pub mod measure;
pub mod net;
pub mod plan;
pub mod relay;
pub mod serve;
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
    /// An I/O error on a named path. The message names the path; the cause is the error's
    /// source, which the CLI prints after it (`{:#}`), so it is not repeated here.
    #[error("{}", path.display())]
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
    /// A capture filter was given but libpcap, whose compiler reads it, does not load.
    #[error(
        "capture filters need libpcap (Debian package libpcap0.8, which tshark and tcpdump \
         install): {0}"
    )]
    Libpcap(String),
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
    /// True for errors caused by what the user gave us (exit status 2): bad input, a bad
    /// argument, or a path the user named that cannot be used as given (missing, not
    /// permitted, a directory where a file belongs, or the other way round).
    pub fn is_input(&self) -> bool {
        match self {
            Error::Input { .. } | Error::Argument { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
            ),
            _ => false,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_path_once_and_path_problems_are_input_errors() {
        let err = Error::Io {
            path: "/no/such/file".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(err.to_string(), "/no/such/file");
        assert!(err.is_input());
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("entity not found").count(), 1, "{chain}");
        let broken = Error::Io {
            path: "-".into(),
            source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        };
        assert!(!broken.is_input());
    }
}
