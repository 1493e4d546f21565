//! Full-text search over channel messages: SQLite FTS5 inside the encrypted
//! database, over `channel_messages`. Triggers (migration 9) keep it in step
//! with every edit, delete and expiry; a new message first joins a backlog,
//! which goes into the index in one write before every search and now and
//! then after receive batches ([`Account::channel_upkeep`]), so receiving a
//! message does not write an index segment of its own. What the user types is
//! never FTS5 syntax: each word becomes a quoted prefix term, all must match.

use rusqlite::{params, Connection};

use super::{store, ChannelMessage};
use crate::account::Account;
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

/// Puts every message waiting in the search backlog into the index, in one
/// transaction. Returns how many went in.
pub(crate) fn index_backlog(conn: &Connection) -> Result<usize> {
    let waiting: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM channel_search_backlog)")?
        .query_row([], |r| r.get(0))?;
    if !waiting {
        return Ok(0);
    }
    let tx = conn.unchecked_transaction()?;
    let indexed = tx
        .prepare_cached(
            "INSERT INTO channel_search (rowid, body)
             SELECT m.id, m.body FROM channel_search_backlog b
             JOIN channel_messages m ON m.id = b.id ORDER BY b.id",
        )?
        .execute([])?;
    tx.prepare_cached("DELETE FROM channel_search_backlog")?
        .execute([])?;
    tx.commit()?;
    Ok(indexed)
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
        index_backlog(conn)?;
        let now = self.clock.now_ms();
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
                    now
                ],
                store::read_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        store::complete(conn, rows, now)
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
