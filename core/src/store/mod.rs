//! The encrypted device store: one SQLCipher database per account.
//!
//! Opening happens in a fixed order — key, check the key, pragmas, WAL,
//! migrations — in [`open`]; then a store small enough is read into its page
//! cache ([`warm`]). The rest of the core reaches the database through
//! [`Store`], which hands out one write transaction at a time: libsignal's
//! operations for one envelope, and everything that envelope changes, run inside
//! one of them.

mod key;
mod migrations;
mod open;
pub(crate) mod signal;
mod transaction;
mod unsynced;
mod warm;
mod wipe;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use key::{DatabaseKey, DATABASE_KEY_LEN};
pub use migrations::SCHEMA_VERSION;
pub(crate) use open::Tuning;
pub use open::PAGE_CACHE_KIB;
pub(crate) use transaction::{WriteTransaction, BEGIN_SQL, COMMIT_SQL, ROLLBACK_SQL};
pub use unsynced::Unsynced;
pub use wipe::panic_wipe;

use crate::error::Result;

/// An open, unlocked store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    tuning: open::Tuning,
    flusher: unsynced::Flusher,
}

impl Store {
    /// Creates a new store at `path`, encrypted with `key`. Fails with
    /// [`Error::StoreExists`](crate::Error::StoreExists) if anything is there.
    pub fn create(path: &Path, key: &DatabaseKey) -> Result<Self> {
        Self::create_tuned(path, key, open::Tuning::default())
    }

    /// [`Store::create`] with another page cache and WAL limit.
    pub(crate) fn create_tuned(
        path: &Path,
        key: &DatabaseKey,
        tuning: open::Tuning,
    ) -> Result<Self> {
        let conn = open::create(path, key, tuning)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            tuning,
            flusher: unsynced::Flusher::new(path, key, tuning),
        })
    }

    /// Opens the store at `path`. A wrong key is
    /// [`Error::WrongDatabaseKey`](crate::Error::WrongDatabaseKey); a missing file
    /// is [`Error::StoreMissing`](crate::Error::StoreMissing), never a new
    /// empty database.
    pub fn open(path: &Path, key: &DatabaseKey) -> Result<Self> {
        Self::open_tuned(path, key, open::Tuning::default())
    }

    /// [`Store::open`] with another page cache and WAL limit.
    pub(crate) fn open_tuned(path: &Path, key: &DatabaseKey, tuning: open::Tuning) -> Result<Self> {
        let conn = open::open_existing(path, key, tuning)?;
        warm::warm(&conn, tuning.cache_kib);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            tuning,
            flusher: unsynced::Flusher::new(path, key, tuning),
        })
    }

    /// Starts a write transaction. SQLite takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction never fails halfway for want of it.
    pub(crate) fn write(&mut self) -> Result<WriteTransaction<'_>> {
        WriteTransaction::begin(&mut self.conn)
    }

    /// Whether commits wait for the disk (the default) or leave the flush to
    /// an [`Unsynced`] from [`Store::unsynced`]; see [`unsynced`].
    pub(crate) fn set_flush(&self, flush: bool) -> Result<()> {
        unsynced::set_flush(&self.conn, flush, self.tuning)
    }

    /// A handle that makes every commit so far durable when synced, after
    /// `envelopes` were committed unsynced.
    pub(crate) fn unsynced(&mut self, envelopes: usize) -> Result<Unsynced> {
        self.flusher.unsynced(&self.path, envelopes)
    }

    /// Brings a plain (unencrypted) connection to this build's schema: for
    /// tests that read a store's raw files.
    #[cfg(test)]
    pub(crate) fn migrate_plain(conn: &mut Connection) -> Result<()> {
        migrations::migrate(conn)
    }

    /// Read-only access for queries outside a transaction.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Panic wipe: closes the store and destroys its files so that nothing can
    /// be read back from what is left on disk. See [`wipe`].
    pub fn wipe(self) -> Result<()> {
        let Store {
            conn,
            path,
            flusher,
            ..
        } = self;
        // Close first so SQLite holds no handle to the files being destroyed:
        // the checkpointer's connection too, even while a flush holds it.
        flusher.close();
        conn.close().map_err(|(_, e)| e)?;
        wipe::destroy_database_files(&path)
    }
}

#[cfg(any(test, feature = "testing"))]
impl Store {
    /// Every row of every table, in a fixed order, one line per row: for tests
    /// and diagnostics that must show a database did not change. It holds
    /// plaintext, like the store itself; never log it (`testing` only).
    pub fn dump(&self) -> Result<String> {
        let mut tables: Vec<String> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for t in rows {
                tables.push(t?);
            }
        }
        let mut out = String::new();
        for table in tables {
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
            let columns = stmt.column_count();
            let mut lines: Vec<String> = Vec::new();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let mut line = format!("{table}:");
                for i in 0..columns {
                    let v: rusqlite::types::Value = row.get(i)?;
                    line.push_str(&format!(" {v:?}"));
                }
                lines.push(line);
            }
            lines.sort();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "user_version: {}\n",
            self.conn
                .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?
        ));
        Ok(out)
    }
}
