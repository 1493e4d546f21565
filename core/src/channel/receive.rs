//! A channel message inside the receive transaction: decrypt it under the
//! sender's sender key, check it names the channel its envelope does and that
//! the sender may post there, then apply it — a post stored (unless deleted
//! already or expired), an edit or a delete applied only from the message's
//! author. Every check comes before the first write, so a refused message
//! leaves no trace.

use libsignal_protocol::{group_decrypt, ProtocolAddress, SignalProtocolError};
use rusqlite::Connection;

use super::content::{ChannelContent, MessageRef};
use super::expiry::{self, PENDING_EDIT_RETENTION_MS, TOMBSTONE_RETENTION_MS};
use super::store::{self, NewChannelMessage, MAX_PENDING_EDITS};
use crate::account_id::AccountId;
use crate::committee_receive;
use crate::committee_store::{self, BatchLogs};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::{self, Body, CHANNEL_ID_LEN, ENVELOPE_ID_LEN};
use crate::receive::Received;
use crate::store::signal::SignalStores;
use crate::store::WriteTransaction;

/// Decrypts, checks and applies one channel message.
pub(crate) fn receive_channel(
    tx: &WriteTransaction<'_>,
    stores: SignalStores<'_, '_>,
    (sender, addr): (&AccountId, &ProtocolAddress),
    message: &[u8],
    group_id: Option<&[u8]>,
    dedup_id: [u8; ENVELOPE_ID_LEN],
    (events, logs): (&mut Vec<Event>, &mut BatchLogs<'_>),
) -> Result<Received> {
    let plaintext =
        match futures::executor::block_on(group_decrypt(message, &mut stores.view(), addr)) {
            Ok(p) => zeroize::Zeroizing::new(p),
            Err(SignalProtocolError::DuplicatedMessage(..)) => return Ok(Received::Duplicate),
            Err(e) => return Err(e.into()),
        };
    let decoded = message::decode_content(&plaintext)?;
    let Body::ChannelText {
        channel_id,
        content,
    } = decoded.body
    else {
        return Err(Error::InvalidContent("not a channel message"));
    };
    if group_id != Some(&channel_id[..]) {
        return Err(Error::InvalidContent("channel does not match its envelope"));
    }
    committee_receive::check_channel_sender(tx, logs, &channel_id, sender, events)?;
    if let Some(handle) = decoded.resends {
        // Sent again because we reported it unreadable: that report is
        // settled, and a post we have meanwhile read is a copy.
        crate::repair::forget_unreadable(tx, sender, handle)?;
        if let ChannelContent::Post { id, .. } = &content {
            let reference = MessageRef {
                author: *sender,
                id: *id,
            };
            if store::find(tx, &channel_id, &reference)?.is_some() {
                stores.commit_op()?;
                return Ok(Received::Duplicate);
            }
        }
    }
    let sent_at_ms = decoded.sent_at_ms;
    let now = logs.now_ms;
    let ours = match committee_store::channel_committee(tx, &channel_id)? {
        Some(c) => logs
            .get(tx, &c)?
            .map_or(0, |log| log.state().channel_timer(&channel_id)),
        None => 0,
    };

    let change = check(
        tx,
        &channel_id,
        sender,
        sent_at_ms,
        content,
        ours,
        now,
        events,
    )?;

    // Accepted: from here on the envelope's effects are written.
    stores.commit_op()?;
    // Something the purge must delete at a set time: a post with a timer, an
    // edit that may wait for its message, a delete's tombstone.
    logs.stores_expiring |= !matches!(
        change,
        Change::Post {
            expires_at_ms: None,
            ..
        }
    );
    write(
        tx,
        &channel_id,
        sender,
        sent_at_ms,
        change,
        &dedup_id,
        now,
        events,
    )
}

/// The checks that can refuse a channel message, before any write: a post
/// must not reuse one of its author's message IDs, an edit or a delete must
/// come from the message's author. `ours` is our log's timer for the channel.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    sender: &AccountId,
    sent_at_ms: i64,
    content: ChannelContent,
    ours: u32,
    now: i64,
    events: &mut Vec<Event>,
) -> Result<Change> {
    Ok(match content {
        ChannelContent::Post {
            id,
            body,
            reply_to,
            attachments,
            expire_timer_secs,
        } => {
            let reference = MessageRef {
                author: *sender,
                id,
            };
            if store::find(conn, channel_id, &reference)?.is_some() {
                return Err(Error::InvalidContent("message id used twice"));
            }
            let timer = expiry::effective_timer(expire_timer_secs, ours);
            Change::Post {
                reference,
                body,
                reply_to,
                attachments,
                expires_at_ms: expiry::expires_at(sent_at_ms, now, timer),
            }
        }
        ChannelContent::Edit {
            target,
            body,
            expire_timer_secs,
        } => {
            check_author(channel_id, sender, &target, events)?;
            // An edit that would wait for its message must find room.
            if store::find(conn, channel_id, &target)?.is_none()
                && !store::is_tombstoned(conn, channel_id, &target)?
                && store::pending_edits(conn, channel_id)? >= MAX_PENDING_EDITS
            {
                return Err(Error::InvalidContent(
                    "too many edits wait for their messages",
                ));
            }
            let timer = expiry::effective_timer(expire_timer_secs, ours);
            let keep_until = now.saturating_add(PENDING_EDIT_RETENTION_MS);
            Change::Edit {
                target,
                body,
                keep_until: expiry::expires_at(sent_at_ms, now, timer)
                    .map_or(keep_until, |t| t.min(keep_until)),
            }
        }
        ChannelContent::Delete { target } => {
            check_author(channel_id, sender, &target, events)?;
            Change::Delete { target }
        }
    })
}

/// Writes a checked channel message: a post stored (unless its delete came
/// first or its timer has run out) with any edit that waited for it, an edit
/// applied or held for its message, a delete applied and remembered.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    sender: &AccountId,
    sent_at_ms: i64,
    change: Change,
    envelope_id: &[u8; ENVELOPE_ID_LEN],
    now: i64,
    events: &mut Vec<Event>,
) -> Result<Received> {
    let channel_id = *channel_id;
    let control = Received::Control { from: *sender };
    match change {
        Change::Post {
            reference,
            body,
            reply_to,
            attachments,
            expires_at_ms,
        } => {
            // Deleted before it came, or past its timer already: keep nothing.
            if store::is_tombstoned(conn, &channel_id, &reference)?
                || expires_at_ms.is_some_and(|t| t <= now)
            {
                return Ok(control);
            }
            let message_id = store::insert(
                conn,
                &NewChannelMessage {
                    channel_id: &channel_id,
                    envelope_id,
                    sender,
                    outgoing: false,
                    body: &body,
                    sent_at_ms,
                    message_ref: &reference.id,
                    reply_to: reply_to.as_ref(),
                    attachments: &attachments,
                    expires_at_ms,
                    stored_at_ms: now,
                },
            )?;
            if let Some((text, edited_at)) =
                store::take_pending_edit(conn, &channel_id, &reference)?
            {
                store::apply_edit(conn, message_id, &text, edited_at)?;
            }
            events.push(Event::ChannelMessageStored {
                channel_id,
                sender: *sender,
                message_id,
            });
            Ok(Received::Channel {
                message_id,
                from: *sender,
                channel_id,
            })
        }
        Change::Edit {
            target,
            body,
            keep_until,
        } => {
            match store::find(conn, &channel_id, &target)? {
                Some(message_id) => {
                    // An older edit than the one held changes nothing.
                    let newer = store::apply_edit(conn, message_id, &body, sent_at_ms)?;
                    if newer {
                        events.push(Event::ChannelMessageEdited {
                            channel_id,
                            message_id,
                        });
                    }
                }
                None if store::is_tombstoned(conn, &channel_id, &target)? => {}
                None if keep_until > now => {
                    store::hold_edit(conn, &channel_id, &target, &body, sent_at_ms, keep_until)?
                }
                None => {}
            }
            Ok(control)
        }
        Change::Delete { target } => {
            if let Some(message_id) = store::find(conn, &channel_id, &target)? {
                store::delete(conn, message_id)?;
                events.push(Event::ChannelMessageDeleted {
                    channel_id,
                    message_id,
                });
            }
            store::tombstone(
                conn,
                &channel_id,
                &target,
                now.saturating_add(TOMBSTONE_RETENTION_MS),
            )?;
            Ok(control)
        }
    }
}

/// A checked channel message, ready to write.
pub(super) enum Change {
    Post {
        reference: MessageRef,
        body: String,
        reply_to: Option<MessageRef>,
        attachments: Vec<crate::attachment::AttachmentPointer>,
        expires_at_ms: Option<i64>,
    },
    Edit {
        target: MessageRef,
        body: String,
        /// Until when the edit waits if its message is not here.
        keep_until: i64,
    },
    Delete {
        target: MessageRef,
    },
}

/// Refuses an edit or a delete of someone else's message.
fn check_author(
    channel_id: &[u8; CHANNEL_ID_LEN],
    sender: &AccountId,
    target: &MessageRef,
    events: &mut Vec<Event>,
) -> Result<()> {
    if target.author == *sender {
        return Ok(());
    }
    events.push(Event::ChannelChangeRejected {
        channel_id: *channel_id,
        sender: *sender,
    });
    Err(Error::NotMessageAuthor(*sender))
}
