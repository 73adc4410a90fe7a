//! The splice's view of the layer-2 control plane: one [`View`] per link, fed on the copy channel's
//! consumer thread (never on a forwarding thread), next to whatever else consumes the copy channel.
//!
//! Each change of what a direction shows (a new LLDP neighbour, STP root or role, LACP
//! state) is handed to a callback, which the CLI prints. With an [`Expect`], the consumer
//! asks the splice to stop as soon as every link has shown every expected protocol.
//!
//! The views sit behind a mutex shared with their readers (the final summary, a report);
//! the consumer takes it once per frame, uncontended but for those reads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::measure::l2::{DirectionView, Expect, View};
use crate::wire::Protocol;

use super::Direction;
use super::copy::{Consumer, CopyRecord, Next};

/// The control-plane views of a splice, one per link in configuration order.
#[derive(Debug, Clone)]
pub struct Views(Arc<Mutex<Vec<View>>>);

impl Views {
    /// Empty views for `links` links.
    pub fn new(links: usize) -> Views {
        Views(Arc::new(Mutex::new(vec![View::new(); links])))
    }

    /// The views, locked; hold the guard briefly (the consumer waits for it).
    pub fn lock(&self) -> MutexGuard<'_, Vec<View>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A change of what one direction of a link shows.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub link: usize,
    pub direction: Direction,
    pub timestamp_ns: u64,
    /// The protocol whose state is new or different.
    pub protocol: Protocol,
    /// What the direction shows now.
    pub view: &'a DirectionView,
}

/// Called on the consumer thread for every [`Change`].
pub type OnChange = Box<dyn FnMut(&Change<'_>) + Send>;

/// A copy consumer that updates the views with every frame, reports changes, stops the
/// splice once an expectation is met, and hands every frame to `inner` when there is one.
pub struct Watched<C> {
    views: Views,
    expect: Option<Expect>,
    on_change: OnChange,
    inner: Option<C>,
}

impl<C: Consumer> Watched<C> {
    pub fn new(
        views: Views,
        expect: Option<Expect>,
        on_change: OnChange,
        inner: Option<C>,
    ) -> Watched<C> {
        Watched {
            views,
            expect,
            on_change,
            inner,
        }
    }

    /// The consumer the frames were passed on to.
    pub fn into_inner(self) -> Option<C> {
        self.inner
    }
}

impl<C: Consumer> Consumer for Watched<C> {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        let mut flow = Next::Continue;
        let mut views = self.views.lock();
        if let Some(view) = views.get_mut(record.link)
            && let Some(protocol) = view.record(record.direction, record.timestamp_ns, record.data)
        {
            (self.on_change)(&Change {
                link: record.link,
                direction: record.direction,
                timestamp_ns: record.timestamp_ns,
                protocol,
                view: view.direction(record.direction),
            });
            if self.expect.as_ref().is_some_and(|e| e.met(&views)) {
                flow = Next::Stop;
            }
        }
        drop(views);
        if let Some(inner) = &mut self.inner
            && inner.record(record)? == Next::Stop
        {
            flow = Next::Stop;
        }
        Ok(flow)
    }

    fn flush(&mut self) -> crate::Result<()> {
        match &mut self.inner {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::splice::copy::testing::Count;

    fn record(link: usize, direction: Direction, data: &[u8]) -> CopyRecord<'_> {
        CopyRecord {
            link,
            direction,
            timestamp_ns: 7,
            sent_ns: None,
            data,
        }
    }

    /// A kernel bridge's TCN BPDU: LLC 42-42-03, protocol 0, version 0, type 0x80.
    fn tcn() -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 0x52, 0x54, 0, 0, 1, 0, 0, 7];
        f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0, 0x80]);
        f
    }

    #[test]
    fn reports_changes_passes_everything_on_and_stops_when_expectations_are_met() {
        let views = Views::new(2);
        let (tx, rx) = mpsc::channel();
        let on_change: OnChange = Box::new(move |c| {
            tx.send((c.link, c.direction, c.protocol, c.view.describe(c.protocol)))
                .unwrap();
        });
        let expect = Expect::parse(&["stp:a>b"], "--expect").unwrap();
        let mut watched = Watched::new(views.clone(), Some(expect), on_change, Some(Count(0)));
        let arp = {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[2; 6]);
            f.extend_from_slice(&[0x08, 0x06]);
            f
        };
        let flows: Vec<Next> = [
            record(0, Direction::AToB, &arp),
            record(0, Direction::AToB, &tcn()),
            record(0, Direction::AToB, &tcn()),
            record(1, Direction::BToA, &tcn()),
            record(1, Direction::AToB, &tcn()),
        ]
        .iter()
        .map(|r| watched.record(r).unwrap())
        .collect();
        assert_eq!(
            flows,
            [
                Next::Continue,
                Next::Continue,
                Next::Continue,
                Next::Continue,
                Next::Stop
            ]
        );
        let changes: Vec<_> = rx.try_iter().collect();
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert_eq!(
            changes[1],
            (
                0,
                Direction::AToB,
                Protocol::Stp,
                Some("STP tcn v0 tcn=2".into())
            )
        );
        assert_eq!(changes[2].0, 1);
        assert!(
            views.lock()[1]
                .direction(Direction::BToA)
                .seen(Protocol::Stp)
        );
        assert_eq!(watched.into_inner().map(|c| c.0), Some(5));
    }
}
