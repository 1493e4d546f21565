//! What the relay can tell about who sends, counted: sealed sends and bundle
//! fetches by the kind of connection they arrived on. A sealed send on a
//! logged-in connection tells the relay its sender (the connection's
//! account); one on an anonymous connection does not. Counters only, never
//! per-message records; operators and tests read them from the handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the relay started.
#[derive(Debug, Default)]
pub struct Traffic {
    sealed_on_device: AtomicU64,
    sealed_on_anonymous: AtomicU64,
    fetches_on_device: AtomicU64,
    fetches_on_anonymous: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrafficStats {
    /// Sealed sends (1:1 and multi-recipient) that came on a logged-in
    /// connection: the relay saw their sender.
    pub sealed_on_device: u64,
    /// Sealed sends that came on an anonymous connection.
    pub sealed_on_anonymous: u64,
    /// Bundle fetches by a logged-in device (the relay saw who asked for whom).
    pub fetches_on_device: u64,
    /// Bundle fetches authorised by an access key on an anonymous connection.
    pub fetches_on_anonymous: u64,
}

impl Traffic {
    /// Counts a sealed send; `anonymous` is the connection's kind.
    pub fn sealed(&self, anonymous: bool) {
        let c = match anonymous {
            true => &self.sealed_on_anonymous,
            false => &self.sealed_on_device,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a bundle fetch; `anonymous` is the connection's kind.
    pub fn fetch(&self, anonymous: bool) {
        let c = match anonymous {
            true => &self.fetches_on_anonymous,
            false => &self.fetches_on_device,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> TrafficStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrafficStats {
            sealed_on_device: get(&self.sealed_on_device),
            sealed_on_anonymous: get(&self.sealed_on_anonymous),
            fetches_on_device: get(&self.fetches_on_device),
            fetches_on_anonymous: get(&self.fetches_on_anonymous),
        }
    }
}
