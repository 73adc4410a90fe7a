//! The meters' tables of requests awaiting their responses (ICMP echo, ARP, TCP SYN): capped,
//! aged by a grace time, pairing responses that arrive before their requests.

use std::collections::VecDeque;
use std::hash::Hash;

use super::fast_map::FastMap;
use super::meter::Flow;
use crate::direction::Direction;

/// A request that expects a response, identified by what the response echoes back.
pub(super) trait Request: Copy + Eq + Hash {
    /// The flow the request belongs to, as the loss figures name it.
    fn flow(&self) -> Flow;
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    sent_ns: u64,
    direction: Direction,
}

/// Requests awaiting their response: a map for lookups, a queue in arrival order for
/// ageing, both capped.
#[derive(Debug, Clone)]
pub(super) struct Pending<K> {
    map: FastMap<K, Waiting>,
    /// Responses seen before their request, by the request's key. The splice's forwarding
    /// threads hand frames to the tap independently, so a fast response can reach the meter
    /// before its request; both carry their kernel receive times, so the pair still counts.
    early: FastMap<K, Waiting>,
    order: VecDeque<(u64, K)>,
    cap: usize,
    untracked: u64,
}

impl<K: Request> Pending<K> {
    pub(super) fn new(cap: usize) -> Pending<K> {
        Pending {
            map: FastMap::default(),
            early: FastMap::default(),
            order: VecDeque::new(),
            cap,
            untracked: 0,
        }
    }

    /// Requests waiting for their response.
    pub(super) fn waiting(&self) -> usize {
        self.map.len()
    }

    /// Requests not followed because the table was full.
    pub(super) fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Starts waiting for `key`'s response; returns the flow of an earlier identical
    /// request that was still waiting (it now counts as unanswered).
    pub(super) fn request(&mut self, key: K, ts: u64, direction: Direction) -> Option<Flow> {
        let waiting = Waiting {
            sent_ns: ts,
            direction,
        };
        if let Some(earlier) = self.map.get_mut(&key) {
            *earlier = waiting;
            self.order.push_back((ts, key));
            self.trim();
            return Some(key.flow());
        }
        if self.map.len() >= self.cap {
            self.untracked += 1;
            return None;
        }
        self.map.insert(key, waiting);
        self.order.push_back((ts, key));
        self.trim();
        None
    }

    /// The round-trip time when the response to `key`, travelling the other way, was seen
    /// already (before its request); the pair is then complete.
    pub(super) fn answered_early(&mut self, key: &K, ts: u64, direction: Direction) -> Option<u64> {
        let response = self.early.get(key)?;
        if response.direction == direction || response.sent_ns < ts {
            return None;
        }
        let rtt = response.sent_ns - ts;
        self.early.remove(key);
        Some(rtt)
    }

    /// The round-trip time when `key` was waiting for a response in the other direction.
    /// A response with no waiting request is kept (within the cap) for
    /// [`Pending::answered_early`].
    pub(super) fn response(&mut self, key: &K, ts: u64, direction: Direction) -> Option<u64> {
        let Some(waiting) = self.map.get(key) else {
            if self.early.len() < self.cap {
                self.early.insert(
                    *key,
                    Waiting {
                        sent_ns: ts,
                        direction,
                    },
                );
            }
            return None;
        };
        if waiting.direction == direction {
            return None;
        }
        let rtt = ts.saturating_sub(waiting.sent_ns);
        self.map.remove(key);
        Some(rtt)
    }

    /// Hands every request sent before `deadline` and still waiting to `lost`.
    pub(super) fn expire(&mut self, deadline: u64, mut lost: impl FnMut(Direction, Flow)) {
        if !self.early.is_empty() {
            self.early.retain(|_, w| w.sent_ns >= deadline);
        }
        while let Some(&(ts, key)) = self.order.front() {
            if ts >= deadline {
                break;
            }
            self.order.pop_front();
            if let Some(w) = self.map.get(&key)
                && w.sent_ns == ts
            {
                lost(w.direction, key.flow());
                self.map.remove(&key);
            }
        }
    }

    /// Keeps the ageing queue within twice the cap: the oldest entries beyond that stop
    /// being followed (counted as untracked, never as lost).
    fn trim(&mut self) {
        while self.order.len() > 2 * self.cap {
            if let Some((ts, key)) = self.order.pop_front()
                && self.map.get(&key).is_some_and(|w| w.sent_ns == ts)
            {
                self.map.remove(&key);
                self.untracked += 1;
            }
        }
    }
}
