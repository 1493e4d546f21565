//! [`Clock`]: the time the relay goes by — the system's, or the system's
//! moved by a shared offset, so that a test can let days pass for a relay and
//! its phones at once (the core's `Clock::shifted` takes the same offset).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::frame::now_ms;

/// The relay's time: stamps on stored messages, sender certificates' lifetimes,
/// expiries and sweeps all read it.
#[derive(Clone, Default)]
pub struct Clock {
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock plus `offset` milliseconds, read at each call.
    pub fn shifted(offset: Arc<AtomicI64>) -> Self {
        Clock {
            offset: Some(offset),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let shift = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        now_ms().saturating_add_signed(shift)
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
