//! Where capture bytes go: a file written in place, or standard output.
//!
//! Files are written directly, not renamed at the end: users follow a capture while it grows
//! (`tail -f`, Wireshark reopening it). The encoder hands over whole blocks only and nothing
//! here buffers, so each `write` carries complete blocks: a reader or a crash can find at most
//! the last block cut short (only if the kernel accepts part of a write, e.g. a full disk),
//! never one in the middle of the file.
//!
//! Standard output is written through a duplicate of descriptor 1, so Rust's line buffering
//! of `Stdout` never splits blocks at newline bytes. A reader that went away (`| tshark` closed)
//! shows up as an [`std::io::ErrorKind::BrokenPipe`] inside [`crate::Error::Io`].

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// An open capture destination.
#[derive(Debug)]
pub(super) struct Sink {
    file: File,
    path: PathBuf,
}

/// The name errors on standard output carry.
const STDOUT: &str = "standard output";

impl Sink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Sink> {
        Ok(Sink {
            file: File::create(path)?,
            path: path.to_owned(),
        })
    }

    /// Standard output, refused when it is a terminal (pcapng is binary).
    pub fn stdout() -> crate::Result<Sink> {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(crate::Error::Argument {
                field: "output".into(),
                message: "standard output is a terminal: pipe it into a reader \
                          (| wireshark -k -i -, | tshark -l -i -) or write a file"
                    .into(),
            });
        }
        let fd = stdout
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| crate::Error::Io {
                path: PathBuf::from(STDOUT),
                source,
            })?;
        Ok(Sink {
            file: File::from(fd),
            path: PathBuf::from(STDOUT),
        })
    }

    /// Writes whole blocks.
    pub fn write(&mut self, blocks: &[u8]) -> crate::Result<()> {
        self.file
            .write_all(blocks)
            .map_err(|source| crate::Error::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The file's path, or "standard output".
    pub fn path(&self) -> &Path {
        &self.path
    }
}
