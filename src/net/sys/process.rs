//! Signals to our own child processes (a child of `sys`, the crate's one module with
//! `unsafe`): the standard library only kills (SIGKILL), which gives a splice no chance to
//! hand its links back and finish its capture.

use std::io;
use std::process::Child;

/// Asks `child` to stop (SIGTERM), as Wireshark asks an extcap.
pub fn terminate(child: &Child) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "process id out of range"))?;
    // SAFETY: kill(2) only sends a signal. The pid is our own child's, which is not reaped
    // while we hold its `Child` unwaited, so it cannot name another process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
