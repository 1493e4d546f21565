//! [`Client`] methods for channel messages — posts with replies and
//! attachments, edits, deletes, the disappearing timer — and the upkeep task
//! that deletes expired messages on time, online or not (and runs the alert
//! upkeep).

use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use uuid::Uuid;

use super::actor::AccountHandle;
use super::client::{Client, Command};
use crate::account::Account;
use crate::account_id::AccountId;
use crate::channel::Draft;
use crate::committee::{ChannelId, CommitteeId};
use crate::committee_ops::CommitteeChange;
use crate::error::{Error, Result};
use crate::send::OutgoingEnvelope;

/// The longest the purger sleeps without being woken: it sleeps until the
/// next expiry, and is woken whenever this device stores a channel message
/// (one that may carry a shorter timer); this only bounds clock drift.
const PURGE_IDLE: Duration = Duration::from_secs(3600);
/// The shortest pause between purges (after one that failed).
const PURGE_PAUSE: Duration = Duration::from_millis(50);

impl Client {
    /// Posts a message (text, reply, attachments) in a committee channel,
    /// like [`Client::post`].
    pub async fn post_message(
        &self,
        committee: CommitteeId,
        channel: ChannelId,
        draft: Draft,
    ) -> Result<OutgoingEnvelope> {
        self.send_in_channel(committee, channel, move |a, distribution, recipients| {
            a.send_channel_message(channel, distribution, recipients, &draft)
        })
        .await
    }

    /// Edits one of our channel messages (by local ID) on every member's device.
    pub async fn edit_message(&self, message_id: i64, text: String) -> Result<OutgoingEnvelope> {
        let (committee, channel) = self
            .account
            .call(move |a| a.message_committee(message_id))
            .await??;
        self.send_in_channel(committee, channel, move |a, distribution, recipients| {
            a.send_channel_edit(distribution, recipients, message_id, &text)
        })
        .await
    }

    /// Deletes one of our channel messages (by local ID) on every member's device.
    pub async fn delete_message(&self, message_id: i64) -> Result<OutgoingEnvelope> {
        let (committee, channel) = self
            .account
            .call(move |a| a.message_committee(message_id))
            .await??;
        self.send_in_channel(committee, channel, move |a, distribution, recipients| {
            a.send_channel_delete(distribution, recipients, message_id)
        })
        .await
    }

    /// Sets a channel's disappearing timer (an organizer's change to the log).
    pub async fn set_channel_timer(
        &self,
        committee: CommitteeId,
        channel: ChannelId,
        secs: u32,
    ) -> Result<CommitteeChange> {
        let change = self
            .account
            .call(move |a| a.set_channel_timer(&committee, &channel, secs))
            .await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        Ok(change)
    }

    /// Opens sessions with members we have none with, makes sure every
    /// member holds our sender key (sent and confirmed by the relay first when
    /// some lacked it), then sends under it — as [`Client::post`] does.
    pub(super) async fn send_in_channel<F>(
        &self,
        committee: CommitteeId,
        channel: ChannelId,
        send: F,
    ) -> Result<OutgoingEnvelope>
    where
        F: FnOnce(&mut Account, Uuid, &[AccountId]) -> Result<OutgoingEnvelope> + Send + 'static,
    {
        let missing = self
            .account
            .call(|a| a.members_to_greet(true).map(|m| !m.is_empty()))
            .await??;
        if missing {
            let (reply, rx) = oneshot::channel();
            self.commands
                .send(Command::GreetMembers { reply })
                .await
                .map_err(|_| Error::Offline)?;
            // Offline: send to those we can; the rest are reported by the send.
            let _ = rx.await;
        }
        let (distribution, recipients, keys) = self
            .account
            .call(move |a| a.prepare_post(&committee, &channel))
            .await??;
        if !keys.is_empty() {
            // Offline: the keys stay queued ahead of the message.
            let _ = self.flush().await;
        }
        let sent = self
            .account
            .call(move |a| send(a, distribution, &recipients))
            .await??;
        let _ = self.commands.try_send(Command::FlushOutbox);
        // Our own copy may carry the channel's timer.
        self.expiry.notify_one();
        Ok(sent)
    }
}

/// The client's upkeep, until the client shuts down: deletes expired messages
/// when they expire, whether or not the relay is reachable; prunes old
/// received envelope IDs, a bounded step per call with a pause between steps
/// so other work goes in between; and runs the alert upkeep (counts and notes
/// sent back along a cascade once due, alerts purged a set time after they
/// expire), asking the connection manager to send what that queued.
pub(super) async fn purge_expired_messages(
    account: AccountHandle,
    commands: mpsc::Sender<Command>,
    mut shutdown: watch::Receiver<bool>,
    wake: Arc<Notify>,
) {
    loop {
        let next = match account
            .call(|a| {
                a.purge_expired()?;
                let more = a.prune_received_envelopes().unwrap_or_else(|e| {
                    tracing::warn!("pruning received envelope IDs failed: {e}");
                    false
                });
                let alerts = a.alert_upkeep()?;
                // How long until the next of either, by the account's clock.
                let now = a.clock.now_ms();
                let due = [a.next_expiry()?, alerts.next_due_ms]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|at| at.saturating_sub(now));
                Ok::<_, crate::Error>(((due, more), alerts.sent > 0))
            })
            .await
        {
            Ok(Ok((next, sent))) => {
                if sent {
                    let _ = commands.try_send(Command::FlushOutbox);
                }
                next
            }
            Ok(Err(e)) => {
                tracing::warn!("the upkeep (purge, prune, alert counts) failed: {e}");
                (None, false)
            }
            // The account thread has stopped.
            Err(_) => return,
        };
        let wait = match next {
            (_, true) => PURGE_PAUSE,
            (due, false) => due.map_or(PURGE_IDLE, |in_ms| {
                let ms = u64::try_from(in_ms).unwrap_or(0);
                Duration::from_millis(ms).clamp(PURGE_PAUSE, PURGE_IDLE)
            }),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
