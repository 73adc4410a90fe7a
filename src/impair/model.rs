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
use crate::engine::Frame;

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
    /// Send it now, unchanged.
    Pass,
    /// Dropped for this cause.
    Drop(Cause),
    /// Copied into the queue (twice when duplicated, with a bit flipped when corrupted);
    /// [`Impairment::release`] hands it over when its time comes.
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
    /// Frames a later frame overtook (sent ahead by `reorder`): what a receiver counts as
    /// out of order.
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
    frame: Frame,
}

/// One direction's impairment state.
pub struct Impairment {
    spec: Spec,
    /// The spec asks nothing and the cable is in: kept with every change of either.
    clear: bool,
    /// Down by command (`ctl down`, flap), apart from the spec's own `down`.
    forced_down: bool,
    rng: Rng,
    loss_draw: Correlated,
    bad_state: bool,
    reorder_count: u32,
    queue: VecDeque<Held>,
    /// When the last held frame goes out: a later frame never goes before it.
    last_at: Option<Instant>,
    /// Frames at the back of the queue no reordered frame has overtaken yet (those ahead of
    /// them have been).
    not_overtaken: usize,
    counters: Counters,
}

impl Impairment {
    /// An impairment following `spec`, drawing from `rng`.
    pub fn new(spec: Spec, rng: Rng) -> Impairment {
        Impairment {
            clear: spec.is_clear(),
            spec,
            forced_down: false,
            rng,
            loss_draw: Correlated::default(),
            bad_state: false,
            reorder_count: 0,
            queue: VecDeque::new(),
            last_at: None,
            not_overtaken: 0,
            counters: Counters::default(),
        }
    }

    /// True when every frame offered now would pass unchanged: not down, nothing asked,
    /// nothing held.
    pub fn passes_all(&self) -> bool {
        self.clear && self.queue.is_empty()
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
        self.clear = spec.is_clear() && !self.forced_down;
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
        self.clear = self.spec.is_clear() && !down;
    }

    fn flush_down(&mut self) {
        self.counters.dropped_down += self.queue.len() as u64;
        self.queue.clear();
        self.last_at = None;
        self.not_overtaken = 0;
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

    /// Decides about `frame`, received by the kernel at `received_ns` (nanoseconds since the
    /// Unix epoch, 0 when unknown) and offered at `now`. Frames that must be changed
    /// (corrupted) or sent twice are held, due at once, like every frame while others wait:
    /// order is kept unless `reorder` is asked for.
    pub fn offer(&mut self, frame: &[u8], received_ns: u64, now: Instant) -> Verdict {
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
        let corrupt_bit = self.corrupt_bit(frame.len());
        let changed = copies == 2 || corrupt_bit.is_some();
        if !self.spec.holds() && self.queue.is_empty() && !changed {
            return Verdict::Pass;
        }
        if self.queue.len() + usize::from(copies) > self.spec.limit {
            self.counters.queue_drops += 1;
            return Verdict::Drop(Cause::Queue);
        }
        if copies == 2 {
            self.counters.duplicated += 1;
        }
        if corrupt_bit.is_some() {
            self.counters.corrupted += 1;
        }
        let make = |asked: Duration| {
            let mut data = frame.to_vec();
            if let Some(bit) = corrupt_bit {
                data[bit / 8] ^= 1 << (bit % 8);
            }
            Frame {
                data,
                received_ns: shifted(received_ns, asked),
            }
        };
        if self.spec.gap > 0 {
            if self.reorder_count + 1 >= self.spec.gap && self.chance(self.spec.reorder) {
                self.reorder_count = 0;
                self.counters.reordered += self.not_overtaken as u64;
                self.not_overtaken = 0;
                if !changed {
                    return Verdict::Pass;
                }
                // Due now, ahead of every frame waiting.
                for _ in 0..copies {
                    self.queue.push_front(Held {
                        at: now,
                        frame: make(Duration::ZERO),
                    });
                }
                return Verdict::Held;
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
            self.queue.push_back(Held {
                at,
                frame: make(at - now),
            });
            self.not_overtaken += 1;
        }
        Verdict::Held
    }

    /// The bit to flip when this frame is chosen for corruption.
    fn corrupt_bit(&mut self, len: usize) -> Option<usize> {
        (len > 0 && self.chance(self.spec.corrupt)).then(|| self.rng.below(len as u64 * 8) as usize)
    }

    fn delay_ns(&mut self) -> u64 {
        let delay = self.spec.delay.as_nanos() as f64;
        if self.spec.jitter.is_zero() {
            return delay as u64;
        }
        let jitter = self.spec.jitter.as_nanos() as f64;
        (delay + self.rng.jitter(self.spec.dist, jitter)).max(0.0) as u64
    }

    /// Moves every held frame due at or before `now` to `out`, in order; with `None` (the
    /// link is going away) every held frame. A released frame's `received_ns` is moved on by
    /// the delay it was asked to wait, so the engine's own added latency leaves that out.
    pub fn release(&mut self, now: Option<Instant>, out: &mut Vec<Frame>) {
        while let Some(held) = self.queue.front() {
            if now.is_some_and(|now| held.at > now) {
                break;
            }
            if self.queue.len() <= self.not_overtaken {
                self.not_overtaken -= 1;
            }
            let held = self.queue.pop_front().expect("front checked");
            out.push(held.frame);
        }
        if self.queue.is_empty() && now.is_none_or(|now| self.last_at.is_some_and(|l| l <= now)) {
            self.last_at = None;
        }
    }

    /// When the next held frame is due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|held| held.at)
    }
}

/// `received_ns` moved on by `asked` (0 stays unknown).
fn shifted(received_ns: u64, asked: Duration) -> u64 {
    if received_ns == 0 {
        0
    } else {
        received_ns.saturating_add(asked.as_nanos() as u64)
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

    /// Releases what is due at `now` and returns the frames' first bytes.
    fn firsts(m: &mut Impairment, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        m.release(Some(now), &mut out);
        out.iter().map(|f| f.data[0]).collect()
    }

    #[test]
    fn a_clear_spec_passes_everything() {
        let mut m = model("");
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(m.offer(&[1, 2, 3], 0, t), Verdict::Pass);
        }
        assert_eq!(m.counters(), Counters::default());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn delay_holds_frames_in_order_and_releases_them_on_time() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        for i in 0..5u8 {
            assert_eq!(m.offer(&[i], 1000, t0 + ms(u64::from(i))), Verdict::Held);
        }
        assert_eq!(m.next_deadline(), Some(t0 + ms(10)));
        assert!(firsts(&mut m, t0 + ms(9)).is_empty());
        assert_eq!(firsts(&mut m, t0 + ms(12)), [0, 1, 2]);
        let mut out = Vec::new();
        m.release(Some(t0 + ms(20)), &mut out);
        assert_eq!(out.len(), 2);
        // The receive time moves on by the delay asked, so the splice's own latency leaves
        // it out.
        assert!(out.iter().all(|f| f.received_ns == 1000 + 10_000_000));
        assert_eq!(m.counters().delayed, 5);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn jitter_never_reorders() {
        let mut m = model("delay=10ms jitter=9ms dist=normal limit=5000");
        let t0 = Instant::now();
        for i in 0..2000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 100);
            m.offer(&i.to_be_bytes(), 0, now);
        }
        let mut out = Vec::new();
        m.release(Some(t0 + Duration::from_secs(10)), &mut out);
        let order: Vec<u32> = out
            .iter()
            .map(|f| u32::from_be_bytes(f.data[..].try_into().unwrap()))
            .collect();
        assert!(
            order == (0..2000).collect::<Vec<_>>(),
            "{} frames, not in order",
            order.len()
        );
        assert_eq!(m.counters().reordered, 0);
    }

    #[test]
    fn loss_is_near_p_and_exactly_counted() {
        let mut m = model("loss=10%");
        let t = Instant::now();
        let dropped = (0..20_000)
            .filter(|_| m.offer(&[0u8; 64], 0, t) == Verdict::Drop(Cause::Loss))
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
            let dropped = m.offer(&[0u8; 64], 0, t) == Verdict::Drop(Cause::Loss);
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
            assert_eq!(m.offer(&[0u8; 1000], 0, t0), Verdict::Held);
        }
        assert_eq!(m.offer(&[0u8; 1000], 0, t0), Verdict::Drop(Cause::Queue));
        assert_eq!(m.counters().queue_drops, 1);
        assert_eq!(firsts(&mut m, t0 + ms(50)).len(), 50);
        assert_eq!(m.next_deadline(), Some(t0 + ms(51)));
    }

    #[test]
    fn mtu_drops_exactly_the_longer_frames() {
        let mut m = model("mtu=1400");
        let t = Instant::now();
        assert_eq!(m.offer(&[0u8; 1400], 0, t), Verdict::Pass);
        assert_eq!(m.offer(&[0u8; 1401], 0, t), Verdict::Drop(Cause::Mtu));
        assert_eq!(m.counters().dropped_mtu, 1);
    }

    #[test]
    fn duplicates_and_corruptions_are_held_due_at_once_and_counted() {
        let mut m = model("duplicate=20% corrupt=30%");
        let t = Instant::now();
        let (mut sent, mut changed) = (0u64, 0u64);
        for i in 0..10_000u32 {
            let frame = [0u8; 100];
            match m.offer(&frame, 0, t) {
                Verdict::Pass => sent += 1,
                Verdict::Held => {
                    assert_eq!(m.next_deadline(), Some(t), "frame {i}");
                    let mut out = Vec::new();
                    m.release(Some(t), &mut out);
                    assert!(out.len() <= 2 && out.iter().all(|f| f.data == out[0].data));
                    sent += out.len() as u64;
                    let bits: u32 = out[0].data.iter().map(|b| b.count_ones()).sum();
                    assert!(bits <= 1);
                    changed += u64::from(bits);
                }
                Verdict::Drop(cause) => panic!("dropped: {cause:?}"),
            }
        }
        let c = m.counters();
        assert_eq!(sent, 10_000 + c.duplicated);
        assert_eq!(changed, c.corrupted);
        assert!((1800..2200).contains(&c.duplicated), "{c:?}");
        assert!((2700..3300).contains(&c.corrupted), "{c:?}");
    }

    #[test]
    fn reorder_with_gap_sends_every_nth_frame_ahead() {
        let mut m = model("delay=10ms reorder=100% gap=5");
        let t0 = Instant::now();
        let sent_now: Vec<u8> = (0..20u8)
            .filter(|i| m.offer(&[*i], 0, t0) == Verdict::Pass)
            .collect();
        assert_eq!(sent_now, [4, 9, 14, 19]);
        // Each of the 16 delayed frames was overtaken once.
        assert_eq!(m.counters().reordered, 16);
        assert_eq!(firsts(&mut m, t0 + ms(10)).len(), 16);
    }

    #[test]
    fn reordered_counts_each_overtaken_frame_once_as_a_receiver_would() {
        let mut m = model("delay=10ms reorder=30% limit=100000");
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..20_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 200);
            m.release(Some(now), &mut out);
            if m.offer(&i.to_be_bytes(), 0, now) == Verdict::Pass {
                out.push(Frame {
                    data: i.to_be_bytes().to_vec(),
                    received_ns: 0,
                });
            }
        }
        m.release(None, &mut out);
        let mut highest = None;
        let mut out_of_order = 0;
        for f in &out {
            let seq = u32::from_be_bytes(f.data[..].try_into().unwrap());
            match highest {
                Some(h) if seq < h => out_of_order += 1,
                _ => highest = Some(seq),
            }
        }
        assert_eq!(out.len(), 20_000);
        assert!(out_of_order > 1000, "{out_of_order}");
        assert_eq!(m.counters().reordered, out_of_order);
    }

    #[test]
    fn down_drops_everything_including_the_queue_and_up_restores() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        m.offer(&[1], 0, t0);
        m.offer(&[2], 0, t0);
        m.set_down(true);
        assert_eq!(m.held(), 0);
        assert_eq!(m.offer(&[3], 0, t0), Verdict::Drop(Cause::Down));
        assert_eq!(m.counters().dropped_down, 3);
        m.set_down(false);
        assert_eq!(m.offer(&[4], 0, t0 + ms(1)), Verdict::Held);
        let mut spec_down = model("down");
        assert_eq!(spec_down.offer(&[1], 0, t0), Verdict::Drop(Cause::Down));
        spec_down.set_down(false);
        assert_eq!(spec_down.offer(&[1], 0, t0), Verdict::Pass);
    }

    #[test]
    fn a_cleared_spec_keeps_order_behind_frames_still_queued() {
        let mut m = model("delay=10ms");
        let t0 = Instant::now();
        m.offer(&[1], 0, t0);
        m.set_spec(Spec::default());
        assert_eq!(m.offer(&[2], 0, t0 + ms(1)), Verdict::Held);
        assert_eq!(firsts(&mut m, t0 + ms(10)), [1, 2]);
        assert_eq!(m.offer(&[3], 0, t0 + ms(11)), Verdict::Pass);
        m.offer(&[4], 0, t0 + ms(11));
    }

    #[test]
    fn release_without_a_time_hands_over_everything() {
        let mut m = model("delay=1s");
        let t0 = Instant::now();
        m.offer(&[1], 0, t0);
        m.offer(&[2], 0, t0);
        let mut out = Vec::new();
        m.release(None, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(m.offer(&[3], 0, t0 + ms(1)), Verdict::Held);
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let run = || {
            let mut m = model("loss=30% duplicate=10% corrupt=10%");
            let t = Instant::now();
            (0..1000)
                .map(|_| {
                    let verdict = m.offer(&[0u8; 64], 0, t);
                    let mut out = Vec::new();
                    m.release(Some(t), &mut out);
                    (verdict, out)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
