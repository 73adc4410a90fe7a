//! Stopping on SIGINT, SIGTERM and SIGHUP: the handler only sets a flag that the command's
//! loops read, so no thread waits for signals (at 1,000 links a splice runs its workers, the
//! copy consumer, the control socket and the main thread, nothing more).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// A flag set once any of SIGINT, SIGTERM or SIGHUP arrives. Blocking calls are restarted
/// (SA_RESTART), so loops that wait use timeouts and look at the flag.
pub fn flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(stop)
}
