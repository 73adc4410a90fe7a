//! `linkscope relay`: joins endpoints of any transport into one link.
//!
//! - [`locator`] parses the endpoints as written on the command line.
//! - [`endpoint`] opens a locator as an engine endpoint (the one `match` over all types).
//! - [`framing`] is QEMU's stream framing (4-byte big-endian length, then the frame);
//!   [`stream`] the TCP and Unix stream endpoints built on it, [`backoff`] paces their
//!   reconnects.
//! - [`switch`] is the learning table of `--switch`.
//! - [`tap`], [`vxlan`], [`mcast`], [`exec`] are endpoints: a TAP device, a VXLAN tunnel, a
//!   QEMU multicast tunnel, a child's (or our own) stdin and stdout.
//!
//! A relay is one engine link: two endpoints forward to each other; more need [`Mode::Hub`]
//! (every frame to every other endpoint) or [`Mode::Switch`] (learning). A frame never goes
//! back to the endpoint it came from.
//!
//! Copies of endpoint `i`'s frames carry link `i / 2` and direction A→B for even `i`, B→A
//! for odd `i`, so [`crate::splice::recorder::interface`] puts them on capture interface `i`:
//! one interface per endpoint, in endpoint order. The link's counters sum the even
//! endpoints' routes under A→B and the odd ones' under B→A (a pair: A is endpoint 0, B is
//! endpoint 1).

pub mod backoff;
pub mod endpoint;
pub mod exec;
pub mod framing;
pub mod locator;
pub mod mcast;
pub mod stream;
pub mod switch;
pub mod tap;
pub mod vxlan;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use endpoint::{Counters, Opened};
pub use locator::Locator;

use crate::Error;
use crate::direction::Direction;
use crate::engine::{Engine, EngineConfig, Link, LinkId, LinkStats, Route, Select, Stage};
use crate::splice::copy::{CopyFilter, CopySender};
use switch::{Forward, Table, TableStats};

/// How frames travel between more than two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly two endpoints, each frame to the other.
    Pair,
    /// Every frame to every other endpoint.
    Hub,
    /// Learning: a frame to a known unicast address goes to the endpoint it was learned on;
    /// group and unknown addresses flood. Addresses are forgotten `aging` after they were
    /// last seen; at most `capacity` are held.
    Switch { aging: Duration, capacity: usize },
}

impl Mode {
    /// Checks that `n` endpoints suit the mode: at least two, exactly two without hub or
    /// switch, at most 64.
    pub fn check(self, n: usize) -> crate::Result<()> {
        let bad = |message: String| Error::Argument {
            field: "ENDPOINT".into(),
            message,
        };
        match self {
            _ if n < 2 => Err(bad(format!(
                "a relay joins at least two endpoints, not {n}"
            ))),
            Mode::Pair if n > 2 => Err(bad(format!(
                "{n} endpoints need --hub or --switch (two make a point-to-point link)"
            ))),
            _ if n > 64 => Err(bad(format!("at most 64 endpoints, not {n}"))),
            _ => Ok(()),
        }
    }
}

/// What to relay.
pub struct RelayConfig {
    /// The endpoints, opened (see [`endpoint::open`]).
    pub endpoints: Vec<Opened>,
    pub mode: Mode,
    /// The link's name (thread names, reports).
    pub name: String,
    /// Where copies of forwarded frames go, if anywhere.
    pub copy: Option<CopySender>,
    /// Which forwarded frames are copied.
    pub filter: CopyFilter,
    /// The stage chain of each direction of a point-to-point relay (impairment), if any.
    pub stages: Option<DirectionStages>,
}

/// Makes the stage chain of one direction of a point-to-point relay.
pub type DirectionStages = Box<dyn Fn(Direction) -> Vec<Box<dyn Stage>> + Send>;

/// Counters of a relay as of one moment.
#[derive(Debug, Clone)]
pub struct RelayStats {
    /// The link's counters (A→B: what the even endpoints received, B→A: the odd ones).
    pub link: LinkStats,
    /// Each endpoint's own counters, in endpoint order (empty for those that keep none).
    pub endpoints: Vec<Vec<(&'static str, u64)>>,
    /// The learning table's counters, with `--switch`.
    pub table: Option<TableStats>,
}

/// A running relay.
pub struct Relay {
    engine: Engine,
    id: LinkId,
    counters: Vec<Option<Arc<dyn Counters>>>,
    table: Option<Arc<Mutex<Table>>>,
}

/// The route of a switch: one ingress endpoint's frames to the others.
struct Switched {
    table: Arc<Mutex<Table>>,
    ingress: usize,
    /// How many destinations the route has (every endpoint but the ingress).
    destinations: usize,
}

impl Select for Switched {
    fn select(&mut self, frame: &[u8], now: Instant) -> u64 {
        let forward = self
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forward(frame, self.ingress, now);
        match forward {
            Forward::Flood => u64::MAX >> (64 - self.destinations.min(64)),
            Forward::Filter => 0,
            // Destinations are every endpoint but the ingress, in order.
            Forward::To(e) if e < self.ingress => 1 << e.min(63),
            Forward::To(e) => 1 << (e - 1).min(63),
        }
    }
}

impl Relay {
    /// Checks the endpoint count against the mode and starts forwarding.
    pub fn start(config: RelayConfig) -> crate::Result<Relay> {
        let n = config.endpoints.len();
        config.mode.check(n)?;
        let table = match config.mode {
            Mode::Switch { aging, capacity } => {
                Some(Arc::new(Mutex::new(Table::new(aging, capacity))))
            }
            _ => None,
        };
        let counters = config
            .endpoints
            .iter()
            .map(|o| o.counters.clone())
            .collect();
        let mut endpoints = Vec::with_capacity(n);
        for opened in config.endpoints {
            endpoints.push(opened.endpoint);
        }
        let routes = (0..n)
            .map(|from| Route {
                from,
                to: (0..n).filter(|&to| to != from).collect(),
                direction: if from % 2 == 0 {
                    Direction::AToB
                } else {
                    Direction::BToA
                },
                copy_link: Some(from / 2),
                stages: match (&config.stages, config.mode) {
                    (Some(stages), Mode::Pair) => stages(if from % 2 == 0 {
                        Direction::AToB
                    } else {
                        Direction::BToA
                    }),
                    _ => Vec::new(),
                },
                select: table.as_ref().map(|table| {
                    Box::new(Switched {
                        table: table.clone(),
                        ingress: from,
                        destinations: n - 1,
                    }) as Box<dyn Select>
                }),
            })
            .collect();
        let mut engine = Engine::start(EngineConfig {
            workers: 1,
            copy: config.copy,
            filter: config.filter,
            name: "relay".into(),
        })?;
        let id = engine.add_link(Link {
            name: config.name,
            endpoints,
            routes,
        })?;
        Ok(Relay {
            engine,
            id,
            counters,
            table,
        })
    }

    /// The counters as of now.
    pub fn stats(&self) -> RelayStats {
        let link = self
            .engine
            .stats()
            .into_iter()
            .find(|s| s.id == self.id)
            .unwrap_or(LinkStats {
                id: self.id,
                name: String::new(),
                a_to_b: None,
                b_to_a: None,
            });
        self.with_endpoints(link)
    }

    fn with_endpoints(&self, link: LinkStats) -> RelayStats {
        RelayStats {
            link,
            endpoints: self
                .counters
                .iter()
                .map(|c| c.as_ref().map(|c| c.counters()).unwrap_or_default())
                .collect(),
            table: self
                .table
                .as_ref()
                .map(|t| t.lock().unwrap_or_else(PoisonError::into_inner).stats()),
        }
    }

    /// Stops: forwards what is queued, closes every endpoint and returns the final counters.
    pub fn stop(mut self) -> crate::Result<RelayStats> {
        let link = self.engine.remove_link(self.id)?;
        Ok(self.with_endpoints(link))
    }
}
