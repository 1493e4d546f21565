//! Decoy wake-ups: at random times (a Poisson process), a random device with
//! a push endpoint and no connection is sent a wake-up exactly like a real
//! one, about `push_decoys_per_day` times a day per endpoint. A push service
//! watching its traffic then cannot take every wake-up for an alert, nor a
//! device's quiet for the absence of alerts. What decoys do not hide: a burst
//! of many devices woken within the spread window still stands out against
//! a low decoy rate (README, "Push wake-ups").

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::relay::Relay;
use crate::shutdown::Shutdown;

/// The longest the decoy task waits before counting endpoints again (a relay
/// that starts with none, or gains many, adjusts its rate within this).
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// Tries to find an offline device per decoy: a connected one is skipped
/// (a wake-up it does not need would stand out to whoever watches both).
const PICKS_PER_DECOY: u32 = 4;

/// Sends decoys until shutdown; returns at once when they are disabled.
pub async fn run(relay: Arc<Relay>, mut shutdown: Shutdown) {
    let per_day = relay.config.push_decoys_per_day;
    if per_day == 0 {
        return;
    }
    loop {
        let endpoints = match relay.store.push_endpoint_count().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "counting push endpoints failed");
                0
            }
        };
        // Exponential gaps: decoys at the rate asked, at no fixed rhythm.
        // With no endpoint yet, look again as if there were one.
        let mean_secs = 86_400.0 / (f64::from(per_day) * endpoints.max(1) as f64);
        let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
        let wait = Duration::from_secs_f64((-u.ln() * mean_secs).min(IDLE_RECHECK.as_secs_f64()));
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if endpoints > 0 {
            send_one(&relay, endpoints).await;
        }
    }
}

async fn send_one(relay: &Relay, endpoints: u64) {
    for _ in 0..PICKS_PER_DECOY {
        let index = rand::rng().random_range(0..endpoints);
        match relay.store.push_endpoint_at(index).await {
            Ok(Some(device)) if !relay.hub.is_connected(&device) => {
                relay.push.wake_decoy(device);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "picking a push endpoint failed");
                return;
            }
        }
    }
}
