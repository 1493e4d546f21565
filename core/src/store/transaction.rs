//! The store's write transaction: `BEGIN IMMEDIATE` … `COMMIT`, rolled back if
//! dropped before its commit.
//!
//! Like rusqlite's `Transaction`, but its three statements come from the
//! connection's statement cache: rusqlite parses `BEGIN` and `COMMIT` afresh
//! for every transaction, which cost a received alert about 2% of its time on
//! the account thread.

use std::ops::Deref;

use rusqlite::Connection;

use crate::error::Result;

/// The transaction's statements, kept in the connection's statement cache.
pub(crate) const BEGIN_SQL: &str = "BEGIN IMMEDIATE";
pub(crate) const COMMIT_SQL: &str = "COMMIT";
pub(crate) const ROLLBACK_SQL: &str = "ROLLBACK";

/// A write transaction on the store's connection. Reads and writes go through
/// it as through the connection itself (it derefs to one).
pub(crate) struct WriteTransaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> WriteTransaction<'c> {
    /// Takes the write lock at once, so the transaction never fails halfway
    /// for want of it.
    pub(super) fn begin(conn: &'c mut Connection) -> Result<Self> {
        conn.prepare_cached(BEGIN_SQL)?.execute([])?;
        Ok(WriteTransaction { conn, open: true })
    }

    /// Commits. On failure the transaction is still open, and is rolled back
    /// when dropped.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.conn.prepare_cached(COMMIT_SQL)?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTransaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to do about a failed rollback here: SQLite rolls back a
            // transaction left open when the connection closes.
            let _ = self
                .conn
                .prepare_cached(ROLLBACK_SQL)
                .and_then(|mut rollback| rollback.execute([]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_transaction_commits_or_rolls_back_whole() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("table");
        let tx = WriteTransaction::begin(&mut conn).expect("begin");
        tx.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        tx.execute("INSERT INTO t VALUES (2)", []).expect("insert");
        drop(tx);
        assert_eq!(count(&conn), 0, "dropped before its commit");
        assert!(conn.is_autocommit(), "nothing left open");
        let tx = WriteTransaction::begin(&mut conn).expect("begin");
        tx.execute("INSERT INTO t VALUES (3)", []).expect("insert");
        tx.commit().expect("commit");
        assert_eq!(count(&conn), 1);
        // The cached statements serve the next transactions as well.
        for x in 4..6 {
            let tx = WriteTransaction::begin(&mut conn).expect("begin");
            tx.execute("INSERT INTO t VALUES (?1)", [x])
                .expect("insert");
            tx.commit().expect("commit");
        }
        assert_eq!(count(&conn), 3);
        assert!(conn.is_autocommit());
    }
}
