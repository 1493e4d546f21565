//! Reconnection delays: exponential with full jitter, so a relay that comes
//! back after an outage is not hit by every phone at the same instant.

use std::time::Duration;

use rand::Rng;

/// First delay's upper bound.
const BASE: Duration = Duration::from_millis(200);
/// Largest delay.
const CAP: Duration = Duration::from_secs(60);

/// Delays for successive reconnection attempts.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The next delay: uniform in [0, min(CAP, BASE · 2^attempt)].
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = BASE.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    /// A connection succeeded: start again from the smallest delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_and_reset() {
        let mut b = Backoff::default();
        for attempt in 0..40u32 {
            let d = b.next_delay();
            let ceiling = BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        assert!(b.attempt >= 40);
        b.reset();
        assert!(b.next_delay() <= BASE);
    }

    #[test]
    fn delays_are_jittered() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff { attempt: 8 };
            seen.insert(b.next_delay());
        }
        assert!(seen.len() > 10, "delays should differ between phones");
    }
}
