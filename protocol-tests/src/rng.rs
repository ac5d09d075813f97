//! A small xorshift generator for fault schedules: tests need variety and,
//! with a fixed seed, repeatability, not security.

use std::sync::atomic::{AtomicU64, Ordering};

/// Xorshift64. Never zero inside.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that repeats for the same `seed`.
    pub fn from_seed(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator seeded from the clock, different on every call.
    pub fn seeded() -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(t ^ SEQ.fetch_add(0x9E37_79B9, Ordering::Relaxed) | 1)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}
