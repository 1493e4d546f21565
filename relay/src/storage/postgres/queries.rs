//! `RelayStore` on PostgreSQL: each method one statement or one short
//! transaction on a pooled connection, except sends and acknowledgements,
//! which the batching task commits together (`batch.rs`). Every method has
//! the SQLite store's semantics; the shared suite (relay/tests/store_suite.rs)
//! runs the same checks against both.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;

use super::batch::Request;
use super::batch::WRITE_LOCK;
use super::{pg_error, to_i64, to_u64, PostgresStore};
use crate::error::{Error, Result};
use crate::storage::{
    AccessKey, AccountId, AciAccount, Address, AttachmentMeta, Cursor, DeviceRecord, MailboxId,
    NewMessage, OnCommit, PreKeyUpload, Priority, PublicPreKey, RelayStore, RemoteMail,
    StoredMessage, SweepOutcome, TakenBundle,
};

/// Prekey kinds in the tables.
const KIND_EC: i16 = 0;
const KIND_KYBER: i16 = 1;

fn dev(m: &MailboxId) -> i32 {
    i32::try_from(m.device).unwrap_or(i32::MAX)
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

fn device_of(v: i32) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt("device id"))
}

fn u32_of(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt("32-bit value out of range"))
}

fn prekey(r: &Row) -> Result<PublicPreKey> {
    Ok(PublicPreKey {
        id: u32_of(r.get(0))?,
        public_key: r.get(1),
        signature: r.get(2),
    })
}

/// Takes (deletes and returns) the lowest-numbered one-time key of a kind.
/// SKIP LOCKED: two nodes taking at once get two different keys.
async fn take_one_time(
    tx: &deadpool_postgres::Transaction<'_>,
    m: &MailboxId,
    kind: i16,
) -> Result<Option<PublicPreKey>> {
    let st = tx
        .prepare_cached(
            "DELETE FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3 AND key_id = \
             (SELECT key_id FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3 \
              ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING key_id, public_key, signature",
        )
        .await
        .map_err(pg_error)?;
    tx.query_opt(&st, &[&&m.account[..], &dev(m), &kind])
        .await
        .map_err(pg_error)?
        .map(|r| prekey(&r))
        .transpose()
}

async fn signed_key(
    tx: &deadpool_postgres::Transaction<'_>,
    m: &MailboxId,
    kind: i16,
) -> Result<Option<PublicPreKey>> {
    let st = tx
        .prepare_cached(
            "SELECT key_id, public_key, signature FROM signed_prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3",
        )
        .await
        .map_err(pg_error)?;
    tx.query_opt(&st, &[&&m.account[..], &dev(m), &kind])
        .await
        .map_err(pg_error)?
        .map(|r| prekey(&r))
        .transpose()
}

async fn put_prekey(
    tx: &deadpool_postgres::Transaction<'_>,
    signed: bool,
    m: &MailboxId,
    kind: i16,
    k: &PublicPreKey,
) -> Result<()> {
    let sql = if signed {
        "INSERT INTO signed_prekeys (account_id, device_id, kind, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_id, device_id, kind) DO UPDATE SET key_id = EXCLUDED.key_id, public_key = EXCLUDED.public_key, signature = EXCLUDED.signature"
    } else {
        "INSERT INTO one_time_prekeys (account_id, device_id, kind, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_id, device_id, kind, key_id) DO UPDATE SET public_key = EXCLUDED.public_key, signature = EXCLUDED.signature"
    };
    let st = tx.prepare_cached(sql).await.map_err(pg_error)?;
    tx.execute(
        &st,
        &[
            &&m.account[..],
            &dev(m),
            &kind,
            &i64::from(k.id),
            &k.public_key,
            &k.signature,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

impl PostgresStore {
    async fn enqueue_batched(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        partial: bool,
        on_commit: OnCommit,
    ) -> Result<Vec<AccountId>> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Enqueue {
            messages,
            quota,
            partial,
            on_commit: std::sync::Mutex::new(on_commit),
            reply,
        };
        self.batched(req, rx).await
    }

    /// Tells the other nodes, when `tx` commits, that this account's devices
    /// changed: they drop what they cached of them.
    async fn devices_changed(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        account: &AccountId,
    ) -> Result<()> {
        let payload = super::listen::devices_changed(&self.node, account);
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::MAIL_CHANNEL, &payload],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    /// One COUNT-like query returning a BIGINT.
    async fn count(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_error)?;
        let row = c.query_one(&st, params).await.map_err(pg_error)?;
        Ok(to_u64(row.get(0)))
    }
}

#[async_trait]
impl RelayStore for PostgresStore {
    async fn register_device(
        &self,
        m: MailboxId,
        identity_key: Vec<u8>,
        now_ms: u64,
    ) -> Result<bool> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO devices (account_id, device_id, aci, identity_key, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let n = c
            .execute(
                &st,
                &[
                    &&m.account[..],
                    &dev(&m),
                    &&m.account[..16],
                    &identity_key,
                    &to_i64(now_ms),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn device(&self, m: MailboxId) -> Result<Option<DeviceRecord>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT identity_key, registration_id, access_key FROM devices WHERE account_id = $1 AND device_id = $2",
            )
            .await
            .map_err(pg_error)?;
        let Some(r) = c
            .query_opt(&st, &[&&m.account[..], &dev(&m)])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        Ok(Some(DeviceRecord {
            identity_key: r.get(0),
            registration_id: u32_of(r.get(1))?,
            access_key: access_key_of(r.get(2))?,
        }))
    }

    async fn accounts_by_aci(&self, acis: Vec<[u8; 16]>) -> Result<Vec<AciAccount>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT d.account_id, d.device_id, d.access_key FROM unnest($1::bytea[]) WITH ORDINALITY AS a(aci, i) \
                 JOIN devices d ON d.aci = a.aci ORDER BY a.i, d.account_id, d.device_id",
            )
            .await
            .map_err(pg_error)?;
        let acis: Vec<&[u8]> = acis.iter().map(|a| &a[..]).collect();
        let mut out: Vec<AciAccount> = Vec::new();
        for r in c.query(&st, &[&acis]).await.map_err(pg_error)? {
            let account = account_of(r.get(0))?;
            let device = device_of(r.get(1))?;
            let key = access_key_of(r.get(2))?;
            match out.last_mut() {
                Some(last) if last.account == account => last.devices.push((device, key)),
                _ => out.push(AciAccount {
                    account,
                    devices: vec![(device, key)],
                }),
            }
        }
        Ok(out)
    }

    async fn set_access_key(&self, m: MailboxId, key: AccessKey) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let st = tx
            .prepare_cached(
                "UPDATE devices SET access_key = $3 WHERE account_id = $1 AND device_id = $2",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&st, &[&&m.account[..], &dev(&m), &&key[..]])
            .await
            .map_err(pg_error)?;
        self.devices_changed(&tx, &m.account).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn upload_prekeys(
        &self,
        m: MailboxId,
        up: PreKeyUpload,
        max_one_time: u32,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        // Locks the device's row first: two uploads of one device, on any
        // nodes, run one after the other, so the count below is exact.
        let st = tx
            .prepare_cached(
                "UPDATE devices SET registration_id = $3 WHERE account_id = $1 AND device_id = $2",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(
            &st,
            &[&&m.account[..], &dev(&m), &i64::from(up.registration_id)],
        )
        .await
        .map_err(pg_error)?;
        if let Some(k) = &up.signed_prekey {
            put_prekey(&tx, true, &m, KIND_EC, k).await?;
        }
        if let Some(k) = &up.kyber_last_resort {
            put_prekey(&tx, true, &m, KIND_KYBER, k).await?;
        }
        let count = tx
            .prepare_cached("SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2 AND kind = $3")
            .await
            .map_err(pg_error)?;
        for (kind, keys) in [(KIND_EC, &up.one_time), (KIND_KYBER, &up.one_time_kyber)] {
            for k in keys {
                put_prekey(&tx, false, &m, kind, k).await?;
            }
            let n: i64 = tx
                .query_one(&count, &[&&m.account[..], &dev(&m), &kind])
                .await
                .map_err(pg_error)?
                .get(0);
            if to_u64(n) > u64::from(max_one_time) {
                // Dropping the transaction rolls the whole upload back.
                return Err(Error::QuotaExceeded);
            }
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn prekey_counts(&self, m: MailboxId) -> Result<(u32, u32)> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT COUNT(*) FILTER (WHERE kind = 0), COUNT(*) FILTER (WHERE kind = 1) \
                 FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
            )
            .await
            .map_err(pg_error)?;
        let r = c
            .query_one(&st, &[&&m.account[..], &dev(&m)])
            .await
            .map_err(pg_error)?;
        let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok((clamp(r.get(0)), clamp(r.get(1))))
    }

    async fn take_bundle(&self, m: MailboxId, one_time: bool) -> Result<Option<TakenBundle>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let st = tx
            .prepare_cached("SELECT identity_key, registration_id FROM devices WHERE account_id = $1 AND device_id = $2")
            .await
            .map_err(pg_error)?;
        let Some(d) = tx
            .query_opt(&st, &[&&m.account[..], &dev(&m)])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        let (identity_key, registration_id): (Vec<u8>, u32) = (d.get(0), u32_of(d.get(1))?);
        let Some(signed_prekey) = signed_key(&tx, &m, KIND_EC).await? else {
            return Ok(None);
        };
        let kyber_one_time = match one_time {
            true => take_one_time(&tx, &m, KIND_KYBER).await?,
            false => None,
        };
        let kyber = match kyber_one_time {
            Some(k) => k,
            None => match signed_key(&tx, &m, KIND_KYBER).await? {
                Some(k) => k,
                None => return Ok(None),
            },
        };
        let one_time = match one_time {
            true => take_one_time(&tx, &m, KIND_EC).await?,
            false => None,
        };
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(TakenBundle {
            identity_key,
            registration_id,
            signed_prekey,
            kyber,
            one_time,
        }))
    }

    async fn enqueue(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<()> {
        self.enqueue_batched(messages, quota, false, on_commit)
            .await
            .map(|_| ())
    }

    async fn enqueue_where_room(
        &self,
        messages: Vec<NewMessage>,
        quota: u64,
        on_commit: OnCommit,
    ) -> Result<Vec<AccountId>> {
        self.enqueue_batched(messages, quota, true, on_commit).await
    }

    async fn fetch(
        &self,
        m: MailboxId,
        cursor: Cursor,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let c = self.client().await?;
        // Both priorities in one round trip; high first, each in ID order.
        let st = c
            .prepare_cached(
                "SELECT id, priority, sealed, stored_at_ms, envelope FROM ( \
                 (SELECT id, priority, sealed, stored_at_ms, envelope FROM messages \
                  WHERE account_id = $1 AND device_id = $2 AND priority = 1 AND id > $3 AND expires_at_ms > $5 ORDER BY id LIMIT $6) \
                 UNION ALL \
                 (SELECT id, priority, sealed, stored_at_ms, envelope FROM messages \
                  WHERE account_id = $1 AND device_id = $2 AND priority = 0 AND id > $4 AND expires_at_ms > $5 ORDER BY id LIMIT $6) \
                 ) AS m ORDER BY priority DESC, id LIMIT $6",
            )
            .await
            .map_err(pg_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c
            .query(
                &st,
                &[
                    &&m.account[..],
                    &dev(&m),
                    &to_i64(cursor.high),
                    &to_i64(cursor.normal),
                    &to_i64(now_ms),
                    &limit,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredMessage {
                id: to_u64(r.get(0)),
                priority: if r.get::<_, i16>(1) == 1 {
                    Priority::High
                } else {
                    Priority::Normal
                },
                sealed: r.get(2),
                stored_at_ms: to_u64(r.get(3)),
                envelope: r.get(4),
            })
            .collect())
    }

    async fn ack(&self, mailbox: MailboxId, ids: Vec<u64>) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.batched(
            Request::Ack {
                mailbox,
                ids,
                reply,
            },
            rx,
        )
        .await
    }

    async fn identified_count(&self, m: MailboxId) -> Result<u64> {
        self.count(
            "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2 AND NOT sealed",
            &[&&m.account[..], &dev(&m)],
        )
        .await
    }

    async fn queued(&self, m: MailboxId, now_ms: u64) -> Result<u64> {
        self.count(
            "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2 AND expires_at_ms > $3",
            &[&&m.account[..], &dev(&m), &to_i64(now_ms)],
        )
        .await
    }

    async fn high_after(&self, m: MailboxId, after: u64, now_ms: u64) -> Result<bool> {
        let n = self
            .count(
                "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE account_id = $1 AND device_id = $2 \
                 AND priority = 1 AND id > $3 AND expires_at_ms > $4 LIMIT 1) AS x",
                &[&&m.account[..], &dev(&m), &to_i64(after), &to_i64(now_ms)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn put_attachment(&self, meta: AttachmentMeta) -> Result<()> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO attachments (address, size, stored_at_ms, expires_at_ms, delete_hash) \
                 VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $3, $4) \
                 ON CONFLICT (address) DO UPDATE SET size = EXCLUDED.size, stored_at_ms = EXCLUDED.stored_at_ms, \
                 expires_at_ms = EXCLUDED.expires_at_ms, delete_hash = EXCLUDED.delete_hash",
            )
            .await
            .map_err(pg_error)?;
        let hash: Option<&[u8]> = meta.delete_hash.as_ref().map(|h| &h[..]);
        c.execute(
            &st,
            &[
                &&meta.address[..],
                &to_i64(meta.size),
                &to_i64(meta.expires_at_ms),
                &hash,
            ],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn attachment(&self, address: Address, now_ms: u64) -> Result<Option<AttachmentMeta>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT size, expires_at_ms, delete_hash FROM attachments WHERE address = $1 AND expires_at_ms > $2")
            .await
            .map_err(pg_error)?;
        let Some(r) = c
            .query_opt(&st, &[&&address[..], &to_i64(now_ms)])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        let delete_hash = r
            .get::<_, Option<Vec<u8>>>(2)
            .map(|h| <[u8; 32]>::try_from(h).map_err(|_| Error::Corrupt("delete hash length")))
            .transpose()?;
        Ok(Some(AttachmentMeta {
            address,
            size: to_u64(r.get(0)),
            expires_at_ms: to_u64(r.get(1)),
            delete_hash,
        }))
    }

    async fn push_endpoint_count(&self) -> Result<u64> {
        self.count("SELECT COUNT(*) FROM push_endpoints", &[]).await
    }

    async fn push_endpoint_at(&self, index: u64) -> Result<Option<MailboxId>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT account_id, device_id FROM push_endpoints ORDER BY account_id, device_id LIMIT 1 OFFSET $1")
            .await
            .map_err(pg_error)?;
        let Some(r) = c
            .query_opt(&st, &[&to_i64(index)])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        Ok(Some(MailboxId {
            account: account_of(r.get(0))?,
            device: device_of(r.get(1))?,
        }))
    }

    async fn delete_account(
        &self,
        account: AccountId,
        owned: Vec<(Address, [u8; 32])>,
    ) -> Result<Vec<Address>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        // Mailboxes and their counts change: under the write lock (batch.rs).
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(pg_error)?;
        for table in [
            "messages",
            "mailbox_counts",
            "one_time_prekeys",
            "signed_prekeys",
            "push_endpoints",
            "devices",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE account_id = $1"),
                &[&&account[..]],
            )
            .await
            .map_err(pg_error)?;
        }
        let st = tx
            .prepare_cached("DELETE FROM attachments WHERE address = $1 AND delete_hash = $2")
            .await
            .map_err(pg_error)?;
        let mut deleted = Vec::new();
        for (address, hash) in owned {
            if tx
                .execute(&st, &[&&address[..], &&hash[..]])
                .await
                .map_err(pg_error)?
                > 0
            {
                deleted.push(address);
            }
        }
        self.devices_changed(&tx, &account).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(deleted)
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(pg_error)?;
        let now = to_i64(now_ms);
        let row = tx
            .query_one(
                "WITH d AS (DELETE FROM messages WHERE expires_at_ms <= $1 RETURNING account_id, device_id), \
                 c AS (SELECT account_id, device_id, COUNT(*) AS k FROM d GROUP BY account_id, device_id), \
                 u AS (UPDATE mailbox_counts m SET n = GREATEST(m.n - c.k, 0) FROM c \
                       WHERE m.account_id = c.account_id AND m.device_id = c.device_id RETURNING 1) \
                 SELECT COALESCE(SUM(k), 0)::bigint FROM c",
                &[&now],
            )
            .await
            .map_err(pg_error)?;
        let messages = to_u64(row.get(0));
        let mut attachments = Vec::new();
        for r in tx
            .query(
                "DELETE FROM attachments WHERE expires_at_ms <= $1 RETURNING address",
                &[&now],
            )
            .await
            .map_err(pg_error)?
        {
            let a: Address = r
                .get::<_, Vec<u8>>(0)
                .try_into()
                .map_err(|_| Error::Corrupt("attachment address length"))?;
            attachments.push(a);
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(SweepOutcome {
            messages,
            attachments,
        })
    }

    async fn set_push_endpoint(
        &self,
        m: MailboxId,
        url: Option<String>,
        now_ms: u64,
    ) -> Result<()> {
        let c = self.client().await?;
        match url {
            Some(url) => {
                let st = c
                    .prepare_cached(
                        "INSERT INTO push_endpoints (account_id, device_id, url, set_at_ms) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (account_id, device_id) DO UPDATE SET url = EXCLUDED.url, set_at_ms = EXCLUDED.set_at_ms",
                    )
                    .await
                    .map_err(pg_error)?;
                c.execute(&st, &[&&m.account[..], &dev(&m), &url, &to_i64(now_ms)])
                    .await
                    .map_err(pg_error)?;
            }
            None => {
                let st = c
                    .prepare_cached(
                        "DELETE FROM push_endpoints WHERE account_id = $1 AND device_id = $2",
                    )
                    .await
                    .map_err(pg_error)?;
                c.execute(&st, &[&&m.account[..], &dev(&m)])
                    .await
                    .map_err(pg_error)?;
            }
        }
        Ok(())
    }

    async fn push_endpoint(&self, m: MailboxId) -> Result<Option<String>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT url FROM push_endpoints WHERE account_id = $1 AND device_id = $2",
            )
            .await
            .map_err(pg_error)?;
        Ok(c.query_opt(&st, &[&&m.account[..], &dev(&m)])
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0)))
    }

    async fn remove_push_endpoint(&self, m: MailboxId, url: String) -> Result<bool> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "DELETE FROM push_endpoints WHERE account_id = $1 AND device_id = $2 AND url = $3",
            )
            .await
            .map_err(pg_error)?;
        Ok(c.execute(&st, &[&&m.account[..], &dev(&m), &url])
            .await
            .map_err(pg_error)?
            == 1)
    }

    fn remote_mail(&self) -> Option<mpsc::UnboundedReceiver<RemoteMail>> {
        self.listen()
    }
}
