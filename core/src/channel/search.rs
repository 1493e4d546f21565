//! Full-text search over channel messages: SQLite FTS5 inside the encrypted
//! database, over `channel_messages` and kept in step with every insert,
//! edit, delete and expiry by triggers (migration 6). What the user types is
//! never FTS5 syntax: each word becomes a quoted prefix term, all must match.

use rusqlite::params;

use super::{store, ChannelMessage};
use crate::account::Account;
use crate::clock::now_ms;
use crate::error::Result;
use crate::message::CHANNEL_ID_LEN;

/// Most words of a query used; the rest are ignored.
const MAX_QUERY_TERMS: usize = 16;

/// The FTS5 query for what the user typed: every word as a quoted prefix
/// term (quotes doubled inside), so no input is read as FTS5 syntax.
/// `None` when there is no word to look for.
fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .take(MAX_QUERY_TERMS)
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Account {
    /// Channel messages whose text contains every word of `text` (as a word
    /// or the start of one; case and accents ignored), newest first, below
    /// `before_id` when given; in one channel or, with `None`, in all.
    pub fn search_channel_messages(
        &self,
        channel_id: Option<&[u8; CHANNEL_ID_LEN]>,
        text: &str,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChannelMessage>> {
        let Some(query) = fts_query(text) else {
            return Ok(Vec::new());
        };
        let conn = self.store.conn();
        let rows = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM channel_search s JOIN channel_messages m ON m.id = s.rowid
                 WHERE channel_search MATCH ?1 AND s.rowid < ?2
                   AND (?3 IS NULL OR m.channel_id = ?3)
                   AND (m.expires_at IS NULL OR m.expires_at > ?5)
                 ORDER BY s.rowid DESC LIMIT ?4",
                store::COLUMNS
            ))?;
            let rows = stmt.query_map(
                params![
                    query,
                    before_id.unwrap_or(i64::MAX),
                    channel_id.map(|c| c.to_vec()),
                    limit,
                    now_ms()
                ],
                store::read_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        store::complete(conn, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_becomes_quoted_prefix_terms() {
        assert_eq!(fts_query("   "), None);
        assert_eq!(
            fts_query("strike vote"),
            Some("\"strike\"* \"vote\"*".into())
        );
        assert_eq!(
            fts_query("a\"b OR NEAR("),
            Some("\"a\"\"b\"* \"OR\"* \"NEAR(\"*".into())
        );
    }
}
