//! Group commit on PostgreSQL: one task per relay node takes every send and
//! acknowledgement that is waiting (up to a bound), applies them in ONE
//! transaction — one durable commit for the whole batch — and only then
//! answers each and runs the commit hooks, in commit order.
//!
//! Every transaction that gives out message IDs or changes mailbox counts
//! holds one cluster-wide advisory lock (`WRITE_LOCK`) until it commits. So
//! on every node commit order is ID order, as with SQLite's single writer: a
//! connection that has read message N from the store has seen every message
//! below N that still exists, and "after the cursor" stays exactly "not yet
//! pushed". Holding it from the start also means no two batches ever wait on
//! each other's row locks: there are no deadlocks to retry.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{pg_error, pool_error, to_i64, to_u64, MAIL_CHANNEL};
use crate::error::{Error, Result};
use crate::storage::{AccountId, MailboxId, NewMessage, OnCommit, Priority, StoredMessage};

/// Advisory lock key of the write lock ("rfwrit" in ASCII).
pub(super) const WRITE_LOCK: i64 = 0x7266_7772_6974;
/// Bytes of one NOTIFY payload, at most (PostgreSQL's limit is 8000).
const NOTIFY_PAYLOAD_MAX: usize = 7000;

/// A request the batching task applies.
pub(crate) enum Request {
    /// Store messages (`partial`: skip the accounts without room).
    Enqueue {
        messages: Vec<NewMessage>,
        quota: u64,
        partial: bool,
        // In a Mutex only to be Sync: the batch is read across awaits.
        on_commit: std::sync::Mutex<OnCommit>,
        reply: oneshot::Sender<Result<Vec<AccountId>>>,
    },
    /// Delete acknowledged messages of one mailbox.
    Ack {
        mailbox: MailboxId,
        ids: Vec<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// What one request came to inside a committed batch.
enum Outcome {
    /// The IDs given to its messages (`None`: its account had no room), and
    /// the accounts skipped.
    Enqueued(Vec<Option<u64>>, Vec<AccountId>),
    /// Refused before writing anything (quota).
    Refused(Error),
    /// Messages deleted.
    Acked(u64),
}

/// Runs until every sender is dropped. `node` marks this node's notifications.
pub(super) async fn run(
    pool: Pool,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
    node: String,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        match commit(&pool, &batch, &node).await {
            Ok(outcomes) => answer(batch.drain(..), outcomes),
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "group commit failed");
                for req in batch.drain(..) {
                    fail(req, &e);
                }
            }
        }
    }
}

fn fail(req: Request, e: &Error) {
    let e = Error::Store(e.to_string());
    // The requester may have gone away (connection closed): nothing to do then.
    match req {
        Request::Enqueue { reply, .. } => drop(reply.send(Err(e))),
        Request::Ack { reply, .. } => drop(reply.send(Err(e))),
    }
}

/// Answers each request of a committed batch and runs its hook, in order.
fn answer(batch: impl Iterator<Item = Request>, outcomes: Vec<Outcome>) {
    for (req, outcome) in batch.zip(outcomes) {
        match (req, outcome) {
            (
                Request::Enqueue {
                    messages,
                    on_commit,
                    reply,
                    ..
                },
                Outcome::Enqueued(ids, full),
            ) => {
                let stored = messages
                    .into_iter()
                    .zip(ids)
                    .filter_map(|(m, id)| {
                        Some((
                            m.mailbox,
                            StoredMessage {
                                id: id?,
                                priority: m.priority,
                                sealed: m.sealed,
                                stored_at_ms: m.stored_at_ms,
                                envelope: m.envelope,
                            },
                        ))
                    })
                    .collect();
                if let Ok(hook) = on_commit.into_inner() {
                    hook(stored);
                }
                let _ = reply.send(Ok(full));
            }
            (Request::Enqueue { reply, .. }, Outcome::Refused(e)) => drop(reply.send(Err(e))),
            (Request::Ack { reply, .. }, Outcome::Acked(n)) => drop(reply.send(Ok(n))),
            (req, _) => fail(req, &Error::Corrupt("request and outcome disagree")),
        }
    }
}

fn priority_code(p: Priority) -> i16 {
    match p {
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

/// Applies a batch in one transaction and commits it.
async fn commit(pool: &Pool, batch: &[Request], node: &str) -> Result<Vec<Outcome>> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(pg_error)?;
    tx.execute(&lock, &[&WRITE_LOCK]).await.map_err(pg_error)?;

    // Every mailbox the batch touches, sorted: their counts, read once.
    let mut boxes: Vec<MailboxId> = Vec::new();
    for req in batch {
        match req {
            Request::Enqueue { messages, .. } => boxes.extend(messages.iter().map(|m| m.mailbox)),
            Request::Ack { mailbox, .. } => boxes.push(*mailbox),
        }
    }
    boxes.sort_by_key(|m| (m.account, m.device));
    boxes.dedup();
    let accounts: Vec<&[u8]> = boxes.iter().map(|m| &m.account[..]).collect();
    let devices: Vec<i32> = boxes.iter().map(|m| m.device as i32).collect();
    let read = tx
        .prepare_cached(
            "SELECT c.account_id, c.device_id, c.n FROM mailbox_counts c \
             JOIN unnest($1::bytea[], $2::int[]) AS b(a, d) ON c.account_id = b.a AND c.device_id = b.d",
        )
        .await
        .map_err(pg_error)?;
    let mut counts: HashMap<MailboxId, u64> = boxes.iter().map(|m| (*m, 0)).collect();
    for row in tx
        .query(&read, &[&accounts, &devices])
        .await
        .map_err(pg_error)?
    {
        let account: AccountId = row
            .get::<_, Vec<u8>>(0)
            .try_into()
            .map_err(|_| Error::Corrupt("account id length"))?;
        let device =
            u32::try_from(row.get::<_, i32>(1)).map_err(|_| Error::Corrupt("device id"))?;
        counts.insert(MailboxId { account, device }, to_u64(row.get(2)));
    }

    // Acknowledgements first: they only make room, and the requests of one
    // batch are concurrent, so any order among them is a valid one.
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
    let mut ack_ids: Vec<i64> = Vec::new();
    let mut ack_accounts: Vec<&[u8]> = Vec::new();
    let mut ack_devices: Vec<i32> = Vec::new();
    for req in batch {
        if let Request::Ack { mailbox, ids, .. } = req {
            for id in ids {
                ack_ids.push(to_i64(*id));
                ack_accounts.push(&mailbox.account[..]);
                ack_devices.push(mailbox.device as i32);
            }
        }
    }
    let mut deleted: HashSet<(u64, MailboxId)> = HashSet::new();
    if !ack_ids.is_empty() {
        // Scoped to the mailbox: another device's IDs match nothing.
        let del = tx
            .prepare_cached(
                "DELETE FROM messages m USING unnest($1::bigint[], $2::bytea[], $3::int[]) AS a(id, acc, dev) \
                 WHERE m.id = a.id AND m.account_id = a.acc AND m.device_id = a.dev RETURNING m.id, m.account_id, m.device_id",
            )
            .await
            .map_err(pg_error)?;
        for row in tx
            .query(&del, &[&ack_ids, &ack_accounts, &ack_devices])
            .await
            .map_err(pg_error)?
        {
            let account: AccountId = row
                .get::<_, Vec<u8>>(1)
                .try_into()
                .map_err(|_| Error::Corrupt("account id length"))?;
            let device =
                u32::try_from(row.get::<_, i32>(2)).map_err(|_| Error::Corrupt("device id"))?;
            deleted.insert((to_u64(row.get(0)), MailboxId { account, device }));
        }
    }
    for (req, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        if let Request::Ack { mailbox, ids, .. } = req {
            let removed = ids
                .iter()
                .filter(|id| deleted.remove(&(**id, *mailbox)))
                .count() as u64;
            if let Some(n) = counts.get_mut(mailbox) {
                *n = n.saturating_sub(removed);
            }
            *outcome = Some(Outcome::Acked(removed));
        }
    }

    // Sends, in order, against the counts as the batch leaves them.
    let mut keep: Vec<Vec<bool>> = Vec::with_capacity(batch.len());
    let mut to_store = 0usize;
    for (req, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        let Request::Enqueue {
            messages,
            quota,
            partial,
            ..
        } = req
        else {
            keep.push(Vec::new());
            continue;
        };
        let mut per_box: Vec<(MailboxId, u64)> = Vec::new();
        for msg in messages {
            match per_box.iter_mut().find(|(m, _)| *m == msg.mailbox) {
                Some((_, n)) => *n += 1,
                None => per_box.push((msg.mailbox, 1)),
            }
        }
        // An account is skipped whole, as in the SQLite store.
        let mut full: Vec<AccountId> = Vec::new();
        for (m, n) in &per_box {
            let have = counts.get(m).copied().unwrap_or(0);
            if have.saturating_add(*n) > *quota && !full.contains(&m.account) {
                full.push(m.account);
            }
        }
        if !full.is_empty() && !partial {
            keep.push(Vec::new());
            *outcome = Some(Outcome::Refused(Error::QuotaExceeded));
            continue;
        }
        for (m, n) in &per_box {
            if !full.contains(&m.account) {
                *counts.entry(*m).or_insert(0) += n;
            }
        }
        let kept: Vec<bool> = messages
            .iter()
            .map(|m| !full.contains(&m.mailbox.account))
            .collect();
        to_store += kept.iter().filter(|k| **k).count();
        keep.push(kept);
        *outcome = Some(Outcome::Enqueued(Vec::new(), full));
    }

    // IDs, taken under the write lock: ascending in batch order.
    let mut ids: Vec<i64> = Vec::new();
    if to_store > 0 {
        let next = tx
            .prepare_cached("SELECT nextval('messages_id_seq') FROM generate_series(1, $1::int)")
            .await
            .map_err(pg_error)?;
        let n = i32::try_from(to_store).map_err(|_| Error::Store("batch too large".into()))?;
        ids = tx
            .query(&next, &[&n])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get::<_, i64>(0))
            .collect();
        ids.sort_unstable();
    }
    let mut cols = Columns::default();
    let mut next_id = ids.iter();
    let mut woken: Vec<MailboxId> = Vec::new();
    for ((req, outcome), kept) in batch.iter().zip(outcomes.iter_mut()).zip(&keep) {
        let (Request::Enqueue { messages, .. }, Some(Outcome::Enqueued(given, _))) = (req, outcome)
        else {
            continue;
        };
        for (msg, keep) in messages.iter().zip(kept) {
            if !keep {
                given.push(None);
                continue;
            }
            let id = *next_id
                .next()
                .ok_or(Error::Corrupt("fewer ids than messages"))?;
            cols.push(id, msg);
            given.push(Some(to_u64(id)));
            woken.push(msg.mailbox);
        }
    }
    if !cols.ids.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO messages (id, account_id, device_id, priority, sealed, stored_at_ms, expires_at_ms, envelope) \
                 SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::int[], $4::smallint[], $5::bool[], $6::bigint[], $7::bigint[], $8::bytea[])",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(
            &insert,
            &[
                &cols.ids,
                &cols.accounts,
                &cols.devices,
                &cols.priorities,
                &cols.sealed,
                &cols.stored,
                &cols.expires,
                &cols.envelopes,
            ],
        )
        .await
        .map_err(pg_error)?;
    }

    // The counts as they now stand, written back.
    let values: Vec<i64> = boxes
        .iter()
        .map(|m| to_i64(counts.get(m).copied().unwrap_or(0)))
        .collect();
    let upsert = tx
        .prepare_cached(
            "INSERT INTO mailbox_counts (account_id, device_id, n) \
             SELECT * FROM unnest($1::bytea[], $2::int[], $3::bigint[]) \
             ON CONFLICT (account_id, device_id) DO UPDATE SET n = EXCLUDED.n",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(&upsert, &[&accounts, &devices, &values])
        .await
        .map_err(pg_error)?;

    // Other nodes hear of the new mail when (and only if) this commits.
    woken.sort_by_key(|m| (m.account, m.device));
    woken.dedup();
    let payloads = notify_payloads(node, &woken);
    if !payloads.is_empty() {
        let notify = tx
            .prepare_cached("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .await
            .map_err(pg_error)?;
        tx.execute(&notify, &[&MAIL_CHANNEL, &payloads])
            .await
            .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    outcomes
        .into_iter()
        .map(|o| o.ok_or(Error::Corrupt("request left unapplied")))
        .collect()
}

/// The batch's messages as columns, for one `unnest` insert.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<i64>,
    accounts: Vec<&'a [u8]>,
    devices: Vec<i32>,
    priorities: Vec<i16>,
    sealed: Vec<bool>,
    stored: Vec<i64>,
    expires: Vec<i64>,
    envelopes: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, id: i64, m: &'a NewMessage) {
        self.ids.push(id);
        self.accounts.push(&m.mailbox.account[..]);
        self.devices.push(m.mailbox.device as i32);
        self.priorities.push(priority_code(m.priority));
        self.sealed.push(m.sealed);
        self.stored.push(to_i64(m.stored_at_ms));
        self.expires.push(to_i64(m.expires_at_ms));
        self.envelopes.push(&m.envelope);
    }
}

/// NOTIFY payloads naming these mailboxes: `node:` then hex `account‖device`
/// entries separated by commas, each payload under PostgreSQL's limit.
pub(super) fn notify_payloads(node: &str, mailboxes: &[MailboxId]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for m in mailboxes {
        let entry = format!("{}{:02x}", hex::encode(m.account), m.device);
        if !current.is_empty() && current.len() + entry.len() + 1 > NOTIFY_PAYLOAD_MAX {
            out.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(node);
            current.push(':');
        } else {
            current.push(',');
        }
        current.push_str(&entry);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
