//! Channel messages in the store: rows with their references, replies,
//! attachments and expiry; tombstones of deleted messages; edits waiting for
//! their message; and reading messages back for history and search. Every
//! function runs on the caller's connection or transaction.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::content::{ChannelContent, MessageRef, MESSAGE_REF_LEN};
use super::{ChannelAttachment, ChannelMessage, Quote, Reply};
use crate::account_id::AccountId;
use crate::attachment::{AttachmentPointer, DIGEST_LEN};
use crate::error::{Error, Result};
use crate::message::{CHANNEL_ID_LEN, ENVELOPE_ID_LEN};

/// Edits held for messages that have not arrived, per channel: bounds what a
/// member can make us keep.
pub const MAX_PENDING_EDITS: i64 = 1_000;

/// A message to store.
pub(crate) struct NewChannelMessage<'a> {
    pub channel_id: &'a [u8; CHANNEL_ID_LEN],
    pub envelope_id: &'a [u8; ENVELOPE_ID_LEN],
    pub sender: &'a AccountId,
    pub outgoing: bool,
    pub body: &'a str,
    pub sent_at_ms: i64,
    pub message_ref: &'a [u8; MESSAGE_REF_LEN],
    pub reply_to: Option<&'a MessageRef>,
    pub attachments: &'a [AttachmentPointer],
    pub expires_at_ms: Option<i64>,
    /// When this device stored it (the account's clock).
    pub stored_at_ms: i64,
}

/// Stores a message and its attachments; the search index follows by trigger.
pub(crate) fn insert(conn: &Connection, m: &NewChannelMessage<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO channel_messages (channel_id, envelope_id, sender, outgoing, body, sent_at,
             stored_at, message_ref, reply_author, reply_ref, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        &m.channel_id[..],
        &m.envelope_id[..],
        &m.sender.as_bytes()[..],
        m.outgoing,
        m.body,
        m.sent_at_ms,
        m.stored_at_ms,
        &m.message_ref[..],
        m.reply_to.map(|r| r.author.as_bytes().to_vec()),
        m.reply_to.map(|r| r.id.to_vec()),
        m.expires_at_ms,
    ])?;
    let id = conn.last_insert_rowid();
    let mut attach = conn.prepare_cached(
        "INSERT INTO channel_attachments (message_id, position, address, key, digest, size,
             content_type, file_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (i, a) in m.attachments.iter().enumerate() {
        attach.execute(params![
            id,
            i as i64,
            &a.address[..],
            &a.key[..],
            &a.digest[..],
            i64::try_from(a.size).unwrap_or(i64::MAX),
            a.content_type,
            a.file_name
        ])?;
    }
    Ok(id)
}

/// The local ID of a message by its reference, if it is here.
pub(crate) fn find(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    r: &MessageRef,
) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM channel_messages
             WHERE channel_id = ?1 AND sender = ?2 AND message_ref = ?3",
        )?
        .query_row(
            params![&channel_id[..], &r.author.as_bytes()[..], &r.id[..]],
            |row| row.get(0),
        )
        .optional()?)
}

/// Whether the message was deleted by its author.
pub(crate) fn is_tombstoned(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    r: &MessageRef,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM channel_tombstones
             WHERE channel_id = ?1 AND author = ?2 AND message_ref = ?3)",
        )?
        .query_row(
            params![&channel_id[..], &r.author.as_bytes()[..], &r.id[..]],
            |row| row.get(0),
        )?)
}

/// Records that the message was deleted, until `keep_until_ms`, and drops
/// any edit waiting for it.
pub(crate) fn tombstone(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    r: &MessageRef,
    keep_until_ms: i64,
) -> Result<()> {
    let key = params![&channel_id[..], &r.author.as_bytes()[..], &r.id[..]];
    conn.prepare_cached(
        "INSERT INTO channel_tombstones (channel_id, author, message_ref, keep_until)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET keep_until = max(keep_until, excluded.keep_until)",
    )?
    .execute(params![
        &channel_id[..],
        &r.author.as_bytes()[..],
        &r.id[..],
        keep_until_ms
    ])?;
    conn.prepare_cached(
        "DELETE FROM channel_pending_edits
         WHERE channel_id = ?1 AND author = ?2 AND message_ref = ?3",
    )?
    .execute(key)?;
    Ok(())
}

/// Deletes a message row: its attachments go with it (cascade), its text
/// leaves the search index (trigger), and secure delete zeroes the space.
pub(crate) fn delete(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM channel_messages WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Replaces a message's text when `sent_at_ms` is later than the edit it
/// holds. Returns whether it changed.
pub(crate) fn apply_edit(conn: &Connection, id: i64, body: &str, sent_at_ms: i64) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE channel_messages SET body = ?2, edited_at = ?3
             WHERE id = ?1 AND (edited_at IS NULL OR edited_at < ?3)",
        )?
        .execute(params![id, body, sent_at_ms])?;
    Ok(n == 1)
}

/// Edits a channel holds for messages that have not arrived.
pub(crate) fn pending_edits(conn: &Connection, channel_id: &[u8; CHANNEL_ID_LEN]) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM channel_pending_edits WHERE channel_id = ?1")?
        .query_row([&channel_id[..]], |row| row.get(0))?)
}

/// Holds an edit whose message has not arrived (the latest per message).
/// The caller has checked there is room ([`MAX_PENDING_EDITS`]).
pub(crate) fn hold_edit(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    r: &MessageRef,
    body: &str,
    sent_at_ms: i64,
    expires_at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO channel_pending_edits (channel_id, author, message_ref, body, sent_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET body = excluded.body, sent_at = excluded.sent_at,
             expires_at = excluded.expires_at
         WHERE excluded.sent_at > channel_pending_edits.sent_at",
    )?
    .execute(params![
        &channel_id[..],
        &r.author.as_bytes()[..],
        &r.id[..],
        body,
        sent_at_ms,
        expires_at_ms
    ])?;
    Ok(())
}

/// Takes the edit waiting for a message, if any: its text and time.
pub(crate) fn take_pending_edit(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    r: &MessageRef,
) -> Result<Option<(String, i64)>> {
    let key = params![&channel_id[..], &r.author.as_bytes()[..], &r.id[..]];
    let found = conn
        .prepare_cached(
            "SELECT body, sent_at FROM channel_pending_edits
             WHERE channel_id = ?1 AND author = ?2 AND message_ref = ?3",
        )?
        .query_row(key, |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if found.is_some() {
        conn.prepare_cached(
            "DELETE FROM channel_pending_edits
             WHERE channel_id = ?1 AND author = ?2 AND message_ref = ?3",
        )?
        .execute(key)?;
    }
    Ok(found)
}

/// What the send side needs to know about one of our messages.
pub(crate) struct Located {
    pub channel_id: [u8; CHANNEL_ID_LEN],
    pub reference: MessageRef,
}

/// A message by its local ID.
pub(crate) fn locate(conn: &Connection, id: i64, now: i64) -> Result<Located> {
    let (channel, sender, reference): (Vec<u8>, Vec<u8>, Vec<u8>) = conn
        .prepare_cached(
            "SELECT channel_id, sender, message_ref FROM channel_messages
             WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![id, now], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?
        .ok_or(Error::UnknownChannelMessage(id))?;
    Ok(Located {
        channel_id: stored(&channel)?,
        reference: MessageRef {
            author: AccountId::from_bytes(&sender)?,
            id: stored(&reference)?,
        },
    })
}

fn stored<const N: usize>(bytes: &[u8]) -> Result<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| Error::Storage("stored channel message field is malformed".into()))
}

/// The pointers (with keys) of a message's attachments, in order.
pub(crate) fn pointers(conn: &Connection, id: i64) -> Result<Vec<AttachmentPointer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, key, digest, size, content_type, file_name FROM channel_attachments
         WHERE message_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([id], |row| {
        Ok((
            row.get::<_, Vec<u8>>(0)?,
            zeroize::Zeroizing::new(row.get::<_, Vec<u8>>(1)?),
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    rows.map(|row| {
        let (address, key, digest, size, content_type, file_name) = row?;
        Ok(AttachmentPointer {
            address: stored::<DIGEST_LEN>(&address)?,
            key: zeroize::Zeroizing::new(stored(&key)?),
            digest: stored::<DIGEST_LEN>(&digest)?,
            size: u64::try_from(size).unwrap_or(0),
            content_type,
            file_name,
        })
    })
    .collect()
}

/// The columns every message query selects, in [`read_row`]'s order.
pub(crate) const COLUMNS: &str = "m.id, m.channel_id, m.sender, m.outgoing, m.body, m.sent_at, \
     m.stored_at, m.message_ref, m.reply_author, m.reply_ref, m.edited_at, m.expires_at";

type RawRow = (
    i64,
    Vec<u8>,
    Vec<u8>,
    bool,
    String,
    i64,
    i64,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<i64>,
);

/// Reads one row selected with [`COLUMNS`].
pub(crate) fn read_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

/// Turns rows into messages, resolving each reply's quote and listing the
/// attachments.
pub(crate) fn complete(
    conn: &Connection,
    rows: Vec<RawRow>,
    now: i64,
) -> Result<Vec<ChannelMessage>> {
    rows.into_iter()
        .map(|raw| {
            let (id, channel, sender, outgoing, body, sent_at_ms, stored_at_ms, reference) =
                (raw.0, raw.1, raw.2, raw.3, raw.4, raw.5, raw.6, raw.7);
            let channel_id = stored(&channel)?;
            let sender = AccountId::from_bytes(&sender)?;
            let reply_to = match (raw.8, raw.9) {
                (Some(author), Some(r)) => {
                    let target = MessageRef {
                        author: AccountId::from_bytes(&author)?,
                        id: stored(&r)?,
                    };
                    Some(Reply {
                        target,
                        quote: quote(conn, &channel_id, &target, now)?,
                    })
                }
                _ => None,
            };
            Ok(ChannelMessage {
                id,
                channel_id,
                sender,
                outgoing,
                body,
                sent_at_ms,
                stored_at_ms,
                reference: MessageRef {
                    author: sender,
                    id: stored(&reference)?,
                },
                reply_to,
                edited_at_ms: raw.10,
                expires_at_ms: raw.11,
                attachments: pointers(conn, id)?
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ChannelAttachment::from_pointer(i, p))
                    .collect(),
            })
        })
        .collect()
}

/// What a reply shows of the message it quotes.
fn quote(
    conn: &Connection,
    channel_id: &[u8; CHANNEL_ID_LEN],
    target: &MessageRef,
    now: i64,
) -> Result<Quote> {
    let found: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, body FROM channel_messages
             WHERE channel_id = ?1 AND sender = ?2 AND message_ref = ?3
               AND (expires_at IS NULL OR expires_at > ?4)",
        )?
        .query_row(
            params![
                &channel_id[..],
                &target.author.as_bytes()[..],
                &target.id[..],
                now
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    Ok(match found {
        Some((message_id, body)) => Quote::Message { message_id, body },
        None if is_tombstoned(conn, channel_id, target)? => Quote::Deleted,
        None => Quote::Unavailable,
    })
}

/// One of our own posts, by its local ID, as it was sent (text as last
/// edited, the timer it was sent with): what goes again to a member who could
/// not read it. `None` when it is gone or has expired at `now`.
pub(crate) fn own_post(conn: &Connection, id: i64, now: i64) -> Result<Option<ChannelContent>> {
    type Row = (
        Vec<u8>,
        String,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        i64,
        Option<i64>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT message_ref, body, reply_author, reply_ref, sent_at, expires_at
             FROM channel_messages
             WHERE id = ?1 AND outgoing = 1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![id, now], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((reference, body, reply_author, reply_ref, sent_at, expires_at)) = row else {
        return Ok(None);
    };
    let reply_to = match (reply_author, reply_ref) {
        (Some(author), Some(r)) => Some(MessageRef {
            author: AccountId::from_bytes(&author)?,
            id: stored(&r)?,
        }),
        _ => None,
    };
    let expire_timer_secs = expires_at
        .map(|at| u32::try_from(at.saturating_sub(sent_at) / 1000).unwrap_or(u32::MAX))
        .unwrap_or(0);
    Ok(Some(ChannelContent::Post {
        id: stored(&reference)?,
        body,
        reply_to,
        attachments: pointers(conn, id)?,
        expire_timer_secs,
    }))
}
