//! One flush of the outbox: each envelope on the connection it belongs on —
//! sealed ones (1:1 and multi-recipient) on the anonymous connection
//! (`sealed_link`), identified ones on the logged-in one — and what the
//! relay's answer does to it: confirmed, parked for a full mailbox, written
//! again for a replaced access key, or failed for good.

use std::time::Duration;

use rankfile_proto::v1 as pb;
use tokio::sync::broadcast;

use super::actor::AccountHandle;
use super::client::{refresh_certificate, ClientEvent, DeliveryState};
use super::link::Link;
use super::sealed_link::SealedLink;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::outbox_park::Parked;

/// Outbox envelopes sent to the relay at once, awaiting their durable replies.
const SEND_WINDOW: usize = 64;
/// How long the connection waits for a parked envelope when none is parked.
pub(super) const NO_RETRY: Duration = Duration::from_secs(24 * 3600);

/// The two connections a flush sends on.
#[derive(Clone, Copy)]
pub(super) struct Links<'a> {
    /// Logged in: identified sends, the access key, certificates.
    pub logged_in: &'a Link,
    /// Anonymous: sealed sends.
    pub sealed: &'a SealedLink,
}

/// Sends every outbox envelope, a window at a time, and drops each from the
/// outbox once the relay confirms it is durable. A sealed envelope whose
/// certificate would be dead when the relay stores it (it waited while the
/// phone was offline) is first sealed again with a fresh one. `Ok(false)`
/// when sealed envelopes were held back for the anonymous connection (after
/// a login, or while it fails): they go in a later flush.
pub(super) async fn flush_outbox(
    account: &AccountHandle,
    links: Links<'_>,
    events: &broadcast::Sender<ClientEvent>,
) -> Result<bool> {
    links.sealed.flush_begins().await;
    // Our access key replaced (someone who held it left a committee): the
    // relay hears it first, then those who are to (`access_key`).
    account
        .call(|a| {
            a.check_access_key()?;
            a.send_owed_access_keys()
        })
        .await??;
    if let Some(key) = account.call(|a| a.access_key_for_relay()).await? {
        links
            .logged_in
            .request(pb::client_frame::Body::SetAccessKey(pb::SetAccessKey {
                access_key: key.to_vec(),
            }))
            .await?;
        account.call(move |a| a.access_key_at_relay(&key)).await??;
    }
    // Envelopes refused for a recipient's replaced access key are written
    // again (identified, or one per recipient) and go in the next pass.
    let mut complete = true;
    for _ in 0..ACCESS_REFUSED_PASSES {
        let pass = flush_outbox_once(account, links, events).await?;
        complete &= !pass.held_back;
        if pass.again == 0 {
            break;
        }
    }
    Ok(complete)
}

/// What one pass left.
struct Pass {
    /// Envelopes written again after the relay refused their access key.
    again: usize,
    /// Sealed envelopes left in the outbox for the anonymous connection.
    held_back: bool,
}

/// Passes over the outbox in one flush when envelopes are refused for an
/// access key: a multi-recipient one split per recipient, then one of those
/// sent identified.
const ACCESS_REFUSED_PASSES: usize = 3;

/// One pass of [`flush_outbox`].
async fn flush_outbox_once(
    account: &AccountHandle,
    links: Links<'_>,
    events: &broadcast::Sender<ClientEvent>,
) -> Result<Pass> {
    let ready = |a: &mut Account| {
        if a.outbox_needs_certificate()? {
            return Ok(None);
        }
        a.reseal_stale_outbox()?;
        a.outbox_due().map(Some)
    };
    let outbox = match account.call(ready).await?? {
        Some(outbox) => outbox,
        None => {
            refresh_certificate(account, links.logged_in).await?;
            account.call(ready).await??.unwrap_or_default()
        }
    };
    let mut again = 0;
    let mut held_back = false;
    for window in outbox.chunks(SEND_WINDOW) {
        // Sealed envelopes go on the anonymous connection, or wait for it
        // (after a login, or a failure of it) in the outbox.
        let sealed_link = |high: bool| async move {
            match window
                .iter()
                .any(|d| is_sealed(&d.envelope) && d.envelope.high_priority == high)
            {
                true => links.sealed.link(high).await,
                false => None,
            }
        };
        let (high, normal) = (sealed_link(true).await, sealed_link(false).await);
        held_back |= window.iter().any(|d| {
            let e = &d.envelope;
            is_sealed(e)
                && match e.high_priority {
                    true => high.is_none(),
                    false => normal.is_none(),
                }
        });
        let sends = window.iter().filter_map(|due| {
            let e = &due.envelope;
            let (link, anonymous) = match (is_sealed(e), e.high_priority) {
                (false, _) => (links.logged_in, false),
                (true, true) => (high.as_deref()?, true),
                (true, false) => (normal.as_deref()?, true),
            };
            Some(async move {
                let priority = if e.high_priority {
                    pb::Priority::High
                } else {
                    pb::Priority::Normal
                } as i32;
                let body = if e.multi {
                    pb::client_frame::Body::SendMultiSealed(pb::SendMultiSealed {
                        payload: e.bytes.clone(),
                        access_key: e.access_key.map(|k| k.to_vec()).unwrap_or_default(),
                        priority,
                        only_recipients: due.only.iter().map(|a| a.to_vec()).collect(),
                    })
                } else if e.sealed {
                    pb::client_frame::Body::SendSealed(pb::SendSealed {
                        recipient_account_id: e.recipient.as_bytes().to_vec(),
                        recipient_device_id: e.recipient_device,
                        access_key: e.access_key.map(|k| k.to_vec()).unwrap_or_default(),
                        envelope: e.bytes.clone(),
                        priority,
                    })
                } else {
                    pb::client_frame::Body::Send(pb::SendMessage {
                        recipient_account_id: e.recipient.as_bytes().to_vec(),
                        recipient_device_id: e.recipient_device,
                        envelope: e.bytes.clone(),
                        priority,
                    })
                };
                (e, anonymous, link.request(body).await)
            })
        });
        let mut settled = Vec::with_capacity(window.len());
        let mut parked = Vec::new();
        let mut broken = None;
        let mut stale_key = Vec::new();
        let mut sealed_broke = false;
        for (e, anonymous, result) in futures_util::future::join_all(sends).await {
            let state = match result {
                // The recipient replaced its access key: written again below.
                Err(Error::Relay { code, .. }) if e.sealed && code == "UNAUTHORIZED" => {
                    stale_key.push(e.envelope_id);
                    continue;
                }
                Ok(pb::server_frame::Body::SendResult(r))
                    if r.unknown_recipients.is_empty() && r.full_recipients.is_empty() =>
                {
                    DeliveryState::Sent
                }
                // Stored for everyone else; parked for those whose mailbox is full.
                Ok(pb::server_frame::Body::SendResult(r)) if r.unknown_recipients.is_empty() => {
                    let full = r
                        .full_recipients
                        .iter()
                        .filter_map(|a| <[u8; 16]>::try_from(a.as_slice()).ok())
                        .collect::<Vec<_>>();
                    parked.push((e, full));
                    continue;
                }
                Ok(_) => DeliveryState::Failed {
                    reason: "the relay does not know the recipient".into(),
                },
                // The recipient's mailbox is full: park it, go on with the rest.
                Err(Error::Relay { code, .. }) if code == "QUOTA_EXCEEDED" => {
                    parked.push((e, Vec::new()));
                    continue;
                }
                // Refused for good: drop it from the outbox and say so.
                Err(Error::Relay { code, message }) if permanent(&code) => DeliveryState::Failed {
                    reason: format!("{code}: {message}"),
                },
                // The anonymous connection broke: kept for its next one, the
                // logged-in connection unharmed.
                Err(_) if anonymous => {
                    sealed_broke = true;
                    continue;
                }
                // Anything else (the link broke): keep it for the next connection.
                Err(other) => {
                    broken.get_or_insert(other);
                    continue;
                }
            };
            settled.push((e, state));
        }
        for (e, full) in parked {
            let full: Vec<[u8; 16]> = full;
            let id = e.envelope_id;
            let outcome = account.call(move |a| a.park_outbox(&id, &full)).await??;
            if outcome == Parked::GaveUp {
                settled.push((
                    e,
                    DeliveryState::Failed {
                        reason: "the recipient's mailbox stayed full".into(),
                    },
                ));
            }
        }
        // One transaction for the whole window's confirmations, one for its
        // refusals (a refused sender key is sent again).
        let (sent, refused): (Vec<_>, Vec<_>) = settled
            .iter()
            .partition(|(_, state)| *state == DeliveryState::Sent);
        let sent: Vec<_> = sent.iter().map(|(e, _)| e.envelope_id).collect();
        let refused: Vec<_> = refused.iter().map(|(e, _)| e.envelope_id).collect();
        account
            .call(move |a| {
                a.confirm_sent_all(&sent)?;
                match refused.is_empty() {
                    true => Ok(0),
                    false => a.refused_sent_all(&refused),
                }
            })
            .await??;
        for (e, state) in settled {
            let _ = events.send(ClientEvent::Delivery {
                envelope_id: e.envelope_id,
                recipient: e.recipient,
                state,
            });
        }
        if !stale_key.is_empty() {
            again += account
                .call(move |a| a.access_refused(&stale_key))
                .await??;
        }
        if sealed_broke {
            links.sealed.broke().await;
        }
        if let Some(e) = broken {
            return Err(e);
        }
    }
    Ok(Pass { again, held_back })
}

/// When the outbox next has a parked envelope due, as a deadline for the
/// connection's loop (far off when none is parked).
async fn next_retry(account: &AccountHandle) -> Result<tokio::time::Instant> {
    let wait = account
        .call(|a| {
            let now = a.clock.now_ms();
            a.outbox_next_due()
                .map(|due| due.map(|d| d.saturating_sub(now)))
        })
        .await??;
    let wait = wait.map_or(NO_RETRY, |ms| {
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    });
    Ok(tokio::time::Instant::now() + wait)
}

/// When the connection's loop should flush again: a parked envelope due, or
/// sealed ones held back for the anonymous connection.
pub(super) async fn next_wake(
    account: &AccountHandle,
    sealed: &SealedLink,
) -> Result<tokio::time::Instant> {
    let parked = next_retry(account).await?;
    Ok(match sealed.wake_at().await {
        Some(at) => parked.min(at),
        None => parked,
    })
}

/// Relay refusals that retrying will not cure.
fn permanent(code: &str) -> bool {
    matches!(
        code,
        "NOT_FOUND" | "UNAUTHORIZED" | "TOO_LARGE" | "MALFORMED"
    )
}

/// Whether an envelope goes on the anonymous connection.
fn is_sealed(e: &crate::send::OutgoingEnvelope) -> bool {
    e.sealed || e.multi
}
