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

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// A committed batch that is not yet known to be on disk.
#[derive(Debug)]
#[must_use = "a batch is durable, and may be acknowledged, only once synced"]
pub struct Unsynced {
    wal: Arc<File>,
}

impl Unsynced {
    /// Flushes the WAL to disk: every commit made before this returns is
    /// then durable.
    pub fn sync(self) -> Result<()> {
        self.wal.sync_data().map_err(Error::from)
    }
}

/// The open WAL file of a store, for [`Unsynced`] handles.
#[derive(Default)]
pub(super) struct WalHandle {
    file: Option<Arc<File>>,
}

impl WalHandle {
    /// A handle to flush what the connection has written so far. The WAL
    /// exists once the store has committed in WAL mode.
    pub(super) fn unsynced(&mut self, db: &Path) -> Result<Unsynced> {
        let wal = match &self.file {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(File::open(super::wipe::with_suffix(db, "-wal"))?);
                self.file = Some(f.clone());
                f
            }
        };
        Ok(Unsynced { wal })
    }
}

/// Whether commits wait for the WAL's fsync (`synchronous=FULL`, the
/// default) or leave it to an [`Unsynced`] (`synchronous=NORMAL`).
pub(super) fn set_flush(conn: &Connection, flush: bool) -> Result<()> {
    let mode = if flush { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", mode)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

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

    #[test]
    fn an_unsynced_batch_is_committed_then_flushed_through_the_wal_itself() {
        let dir = tempfile::tempdir().expect("dir");
        let mut alice =
            Account::create(&dir.path().join("a.db"), &DatabaseKey::generate()).expect("alice");
        let mut bob =
            Account::create(&dir.path().join("b.db"), &DatabaseKey::generate()).expect("bob");
        alice
            .add_contact("bob", &bob.prekey_bundle().expect("bundle"))
            .expect("contact");
        let sent: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                alice
                    .send_text(&bob.id(), &format!("m{i}"))
                    .expect("send")
                    .bytes
            })
            .collect();
        const FULL: i64 = 2;
        assert_eq!(synchronous(&bob), FULL);
        let inbound: Vec<Inbound<'_>> = sent.iter().map(|e| Inbound::Envelope(e)).collect();
        let (results, unsynced) = bob.receive_all_unsynced(&inbound).expect("batch");
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
        unsynced.sync().expect("sync");
    }
}
