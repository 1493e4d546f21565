//! Read state on this device: a read marker per channel (the last message
//! read, by local ID) and the unread counts that follow from it. Nothing of
//! it leaves the device.

use rusqlite::{params, OptionalExtension};

use crate::account::Account;
use crate::error::Result;
use crate::message::CHANNEL_ID_LEN;

impl Account {
    /// Marks a channel read up to the message with local ID `up_to` (and
    /// everything before it). The marker never moves back.
    pub fn mark_channel_read(
        &mut self,
        channel_id: &[u8; CHANNEL_ID_LEN],
        up_to: i64,
    ) -> Result<()> {
        self.store
            .conn()
            .prepare_cached(
                "INSERT INTO channel_read_markers (channel_id, last_read_id) VALUES (?1, ?2)
                 ON CONFLICT DO UPDATE SET last_read_id = max(last_read_id, excluded.last_read_id)",
            )?
            .execute(params![&channel_id[..], up_to])?;
        Ok(())
    }

    /// The last message read in a channel, if any was marked.
    pub fn channel_read_marker(&self, channel_id: &[u8; CHANNEL_ID_LEN]) -> Result<Option<i64>> {
        Ok(self
            .store
            .conn()
            .prepare_cached("SELECT last_read_id FROM channel_read_markers WHERE channel_id = ?1")?
            .query_row([&channel_id[..]], |r| r.get(0))
            .optional()?)
    }

    /// Messages from others in a channel after its read marker (not expired).
    pub fn channel_unread_count(&self, channel_id: &[u8; CHANNEL_ID_LEN]) -> Result<u64> {
        let n: i64 = self
            .store
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM channel_messages
                 WHERE channel_id = ?1 AND outgoing = 0
                   AND id > coalesce((SELECT last_read_id FROM channel_read_markers
                                      WHERE channel_id = ?1), 0)
                   AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row(params![&channel_id[..], self.clock.now_ms()], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
