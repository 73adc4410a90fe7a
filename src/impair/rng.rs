//! The random source of the impairment models: xoshiro256** seeded through splitmix64, with
//! netem's correlated draw and the jitter distributions.
//!
//! Our own twenty lines rather than `rand`: `--seed N` must give the same choices after a
//! dependency upgrade (rand's `StdRng` promises no stable stream across versions), and the
//! models need nothing beyond uniform draws.

use std::time::{SystemTime, UNIX_EPOCH};

use super::spec::Dist;

/// xoshiro256** (Blackman and Vigna), 256 bits of state.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator determined by `seed` and `stream` (e.g. the link and direction), so each
    /// direction of each link draws its own repeatable sequence.
    pub fn seeded(seed: u64, stream: u64) -> Rng {
        let mut state = seed ^ stream.wrapping_mul(0xd605_bbb5_8c8a_bbc5);
        Rng {
            s: std::array::from_fn(|_| splitmix64(&mut state)),
        }
    }

    /// A generator seeded from the clock and the process id: different on every run.
    pub fn unseeded(stream: u64) -> Rng {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::seeded(clock ^ (u64::from(std::process::id()) << 32), stream)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) for n > 0 (Lemire's multiply; the bias is below 2^-32 for the
    /// frame sizes it is used with).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Pareto with shape 3 and scale 1, shifted to mean 0 and scaled to standard deviation 1.
    fn pareto(&mut self) -> f64 {
        const SHAPE: f64 = 3.0;
        let x = (1.0 - self.unit()).powf(-1.0 / SHAPE);
        let mean = SHAPE / (SHAPE - 1.0);
        let sd = (SHAPE / ((SHAPE - 1.0).powi(2) * (SHAPE - 2.0))).sqrt();
        (x - mean) / sd
    }

    /// A jitter offset for `dist` with spread `jitter` (nanoseconds): uniform in
    /// [-jitter, jitter], the others with standard deviation `jitter`.
    pub fn jitter(&mut self, dist: Dist, jitter: f64) -> f64 {
        match dist {
            Dist::Uniform => (self.unit() * 2.0 - 1.0) * jitter,
            Dist::Normal => self.normal() * jitter,
            Dist::Pareto => self.pareto() * jitter,
            Dist::ParetoNormal => {
                // One quarter normal, three quarters Pareto, rescaled to unit deviation.
                let mixed = 0.25 * self.normal() + 0.75 * self.pareto();
                mixed / (0.25f64.powi(2) + 0.75f64.powi(2)).sqrt() * jitter
            }
        }
    }
}

/// netem's correlated uniform draw: each value is `corr` parts the last one and `1 - corr`
/// parts a fresh draw (`get_crandom` in sch_netem.c).
#[derive(Debug, Clone, Default)]
pub struct Correlated {
    last: Option<f64>,
}

impl Correlated {
    /// The next draw in [0, 1).
    pub fn next(&mut self, rng: &mut Rng, corr: f64) -> f64 {
        let fresh = rng.unit();
        if corr <= 0.0 {
            return fresh;
        }
        let last = *self.last.get_or_insert_with(|| rng.unit());
        let value = fresh * (1.0 - corr) + last * corr;
        self.last = Some(value);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_stream_and_streams_differ() {
        let mut a = Rng::seeded(42, 0);
        let mut b = Rng::seeded(42, 0);
        let mut c = Rng::seeded(42, 1);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn distributions_have_mean_zero_and_the_asked_spread() {
        let mut rng = Rng::seeded(7, 0);
        for dist in [Dist::Normal, Dist::Pareto, Dist::ParetoNormal] {
            let n = 400_000;
            let xs: Vec<f64> = (0..n).map(|_| rng.jitter(dist, 1.0)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(mean.abs() < 0.02, "{dist:?} mean {mean}");
            // Pareto's heavy tail makes the sample deviation converge slowly.
            assert!((var.sqrt() - 1.0).abs() < 0.1, "{dist:?} sd {}", var.sqrt());
        }
        let xs: Vec<f64> = (0..100_000)
            .map(|_| rng.jitter(Dist::Uniform, 2.0))
            .collect();
        assert!(xs.iter().all(|x| (-2.0..=2.0).contains(x)));
        assert!(xs.iter().any(|x| *x > 1.9) && xs.iter().any(|x| *x < -1.9));
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::seeded(1, 2);
        let mut seen = [false; 12];
        for _ in 0..10_000 {
            seen[rng.below(12) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
