//! Committee channels: each member's sender key, distributed over the 1:1
//! sessions, and channel messages encrypted once under it and sealed for every
//! recipient in one multi-recipient upload that the relay fans out.
//!
//! A message is named on every device by its author and a random ID the author
//! gives it ([`MessageRef`]), so a reply quotes it, and its author edits or
//! deletes it, by that name. Receivers apply an edit or a delete only from the
//! message's author; one that arrives before its message waits (an edit) or
//! leaves a tombstone that drops the message when it comes (a delete). A
//! deleted message's row goes, with its attachments and its search entry.
//!
//! Each message carries the channel's disappearing timer as its author saw it;
//! every device deletes it when the stricter of that and its own log's timer
//! runs out, then checkpoints the WAL so the text leaves the raw files too.
//!
//! - `content` — what a channel message carries, and [`MessageRef`];
//! - `send` — sender keys, and posts, edits and deletes under them;
//! - `receive` — a channel message inside the receive transaction;
//! - `store` — rows, tombstones and waiting edits;
//! - `expiry` — timers and the purge;
//! - `read` — read markers and unread counts;
//! - `search` — the FTS5 index.
//!
//! A removed member keeps the sender keys it had, so after a removal every
//! remaining member starts a new sender key (a new distribution ID) and sends it
//! only to those who remain; messages under it are unreadable to the removed.

mod content;
pub(crate) mod expiry;
mod read;
mod receive;
mod seal;
mod search;
mod send;
mod store;

pub(crate) use content::{check_outgoing, ChannelContent};
pub use content::{MessageRef, MESSAGE_REF_LEN};
pub(crate) use expiry::{effective_timer, expires_at, fills_search_backlog, scrub, wants_scrub};
pub(crate) use receive::receive_channel;
pub(crate) use seal::for_members as seal_for_members;
pub use send::Draft;
pub(crate) use store::own_post;
pub use store::MAX_PENDING_EDITS;

use rusqlite::params;

use crate::account::Account;
use crate::account_id::AccountId;
use crate::attachment::AttachmentPointer;
use crate::error::Result;
use crate::message::CHANNEL_ID_LEN;

/// A channel message as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelMessage {
    /// The local row ID, stable for the message's life on this device.
    pub id: i64,
    pub channel_id: [u8; CHANNEL_ID_LEN],
    pub sender: AccountId,
    pub outgoing: bool,
    /// The text, as last edited.
    pub body: String,
    /// The author's clock when written, ms since the epoch.
    pub sent_at_ms: i64,
    /// When this device stored it, ms since the epoch.
    pub stored_at_ms: i64,
    /// How every member names this message.
    pub reference: MessageRef,
    /// The message this one replies to.
    pub reply_to: Option<Reply>,
    /// The author's clock at the latest edit; `None` if never edited.
    pub edited_at_ms: Option<i64>,
    /// When it disappears from every device; `None` never.
    pub expires_at_ms: Option<i64>,
    /// Files sent with it; fetch one with `Client::download_attachment`.
    pub attachments: Vec<ChannelAttachment>,
}

/// The message a reply quotes, as this device holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// The quoted message's name.
    pub target: MessageRef,
    /// What is left of it here.
    pub quote: Quote,
}

/// What a reply shows of the message it quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quote {
    /// The message is here: its local ID and current text.
    Message { message_id: i64, body: String },
    /// Its author deleted it.
    Deleted,
    /// Not here: disappeared, or not arrived (yet).
    Unavailable,
}

/// An attachment as the app lists it (the key stays in the core).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelAttachment {
    /// Its place among the message's attachments, from 0.
    pub position: u32,
    pub content_type: String,
    pub file_name: String,
    /// The file's size in bytes.
    pub size: u64,
}

impl ChannelAttachment {
    fn from_pointer(position: usize, p: &AttachmentPointer) -> Self {
        ChannelAttachment {
            position: u32::try_from(position).unwrap_or(u32::MAX),
            content_type: p.content_type.clone(),
            file_name: p.file_name.clone(),
            size: p.size,
        }
    }
}

impl Account {
    /// A page of a channel, newest first, below `before_id` when given.
    /// Messages past their timer are never shown, even before the purge.
    pub fn channel_history(
        &self,
        channel_id: &[u8; CHANNEL_ID_LEN],
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelMessage>> {
        let conn = self.store.conn();
        let now = self.clock.now_ms();
        let rows = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM channel_messages m
                 WHERE m.channel_id = ?1 AND m.id < ?2
                   AND (m.expires_at IS NULL OR m.expires_at > ?4)
                 ORDER BY m.id DESC LIMIT ?3",
                store::COLUMNS
            ))?;
            let rows = stmt.query_map(
                params![&channel_id[..], before_id.unwrap_or(i64::MAX), limit, now],
                store::read_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        store::complete(conn, rows, now)
    }

    /// The pointer (with its key) of one attachment of a message, for the
    /// transport to fetch and open.
    pub(crate) fn attachment_pointer(
        &self,
        message_id: i64,
        position: u32,
    ) -> Result<AttachmentPointer> {
        store::locate(self.store.conn(), message_id, self.clock.now_ms())?;
        store::pointers(self.store.conn(), message_id)?
            .into_iter()
            .nth(position as usize)
            .ok_or(crate::error::Error::UnknownAttachment {
                message_id,
                position,
            })
    }
}

#[cfg(test)]
mod tests;
