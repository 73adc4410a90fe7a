//! The splice's measurements: per link a [`Meter`], fed on the copy channel's consumer thread (never
//! on a forwarding thread), next to whatever else consumes the copy channel (the pcapng recorder, the
//! frame printer).
//!
//! The meters sit behind a mutex shared with whoever reads them between frames (the status
//! line every stats interval, the report at the end); the consumer takes the lock once per
//! frame, uncontended but for those reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::measure::fragment::{Budget, Outer};
use crate::measure::meter::{Config, Meter};
use crate::measure::pmtu;
use crate::net::tunnel;

use super::LinkConfig;
use super::copy::{Consumer, CopyRecord, Next};

/// The tunnel peer whose path the frames of `link` cross: an end whose address is not on
/// this host (a cross-host link), else end A (both ends here: loopback or local addresses).
pub fn peer(link: &LinkConfig) -> SocketAddr {
    if tunnel::is_local(link.a.ip()) && !tunnel::is_local(link.b.ip()) {
        link.b
    } else {
        link.a
    }
}

/// The fragmentation budget of `link`: `host_mtu` as given (from the mapping or
/// `--host-mtu`), `path_mtu` as given or else the kernel's route MTU towards the peer
/// ([`pmtu::route_path_mtu`]; 65535 on loopback), the outer family from the peer's address.
pub fn budget(
    link: &LinkConfig,
    host_mtu: Option<u32>,
    path_mtu: Option<u32>,
) -> crate::Result<Budget> {
    let peer = peer(link);
    let path_mtu = match path_mtu {
        Some(mtu) => mtu,
        None => pmtu::route_path_mtu(peer)?,
    };
    Ok(Budget {
        host_mtu,
        path_mtu,
        outer: if peer.is_ipv6() {
            Outer::Ipv6
        } else {
            Outer::Ipv4
        },
    })
}

/// The meters of a splice, one per link in configuration order, shared between the copy channel's
/// consumer and their readers.
#[derive(Debug, Clone)]
pub struct Meters(Arc<Mutex<Vec<Meter>>>);

impl Meters {
    /// One meter per budget, in link order, each with the default [`Config`].
    pub fn new(budgets: &[Budget]) -> Meters {
        Meters(Arc::new(Mutex::new(
            budgets
                .iter()
                .map(|&b| Meter::new(Config::new(b)))
                .collect(),
        )))
    }

    /// The meters, locked; hold the guard briefly (the consumer waits for it).
    pub fn lock(&self) -> MutexGuard<'_, Vec<Meter>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, record: &CopyRecord<'_>) {
        let mut meters = self.lock();
        let Some(meter) = meters.get_mut(record.link) else {
            return;
        };
        meter.record(record.direction, record.timestamp_ns, record.data);
        if let Some(latency) = record.added_latency_ns() {
            meter.record_added_latency(record.direction, latency);
        }
    }
}

/// A copy consumer that meters every frame, then hands it to `inner` when there is one.
///
/// Every frame the splice forwards is metered, also those that follow the end of `inner`
/// (its limit reached, or an error such as a reader that went away): `inner` stopping sets
/// the splice's stop flag, and the frames still on their way are metered, not passed on, so
/// the measured count is the forwarded count.
pub struct Metered<C> {
    meters: Meters,
    inner: Option<C>,
    stop: Arc<AtomicBool>,
    /// `inner` asked to stop or failed: frames are only metered.
    done: bool,
    failed: Option<crate::Error>,
}

impl<C: Consumer> Metered<C> {
    /// Meters frames into `meters` and passes them on to `inner`; sets `stop` when `inner`
    /// stops.
    pub fn new(meters: Meters, inner: Option<C>, stop: Arc<AtomicBool>) -> Metered<C> {
        Metered {
            meters,
            inner,
            stop,
            done: false,
            failed: None,
        }
    }

    /// The consumer the frames were passed on to, or the error it stopped on.
    pub fn into_inner(self) -> crate::Result<Option<C>> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.inner),
        }
    }

    /// Stops passing frames on after `inner` stopped or failed, and stops the splice.
    fn inner_done(&mut self, failed: Option<crate::Error>) {
        self.failed = failed;
        self.done = true;
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl<C: Consumer> Consumer for Metered<C> {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        self.meters.record(record);
        if self.done {
            return Ok(Next::Continue);
        }
        let Some(inner) = &mut self.inner else {
            return Ok(Next::Continue);
        };
        match inner.record(record) {
            Ok(Next::Continue) => {}
            Ok(Next::Stop) => self.inner_done(None),
            Err(e) => self.inner_done(Some(e)),
        }
        Ok(Next::Continue)
    }

    fn flush(&mut self) -> crate::Result<()> {
        if let (false, Some(inner)) = (self.done, &mut self.inner)
            && let Err(e) = inner.flush()
        {
            self.inner_done(Some(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::copy::testing::Count;
    use crate::splice::{Direction, Mode};

    fn link(a: &str, b: &str) -> LinkConfig {
        LinkConfig {
            name: "l".into(),
            a: a.parse().unwrap(),
            b: b.parse().unwrap(),
            mode: Mode::Steal,
        }
    }

    #[test]
    fn the_peer_is_the_end_on_another_host() {
        let remote = link("127.0.0.1:5", "192.0.2.1:6");
        assert_eq!(peer(&remote), remote.b);
        let here = link("127.0.0.1:5", "127.0.0.1:6");
        assert_eq!(peer(&here), here.a);
    }

    #[test]
    fn budget_takes_given_mtus_and_the_family_of_the_peer() {
        let b = budget(&link("[::1]:5", "[::1]:6"), Some(9000), Some(1500)).unwrap();
        assert_eq!(
            (b.host_mtu, b.path_mtu, b.outer),
            (Some(9000), 1500, Outer::Ipv6)
        );
        let b = budget(&link("127.0.0.1:5", "127.0.0.1:6"), None, None).unwrap();
        assert_eq!((b.path_mtu, b.outer), (65535, Outer::Ipv4));
    }

    #[test]
    fn every_frame_is_metered_and_passed_on() {
        let budget = Budget {
            host_mtu: Some(1500),
            path_mtu: 1500,
            outer: Outer::Ipv4,
        };
        let meters = Meters::new(&[budget]);
        let mut metered = Metered::new(meters.clone(), Some(Count(0)), Arc::default());
        for (len, sent) in [(60, Some(1_500)), (3000, None)] {
            let record = CopyRecord {
                link: 0,
                direction: Direction::BToA,
                timestamp_ns: 1_000,
                sent_ns: sent,
                data: &vec![0; len],
            };
            assert_eq!(metered.record(&record).unwrap(), Next::Continue);
        }
        metered.flush().unwrap();
        let counters = meters.lock()[0].counters(Direction::BToA);
        assert_eq!((counters.frames, counters.bytes), (2, 3060));
        let names = crate::plan::LinkNames {
            link: "l".into(),
            a: "a".into(),
            b: "b".into(),
            detail: String::new(),
        };
        let report = meters.lock()[0].report(&names, Default::default(), 1.0);
        assert_eq!(report.directions[1].mtu.fragmented_frames, 1);
        assert_eq!(report.directions[1].added_latency_us.max, Some(0.5));
        assert_eq!(metered.into_inner().unwrap().map(|c| c.0), Some(2));
    }

    /// Fails on its second frame, as a capture whose reader went away.
    struct FailsSecond(u64);

    impl Consumer for FailsSecond {
        fn record(&mut self, _: &CopyRecord<'_>) -> crate::Result<Next> {
            self.0 += 1;
            if self.0 == 2 {
                return Err(crate::Error::Io {
                    path: "-".into(),
                    source: std::io::ErrorKind::BrokenPipe.into(),
                });
            }
            Ok(Next::Continue)
        }

        fn flush(&mut self) -> crate::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frames_after_the_inner_consumer_failed_are_still_metered() {
        let budget = Budget {
            host_mtu: None,
            path_mtu: 1500,
            outer: Outer::Ipv4,
        };
        let meters = Meters::new(&[budget]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut metered = Metered::new(meters.clone(), Some(FailsSecond(0)), stop.clone());
        for _ in 0..5 {
            let record = CopyRecord {
                link: 0,
                direction: Direction::AToB,
                timestamp_ns: 1_000,
                sent_ns: None,
                data: &[0; 60],
            };
            assert_eq!(metered.record(&record).unwrap(), Next::Continue);
        }
        assert!(stop.load(Ordering::SeqCst), "the failure stops the splice");
        assert_eq!(meters.lock()[0].counters(Direction::AToB).frames, 5);
        assert!(metered.into_inner().is_err(), "the failure is reported");
    }
}
