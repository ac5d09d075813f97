//! Exponential backoff with jitter, as the Java client computes
//! `reconnect.backoff.ms` / `reconnect.backoff.max.ms` (KIP-144) and
//! `retry.backoff.ms` / `retry.backoff.max.ms` (KIP-580): base x 2^(n-1),
//! capped, times a random factor in [0.8, 1.2].

use std::time::Duration;

/// The wait before attempt number `failures + 1` (`failures` >= 1).
pub(crate) fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 || base.is_zero() {
        return Duration::ZERO;
    }
    let exp = failures.saturating_sub(1).min(31);
    let raw = base.saturating_mul(1u32 << exp).min(max.max(base));
    let jitter = 0.8 + 0.4 * unit_random();
    raw.mul_f64(jitter).min(max.max(base).mul_f64(1.2))
}

/// A number in [0, 1) from the OS; 0.5 if the OS has none to give.
fn unit_random() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / (f64::from(u32::MAX) + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_within_jitter() {
        let base = Duration::from_millis(50);
        let max = Duration::from_millis(1000);
        assert_eq!(backoff(base, max, 0), Duration::ZERO);
        for (n, nominal) in [
            (1, 50u64),
            (2, 100),
            (3, 200),
            (5, 800),
            (6, 1000),
            (40, 1000),
        ] {
            let b = backoff(base, max, n).as_secs_f64() * 1000.0;
            let nominal = nominal as f64;
            assert!(
                b >= nominal * 0.8 - 1e-6 && b <= nominal * 1.2 + 1e-6,
                "{n}: {b}"
            );
        }
    }
}
