//! Abuse limits every connection shares: token-bucket rate limiters keyed by
//! sender, target account or source address, and the accounting of anonymous
//! connection slots (per address, and the slots kept for logged-in devices).
//!
//! Everything here is in memory and per relay process: a restart forgets it,
//! which only ever lets an abuser start afresh with full buckets, never locks
//! out an honest device. Each map forgets full buckets once it grows large, so
//! an attacker inventing keys cannot grow it without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rankfile_proto::v1::error::Code;

use crate::config::Config;
use crate::frame::Refusal;
use crate::limits::TokenBucket;
use crate::storage::{AccountId, MailboxId};

/// Entries a limiter map holds before it forgets buckets that are full again:
/// bounds the memory an attacker inventing keys can make the relay hold.
const MAX_TRACKED_KEYS: usize = 100_000;

/// Token buckets, one per key, all with the same burst and refill.
#[derive(Debug)]
pub struct RateLimiter<K> {
    burst: u32,
    per_second: f64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// `burst` at once, then `per_hour` regained evenly over an hour.
    pub fn per_hour(burst: u32, per_hour: u32) -> Self {
        RateLimiter {
            burst,
            per_second: f64::from(per_hour) / 3600.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `burst` at once, then `per_minute` regained evenly over a minute.
    pub fn per_minute(burst: u32, per_minute: u32) -> Self {
        Self::per_hour(burst, per_minute.saturating_mul(60))
    }

    /// Takes a token for `key`, or refuses with RATE_LIMITED and when to retry.
    pub fn check(&self, key: K) -> Result<(), Refusal> {
        let now = Instant::now();
        // A poisoned lock means a panic elsewhere; limiting is not worth a
        // second one, and the relay's other limits still hold.
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TRACKED_KEYS {
            buckets.retain(|_, b| !b.is_full(now));
        }
        let (burst, per_second) = (self.burst, self.per_second);
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(burst, per_second))
            .take(now)
            .map_err(Refusal::rate_limited)
    }
}

/// The relay's shared abuse limits, built from its configuration.
#[derive(Debug)]
pub struct Guard {
    /// Identified sends (`SendMessage`) per sending device.
    pub identified_sends: RateLimiter<MailboxId>,
    /// New devices (a first Auth) per source address.
    pub registrations: RateLimiter<IpAddr>,
    /// One-time prekeys handed out per target account.
    pub one_time_prekeys: RateLimiter<AccountId>,
    /// Open connections, whatever their role.
    open: Arc<AtomicUsize>,
    /// Anonymous connections per source address.
    anonymous: Mutex<HashMap<IpAddr, u32>>,
    max_connections: usize,
    reserved_for_devices: usize,
    anonymous_per_address: u32,
}

impl Guard {
    /// Limits as configured.
    pub fn new(config: &Config) -> Self {
        Guard {
            identified_sends: RateLimiter::per_minute(
                config.identified_send_burst,
                config.identified_sends_per_minute,
            ),
            registrations: RateLimiter::per_hour(
                config.registration_burst,
                config.registrations_per_hour,
            ),
            one_time_prekeys: RateLimiter::per_hour(
                config.one_time_prekey_burst,
                config.one_time_prekeys_per_hour,
            ),
            open: Arc::new(AtomicUsize::new(0)),
            anonymous: Mutex::new(HashMap::new()),
            max_connections: config.max_connections,
            reserved_for_devices: config.reserved_device_slots,
            anonymous_per_address: config.anonymous_per_address,
        }
    }

    /// Counts a connection open until the returned token is dropped.
    pub fn opened(&self) -> OpenToken {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenToken(self.open.clone())
    }

    /// Lets a connection turn anonymous, or says why not: the address has its
    /// share of anonymous connections, or only the slots kept for logged-in
    /// devices are left. Undo with [`Guard::anonymous_closed`].
    pub fn anonymous_opened(&self, from: IpAddr) -> Result<(), Refusal> {
        // `open` counts this connection already.
        let open = self.open.load(Ordering::Relaxed);
        if open
            > self
                .max_connections
                .saturating_sub(self.reserved_for_devices)
        {
            return Err(Refusal::new(
                Code::Busy,
                "no anonymous connection slots left",
            ));
        }
        let Ok(mut map) = self.anonymous.lock() else {
            return Ok(());
        };
        let n = map.entry(from).or_insert(0);
        if *n >= self.anonymous_per_address {
            return Err(Refusal::new(
                Code::Busy,
                "too many anonymous connections from one address",
            ));
        }
        *n += 1;
        Ok(())
    }

    /// An anonymous connection from `from` has ended.
    pub fn anonymous_closed(&self, from: IpAddr) {
        if let Ok(mut map) = self.anonymous.lock() {
            if let Some(n) = map.get_mut(&from) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&from);
                }
            }
        }
    }
}

/// Held by each open connection; dropping it counts the connection closed.
#[derive(Debug)]
pub struct OpenToken(Arc<AtomicUsize>);

impl Drop for OpenToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_connections: 10,
            reserved_device_slots: 3,
            anonymous_per_address: 2,
            ..Config::default()
        }
    }

    #[test]
    fn limiter_is_per_key() {
        let l = RateLimiter::per_hour(2, 1);
        assert!(l.check(1u8).is_ok());
        assert!(l.check(1).is_ok());
        assert_eq!(l.check(1).map_err(|r| r.code), Err(Code::RateLimited));
        assert!(l.check(2).is_ok());
    }

    #[test]
    fn anonymous_capped_per_address_and_released() {
        let g = Guard::new(&config());
        let a: IpAddr = [10, 0, 0, 1].into();
        let _t: Vec<_> = (0..3).map(|_| g.opened()).collect();
        assert!(g.anonymous_opened(a).is_ok());
        assert!(g.anonymous_opened(a).is_ok());
        assert_eq!(g.anonymous_opened(a).map_err(|r| r.code), Err(Code::Busy));
        assert!(g.anonymous_opened([10, 0, 0, 2].into()).is_ok());
        g.anonymous_closed(a);
        assert!(g.anonymous_opened(a).is_ok());
    }

    #[test]
    fn last_slots_kept_for_devices() {
        let g = Guard::new(&config());
        let mut tokens: Vec<_> = (0..7).map(|_| g.opened()).collect();
        assert!(g.anonymous_opened([10, 0, 0, 1].into()).is_ok());
        tokens.push(g.opened());
        assert_eq!(
            g.anonymous_opened([10, 0, 0, 2].into()).map_err(|r| r.code),
            Err(Code::Busy)
        );
        drop(tokens);
        let _one = g.opened();
        assert!(g.anonymous_opened([10, 0, 0, 2].into()).is_ok());
    }
}
