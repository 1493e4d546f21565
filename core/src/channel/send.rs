//! The send side of channels: this account's sender key for a channel, sent
//! over the 1:1 sessions, and posts, edits and deletes encrypted once under
//! it and sealed for every recipient in one multi-recipient upload. Each send
//! applies its own effect here (the new row, the new text, the row gone) in
//! the transaction that commits the advanced sender key and the outbox entry.

use libsignal_protocol::{
    create_sender_key_distribution_message, group_encrypt, CiphertextMessageType,
};
use rand::RngCore;
use rusqlite::params;
use uuid::Uuid;

use super::content::{ChannelContent, MessageRef};
use super::expiry::{self, TOMBSTONE_RETENTION_MS};
use super::store::{self, NewChannelMessage};
use crate::account::Account;
use crate::account_id::AccountId;
use crate::attachment::AttachmentPointer;
use crate::committee::{ChannelId, CommitteeId};
use crate::committee_ops::Post;
use crate::committee_store;
use crate::error::{Error, Result};
use crate::message::{self, Body, CHANNEL_ID_LEN, ENVELOPE_ID_LEN};
use crate::repair::Logged;
use crate::send::OutgoingEnvelope;
use crate::store::signal::{address, Pending, SignalStores};
use crate::store::WriteTransaction;

impl Account {
    /// Sends this account's sender key for a channel to one member, over the 1:1
    /// session, making the key on first use. `distribution_id` names the key's
    /// generation: a new one after every removal from the channel.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_sender_key(
        &mut self,
        to: &AccountId,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
    ) -> Result<OutgoingEnvelope> {
        let own = address(&self.id(), self.me.device_id);
        let message = {
            let tx = self.store.write()?;
            let mut pending = Pending::default();
            let stores = SignalStores::new(&tx, &self.cache, &mut pending);
            let skdm = futures::executor::block_on(create_sender_key_distribution_message(
                &own,
                distribution_id,
                &mut stores.view(),
                &mut rand::rng(),
            ))?;
            stores.commit_op()?;
            pending.flush(&tx)?;
            tx.commit()?;
            skdm.serialized().to_vec()
        };
        let body = Body::SenderKeyDistribution {
            channel_id,
            distribution_id,
            message,
        };
        // The member counts as a holder once the relay has the envelope
        // (`Account::confirm_sent_all`); recorded with the send.
        let (mut sent, _) = self.send_to_many(&[*to], &body, false, |tx, sent, _| {
            sent.iter().try_for_each(|e| {
                crate::committee_store::add_holder(tx, &channel_id, to, &e.envelope_id)
            })
        })?;
        sent.pop().ok_or(Error::NoSession(*to))
    }

    /// Posts a text in a channel (no reply, no attachments) to `recipients`,
    /// who must already hold our sender key `distribution_id`; see
    /// [`Account::send_channel_message`].
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_channel_text(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        recipients: &[AccountId],
        body: &str,
    ) -> Result<OutgoingEnvelope> {
        self.send_channel_message(channel_id, distribution_id, recipients, &Draft::text(body))
    }

    /// Posts a message in a channel: encrypted once under this account's
    /// sender key and sealed for every recipient in one multi-recipient
    /// message, carrying the channel's disappearing timer now. Commits the
    /// advanced sender key, the message and the outbox entry before returning.
    /// Each recipient must be a contact whose access key we hold.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_channel_message(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        recipients: &[AccountId],
        draft: &Draft,
    ) -> Result<OutgoingEnvelope> {
        let reply_to = match draft.reply_to {
            None => None,
            Some(id) => {
                let target = store::locate(self.store.conn(), id, self.clock.now_ms())?;
                if target.channel_id != channel_id {
                    return Err(Error::UnknownChannelMessage(id));
                }
                Some(target.reference)
            }
        };
        let content = ChannelContent::Post {
            id: MessageRef::random(self.id()).id,
            body: draft.text.clone(),
            reply_to,
            attachments: draft.attachments.clone(),
            expire_timer_secs: self.channel_timer(&channel_id)?,
        };
        self.send_channel_content(channel_id, distribution_id, recipients, content)
    }

    /// Sends new text for one of our channel messages (by local ID) and
    /// applies it here; the message keeps its place and is marked edited.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_channel_edit(
        &mut self,
        distribution_id: Uuid,
        recipients: &[AccountId],
        message_id: i64,
        body: &str,
    ) -> Result<OutgoingEnvelope> {
        let target = self.own_message(message_id)?;
        let content = ChannelContent::Edit {
            target: target.reference,
            body: body.to_string(),
            expire_timer_secs: self.channel_timer(&target.channel_id)?,
        };
        self.send_channel_content(target.channel_id, distribution_id, recipients, content)
    }

    /// Deletes one of our channel messages (by local ID) on every member's
    /// device, and here: the row, its attachments and its search entry go.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn send_channel_delete(
        &mut self,
        distribution_id: Uuid,
        recipients: &[AccountId],
        message_id: i64,
    ) -> Result<OutgoingEnvelope> {
        let target = self.own_message(message_id)?;
        let content = ChannelContent::Delete {
            target: target.reference,
        };
        self.send_channel_content(target.channel_id, distribution_id, recipients, content)
    }

    /// Posts a message in a committee channel, with the checks and sender
    /// keys of [`Account::post`].
    pub fn post_message(
        &mut self,
        committee: &CommitteeId,
        channel: &ChannelId,
        draft: &Draft,
    ) -> Result<Post> {
        // Refused before the sender keys are made and sent.
        super::check_outgoing(&draft.text, draft.attachments.len())?;
        let (distribution, recipients, sender_keys) = self.prepare_post(committee, channel)?;
        let message = self.send_channel_message(*channel, distribution, &recipients, draft)?;
        Ok(Post {
            sender_keys,
            message,
        })
    }

    /// Edits one of our messages in a committee channel (we must still be
    /// allowed to post there).
    pub fn edit_channel_message(&mut self, message_id: i64, body: &str) -> Result<Post> {
        super::check_outgoing(body, 0)?;
        let (committee, channel) = self.message_committee(message_id)?;
        let (distribution, recipients, sender_keys) = self.prepare_post(&committee, &channel)?;
        let message = self.send_channel_edit(distribution, &recipients, message_id, body)?;
        Ok(Post {
            sender_keys,
            message,
        })
    }

    /// Deletes one of our messages in a committee channel, everywhere.
    pub fn delete_channel_message(&mut self, message_id: i64) -> Result<Post> {
        let (committee, channel) = self.message_committee(message_id)?;
        let (distribution, recipients, sender_keys) = self.prepare_post(&committee, &channel)?;
        let message = self.send_channel_delete(distribution, &recipients, message_id)?;
        Ok(Post {
            sender_keys,
            message,
        })
    }

    /// The committee and channel of one of our messages.
    pub(crate) fn message_committee(&self, message_id: i64) -> Result<(CommitteeId, ChannelId)> {
        let target = self.own_message(message_id)?;
        let committee = committee_store::channel_committee(self.store.conn(), &target.channel_id)?
            .ok_or(Error::UnknownChannelMessage(message_id))?;
        Ok((committee, target.channel_id))
    }

    fn own_message(&self, message_id: i64) -> Result<store::Located> {
        let target = store::locate(self.store.conn(), message_id, self.clock.now_ms())?;
        if target.reference.author != self.id() {
            return Err(Error::NotOwnMessage(message_id));
        }
        Ok(target)
    }

    /// The disappearing timer in force in a channel, as our log has it (0 for
    /// a channel of no committee we hold).
    pub(crate) fn channel_timer(&mut self, channel: &[u8; CHANNEL_ID_LEN]) -> Result<u32> {
        let conn = self.store.conn();
        match committee_store::channel_committee(conn, channel)? {
            Some(committee) => Ok(self
                .logs
                .get(conn, &committee)?
                .state()
                .channel_timer(channel)),
            None => Ok(0),
        }
    }

    /// Sends one of our posts again, to one member who reported (by the
    /// receipt `handle`) that they could not read it; `settle` runs in its
    /// transaction. Nothing changes here but the sender key and the outbox.
    pub(crate) fn send_channel_resend(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        member: &AccountId,
        content: ChannelContent,
        handle: u64,
        settle: impl FnOnce(&rusqlite::Connection) -> Result<()>,
    ) -> Result<OutgoingEnvelope> {
        self.seal_channel_content(
            channel_id,
            distribution_id,
            std::slice::from_ref(member),
            content,
            Some((handle, Box::new(settle))),
        )
    }

    /// Encrypts `content` once under our sender key, seals it for every
    /// recipient, and commits it with its effect here.
    fn send_channel_content(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        recipients: &[AccountId],
        content: ChannelContent,
    ) -> Result<OutgoingEnvelope> {
        self.seal_channel_content(channel_id, distribution_id, recipients, content, None)
    }

    /// [`Account::send_channel_content`], or with `resend` (the receipt's
    /// handle and what settles it) the same content again without its effect
    /// here.
    fn seal_channel_content(
        &mut self,
        channel_id: [u8; CHANNEL_ID_LEN],
        distribution_id: Uuid,
        recipients: &[AccountId],
        content: ChannelContent,
        resend: Option<Resend<'_>>,
    ) -> Result<OutgoingEnvelope> {
        let me = self.id();
        let own = address(&me, self.me.device_id);
        // Sealed with the certificate held even if it has run out: an
        // envelope whose certificate is stale when it leaves is sealed again
        // then (`reseal`).
        let (certificate, certificate_expires) = self
            .settings
            .sender_certificate
            .clone()
            .ok_or(Error::NoSenderCertificate)?;
        let sent_at_ms = self.clock.now_ms();
        let body = Body::ChannelText {
            channel_id,
            content,
        };
        let plaintext = zeroize::Zeroizing::new(match &resend {
            None => message::encode_content(&body, sent_at_ms, None, &self.settings.access_key)?,
            Some((handle, _)) => {
                message::encode_resent(&body, sent_at_ms, &self.settings.access_key, *handle)?
            }
        });
        let Body::ChannelText { content, .. } = body else {
            return Err(Error::InvalidContent("not a channel message"));
        };

        let tx = self.store.write()?;
        let mut pending = Pending::default();
        let stores = SignalStores::new(&tx, &self.cache, &mut pending);
        let message = futures::executor::block_on(group_encrypt(
            &mut stores.view(),
            &own,
            distribution_id,
            &plaintext,
            &mut rand::rng(),
        ))?;
        let inner = message.serialized().to_vec();
        let sealed = super::seal::for_members(
            &tx,
            &stores,
            (self.me.key_pair, self.me.registration_id),
            recipients,
            (&certificate, &inner, &channel_id),
        )?;
        let (payload, access_key) = (sealed.payload, sealed.access_key);
        stores.commit_op()?;

        let mut envelope_id = [0u8; ENVELOPE_ID_LEN];
        rand::rng().fill_bytes(&mut envelope_id);
        let scrub = match (&content, resend) {
            (_, Some((_, settle))) => {
                settle(&tx)?;
                false
            }
            (content, None) => apply_own(
                &tx,
                (channel_id, &me),
                content,
                (&envelope_id, &inner),
                sent_at_ms,
            )?,
        };
        let members: Vec<u8> = recipients
            .iter()
            .flat_map(|r| r.as_bytes().iter().copied())
            .collect();
        tx.prepare_cached(
            "INSERT INTO outbox (envelope_id, recipient, recipient_device, envelope, created_at,
                 sealed, access_key, multi, inner, inner_kind, recipients, certificate_expires)
             VALUES (?1, ?2, 0, ?3, ?4, 1, ?5, 1, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            &envelope_id[..],
            &channel_id[..],
            &payload,
            sent_at_ms,
            &access_key[..],
            &inner,
            CiphertextMessageType::SenderKey as u8,
            &members,
            certificate_expires
        ])?;
        pending.flush(&tx)?;
        tx.commit()?;
        self.outbox_may_hold = true;
        self.cache.absorb(pending);
        // Our own copy may carry a timer, a delete leaves a tombstone, and a
        // post or edit waits for the search index.
        self.next_due = None;
        self.search_backlog = true;
        if scrub {
            // The old text is still in WAL frames until a checkpoint.
            expiry::scrub(self.store.conn());
        }
        Ok(OutgoingEnvelope {
            envelope_id,
            recipient: me,
            recipient_device: 0,
            bytes: payload,
            sealed: true,
            access_key: Some(access_key),
            multi: true,
            high_priority: false,
            handle: crate::repair::handle_of(&inner),
        })
    }
}

/// A resend: the receipt's handle, and what settles it in the send's
/// transaction.
type Resend<'a> = (
    u64,
    Box<dyn FnOnce(&rusqlite::Connection) -> Result<()> + 'a>,
);

/// A channel message to post: text, optionally a reply to another message of
/// the channel (by local ID), and attachments already uploaded.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    text: String,
    reply_to: Option<i64>,
    attachments: Vec<AttachmentPointer>,
}

impl Draft {
    /// A message with this text.
    pub fn text(text: impl Into<String>) -> Self {
        Draft {
            text: text.into(),
            ..Draft::default()
        }
    }

    /// Makes it a reply to the message with this local ID.
    pub fn reply_to(mut self, message_id: i64) -> Self {
        self.reply_to = Some(message_id);
        self
    }

    /// Adds an uploaded attachment (at most [`crate::MAX_ATTACHMENTS`]).
    pub fn attach(mut self, pointer: AttachmentPointer) -> Self {
        self.attachments.push(pointer);
        self
    }
}

/// Our own channel message's effect here, in the transaction that sends it:
/// a post stored (and logged, to be sent again to a member who cannot read
/// it), an edit applied, a delete applied and remembered. Says whether old
/// text is to be scrubbed from the WAL.
fn apply_own(
    tx: &WriteTransaction<'_>,
    (channel_id, me): ([u8; CHANNEL_ID_LEN], &AccountId),
    content: &ChannelContent,
    (envelope_id, inner): (&[u8; ENVELOPE_ID_LEN], &[u8]),
    sent_at_ms: i64,
) -> Result<bool> {
    Ok(match content {
        ChannelContent::Post {
            id,
            body,
            reply_to,
            attachments,
            expire_timer_secs,
        } => {
            let row = store::insert(
                tx,
                &NewChannelMessage {
                    channel_id: &channel_id,
                    envelope_id,
                    sender: me,
                    outgoing: true,
                    body,
                    sent_at_ms,
                    message_ref: id,
                    reply_to: reply_to.as_ref(),
                    attachments,
                    expires_at_ms: expiry::expires_at(sent_at_ms, sent_at_ms, *expire_timer_secs),
                    stored_at_ms: sent_at_ms,
                },
            )?;
            let handle = crate::repair::handle_of(inner);
            crate::repair::log_sent(tx, handle, &channel_id, Logged::Post(row), sent_at_ms)?;
            false
        }
        ChannelContent::Edit { target, body, .. } => {
            let id = store::find(tx, &channel_id, target)?
                .ok_or(Error::InvalidContent("the message edited is gone"))?;
            store::apply_edit(tx, id, body, sent_at_ms)?;
            true
        }
        ChannelContent::Delete { target } => {
            if let Some(id) = store::find(tx, &channel_id, target)? {
                store::delete(tx, id)?;
            }
            store::tombstone(
                tx,
                &channel_id,
                target,
                sent_at_ms.saturating_add(TOMBSTONE_RETENTION_MS),
            )?;
            true
        }
    })
}
