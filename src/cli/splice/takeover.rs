//! A steal-mode splice that loses its tunnel to another one: checked once a second (less
//! often on a host with thousands of sockets) from the status loop (never on the forwarding path), by comparing our own sockets with the
//! sockets connected on each direction's pair of addresses ([`crate::net::udp_owners`]), all
//! from one reading of the socket tables.
//! A loss is warned about when it starts and when it ends, and counted: a splice whose
//! capture has such a gap exits 1.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::net::udp_owners;
use crate::splice::Mode;

use super::options::Options;

/// How often the splice looks for another splice that took one of its tunnels, at most.
const EVERY: Duration = Duration::from_secs(1);

/// The share of a core the check may take. Reading the socket tables grows with the sockets
/// on the host: a netlink dump is cheap, but where the kernel lacks `udp_diag` the splice
/// reads /proc/net/udp, whose reading slows with the square of the sockets (20 ms for 4,000
/// sockets on a 2-core VM); then the check runs less often rather than cost more.
const BUDGET: f64 = 0.002;

/// One direction of a stolen link: the socket bound to `to` and connected to `from` is ours.
struct Watch {
    /// `LINK FROM > TO`, as the summary names the direction.
    name: String,
    to: SocketAddr,
    from: SocketAddr,
    /// Other sockets already there when this splice started (it took the tunnel from them
    /// knowingly, with --force): not a loss.
    known: Vec<u64>,
    /// Since when another socket holds the tunnel.
    lost: Option<Instant>,
    gaps: u32,
    gap_time: Duration,
}

/// The directions of the steal-mode links of a splice.
pub(super) struct Takeovers {
    watches: Vec<Watch>,
    /// This process's sockets, listed once: the splice opens no socket after it started.
    ours: HashSet<u64>,
}

impl Takeovers {
    /// Watches the steal-mode directions of `options`; call it once the splice's sockets
    /// are open, so that the sockets of other splices already there are known.
    pub(super) fn new(options: &Options) -> Takeovers {
        let ours = udp_owners::own_sockets().unwrap_or_default();
        let connected = udp_owners::Connected::read().unwrap_or_default();
        let mut watches = Vec::new();
        for (link, names) in options.links.iter().zip(&options.names) {
            if link.mode != Mode::Steal {
                continue;
            }
            for (from, to, from_name, to_name) in [
                (link.a, link.b, &names.a, &names.b),
                (link.b, link.a, &names.b, &names.a),
            ] {
                watches.push(Watch {
                    name: format!("{} {from_name} > {to_name}", names.link),
                    to,
                    from,
                    known: connected.others(to, from, &ours),
                    lost: None,
                    gaps: 0,
                    gap_time: Duration::ZERO,
                });
            }
        }
        Takeovers { watches, ours }
    }

    /// Looks for other sockets on our directions and warns when one takes or gives back a
    /// tunnel; returns how long to wait before the next check: [`EVERY`], or longer when
    /// reading the socket tables took long (a host with thousands of UDP sockets), so that
    /// the check never costs more than [`BUDGET`] of a core. /proc that cannot be read skips
    /// the check: it must not stop the splice.
    pub(super) fn check(&mut self, err: &mut impl Write) -> std::io::Result<Duration> {
        if self.watches.is_empty() {
            return Ok(EVERY);
        }
        // One reading of the socket tables for every direction.
        let started = Instant::now();
        let Ok(connected) = udp_owners::Connected::read_without(&self.ours) else {
            return Ok(EVERY);
        };
        let next = EVERY.max(started.elapsed().div_f64(BUDGET));
        for watch in &mut self.watches {
            let mut others = connected.on(watch.to, watch.from).to_vec();
            others.retain(|inode| !watch.known.contains(inode));
            match (watch.lost, others.is_empty()) {
                (None, false) => {
                    watch.lost = Some(Instant::now());
                    watch.gaps += 1;
                    let owners = udp_owners::describe(&others);
                    writeln!(
                        err,
                        "linkscope: {}: tunnel lost to another splice, {owners}: its frames \
                         no longer arrive here, so the capture and the figures have a gap until \
                         it lets go",
                        watch.name
                    )?;
                }
                (Some(since), true) => {
                    let gap = since.elapsed();
                    watch.gap_time += gap;
                    watch.lost = None;
                    writeln!(
                        err,
                        "linkscope: {}: tunnel regained after {:.1} s",
                        watch.name,
                        gap.as_secs_f64()
                    )?;
                }
                _ => {}
            }
        }
        Ok(next)
    }

    /// Prints the gaps of every direction that had one; true when there were any.
    pub(super) fn finish(mut self, err: &mut impl Write) -> std::io::Result<bool> {
        let mut any = false;
        for watch in &mut self.watches {
            if let Some(since) = watch.lost.take() {
                watch.gap_time += since.elapsed();
            }
            if watch.gaps > 0 {
                any = true;
                writeln!(
                    err,
                    "linkscope: {}: the tunnel was taken {} time(s), {:.1} s in all: the \
                     capture and the figures have a gap there",
                    watch.name,
                    watch.gaps,
                    watch.gap_time.as_secs_f64()
                )?;
            }
        }
        Ok(any)
    }
}
