//! The impairment as an engine [`Stage`], and the [`Registry`] through which the control
//! socket changes it while the link runs.
//!
//! The control thread never touches a stage: it sends a [`Change`] down a channel the stage
//! reads without waiting (`try_recv`) before each batch, frame and release, and reads the
//! stage's counters from atomics the stage publishes. A counter shared by all the stages of
//! a registry says whether any change was sent since a stage last looked, so that a worker
//! serving a thousand links does not touch a thousand channels' memory per frame. What the control socket shows as the
//! spec in force is its own record of what it asked for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::model::{Counters, Impairment, Verdict};
use super::rng::Rng;
use super::spec::{DirectedSpec, Spec};
use crate::control::{DirectionState, LinkState, Links};
use crate::direction::Direction;
use crate::engine::{self, Frame, FrameRef, Stage};

/// A change the control socket hands to a running stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Spec(Spec),
    Down(bool),
}

/// Counters a stage publishes for the control thread.
#[derive(Debug, Default)]
struct Published {
    values: [AtomicU64; 9],
}

impl Published {
    fn store(&self, counters: &Counters, held: usize) {
        let values = [
            counters.dropped_loss,
            counters.dropped_down,
            counters.dropped_mtu,
            counters.queue_drops,
            counters.delayed,
            counters.duplicated,
            counters.reordered,
            counters.corrupted,
            held as u64,
        ];
        for (slot, value) in self.values.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    fn load(&self) -> (Counters, u64) {
        let v: Vec<u64> = self
            .values
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        (
            Counters {
                dropped_loss: v[0],
                dropped_down: v[1],
                dropped_mtu: v[2],
                queue_drops: v[3],
                delayed: v[4],
                duplicated: v[5],
                reordered: v[6],
                corrupted: v[7],
            },
            v[8],
        )
    }
}

/// One direction's impairment on the engine's stage seam.
pub struct ImpairStage {
    model: Impairment,
    changes: Receiver<Change>,
    /// The registry's count of changes sent, and its value when this stage last looked.
    sent: Arc<AtomicU64>,
    seen: u64,
    published: Arc<Published>,
    last: (Counters, usize),
}

impl ImpairStage {
    fn take_changes(&mut self) {
        let sent = self.sent.load(Ordering::Acquire);
        if sent == self.seen {
            return;
        }
        self.seen = sent;
        while let Ok(change) = self.changes.try_recv() {
            match change {
                Change::Spec(spec) => self.model.set_spec(spec),
                Change::Down(down) => self.model.set_down(down),
            }
        }
    }

    fn publish(&mut self) {
        let now = (self.model.counters(), self.model.held());
        if now != self.last {
            self.published.store(&now.0, now.1);
            self.last = now;
        }
    }
}

impl Stage for ImpairStage {
    fn process(&mut self, frame: FrameRef<'_>, now: Instant) -> engine::Verdict {
        self.take_changes();
        let verdict = self.model.offer(frame.data, frame.received_ns, now);
        self.publish();
        match verdict {
            Verdict::Pass => engine::Verdict::Pass,
            Verdict::Drop(_) => engine::Verdict::Drop,
            Verdict::Held => engine::Verdict::Hold,
        }
    }

    fn release(&mut self, now: Option<Instant>, out: &mut Vec<Frame>) {
        self.take_changes();
        self.model.release(now, out);
        self.publish();
    }

    fn next_timer(&self) -> Option<Instant> {
        self.model.next_deadline()
    }

    fn transparent(&mut self) -> bool {
        self.take_changes();
        self.model.passes_all()
    }
}

/// The control side of one direction's stage.
struct Handle {
    direction: Direction,
    /// What the control socket last asked for.
    spec: Spec,
    down: bool,
    changes: Sender<Change>,
    /// The registry's count of changes sent.
    sent: Arc<AtomicU64>,
    published: Arc<Published>,
}

impl Handle {
    fn send(&self, change: Change) {
        // A stage whose link was removed is gone; nothing is left to change.
        let _ = self.changes.send(change);
        // After the send: a stage that sees the new count finds the change in its channel.
        self.sent.fetch_add(1, Ordering::Release);
    }
}

/// The impairment stages of a process's links, by link name: creates them for the engine
/// and changes them for the control socket.
pub struct Registry {
    seed: Option<u64>,
    sent: Arc<AtomicU64>,
    initial: [Spec; 2],
    links: Mutex<BTreeMap<String, Vec<Handle>>>,
    order: Mutex<Vec<String>>,
}

impl Registry {
    /// Stages start with `initial` (A→B, B→A); with a `seed` every random choice repeats
    /// from run to run (each direction of each link draws its own stream).
    pub fn new(seed: Option<u64>, initial: [Spec; 2]) -> Registry {
        Registry {
            seed,
            sent: Arc::new(AtomicU64::new(0)),
            initial,
            links: Mutex::new(BTreeMap::new()),
            order: Mutex::new(Vec::new()),
        }
    }

    /// A new stage for one direction of the link `name`, the `index`-th link of the process.
    pub fn stage(&self, index: usize, name: &str, direction: Direction) -> Box<dyn Stage> {
        let d = usize::from(direction == Direction::BToA);
        let stream = (index as u64) << 1 | d as u64;
        let rng = match self.seed {
            Some(seed) => Rng::seeded(seed, stream),
            None => Rng::unseeded(stream),
        };
        let spec = self.initial[d].clone();
        let (changes, receiver) = crossbeam_channel::unbounded();
        let published = Arc::new(Published::default());
        let handle = Handle {
            direction,
            spec: spec.clone(),
            down: false,
            changes,
            sent: Arc::clone(&self.sent),
            published: Arc::clone(&published),
        };
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let handles = links.entry(name.to_owned()).or_insert_with(|| {
            self.order
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(name.to_owned());
            Vec::new()
        });
        handles.retain(|h| h.direction != direction);
        handles.push(handle);
        handles.sort_by_key(|h| h.direction == Direction::BToA);
        Box::new(ImpairStage {
            model: Impairment::new(spec, rng),
            changes: receiver,
            sent: Arc::clone(&self.sent),
            seen: self.sent.load(Ordering::Acquire),
            published,
            last: (Counters::default(), 0),
        })
    }

    fn with_link<T>(&self, link: &str, f: impl FnOnce(&mut Vec<Handle>) -> T) -> Option<T> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.get_mut(link).map(f)
    }
}

impl Links for Registry {
    fn names(&self) -> Vec<String> {
        self.order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn impair(&self, link: &str, specs: &[DirectedSpec]) -> bool {
        self.with_link(link, |handles| {
            for handle in handles {
                let chosen = specs
                    .iter()
                    .rev()
                    .find(|s| s.directions.includes(handle.direction));
                if let Some(directed) = chosen {
                    handle.spec = directed.spec.clone();
                    handle.send(Change::Spec(directed.spec.clone()));
                }
            }
        })
        .is_some()
    }

    fn clear(&self, link: &str) -> bool {
        self.with_link(link, |handles| {
            for handle in handles {
                handle.spec = Spec::default();
                handle.down = false;
                handle.send(Change::Down(false));
                handle.send(Change::Spec(Spec::default()));
            }
        })
        .is_some()
    }

    fn set_down(&self, link: &str, down: bool) -> bool {
        self.with_link(link, |handles| {
            for handle in handles {
                handle.down = down;
                if !down {
                    handle.spec.down = false;
                }
                handle.send(Change::Down(down));
            }
        })
        .is_some()
    }

    fn state(&self, link: &str) -> Option<LinkState> {
        self.with_link(link, |handles| LinkState {
            name: link.to_owned(),
            flapping: false,
            directions: handles
                .iter()
                .map(|h| {
                    let (counters, held) = h.published.load();
                    DirectionState {
                        direction: h.direction.label().to_owned(),
                        spec: h.spec.to_string(),
                        down: h.down || h.spec.down,
                        held,
                        counters,
                    }
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> FrameRef<'_> {
        FrameRef {
            data,
            received_ns: 0,
        }
    }

    #[test]
    fn changes_reach_the_running_stage_and_counters_come_back() {
        let registry = Registry::new(Some(1), [Spec::default(), Spec::default()]);
        let mut ab = registry.stage(0, "100:1-102:1", Direction::AToB);
        let mut ba = registry.stage(0, "100:1-102:1", Direction::BToA);
        let t = Instant::now();
        assert_eq!(ab.process(frame(&[1; 64]), t), engine::Verdict::Pass);
        let specs = [DirectedSpec::parse("a>b:mtu=10", "impair").unwrap()];
        assert!(registry.impair("100:1-102:1", &specs));
        assert!(!registry.impair("100:9-102:9", &specs));
        assert_eq!(ab.process(frame(&[1; 64]), t), engine::Verdict::Drop);
        assert_eq!(ba.process(frame(&[1; 64]), t), engine::Verdict::Pass);
        assert!(registry.set_down("100:1-102:1", true));
        assert_eq!(ba.process(frame(&[1; 64]), t), engine::Verdict::Drop);
        let state = registry.state("100:1-102:1").unwrap();
        assert_eq!(state.directions[0].spec, "mtu=10");
        assert_eq!(state.directions[0].counters.dropped_mtu, 1);
        assert_eq!(state.directions[1].counters.dropped_down, 1);
        assert!(state.directions.iter().all(|d| d.down));
        assert!(registry.clear("100:1-102:1"));
        assert_eq!(ab.process(frame(&[1; 64]), t), engine::Verdict::Pass);
        assert_eq!(registry.names(), ["100:1-102:1"]);
    }

    #[test]
    fn a_stage_is_transparent_only_while_nothing_is_asked_and_nothing_held() {
        let registry = Registry::new(Some(1), [Spec::default(), Spec::default()]);
        let mut ab = registry.stage(0, "l", Direction::AToB);
        assert!(ab.transparent());
        let delay = [DirectedSpec::parse("delay=10ms", "impair").unwrap()];
        assert!(registry.impair("l", &delay));
        assert!(!ab.transparent(), "a change is seen before the next batch");
        let t = Instant::now();
        assert_eq!(ab.process(frame(&[1; 64]), t), engine::Verdict::Hold);
        assert!(registry.clear("l"));
        assert!(
            !ab.transparent(),
            "a held frame must leave before later ones pass"
        );
        let mut out = Vec::new();
        ab.release(Some(t + std::time::Duration::from_millis(10)), &mut out);
        assert_eq!(out.len(), 1);
        assert!(ab.transparent());
        assert!(registry.set_down("l", true));
        assert!(!ab.transparent());
    }
}
