//! One direction's impairment as a pure state machine: [`Impairment::offer`] decides what
//! happens to a frame at a given time, [`Impairment::release`] hands over the held frames
//! whose time came, and [`Impairment::next_deadline`] says when to call it again. It never
//! sleeps and never reads a clock: the engine brings the time.
//!
//! The order of decisions follows netem's enqueue (sch_netem.c): down and mtu first (a
//! pulled cable or a smaller link MTU), then duplication, loss (which takes back one copy),
//! corruption, the queue limit, and the time to send: delay plus jitter, kept in order
//! behind the frame before it, plus the rate's serialisation time. A reordered frame goes
//! out at once, ahead of those waiting. Unlike netem with jitter, frames never overtake
//! one another unless `reorder` is asked for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rng::{Correlated, Rng};
use super::spec::{Loss, Spec};

/// Why the impairment dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The link is down (`down`, `ctl down`, a flap's down phase).
    Down,
    /// Chosen by `loss` or `gemodel`.
    Loss,
    /// Longer than `mtu`.
    Mtu,
    /// The queue held `limit` frames already (tail drop).
    Queue,
}

/// What happens to an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it now, `copies` times (2 when duplicated), as it is now in the buffer (a
    /// corrupted frame was changed in place).
    Pass { copies: u8 },
    /// Dropped for this cause.
    Drop(Cause),
    /// Copied into the queue; [`Impairment::release`] hands it over when its time comes.
    Held,
}

/// What the impairment did to one direction. Kept apart from losses linkscope did not
/// cause (the engine's own counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Frames dropped by `loss` / `gemodel`.
    pub dropped_loss: u64,
    /// Frames dropped while the link was down (queued frames included).
    pub dropped_down: u64,
    /// Frames dropped for being longer than `mtu`.
    pub dropped_mtu: u64,
    /// Frames tail-dropped because the queue held `limit` frames.
    pub queue_drops: u64,
    /// Frames held for delay or rate before being sent.
    pub delayed: u64,
    /// Frames sent twice.
    pub duplicated: u64,
    /// Frames sent ahead of frames that arrived before them.
    pub reordered: u64,
    /// Frames with one bit flipped.
    pub corrupted: u64,
}

impl Counters {
    /// Every frame the impairment dropped, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_down + self.dropped_mtu + self.queue_drops
    }
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.dropped_loss += o.dropped_loss;
        self.dropped_down += o.dropped_down;
        self.dropped_mtu += o.dropped_mtu;
        self.queue_drops += o.queue_drops;
        self.delayed += o.delayed;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.corrupted += o.corrupted;
    }
}

struct Held {
    at: Instant,
    /// What was asked for: time from offer to `at`.
    asked: Duration,
    frame: Vec<u8>,
}

/// Spare buffers kept for reuse, at most this many.
const SPARE_BUFFERS: usize = 256;

/// One direction's impairment state.
pub struct Impairment {
    spec: Spec,
    /// Down by command (`ctl down`, flap), apart from the spec's own `down`.
    forced_down: bool,
    rng: Rng,
    loss_draw: Correlated,
    bad_state: bool,
    reorder_count: u32,
    queue: VecDeque<Held>,
    spare: Vec<Vec<u8>>,
    /// When the last held frame goes out: a later frame never goes before it.
    last_at: Option<Instant>,
    counters: Counters,
}

impl Impairment {
    /// An impairment following `spec`, drawing from `rng`.
    pub fn new(spec: Spec, rng: Rng) -> Impairment {
        Impairment {
            spec,
            forced_down: false,
            rng,
            loss_draw: Correlated::default(),
            bad_state: false,
            reorder_count: 0,
            queue: VecDeque::new(),
            spare: Vec::new(),
            last_at: None,
            counters: Counters::default(),
        }
    }

    /// The spec in force.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// True while everything is dropped.
    pub fn is_down(&self) -> bool {
        self.forced_down || self.spec.down
    }

    /// What it did so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Frames waiting in the queue.
    pub fn held(&self) -> usize {
        self.queue.len()
    }

    /// Replaces the spec; frames already queued keep their time (a cable pull drops them).
    pub fn set_spec(&mut self, spec: Spec) {
        self.spec = spec;
        self.loss_draw = Correlated::default();
        self.bad_state = false;
        self.reorder_count = 0;
        if self.is_down() {
            self.flush_down();
        }
    }

    /// Pulls (`true`) or plugs back (`false`) the cable: while down everything is dropped,
    /// frames in the queue included. Plugging back also clears the spec's `down`.
    pub fn set_down(&mut self, down: bool) {
        self.forced_down = down;
        if down {
            self.flush_down();
        } else {
            self.spec.down = false;
        }
    }

    fn flush_down(&mut self) {
        self.counters.dropped_down += self.queue.len() as u64;
        while let Some(held) = self.queue.pop_front() {
            self.recycle(held.frame);
        }
        self.last_at = None;
    }

    fn recycle(&mut self, mut frame: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            frame.clear();
            self.spare.push(frame);
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.unit() < p
    }

    fn lost(&mut self) -> bool {
        match self.spec.loss {
            None => false,
            Some(Loss::Random { p, corr }) => {
                p > 0.0 && self.loss_draw.next(&mut self.rng, corr) < p
            }
            Some(Loss::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            }) => {
                // The loss is drawn in the current state, then the state moves.
                if self.bad_state {
                    let lost = self.chance(bad_loss);
                    if self.chance(r) {
                        self.bad_state = false;
                    }
                    lost
                } else {
                    let lost = self.chance(good_loss);
                    if self.chance(p) {
                        self.bad_state = true;
                    }
                    lost
                }
            }
        }
    }

    /// Decides about `frame`, arriving at `now`. A frame chosen for corruption has one bit
    /// flipped in place; a held frame is copied, so the buffer is the caller's again.
    pub fn offer(&mut self, frame: &mut [u8], now: Instant) -> Verdict {
        if self.is_down() {
            self.counters.dropped_down += 1;
            return Verdict::Drop(Cause::Down);
        }
        if self.spec.mtu.is_some_and(|mtu| frame.len() > mtu) {
            self.counters.dropped_mtu += 1;
            return Verdict::Drop(Cause::Mtu);
        }
        let mut copies: u8 = if self.chance(self.spec.duplicate) {
            2
        } else {
            1
        };
        if self.lost() {
            copies -= 1;
            if copies == 0 {
                self.counters.dropped_loss += 1;
                return Verdict::Drop(Cause::Loss);
            }
        }
        if !self.spec.holds() && self.queue.is_empty() {
            self.corrupt(frame);
            self.count_copies(copies);
            return Verdict::Pass { copies };
        }
        if self.queue.len() + usize::from(copies) > self.spec.limit {
            self.counters.queue_drops += 1;
            return Verdict::Drop(Cause::Queue);
        }
        self.corrupt(frame);
        self.count_copies(copies);
        if self.spec.gap > 0 {
            if self.reorder_count + 1 >= self.spec.gap && self.chance(self.spec.reorder) {
                self.reorder_count = 0;
                if !self.queue.is_empty() {
                    self.counters.reordered += 1;
                }
                return Verdict::Pass { copies };
            }
            self.reorder_count += 1;
        }
        let delay = self.delay_ns();
        let mut at = now + Duration::from_nanos(delay);
        if let Some(last) = self.last_at {
            at = at.max(last);
        }
        if let Some(bits) = self.spec.rate {
            let bits_in_frame = frame.len() as u128 * 8;
            at += Duration::from_nanos((bits_in_frame * 1_000_000_000 / u128::from(bits)) as u64);
        }
        self.last_at = Some(at);
        if at > now {
            self.counters.delayed += 1;
        }
        for _ in 0..copies {
            let mut buffer = self.spare.pop().unwrap_or_default();
            buffer.extend_from_slice(frame);
            self.queue.push_back(Held {
                at,
                asked: at - now,
                frame: buffer,
            });
        }
        Verdict::Held
    }

    fn count_copies(&mut self, copies: u8) {
        if copies == 2 {
            self.counters.duplicated += 1;
        }
    }

    fn corrupt(&mut self, frame: &mut [u8]) {
        if !frame.is_empty() && self.chance(self.spec.corrupt) {
            let bit = self.rng.below(frame.len() as u64 * 8);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.counters.corrupted += 1;
        }
    }

    fn delay_ns(&mut self) -> u64 {
        let delay = self.spec.delay.as_nanos() as f64;
        if self.spec.jitter.is_zero() {
            return delay as u64;
        }
        let jitter = self.spec.jitter.as_nanos() as f64;
        (delay + self.rng.jitter(self.spec.dist, jitter)).max(0.0) as u64
    }

    /// Hands every held frame whose time is at or before `now` to `send`, in order, with the
    /// delay that was asked for it (so the engine's own added latency can leave it out).
    /// Returns how many it handed over.
    pub fn release(&mut self, now: Instant, mut send: impl FnMut(&[u8], Duration)) -> usize {
        let mut count = 0;
        while self.queue.front().is_some_and(|held| held.at <= now) {
            let held = self.queue.pop_front().expect("front checked");
            send(&held.frame, held.asked);
            self.recycle(held.frame);
            count += 1;
        }
        if self.queue.is_empty() && self.last_at.is_some_and(|last| last <= now) {
            self.last_at = None;
        }
        count
    }

    /// When the next held frame is due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|held| held.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str) -> Impairment {
        Impairment::new(Spec::parse(text, "--impair").unwrap(), Rng::seeded(1, 0))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_clear_spec_passes_everything_untouched() {
        let mut m = model("");
        let t = Instant::now();
        let mut frame = [1u8, 2, 3];
        for _ in 0..1000 {
            assert_eq!(m.offer(&mut frame, t), Verdict::Pass { copies: 1 });
        }
        assert_eq!(frame, [1, 2, 3]);
        assert_eq!(m.counters(), Counters::default());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn delay_holds_frames_in_order_and_releases_them_on_time() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        for i in 0..5u8 {
            assert_eq!(m.offer(&mut [i], t0 + ms(u64::from(i))), Verdict::Held);
        }
        assert_eq!(m.next_deadline(), Some(t0 + ms(10)));
        let mut out = Vec::new();
        assert_eq!(m.release(t0 + ms(9), |f, _| out.push(f[0])), 0);
        assert_eq!(m.release(t0 + ms(12), |f, a| out.push((f[0], a).0)), 3);
        assert_eq!(out, [0, 1, 2]);
        m.release(t0 + ms(20), |f, a| {
            assert_eq!(a, ms(10));
            out.push(f[0]);
        });
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert_eq!(m.counters().delayed, 5);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn jitter_never_reorders() {
        let mut m = model("delay=10ms jitter=9ms dist=normal limit=5000");
        let t0 = Instant::now();
        for i in 0..2000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 100);
            m.offer(&mut i.to_be_bytes(), now);
        }
        let mut out = Vec::new();
        m.release(t0 + Duration::from_secs(10), |f, _| {
            out.push(u32::from_be_bytes(f.try_into().unwrap()))
        });
        assert!(
            out == (0..2000).collect::<Vec<_>>(),
            "{} frames, not in order",
            out.len()
        );
        assert_eq!(m.counters().reordered, 0);
    }

    #[test]
    fn loss_is_near_p_and_exactly_counted() {
        let mut m = model("loss=10%");
        let t = Instant::now();
        let dropped = (0..20_000)
            .filter(|_| m.offer(&mut [0u8; 64], t) == Verdict::Drop(Cause::Loss))
            .count() as u64;
        assert_eq!(dropped, m.counters().dropped_loss);
        assert!((1800..=2200).contains(&dropped), "{dropped}");
    }

    #[test]
    fn gemodel_bursts_last_one_over_r_on_average() {
        let mut m = model("gemodel=1%,10%");
        let t = Instant::now();
        let (mut bursts, mut lost, mut in_burst) = (0u64, 0u64, false);
        for _ in 0..2_000_000 {
            let dropped = m.offer(&mut [0u8; 64], t) == Verdict::Drop(Cause::Loss);
            if dropped {
                lost += 1;
                if !in_burst {
                    bursts += 1;
                }
            }
            in_burst = dropped;
        }
        let mean = lost as f64 / bursts as f64;
        assert!((mean - 10.0).abs() < 1.0, "mean burst {mean}");
    }

    #[test]
    fn rate_spaces_frames_by_their_serialisation_time() {
        // 1000 bytes at 8 Mbit/s: 1 ms each.
        let mut m = model("rate=8Mbit limit=100");
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(m.offer(&mut [0u8; 1000], t0), Verdict::Held);
        }
        assert_eq!(m.offer(&mut [0u8; 1000], t0), Verdict::Drop(Cause::Queue));
        assert_eq!(m.counters().queue_drops, 1);
        assert_eq!(m.release(t0 + ms(50), |_, _| ()), 50);
        assert_eq!(m.next_deadline(), Some(t0 + ms(51)));
    }

    #[test]
    fn mtu_drops_exactly_the_longer_frames() {
        let mut m = model("mtu=1400");
        let t = Instant::now();
        assert_eq!(m.offer(&mut [0u8; 1400], t), Verdict::Pass { copies: 1 });
        assert_eq!(m.offer(&mut [0u8; 1401], t), Verdict::Drop(Cause::Mtu));
        assert_eq!(m.counters().dropped_mtu, 1);
    }

    #[test]
    fn duplicate_and_corrupt_are_counted_per_frame() {
        let mut m = model("duplicate=20% corrupt=30%");
        let t = Instant::now();
        let (mut twice, mut changed) = (0, 0);
        for _ in 0..10_000 {
            let mut frame = [0u8; 100];
            if m.offer(&mut frame, t) == (Verdict::Pass { copies: 2 }) {
                twice += 1;
            }
            let bits: u32 = frame.iter().map(|b| b.count_ones()).sum();
            assert!(bits <= 1);
            changed += bits;
        }
        let c = m.counters();
        assert_eq!((c.duplicated, u64::from(changed)), (twice, c.corrupted));
        assert!((1800..2200).contains(&c.duplicated), "{c:?}");
        assert!((2700..3300).contains(&c.corrupted), "{c:?}");
    }

    #[test]
    fn reorder_with_gap_sends_every_nth_frame_ahead() {
        let mut m = model("delay=10ms reorder=100% gap=5");
        let t0 = Instant::now();
        let mut sent_now = Vec::new();
        for i in 0..20u8 {
            if m.offer(&mut [i], t0) == (Verdict::Pass { copies: 1 }) {
                sent_now.push(i);
            }
        }
        assert_eq!(sent_now, [4, 9, 14, 19]);
        assert_eq!(m.counters().reordered, 4);
        assert_eq!(m.release(t0 + ms(10), |_, _| ()), 16);
    }

    #[test]
    fn down_drops_everything_including_the_queue_and_up_restores() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        m.offer(&mut [1], t0);
        m.offer(&mut [2], t0);
        m.set_down(true);
        assert_eq!(m.held(), 0);
        assert_eq!(m.offer(&mut [3], t0), Verdict::Drop(Cause::Down));
        assert_eq!(m.counters().dropped_down, 3);
        m.set_down(false);
        assert_eq!(m.offer(&mut [4], t0 + ms(1)), Verdict::Held);
        let mut spec_down = model("down");
        assert_eq!(spec_down.offer(&mut [1], t0), Verdict::Drop(Cause::Down));
        spec_down.set_down(false);
        assert_eq!(spec_down.offer(&mut [1], t0), Verdict::Pass { copies: 1 });
    }

    #[test]
    fn a_cleared_spec_keeps_order_behind_frames_still_queued() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        m.offer(&mut [1], t0);
        m.set_spec(Spec::default());
        assert_eq!(m.offer(&mut [2], t0 + ms(1)), Verdict::Held);
        let mut out = Vec::new();
        m.release(t0 + ms(10), |f, _| out.push(f[0]));
        assert_eq!(out, [1, 2]);
        assert_eq!(m.offer(&mut [3], t0 + ms(11)), Verdict::Pass { copies: 1 });
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let run = || {
            let mut m = model("loss=30% duplicate=10% corrupt=10%");
            let t = Instant::now();
            (0..1000)
                .map(|_| m.offer(&mut [0u8; 64], t))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
