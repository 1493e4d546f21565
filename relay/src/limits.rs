//! Fixed protocol limits, and the token bucket that rate-limits bundle fetches.
//!
//! Limits that operators may tune live in `Config`; these are the relay's fixed
//! ones, and those of the wire protocol itself (from `rankfile_proto::wire`).

use std::time::{Duration, Instant};

// The limits both sides of the wire agree on.
pub use rankfile_proto::wire::{
    ACCESS_KEY_LEN, ACCOUNT_ID_LEN, CHALLENGE_LEN, MAX_ATTACHMENT_CHUNK, MAX_DEVICE_ID,
    MAX_FRAME_BYTES,
};

/// WebSocket read buffer: small, because most connections sit idle and each one
/// keeps this much allocated; it grows on demand for a large frame.
pub const WS_READ_BUFFER: usize = 1024;

/// Frames a client may send before authenticating that are refused with
/// NOT_AUTHENTICATED before the relay hangs up on it.
pub const MAX_UNAUTHENTICATED_REFUSALS: u32 = 3;

/// Requests one connection may have in flight (waiting for a commit) before the
/// relay stops reading its frames: a bounded per-connection queue.
pub const MAX_PENDING_REQUESTS: usize = 64;

/// One-time prekeys of each kind a device may hold in the directory.
pub const MAX_ONE_TIME_PREKEYS: u32 = 1000;

/// One-time prekeys of each kind accepted in one upload.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 200;

/// A classic token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, per_second: f64) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second,
            last: Instant::now(),
        }
    }

    /// A full bucket of `capacity` units (bytes, say), refilled at `per_second`.
    pub fn with_capacity(capacity: f64, per_second: f64) -> Self {
        TokenBucket {
            tokens: capacity,
            burst: capacity,
            per_second,
            last: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.take_n(1.0, now)
    }

    /// Takes `n` tokens at once, or none and says how long until `n` are there.
    pub fn take_n(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else if self.per_second <= 0.0 || n > self.burst {
            Err(Duration::from_secs(3600))
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / self.per_second))
        }
    }

    /// Whether the bucket is full again (and can be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let start = Instant::now();
        let mut b = TokenBucket::new(2, 1.0);
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        let wait = b.take(start).expect_err("empty");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert!(b.take(start + Duration::from_secs(1)).is_ok());
        assert!(b.is_full(start + Duration::from_secs(10)));
    }
}
