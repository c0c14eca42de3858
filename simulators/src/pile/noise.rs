//! A tiny seeded random source for measurement noise and charger variety.
//!
//! The model needs reproducible randomness: the same seed and the same
//! sequence of operations must give the same registers, run after run and
//! release after release. `rand`'s `StdRng` explicitly does not promise a
//! stable stream across versions, so this is SplitMix64 (Steele, Lea and
//! Flood, 2014): ten lines, a fixed stream forever, good enough statistics
//! for noise.

/// Seeded generator (SplitMix64). Not for anything security-related.
#[derive(Debug, Clone)]
pub(crate) struct Noise {
    state: u64,
}

impl Noise {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub(crate) fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Zero-mean triangular noise in `(-amplitude, amplitude)`: bell-like,
    /// bounded, so a test can rely on its range.
    pub(crate) fn jitter(&mut self, amplitude: f64) -> f64 {
        (self.unit() + self.unit() - 1.0) * amplitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_stream() {
        let mut a = Noise::new(7);
        let mut b = Noise::new(7);
        for _ in 0..100 {
            assert_eq!(a.unit().to_bits(), b.unit().to_bits());
        }
    }

    #[test]
    fn jitter_stays_within_amplitude() {
        let mut n = Noise::new(1);
        for _ in 0..10_000 {
            let x = n.jitter(0.5);
            assert!(x.abs() < 0.5);
        }
    }
}
