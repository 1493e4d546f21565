//! Disappearing messages: when a message expires, and the purge that deletes
//! expired messages — channel messages (with their attachments and search
//! entries) and 1:1 texts (`conversation_timer`) alike —, edits that
//! waited too long, and old tombstones — then checkpoints the WAL so the
//! deleted text is gone from the raw files, not only from the tables.
//!
//! `secure_delete` zeroes freed space in the database file and FTS5's
//! `secure-delete` takes a deleted row's tokens out of the index pages, but
//! the WAL still holds the frames written before the delete until a
//! checkpoint copies the new pages into the database and truncates it.

use rusqlite::{params, Connection, OptionalExtension};

use crate::account::Account;
use crate::account_id::AccountId;
use crate::committee::{ChannelId, CommitteeId, Op, MAX_DISAPPEARING_SECS};
use crate::committee_ops::CommitteeChange;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message::CHANNEL_ID_LEN;

/// How long a tombstone (a deleted message's name, no text) is kept: longer
/// than the relay keeps an undelivered message (30 days by default), so a
/// message deleted before it arrived is still dropped when it does.
pub(crate) const TOMBSTONE_RETENTION_MS: i64 = 60 * 24 * 3600 * 1000;
/// How long an edit waits for its message at most.
pub(crate) const PENDING_EDIT_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
/// Least time between two runs of the search indexer after receive batches.
/// A search indexes whatever waits first, so this only bounds the work a
/// search may find waiting.
pub(crate) const SEARCH_INDEX_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// The timer a receiver applies: the stricter of the one the message carries
/// and the one its own log has for the channel (0 is off).
pub(crate) fn effective_timer(carried: u32, ours: u32) -> u32 {
    match (carried, ours) {
        (0, t) | (t, 0) => t,
        (a, b) => a.min(b),
    }
}

/// When a message expires: `timer_secs` after the earlier of the author's
/// clock and ours, so an author's clock set ahead cannot keep it longer.
pub(crate) fn expires_at(sent_at_ms: i64, now_ms: i64, timer_secs: u32) -> Option<i64> {
    (timer_secs > 0).then(|| {
        sent_at_ms
            .min(now_ms)
            .saturating_add(i64::from(timer_secs) * 1000)
    })
}

/// Whether a receive batch changed or deleted text, so the WAL should be
/// checkpointed after it.
pub(crate) fn wants_scrub(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::ChannelMessageEdited { .. } | Event::ChannelMessageDeleted { .. }
        )
    })
}

/// Whether a batch's events put channel text in the search backlog.
pub(crate) fn fills_search_backlog(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::ChannelMessageStored { .. } | Event::ChannelMessageEdited { .. }
        )
    })
}

/// The earliest time anything is due for the purge, if anything is.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(t) FROM (
                 SELECT min(expires_at) AS t FROM channel_messages WHERE expires_at IS NOT NULL
                 UNION ALL SELECT min(expires_at) FROM messages WHERE expires_at IS NOT NULL
                 UNION ALL SELECT min(expires_at) FROM channel_pending_edits
                 UNION ALL SELECT min(keep_until) FROM channel_tombstones)",
        )?
        .query_row([], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// What a purge deleted.
#[derive(Debug, Default)]
pub(crate) struct Purged {
    /// Channel messages: channel and local ID.
    pub(crate) channel: Vec<([u8; CHANNEL_ID_LEN], i64)>,
    /// 1:1 texts: the other side and local ID.
    pub(crate) direct: Vec<(AccountId, i64)>,
}

impl Purged {
    /// How many messages went.
    pub(crate) fn len(&self) -> usize {
        self.channel.len() + self.direct.len()
    }
}

/// Deletes what is due at `now`: expired messages (channel and 1:1), stale
/// waiting edits, old tombstones. Returns the messages deleted.
pub(crate) fn purge_at(conn: &Connection, now: i64) -> Result<Purged> {
    let expired = {
        let mut stmt = conn
            .prepare_cached("SELECT channel_id, id FROM channel_messages WHERE expires_at <= ?1")?;
        let rows = stmt.query_map([now], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    conn.prepare_cached("DELETE FROM channel_messages WHERE expires_at <= ?1")?
        .execute([now])?;
    conn.prepare_cached("DELETE FROM channel_pending_edits WHERE expires_at <= ?1")?
        .execute([now])?;
    conn.prepare_cached("DELETE FROM channel_tombstones WHERE keep_until <= ?1")?
        .execute(params![now])?;
    let direct = {
        let mut stmt =
            conn.prepare_cached("SELECT peer, id FROM messages WHERE expires_at <= ?1")?;
        let rows = stmt.query_map([now], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    conn.prepare_cached("DELETE FROM messages WHERE expires_at <= ?1")?
        .execute([now])?;
    Ok(Purged {
        channel: expired
            .into_iter()
            .filter_map(|(channel, id)| channel.try_into().ok().map(|c| (c, id)))
            .collect(),
        direct: direct
            .into_iter()
            .filter_map(|(peer, id)| AccountId::from_bytes(&peer).ok().map(|p| (p, id)))
            .collect(),
    })
}

/// Copies the WAL into the database and truncates it, so frames holding
/// deleted text are gone. Best effort: a failure is logged, and the next
/// checkpoint (SQLite's own, or the next purge) does it.
pub(crate) fn scrub(conn: &Connection) {
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    match done {
        Ok(0) => {}
        Ok(_) => tracing::warn!("WAL checkpoint after a delete could not finish (busy)"),
        Err(e) => tracing::warn!("WAL checkpoint after a delete failed: {e}"),
    }
}

impl Account {
    /// Deletes every message whose disappearing timer has run out (our own
    /// and received; channel messages with their attachments and search
    /// entry, and 1:1 texts), then checkpoints the WAL so the text is gone
    /// from the raw files. Returns how many messages went; raises
    /// [`Event::ChannelMessageExpired`] or [`Event::MessageExpired`] for
    /// each. The client runs it on open, after each receive batch and on a
    /// timer.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn purge_expired(&mut self) -> Result<usize> {
        self.purge_expired_at(self.clock.now_ms())
    }

    pub(crate) fn purge_expired_at(&mut self, now: i64) -> Result<usize> {
        let due = match self.next_due {
            Some(due) => due,
            None => {
                let due = next_due(self.store.conn())?;
                self.next_due = Some(due);
                due
            }
        };
        match due {
            Some(due) if due <= now => {}
            _ => return Ok(0),
        }
        let tx = self.store.write()?;
        let expired = purge_at(&tx, now)?;
        tx.commit()?;
        self.next_due = None;
        scrub(self.store.conn());
        self.events
            .extend(expired.channel.iter().map(|(channel_id, message_id)| {
                Event::ChannelMessageExpired {
                    channel_id: *channel_id,
                    message_id: *message_id,
                }
            }));
        self.events.extend(
            expired
                .direct
                .iter()
                .map(|(peer, message_id)| Event::MessageExpired {
                    peer: *peer,
                    message_id: *message_id,
                }),
        );
        Ok(expired.len())
    }

    /// Sets a channel's disappearing timer, in seconds (0 off): an
    /// organizer's change to the committee's log. Messages sent after it
    /// carry the new timer; those already sent keep theirs.
    pub fn set_channel_timer(
        &mut self,
        committee: &CommitteeId,
        channel: &ChannelId,
        secs: u32,
    ) -> Result<CommitteeChange> {
        if secs > MAX_DISAPPEARING_SECS {
            return Err(Error::InvalidCommitteeEntry("disappearing timer too long"));
        }
        self.change(
            committee,
            Op::SetChannelTimer {
                channel_id: *channel,
                secs,
            },
        )
    }

    /// When the next message, channel or 1:1 (or waiting edit, or
    /// tombstone), is due for the purge, ms since the epoch.
    #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
    pub(crate) fn next_expiry(&self) -> Result<Option<i64>> {
        next_due(self.store.conn())
    }

    /// After a receive batch commits: purges what is due (alerts too), and
    /// checkpoints the WAL when the batch edited or deleted text. Never fails
    /// the batch.
    ///
    /// Also puts the search backlog into the index, when it may hold
    /// messages, at most once per [`SEARCH_INDEX_PAUSE`]: one index write for
    /// many messages.
    pub(crate) fn channel_upkeep(&mut self, scrub_wanted: bool) {
        match self.purge_expired() {
            Ok(0) if scrub_wanted => scrub(self.store.conn()),
            Ok(_) => {}
            Err(e) => tracing::warn!("purging expired channel messages failed: {e}"),
        }
        // Alerts whose time is up go too (a look every few minutes at most).
        self.alert_purge_upkeep();
        if self.search_backlog
            && self
                .search_indexed_at
                .is_none_or(|t| t.elapsed() >= SEARCH_INDEX_PAUSE)
        {
            match super::search::index_backlog(self.store.conn()) {
                Ok(_) => self.search_backlog = false,
                Err(e) => tracing::warn!("indexing channel messages for search failed: {e}"),
            }
            self.search_indexed_at = Some(std::time::Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stricter_timer_wins_and_a_clock_ahead_does_not_extend_a_message() {
        assert_eq!(effective_timer(0, 0), 0);
        assert_eq!(effective_timer(60, 0), 60);
        assert_eq!(effective_timer(0, 60), 60);
        assert_eq!(effective_timer(60, 30), 30);
        assert_eq!(expires_at(1_000, 5_000, 0), None);
        assert_eq!(expires_at(1_000, 5_000, 2), Some(3_000));
        // An author's clock a day ahead: counted from our clock.
        assert_eq!(expires_at(86_400_000 + 5_000, 5_000, 2), Some(7_000));
    }
}
