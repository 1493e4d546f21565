//! Commits whose fsync is left to the caller, so the disk's flush of one
//! receive batch overlaps the work on the next.
//!
//! Every commit normally waits for the WAL's fsync (`synchronous=FULL`). A
//! phone catching up spends that wait idle: a batch of 1,000 messages waited
//! about 4 ms on this machine's disk, longer on a phone's flash. A receive
//! batch may instead commit with `synchronous=NORMAL` (SQLite writes the WAL
//! but does not flush it) and hand back an [`Unsynced`]: its
//! [`sync`](Unsynced::sync), on any thread, flushes the WAL file, and only
//! after it returns may the batch be acknowledged to the relay. Until then a
//! power loss may roll the batch back (never tear it: WAL frames carry
//! checksums), and the relay, never having had an acknowledgement, delivers
//! it again.
//!
//! Nothing else changes: every other transaction (a send above all, whose
//! ratchet step must be on disk before its ciphertext leaves) still commits
//! with `synchronous=FULL`, and its fsync makes any unsynced batch before it
//! durable too. The WAL is one file for as long as the connection is open
//! (checkpoints truncate it, never replace it), so a handle opened once
//! flushes whatever SQLite wrote to it.
//!
//! Checkpoints move off the account's thread the same way. While commits are
//! unsynced the account's connection puts its own off (up to eight times the
//! usual WAL size, a bound whatever happens); every 8,192 envelopes or so, a
//! flush also copies the WAL into the database file from a second
//! connection, opened the first time it is needed and closed before a wipe.
//! A passive checkpoint never blocks the writer. In the catch-up bench that
//! took about 7% off: the database file's fsync no longer stops the batches.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::key::DatabaseKey;
use super::open::{self, Tuning};
use crate::error::{Error, Result};

/// Envelopes committed unsynced between two checkpoints of the WAL into the
/// database file: about 1,000 WAL pages of 1:1 messages, where SQLite would
/// checkpoint by itself.
const CHECKPOINT_EVERY: usize = 8_192;
/// While commits are unsynced, the connection itself checkpoints only when
/// the WAL grows this many times past its usual point: the checkpointer's
/// connection does it instead, beside the next batch.
const UNSYNCED_CHECKPOINT_FACTOR: u32 = 8;
/// The checkpointer's page cache, KiB: a checkpoint copies WAL frames into
/// the database file without reading pages through the cache.
const CHECKPOINTER_CACHE_KIB: u32 = 256;

/// A committed batch that is not yet known to be on disk.
#[derive(Debug)]
#[must_use = "a batch is durable, and may be acknowledged, only once synced"]
pub struct Unsynced {
    wal: Arc<File>,
    /// Set when the WAL is due to be copied into the database file.
    checkpoint: Option<Arc<Checkpointer>>,
}

impl Unsynced {
    /// Flushes the WAL to disk: every commit made before this returns is
    /// then durable. When the WAL is due for it, then copies it into the
    /// database file from the checkpointer's own connection, so the account's
    /// connection goes on writing meanwhile (a checkpoint's flush of the
    /// database file took about 16 ms on this machine's disk).
    pub fn sync(self) -> Result<()> {
        self.wal.sync_data().map_err(Error::from)?;
        if let Some(checkpointer) = self.checkpoint {
            checkpointer.run();
        }
        Ok(())
    }
}

/// A second connection to the store, opened when first needed, that only
/// checkpoints. A passive checkpoint never blocks the writer; whatever it
/// has not copied the next one does, and nothing is lost if it fails.
pub(super) struct Checkpointer {
    path: PathBuf,
    key: DatabaseKey,
    tuning: Tuning,
    /// `Err(())` once the store is closed or wiped: never open it again.
    conn: Mutex<std::result::Result<Option<Connection>, ()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checkpointer")
    }
}

impl Checkpointer {
    fn run(&self) {
        let Ok(mut slot) = self.conn.lock() else {
            return;
        };
        let Ok(conn) = slot.as_mut() else {
            return;
        };
        if conn.is_none() {
            let tuning = Tuning {
                cache_kib: CHECKPOINTER_CACHE_KIB,
                ..self.tuning
            };
            match open::open_existing(&self.path, &self.key, tuning) {
                Ok(c) => *conn = Some(c),
                Err(e) => {
                    tracing::warn!("could not open the checkpointer: {e}");
                    return;
                }
            }
        }
        if let Some(c) = conn.as_ref() {
            if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!("checkpoint failed: {e}");
            }
        }
    }

    /// Closes the checkpointer's connection for good, before the store's
    /// files are closed or destroyed.
    pub(super) fn close(&self) {
        if let Ok(mut slot) = self.conn.lock() {
            *slot = Err(());
        }
    }
}

/// What a store needs to hand out [`Unsynced`] handles: the open WAL file
/// and the checkpointer.
pub(super) struct Flusher {
    wal: Option<Arc<File>>,
    checkpointer: Arc<Checkpointer>,
    /// Envelopes committed unsynced since a checkpoint was last asked for.
    since_checkpoint: usize,
    every: usize,
}

impl Flusher {
    pub(super) fn new(path: &Path, key: &DatabaseKey, tuning: Tuning) -> Self {
        Flusher {
            wal: None,
            checkpointer: Arc::new(Checkpointer {
                path: path.to_path_buf(),
                key: key.duplicate(),
                tuning,
                conn: Mutex::new(Ok(None)),
            }),
            since_checkpoint: 0,
            every: CHECKPOINT_EVERY,
        }
    }

    /// A handle to flush what the connection has written so far, after
    /// `envelopes` more were committed unsynced. The WAL exists once the
    /// store has committed in WAL mode.
    pub(super) fn unsynced(&mut self, db: &Path, envelopes: usize) -> Result<Unsynced> {
        let wal = match &self.wal {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(File::open(super::wipe::with_suffix(db, "-wal"))?);
                self.wal = Some(f.clone());
                f
            }
        };
        self.since_checkpoint += envelopes;
        let checkpoint = (self.since_checkpoint >= self.every).then(|| {
            self.since_checkpoint = 0;
            self.checkpointer.clone()
        });
        Ok(Unsynced { wal, checkpoint })
    }

    pub(super) fn close(&self) {
        self.checkpointer.close();
    }
}

/// Whether commits wait for the WAL's fsync (`synchronous=FULL`, the
/// default) or leave it to an [`Unsynced`] (`synchronous=NORMAL`, and the
/// connection's own checkpoints put off: the checkpointer does them).
pub(super) fn set_flush(conn: &Connection, flush: bool, tuning: Tuning) -> Result<()> {
    let usual = tuning.autocheckpoint_pages();
    let (mode, pages) = if flush {
        ("FULL", usual)
    } else {
        ("NORMAL", usual.saturating_mul(UNSYNCED_CHECKPOINT_FACTOR))
    };
    conn.pragma_update(None, "synchronous", mode)?;
    conn.pragma_update(None, "wal_autocheckpoint", pages)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use crate::account::Account;
    use crate::receive::{Inbound, Received};
    use crate::store::DatabaseKey;

    fn synchronous(account: &Account) -> i64 {
        account
            .store
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous")
    }

    fn checkpointer_open(account: &Account) -> bool {
        matches!(
            *account
                .store
                .flusher
                .checkpointer
                .conn
                .lock()
                .expect("lock"),
            Ok(Some(_))
        )
    }

    /// Bob, and `n` envelopes from Alice waiting for him.
    fn bob_and_waiting(dir: &Path, n: usize) -> (Account, Vec<Vec<u8>>) {
        let mut alice =
            Account::create(&dir.join("a.db"), &DatabaseKey::generate()).expect("alice");
        let mut bob = Account::create(&dir.join("b.db"), &DatabaseKey::generate()).expect("bob");
        alice
            .add_contact("bob", &bob.prekey_bundle().expect("bundle"))
            .expect("contact");
        let sent = (0..n)
            .map(|i| {
                alice
                    .send_text(&bob.id(), &format!("m{i}"))
                    .expect("send")
                    .bytes
            })
            .collect();
        (bob, sent)
    }

    fn inbound(sent: &[Vec<u8>]) -> Vec<Inbound<'_>> {
        sent.iter().map(|e| Inbound::Envelope(e)).collect()
    }

    #[test]
    fn an_unsynced_batch_is_committed_then_flushed_through_the_wal_itself() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut bob, sent) = bob_and_waiting(dir.path(), 20);
        const FULL: i64 = 2;
        assert_eq!(synchronous(&bob), FULL);
        let (results, unsynced) = bob.receive_all_unsynced(&inbound(&sent)).expect("batch");
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(Received::Stored { .. }))));
        // Committed: the messages are there, and a redelivery is a duplicate.
        assert_eq!(bob.message_count().expect("count"), 20);
        assert_eq!(bob.receive(&sent[0]).expect("again"), Received::Duplicate);
        // Every later commit waits for the disk again.
        assert_eq!(synchronous(&bob), FULL);
        // The handle is the WAL SQLite writes, not some other file.
        let wal = std::fs::metadata(dir.path().join("b.db-wal")).expect("wal");
        assert_eq!(unsynced.wal.metadata().expect("handle").ino(), wal.ino());
        // Too few envelopes for a checkpoint: no second connection.
        assert!(unsynced.checkpoint.is_none());
        unsynced.sync().expect("sync");
        assert!(!checkpointer_open(&bob));
    }

    #[test]
    fn enough_unsynced_envelopes_are_checkpointed_from_a_second_connection() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut bob, sent) = bob_and_waiting(dir.path(), 20);
        bob.store.flusher.every = 15;
        let db = dir.path().join("b.db");
        let (_, first) = bob
            .receive_all_unsynced(&inbound(&sent[..10]))
            .expect("batch");
        assert!(first.checkpoint.is_none());
        first.sync().expect("sync");
        let before = std::fs::metadata(&db).expect("db").len();
        let (_, second) = bob
            .receive_all_unsynced(&inbound(&sent[10..]))
            .expect("batch");
        assert!(second.checkpoint.is_some());
        second.sync().expect("sync and checkpoint");
        assert!(checkpointer_open(&bob));
        // The WAL's pages went into the database file.
        let after = std::fs::metadata(&db).expect("db").len();
        assert!(after > before, "{before} → {after} bytes");
        assert_eq!(bob.message_count().expect("count"), 20);
    }

    #[test]
    fn a_wipe_closes_the_checkpointer_even_while_a_flush_holds_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut bob, sent) = bob_and_waiting(dir.path(), 4);
        bob.store.flusher.every = 1;
        let (_, unsynced) = bob.receive_all_unsynced(&inbound(&sent)).expect("batch");
        assert!(unsynced.checkpoint.is_some());
        bob.wipe().expect("wipe");
        // The flush after the wipe neither fails nor brings a file back.
        unsynced.sync().expect("sync after the wipe");
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("b.db{suffix}"));
            assert!(!file.exists(), "{} is back", file.display());
        }
    }
}
