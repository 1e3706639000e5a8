//! A small seeded random source (SplitMix64) so that simulated drivers arrive at random yet
//! reproducible times: the same seed gives the same run.

/// SplitMix64: fast, tiny state, good enough for spreading events over time.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform number in `[0, bound)`; zero when `bound` is zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// An exponentially distributed wait with the given mean, in milliseconds (the gap
    /// between independent arrivals).
    pub fn exponential_ms(&mut self, mean_ms: u64) -> u64 {
        let u = 1.0 - self.unit(); // in (0, 1]
        let wait = -u.ln() * mean_ms as f64;
        wait.min(mean_ms as f64 * 20.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_values_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        for _ in 0..100 {
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(a.below(10) < 10);
        }
        assert_eq!(a.below(0), 0);
    }

    #[test]
    fn exponential_mean_is_close_to_requested() {
        let mut rng = SplitMix64::new(42);
        let n = 20_000;
        let total: u64 = (0..n).map(|_| rng.exponential_ms(1000)).sum();
        let mean = total as f64 / n as f64;
        assert!((900.0..1100.0).contains(&mean), "mean {mean}");
    }
}
