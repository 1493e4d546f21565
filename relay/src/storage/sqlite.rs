//! The SQLite store: WAL, `synchronous=FULL`, one writer thread doing group
//! commits (`writer.rs`), and a small pool of read connections used from
//! blocking tasks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::mpsc;

use super::writer::{self, FnJob, Hook, Job, WriterState};
use super::{
    AccessKey, AccountId, AciAccount, Address, AttachmentMeta, Cursor, DeviceRecord, MailboxId,
    NewMessage, OnCommit, PreKeyUpload, Priority, PublicPreKey, RelayStore, StoredMessage,
    SweepOutcome, TakenBundle,
};
use crate::error::{Error, Result};

/// Write requests that may wait for the writer; senders beyond this wait
/// (backpressure instead of unbounded memory).
const WRITE_QUEUE: usize = 16 * 1024;
/// Read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// Prekey kinds in the tables.
const KIND_EC: i64 = 0;
const KIND_KYBER: i64 = 1;
/// Prepared statements kept per connection: more than the relay has, so none is
/// parsed twice.
const STATEMENT_CACHE: usize = 64;
/// Readers map the database file instead of copying pages in with `pread`.
const READER_MMAP_BYTES: i64 = 256 * 1024 * 1024;

/// The relay's SQLite database.
pub struct SqliteStore {
    writer: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<ReaderPool>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection> {
        let reused = self
            .idle
            .lock()
            .map_err(|_| Error::Store("reader pool poisoned".into()))?
            .pop();
        match reused {
            Some(c) => Ok(c),
            None => open_reader(&self.path),
        }
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `relay.db` in `dir`, migrates it and starts the
    /// writer thread; `max_batch` bounds one group commit.
    pub fn open(dir: &Path, max_batch: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("relay.db");
        let mut conn = Connection::open(&path)?;
        // WAL must be switched on outside any transaction; it lets readers run
        // beside the writer. FULL makes every commit fsync the WAL.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // Savepoints (one per request in a group commit) journal into temp
        // storage: keep it in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        super::migrations::migrate(&mut conn)?;
        restrict_permissions(&path);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("relay-store-writer".into())
            .spawn(move || writer::run(conn, rx, max_batch.max(1)))?;
        Ok(SqliteStore {
            writer: tx,
            readers: Arc::new(ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
    {
        self.write_job(f, true, None).await
    }

    /// A write; `isolated` as in `Job::isolated`; `on_commit` runs on the writer
    /// thread after the commit.
    async fn write_job<T, F>(&self, f: F, isolated: bool, on_commit: Option<Hook<T>>) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
    {
        let (job, rx) = FnJob::boxed(f, isolated, on_commit);
        self.writer
            .send(job)
            .await
            .map_err(|_| Error::StoreClosed)?;
        rx.await.map_err(|_| Error::StoreClosed)?
    }

    /// Stores messages; with `partial`, skips every account one of whose
    /// mailboxes would pass `quota` (and returns those accounts), else refuses
    /// all with `Error::QuotaExceeded`.
    async fn enqueue_job(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        partial: bool,
        on_commit: OnCommit,
    ) -> Result<Vec<AccountId>> {
        let f = move |c: &Connection, state: &mut WriterState| {
            // Check every mailbox first, so the counts change only for what fits.
            let mut per_box: Vec<(MailboxId, u64)> = Vec::new();
            for msg in &messages {
                match per_box.iter_mut().find(|(m, _)| *m == msg.mailbox) {
                    Some((_, n)) => *n += 1,
                    None => per_box.push((msg.mailbox, 1)),
                }
            }
            // An account is skipped whole: a device that got the message while
            // another did not would get it twice when the sender tries again.
            let mut full: Vec<AccountId> = Vec::new();
            for (m, n) in &per_box {
                if state.count(c, m)?.saturating_add(*n) > quota {
                    if !partial {
                        return Err(Error::QuotaExceeded);
                    }
                    if !full.contains(&m.account) {
                        full.push(m.account);
                    }
                }
            }
            let mut insert = c.prepare_cached(
                "INSERT INTO messages (account_id, device_id, priority, sealed, stored_at_ms, expires_at_ms, envelope) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut stored = Vec::with_capacity(messages.len());
            for msg in messages {
                if full.contains(&msg.mailbox.account) {
                    continue;
                }
                insert.execute(params![
                    &msg.mailbox.account[..],
                    msg.mailbox.device,
                    priority_code(msg.priority),
                    msg.sealed,
                    ms(msg.stored_at_ms),
                    ms(msg.expires_at_ms),
                    msg.envelope
                ])?;
                let id = unms(c.last_insert_rowid());
                stored.push((
                    msg.mailbox,
                    StoredMessage {
                        id,
                        priority: msg.priority,
                        sealed: msg.sealed,
                        stored_at_ms: msg.stored_at_ms,
                        envelope: msg.envelope,
                    },
                ));
            }
            for (m, n) in &per_box {
                if !full.contains(&m.account) {
                    state.adjust(m, *n, 0);
                }
            }
            Ok((stored, full))
        };
        let hook: Hook<(Stored, Vec<AccountId>)> =
            Box::new(move |(stored, _)| on_commit(std::mem::take(stored)));
        // Not isolated: the quota is checked before the first insert.
        self.write_job(f, false, Some(hook))
            .await
            .map(|(_, full)| full)
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let out = f(&conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|e| Error::Store(format!("reader task: {e}")))?
    }
}

/// Messages as committed, with their mailboxes: what the commit hook hands on.
type Stored = Vec<(MailboxId, StoredMessage)>;

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(conn)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn account_of(bytes: Vec<u8>) -> Result<AccountId> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt("account id length"))
}

fn access_key_of(bytes: Option<Vec<u8>>) -> Result<Option<AccessKey>> {
    bytes
        .map(|b| {
            b.try_into()
                .map_err(|_| Error::Corrupt("access key length"))
        })
        .transpose()
}

fn priority_code(p: Priority) -> i64 {
    match p {
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

fn insert_prekey(
    conn: &Connection,
    table: &str,
    m: &MailboxId,
    kind: i64,
    k: &PublicPreKey,
) -> Result<()> {
    let sql = format!(
        "INSERT OR REPLACE INTO {table} (account_id, device_id, kind, key_id, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        &m.account[..],
        m.device,
        kind,
        k.id,
        k.public_key,
        k.signature
    ])?;
    Ok(())
}

fn count_one_time(conn: &Connection, m: &MailboxId, kind: i64) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3")?
        .query_row(params![&m.account[..], m.device, kind], |r| r.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn prekey_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PublicPreKey> {
    Ok(PublicPreKey {
        id: r.get(0)?,
        public_key: r.get(1)?,
        signature: r.get(2)?,
    })
}

/// Takes (selects and deletes) the lowest-numbered one-time key of a kind.
fn take_one_time(conn: &Connection, m: &MailboxId, kind: i64) -> Result<Option<PublicPreKey>> {
    let key = conn
        .prepare_cached(
            "SELECT key_id, public_key, signature FROM one_time_prekeys \
             WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3 ORDER BY key_id LIMIT 1",
        )?
        .query_row(params![&m.account[..], m.device, kind], prekey_row)
        .optional()?;
    if let Some(k) = &key {
        conn.prepare_cached(
            "DELETE FROM one_time_prekeys WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3 AND key_id = ?4",
        )?
        .execute(params![&m.account[..], m.device, kind, k.id])?;
    }
    Ok(key)
}

fn signed_prekey(conn: &Connection, m: &MailboxId, kind: i64) -> Result<Option<PublicPreKey>> {
    Ok(conn
        .prepare_cached(
            "SELECT key_id, public_key, signature FROM signed_prekeys WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3",
        )?
        .query_row(params![&m.account[..], m.device, kind], prekey_row)
        .optional()?)
}

#[async_trait]
impl RelayStore for SqliteStore {
    async fn register_device(
        &self,
        m: MailboxId,
        identity_key: Vec<u8>,
        now_ms: u64,
    ) -> Result<bool> {
        self.write(move |c, _| {
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO devices (account_id, device_id, aci, identity_key, created_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![&m.account[..], m.device, &m.account[..16], identity_key, ms(now_ms)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn device(&self, m: MailboxId) -> Result<Option<DeviceRecord>> {
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT identity_key, registration_id, access_key FROM devices WHERE account_id = ?1 AND device_id = ?2",
                )?
                .query_row(params![&m.account[..], m.device], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
                })
                .optional()?;
            row.map(|(identity_key, registration_id, key)| {
                Ok(DeviceRecord { identity_key, registration_id, access_key: access_key_of(key)? })
            })
            .transpose()
        })
        .await
    }

    async fn accounts_by_aci(&self, acis: Vec<[u8; 16]>) -> Result<Vec<AciAccount>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT account_id, device_id, access_key FROM devices WHERE aci = ?1 ORDER BY account_id, device_id",
            )?;
            let mut out: Vec<AciAccount> = Vec::new();
            for aci in &acis {
                let rows = stmt.query_map(params![&aci[..]], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
                })?;
                for row in rows {
                    let (account, device, key) = row?;
                    let account = account_of(account)?;
                    let key = access_key_of(key)?;
                    match out.last_mut() {
                        Some(last) if last.account == account => last.devices.push((device, key)),
                        _ => out.push(AciAccount { account, devices: vec![(device, key)] }),
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn set_access_key(&self, m: MailboxId, key: AccessKey) -> Result<()> {
        self.write(move |c, _| {
            c.prepare_cached(
                "UPDATE devices SET access_key = ?3 WHERE account_id = ?1 AND device_id = ?2",
            )?
            .execute(params![&m.account[..], m.device, &key[..]])?;
            Ok(())
        })
        .await
    }

    async fn upload_prekeys(
        &self,
        m: MailboxId,
        up: PreKeyUpload,
        max_one_time: u32,
    ) -> Result<()> {
        self.write(move |c, _| {
            c.prepare_cached(
                "UPDATE devices SET registration_id = ?3 WHERE account_id = ?1 AND device_id = ?2",
            )?
            .execute(params![&m.account[..], m.device, up.registration_id])?;
            if let Some(k) = &up.signed_prekey {
                insert_prekey(c, "signed_prekeys", &m, KIND_EC, k)?;
            }
            if let Some(k) = &up.kyber_last_resort {
                insert_prekey(c, "signed_prekeys", &m, KIND_KYBER, k)?;
            }
            for (kind, keys) in [(KIND_EC, &up.one_time), (KIND_KYBER, &up.one_time_kyber)] {
                for k in keys {
                    insert_prekey(c, "one_time_prekeys", &m, kind, k)?;
                }
                if count_one_time(c, &m, kind)? > max_one_time {
                    return Err(Error::QuotaExceeded);
                }
            }
            Ok(())
        })
        .await
    }

    async fn prekey_counts(&self, m: MailboxId) -> Result<(u32, u32)> {
        self.read(move |c| {
            Ok((
                count_one_time(c, &m, KIND_EC)?,
                count_one_time(c, &m, KIND_KYBER)?,
            ))
        })
        .await
    }

    async fn take_bundle(&self, m: MailboxId, one_time: bool) -> Result<Option<TakenBundle>> {
        // A write, even though it mostly reads: the writer thread is the one place
        // where "select a one-time key, delete it" cannot interleave with another
        // fetcher, so no key is ever handed out twice.
        self.write(move |c, _| {
            let device = c
                .prepare_cached("SELECT identity_key, registration_id FROM devices WHERE account_id = ?1 AND device_id = ?2")?
                .query_row(params![&m.account[..], m.device], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?)))
                .optional()?;
            let Some((identity_key, registration_id)) = device else { return Ok(None) };
            let Some(signed_prekey) = signed_prekey(c, &m, KIND_EC)? else { return Ok(None) };
            let kyber_one_time = if one_time { take_one_time(c, &m, KIND_KYBER)? } else { None };
            let kyber = match kyber_one_time {
                Some(k) => k,
                None => match signed_prekey_fallback(c, &m)? {
                    Some(k) => k,
                    None => return Ok(None),
                },
            };
            let one_time = if one_time { take_one_time(c, &m, KIND_EC)? } else { None };
            Ok(Some(TakenBundle { identity_key, registration_id, signed_prekey, kyber, one_time }))
        })
        .await
    }

    async fn enqueue(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<()> {
        self.enqueue_job(messages, quota, false, on_commit)
            .await
            .map(|_| ())
    }

    async fn enqueue_where_room(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<Vec<AccountId>> {
        self.enqueue_job(messages, quota, true, on_commit).await
    }

    async fn fetch(
        &self,
        m: MailboxId,
        cursor: Cursor,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.read(move |c| {
            let mut out = Vec::with_capacity(limit.min(256));
            let mut stmt = c.prepare_cached(
                "SELECT id, sealed, stored_at_ms, envelope FROM messages \
                 WHERE account_id = ?1 AND device_id = ?2 AND priority = ?3 AND id > ?4 AND expires_at_ms > ?5 \
                 ORDER BY id LIMIT ?6",
            )?;
            for (priority, after) in [(Priority::High, cursor.high), (Priority::Normal, cursor.normal)] {
                let left = limit.saturating_sub(out.len());
                if left == 0 {
                    break;
                }
                let rows = stmt.query_map(
                    params![&m.account[..], m.device, priority_code(priority), ms(after), ms(now_ms), left as i64],
                    |r| {
                        Ok(StoredMessage {
                            id: unms(r.get(0)?),
                            priority,
                            sealed: r.get(1)?,
                            stored_at_ms: unms(r.get(2)?),
                            envelope: r.get(3)?,
                        })
                    },
                )?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, m: MailboxId, ids: Vec<u64>) -> Result<u64> {
        // Not isolated: it only fails with the store.
        let f = move |c: &Connection, state: &mut WriterState| {
            // Scoped to the mailbox: another device's IDs match nothing.
            let mut del = c.prepare_cached(
                "DELETE FROM messages WHERE id = ?1 AND account_id = ?2 AND device_id = ?3",
            )?;
            let mut removed = 0u64;
            for id in &ids {
                removed += del.execute(params![ms(*id), &m.account[..], m.device])? as u64;
            }
            state.adjust(&m, 0, removed);
            Ok(removed)
        };
        self.write_job(f, false, None).await
    }

    async fn identified_count(&self, m: MailboxId) -> Result<u64> {
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM messages WHERE account_id = ?1 AND device_id = ?2 AND sealed = 0",
                )?
                .query_row(params![&m.account[..], m.device], |r| r.get(0))?;
            Ok(unms(n))
        })
        .await
    }

    async fn queued(&self, m: MailboxId, now_ms: u64) -> Result<u64> {
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM messages WHERE account_id = ?1 AND device_id = ?2 AND expires_at_ms > ?3",
                )?
                .query_row(params![&m.account[..], m.device, ms(now_ms)], |r| r.get(0))?;
            Ok(unms(n))
        })
        .await
    }

    async fn high_after(&self, m: MailboxId, after: u64, now_ms: u64) -> Result<bool> {
        self.read(move |c| {
            let found: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM messages \
                     WHERE account_id = ?1 AND device_id = ?2 AND priority = ?3 AND id > ?4 AND expires_at_ms > ?5)",
                )?
                .query_row(
                    params![&m.account[..], m.device, priority_code(Priority::High), ms(after), ms(now_ms)],
                    |r| r.get(0),
                )?;
            Ok(found)
        })
        .await
    }

    async fn put_attachment(&self, meta: AttachmentMeta) -> Result<()> {
        self.write(move |c, _| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO attachments (address, size, stored_at_ms, expires_at_ms, delete_hash) \
                 VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER) * 1000, ?3, ?4)",
            )?
            .execute(params![
                &meta.address[..],
                ms(meta.size),
                ms(meta.expires_at_ms),
                meta.delete_hash.as_ref().map(|h| &h[..]),
            ])?;
            Ok(())
        })
        .await
    }

    async fn attachment(&self, address: Address, now_ms: u64) -> Result<Option<AttachmentMeta>> {
        self.read(move |c| {
            let row = c.prepare_cached("SELECT size, expires_at_ms, delete_hash FROM attachments WHERE address = ?1 AND expires_at_ms > ?2")?
                .query_row(params![&address[..], ms(now_ms)], |r| {
                    Ok((unms(r.get(0)?), unms(r.get(1)?), r.get::<_, Option<Vec<u8>>>(2)?))
                })
                .optional()?;
            row.map(|(size, expires_at_ms, hash)| {
                let delete_hash = hash
                    .map(|h| <[u8; 32]>::try_from(h).map_err(|_| Error::Corrupt("delete hash length")))
                    .transpose()?;
                Ok(AttachmentMeta { address, size, expires_at_ms, delete_hash })
            })
            .transpose()
        })
        .await
    }

    async fn push_endpoint_count(&self) -> Result<u64> {
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM push_endpoints")?
                .query_row([], |r| r.get(0))?;
            Ok(unms(n))
        })
        .await
    }

    async fn push_endpoint_at(&self, index: u64) -> Result<Option<MailboxId>> {
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT account_id, device_id FROM push_endpoints LIMIT 1 OFFSET ?1",
                )?
                .query_row(params![ms(index)], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?))
                })
                .optional()?;
            row.map(|(account, device)| {
                Ok(MailboxId {
                    account: account_of(account)?,
                    device,
                })
            })
            .transpose()
        })
        .await
    }

    async fn delete_account(
        &self,
        account: AccountId,
        owned: Vec<(Address, [u8; 32])>,
    ) -> Result<Vec<Address>> {
        self.write(move |c, state| {
            // secure_delete is on: the freed pages are zeroed, not just unlinked.
            for table in [
                "messages",
                "one_time_prekeys",
                "signed_prekeys",
                "push_endpoints",
                "devices",
            ] {
                c.prepare_cached(&format!("DELETE FROM {table} WHERE account_id = ?1"))?
                    .execute(params![&account[..]])?;
            }
            state.forget_counts();
            let mut deleted = Vec::new();
            let mut stmt = c.prepare_cached(
                "DELETE FROM attachments WHERE address = ?1 AND delete_hash = ?2",
            )?;
            for (address, hash) in owned {
                if stmt.execute(params![&address[..], &hash[..]])? > 0 {
                    deleted.push(address);
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepOutcome> {
        self.write(move |c, state| {
            let messages = c.execute(
                "DELETE FROM messages WHERE expires_at_ms <= ?1",
                params![ms(now_ms)],
            )? as u64;
            if messages > 0 {
                state.forget_counts();
            }
            let mut attachments = Vec::new();
            {
                let mut stmt =
                    c.prepare("SELECT address FROM attachments WHERE expires_at_ms <= ?1")?;
                for row in stmt.query_map(params![ms(now_ms)], |r| r.get::<_, Vec<u8>>(0))? {
                    let a: Address = row?
                        .try_into()
                        .map_err(|_| Error::Corrupt("attachment address length"))?;
                    attachments.push(a);
                }
            }
            c.execute(
                "DELETE FROM attachments WHERE expires_at_ms <= ?1",
                params![ms(now_ms)],
            )?;
            Ok(SweepOutcome {
                messages,
                attachments,
            })
        })
        .await
    }

    async fn set_push_endpoint(
        &self,
        m: MailboxId,
        url: Option<String>,
        now_ms: u64,
    ) -> Result<()> {
        self.write(move |c, _| {
            match url {
                Some(url) => c
                    .prepare_cached(
                        "INSERT OR REPLACE INTO push_endpoints (account_id, device_id, url, set_at_ms) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![&m.account[..], m.device, url, ms(now_ms)])?,
                None => c
                    .prepare_cached("DELETE FROM push_endpoints WHERE account_id = ?1 AND device_id = ?2")?
                    .execute(params![&m.account[..], m.device])?,
            };
            Ok(())
        })
        .await
    }

    async fn push_endpoint(&self, m: MailboxId) -> Result<Option<String>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT url FROM push_endpoints WHERE account_id = ?1 AND device_id = ?2",
            )?
            .query_row(params![&m.account[..], m.device], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    async fn remove_push_endpoint(&self, m: MailboxId, url: String) -> Result<bool> {
        self.write(move |c, _| {
            let n = c
                .prepare_cached(
                    "DELETE FROM push_endpoints WHERE account_id = ?1 AND device_id = ?2 AND url = ?3",
                )?
                .execute(params![&m.account[..], m.device, url])?;
            Ok(n == 1)
        })
        .await
    }
}

/// The last-resort Kyber key, when the one-time ones have run out.
fn signed_prekey_fallback(c: &Connection, m: &MailboxId) -> Result<Option<PublicPreKey>> {
    signed_prekey(c, m, KIND_KYBER)
}
