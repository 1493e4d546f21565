//! Opening a SQLCipher database, in one fixed order: key → key check → pragmas
//! → WAL → migrations.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::key::DatabaseKey;
use super::migrations;
use crate::error::{Error, Result};

/// Page cache per connection, in KiB, unless the account is opened with other
/// options (`cache_size` takes it negated, which SQLite reads as KiB).
pub const PAGE_CACHE_KIB: u32 = 16 * 1024;

/// How a connection is sized: its page cache, and the WAL size at which it
/// checkpoints (0: SQLite's default, 1,000 pages, the file never shrunk).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    pub(crate) cache_kib: u32,
    pub(crate) wal_kib: u32,
}

impl Tuning {
    /// WAL pages at which the connection checkpoints (SQLite's default is
    /// 1,000).
    pub(crate) fn autocheckpoint_pages(&self) -> u32 {
        if self.wal_kib > 0 {
            (self.wal_kib / 4).max(1)
        } else {
            1_000
        }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            cache_kib: PAGE_CACHE_KIB,
            wal_kib: 0,
        }
    }
}

/// Creates a new database at `path`, sized by `tuning`. Refuses
/// if a file is already there, and removes what it made if any step fails.
pub(super) fn create(path: &Path, key: &DatabaseKey, tuning: Tuning) -> Result<Connection> {
    if path.exists() {
        return Err(Error::StoreExists);
    }
    sqlcipher_ready()?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let result = Connection::open_with_flags(path, flags)
        .map_err(Error::from)
        .and_then(|mut conn| {
            prepare(&mut conn, key, tuning)?;
            Ok(conn)
        });
    if result.is_err() {
        // Best effort: a half-made store must not be mistaken for a real one.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(super::wipe::with_suffix(path, suffix));
        }
    }
    result
}

/// Opens an existing database, sized by `tuning`. Never creates one.
pub(super) fn open_existing(path: &Path, key: &DatabaseKey, tuning: Tuning) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::StoreMissing);
    }
    sqlcipher_ready()?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    prepare(&mut conn, key, tuning)?;
    Ok(conn)
}

/// Waits, once per process, until SQLCipher can key a connection.
///
/// SQLite marks itself initialized and only then, outside its own lock, runs
/// SQLCipher's process-wide set-up. A thread that opens a connection inside
/// that window skips the set-up as done, and its `PRAGMA key` fails. So the
/// first open in a process keys a throwaway in-memory connection first: if this
/// thread is the one initializing SQLite, that open returns only after the
/// set-up; if another thread (any SQLite user in the process) is, it retries
/// until the set-up is done. Later opens find the flag set.
fn sqlcipher_ready() -> Result<()> {
    static READY: Mutex<bool> = Mutex::new(false);
    /// Tries, a millisecond apart: SQLCipher's set-up takes well under one.
    const TRIES: u32 = 5_000;

    let mut ready = READY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *ready {
        return Ok(());
    }
    let mut last = None;
    for _ in 0..TRIES {
        let keyed = Connection::open_in_memory().and_then(|conn| {
            conn.pragma_update(None, "cipher_log_level", "NONE")?;
            conn.pragma_update(None, "key", "set-up probe")
        });
        match keyed {
            Ok(()) => {
                *ready = true;
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(last.map_or_else(
        || Error::Storage("SQLCipher did not initialize".into()),
        Error::from,
    ))
}

fn prepare(conn: &mut Connection, key: &DatabaseKey, tuning: Tuning) -> Result<()> {
    // SQLCipher logs failed page decryptions (a wrong key) to stderr by
    // default; the typed error says it all, and logs must stay quiet.
    conn.pragma_update(None, "cipher_log_level", "NONE")?;

    // 1. The key, before anything touches the file, through SQLCipher's C
    //    API: it never passes through SQL, so no statement or parser buffer
    //    of SQLite's holds a copy; SQLCipher keeps it in its private heap,
    //    locked and wiped when freed.
    key_connection(conn, key)?;
    //    Pages are authenticated with HMAC-SHA256 rather than SQLCipher's default
    //    SHA-512: as strong for a MAC, and far cheaper on phones, whose ARMv8
    //    cores (like this machine's x86 ones) accelerate SHA-256 in hardware.
    //    Every page written and every page read from disk pays it, so it decides
    //    a phone's catch-up speed. It must be set the same way at every open.
    conn.pragma_update(None, "cipher_hmac_algorithm", "HMAC_SHA256")?;

    // 2. Prove the key: the first read of an encrypted page fails with
    //    SQLITE_NOTADB under a wrong key.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| match Error::from(e) {
        Error::WrongDatabaseKey => Error::WrongDatabaseKey,
        other => other,
    })?;

    // 3. Pragmas that hold for the connection's lifetime.
    //    Deleted content is overwritten with zeros, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    //    Temporary tables and indices stay in memory, never in plaintext temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;

    // 4. WAL, outside any transaction (SQLite refuses the switch inside one).
    //    FULL makes every commit fsync the WAL: a committed envelope survives
    //    power loss, which is what lets us acknowledge it to the relay.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage(format!("journal mode is {mode}, not WAL")));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    //    A 16 MiB page cache by default (SQLite's default is 2 MiB): pages found
    //    in memory are not read back and decrypted. The receive path inserts
    //    envelope IDs at random places in an index, which misses a small cache
    //    constantly. Simulated phones sharing one machine ask for less.
    conn.pragma_update(None, "cache_size", -i64::from(tuning.cache_kib))?;
    //    By default SQLite checkpoints the WAL at 1,000 pages and never shrinks
    //    it; a store that asks for a WAL limit checkpoints sooner and truncates
    //    the file back to it (thousands of simulated phones on one RAM disk).
    if tuning.wal_kib > 0 {
        conn.pragma_update(None, "wal_autocheckpoint", tuning.autocheckpoint_pages())?;
        conn.pragma_update(None, "journal_size_limit", i64::from(tuning.wal_kib) * 1024)?;
    }

    // 5. Prepared statements kept for reuse. rusqlite keeps 16 by default,
    //    fewer than one receive batch uses (envelope IDs, sessions, contacts,
    //    messages, channel and alert tables, the outbox, the purge): the cache
    //    evicted statements the next message needed and SQLite parsed them
    //    again, message after message. This holds every statement the core has.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

    // 6. Schema.
    migrations::migrate(conn)?;
    Ok(())
}

/// Keys `conn` with the raw key by `sqlite3_key_v2`.
///
/// `PRAGMA key` would take the key as SQL text, which SQLite copies into the
/// prepared statement and the parser's buffers and frees without wiping;
/// only SQLCipher's `cipher_memory_security` would wipe those, and it wipes
/// (and locks, and unlocks) every allocation SQLite makes for the life of the
/// process: measured here it made a 10,000-message catch-up 20-25% slower
/// (`benches/core_vs_libsignal.rs`, `examples/memory_security_cost.rs`), as
/// Signal found before disabling it on Android. The key is what must not be
/// left behind, and this way SQLite never sees it.
#[allow(unsafe_code)]
fn key_connection(conn: &Connection, key: &DatabaseKey) -> Result<()> {
    let text = key.raw_key_text();
    let len = std::ffi::c_int::try_from(text.len())
        .map_err(|_| Error::Storage("key text too long".into()))?;
    // SAFETY: the handle is `conn`'s own, live for this borrow and used on
    // this thread only; "main" is a NUL-terminated literal; SQLCipher reads
    // `len` bytes from `text`, which outlives the call, and copies them.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_key_v2(conn.handle(), c"main".as_ptr(), text.as_ptr().cast(), len)
    };
    match rc {
        rusqlite::ffi::SQLITE_OK => Ok(()),
        code => Err(Error::Storage(format!(
            "SQLCipher refused the key (code {code})"
        ))),
    }
}

/// Prepared statements kept per connection: more than the core has (about a
/// hundred), so none is parsed twice. Only those used take memory.
const STATEMENT_CACHE: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw key, handed over by the C API, opens the store
    /// and no other does.
    #[test]
    fn the_raw_key_opens_and_another_does_not() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db");
        let key = DatabaseKey::generate();
        drop(create(&path, &key, Tuning::default()).expect("create"));
        assert!(open_existing(&path, &key.duplicate(), Tuning::default()).is_ok());
        assert!(matches!(
            open_existing(&path, &DatabaseKey::generate(), Tuning::default()),
            Err(Error::WrongDatabaseKey)
        ));
    }
}
