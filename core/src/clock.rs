//! Wall-clock time in the units the store keeps, and [`Clock`]: the time an
//! account goes by, which tests move forward (a phone off for two days, a
//! timer running out) without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is set before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time an account goes by: the system's, or the system's moved by a
/// shared offset ([`Clock::shifted`]) so that a test can let days pass for a
/// relay and its phones at once. Everything an account dates or checks
/// against the time (messages, certificates, timers, expiries, prunes) reads
/// this one clock.
#[derive(Clone, Default)]
pub struct Clock {
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock { offset: None }
    }

    /// The system's clock plus `offset` milliseconds, read at each call: every
    /// clock made from the same offset moves when it is changed.
    pub fn shifted(offset: Arc<AtomicI64>) -> Self {
        Clock {
            offset: Some(offset),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let shift = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        now_ms().saturating_add(shift)
    }

    /// [`Clock::now_ms`] as the unsigned milliseconds of the wire formats.
    pub fn now_u64(&self) -> u64 {
        u64::try_from(self.now_ms()).unwrap_or(0)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.offset {
            None => f.write_str("Clock::system"),
            Some(o) => write!(f, "Clock::shifted({} ms)", o.load(Ordering::Relaxed)),
        }
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.offset, &other.offset) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_moves_with_its_offset() {
        let offset = Arc::new(AtomicI64::new(0));
        let (a, b) = (
            Clock::shifted(offset.clone()),
            Clock::shifted(offset.clone()),
        );
        let before = a.now_ms();
        offset.fetch_add(48 * 3_600_000, Ordering::Relaxed);
        assert!(b.now_ms() >= before + 48 * 3_600_000);
        assert!(Clock::system().now_ms() < b.now_ms());
        assert_eq!(a, b);
        assert_ne!(a, Clock::system());
    }
}
