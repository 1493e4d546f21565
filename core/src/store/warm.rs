//! Reading a small store into its page cache when it opens.
//!
//! A page read from disk costs a decryption and its HMAC check, and a page
//! cache that has never held it costs a fresh allocation too. After the app
//! starts, the first message (often an alert, woken by a push) would pay that
//! for every page of every table it touches: in the alert fan-out, reading
//! cold pages was a fifth of each phone's work, more than the cryptography of
//! the message itself. So a store that fits in its page cache is read whole at
//! open. SQLite's `quick_check` is what reads it: it walks every b-tree, its
//! overflow chains and the free list, page by page, through the page cache,
//! and checks their structure on the way. A larger store is left cold: reading
//! it would evict what it read.

use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Reads every page of the store into the page cache if all of them fit in
/// `cache_kib`. Never fails the open: a store whose check finds damage (or a
/// page whose HMAC does not verify) still opens, and the query that meets the
/// damage reports it; only a warning is logged here, without content.
pub(super) fn warm(conn: &Connection, cache_kib: u32) {
    // SQLCipher answers `page_size` itself, as text (`cipher_page_size`).
    let number = |pragma: &str| -> Option<i64> {
        conn.query_row(pragma, [], |r| match r.get_ref(0)? {
            ValueRef::Integer(n) => Ok(Some(n)),
            ValueRef::Text(t) => Ok(std::str::from_utf8(t).ok().and_then(|t| t.parse().ok())),
            _ => Ok(None),
        })
        .ok()
        .flatten()
    };
    let (Some(count), Some(size)) = (number("PRAGMA page_count"), number("PRAGMA page_size"))
    else {
        return;
    };
    if size <= 0 || count.saturating_mul(size) > i64::from(cache_kib) * 1024 {
        return;
    }
    match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)) {
        Ok(verdict) if verdict == "ok" => {}
        Ok(_) => tracing::warn!("the store's structure check found damage"),
        Err(e) => tracing::warn!("the store's structure check failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{DatabaseKey, Store, Tuning};

    /// A store with some rows, checkpointed so the file holds every page.
    fn made(path: &Path, key: &DatabaseKey, tuning: Tuning, rows: usize) {
        let store = Store::create_tuned(path, key, tuning).expect("create");
        let conn = store.conn();
        conn.execute_batch("CREATE TABLE t (x BLOB)")
            .expect("table");
        for _ in 0..rows {
            conn.execute("INSERT INTO t VALUES (randomblob(1000))", [])
                .expect("row");
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }

    /// Overwrites the database file (not the WAL) with other bytes: from
    /// now on only pages already in the page cache can be read.
    fn spoil(path: &Path) {
        let len = std::fs::metadata(path).expect("size").len();
        std::fs::write(path, vec![0x5a; len as usize]).expect("spoil");
    }

    /// A store of about 60 pages, reopened with a page cache of `cache_kib`,
    /// its file then spoiled.
    fn reopened_then_spoiled(cache_kib: u32) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db");
        let key = DatabaseKey::generate();
        let tuning = Tuning {
            cache_kib,
            wal_kib: 0,
        };
        made(&path, &key, tuning, 200);
        let store = Store::open_tuned(&path, &key, tuning).expect("open");
        spoil(&path);
        (dir, store)
    }

    #[test]
    fn a_store_that_fits_its_cache_is_read_whole_at_open() {
        let (_dir, store) = reopened_then_spoiled(1024);
        // Every page comes from the cache: the spoiled file is never read.
        let dump = store
            .dump()
            .map_err(|e| e.to_string())
            .expect("every row, from the cache");
        assert!(dump.len() >= 200);
    }

    #[test]
    fn a_store_larger_than_its_cache_is_left_cold() {
        let (_dir, store) = reopened_then_spoiled(64);
        assert!(
            store.dump().is_err(),
            "pages were read from the spoiled file"
        );
    }
}
