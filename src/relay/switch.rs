//! The learning table of `linkscope relay --switch`: which endpoint each unicast source MAC
//! was last seen on, forgotten after the aging time; a bounded number of entries.
//!
//! Forwarding follows IEEE 802.1Q's filtering database in its simplest form: a frame to a
//! group (multicast or broadcast) address or to an unknown or aged address is flooded to
//! every endpoint but the one it came in on; a frame to a known address goes to that
//! endpoint only, and is filtered when that is the endpoint it came in on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The aging time when none is given (802.1Q's default, 300 s).
pub const DEFAULT_AGING: Duration = Duration::from_secs(300);

/// The entries a table holds when no other bound is given.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A MAC address.
pub type Mac = [u8; 6];

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// To every endpoint but the ingress one.
    Flood,
    /// To this endpoint only.
    To(usize),
    /// Nowhere: the destination sits behind the ingress endpoint.
    Filter,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    endpoint: usize,
    seen: Instant,
}

/// Counters of a [`Table`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries now held (aged ones included until swept).
    pub entries: usize,
    /// Source addresses not learned because the table was full of live entries.
    pub full: u64,
    /// Times a known address was seen on another endpoint than before.
    pub moves: u64,
    /// Frames not forwarded because their destination sits behind their ingress endpoint.
    pub filtered: u64,
}

/// The learning table; see the [module documentation](self).
#[derive(Debug)]
pub struct Table {
    entries: HashMap<Mac, Entry>,
    aging: Duration,
    capacity: usize,
    full: u64,
    moves: u64,
    filtered: u64,
}

impl Table {
    /// A table that forgets an address `aging` after it was last seen and holds at most
    /// `capacity` addresses (at least one).
    pub fn new(aging: Duration, capacity: usize) -> Table {
        Table {
            entries: HashMap::new(),
            aging,
            capacity: capacity.max(1),
            full: 0,
            moves: 0,
            filtered: 0,
        }
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            entries: self.entries.len(),
            full: self.full,
            moves: self.moves,
            filtered: self.filtered,
        }
    }

    /// Learns `frame`'s source on `ingress` and decides where it goes at `now`.
    pub fn forward(&mut self, frame: &[u8], ingress: usize, now: Instant) -> Forward {
        let (Some(dst), Some(src)) = (frame.first_chunk::<6>(), frame.get(6..12)) else {
            return Forward::Flood;
        };
        let src: Mac = src.try_into().expect("six bytes");
        if !is_group(&src) {
            self.learn(src, ingress, now);
        }
        if is_group(dst) {
            return Forward::Flood;
        }
        match self.entries.get(dst) {
            Some(e) if now.duration_since(e.seen) < self.aging => {
                if e.endpoint == ingress {
                    self.filtered += 1;
                    Forward::Filter
                } else {
                    Forward::To(e.endpoint)
                }
            }
            _ => Forward::Flood,
        }
    }

    fn learn(&mut self, src: Mac, endpoint: usize, now: Instant) {
        if let Some(e) = self.entries.get_mut(&src) {
            if e.endpoint != endpoint {
                self.moves += 1;
                e.endpoint = endpoint;
            }
            e.seen = now;
            return;
        }
        if self.entries.len() >= self.capacity {
            let aging = self.aging;
            self.entries
                .retain(|_, e| now.duration_since(e.seen) < aging);
            if self.entries.len() >= self.capacity {
                self.full += 1;
                return;
            }
        }
        self.entries.insert(
            src,
            Entry {
                endpoint,
                seen: now,
            },
        );
    }
}

/// True for a group (multicast or broadcast) address: the I/G bit is set.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x52, 0x54, 0, 0, 0, 0xa];
    const B: Mac = [0x52, 0x54, 0, 0, 0, 0xb];
    const C: Mac = [0x52, 0x54, 0, 0, 0, 0xc];
    const BROADCAST: Mac = [0xff; 6];
    const STP: Mac = [0x01, 0x80, 0xc2, 0, 0, 0];

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00, 0, 0]);
        f
    }

    #[test]
    fn unknown_and_group_addresses_flood_known_ones_go_to_their_endpoint() {
        let t0 = Instant::now();
        let mut table = Table::new(DEFAULT_AGING, DEFAULT_CAPACITY);
        assert_eq!(table.forward(&frame(B, A), 0, t0), Forward::Flood);
        assert_eq!(table.forward(&frame(A, B), 1, t0), Forward::To(0));
        assert_eq!(table.forward(&frame(B, A), 0, t0), Forward::To(1));
        assert_eq!(table.forward(&frame(BROADCAST, A), 0, t0), Forward::Flood);
        assert_eq!(table.forward(&frame(STP, B), 1, t0), Forward::Flood);
        assert_eq!(table.forward(&frame(C, A), 0, t0), Forward::Flood);
        assert_eq!(table.forward(&frame(A, C), 0, t0), Forward::Filter);
        assert_eq!(table.stats().filtered, 1);
        assert_eq!(table.forward(&[0; 5], 2, t0), Forward::Flood);
        assert_eq!(table.stats().entries, 3);
    }

    #[test]
    fn entries_age_out_and_move_with_their_address() {
        let t0 = Instant::now();
        let aging = Duration::from_secs(10);
        let mut table = Table::new(aging, DEFAULT_CAPACITY);
        table.forward(&frame(B, A), 0, t0);
        assert_eq!(
            table.forward(&frame(A, B), 1, t0 + aging / 2),
            Forward::To(0)
        );
        assert_eq!(table.forward(&frame(A, B), 1, t0 + aging), Forward::Flood);
        table.forward(&frame(B, A), 2, t0 + aging);
        assert_eq!(table.forward(&frame(A, B), 1, t0 + aging), Forward::To(2));
        assert_eq!(table.stats().moves, 1);
    }

    #[test]
    fn the_table_is_bounded_and_counts_what_it_could_not_learn() {
        let t0 = Instant::now();
        let aging = Duration::from_secs(10);
        let mut table = Table::new(aging, 2);
        table.forward(&frame(C, A), 0, t0);
        table.forward(&frame(C, B), 1, t0);
        table.forward(&frame(A, C), 2, t0);
        assert_eq!(
            table.stats(),
            TableStats {
                entries: 2,
                full: 1,
                moves: 0,
                filtered: 0,
            }
        );
        assert_eq!(table.forward(&frame(C, A), 0, t0), Forward::Flood);
        // Once the others aged, a new address finds room.
        table.forward(&frame(A, C), 2, t0 + aging);
        assert_eq!(table.forward(&frame(C, B), 1, t0 + aging), Forward::To(2));
        assert_eq!(table.stats().full, 1);
    }
}
