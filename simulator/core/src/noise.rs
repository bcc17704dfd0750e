//! Stateless, seeded randomness: every random quantity is a pure function of (seed, what, when).
//!
//! Keying noise by time instead of drawing from a stream makes the model's output independent of
//! how often it is sampled, lets a run resume from saved state without saving generator
//! positions, and gives the same household on the same day whatever `--start` was.

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
#[inline]
pub const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a seed, a stream tag and an index (a day, a minute, an event number).
#[inline]
pub const fn key(seed: u64, stream: u64, index: i64) -> u64 {
    mix(mix(seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93)) ^ index as u64)
}

/// Uniform in [0, 1).
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in [-1, 1).
#[inline]
pub fn signed(h: u64) -> f64 {
    unit(h) * 2.0 - 1.0
}

/// Smooth noise in [-1, 1): linear interpolation between hashed knots `period` seconds apart.
#[inline]
pub fn smooth(seed: u64, stream: u64, t: i64, period: i64) -> f64 {
    let k = t.div_euclid(period);
    let frac = t.rem_euclid(period) as f64 / period as f64;
    let a = signed(key(seed, stream, k));
    let b = signed(key(seed, stream, k + 1));
    a + (b - a) * frac
}

/// Random draws for one event stream on one day: a ChaCha8 generator (value-stable across
/// platforms and rand releases) seeded from the stateless key.
#[derive(Clone, Debug)]
pub struct Draws {
    rng: rand_chacha::ChaCha8Rng,
}

impl Draws {
    pub fn new(seed: u64, stream: u64, index: i64) -> Self {
        use rand::SeedableRng;
        Self { rng: rand_chacha::ChaCha8Rng::seed_from_u64(key(seed, stream, index)) }
    }
    pub fn next_u64(&mut self) -> u64 {
        rand::Rng::next_u64(&mut self.rng)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        rand::RngExt::random::<f64>(&mut self.rng)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        if hi > lo { rand::RngExt::random_range(&mut self.rng, lo..hi) } else { lo }
    }
    /// An integer in [lo, hi).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi > lo { rand::RngExt::random_range(&mut self.rng, lo..hi) } else { lo }
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// A Poisson-distributed count with mean `lambda` (Knuth's method; lambda is small here).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = libm::exp(-lambda);
        let mut k = 0;
        let mut p = self.unit();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.unit();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_roughly_uniform() {
        let mut sum = 0.0;
        for i in 0..10_000 {
            let u = unit(key(1, 2, i));
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
    }

    #[test]
    fn smooth_noise_is_continuous() {
        for t in 0..10_000 {
            let a = smooth(7, 1, t, 60);
            let b = smooth(7, 1, t + 1, 60);
            assert!((a - b).abs() <= 2.0 / 60.0 + 1e-12);
        }
    }

    #[test]
    fn poisson_mean() {
        let mut d = Draws::new(3, 4, 5);
        let n = 20_000;
        let total: u32 = (0..n).map(|_| d.poisson(2.5)).sum();
        assert!((f64::from(total) / f64::from(n) - 2.5).abs() < 0.1);
    }
}
