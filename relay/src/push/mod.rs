//! Push wake-ups, UnifiedPush / Web Push style (RFC 8030): when a
//! high-priority message is stored for a device that is not connected, the
//! relay POSTs an empty wake-up to the URL the device registered, and the
//! device connects and fetches its mail as usual.
//!
//! The rule: only `Priority::High` wakes, and only a device with no connection
//! at the moment of the commit; normal messages wait until the device next
//! connects by itself. The wake-up is decided on the store's writer thread
//! right after the commit (so the message is durable before anything is
//! posted) and only queued there: the posting happens on tasks of its own,
//! at most `push_concurrency` at once, each bounded by `push_timeout_secs`,
//! retried with backoff on 5xx and timeouts. A slow or hostile endpoint
//! therefore holds up nothing but its own wake-up, and never a send.
//!
//! What leaves the relay is the same for every wake-up: no content, no sender,
//! no committee, no message ID. A device is woken at most once per
//! `push_coalesce_ms` (several alerts in a burst make one wake-up) until it
//! connects. An endpoint that answers 404 or 410 is forgotten.
//!
//! Wake-ups are not persisted: one queued when the relay stops is lost, and the
//! message waits for the device's next connection like any other.
//!
//! So that a push service watching its traffic does not see a whole roster
//! woken at one instant (an alert), each wake-up waits a uniformly random
//! delay within `push_spread_ms` before it is posted; and `decoy` sends
//! wake-ups, identical to real ones, to random offline devices at random times.

mod decoy;
mod endpoint;
mod http;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rankfile_proto::v1::{self as pb, server_frame::Body as Out};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::Config;
use crate::error::Result;
use crate::frame::Reply;
use crate::relay::Relay;
use crate::shutdown::Shutdown;
use crate::storage::{MailboxId, RelayStore};

pub use decoy::run as run_decoys;
pub use endpoint::MAX_URL_LEN;
use http::Outcome;

/// Wake-ups waiting for a free posting slot, at most; past that they are
/// dropped (and counted), never blocking the writer thread that queues them.
const QUEUE: usize = 16 * 1024;
/// Tries per wake-up: the first and up to three retries.
const MAX_ATTEMPTS: u32 = 4;
/// The pause before the first retry; it doubles after each.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// Devices remembered for coalescing before old entries are swept.
const MAX_RECENT: usize = 100_000;
/// How often the counters go to the log (when they changed).
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Wake-up counters since the relay started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushStats {
    /// Wake-ups queued for posting (one per device and coalescing window).
    pub queued: u64,
    /// Wake-ups folded into an earlier one for the same device.
    pub coalesced: u64,
    /// Wake-ups dropped because the queue was full.
    pub dropped: u64,
    /// Wake-ups an endpoint accepted (2xx).
    pub sent: u64,
    /// Wake-ups given up on: refused, or still failing after every retry.
    pub failed: u64,
    /// Endpoints forgotten because they answered 404 or 410.
    pub gone: u64,
    /// Decoy wake-ups queued (also counted in `queued`).
    pub decoys: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    coalesced: AtomicU64,
    dropped: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    gone: AtomicU64,
    decoys: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The wake-up service: the queue the writer thread feeds, coalescing state,
/// counters, and what the posting tasks need.
pub struct Push {
    queue: mpsc::Sender<MailboxId>,
    receiver: Mutex<Option<mpsc::Receiver<MailboxId>>>,
    // A std Mutex: held only for a map operation, never across an await.
    recent: Mutex<HashMap<MailboxId, Instant>>,
    counters: Counters,
    tls: TlsConnector,
    allow_local: bool,
    concurrency: usize,
    timeout: Duration,
    coalesce: Duration,
    spread: Duration,
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Push {
    /// A service configured from `config`; nothing is posted until [`run`] runs.
    pub fn new(config: &Config) -> Result<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Ok(Push {
            queue,
            receiver: Mutex::new(Some(receiver)),
            recent: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            tls: http::tls_connector()?,
            allow_local: config.push_allow_http,
            concurrency: config.push_concurrency.max(1),
            timeout: Duration::from_secs(config.push_timeout_secs.max(1)),
            coalesce: Duration::from_millis(config.push_coalesce_ms),
            spread: Duration::from_millis(config.push_spread_ms),
        })
    }

    /// Queues a wake-up for each device (high-priority mail just committed, no
    /// connection), unless one went to it within the coalescing window. Never
    /// blocks: it runs on the store's writer thread.
    pub fn wake(&self, devices: Vec<MailboxId>) {
        self.queue_wakes(devices, false);
    }

    fn queue_wakes(&self, devices: Vec<MailboxId>, decoy: bool) {
        if devices.is_empty() {
            return;
        }
        let now = Instant::now();
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        if recent.len() >= MAX_RECENT {
            let window = self.coalesce;
            recent.retain(|_, at| now.saturating_duration_since(*at) < window);
        }
        for device in devices {
            if let Some(at) = recent.get(&device) {
                if now.saturating_duration_since(*at) < self.coalesce {
                    bump(&self.counters.coalesced);
                    continue;
                }
            }
            match self.queue.try_send(device) {
                Ok(()) => {
                    recent.insert(device, now);
                    bump(&self.counters.queued);
                    if decoy {
                        bump(&self.counters.decoys);
                    }
                }
                Err(_) => bump(&self.counters.dropped),
            }
        }
    }

    /// Queues a decoy wake-up for `device`: posted exactly like a real one
    /// (and coalesced like one), counted apart.
    pub fn wake_decoy(&self, device: MailboxId) {
        self.queue_wakes(vec![device], true);
    }

    /// The device has connected: its next wake-up need not wait out the window.
    pub fn connected(&self, device: &MailboxId) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.remove(device);
        }
    }

    /// The counters now.
    pub fn stats(&self) -> PushStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PushStats {
            queued: get(&c.queued),
            coalesced: get(&c.coalesced),
            dropped: get(&c.dropped),
            sent: get(&c.sent),
            failed: get(&c.failed),
            gone: get(&c.gone),
            decoys: get(&c.decoys),
        }
    }
}

/// SetPushEndpoint: registers (or, with an empty URL, clears) the device's endpoint.
pub async fn set_endpoint(relay: &Relay, me: MailboxId, req: pb::SetPushEndpoint) -> Reply {
    let url = if req.url.is_empty() {
        None
    } else {
        endpoint::parse(&req.url, relay.config.push_allow_http)?;
        Some(req.url)
    };
    relay
        .store
        .set_push_endpoint(me, url, relay.now_ms())
        .await?;
    Ok(Out::Ok(pb::Ok {}))
}

/// Posts queued wake-ups, at most `push_concurrency` at once, until shutdown;
/// then drops whatever is still in flight.
pub async fn run(push: Arc<Push>, store: Arc<dyn RelayStore>, mut shutdown: Shutdown) {
    let receiver = push.receiver.lock().ok().and_then(|mut r| r.take());
    let Some(mut queue) = receiver else {
        return;
    };
    let slots = Arc::new(Semaphore::new(push.concurrency));
    let mut posting = JoinSet::new();
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = push.stats();
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            Some(_) = posting.join_next(), if !posting.is_empty() => {}
            _ = report.tick() => {
                let now = push.stats();
                if now != reported {
                    log_stats(&now);
                    reported = now;
                }
            }
            device = queue.recv() => {
                let Some(device) = device else { break };
                // Wake-ups waiting out their spread or a slot are bounded
                // like the queue; past that they are dropped, never blocking.
                if posting.len() >= QUEUE {
                    bump(&push.counters.dropped);
                    continue;
                }
                let delay = random_delay(push.spread);
                let (push, store, slots) = (push.clone(), store.clone(), slots.clone());
                posting.spawn(async move {
                    // Spread: a roster woken by one alert leaves over a
                    // window, not at one instant; the slot is taken after,
                    // so waiting holds none.
                    tokio::time::sleep(delay).await;
                    let Ok(slot) = slots.acquire_owned().await else { return };
                    deliver(&push, store.as_ref(), device).await;
                    drop(slot);
                });
            }
        }
    }
    posting.abort_all();
    let now = push.stats();
    if now != reported {
        log_stats(&now);
    }
}

/// A uniformly random delay in `[0, spread)`.
fn random_delay(spread: Duration) -> Duration {
    use rand::Rng;
    let max = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rand::rng().random_range(0..max))
}

fn log_stats(s: &PushStats) {
    tracing::info!(
        queued = s.queued,
        sent = s.sent,
        failed = s.failed,
        gone = s.gone,
        coalesced = s.coalesced,
        dropped = s.dropped,
        decoys = s.decoys,
        "push wake-ups"
    );
}

/// Posts one device's wake-up, retrying transient failures with backoff.
async fn deliver(push: &Push, store: &dyn RelayStore, device: MailboxId) {
    let url = match store.push_endpoint(device).await {
        Ok(Some(url)) => url,
        // No endpoint registered: nothing to wake, nothing failed.
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "reading a push endpoint failed");
            bump(&push.counters.failed);
            return;
        }
    };
    // Checked at registration; checked again in case the relay's settings
    // changed since (local endpoints no longer allowed).
    let Ok(endpoint) = endpoint::parse(&url, push.allow_local) else {
        tracing::debug!(?device, "stored push endpoint no longer acceptable");
        bump(&push.counters.failed);
        return;
    };
    let mut pause = RETRY_BASE;
    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = tokio::time::timeout(
            push.timeout,
            http::post(&endpoint, &push.tls, push.allow_local),
        )
        .await
        .unwrap_or_else(|_| Outcome::Transient("timed out".into()));
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(?device, attempt, "wake-up sent");
                bump(&push.counters.sent);
                return;
            }
            Outcome::Gone => {
                tracing::debug!(?device, "push endpoint gone; forgetting it");
                if let Err(e) = store.remove_push_endpoint(device, url).await {
                    tracing::warn!(error = %e, "forgetting a push endpoint failed");
                }
                bump(&push.counters.gone);
                return;
            }
            Outcome::Refused(status) => {
                tracing::debug!(?device, status, "push endpoint refused the wake-up");
                bump(&push.counters.failed);
                return;
            }
            Outcome::Transient(why) => {
                tracing::debug!(?device, attempt, reason = %why, "wake-up failed");
                if attempt < MAX_ATTEMPTS {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
    bump(&push.counters.failed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> MailboxId {
        MailboxId {
            account: [n; 20],
            device: 1,
        }
    }

    #[test]
    fn wake_ups_are_spread_within_the_window() {
        let spread = Duration::from_secs(2);
        let delays: Vec<Duration> = (0..200).map(|_| random_delay(spread)).collect();
        assert!(delays.iter().all(|d| *d < spread));
        // Spread, not one instant: both halves of the window are used.
        assert!(delays.iter().any(|d| *d < spread / 2));
        assert!(delays.iter().any(|d| *d >= spread / 2));
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
    }

    fn push(coalesce_ms: u64) -> Push {
        Push::new(&Config {
            push_coalesce_ms: coalesce_ms,
            ..Config::default()
        })
        .expect("push")
    }

    #[tokio::test]
    async fn a_burst_for_one_device_makes_one_wake_up() {
        let p = push(60_000);
        p.wake(vec![device(1), device(1), device(2)]);
        p.wake(vec![device(1)]);
        let s = p.stats();
        assert_eq!((s.queued, s.coalesced, s.dropped), (2, 2, 0));
        let mut rx = p.receiver.lock().expect("lock").take().expect("receiver");
        assert_eq!(rx.try_recv().ok(), Some(device(1)));
        assert_eq!(rx.try_recv().ok(), Some(device(2)));
        assert!(rx.try_recv().is_err());
        // Connecting resets the window.
        p.connected(&device(1));
        p.wake(vec![device(1)]);
        assert_eq!(p.stats().queued, 3);
    }

    #[tokio::test]
    async fn no_window_no_coalescing() {
        let p = push(0);
        p.wake(vec![device(1), device(1)]);
        assert_eq!(p.stats().queued, 2);
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking() {
        let p = push(0);
        let many: Vec<MailboxId> = (0..QUEUE + 3).map(|_| device(1)).collect();
        p.wake(many);
        let s = p.stats();
        assert_eq!((s.queued, s.dropped), (QUEUE as u64, 3));
    }
}
