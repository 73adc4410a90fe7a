//! Where capture bytes go: a file written in place, or standard output.
//!
//! Files are written directly, not renamed at the end: users follow a capture while it grows
//! (`tail -f`, Wireshark reopening it). The encoder hands over whole blocks only and nothing
//! here buffers, so each `write` carries complete blocks: a reader or a crash can find at most
//! the last block cut short, never one in the middle of the file. When a write to a file fails
//! (a full disk: the kernel may take part of the blocks before it says ENOSPC), the file is cut
//! back to the end of the last whole write and takes nothing more: it ends on a whole block.
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
    /// Bytes of whole writes so far, for a regular file (None for a pipe or terminal).
    whole: Option<u64>,
    /// Set by a failed write: the sink takes nothing more.
    failed: bool,
}

/// The name errors on standard output carry.
const STDOUT: &str = "standard output";

impl Sink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Sink> {
        let file = File::create(path)?;
        let whole = file.metadata()?.is_file().then_some(0);
        Ok(Sink {
            file,
            path: path.to_owned(),
            whole,
            failed: false,
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
            whole: None,
            failed: false,
        })
    }

    /// Writes whole blocks. On an error, a file is cut back to its last whole write (the
    /// error is returned all the same) and later writes are refused.
    pub fn write(&mut self, blocks: &[u8]) -> crate::Result<()> {
        let error = |source| crate::Error::Io {
            path: self.path.clone(),
            source,
        };
        if self.failed {
            return Err(error(std::io::Error::other(
                "an earlier write failed; the file ends on its last whole block",
            )));
        }
        match self.file.write_all(blocks) {
            Ok(()) => {
                if let Some(whole) = &mut self.whole {
                    *whole += blocks.len() as u64;
                }
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                if let Some(whole) = self.whole {
                    // Best effort: a file that cannot be cut still reports the first error.
                    let _ = self.file.set_len(whole);
                }
                Err(error(source))
            }
        }
    }

    /// The file's path, or "standard output".
    pub fn path(&self) -> &Path {
        &self.path
    }
}
