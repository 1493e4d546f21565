//! The anonymous connection that sealed traffic goes on: sealed 1:1 and
//! multi-recipient sends, and bundle fetches authorised by an access key.
//! It logs in as `Anonymous`, so the relay cannot tie what arrives on it to
//! the account whose logged-in connection it knows; that connection carries
//! only what must name its account (identified sends, acknowledgements,
//! prekeys, certificates).
//!
//! Not tied to the login in time: it lives apart from the logged-in
//! connection (it survives a reconnect of that one and is not opened with
//! it), and after each login the outbox's ordinary sealed envelopes wait a
//! random moment before they go, so a phone coming online does not send its
//! backlog within milliseconds of naming itself. High-priority envelopes (an
//! alert's cascade) never wait for that. It is closed after a short idle
//! spell (before the relay's own idle limit for anonymous connections) and
//! replaced after a few minutes with a random spread, so one connection does
//! not group a whole day's sends.
//!
//! Its failures never break the logged-in connection: what could not be sent
//! stays in the outbox and is tried again after a backoff.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::link::{self, Link, RelayAddress};
use crate::error::Result;

/// The random wait, after a login, before the outbox's ordinary sealed
/// envelopes go: longer than the login's own exchanges, short enough that a
/// message written offline still leaves within seconds.
const AFTER_LOGIN_MS: RangeInclusive<u64> = 300..=3_000;
/// Closed after this long unused: under the relay's 30 s idle limit for
/// anonymous connections, so a send never meets a connection the relay has
/// just dropped.
const IDLE: Duration = Duration::from_secs(20);
/// Replaced after this long in use (plus up to the same again, at random).
const LIFETIME: Duration = Duration::from_secs(5 * 60);
/// First wait after the connection failed; doubles to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The client's anonymous connection, opened when first needed.
pub(super) struct SealedLink {
    relay: RelayAddress,
    state: Mutex<State>,
}

struct State {
    open: Option<Open>,
    /// Ordinary sealed envelopes wait until then (set at each login).
    quiet_until: Instant,
    /// The last flush held envelopes back (for `quiet_until` or a failure):
    /// the connection's loop flushes again at [`SealedLink::wake_at`].
    held_back: bool,
    /// After a failure, no attempt before this.
    retry_at: Option<Instant>,
    backoff: Duration,
}

struct Open {
    link: Arc<Link>,
    last_used: Instant,
    replace_at: Instant,
}

impl SealedLink {
    pub(super) fn new(relay: RelayAddress) -> Self {
        SealedLink {
            relay,
            state: Mutex::new(State {
                open: None,
                quiet_until: Instant::now(),
                held_back: false,
                retry_at: None,
                backoff: FIRST_BACKOFF,
            }),
        }
    }

    /// The logged-in connection has just logged in: ordinary sealed sends
    /// wait a random moment.
    pub(super) async fn logged_in(&self) {
        let wait = rand::rng().random_range(AFTER_LOGIN_MS);
        let mut s = self.state.lock().await;
        s.quiet_until = Instant::now() + Duration::from_millis(wait);
    }

    /// The connection to send on now, opened if need be; `None` while
    /// envelopes of this priority must wait (after a login, or a failure),
    /// the loop being told when to try again.
    pub(super) async fn link(&self, high_priority: bool) -> Option<Arc<Link>> {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        if s.retry_at.is_some_and(|at| now < at) || (!high_priority && now < s.quiet_until) {
            s.held_back = true;
            return None;
        }
        if let Some(open) = &mut s.open {
            let usable = open.link.is_open()
                && now.duration_since(open.last_used) < IDLE
                && now < open.replace_at;
            if usable {
                open.last_used = now;
                return Some(open.link.clone());
            }
            s.open = None;
        }
        match self.connect().await {
            Ok(link) => {
                let link = Arc::new(link);
                let spread = rand::rng().random_range(0..=LIFETIME.as_millis() as u64);
                s.open = Some(Open {
                    link: link.clone(),
                    last_used: now,
                    replace_at: now + LIFETIME + Duration::from_millis(spread),
                });
                s.retry_at = None;
                s.backoff = FIRST_BACKOFF;
                Some(link)
            }
            Err(e) => {
                tracing::debug!("anonymous connection failed: {e}");
                fail(&mut s, now);
                None
            }
        }
    }

    async fn connect(&self) -> Result<Link> {
        let (ws, _) = link::open(&self.relay).await?;
        let (link, _deliveries, _) = link::start(ws, None).await?;
        Ok(link)
    }

    /// A request on the connection failed in transit: it is dropped, and
    /// what it carried waits for the backoff.
    pub(super) async fn broke(&self) {
        let mut s = self.state.lock().await;
        s.open = None;
        fail(&mut s, Instant::now());
    }

    /// A flush begins: what it holds back is what [`SealedLink::wake_at`]
    /// answers for (flushes run one at a time).
    pub(super) async fn flush_begins(&self) {
        self.state.lock().await.held_back = false;
    }

    /// When the loop should flush again for envelopes the last flush held
    /// back (`None`: it held nothing back).
    pub(super) async fn wake_at(&self) -> Option<Instant> {
        let s = self.state.lock().await;
        if !s.held_back {
            return None;
        }
        Some(s.retry_at.unwrap_or(s.quiet_until).max(s.quiet_until))
    }
}

fn fail(s: &mut State, now: Instant) {
    s.retry_at = Some(now + s.backoff);
    s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
    s.held_back = true;
}
