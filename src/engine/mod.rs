//! The forwarding engine: a fixed pool of worker threads driven by readiness (epoll through
//! `mio`), any number of links, links added and removed while it runs.
//!
//! A [`Link`] is a set of [`Endpoint`]s (the sides it joins) and [`Route`]s: from one endpoint
//! to others, through a chain of [`Stage`]s. A link lives on one worker, both directions on the
//! same thread. Per readiness event the worker reads a bounded number of batches from the
//! endpoint into its own receive batch ([`Inbox`]), accepts what may pass (the peer check,
//! no zero-length or truncated datagram), runs the route's stages, sends in one batch and
//! offers copies to the copy channel without waiting. A route without stages forwards straight
//! from the receive batch. Nothing polls: an idle link costs no system call, a worker sleeps in
//! `epoll_wait` until a frame, a timer of a stage or endpoint, or a command arrives (a
//! `mio::Waker` delivers commands and the stop).
//!
//! Removing a link (or stopping) forwards what its endpoints already have queued and what its
//! stages hold, then closes its endpoints: a steal socket's close hands the tunnel straight
//! back to its VMs.

pub mod endpoint;
pub mod stage;
pub mod udp;
mod worker;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use mio::{Poll, Waker};

use crate::direction::Direction;
use crate::splice::copy::{CopyFilter, CopySender};
use crate::splice::stats::DirectionStats;
use crate::{Error, Result};
pub use endpoint::{Endpoint, Inbox};
pub use stage::{Frame, FrameRef, Stage, Verdict};
pub use worker::BATCH;

/// A link's number in the engine, given in the order links are added (from 0); copy records
/// carry it as their `link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub usize);

/// Frames from one endpoint of a link to others.
pub struct Route {
    /// Index of the endpoint frames come from.
    pub from: usize,
    /// Indices of the endpoints every frame goes to.
    pub to: Vec<usize>,
    /// The label of the route's counters and copies.
    pub direction: Direction,
    /// Run in order between accepting and sending.
    pub stages: Vec<Box<dyn Stage>>,
    /// Chooses, per frame, which of `to` it goes to (a learning switch); `None`: all.
    pub select: Option<Box<dyn Select>>,
    /// The link number this route's copies carry instead of the link's id, so that a link
    /// of more than two endpoints can give each endpoint its own capture interface.
    pub copy_link: Option<usize>,
}

/// Chooses per frame which of a route's destinations get it, after the stages. Runs on the
/// worker that owns the link.
pub trait Select: Send {
    /// The destinations `frame` goes to at `now`, as a bit set over the route's `to`: bit
    /// `i` set sends it to `to[i]`; 0 sends it nowhere. Routes with more than 64
    /// destinations use the first 64 bits.
    fn select(&mut self, frame: &[u8], now: std::time::Instant) -> u64;
}

/// A link for [`Engine::add_link`].
pub struct Link {
    pub name: String,
    pub endpoints: Vec<Box<dyn Endpoint>>,
    pub routes: Vec<Route>,
}

impl Link {
    /// A link between two endpoints, `a` and `b`: a route A→B when `a_to_b`, B→A when
    /// `b_to_a`, without stages.
    pub fn pair(
        name: String,
        a: Box<dyn Endpoint>,
        b: Box<dyn Endpoint>,
        (a_to_b, b_to_a): (bool, bool),
    ) -> Link {
        let mut routes = Vec::new();
        if a_to_b {
            routes.push(Route {
                from: 0,
                to: vec![1],
                direction: Direction::AToB,
                stages: Vec::new(),
                select: None,
                copy_link: None,
            });
        }
        if b_to_a {
            routes.push(Route {
                from: 1,
                to: vec![0],
                direction: Direction::BToA,
                stages: Vec::new(),
                select: None,
                copy_link: None,
            });
        }
        Link {
            name,
            endpoints: vec![a, b],
            routes,
        }
    }
}

/// Forwarding counters of one link, per direction (`None`: that direction is not carried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    pub id: LinkId,
    pub name: String,
    pub a_to_b: Option<DirectionStats>,
    pub b_to_a: Option<DirectionStats>,
}

impl LinkStats {
    /// The counters of one direction.
    pub fn direction(&self, direction: Direction) -> Option<&DirectionStats> {
        match direction {
            Direction::AToB => self.a_to_b.as_ref(),
            Direction::BToA => self.b_to_a.as_ref(),
        }
    }
}

/// How to run an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker threads; 0: one per core.
    pub workers: usize,
    /// Where copies of forwarded frames go, if anywhere.
    pub copy: Option<CopySender>,
    /// Which forwarded frames are copied.
    pub filter: CopyFilter,
    /// Prefix of the worker threads' names (`{prefix}-{n}`).
    pub name: String,
}

struct WorkerHandle {
    commands: Sender<worker::Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    links: usize,
}

impl WorkerHandle {
    fn send(&self, command: worker::Command) -> Result<()> {
        let gone = || Error::Io {
            path: "engine worker".into(),
            source: std::io::ErrorKind::BrokenPipe.into(),
        };
        self.commands.send(command).map_err(|_| gone())?;
        self.waker.wake().map_err(|source| Error::Io {
            path: "engine waker".into(),
            source,
        })
    }
}

struct Placement {
    worker: usize,
    name: String,
    routes: Vec<(Direction, Arc<Mutex<DirectionStats>>)>,
}

impl Placement {
    fn stats(&self, id: LinkId) -> LinkStats {
        let mut stats = LinkStats {
            id,
            name: self.name.clone(),
            a_to_b: None,
            b_to_a: None,
        };
        for (direction, shared) in &self.routes {
            let snapshot = *shared.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = match direction {
                Direction::AToB => &mut stats.a_to_b,
                Direction::BToA => &mut stats.b_to_a,
            };
            *slot.get_or_insert_default() += snapshot;
        }
        stats
    }
}

/// A running engine. Dropping it stops it too.
pub struct Engine {
    workers: Vec<WorkerHandle>,
    links: BTreeMap<LinkId, Placement>,
    next: usize,
}

/// One worker per core when `requested` is 0.
pub fn worker_count(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

impl Engine {
    /// Starts the workers, with no link yet.
    pub fn start(config: EngineConfig) -> Result<Engine> {
        let io = |path: &str| {
            let path = path.to_string();
            move |source| Error::Io {
                path: path.into(),
                source,
            }
        };
        let mut engine = Engine {
            workers: Vec::new(),
            links: BTreeMap::new(),
            next: 0,
        };
        for n in 0..worker_count(config.workers) {
            let poll = Poll::new().map_err(io("epoll"))?;
            let waker =
                Arc::new(Waker::new(poll.registry(), worker::WAKER).map_err(io("eventfd"))?);
            let (commands, receiver) = crossbeam_channel::unbounded();
            let (copy, filter) = (config.copy.clone(), config.filter);
            let thread = std::thread::Builder::new()
                .name(format!("{}-{n}", config.name))
                .spawn(move || worker::Worker::new(poll, receiver, copy, filter).run())
                .map_err(io("thread"))?;
            engine.workers.push(WorkerHandle {
                commands,
                waker,
                thread: Some(thread),
                links: 0,
            });
        }
        Ok(engine)
    }

    /// How many worker threads run.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Places a link on the worker with the fewest links and starts forwarding.
    pub fn add_link(&mut self, link: Link) -> Result<LinkId> {
        Ok(self.add_links(vec![link])?[0])
    }

    /// Places several links at once (one wake-up per worker rather than per link). On an
    /// error the links placed before it keep running.
    pub fn add_links(&mut self, links: Vec<Link>) -> Result<Vec<LinkId>> {
        let gone = || Error::Io {
            path: "engine worker".into(),
            source: std::io::ErrorKind::BrokenPipe.into(),
        };
        let mut pending = Vec::new();
        let mut woken = vec![false; self.workers.len()];
        for link in links {
            let worker = (0..self.workers.len())
                .min_by_key(|&w| self.workers[w].links)
                .unwrap_or(0);
            let id = LinkId(self.next);
            self.next += 1;
            let routes: Vec<(Direction, Arc<Mutex<DirectionStats>>)> = link
                .routes
                .iter()
                .map(|r| (r.direction, Arc::default()))
                .collect();
            let placement = Placement {
                worker,
                name: link.name.clone(),
                routes,
            };
            let (reply, outcome) = crossbeam_channel::bounded(1);
            let shared = placement.routes.iter().map(|(_, s)| s.clone()).collect();
            self.workers[worker]
                .commands
                .send(worker::Command::Add {
                    id,
                    link,
                    shared,
                    reply,
                })
                .map_err(|_| gone())?;
            self.workers[worker].links += 1;
            woken[worker] = true;
            pending.push((id, placement, outcome));
        }
        for (worker, woken) in self.workers.iter().zip(woken) {
            if woken {
                worker.waker.wake().map_err(|source| Error::Io {
                    path: "engine waker".into(),
                    source,
                })?;
            }
        }
        let mut ids = Vec::new();
        let mut first_error = None;
        for (id, placement, outcome) in pending {
            match outcome.recv() {
                Ok(Ok(())) => {
                    self.links.insert(id, placement);
                    ids.push(id);
                }
                Ok(Err(source)) => {
                    self.workers[placement.worker].links -= 1;
                    first_error.get_or_insert(Error::Io {
                        path: format!("link {}", placement.name).into(),
                        source,
                    });
                }
                Err(_) => {
                    first_error.get_or_insert_with(gone);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(ids),
        }
    }

    /// Removes a running link: forwards what it has queued and what its stages hold, closes
    /// its endpoints (which hands a stolen tunnel back to its VMs at once), and returns its
    /// final counters.
    pub fn remove_link(&mut self, id: LinkId) -> Result<LinkStats> {
        let placement = self.links.remove(&id).ok_or_else(|| Error::Argument {
            field: "link".into(),
            message: format!("no running link has the number {}", id.0),
        })?;
        let worker = &mut self.workers[placement.worker];
        let (reply, done) = crossbeam_channel::bounded(1);
        worker.send(worker::Command::Remove { id, reply })?;
        worker.links -= 1;
        // The worker replies once the link is closed; a worker that is gone closed it too.
        let _ = done.recv();
        Ok(placement.stats(id))
    }

    /// The running links' counters as of now, in the order they were added.
    pub fn stats(&self) -> Vec<LinkStats> {
        self.links
            .iter()
            .map(|(id, placement)| placement.stats(*id))
            .collect()
    }

    /// Stops every worker (each forwards what is queued, then closes its links) and returns
    /// the final counters.
    pub fn stop(mut self) -> Vec<LinkStats> {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        for worker in &self.workers {
            // A worker that is gone has closed its links already.
            let _ = worker.send(worker::Command::Stop);
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                // A worker has no panicking path; if one did, its counters up to then are
                // still in the shared snapshots.
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.halt();
    }
}
